"""Reads of lessons for the console: filtered, paginated and joined in SQL (tutor, contact and the
newest payment of each lesson on the page in one IN (...) query), the detail of one lesson, and the
lessons that need staff attention (holds about to expire, paid lessons that lost their slot).

The console must stay fast with 20,000 lessons, so nothing here loads a whole table into Python.
Dates in filters are local dates in the business zone. Every function takes the caller's session;
none of them writes; they return frozen dataclasses whose fields are named like the columns they
come from (the CSV export returns dicts keyed by those names). Kept apart from core/lessons.py (the
lesson lifecycle), which would pass 600 lines with them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Select, func, or_
from sqlmodel import Session, col, select

from core import credits
from core.errors import NotFound
from core.models import CONFIRMED, HELD, NEEDS_RESCHEDULE, Contact, Lesson, Payment, Tutor, stored_id
from core.paging import (
    DEFAULT_PAGE_SIZE,
    EXPORT_LIMIT,
    PageResult,
    clamp_page,
    like_pattern,
    local_bounds,
    page_bounds,
)
from core.tutors import tutor_ids_for_email

_Q = TypeVar("_Q", bound=Select)
_Row = TypeVar("_Row")


@dataclass(frozen=True)
class LessonFilter:
    date_from: date | None = None  # local dates, inclusive
    date_to: date | None = None
    tutor_id: int | None = None
    statuses: tuple[str, ...] = ()
    profile: str | None = None
    query: str | None = None  # contact name, e-mail, phone or id
    # Set for a tutor: only lessons of tutors with this e-mail (their own calendar).
    own_email: str | None = None


def _lesson_where(session: Session, stmt: _Q, f: LessonFilter, tz: ZoneInfo) -> _Q | None:
    lo, hi = local_bounds(f.date_from, f.date_to, tz)
    if lo is not None:
        stmt = stmt.where(col(Lesson.start) >= lo)
    if hi is not None:
        stmt = stmt.where(col(Lesson.start) < hi)
    if f.own_email is not None:
        own = tutor_ids_for_email(session, f.own_email)
        if not own:
            return None
        stmt = stmt.where(col(Lesson.tutor_id).in_(own))
    if f.tutor_id is not None:
        stmt = stmt.where(col(Lesson.tutor_id) == f.tutor_id)
    if f.statuses:
        stmt = stmt.where(col(Lesson.status).in_(list(f.statuses)))
    if f.profile:
        stmt = stmt.where(col(Lesson.profile_name) == f.profile)
    if f.query and f.query.strip():
        pattern = like_pattern(f.query)
        stmt = stmt.where(
            or_(
                func.lower(col(Contact.name)).like(pattern, escape="\\"),
                func.lower(col(Contact.email)).like(pattern, escape="\\"),
                col(Contact.phone).like(pattern, escape="\\"),
                func.lower(col(Contact.id)).like(pattern, escape="\\"),
            )
        )
    return stmt


@dataclass(frozen=True, slots=True)
class LessonRow:
    """A lesson in the console's table: the columns of _LESSON_COLUMNS and its newest payment."""

    id: int
    start: datetime
    end: datetime
    status: str
    profile_name: str
    tutor_id: int
    contact_id: str
    conversation_id: str
    title: str
    hold_expires_at: datetime | None
    calendar_event_id: str | None
    calendar_sync: str | None
    invite_sent: bool | None
    cancel_reason: str | None
    tutor_name: str
    contact_name: str | None
    # The newest payment (None when the lesson has none).
    payment_id: int | None
    payment_status: str | None
    amount: int | None
    currency: str | None
    checkout_session_id: str | None
    # A weekly series' lesson: its series and place in it ("reeks 2/5"); its payment is the series'.
    series_id: int | None = None
    series_pos: int | None = None
    series_total: int | None = None


@dataclass(frozen=True, slots=True)
class HeldLesson:
    """A held lesson waiting for payment, with its newest payment."""

    id: int
    start: datetime
    hold_expires_at: datetime | None
    profile_name: str
    contact_name: str | None
    tutor_name: str
    payment_id: int | None
    payment_status: str | None
    amount: int | None
    currency: str | None
    checkout_session_id: str | None


@dataclass(frozen=True, slots=True)
class RescheduleCase:
    """A paid lesson that lost its slot, with its newest payment."""

    id: int
    start: datetime
    updated_at: datetime
    profile_name: str
    conversation_id: str
    contact_name: str | None
    tutor_name: str
    payment_id: int | None
    payment_status: str | None
    amount: int | None
    currency: str | None
    checkout_session_id: str | None


@dataclass(frozen=True, slots=True)
class UnmarkedLesson:
    id: int
    start: datetime
    end: datetime
    contact_name: str | None


@dataclass(frozen=True, slots=True)
class LessonFacts:
    """The lesson itself, as the detail shows it."""

    id: int
    status: str
    start: datetime
    end: datetime
    tutor_id: int
    contact_id: str
    conversation_id: str
    profile_name: str
    title: str
    description: str
    hold_expires_at: datetime | None
    calendar_event_id: str | None
    calendar_sync: str | None
    invite_sent: bool | None  # None: no invite attempted; True: sent; False: refused
    calendar_note: str | None
    cancel_reason: str | None
    outcome: str | None
    series_id: int | None = None


@dataclass(frozen=True, slots=True)
class LessonContact:
    id: str
    name: str | None
    phone: str | None
    email: str | None


@dataclass(frozen=True, slots=True)
class LessonPayment:
    id: int
    checkout_session_id: str
    status: str
    amount: int | None
    currency: str | None
    created_at: datetime
    paid_at: datetime | None


@dataclass(frozen=True, slots=True)
class SeriesLesson:
    """One lesson of the weekly series a lesson belongs to."""

    id: int
    start: datetime
    end: datetime
    status: str


@dataclass(frozen=True, slots=True)
class LessonDetail:
    """Everything the console shows about one lesson."""

    lesson: LessonFacts
    tutor_name: str | None
    contact: LessonContact | None
    payments: list[LessonPayment]
    paid_by_credit: bool
    credit_returned: bool
    series: list[SeriesLesson]  # the lesson's weekly series, in order; empty for a single lesson


_LESSON_COLUMNS: tuple[Any, ...] = (
    Lesson.id,
    Lesson.start,
    Lesson.end,
    Lesson.status,
    Lesson.profile_name,
    Lesson.tutor_id,
    Lesson.contact_id,
    Lesson.conversation_id,
    Lesson.title,
    Lesson.hold_expires_at,
    Lesson.calendar_event_id,
    Lesson.calendar_sync,
    Lesson.invite_sent,
    Lesson.cancel_reason,
    Lesson.series_id,
    col(Tutor.name).label("tutor_name"),
    col(Contact.name).label("contact_name"),
)


def _lesson_select(stmt: _Q) -> _Q:
    return stmt.join(Tutor, col(Tutor.id) == col(Lesson.tutor_id)).join(
        Contact, col(Contact.id) == col(Lesson.contact_id), isouter=True
    )


def _lesson_columns() -> Any:
    # sqlmodel's select() is typed for at most four columns: no precise type for sixteen, so the
    # rows are read by name (session.execute, Row._mapping).
    return _lesson_select(select(*_LESSON_COLUMNS))


def _latest_payments(session: Session, lesson_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The newest payment of each lesson, in one query."""
    if not lesson_ids:
        return {}
    rows = session.exec(
        # sqlmodel's select() is typed for at most four columns; the rows are unpacked below.
        select(
            Payment.lesson_id,
            Payment.id,
            Payment.status,
            Payment.amount,  # type: ignore[call-overload]
            Payment.currency,
            Payment.checkout_session_id,
        )
        .where(col(Payment.lesson_id).in_(list(lesson_ids)))
        .order_by(col(Payment.id))
    ).all()
    out: dict[int, dict[str, Any]] = {}
    for lesson_id, pid, status, amount, currency, session_id in rows:
        out[lesson_id] = {
            "payment_id": pid,
            "payment_status": status,
            "amount": amount,
            "currency": currency,
            "checkout_session_id": session_id,
        }
    return out


_NO_PAYMENT: dict[str, Any] = {
    "payment_id": None,
    "payment_status": None,
    "amount": None,
    "currency": None,
    "checkout_session_id": None,
}


def _lesson_rows(session: Session, rows: Sequence[Any], row_type: Callable[..., _Row]) -> list[_Row]:
    """`rows` (selected columns, named like `row_type`'s fields) with the newest payment of each
    and, when the series id was selected, the lesson's place in its series."""
    columns = [dict(r._mapping) for r in rows]
    payments = _latest_payments(session, [c["id"] for c in columns])
    for c in columns:
        c.update(payments.get(c["id"], _NO_PAYMENT))
    _add_series_positions(session, columns)
    return [row_type(**c) for c in columns]


def _add_series_positions(session: Session, rows: list[dict[str, Any]]) -> None:
    """A weekly series' lessons get `series_pos` / `series_total` ("reeks 2/5") and, having no
    payment of their own, the series' one payment; in two IN (...) queries for the page."""
    for r in rows:
        if "series_id" in r:
            r.update(series_pos=None, series_total=None)
    series_ids = sorted({r["series_id"] for r in rows if r.get("series_id") is not None})
    if not series_ids:
        return
    order: dict[int, list[int]] = {}
    for lesson_id, series_id in session.exec(
        select(Lesson.id, Lesson.series_id)
        .where(col(Lesson.series_id).in_(series_ids))
        .order_by(col(Lesson.start), col(Lesson.id))
    ).all():
        order.setdefault(int(series_id or 0), []).append(int(lesson_id or 0))
    paid = session.exec(
        select(Payment).where(col(Payment.series_id).in_(series_ids)).order_by(col(Payment.id))
    ).all()
    by_series = {p.series_id: p for p in paid}  # the newest wins
    for r in rows:
        ids = order.get(r.get("series_id") or -1)
        if ids and r["id"] in ids:
            r["series_pos"], r["series_total"] = ids.index(r["id"]) + 1, len(ids)
        p = by_series.get(r.get("series_id"))
        if p is not None and r.get("payment_id") is None:
            r.update(
                payment_id=p.id,
                payment_status=p.status,
                amount=p.amount,
                currency=p.currency,
                checkout_session_id=p.checkout_session_id,
            )


def lessons_page(
    session: Session, f: LessonFilter, tz: ZoneInfo, page: int = 1, page_size: int = DEFAULT_PAGE_SIZE
) -> PageResult[LessonRow]:
    """One page of lessons (ordered by start) with tutor, contact and newest payment."""
    page, page_size = page_bounds(page, page_size)
    # The count reads the lessons alone (a year of them from the start index, not 100,000 rows
    # joined): the tutor join matches exactly one row (tutor_id is a NOT NULL foreign key) and the
    # contact join is outer on its primary key, so neither adds or drops a lesson; only a text
    # search needs the contact.
    count_from = select(func.count(col(Lesson.id)))
    if f.query and f.query.strip():
        count_from = _lesson_select(count_from)
    count_stmt = _lesson_where(session, count_from, f, tz)
    if count_stmt is None:
        return PageResult([], 0, page, page_size)
    total = session.exec(count_stmt).one()
    page = clamp_page(page, page_size, total)
    stmt = _lesson_where(session, _lesson_columns(), f, tz)
    if stmt is None:  # the tutor's e-mail matched nobody on this second look
        return PageResult([], 0, page, page_size)
    rows = session.execute(
        stmt.order_by(col(Lesson.start), col(Lesson.id)).offset((page - 1) * page_size).limit(page_size)
    ).all()
    return PageResult(_lesson_rows(session, rows, LessonRow), total, page, page_size)


def lessons_export(
    session: Session, f: LessonFilter, tz: ZoneInfo, limit: int = EXPORT_LIMIT
) -> list[dict[str, Any]]:
    stmt = _lesson_where(session, _lesson_columns(), f, tz)
    if stmt is None:
        return []
    rows = session.execute(stmt.order_by(col(Lesson.start), col(Lesson.id)).limit(limit)).all()
    return [asdict(row) for row in _lesson_rows(session, rows, LessonRow)]


def lesson_detail(session: Session, lesson_id: int) -> LessonDetail:
    """Everything the console shows about one lesson: the lesson, its tutor, contact, payments."""
    lesson = session.get(Lesson, lesson_id)
    if lesson is None:
        raise NotFound(f"Lesson {lesson_id} does not exist.")
    tutor = session.get(Tutor, lesson.tutor_id)
    contact = session.get(Contact, lesson.contact_id)
    whose = col(Payment.lesson_id) == lesson_id
    if lesson.series_id is not None:  # a series lesson is paid by the series' one payment
        whose = or_(whose, col(Payment.series_id) == lesson.series_id)
    payments = session.exec(select(Payment).where(whose).order_by(col(Payment.id))).all()
    series = (
        session.exec(
            select(Lesson)
            .where(Lesson.series_id == lesson.series_id)
            .order_by(col(Lesson.start), col(Lesson.id))
        ).all()
        if lesson.series_id is not None
        else []
    )
    return LessonDetail(
        lesson=LessonFacts(
            id=stored_id(lesson),
            status=lesson.status,
            start=lesson.start,
            end=lesson.end,
            tutor_id=lesson.tutor_id,
            contact_id=lesson.contact_id,
            conversation_id=lesson.conversation_id,
            profile_name=lesson.profile_name,
            title=lesson.title,
            description=lesson.description,
            hold_expires_at=lesson.hold_expires_at,
            calendar_event_id=lesson.calendar_event_id,
            calendar_sync=lesson.calendar_sync,
            invite_sent=lesson.invite_sent,
            calendar_note=lesson.calendar_note,
            cancel_reason=lesson.cancel_reason,
            outcome=lesson.outcome,
            series_id=lesson.series_id,
        ),
        tutor_name=tutor.name if tutor else None,
        contact=LessonContact(contact.id, contact.name, contact.phone, contact.email) if contact else None,
        payments=[
            LessonPayment(
                id=stored_id(p),
                checkout_session_id=p.checkout_session_id,
                status=p.status,
                amount=p.amount,
                currency=p.currency,
                created_at=p.created_at,
                paid_at=p.paid_at,
            )
            for p in payments
        ],
        paid_by_credit=credits.paid_by_credit(session, lesson_id),
        credit_returned=credits.returned(session, lesson_id) is not None,
        series=[SeriesLesson(stored_id(x), x.start, x.end, x.status) for x in series],
    )


def unmarked_lessons(
    session: Session, now: datetime, own_email: str | None = None, limit: int = 20
) -> list[UnmarkedLesson]:
    """Confirmed lessons that ended without attendance marked, newest first; a tutor's own only
    when `own_email` is given."""
    conditions: list[ColumnElement[bool]] = [
        col(Lesson.status) == CONFIRMED,
        col(Lesson.end) <= now,
        col(Lesson.outcome).is_(None),
    ]
    if own_email is not None:
        conditions.append(col(Lesson.tutor_id).in_(tutor_ids_for_email(session, own_email) or [-1]))
    rows = session.exec(
        select(Lesson, Contact.name)
        .join(Contact, col(Contact.id) == col(Lesson.contact_id), isouter=True)
        .where(*conditions)
        .order_by(col(Lesson.start).desc())
        .limit(limit)
    ).all()
    return [UnmarkedLesson(stored_id(lesson), lesson.start, lesson.end, name) for lesson, name in rows]


def holds_expiring(
    session: Session, now: datetime, within: timedelta = timedelta(minutes=30), limit: int = 200
) -> list[HeldLesson]:
    """Held lessons whose hold ends within `within` (waiting for payment), soonest first."""
    rows = session.execute(
        # sqlmodel's select() is typed for at most four columns
        select(
            Lesson.id,
            Lesson.start,
            Lesson.hold_expires_at,  # type: ignore[call-overload]
            Lesson.profile_name,
            col(Contact.name).label("contact_name"),
            col(Tutor.name).label("tutor_name"),
        )
        .join(Tutor, col(Tutor.id) == col(Lesson.tutor_id))
        .join(Contact, col(Contact.id) == col(Lesson.contact_id), isouter=True)
        .where(Lesson.status == HELD, col(Lesson.hold_expires_at) <= now + within)
        .order_by(col(Lesson.hold_expires_at), col(Lesson.id))  # ties: the older booking first
        .limit(limit)
    ).all()
    return _lesson_rows(session, rows, HeldLesson)


def needs_reschedule(session: Session, limit: int = 200) -> list[RescheduleCase]:
    """Paid lessons whose slot was lost: the customer must pick a new time."""
    rows = session.execute(
        # sqlmodel's select() is typed for at most four columns
        select(
            Lesson.id,
            Lesson.start,
            Lesson.updated_at,
            Lesson.profile_name,  # type: ignore[call-overload]
            Lesson.conversation_id,
            col(Contact.name).label("contact_name"),
            col(Tutor.name).label("tutor_name"),
        )
        .join(Tutor, col(Tutor.id) == col(Lesson.tutor_id))
        .join(Contact, col(Contact.id) == col(Lesson.contact_id), isouter=True)
        .where(Lesson.status == NEEDS_RESCHEDULE)
        .order_by(col(Lesson.updated_at), col(Lesson.id))  # ties: the older booking first
        .limit(limit)
    ).all()
    return _lesson_rows(session, rows, RescheduleCase)
