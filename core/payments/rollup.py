"""The daily payment rollup (PaymentDaily): count and amount of payments per local creation day,
status and currency, kept up to date in the transaction that changes a payment, so the
console's totals read a few hundred rows instead of aggregating every payment per view.

One function, `_record_changes`, keeps it: SQLAlchemy calls it after every flush of every
Session, and it moves each payment that was created, deleted, or changed in status, amount or
currency from its old row to its new one. Hooking the flush instead of calling a helper from
each handler means no path can forget it (webhooks, link expiry, disputes, refunds, the demo,
anything added later); the writes run inside the flush's transaction, so a rollback — also of a
savepoint — takes them back too.

Rows of one day are split in `SHARDS` by the checkout session id: concurrent webhooks of one
day (on Postgres, several processes) then rarely wait on the same row lock. Readers sum the
shards. Bulk inserts bypass the ORM; after one, call `rebuild` (as bench/bench_console.py does).
The day is the local date in the business zone (TIMEZONE); after changing TIMEZONE, run
`python -m core rebuild-payment-totals`.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, delete, event, func, inspect, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, UOWTransaction

from core.config import get_settings
from core.models import Payment, PaymentDaily

SHARDS = 8

Key = tuple[date, str, str, int]  # day, status, currency, shard
_TRACKED = ("status", "amount", "currency", "created_at", "checkout_session_id")


def shard_of(checkout_session_id: str) -> int:
    return zlib.crc32(checkout_session_id.encode()) % SHARDS


def _key(created_at: datetime, status: str, currency: str | None, session_id: str, tz: ZoneInfo) -> Key:
    if created_at.tzinfo is None:
        created_at = created_at.replace(tzinfo=UTC)
    return (created_at.astimezone(tz).date(), str(status), (currency or "eur").lower(), shard_of(session_id))


def _current(payment: Payment, tz: ZoneInfo) -> tuple[Key, int]:
    return _key(
        payment.created_at, payment.status, payment.currency, payment.checkout_session_id, tz
    ), payment.amount or 0


def _before(payment: Payment, tz: ZoneInfo) -> tuple[Key, int] | None:
    """The payment's values as the database holds them (before this flush), from the attribute
    history; None when nothing the rollup counts changed."""
    state = inspect(payment)
    old: dict[str, Any] = {}
    changed = False
    for name in _TRACKED:
        history = state.attrs[name].history
        if history.deleted:
            old[name] = history.deleted[0]
            changed = True
        elif history.unchanged:
            old[name] = history.unchanged[0]
        elif history.added:  # set without the old value loaded: read the row
            changed = True
            old = {}
            break
        else:
            old[name] = getattr(payment, name)
    if not changed:
        return None
    if len(old) != len(_TRACKED):
        table = Payment.__table__  # type: ignore[attr-defined]
        session = state.session
        assert session is not None  # a flushed object belongs to a session
        query = select(*(table.c[n] for n in _TRACKED)).where(table.c.id == payment.id)
        old = dict(zip(_TRACKED, session.connection().execute(query).one(), strict=True))
    return _key(old["created_at"], old["status"], old["currency"], old["checkout_session_id"], tz), old[
        "amount"
    ] or 0


def _record_changes(session: Session, flush: UOWTransaction) -> None:
    deltas: dict[Key, list[int]] = defaultdict(lambda: [0, 0])
    tz: ZoneInfo | None = None
    for obj in (*session.new, *session.dirty, *session.deleted):
        if not isinstance(obj, Payment):
            continue
        tz = tz or get_settings().tz
        if obj in session.new:
            key, amount = _current(obj, tz)
            deltas[key][0] += 1
            deltas[key][1] += amount
            continue
        before = _before(obj, tz)
        if obj in session.deleted:
            before = before or _current(obj, tz)
        elif before is None:
            continue
        old_key, old_amount = before
        deltas[old_key][0] -= 1
        deltas[old_key][1] -= old_amount
        if obj not in session.deleted:
            key, amount = _current(obj, tz)
            deltas[key][0] += 1
            deltas[key][1] += amount
    changes = {k: v for k, v in deltas.items() if v != [0, 0]}
    if changes:
        add(session.connection(), changes)


def add(connection: Connection, deltas: dict[Key, list[int]]) -> None:
    """Add (count, amount) deltas to rollup rows, creating them as needed: one multi-row upsert
    (a payment's move is two rows), in key order so two transactions lock shared rows in the
    same order."""
    table = PaymentDaily.__table__  # type: ignore[attr-defined]
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table).values(
        [
            {"day": day, "status": status, "currency": currency, "shard": shard, "count": n, "amount": a}
            for (day, status, currency, shard), (n, a) in sorted(deltas.items())
        ]
    )
    connection.execute(
        stmt.on_conflict_do_update(
            index_elements=["day", "status", "currency", "shard"],
            set_={
                "count": table.c.count + stmt.excluded.count,
                "amount": table.c.amount + stmt.excluded.amount,
            },
        )
    )


def _hour_bucket(connection: Connection, column: Any) -> Any:
    if connection.dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d %H", column)
    return cast(func.to_char(func.date_trunc("hour", column), "YYYY-MM-DD HH24"), String)


def rebuild(connection: Connection, tz: ZoneInfo | None = None) -> int:
    """Recompute the whole rollup from the payment table (after a bulk insert, a TIMEZONE
    change, or to repair): SQL groups by UTC hour, the hours fold into local days here (exact
    for zones with whole-hour offsets). Returns the number of rows written."""
    tz = tz or get_settings().tz
    payment = Payment.__table__  # type: ignore[attr-defined]
    bucket = _hour_bucket(connection, payment.c.created_at).label("bucket")
    rows = connection.execute(
        select(
            bucket,
            payment.c.status,
            payment.c.currency,
            func.count(),
            func.coalesce(func.sum(payment.c.amount), 0),
        ).group_by(bucket, payment.c.status, payment.c.currency)
    ).all()
    totals: dict[Key, list[int]] = defaultdict(lambda: [0, 0])
    for hour, status, currency, count, amount in rows:
        day = datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC).astimezone(tz).date()
        entry = totals[(day, str(status), (currency or "eur").lower(), 0)]
        entry[0] += count
        entry[1] += int(amount or 0)
    connection.execute(delete(PaymentDaily.__table__))  # type: ignore[attr-defined]
    if totals:
        connection.execute(
            PaymentDaily.__table__.insert(),  # type: ignore[attr-defined]
            [
                {"day": d, "status": s, "currency": c, "shard": sh, "count": n, "amount": a}
                for (d, s, c, sh), (n, a) in sorted(totals.items())
            ],
        )
    return len(totals)


event.listen(Session, "after_flush", _record_changes)
