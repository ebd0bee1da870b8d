"""The payment rollup's invariant, shared by the property test and the lifecycle state machine:
PaymentDaily (summed over its shards) equals the totals recomputed from the payment table."""

from __future__ import annotations

from collections import defaultdict

from sqlmodel import select

from core.config import get_settings
from core.db import read_session
from core.models import Payment, PaymentDaily


def recomputed() -> dict[tuple, tuple[int, int]]:
    tz = get_settings().tz
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    with read_session() as session:
        for created, status, currency, amount in session.exec(
            select(Payment.created_at, Payment.status, Payment.currency, Payment.amount)
        ).all():
            entry = totals[(created.astimezone(tz).date(), str(status), (currency or "eur").lower())]
            entry[0] += 1
            entry[1] += amount or 0
    return {key: (c, a) for key, (c, a) in totals.items()}


def rolled_up() -> dict[tuple, tuple[int, int]]:
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    with read_session() as session:
        for row in session.exec(select(PaymentDaily)).all():
            entry = totals[(row.day, row.status, row.currency)]
            entry[0] += row.count
            entry[1] += row.amount
    return {key: (c, a) for key, (c, a) in totals.items() if c or a}


def assert_rollup_matches() -> None:
    expected, actual = recomputed(), rolled_up()
    assert actual == expected, f"rollup {actual} != payments {expected}"
