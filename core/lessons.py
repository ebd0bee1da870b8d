"""The lesson state machine: every status change of a lesson happens here, and only here.

`TRANSITIONS` below is the table from DESIGN.md ("The state machine"); each function checks its
move against it, changes the row, and writes the move's outside effects as Jobs in the caller's
transaction (core/jobs.py), so they happen after commit, exactly once, and never roll a payment
back. Callers (booking, payments, the console) decide *when* a lesson moves; this module decides
*whether* it may and what follows. It imports neither booking nor payments.

The calendar is made to match the lesson by one convergent job per lesson (kinds
`calendar.create`, `calendar.update`, `calendar.delete` share `sync_calendar`): it reads the
lesson when it runs, so a job that was queued for an older state still does the right thing,
and the jobs of one lesson never run at once (their `subject` is the lesson).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from core import clock, jobs, reminders, series_messages
from core.calendars import EventRequest, event_id_for_lesson, get_backend
from core.config import get_settings
from core.db import is_sqlite, read_session, write_session
from core.errors import InvalidTransition, ValidationFailed
from core.messages import format_short, queue_message
from core.models import (
    AWAITING_PAYMENT,
    BLOCKING_STATUSES,
    CANCELLED,
    CONFIRMED,
    EXPIRED,
    HELD,
    NEEDS_RESCHEDULE,
    WAITING_FOR_PAYMENT,
    AuditLog,
    CalendarSync,
    Contact,
    Job,
    JobStatus,
    Lesson,
    LessonOutcome,
    LessonStatus,
    PlanningProfile,
    Tutor,
)

log = logging.getLogger("lesplanner.lessons")

NEW = None  # "from" of a lesson that does not exist yet


@dataclass(frozen=True)
class Transition:
    sources: tuple[LessonStatus | None, ...]
    event: str
    target: LessonStatus
    effects: str  # for people; the code below writes them


TRANSITIONS: tuple[Transition, ...] = (
    Transition((NEW,), "book_with_payment", HELD, "-"),
    Transition((NEW, HELD, AWAITING_PAYMENT), "confirm", CONFIRMED, "calendar.create, confirmation message"),
    Transition(
        (HELD,),
        "checkout_completed_unpaid",
        AWAITING_PAYMENT,
        "'waiting for your payment' message; slot claimed up to ASYNC_PAYMENT_HOLD_HOURS",
    ),
    Transition((HELD, AWAITING_PAYMENT), "hold_expired", EXPIRED, "stripe.expire_checkout, message"),
    Transition((HELD, AWAITING_PAYMENT), "payment_failed", CANCELLED, "message"),
    Transition((EXPIRED,), "paid_late", CONFIRMED, "calendar.create (slot checked), message"),
    Transition(
        (HELD, AWAITING_PAYMENT, EXPIRED, CANCELLED, CONFIRMED),
        "slot_lost",
        NEEDS_RESCHEDULE,
        "message with alternatives + finance alert",
    ),
    Transition(
        (HELD, AWAITING_PAYMENT, CONFIRMED, NEEDS_RESCHEDULE),
        "cancel",
        CANCELLED,
        "calendar.delete (if it had an event), stripe.expire_checkout (if held), message",
    ),
    Transition((CONFIRMED,), "reschedule", CONFIRMED, "calendar.update, message"),
    Transition((NEEDS_RESCHEDULE,), "rebook", CONFIRMED, "calendar.create, message"),
)

_ALLOWED = {(source, t.event): t.target for t in TRANSITIONS for source in t.sources}


def target_of(status: str | None, event: str) -> LessonStatus:
    """The status `event` moves a lesson in `status` to; InvalidTransition if it may not."""
    source = LessonStatus(status) if status is not None else None
    target = _ALLOWED.get((source, event))
    if target is None:
        where = f"a {status} lesson" if status else "a new lesson"
        raise InvalidTransition(f"{event.replace('_', ' ')} is not possible for {where}.")
    return target


def _move(lesson: Lesson, event: str, now: datetime) -> LessonStatus:
    target = target_of(lesson.status, event)
    lesson.status = target
    lesson.updated_at = now
    return target


# --- the slot claim ---------------------------------------------------------------------------


def blocks(status: str, hold_until: datetime | None, now: datetime) -> bool:
    """Does a lesson in `status` occupy its slot at `now`? A hold only until it expires: at
    the very moment of `hold_expires_at` it no longer does."""
    if status not in BLOCKING_STATUSES:
        return False
    if status in WAITING_FOR_PAYMENT and hold_until is not None and hold_until <= now:
        return False
    return True


def lesson_busy(
    session: Session,
    tutor_ids: Sequence[int],
    start: datetime,
    end: datetime,
    now: datetime,
    exclude_lesson: int | None = None,
) -> dict[int, list[tuple[datetime, datetime]]]:
    """Per tutor, the intervals in [start, end) that this database's lessons occupy."""
    stmt = (
        # sqlmodel's select() is typed for at most four columns; the rows are unpacked below.
        select(
            Lesson.tutor_id,
            Lesson.start,
            Lesson.end,
            Lesson.status,  # type: ignore[call-overload]
            Lesson.hold_expires_at,
            Lesson.id,
        )
        .where(col(Lesson.tutor_id).in_(list(tutor_ids)))
        .where(col(Lesson.status).in_(BLOCKING_STATUSES))
        .where(col(Lesson.start) < end, col(Lesson.end) > start)
    )
    result: dict[int, list[tuple[datetime, datetime]]] = {tid: [] for tid in tutor_ids}
    for tutor_id, l_start, l_end, status, hold_until, lesson_id in session.exec(stmt).all():
        if lesson_id != exclude_lesson and blocks(status, hold_until, now):
            result[tutor_id].append((l_start, l_end))
    return result


def lock_tutors(session: Session, tutor_ids: Sequence[int]) -> None:
    """Postgres: serialise slot claims per tutor. SQLite is already serialised by BEGIN IMMEDIATE."""
    if not is_sqlite(session.get_bind()):
        session.exec(
            select(Tutor.id)
            .where(col(Tutor.id).in_(list(tutor_ids)))
            .order_by(col(Tutor.id))
            .with_for_update()
        ).all()


def lock_lesson(session: Session, lesson: Lesson) -> None:
    """Take the lesson's tutor lock, then re-read the lesson: on Postgres (READ COMMITTED) a row
    loaded before the lock may be stale. Same lock order as booking: tutor, then lesson."""
    lock_tutors(session, [lesson.tutor_id])
    session.refresh(lesson)


def buffer_of(session: Session, lesson: Lesson) -> timedelta:
    profile = session.get(PlanningProfile, lesson.profile_name)
    return timedelta(minutes=(profile.buffer_minutes if profile else 0) or 0)


def slot_free_in_database(session: Session, lesson: Lesson, now: datetime) -> bool:
    """No other lesson of this tutor holds the lesson's interval (with the profile's buffer)."""
    buffer = buffer_of(session, lesson)
    lock_tutors(session, [lesson.tutor_id])
    taken = lesson_busy(
        session, [lesson.tutor_id], lesson.start - buffer, lesson.end + buffer, now, exclude_lesson=lesson.id
    )
    return not taken[lesson.tutor_id]


# --- effects ----------------------------------------------------------------------------------


def _calendar_job(session: Session, lesson: Lesson, kind: str, *, verify_slot: bool = False) -> None:
    """Make the tutor's calendar match the lesson after commit (see sync_calendar)."""
    if kind != "calendar.delete":
        lesson.calendar_sync = CalendarSync.PENDING
    jobs.enqueue(
        session,
        kind,
        f"calendar:lesson-{lesson.id}",
        {"lesson_id": lesson.id, "verify_slot": verify_slot},
        subject=f"lesson-{lesson.id}",
        rearm=True,
    )


def _say(session: Session, lesson: Lesson, key: str, dedupe: str) -> None:
    queue_message(
        session,
        lesson.conversation_id,
        key,
        dedupe_key=f"{dedupe}:{lesson.id}",
        when=format_short(lesson.start),
    )


def _expire_checkout(session: Session, lesson: Lesson) -> None:
    jobs.enqueue(
        session,
        "stripe.expire_checkout",
        f"stripe.expire_checkout:lesson-{lesson.id}",
        {"lesson_id": lesson.id},
        subject=f"checkout-lesson-{lesson.id}",
    )


def finance_alert(session: Session, lesson: Lesson, why: str) -> None:
    """A case finance must look at (a paid lesson without a slot); shown on Betalingen."""
    session.add(
        AuditLog(
            actor="system",
            action="finance.alert",
            entity="Lesson",
            entity_id=str(lesson.id),
            after={"status": lesson.status, "why": why},
            at=clock.now(),
        )
    )


# --- the moves --------------------------------------------------------------------------------


def book(session: Session, lesson: Lesson, *, hold_until: datetime | None) -> None:
    """Insert a new lesson whose slot the caller has claimed: `held` until `hold_until` when it
    must be paid first, otherwise confirmed at once (its calendar event follows as a job)."""
    now = clock.now()
    lesson.created_at = lesson.updated_at = now
    if hold_until is not None:
        lesson.status = target_of(NEW, "book_with_payment")
        lesson.hold_expires_at = hold_until
        session.add(lesson)
        session.flush()
        return
    lesson.status = target_of(NEW, "confirm")
    lesson.hold_expires_at = None
    session.add(lesson)
    session.flush()
    _confirmed(session, lesson, verify_slot=False)


def confirm(session: Session, lesson: Lesson, *, verify_slot: bool = False) -> None:
    """A lesson waiting for payment is paid: confirmed now, the calendar event follows as a
    job. `verify_slot` asks that job to check first that nobody took the slot in the calendar
    meanwhile."""
    _move(lesson, "confirm", clock.now())
    lesson.hold_expires_at = None
    session.add(lesson)
    _confirmed(session, lesson, verify_slot=verify_slot)


def _confirmed(session: Session, lesson: Lesson, *, verify_slot: bool) -> None:
    _calendar_job(session, lesson, "calendar.create", verify_slot=verify_slot)
    reminders.plan(session, lesson)
    if not verify_slot and lesson.series_id is None:  # a series is told once (core/series.py)
        _say(session, lesson, "booking_confirmed", "booking_confirmed")
    # else the calendar job says it once it has seen the slot is still free: "your lesson is
    # on Tuesday at 10:00" must never be followed by "sorry, that time was taken".


def paid(session: Session, lesson: Lesson) -> str:
    """The lesson's payment is in. Held or awaiting payment: confirmed. Expired (paid late):
    confirmed if no other lesson took the slot, else needs_reschedule. Cancelled (by staff or
    the customer, while its checkout was still open): needs_reschedule, never revived.
    Confirmed or needs_reschedule already: nothing changes. Returns the lesson's status."""
    lock_lesson(session, lesson)
    now = clock.now()
    if lesson.status in (CONFIRMED, NEEDS_RESCHEDULE):
        return lesson.status
    if lesson.status in WAITING_FOR_PAYMENT:
        confirm(session, lesson, verify_slot=True)
        return lesson.status
    if lesson.status == CANCELLED:
        slot_lost(session, lesson, "paid after the lesson was cancelled", message="paid_after_cancel")
        return lesson.status
    if slot_free_in_database(session, lesson, now):
        _move(lesson, "paid_late", now)
        lesson.cancel_reason = None
        session.add(lesson)
        _confirmed(session, lesson, verify_slot=True)
        return lesson.status
    slot_lost(session, lesson, "paid after its hold ended; another lesson has the slot")
    return lesson.status


def slot_lost(session: Session, lesson: Lesson, why: str, *, message: str = "slot_lost") -> None:
    """Paid, but the slot is gone: the customer picks a new time, finance sees the case."""
    now = clock.now()
    _move(lesson, "slot_lost", now)
    lesson.hold_expires_at = None
    session.add(lesson)
    _say(session, lesson, message, "slot_lost")
    finance_alert(session, lesson, why)


def await_payment(session: Session, lesson: Lesson) -> bool:
    """Checkout completed with a delayed method: the slot stays claimed for
    ASYNC_PAYMENT_HOLD_HOURS while the money settles. False if the lesson was not held."""
    lock_lesson(session, lesson)
    if lesson.status != HELD:
        return False
    now = clock.now()
    _move(lesson, "checkout_completed_unpaid", now)
    lesson.hold_expires_at = now + timedelta(hours=get_settings().async_payment_hold_hours)
    session.add(lesson)
    if lesson.series_id is not None:  # one message for the series
        series_messages.waiting(session, lesson, "series_payment_processing", "series_payment_processing")
    else:
        _say(session, lesson, "payment_processing", "payment_processing")
    return True


def release(session: Session, lesson: Lesson, event: str) -> bool:
    """Free a lesson waiting for payment: `hold_expired` (its time ran out or Stripe expired the
    checkout) or `payment_failed`. Tells the customer once. False if nothing changed."""
    lock_lesson(session, lesson)
    if lesson.status not in WAITING_FOR_PAYMENT:
        return False
    now = clock.now()
    _move(lesson, event, now)
    message = "hold_expired" if event == "hold_expired" else "payment_failed"
    lesson.cancel_reason = message
    session.add(lesson)
    if event == "hold_expired":
        _expire_checkout(session, lesson)
    if lesson.series_id is not None:  # one message for the series
        series_messages.waiting(session, lesson, f"series_{message}", "series_released")
    else:
        _say(session, lesson, message, "hold_released")
    return True


def cancel(session: Session, lesson: Lesson, reason: str, *, notify: bool = True) -> str:
    """Cancel a planned lesson (staff or customer). Returns the status it had."""
    lock_lesson(session, lesson)
    before = lesson.status
    now = clock.now()
    _move(lesson, "cancel", now)
    lesson.cancel_reason = reason
    lesson.hold_expires_at = None
    session.add(lesson)
    if before in WAITING_FOR_PAYMENT:
        _expire_checkout(session, lesson)
    if lesson.calendar_event_id or lesson.calendar_sync is not None:
        _calendar_job(session, lesson, "calendar.delete")
    if notify:
        _say(session, lesson, "lesson_cancelled", "lesson_cancelled")
        if lesson.series_id is not None:  # it may have been the last of its series to settle
            series_messages.confirmed_when_checked(session, lesson.series_id)
    return before


def move(
    session: Session, lesson: Lesson, start: datetime, end: datetime, *, tutor_id: int | None = None
) -> None:
    """A confirmed lesson moves (same lesson, same payment, same event), or a needs_reschedule
    lesson is rebooked. The caller has claimed the new slot under the tutor lock."""
    now = clock.now()
    if end - start != lesson.end - lesson.start:
        raise ValidationFailed("A lesson keeps its length when it moves.")
    rebook = lesson.status == NEEDS_RESCHEDULE
    _move(lesson, "rebook" if rebook else "reschedule", now)
    if tutor_id is not None and tutor_id != lesson.tutor_id:
        if lesson.calendar_event_id:
            raise InvalidTransition("A lesson with a calendar event keeps its tutor when it moves.")
        lesson.tutor_id = tutor_id
    lesson.start, lesson.end = start, end
    lesson.hold_expires_at = None
    lesson.cancel_reason = None
    session.add(lesson)
    session.flush()
    _calendar_job(session, lesson, "calendar.create" if rebook else "calendar.update")
    reminders.plan(session, lesson)
    # one message per new time, so moving twice tells the customer twice
    stamp = int(start.timestamp())
    queue_message(
        session,
        lesson.conversation_id,
        "booking_confirmed" if rebook else "lesson_rescheduled",
        dedupe_key=f"lesson_moved:{lesson.id}:{stamp}",
        when=format_short(start),
    )


def mark_outcome(session: Session, lesson: Lesson, outcome: str) -> None:
    """After a confirmed lesson ended: attended or no-show."""
    if lesson.status != CONFIRMED:
        raise InvalidTransition(f"Only a confirmed lesson can be marked; this one is {lesson.status}.")
    if lesson.end > clock.now():
        raise InvalidTransition("A lesson can be marked once it has ended.")
    lesson.outcome = LessonOutcome(outcome)
    lesson.updated_at = clock.now()
    session.add(lesson)


def expire_holds(now: datetime | None = None) -> int:
    """Release every hold whose time is up (at `hold_expires_at` itself, too). Cheap when there
    is nothing to do."""
    now = now or clock.now()
    with read_session() as session:
        due = session.exec(
            select(Lesson.id).where(
                col(Lesson.status).in_(WAITING_FOR_PAYMENT), col(Lesson.hold_expires_at) <= now
            )
        ).all()
    if not due:
        return 0
    released = 0
    with write_session() as session:
        for lesson_id in due:
            lesson = session.get_one(Lesson, lesson_id)
            if (
                lesson.status in WAITING_FOR_PAYMENT
                and lesson.hold_expires_at
                and lesson.hold_expires_at <= now
            ):
                released += release(session, lesson, "hold_expired")
    return released


def ensure_calendar_jobs() -> int:
    """A confirmed lesson whose calendar is pending always has a job (e.g. lessons from before
    jobs existed). Returns how many were added."""
    with read_session() as session:
        ids = session.exec(
            select(Lesson.id).where(Lesson.status == CONFIRMED, Lesson.calendar_sync == CalendarSync.PENDING)
        ).all()
        if not ids:
            return 0
        have = set(
            session.exec(
                select(Job.key).where(
                    col(Job.key).in_([f"calendar:lesson-{i}" for i in ids]),
                    col(Job.status).in_((JobStatus.PENDING, JobStatus.RUNNING)),
                )
            ).all()
        )
    missing = [i for i in ids if f"calendar:lesson-{i}" not in have]
    if not missing:
        return 0
    with write_session() as session:
        for lesson_id in missing:
            lesson = session.get_one(Lesson, lesson_id)
            jobs.enqueue(
                session,
                "calendar.create",
                f"calendar:lesson-{lesson_id}",
                {"lesson_id": lesson_id, "verify_slot": False},
                subject=f"lesson-{lesson_id}",
                rearm=True,
            )
            session.add(lesson)
    return len(missing)


# --- the calendar job -------------------------------------------------------------------------


def _event_request(session: Session, lesson: Lesson) -> EventRequest:
    tutor = session.get_one(Tutor, lesson.tutor_id)
    contact = session.get(Contact, lesson.contact_id)
    assert lesson.id is not None  # a stored lesson
    return EventRequest(
        lesson_id=lesson.id,
        calendar_id=tutor.calendar_id,
        start=lesson.start,
        end=lesson.end,
        summary=lesson.title,
        description=lesson.description,
        timezone=get_settings().timezone,
        attendee_email=contact.email if contact else None,
        attendee_name=contact.name if contact else None,
    )


def _overlaps(intervals: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime) -> bool:
    return any(s < end and e > start for s, e in intervals)


def sync_calendar(ctx: jobs.JobContext) -> str:
    """Make the tutor's calendar match lesson `ctx.payload['lesson_id']` as it is *now*:
    confirmed → its event exists at its time (created, or restored and moved; idempotent on the
    lesson's deterministic event id); otherwise → no event. Calendar errors propagate, so the
    job is retried until the calendar heals."""
    lesson_id = int(ctx.payload["lesson_id"])
    with read_session() as session:
        lesson = session.get(Lesson, lesson_id)
        if lesson is None:
            return "lesson no longer exists"
        request = _event_request(session, lesson)
        status = lesson.status
    backend = get_backend()
    if status != CONFIRMED:
        # Also without a recorded event id: an earlier attempt may have made it and lost the
        # answer. Deleting an event that does not exist is success.
        ctx.renew()
        backend.delete_event(request.calendar_id, event_id_for_lesson(lesson_id))
        _record_sync(lesson_id, request, None)
        return f"lesson is {status}; event removed"
    slot_key = f"{request.calendar_id}|{request.start.isoformat()}"
    if ctx.payload.get("verify_slot") and ctx.payload.get("verified") != slot_key:
        ctx.renew()
        busy = backend.busy([request.calendar_id], request.start, request.end).get(request.calendar_id, [])
        if _overlaps(busy, request.start, request.end):
            with write_session() as session:
                lesson = session.get_one(Lesson, lesson_id)
                lock_lesson(session, lesson)
                if lesson.status == CONFIRMED and lesson.start == request.start:
                    slot_lost(session, lesson, "the tutor's calendar has another event at that time")
                    lesson.calendar_sync = None
                    if lesson.series_id is not None:  # it may have been the last one to check
                        series_messages.confirmed_when_checked(session, lesson.series_id)
                    return "slot taken in the calendar: lesson needs a new time"
            return "lesson changed meanwhile; nothing done"
        with write_session() as session:  # dedupe key: a second worker cannot say it twice
            lesson = session.get_one(Lesson, lesson_id)
            if lesson.status == CONFIRMED and lesson.start == request.start and lesson.series_id:
                series_messages.confirmed_when_checked(session, lesson.series_id, checked=lesson_id)
            elif lesson.status == CONFIRMED and lesson.start == request.start:
                _say(session, lesson, "booking_confirmed", "booking_confirmed")
        # Remember the check before creating: a retry after a lost answer would otherwise see
        # our own new event as busy.
        ctx.save(verified=slot_key)
    ctx.renew()
    created = backend.create_event(request)
    return _record_sync(lesson_id, request, created, checked=bool(ctx.payload.get("verify_slot")))


def _record_sync(lesson_id: int, request: EventRequest, created: object | None, checked: bool = False) -> str:
    with write_session() as session:
        lesson = session.get(Lesson, lesson_id)
        if lesson is None:
            return "lesson no longer exists"
        if created is None:
            if lesson.status != CONFIRMED:
                lesson.calendar_event_id = None
                lesson.calendar_sync = CalendarSync.SYNCED if lesson.calendar_sync else None
                session.add(lesson)
            return "no event"
        if lesson.status != CONFIRMED or lesson.start != request.start or lesson.end != request.end:
            return "lesson changed meanwhile; a newer job brings the calendar in line"
        lesson.calendar_event_id = created.event_id  # type: ignore[attr-defined]
        lesson.invite_sent = created.invite_sent  # type: ignore[attr-defined]
        lesson.calendar_note = created.note  # type: ignore[attr-defined]
        lesson.calendar_sync = CalendarSync.SYNCED
        lesson.updated_at = clock.now()
        session.add(lesson)
        if checked and lesson.series_id is not None:  # the last of the series tells it
            series_messages.confirmed_when_checked(session, lesson.series_id)
    return f"event {created.event_id} in calendar {request.calendar_id}"  # type: ignore[attr-defined]


def _calendar_failed(session: Session, job: object, error: str) -> None:
    lesson = session.get(Lesson, int(job.payload["lesson_id"]))  # type: ignore[attr-defined]
    if lesson is not None:
        lesson.calendar_sync = CalendarSync.FAILED
        lesson.calendar_note = f"The calendar refused this lesson's event: {error}"[:500]
        session.add(lesson)
        if job.payload.get("verify_slot") and lesson.series_id is not None:  # type: ignore[attr-defined]
            series_messages.confirmed_when_checked(session, lesson.series_id)


for _kind in ("calendar.create", "calendar.update", "calendar.delete"):
    jobs.register(_kind, sync_calendar, _calendar_failed)
