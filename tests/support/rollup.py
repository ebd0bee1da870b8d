"""The payment rollups' invariant, shared by the property test and the lifecycle state machine:
PaymentDaily (by creation day) and PaymentPaidDaily (by the day the money came in), summed over
their shards, equal the totals recomputed from the payment table."""

from __future__ import annotations

from collections import defaultdict

from sqlmodel import select

from core.config import get_settings
from core.db import read_session
from core.models import Payment, PaymentDaily, PaymentPaidDaily


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


def recomputed_paid() -> dict[tuple, tuple[int, int, int]]:
    """Per local day of paid_at and currency: payments paid, their amount, what was refunded."""
    tz = get_settings().tz
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    with read_session() as session:
        for paid_at, currency, amount, refunded in session.exec(
            select(Payment.paid_at, Payment.currency, Payment.amount, Payment.refunded_amount).where(
                Payment.paid_at.is_not(None)  # type: ignore[union-attr]
            )
        ).all():
            entry = totals[(paid_at.astimezone(tz).date(), (currency or "eur").lower())]
            entry[0] += 1
            entry[1] += amount or 0
            entry[2] += refunded or 0
    return {key: (c, a, r) for key, (c, a, r) in totals.items()}


def rolled_up_paid() -> dict[tuple, tuple[int, int, int]]:
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0, 0])
    with read_session() as session:
        for row in session.exec(select(PaymentPaidDaily)).all():
            entry = totals[(row.day, row.currency)]
            entry[0] += row.count
            entry[1] += row.amount
            entry[2] += row.refunded_amount
    return {key: (c, a, r) for key, (c, a, r) in totals.items() if c or a or r}


def assert_rollup_matches() -> None:
    expected, actual = recomputed(), rolled_up()
    assert actual == expected, f"rollup {actual} != payments {expected}"
    expected_paid, actual_paid = recomputed_paid(), rolled_up_paid()
    assert actual_paid == expected_paid, f"paid rollup {actual_paid} != payments {expected_paid}"
