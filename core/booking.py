"""Suggesting and booking lessons: the conflict-free heart of Lesplanner.

- `suggest_slots` resolves contact → segment → profile, gathers busy time from the calendar
  backend *and* this database's held/confirmed lessons, and runs the slot engine. A calendar
  that cannot be read is an error (CalendarUnavailable), never an invented slot.
- `book_slot` validates, asks the calendar for the exact interval, then claims the slot in one
  write transaction (BEGIN IMMEDIATE on SQLite, tutor row locks on Postgres), so two requests
  for one slot can never both win — not across threads, not across processes.
- Lessons that need payment are `held` until Stripe says paid (`confirm_paid_lesson`), failed
  or expired (`release_hold`), or the hold runs out (`expire_holds`).

Calendar calls happen inside the write transaction only where the database state depends on
their answer (confirm, cancel); the deterministic event id makes a retry after a crash safe.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from core import clock
from core.calendars import EventRequest, get_backend
from core.config import get_settings
from core.conversations import ensure_conversation
from core.db import is_sqlite, read_session, write_session
from core.errors import (
    InvalidTransition,
    LesplannerError,
    NotFound,
    PermissionDenied,
    SlotNotOffered,
    SlotTaken,
    ValidationFailed,
)
from core.messages import format_when, queue_message
from core.models import (
    BLOCKING_STATUSES,
    CANCELLED,
    CONFIRMED,
    EXPIRED,
    HELD,
    NEEDS_RESCHEDULE,
    AuditLog,
    Contact,
    Conversation,
    Lesson,
    Payment,
    PlanningProfile,
    Tutor,
    User,
)
from core.profiles import get_profile, profile_for_segment
from core.segments import explain_segment
from core.slots import Slot, generate_slots, is_offered, require_aware, window_bounds

log = logging.getLogger(__name__)
NO_PAYMENT_HOLD = timedelta(minutes=10)  # a lesson being confirmed without payment


@dataclass
class SlotSuggestion:
    profile: str
    timezone: str
    segment: str
    slots: list[Slot]


@dataclass
class BookingResult:
    lesson: Lesson
    created: bool
    payment: Payment | None = None
    alternatives: list[Slot] = field(default_factory=list)

    @property
    def payment_url(self) -> str | None:
        return self.payment.url if self.payment else None


def resolve_profile(session: Session, contact: Contact, profile_name: str | None = None) -> tuple[PlanningProfile, str]:
    """(profile, segment): profile_override > explicit name > the segment's mapping."""
    segment = explain_segment(session, contact).segment
    name = contact.profile_override or profile_name or profile_for_segment(session, segment)
    return get_profile(session, name), segment


def tutors_for_profile(session: Session, profile_name: str) -> list[Tutor]:
    tutors = session.exec(select(Tutor).where(Tutor.active == True).order_by(Tutor.id)).all()  # noqa: E712
    chosen = [t for t in tutors if not t.profiles or profile_name in t.profiles]
    if not chosen:
        raise ValidationFailed(f"No active tutor teaches profile '{profile_name}'.")
    return chosen


# --- busy time --------------------------------------------------------------------------------


def lesson_busy(session: Session, tutor_ids: Sequence[int], start: datetime, end: datetime,
                 now: datetime, exclude_lesson: int | None = None) -> dict[int, list[tuple[datetime, datetime]]]:
    stmt = (
        select(Lesson.tutor_id, Lesson.start, Lesson.end, Lesson.status, Lesson.hold_expires_at, Lesson.id)
        .where(col(Lesson.tutor_id).in_(list(tutor_ids)))
        .where(col(Lesson.status).in_(BLOCKING_STATUSES))
        .where(col(Lesson.start) < end, col(Lesson.end) > start)
    )
    result: dict[int, list] = {tid: [] for tid in tutor_ids}
    for tutor_id, l_start, l_end, status, hold_until, lesson_id in session.exec(stmt).all():
        if lesson_id == exclude_lesson:
            continue
        if status == HELD and hold_until is not None and hold_until <= now:
            continue  # an expired hold no longer blocks, even before expire_holds ran
        result[tutor_id].append((l_start, l_end))
    return result


def busy_by_tutor(session: Session, tutors: Sequence[Tutor], start: datetime, end: datetime,
                  now: datetime, exclude_lesson: int | None = None) -> dict[int, list[tuple[datetime, datetime]]]:
    """Busy time per tutor id: the calendar backend's answer plus held/confirmed lessons.

    The calendar is asked first: the local backend opens its own session, and if `session`
    already held a pooled connection, enough concurrent callers would each hold one while
    waiting for a second (a pool deadlock). Callers that can, pass a session not yet used."""
    calendar_ids = sorted({t.calendar_id for t in tutors})
    calendar_busy = get_backend().busy(calendar_ids, start, end)
    lessons = lesson_busy(session, [t.id for t in tutors], start, end, now, exclude_lesson)
    return {t.id: list(calendar_busy.get(t.calendar_id, [])) + lessons[t.id] for t in tutors}


def _overlaps(intervals: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime) -> bool:
    return any(s < end and e > start for s, e in intervals)


# --- suggesting -------------------------------------------------------------------------------


def _combine(per_tutor: Sequence[list[Slot]], profile: PlanningProfile, tz, limit: int) -> list[Slot]:  # noqa: ANN001
    union = sorted(set().union(*per_tutor)) if per_tutor else []
    if not profile.max_per_day:
        return union[:limit]
    out: list[Slot] = []
    per_day: dict = {}
    for slot in union:
        day = slot.start.astimezone(tz).date()
        if per_day.get(day, 0) >= profile.max_per_day:
            continue
        per_day[day] = per_day.get(day, 0) + 1
        out.append(slot)
        if len(out) >= limit:
            break
    return out


def slots_for_profile(session: Session, profile: PlanningProfile, now: datetime | None = None,
                      *, limit: int | None = None, tutors: Sequence[Tutor] | None = None) -> list[Slot]:
    """Free slots of `profile` over its tutors (a slot is offered when one tutor is free)."""
    settings = get_settings()
    tz = settings.tz
    now = now or clock.now()
    tutors = list(tutors) if tutors is not None else tutors_for_profile(session, profile.name)
    start, end = window_bounds(profile, now, tz)
    busy = busy_by_tutor(session, tutors, start, end, now)
    cap = profile.max_suggestions if limit is None else limit
    per_tutor_limit = cap if not profile.max_per_day else 100_000
    per_tutor = [generate_slots(profile, now, busy[t.id], tz, limit=per_tutor_limit) for t in tutors]
    return _combine(per_tutor, profile, tz, cap)


def suggest_slots(
    conversation_id: str,
    profile_name: str | None = None,
    *,
    contact_id: str | None = None,
    contact_info: dict[str, Any] | None = None,
) -> SlotSuggestion:
    """The slots the bot may offer this conversation now."""
    expire_holds()
    with read_session() as session:
        known = session.get(Conversation, conversation_id) if conversation_id else None
    if known is None or contact_info or (contact_id and contact_id != known.contact_id):
        with write_session() as session:  # registers the conversation (or refuses a mismatch)
            ensure_conversation(session, conversation_id, contact_id, contact_info)
    with read_session() as session:
        _conversation, contact = ensure_conversation(session, conversation_id)
        profile, segment = resolve_profile(session, contact, profile_name)
        tutors = tutors_for_profile(session, profile.name)
    with read_session() as session:  # fresh: see busy_by_tutor on pooled connections
        slots = slots_for_profile(session, profile, tutors=tutors)
    return SlotSuggestion(profile=profile.name, timezone=get_settings().timezone,
                          segment=segment, slots=slots)


# --- booking ----------------------------------------------------------------------------------


def _payment_for_lesson(session: Session, lesson_id: int) -> Payment | None:
    return session.exec(
        select(Payment).where(Payment.lesson_id == lesson_id).order_by(col(Payment.id).desc())
    ).first()


def _find_existing(session: Session, conversation_id: str, start: datetime) -> Lesson | None:
    return session.exec(
        select(Lesson)
        .where(Lesson.conversation_id == conversation_id, Lesson.start == start)
        .where(col(Lesson.status).in_((HELD, CONFIRMED)))
    ).first()


def _paid_needing_reschedule(session: Session, conversation_id: str) -> tuple[Lesson, Payment] | None:
    lesson = session.exec(
        select(Lesson).where(Lesson.conversation_id == conversation_id, Lesson.status == NEEDS_RESCHEDULE)
        .order_by(Lesson.id)
    ).first()
    if lesson is None:
        return None
    payment = _payment_for_lesson(session, lesson.id)
    if payment is None or payment.status != "paid":
        return None
    return lesson, payment


def lock_tutors(session: Session, tutor_ids: Sequence[int]) -> None:
    """Postgres: serialise bookings per tutor. SQLite is already serialised by BEGIN IMMEDIATE."""
    if not is_sqlite(session.get_bind()):
        session.exec(select(Tutor.id).where(col(Tutor.id).in_(list(tutor_ids))).order_by(Tutor.id).with_for_update()).all()


def _lock_lesson(session: Session, lesson: Lesson) -> None:
    """Take the lesson's tutor lock, then re-read the lesson: on Postgres (READ COMMITTED) a
    lesson loaded before the lock may be stale, and a cancel racing a payment would otherwise
    overwrite the other's outcome (a cancelled lesson with a live event, or a confirmed one
    the customer was told is cancelled). Same lock order as booking: tutor, then lesson."""
    lock_tutors(session, [lesson.tutor_id])
    session.refresh(lesson)


def _week_load(session: Session, tutor_ids: Sequence[int], start: datetime, tz) -> dict[int, int]:  # noqa: ANN001
    local = start.astimezone(tz)
    monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    week_start = monday.astimezone(UTC)
    week_end = (monday + timedelta(days=7)).astimezone(UTC)
    rows = session.exec(
        select(Lesson.tutor_id, func.count())
        .where(col(Lesson.tutor_id).in_(list(tutor_ids)), col(Lesson.status).in_(BLOCKING_STATUSES))
        .where(col(Lesson.start) >= week_start, col(Lesson.start) < week_end)
        .group_by(Lesson.tutor_id)
    ).all()
    load = {tid: 0 for tid in tutor_ids}
    load.update({tid: n for tid, n in rows})
    return load


def book_slot(
    conversation_id: str,
    start: datetime,
    end: datetime,
    title: str = "",
    description: str = "",
    *,
    contact_id: str | None = None,
    contact_info: dict[str, Any] | None = None,
    profile_name: str | None = None,
) -> BookingResult:
    """Book `start`-`end` for the conversation; see the module docstring for the guarantees.

    Raises ValidationFailed (bad input), SlotNotOffered, SlotTaken (with fresh alternatives),
    CalendarUnavailable, PaymentsNotConfigured / PaymentProviderError.
    """
    start = require_aware(start, "start").astimezone(UTC)
    end = require_aware(end, "end").astimezone(UTC)
    settings = get_settings()
    tz = settings.tz
    title = (title or "").strip()[:200]
    description = (description or "").strip()[:4000]
    expire_holds()
    now = clock.now()

    with write_session() as session:
        conversation, contact = ensure_conversation(session, conversation_id, contact_id, contact_info)
        profile, segment = resolve_profile(session, contact, profile_name)
        existing = _find_existing(session, conversation.id, start)
        if existing is not None:
            return BookingResult(existing, created=False, payment=_payment_for_lesson(session, existing.id))
        tutors = tutors_for_profile(session, profile.name)
    duration = timedelta(minutes=profile.duration_minutes)
    if end - start != duration:
        got = int((end - start).total_seconds() // 60)
        raise ValidationFailed(
            f"A '{profile.name}' lesson lasts {profile.duration_minutes} minutes; "
            f"the requested one lasts {got} minutes."
        )
    if not is_offered(profile, now, start, tz):
        raise SlotNotOffered(
            f"{format_when(start, 'en', tz)} is not a time the '{profile.name}' profile offers now "
            f"(window {profile.earliest_hour}:00-{profile.latest_hour}:00, "
            f"at least {profile.min_lead_minutes} minutes ahead, up to {profile.days_ahead} days)."
        )

    buffer = timedelta(minutes=profile.buffer_minutes or 0)
    lo, hi = start - buffer, end + buffer
    # Fresh from the calendar (never cached): who is free for exactly this interval?
    calendar_busy = get_backend().busy(sorted({t.calendar_id for t in tutors}), lo, hi)
    free_in_calendar = [t for t in tutors if not _overlaps(calendar_busy.get(t.calendar_id, []), lo, hi)]

    lesson: Lesson | None = None
    rescheduled_from: tuple[Lesson, Payment] | None = None
    if free_in_calendar:
        with write_session() as session:
            lock_tutors(session, [t.id for t in free_in_calendar])
            existing = _find_existing(session, conversation.id, start)
            if existing is not None:  # the same request raced itself
                return BookingResult(existing, created=False, payment=_payment_for_lesson(session, existing.id))
            taken = lesson_busy(session, [t.id for t in free_in_calendar], lo, hi, now)
            free = [t for t in free_in_calendar if not taken[t.id]]
            if free:
                load = _week_load(session, [t.id for t in free], start, tz)
                tutor = min(free, key=lambda t: (load[t.id], t.id))
                rescheduled_from = _paid_needing_reschedule(session, conversation.id)
                paid_already = rescheduled_from is not None
                needs_payment = profile.requires_payment and not paid_already
                lesson = Lesson(
                    conversation_id=conversation.id, contact_id=contact.id, tutor_id=tutor.id,
                    profile_name=profile.name, start=start, end=end,
                    title=title or f"Les {contact.name or contact.id}", description=description,
                    status=HELD,
                    hold_expires_at=now + (timedelta(minutes=settings.checkout_expires_minutes)
                                           if needs_payment else NO_PAYMENT_HOLD),
                    created_at=now, updated_at=now,
                )
                session.add(lesson)
                session.flush()
                if paid_already:
                    old, payment = rescheduled_from
                    payment.lesson_id = lesson.id
                    payment.updated_at = now
                    old.status = CANCELLED
                    old.cancel_reason = f"rescheduled to lesson {lesson.id}"
                    old.updated_at = now
    if lesson is None:
        raise SlotTaken(
            f"{format_when(start, 'en', tz)} was just taken. Please choose another time.",
            alternatives=_alternatives(conversation.id, profile.name, exclude=start),
        )

    if profile.requires_payment and rescheduled_from is None:
        return _hold_with_payment(lesson, contact, segment, profile, conversation.id)
    try:
        with write_session() as session:
            lesson = session.get(Lesson, lesson.id)
            confirm_lesson(session, lesson)
    except Exception:
        _abandon(lesson.id, "could not be confirmed in the calendar")
        raise
    return BookingResult(lesson, created=True)


def _hold_with_payment(lesson: Lesson, contact: Contact, segment: str, profile: PlanningProfile,
                       conversation_id: str) -> BookingResult:
    from core.payments import create_payment_link

    try:
        payment = create_payment_link(
            segment, profile.duration_minutes, f"lesson-{lesson.id}", conversation_id,
            contact.name or "", profile.name, segment, profile.name,
            contact_id=contact.id, lesson_id=lesson.id,
        )
    except Exception:
        _abandon(lesson.id, "no payment link could be created")
        raise
    with write_session() as session:
        row = session.get(Lesson, lesson.id)
        if payment.expires_at is not None and row.status == HELD:
            row.hold_expires_at = payment.expires_at
            row.updated_at = clock.now()
        lesson = row
    return BookingResult(lesson, created=True, payment=payment)


def _abandon(lesson_id: int, why: str) -> None:
    """Release a lesson we could not finish booking, so it does not block its slot."""
    with write_session() as session:
        lesson = session.get(Lesson, lesson_id)
        if lesson is not None and lesson.status == HELD:
            lesson.status = CANCELLED
            lesson.cancel_reason = f"booking failed: {why}"
            lesson.updated_at = clock.now()


def _alternatives(conversation_id: str, profile_name: str, exclude: datetime | None = None) -> list[Slot]:
    try:
        with read_session() as session:
            conversation = session.get(Conversation, conversation_id)
            contact = session.get(Contact, conversation.contact_id)
            profile, _ = resolve_profile(session, contact, profile_name)
            tutors = tutors_for_profile(session, profile.name)
        with read_session() as session:  # fresh: see busy_by_tutor on pooled connections
            slots = slots_for_profile(session, profile, limit=profile.max_suggestions + 1, tutors=tutors)
    except Exception:  # noqa: BLE001 - alternatives are a courtesy; the conflict still stands
        return []
    return [s for s in slots if s.start != exclude][: profile.max_suggestions]


# --- confirming, releasing, cancelling --------------------------------------------------------


def _event_request(session: Session, lesson: Lesson) -> EventRequest:
    tutor = session.get(Tutor, lesson.tutor_id)
    contact = session.get(Contact, lesson.contact_id)
    return EventRequest(
        lesson_id=lesson.id, calendar_id=tutor.calendar_id, start=lesson.start, end=lesson.end,
        summary=lesson.title, description=lesson.description, timezone=get_settings().timezone,
        attendee_email=contact.email if contact else None,
        attendee_name=contact.name if contact else None,
    )


def confirm_lesson(session: Session, lesson: Lesson, message_key: str = "booking_confirmed") -> None:
    """Create the calendar event and mark the lesson confirmed; queue `message_key` once."""
    if lesson.status == CONFIRMED and lesson.calendar_event_id:
        return
    created = get_backend().create_event(_event_request(session, lesson))
    now = clock.now()
    lesson.calendar_event_id = created.event_id
    lesson.invite_sent = created.invite_sent
    lesson.calendar_note = created.note
    lesson.status = CONFIRMED
    lesson.hold_expires_at = None
    lesson.updated_at = now
    session.add(lesson)
    queue_message(session, lesson.conversation_id, message_key,
                  dedupe_key=f"{message_key}:{lesson.id}", when=format_when(lesson.start))


def slot_still_free(session: Session, lesson: Lesson) -> bool:
    """Nobody else holds the lesson's interval, in this database or in the tutor's calendar."""
    now = clock.now()
    profile = session.get(PlanningProfile, lesson.profile_name)
    buffer = timedelta(minutes=(profile.buffer_minutes if profile else 0) or 0)
    lo, hi = lesson.start - buffer, lesson.end + buffer
    lock_tutors(session, [lesson.tutor_id])
    if lesson_busy(session, [lesson.tutor_id], lo, hi, now, exclude_lesson=lesson.id)[lesson.tutor_id]:
        return False
    tutor = session.get(Tutor, lesson.tutor_id)
    busy = get_backend().busy([tutor.calendar_id], lo, hi).get(tutor.calendar_id, [])
    if lesson.calendar_event_id:
        return True  # our own event is in that busy time
    return not _overlaps(busy, lo, hi)


def confirm_paid_lesson(session: Session, lesson: Lesson) -> None:
    """Payment arrived: confirm the lesson, or mark it needs_reschedule if its slot was lost
    meanwhile (the customer gets fresh slots, finance sees the case). Idempotent."""
    _lock_lesson(session, lesson)
    if lesson.status in (CONFIRMED, NEEDS_RESCHEDULE):
        return
    if lesson.status != CANCELLED and slot_still_free(session, lesson):
        confirm_lesson(session, lesson)
        return
    lesson.status = NEEDS_RESCHEDULE
    lesson.hold_expires_at = None
    lesson.updated_at = clock.now()
    session.add(lesson)
    alternatives = _alternatives_in_session(session, lesson)
    queue_message(
        session, lesson.conversation_id, "slot_lost", dedupe_key=f"slot_lost:{lesson.id}",
        when=format_when(lesson.start),
        alternatives=", ".join(format_when(s.start) for s in alternatives) or "-",
    )


def _alternatives_in_session(session: Session, lesson: Lesson) -> list[Slot]:
    try:
        profile = session.get(PlanningProfile, lesson.profile_name)
        return slots_for_profile(session, profile, limit=3)
    except Exception:  # noqa: BLE001 - the message still goes out without them
        return []


def release_hold(session: Session, lesson: Lesson, status: str = EXPIRED,
                 message_key: str = "hold_expired") -> bool:
    """Free a held lesson's slot (payment failed or expired); tell the customer once.
    Returns False when the lesson was no longer held (nothing changed)."""
    if status not in (EXPIRED, CANCELLED):
        raise ValueError(f"release_hold cannot move a lesson to {status!r}")
    _lock_lesson(session, lesson)
    if lesson.status != HELD:
        return False
    lesson.status = status
    lesson.cancel_reason = message_key
    lesson.updated_at = clock.now()
    session.add(lesson)
    queue_message(session, lesson.conversation_id, message_key,
                  dedupe_key=f"hold_released:{lesson.id}", when=format_when(lesson.start))
    return True


def expire_holds(now: datetime | None = None) -> int:
    """Release every hold whose time is up. Cheap when there is nothing to do."""
    now = now or clock.now()
    with read_session() as session:
        due = session.exec(
            select(Lesson.id).where(Lesson.status == HELD, col(Lesson.hold_expires_at) <= now)
        ).all()
    if not due:
        return 0
    released = 0
    with write_session() as session:
        for lesson_id in due:
            lesson = session.get(Lesson, lesson_id)
            if lesson.status == HELD and lesson.hold_expires_at and lesson.hold_expires_at <= now:
                released += release_hold(session, lesson, EXPIRED, "hold_expired")
    return released


def can_manage_lesson(session: Session, user: User | None, lesson: Lesson) -> bool:
    """admins manage every lesson; tutors only their own; finance reads only."""
    if user is None or not user.active:
        return False
    if user.role == "admin":
        return True
    if user.role == "tutor":
        tutor = session.get(Tutor, lesson.tutor_id)
        return bool(tutor and tutor.email and tutor.email.lower() == user.email.lower())
    return False


def cancel_lesson(lesson_id: int, actor: User | None, reason: str = "", *, notify: bool = True) -> Lesson:
    """Cancel a lesson: delete its calendar event (with updates to the customer), free the slot,
    tell the customer once, and audit who did it."""
    with write_session() as session:
        lesson = session.get(Lesson, lesson_id)
        if lesson is None:
            raise NotFound(f"Lesson {lesson_id} does not exist.")
        _lock_lesson(session, lesson)
        if actor is not None and not can_manage_lesson(session, actor, lesson):
            raise PermissionDenied("You may only cancel your own lessons.")
        if lesson.status not in (HELD, CONFIRMED, NEEDS_RESCHEDULE):
            raise InvalidTransition(f"Lesson {lesson_id} is already {lesson.status}.")
        before = {"status": lesson.status}
        was_held = lesson.status == HELD
        if lesson.calendar_event_id and lesson.status == CONFIRMED:
            tutor = session.get(Tutor, lesson.tutor_id)
            get_backend().delete_event(tutor.calendar_id, lesson.calendar_event_id)
        lesson.status = CANCELLED
        lesson.cancel_reason = reason or "cancelled in the console"
        lesson.hold_expires_at = None
        lesson.updated_at = clock.now()
        session.add(lesson)
        if notify:
            queue_message(session, lesson.conversation_id, "lesson_cancelled",
                          dedupe_key=f"lesson_cancelled:{lesson.id}", when=format_when(lesson.start))
        session.add(AuditLog(actor=actor.email if actor else "system", action="lesson.cancel",
                             entity="Lesson", entity_id=str(lesson.id), before=before,
                             after={"status": CANCELLED, "reason": lesson.cancel_reason},
                             at=clock.now()))
    if was_held:
        _close_checkout(lesson.id)
    return lesson


def _close_checkout(lesson_id: int) -> None:
    """A cancelled hold's Checkout Session is closed so the customer can't pay for it. Best
    effort: if Stripe can't be reached, a later payment makes the lesson needs_reschedule,
    which finance sees; the cancel itself stands."""
    from core.payments import expire_checkout_for_lesson

    try:
        expire_checkout_for_lesson(lesson_id)
    except LesplannerError as exc:
        log.warning("Could not close the Checkout Session of cancelled lesson %s: %s", lesson_id, exc.message)
