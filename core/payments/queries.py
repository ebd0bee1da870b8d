"""Reads of payments for the console: filtered, paginated and totalled in SQL, plus what needs
finance's attention (paid payments whose lesson is gone, Stripe events whose handling failed).

The console must stay fast with 500,000 payments: filters become WHERE clauses on indexed columns,
pages use LIMIT/OFFSET on the (created_at, id) order; counts and totals come from the daily
rollup (PaymentDaily) unless a text search asks for what only the payment rows know. Dates in filters are
local dates in the business zone. Every function takes the caller's session; none of them writes.
The console's reads return frozen dataclasses (their fields named like the columns they come from);
the CSV export returns dicts keyed by column name.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Select, String, cast, false, func, literal, literal_column, or_
from sqlmodel import Session, col, select

from core.models import Contact, Lesson, Payment, PaymentDaily, StripeEvent, stored_id
from core.paging import (
    DEFAULT_PAGE_SIZE,
    EXPORT_LIMIT,
    PageResult,
    clamp_page,
    like_pattern,
    local_bounds,
    page_bounds,
    week_monday,
)
from core.payments.rollup import kept_in

_Q = TypeVar("_Q", bound=Select)


# What a text search matches on PostgreSQL, and the expression of its trigram index (migration
# 0017 writes the same text): the four ids joined by the unit separator, lower case.
SEARCH_TEXT_SQL = (
    "lower(checkout_session_id || chr(31) || order_id || chr(31) || coalesce(payment_intent_id, '')"
    " || chr(31) || coalesce(contact_id, ''))"
)


@dataclass(frozen=True)
class PaymentFilter:
    date_from: date | None = None  # local dates of created_at, inclusive
    date_to: date | None = None
    statuses: tuple[str, ...] = ()
    query: str | None = None  # checkout session id, order id or payment intent id


def _payment_where(stmt: _Q, f: PaymentFilter, tz: ZoneInfo, session: Session) -> _Q:
    lo, hi = local_bounds(f.date_from, f.date_to, tz)
    if lo is not None:
        stmt = stmt.where(col(Payment.created_at) >= lo)
    if hi is not None:
        stmt = stmt.where(col(Payment.created_at) < hi)
    if f.statuses:
        stmt = stmt.where(col(Payment.status).in_(list(f.statuses)))
    if f.query and f.query.strip():
        # A substring of any of the ids, in any case (docs/DECISIONS.md, "Payment search").
        pattern = like_pattern(f.query)
        if session.get_bind().dialect.name == "postgresql":
            # The ids joined by a character nobody types: a pattern without it matches the
            # joined text exactly when it matches one of the ids, and this expression is the one
            # the trigram index ix_payment_search_trgm is built on (migration 0017).
            if "\x1f" in f.query:  # no id holds it
                return stmt.where(false())
            return stmt.where(literal_column(SEARCH_TEXT_SQL).like(pattern, escape="\\"))
        # SQLite's LIKE already ignores ASCII case, and its lower() folds nothing else, so lower()
        # would only cost a function call per payment scanned. The ids are in ix_payment_search
        # after created_at: matched there, only the matching rows are read (~5x faster for a
        # month of 41,000 payments); without statistics SQLite would take the narrower
        # ix_payment_created_at and read every row of the period.
        stmt = stmt.with_hint(Payment, "INDEXED BY ix_payment_search", "sqlite").where(
            or_(
                *(
                    column.like(pattern, escape="\\")
                    for column in (
                        col(Payment.checkout_session_id),
                        col(Payment.order_id),
                        col(Payment.payment_intent_id),
                        col(Payment.contact_id),
                    )
                )
            )
        )
    return stmt


@dataclass(frozen=True, slots=True)
class PaymentRow:
    """One payment in the console's table (the columns of _PAYMENT_COLUMNS)."""

    id: int
    created_at: datetime
    status: str
    amount: int | None  # cents
    currency: str | None
    minutes: int
    segment: str | None
    order_id: str
    checkout_session_id: str
    payment_intent_id: str | None
    lesson_id: int | None
    contact_id: str | None
    expires_at: datetime | None
    paid_at: datetime | None
    refunded_amount: int  # cents
    kind: str  # lesson | bundle
    quantity: int
    invoice_url: str | None


@dataclass(frozen=True, slots=True)
class PaymentTotal:
    """Count and amount of one status in one currency on one local day (or ISO week)."""

    period: date  # the local day, or the Monday of the week
    status: str
    currency: str
    count: int
    amount: int  # cents


@dataclass(frozen=True, slots=True)
class StatusTotal:
    count: int
    amount: int  # cents


@dataclass(frozen=True, slots=True)
class RefundCase:
    """A paid payment whose lesson was cancelled or expired."""

    id: int  # the payment
    checkout_session_id: str
    payment_intent_id: str | None
    amount: int | None
    currency: str | None
    paid_at: datetime | None
    lesson_id: int
    start: datetime
    lesson_status: str
    cancel_reason: str | None
    contact_name: str | None


@dataclass(frozen=True, slots=True)
class FailedEvent:
    """A Stripe event whose handling failed, without its raw payload."""

    id: str
    type: str
    received_at: datetime
    attempts: int
    error: str | None


@dataclass(frozen=True, slots=True)
class OpenDispute:
    payment_id: int
    checkout_session_id: str
    amount: int | None
    currency: str | None
    dispute_status: str | None
    due_by: datetime | None
    lesson_id: int | None
    lesson_start: datetime | None
    lesson_status: str | None


_PAYMENT_COLUMNS = (
    Payment.id,
    Payment.created_at,
    Payment.status,
    Payment.amount,
    Payment.currency,
    Payment.minutes,
    Payment.segment,
    Payment.order_id,
    Payment.checkout_session_id,
    Payment.payment_intent_id,
    Payment.lesson_id,
    Payment.contact_id,
    Payment.expires_at,
    Payment.paid_at,
    Payment.refunded_amount,
    Payment.kind,
    Payment.quantity,
    Payment.invoice_url,
)


def payments_page(
    session: Session, f: PaymentFilter, tz: ZoneInfo, page: int = 1, page_size: int = DEFAULT_PAGE_SIZE
) -> PageResult[PaymentRow]:
    """One page of payments, newest first."""
    page, page_size = page_bounds(page, page_size)
    total = payment_count(session, f, tz)
    page = clamp_page(page, page_size, total)
    rows = session.execute(
        # sqlmodel's select() is typed for at most four columns
        _payment_where(select(*_PAYMENT_COLUMNS), f, tz, session)  # type: ignore[call-overload]
        .order_by(col(Payment.created_at).desc(), col(Payment.id).desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return PageResult([PaymentRow(**r._mapping) for r in rows], total, page, page_size)


def payments_export(
    session: Session, f: PaymentFilter, tz: ZoneInfo, limit: int = EXPORT_LIMIT
) -> list[dict[str, Any]]:
    rows = session.execute(
        # sqlmodel's select() is typed for at most four columns
        _payment_where(select(*_PAYMENT_COLUMNS), f, tz, session)  # type: ignore[call-overload]
        .order_by(col(Payment.created_at).desc(), col(Payment.id).desc())
        .limit(limit)
    ).all()
    return [dict(r._mapping) for r in rows]


def _hour_bucket(session: Session, column: Any) -> Any:
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d %H", column)
    return cast(func.to_char(func.date_trunc("hour", column), "YYYY-MM-DD HH24"), String)


def _from_rollup(f: PaymentFilter, tz: ZoneInfo) -> bool:
    """The rollup answers every filter but a text search, for the business zone it is kept in."""
    return not (f.query and f.query.strip()) and kept_in(tz)


def _rollup_rows(
    session: Session, f: PaymentFilter, *, by_day: bool = True
) -> list[tuple[Any, str, str, int, int]]:
    """(day, status, currency, count, amount) from PaymentDaily, shards summed, empty rows left
    out; without `by_day` one row per status and currency (day None)."""
    day = col(PaymentDaily.day) if by_day else literal(None)
    stmt = select(
        day,
        PaymentDaily.status,
        PaymentDaily.currency,
        func.sum(col(PaymentDaily.count)),
        func.sum(col(PaymentDaily.amount)),  # type: ignore[call-overload]
    )
    if f.date_from is not None:
        stmt = stmt.where(col(PaymentDaily.day) >= f.date_from)
    if f.date_to is not None:
        stmt = stmt.where(col(PaymentDaily.day) <= f.date_to)
    if f.statuses:
        stmt = stmt.where(col(PaymentDaily.status).in_(list(f.statuses)))
    groups = [col(PaymentDaily.status), col(PaymentDaily.currency)]
    stmt = stmt.group_by(*([col(PaymentDaily.day)] if by_day else []), *groups)
    return [(d, s, c, int(n), int(a or 0)) for d, s, c, n, a in session.exec(stmt).all() if n]


def payment_count(session: Session, f: PaymentFilter, tz: ZoneInfo) -> int:
    """How many payments match: from the rollup when it can answer, else COUNT(*)."""
    if _from_rollup(f, tz):
        return sum(row[3] for row in _rollup_rows(session, f, by_day=False))
    return session.exec(_payment_where(select(func.count(col(Payment.id))), f, tz, session)).one()


def payment_totals(
    session: Session, f: PaymentFilter, tz: ZoneInfo, period: str = "day"
) -> list[PaymentTotal]:
    """Count and amount per local day (or ISO week, Monday) and status, by creation time.

    Read from the daily rollup (PaymentDaily, core/payments/rollup.py): a few rows per day,
    whatever the number of payments. A text search cannot use it; then SQL groups the matching
    payments by UTC hour (at most 24 groups per day) and the hours are folded into local days
    here because SQLite knows no time zones (exact for whole-hour offsets, which includes the
    business zone). Creation time is used because a Checkout Session lives at most a day.
    """
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    if _from_rollup(f, tz):
        for day, status, currency, count, amount in _rollup_rows(session, f):
            key_day = week_monday(day) if period == "week" else day
            entry = totals[(key_day, status, currency)]
            entry[0] += count
            entry[1] += amount
    else:
        for hour, status, currency, count, amount in _hourly_totals(session, f, tz):
            local_day = datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC).astimezone(tz).date()
            key_day = week_monday(local_day) if period == "week" else local_day
            entry = totals[(key_day, status, (currency or "eur").lower())]
            entry[0] += count
            entry[1] += int(amount or 0)
    return [
        PaymentTotal(period=day, status=status, currency=currency, count=c, amount=a)
        for (day, status, currency), (c, a) in sorted(totals.items())
    ]


def _hourly_totals(session: Session, f: PaymentFilter, tz: ZoneInfo) -> list[Any]:
    bucket = _hour_bucket(session, col(Payment.created_at)).label("bucket")
    stmt = _payment_where(
        # sqlmodel's select() is typed for at most four columns; the rows are unpacked by the caller.
        select(
            bucket,
            Payment.status,
            Payment.currency,  # type: ignore[call-overload]
            func.count(col(Payment.id)),
            func.coalesce(func.sum(col(Payment.amount)), 0),
        ),
        f,
        tz,
        session,
    ).group_by(bucket, col(Payment.status), col(Payment.currency))
    return [row for row in session.exec(stmt).all() if row[0] is not None]


def payment_status_counts(session: Session, f: PaymentFilter, tz: ZoneInfo) -> dict[str, StatusTotal]:
    """Count and amount per status: from the rollup when it can answer, else GROUP BY."""
    if _from_rollup(f, tz):
        counts: dict[str, list[int]] = {}
        for _, status, _, count, amount in _rollup_rows(session, f, by_day=False):
            entry = counts.setdefault(status, [0, 0])
            entry[0] += count
            entry[1] += amount
        return {status: StatusTotal(count=c, amount=a) for status, (c, a) in counts.items()}
    stmt = _payment_where(
        select(Payment.status, func.count(col(Payment.id)), func.coalesce(func.sum(col(Payment.amount)), 0)),
        f,
        tz,
        session,
    ).group_by(col(Payment.status))
    return {status: StatusTotal(count=c, amount=int(a or 0)) for status, c, a in session.exec(stmt).all()}


def paid_but_cancelled(session: Session, limit: int = 200) -> list[RefundCase]:
    """Paid payments whose lesson was cancelled or expired: money kept without a lesson, to be
    refunded in Stripe (the charge.refunded webhook then marks the payment refunded). A
    rescheduled lesson is not listed: its payment moved to the new lesson. Newest lesson change
    first (ties: the older payment first).

    Starts from the lessons, not from the paid payments (most of a large table): it walks
    `ix_lesson_updated_at_status` newest change first, reads the status from the index, finds a
    paid payment of a cancelled or expired lesson in `ix_payment_lesson_id_status` and stops at
    `limit`. SQLite, which has no statistics, is told to (INDEXED BY): left alone it starts from
    `ix_payment_status`, every paid payment. The index leads with updated_at so that the many
    queries of "lessons in status X" keep using `ix_lesson_status`.
    """
    rows = session.execute(
        # sqlmodel's select() is typed for at most four columns (and mypy gives up on the unions)
        select(
            Payment.id,
            Payment.checkout_session_id,
            Payment.payment_intent_id,  # type: ignore[call-overload, misc]
            Payment.amount,
            Payment.currency,
            Payment.paid_at,
            col(Lesson.id).label("lesson_id"),
            Lesson.start,
            col(Lesson.status).label("lesson_status"),
            Lesson.cancel_reason,
            col(Contact.name).label("contact_name"),
        )
        .select_from(Lesson)
        .with_hint(Lesson, "INDEXED BY ix_lesson_updated_at_status", "sqlite")
        .join(Payment, col(Payment.lesson_id) == col(Lesson.id))
        .join(Contact, col(Contact.id) == col(Lesson.contact_id), isouter=True)
        .where(Payment.status == "paid", col(Lesson.status).in_(("cancelled", "expired")))
        .order_by(col(Lesson.updated_at).desc(), col(Payment.id))
        .limit(limit)
    ).all()
    return [RefundCase(**r._mapping) for r in rows]


def failed_events(session: Session, limit: int = 100) -> list[FailedEvent]:
    """Stripe events whose handling failed (newest first), without their raw payload."""
    rows = session.execute(
        # sqlmodel's select() is typed for at most four columns
        select(
            StripeEvent.id,
            StripeEvent.type,
            StripeEvent.received_at,  # type: ignore[call-overload]
            StripeEvent.attempts,
            StripeEvent.error,
        )
        .where(StripeEvent.status == "failed")
        .order_by(col(StripeEvent.received_at).desc())
        .limit(limit)
    ).all()
    return [FailedEvent(**r._mapping) for r in rows]


def open_disputes(session: Session, limit: int = 100) -> list[OpenDispute]:
    """Disputed payments with their lesson and evidence due date, soonest due first."""
    rows = session.exec(
        select(Payment, Lesson)
        .join(Lesson, col(Lesson.id) == col(Payment.lesson_id), isouter=True)
        .where(Payment.status == "disputed")
        .order_by(col(Payment.dispute_due_by))
        .limit(limit)
    ).all()
    return [
        OpenDispute(
            payment_id=stored_id(p),
            checkout_session_id=p.checkout_session_id,
            amount=p.amount,
            currency=p.currency,
            dispute_status=p.dispute_status,
            due_by=p.dispute_due_by,
            lesson_id=p.lesson_id,
            lesson_start=lesson.start if lesson is not None else None,
            lesson_status=lesson.status if lesson is not None else None,
        )
        for p, lesson in rows
    ]
