"""Read queries for the console: filtered, paginated and aggregated in SQL.

The console must stay fast with 50,000 payments and 20,000 lessons, so nothing here loads a whole
table into Python: filters become WHERE clauses on indexed columns, pages use LIMIT/OFFSET with a
separate COUNT, related rows (payments of the lessons on a page) come in one IN (...) query, and
totals are GROUP BY queries. Results are plain dicts and dataclasses (picklable, so the console
can cache them with st.cache_data).

Dates in filters are local dates in the business zone; they are turned into UTC bounds here.
Every function takes the caller's session; none of them writes.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import String, cast, func, or_
from sqlmodel import Session, col, select

from core import messages
from core.booking import resolve_profile, slots_for_profile
from core.calendars import get_backend
from core.errors import LesplannerError, NotFound
from core.models import (
    BLOCKING_STATUSES,
    HELD,
    NEEDS_RESCHEDULE,
    AuditLog,
    BusyBlock,
    Contact,
    Conversation,
    Lesson,
    OutboxMessage,
    Payment,
    PlanningProfile,
    SegmentProfile,
    StripeEvent,
    Tutor,
    User,
    WhitelistEntry,
)
from core.segments import explain_segment, normalise_phone

DEFAULT_PAGE_SIZE = 50
EXPORT_LIMIT = 100_000  # a CSV larger than this is a job for the database, not the console


@dataclass
class PageResult:
    rows: list[dict[str, Any]]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size)) if self.page_size else 1


def _page(page: int, page_size: int) -> tuple[int, int]:
    page = max(1, int(page))
    page_size = max(1, min(int(page_size), 500))
    return page, page_size


def _clamp(page: int, page_size: int, total: int) -> int:
    """A page past the end (the filter shrank the result) becomes the last page."""
    return min(page, max(1, math.ceil(total / page_size)))


def local_bounds(date_from: date | None, date_to: date | None, tz: ZoneInfo) -> tuple[datetime | None, datetime | None]:
    """UTC [start, end) for local dates from..to inclusive; None where open."""
    lo = datetime.combine(date_from, time(0), tzinfo=tz).astimezone(UTC) if date_from else None
    hi = (datetime.combine(date_to + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC)
          if date_to else None)
    return lo, hi


def week_monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _like(query: str) -> str:
    escaped = query.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# --- people and reference data -----------------------------------------------------------------


def tutors(session: Session, *, email: str | None = None, include_inactive: bool = False) -> list[dict[str, Any]]:
    """Tutors, or only those whose e-mail is `email` (a tutor's own calendar)."""
    stmt = select(Tutor).order_by(Tutor.name, Tutor.id)
    if not include_inactive:
        stmt = stmt.where(Tutor.active == True)  # noqa: E712
    if email is not None:
        stmt = stmt.where(func.lower(Tutor.email) == email.strip().lower())
    return [t.model_dump() for t in session.exec(stmt).all()]


def tutor_ids_for_email(session: Session, email: str) -> list[int]:
    return list(session.exec(select(Tutor.id).where(func.lower(Tutor.email) == email.strip().lower())).all())


def profiles(session: Session, *, include_inactive: bool = True) -> list[dict[str, Any]]:
    stmt = select(PlanningProfile).order_by(PlanningProfile.name)
    if not include_inactive:
        stmt = stmt.where(PlanningProfile.active == True)  # noqa: E712
    return [p.model_dump() for p in session.exec(stmt).all()]


def segment_mapping(session: Session) -> dict[str, str]:
    return {row.segment: row.profile_name for row in session.exec(select(SegmentProfile)).all()}


def users(session: Session) -> list[dict[str, Any]]:
    rows = session.exec(select(User).order_by(User.email)).all()
    return [u.model_dump(exclude={"password_hash"}) for u in rows]


# --- lessons -----------------------------------------------------------------------------------


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


def _lesson_where(session: Session, stmt: Any, f: LessonFilter, tz: ZoneInfo) -> Any | None:
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
        stmt = stmt.where(Lesson.tutor_id == f.tutor_id)
    if f.statuses:
        stmt = stmt.where(col(Lesson.status).in_(list(f.statuses)))
    if f.profile:
        stmt = stmt.where(Lesson.profile_name == f.profile)
    if f.query and f.query.strip():
        pattern = _like(f.query)
        stmt = stmt.where(or_(
            func.lower(Contact.name).like(pattern, escape="\\"),
            func.lower(Contact.email).like(pattern, escape="\\"),
            col(Contact.phone).like(pattern, escape="\\"),
            func.lower(Contact.id).like(pattern, escape="\\"),
        ))
    return stmt


_LESSON_COLUMNS = (
    Lesson.id, Lesson.start, Lesson.end, Lesson.status, Lesson.profile_name, Lesson.tutor_id,
    Lesson.contact_id, Lesson.conversation_id, Lesson.title, Lesson.hold_expires_at,
    Lesson.calendar_event_id, Lesson.calendar_sync, Lesson.invite_sent, Lesson.cancel_reason,
    Tutor.name.label("tutor_name"), Contact.name.label("contact_name"),
)


def _lesson_select(*columns: Any) -> Any:
    return (select(*columns)
            .join(Tutor, col(Tutor.id) == col(Lesson.tutor_id))
            .join(Contact, col(Contact.id) == col(Lesson.contact_id), isouter=True))


def _latest_payments(session: Session, lesson_ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The newest payment of each lesson, in one query."""
    if not lesson_ids:
        return {}
    rows = session.exec(
        select(Payment.lesson_id, Payment.id, Payment.status, Payment.amount, Payment.currency,
               Payment.checkout_session_id)
        .where(col(Payment.lesson_id).in_(list(lesson_ids)))
        .order_by(Payment.id)
    ).all()
    out: dict[int, dict[str, Any]] = {}
    for lesson_id, pid, status, amount, currency, session_id in rows:
        out[lesson_id] = {"payment_id": pid, "payment_status": status, "amount": amount,
                          "currency": currency, "checkout_session_id": session_id}
    return out


def _lesson_rows(session: Session, rows: Sequence[Any]) -> list[dict[str, Any]]:
    dicts = [dict(r._mapping) for r in rows]
    payments = _latest_payments(session, [d["id"] for d in dicts])
    empty = {"payment_id": None, "payment_status": None, "amount": None, "currency": None,
             "checkout_session_id": None}
    for d in dicts:
        d.update(payments.get(d["id"], empty))
    return dicts


def lessons_page(session: Session, f: LessonFilter, tz: ZoneInfo, page: int = 1,
                 page_size: int = DEFAULT_PAGE_SIZE) -> PageResult:
    """One page of lessons (ordered by start) with tutor, contact and newest payment."""
    page, page_size = _page(page, page_size)
    count_stmt = _lesson_where(session, _lesson_select(func.count(Lesson.id)), f, tz)
    if count_stmt is None:
        return PageResult([], 0, page, page_size)
    total = session.exec(count_stmt).one()
    page = _clamp(page, page_size, total)
    stmt = _lesson_where(session, _lesson_select(*_LESSON_COLUMNS), f, tz)
    rows = session.exec(stmt.order_by(Lesson.start, Lesson.id)
                        .offset((page - 1) * page_size).limit(page_size)).all()
    return PageResult(_lesson_rows(session, rows), total, page, page_size)


def lessons_export(session: Session, f: LessonFilter, tz: ZoneInfo, limit: int = EXPORT_LIMIT) -> list[dict[str, Any]]:
    stmt = _lesson_where(session, _lesson_select(*_LESSON_COLUMNS), f, tz)
    if stmt is None:
        return []
    rows = session.exec(stmt.order_by(Lesson.start, Lesson.id).limit(limit)).all()
    return _lesson_rows(session, rows)


def lesson_detail(session: Session, lesson_id: int) -> dict[str, Any]:
    """Everything the console shows about one lesson: the lesson, its tutor, contact, payments."""
    lesson = session.get(Lesson, lesson_id)
    if lesson is None:
        raise NotFound(f"Lesson {lesson_id} does not exist.")
    tutor = session.get(Tutor, lesson.tutor_id)
    contact = session.get(Contact, lesson.contact_id)
    payments = session.exec(select(Payment).where(Payment.lesson_id == lesson_id).order_by(Payment.id)).all()
    return {
        "lesson": lesson.model_dump(),
        "tutor": tutor.model_dump() if tutor else None,
        "contact": contact.model_dump() if contact else None,
        "payments": [p.model_dump() for p in payments],
    }


# --- availability ------------------------------------------------------------------------------


def week_items(session: Session, tutor_id: int, week_start: date, tz: ZoneInfo) -> dict[str, Any]:
    """Lessons and time off (BusyBlock rows) of one tutor in the local week starting `week_start`."""
    lo, hi = local_bounds(week_start, week_start + timedelta(days=6), tz)
    lessons = session.exec(
        select(Lesson.id, Lesson.start, Lesson.end, Lesson.status, Lesson.title, Lesson.profile_name,
               Contact.name.label("contact_name"))
        .join(Contact, col(Contact.id) == col(Lesson.contact_id), isouter=True)
        .where(Lesson.tutor_id == tutor_id, col(Lesson.start) < hi, col(Lesson.end) > lo)
        .where(col(Lesson.status).in_((*BLOCKING_STATUSES, NEEDS_RESCHEDULE)))
        .order_by(Lesson.start)
    ).all()
    blocks = session.exec(
        select(BusyBlock).where(BusyBlock.tutor_id == tutor_id, col(BusyBlock.start) < hi, col(BusyBlock.end) > lo)
        .order_by(BusyBlock.start)
    ).all()
    return {
        "start": lo, "end": hi,
        "lessons": [dict(r._mapping) for r in lessons],
        "busy_blocks": [b.model_dump() for b in blocks],
    }


def future_busy_blocks(session: Session, tutor_id: int, now: datetime, limit: int = 200) -> list[dict[str, Any]]:
    rows = session.exec(
        select(BusyBlock).where(BusyBlock.tutor_id == tutor_id, col(BusyBlock.end) > now)
        .order_by(BusyBlock.start).limit(limit)
    ).all()
    return [b.model_dump() for b in rows]


def week_calendar(session: Session, profile_name: str, tutor_id: int, week_start: date, tz: ZoneInfo,
                  now: datetime) -> dict[str, Any]:
    """The tutor's calendar busy time in the week and the profile's free slots in it.

    Free slots are what the bot could offer now (lead time and horizon apply), for this tutor
    only. Raises CalendarUnavailable when the calendar cannot be read: no slots are guessed."""
    tutor = session.get(Tutor, tutor_id)
    profile = session.get(PlanningProfile, profile_name)
    if tutor is None or profile is None:
        raise NotFound("Unknown tutor or profile.")
    lo, hi = local_bounds(week_start, week_start + timedelta(days=6), tz)
    busy = get_backend().busy([tutor.calendar_id], lo, hi).get(tutor.calendar_id, [])
    free = [s for s in slots_for_profile(session, profile, now, limit=10_000, tutors=[tutor])
            if lo <= s.start < hi]
    return {"busy": [(s, e) for s, e in busy], "free": [(s.start, s.end) for s in free]}


def offer_for_contact(session: Session, contact_id: str, now: datetime) -> dict[str, Any]:
    """What the bot would offer this contact now: segment (and why), profile and slots."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"Unknown contact '{contact_id}'.")
    decision = explain_segment(session, contact)
    profile, segment = resolve_profile(session, contact)
    slots = slots_for_profile(session, profile, now)
    return {"segment": segment, "reason": decision.reason, "profile": profile.name,
            "slots": [(s.start, s.end) for s in slots]}


# --- payments ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PaymentFilter:
    date_from: date | None = None  # local dates of created_at, inclusive
    date_to: date | None = None
    statuses: tuple[str, ...] = ()
    query: str | None = None  # checkout session id, order id or payment intent id


def _payment_where(stmt: Any, f: PaymentFilter, tz: ZoneInfo) -> Any:
    lo, hi = local_bounds(f.date_from, f.date_to, tz)
    if lo is not None:
        stmt = stmt.where(col(Payment.created_at) >= lo)
    if hi is not None:
        stmt = stmt.where(col(Payment.created_at) < hi)
    if f.statuses:
        stmt = stmt.where(col(Payment.status).in_(list(f.statuses)))
    if f.query and f.query.strip():
        pattern = _like(f.query)
        stmt = stmt.where(or_(
            func.lower(Payment.checkout_session_id).like(pattern, escape="\\"),
            func.lower(Payment.order_id).like(pattern, escape="\\"),
            func.lower(Payment.payment_intent_id).like(pattern, escape="\\"),
            func.lower(Payment.contact_id).like(pattern, escape="\\"),
        ))
    return stmt


_PAYMENT_COLUMNS = (
    Payment.id, Payment.created_at, Payment.status, Payment.amount, Payment.currency, Payment.minutes,
    Payment.segment, Payment.order_id, Payment.checkout_session_id, Payment.payment_intent_id,
    Payment.lesson_id, Payment.contact_id, Payment.expires_at, Payment.paid_at,
)


def payments_page(session: Session, f: PaymentFilter, tz: ZoneInfo, page: int = 1,
                  page_size: int = DEFAULT_PAGE_SIZE) -> PageResult:
    """One page of payments, newest first."""
    page, page_size = _page(page, page_size)
    total = session.exec(_payment_where(select(func.count(Payment.id)), f, tz)).one()
    page = _clamp(page, page_size, total)
    rows = session.exec(
        _payment_where(select(*_PAYMENT_COLUMNS), f, tz)
        .order_by(col(Payment.created_at).desc(), col(Payment.id).desc())
        .offset((page - 1) * page_size).limit(page_size)
    ).all()
    return PageResult([dict(r._mapping) for r in rows], total, page, page_size)


def payments_export(session: Session, f: PaymentFilter, tz: ZoneInfo, limit: int = EXPORT_LIMIT) -> list[dict[str, Any]]:
    rows = session.exec(
        _payment_where(select(*_PAYMENT_COLUMNS), f, tz)
        .order_by(col(Payment.created_at).desc(), col(Payment.id).desc()).limit(limit)
    ).all()
    return [dict(r._mapping) for r in rows]


def _hour_bucket(session: Session, column: Any) -> Any:
    if session.get_bind().dialect.name == "sqlite":
        return func.strftime("%Y-%m-%d %H", column)
    return cast(func.to_char(func.date_trunc("hour", column), "YYYY-MM-DD HH24"), String)


def payment_totals(session: Session, f: PaymentFilter, tz: ZoneInfo, period: str = "day") -> list[dict[str, Any]]:
    """Count and amount per local day (or ISO week, Monday) and status, by creation time.

    SQL groups by UTC hour (at most 24 groups per day, whatever the number of payments); the
    hours are folded into local days here because SQLite knows no time zones. Hours are exact for
    every zone with whole-hour offsets, which includes the business zone. Creation time is used
    because a Checkout Session lives at most a day, and it is the indexed column.
    """
    bucket = _hour_bucket(session, Payment.created_at).label("bucket")
    stmt = _payment_where(
        select(bucket, Payment.status, Payment.currency, func.count(Payment.id), func.coalesce(func.sum(Payment.amount), 0)),
        f, tz,
    ).group_by(bucket, Payment.status, Payment.currency)
    totals: dict[tuple, list[int]] = defaultdict(lambda: [0, 0])
    for hour, status, currency, count, amount in session.exec(stmt).all():
        if hour is None:
            continue
        local_day = datetime.strptime(hour, "%Y-%m-%d %H").replace(tzinfo=UTC).astimezone(tz).date()
        key_day = week_monday(local_day) if period == "week" else local_day
        entry = totals[(key_day, status, (currency or "eur").lower())]
        entry[0] += count
        entry[1] += int(amount or 0)
    return [
        {"period": day, "status": status, "currency": currency, "count": c, "amount": a}
        for (day, status, currency), (c, a) in sorted(totals.items())
    ]


def payment_status_counts(session: Session, f: PaymentFilter, tz: ZoneInfo) -> dict[str, dict[str, int]]:
    stmt = _payment_where(
        select(Payment.status, func.count(Payment.id), func.coalesce(func.sum(Payment.amount), 0)), f, tz
    ).group_by(Payment.status)
    return {status: {"count": c, "amount": int(a or 0)} for status, c, a in session.exec(stmt).all()}


def holds_expiring(session: Session, now: datetime, within: timedelta = timedelta(minutes=30),
                   limit: int = 200) -> list[dict[str, Any]]:
    """Held lessons whose hold ends within `within` (waiting for payment), soonest first."""
    rows = session.exec(
        select(Lesson.id, Lesson.start, Lesson.hold_expires_at, Lesson.profile_name,
               Contact.name.label("contact_name"), Tutor.name.label("tutor_name"))
        .join(Tutor, col(Tutor.id) == col(Lesson.tutor_id))
        .join(Contact, col(Contact.id) == col(Lesson.contact_id), isouter=True)
        .where(Lesson.status == HELD, col(Lesson.hold_expires_at) <= now + within)
        .order_by(Lesson.hold_expires_at).limit(limit)
    ).all()
    return _lesson_rows(session, rows)


def needs_reschedule(session: Session, limit: int = 200) -> list[dict[str, Any]]:
    """Paid lessons whose slot was lost: the customer must pick a new time."""
    rows = session.exec(
        select(Lesson.id, Lesson.start, Lesson.updated_at, Lesson.profile_name, Lesson.conversation_id,
               Contact.name.label("contact_name"), Tutor.name.label("tutor_name"))
        .join(Tutor, col(Tutor.id) == col(Lesson.tutor_id))
        .join(Contact, col(Contact.id) == col(Lesson.contact_id), isouter=True)
        .where(Lesson.status == NEEDS_RESCHEDULE)
        .order_by(Lesson.updated_at).limit(limit)
    ).all()
    return _lesson_rows(session, rows)


def paid_but_cancelled(session: Session, limit: int = 200) -> list[dict[str, Any]]:
    """Paid payments whose lesson was cancelled or expired: money kept without a lesson, to be
    refunded in Stripe (the charge.refunded webhook then marks the payment refunded). A
    rescheduled lesson is not listed: its payment moved to the new lesson."""
    rows = session.exec(
        select(Payment.id, Payment.checkout_session_id, Payment.payment_intent_id, Payment.amount,
               Payment.currency, Payment.paid_at, Lesson.id.label("lesson_id"), Lesson.start,
               Lesson.status.label("lesson_status"), Lesson.cancel_reason, Contact.name.label("contact_name"))
        .join(Lesson, col(Lesson.id) == col(Payment.lesson_id))
        .join(Contact, col(Contact.id) == col(Lesson.contact_id), isouter=True)
        .where(Payment.status == "paid", col(Lesson.status).in_(("cancelled", "expired")))
        .order_by(col(Lesson.updated_at).desc()).limit(limit)
    ).all()
    return [dict(r._mapping) for r in rows]


def failed_events(session: Session, limit: int = 100) -> list[dict[str, Any]]:
    """Stripe events whose handling failed (newest first), without their raw payload."""
    rows = session.exec(
        select(StripeEvent.id, StripeEvent.type, StripeEvent.received_at, StripeEvent.attempts,
               StripeEvent.error)
        .where(StripeEvent.status == "failed")
        .order_by(col(StripeEvent.received_at).desc()).limit(limit)
    ).all()
    return [dict(r._mapping) for r in rows]


# --- contacts, segments, whitelists ------------------------------------------------------------


def search_contacts(session: Session, query: str = "", page: int = 1,
                    page_size: int = DEFAULT_PAGE_SIZE) -> PageResult:
    """Contacts whose name, e-mail, phone or id contains `query` (case-insensitive)."""
    page, page_size = _page(page, page_size)
    stmt = select(Contact.id, Contact.name, Contact.email, Contact.phone, Contact.segment_override,
                  Contact.profile_override, Contact.updated_at)
    count = select(func.count(Contact.id))
    if query and query.strip():
        pattern = _like(query)
        conditions = [
            func.lower(Contact.name).like(pattern, escape="\\"),
            func.lower(Contact.email).like(pattern, escape="\\"),
            col(Contact.phone).like(pattern, escape="\\"),
            func.lower(Contact.id).like(pattern, escape="\\"),
        ]
        phone = normalise_phone(query)  # "06 1234 5678" finds "+31612345678"
        if phone:
            conditions.append(Contact.phone == phone)
        stmt = stmt.where(or_(*conditions))
        count = count.where(or_(*conditions))
    total = session.exec(count).one()
    page = _clamp(page, page_size, total)
    rows = session.exec(stmt.order_by(Contact.name, Contact.id)
                        .offset((page - 1) * page_size).limit(page_size)).all()
    out = [dict(r._mapping) for r in rows]
    # The segment as the bot sees it now (derived, never stored), for this page's rows only.
    contacts = {c.id: c for c in session.exec(select(Contact).where(col(Contact.id).in_([r["id"] for r in out])))}
    for row in out:
        row["segment"] = explain_segment(session, contacts[row["id"]]).segment
    return PageResult(out, total, page, page_size)


def contact_detail(session: Session, contact_id: str) -> dict[str, Any]:
    """A contact with its detected segment (and why), the profile the bot would use, its lessons."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"Unknown contact '{contact_id}'.")
    decision = explain_segment(session, contact)
    try:
        profile, _ = resolve_profile(session, contact)
        profile_name, profile_error = profile.name, None
    except LesplannerError as exc:
        profile_name, profile_error = None, exc.message
    lesson_counts = dict(session.exec(
        select(Lesson.status, func.count(Lesson.id)).where(Lesson.contact_id == contact_id).group_by(Lesson.status)
    ).all())
    conversations = session.exec(
        select(Conversation.id).where(Conversation.contact_id == contact_id).order_by(Conversation.created_at)
    ).all()
    return {
        "contact": contact.model_dump(),
        "segment": decision.segment,
        "segment_reason": decision.reason,
        "profile": profile_name,
        "profile_error": profile_error,
        "lesson_counts": lesson_counts,
        "conversations": list(conversations),
    }


def whitelist_page(session: Session, list_name: str, query: str = "", page: int = 1,
                   page_size: int = DEFAULT_PAGE_SIZE) -> PageResult:
    page, page_size = _page(page, page_size)
    where = [WhitelistEntry.list == list_name]
    if query and query.strip():
        where.append(func.lower(WhitelistEntry.identifier).like(_like(query), escape="\\"))
    total = session.exec(select(func.count(WhitelistEntry.id)).where(*where)).one()
    page = _clamp(page, page_size, total)
    rows = session.exec(select(WhitelistEntry).where(*where)
                        .order_by(col(WhitelistEntry.added_at).desc(), col(WhitelistEntry.id).desc())
                        .offset((page - 1) * page_size).limit(page_size)).all()
    return PageResult([r.model_dump() for r in rows], total, page, page_size)


def whitelist_export(session: Session, list_name: str) -> list[dict[str, Any]]:
    rows = session.exec(select(WhitelistEntry).where(WhitelistEntry.list == list_name)
                        .order_by(WhitelistEntry.identifier).limit(EXPORT_LIMIT)).all()
    return [r.model_dump() for r in rows]


# --- audit, outbox, integrations ---------------------------------------------------------------


def audit_page(session: Session, entity: str | None = None, page: int = 1,
               page_size: int = DEFAULT_PAGE_SIZE) -> PageResult:
    page, page_size = _page(page, page_size)
    where = [AuditLog.entity == entity] if entity else []
    total = session.exec(select(func.count(AuditLog.id)).where(*where)).one()
    page = _clamp(page, page_size, total)
    rows = session.exec(select(AuditLog).where(*where).order_by(col(AuditLog.at).desc(), col(AuditLog.id).desc())
                        .offset((page - 1) * page_size).limit(page_size)).all()
    return PageResult([r.model_dump() for r in rows], total, page, page_size)


def outbox_page(session: Session, status: str | None = None, page: int = 1,
                page_size: int = DEFAULT_PAGE_SIZE) -> PageResult:
    page, page_size = _page(page, page_size)
    where = [OutboxMessage.status == status] if status else []
    total = session.exec(select(func.count(OutboxMessage.id)).where(*where)).one()
    page = _clamp(page, page_size, total)
    rows = session.exec(
        select(OutboxMessage.id, OutboxMessage.created_at, OutboxMessage.conversation_id, OutboxMessage.key,
               OutboxMessage.status, OutboxMessage.attempts, OutboxMessage.last_error, OutboxMessage.sent_at,
               OutboxMessage.text)
        .where(*where).order_by(col(OutboxMessage.id).desc())
        .offset((page - 1) * page_size).limit(page_size)
    ).all()
    return PageResult([dict(r._mapping) for r in rows], total, page, page_size)


def outbox_counts(session: Session) -> dict[str, int]:
    return messages.outbox_counts(session)
