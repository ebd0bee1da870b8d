"""The payment rollups: totals per local day, kept up to date in the transaction that changes a
payment, so the console reads a few hundred rows instead of aggregating every payment per view.

- PaymentDaily: count and amount of payments per local *creation* day, status and currency (the
  Betalingen cards, chart and table count).
- PaymentPaidDaily: count, amount and refunded amount of payments per local day of *payment*
  and currency (Insights' revenue).

One function, `_record_changes`, keeps both: SQLAlchemy calls it after every flush of every
Session, and it moves each payment that was created, deleted, or changed in a column a rollup
counts from its old row to its new one. Hooking the flush instead of calling a helper from each
handler means no path can forget it (webhooks, link expiry, disputes, refunds, the demo, anything
added later); the writes run inside the flush's transaction, so a rollback — also of a savepoint
— takes them back too.

Rows of one day are split in `SHARDS` by the checkout session id: concurrent webhooks of one
day (on Postgres, several processes) then rarely wait on the same row lock. Readers sum the
shards. Bulk inserts bypass the ORM; after one, call `rebuild` (as bench/bench_console.py does).
The day is the local date in the business zone (TIMEZONE); after changing TIMEZONE, run
`python -m core rebuild-payment-totals`.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, tzinfo
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, delete, event, func, inspect, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, UOWTransaction

from core.config import get_settings
from core.models import Payment, PaymentDaily, PaymentPaidDaily

SHARDS = 8

Key = tuple[Any, ...]  # the rollup row's primary key: the day first, the shard last
Values = Mapping[str, Any]  # a payment's columns that a rollup reads


def shard_of(checkout_session_id: str) -> int:
    return zlib.crc32(checkout_session_id.encode()) % SHARDS


def kept_in(tz: tzinfo | None) -> bool:
    """Whether the rollups count days in this zone: only in the business zone (TIMEZONE); a reader
    asked for another zone counts the payments themselves."""
    return getattr(tz, "key", None) == get_settings().timezone


def _local_day(at: datetime, tz: ZoneInfo) -> date:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(tz).date()


@dataclass(frozen=True)
class Rollup:
    """One rollup table. A payment counts in the row of the local date of its `day` column (in
    none while that is null) and its `labels`; the row adds up how many payments (`count`) and
    their `sums`, in columns of the same names."""

    model: Any
    day: str
    labels: tuple[str, ...]
    sums: tuple[str, ...]

    @property
    def columns(self) -> tuple[str, ...]:
        return (self.day, *self.labels, *self.sums, "checkout_session_id")

    @property
    def key_names(self) -> tuple[str, ...]:
        return ("day", *self.labels, "shard")

    @property
    def measures(self) -> tuple[str, ...]:
        return ("count", *self.sums)

    def key(self, values: Values, tz: ZoneInfo) -> Key | None:
        if values[self.day] is None:
            return None
        labels = (_label(name, values[name]) for name in self.labels)
        return (_local_day(values[self.day], tz), *labels, shard_of(values["checkout_session_id"]))

    def add(self, values: Values) -> tuple[int, ...]:
        return (1, *(values[name] or 0 for name in self.sums))


def _label(name: str, value: Any) -> str:
    return (value or "eur").lower() if name == "currency" else str(value)


CREATED = Rollup(PaymentDaily, "created_at", ("status", "currency"), ("amount",))
PAID = Rollup(PaymentPaidDaily, "paid_at", ("currency",), ("amount", "refunded_amount"))
ROLLUPS = (CREATED, PAID)
_TRACKED = tuple(dict.fromkeys(name for r in ROLLUPS for name in r.columns))


def _current(payment: Payment) -> dict[str, Any]:
    return {name: getattr(payment, name) for name in _TRACKED}


def _before(payment: Payment) -> dict[str, Any] | None:
    """The payment's columns as the database holds them (before this flush), from the attribute
    history; None when nothing a rollup counts changed."""
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
    return old


def _record_changes(session: Session, flush: UOWTransaction) -> None:
    moves: list[tuple[Values | None, Values | None]] = []  # (before, after) per changed payment
    for obj in (*session.new, *session.dirty, *session.deleted):
        if not isinstance(obj, Payment):
            continue
        if obj in session.new:
            moves.append((None, _current(obj)))
        elif obj in session.deleted:
            moves.append((_before(obj) or _current(obj), None))
        elif (old := _before(obj)) is not None:
            moves.append((old, _current(obj)))
    if not moves:
        return
    tz = get_settings().tz
    for rollup in ROLLUPS:
        deltas: dict[Key, list[int]] = {}
        for before, after in moves:
            for values, sign in ((before, -1), (after, 1)):
                if values is None or (key := rollup.key(values, tz)) is None:
                    continue
                entry = deltas.setdefault(key, [0] * len(rollup.measures))
                for i, n in enumerate(rollup.add(values)):
                    entry[i] += sign * n
        changes = {k: v for k, v in deltas.items() if any(v)}
        if changes:
            add(session.connection(), rollup, changes)


def add(connection: Connection, rollup: Rollup, deltas: dict[Key, list[int]]) -> None:
    """Add deltas to rollup rows, creating them as needed: one multi-row upsert (a payment's move
    is two rows), in key order so two transactions lock shared rows in the same order."""
    table = rollup.model.__table__
    insert = pg_insert if connection.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table).values([_row(rollup, key, sums) for key, sums in sorted(deltas.items())])
    connection.execute(
        stmt.on_conflict_do_update(
            index_elements=list(rollup.key_names),
            set_={name: table.c[name] + stmt.excluded[name] for name in rollup.measures},
        )
    )


def _hour_bucket(connection: Connection, column: Any) -> Any:
    if connection.dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d %H", column)
    return cast(func.to_char(func.date_trunc("hour", column), "YYYY-MM-DD HH24"), String)


def rebuild(connection: Connection, tz: ZoneInfo | None = None) -> int:
    """Recompute the rollups from the payment table (after a bulk insert, a TIMEZONE change, or
    to repair): SQL groups by UTC hour, the hours fold into local days here (exact for zones with
    whole-hour offsets). Returns the number of rows written."""
    tz = tz or get_settings().tz
    payment = Payment.__table__  # type: ignore[attr-defined]
    written = 0
    for rollup in ROLLUPS:
        bucket = _hour_bucket(connection, payment.c[rollup.day]).label("bucket")
        labels = [payment.c[name] for name in rollup.labels]
        sums = [func.coalesce(func.sum(payment.c[name]), 0) for name in rollup.sums]
        query = (
            select(bucket, *labels, func.count(), *sums)
            .where(payment.c[rollup.day].is_not(None))
            .group_by(bucket, *labels)
        )
        totals: dict[Key, list[int]] = {}
        for hour, *row in connection.execute(query).all():
            day = datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC).astimezone(tz).date()
            key = (day, *(_label(n, v) for n, v in zip(rollup.labels, row, strict=False)), 0)
            entry = totals.setdefault(key, [0] * len(rollup.measures))
            for i, n in enumerate(row[len(rollup.labels) :]):
                entry[i] += int(n or 0)
        table = rollup.model.__table__
        connection.execute(delete(table))
        if totals:
            connection.execute(
                table.insert(), [_row(rollup, key, sums) for key, sums in sorted(totals.items())]
            )
        written += len(totals)
    return written


def _row(rollup: Rollup, key: Key, sums: list[int]) -> dict[str, Any]:
    return dict(zip((*rollup.key_names, *rollup.measures), (*key, *sums), strict=True))


event.listen(Session, "after_flush", _record_changes)
