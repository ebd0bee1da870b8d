"""Suggesting and booking lessons: the conflict-free heart of Lesplanner.

- `suggest_slots` resolves contact → segment → profile, gathers busy time from the calendar
  backend *and* this database's held/confirmed lessons, and runs the slot engine. A calendar
  that cannot be read is an error (CalendarUnavailable), never an invented slot.
- `book_slot` validates, asks the calendar for the exact interval, then claims the slot in one
  write transaction (BEGIN IMMEDIATE on SQLite, tutor row locks on Postgres), so two requests
  for one slot can never both win — not across threads, not across processes.
- What happens to the lesson then is core/lessons.py's: held until paid, or confirmed at once
  with its calendar event as a job — also when the contact pays with a prepaid credit of the
  lesson's length (core/credits.py), used in the same transaction as the claim. A paid lesson that lost its slot is rebooked as the same
  lesson (same payment) when the new booking has its duration and price.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func
from sqlmodel import Session, col, select

from core import clock, credits, lessons
from core.availability import planning_busy, refuse_closed
from core.calendars import get_backend, mirror
from core.config import get_settings
from core.contacts import apply_bot_details, identity, restore_identity
from core.conversations import ensure_conversation
from core.db import read_session, scratch_session, write_session
from core.errors import (
    SlotNotOffered,
    SlotTaken,
    ValidationFailed,
)
from core.lessons import expire_holds, lesson_busy, lock_tutors
from core.messages import format_when
from core.models import (
    AWAITING_PAYMENT,
    BLOCKING_STATUSES,
    CONFIRMED,
    HELD,
    NEEDS_RESCHEDULE,
    Contact,
    Conversation,
    Lesson,
    Payment,
    PaymentStatus,
    PlanningProfile,
    SlotOffer,
    Tutor,
    stored_id,
)
from core.payments import create_payment_link, price_for
from core.profiles import get_profile, merged_profile_values, profile_for_segment
from core.segments import explain_segment
from core.slots import (
    BusyIndex,
    Slot,
    generate_slots,
    is_offered,
    require_aware,
    spread_suggestions,
    window_bounds,
)

log = logging.getLogger(__name__)


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


def check_requested_slot(
    profile: PlanningProfile, now: datetime, start: datetime, end: datetime, tz: ZoneInfo, why: str = ""
) -> None:
    """A requested lesson lasts the profile's length and starts at a time the profile offers now;
    else a 422 saying which rule it breaks (`why` ends the offered-time message)."""
    if end - start != timedelta(minutes=profile.duration_minutes):
        got = int((end - start).total_seconds() // 60)
        raise ValidationFailed(
            f"A '{profile.name}' lesson lasts {profile.duration_minutes} minutes; "
            f"the requested one lasts {got} minutes."
        )
    if not is_offered(profile, now, start, tz):
        raise SlotNotOffered(
            f"{format_when(start, 'en', tz)} is not a time the '{profile.name}' profile offers now "
            f"(window {profile.earliest_hour}:00-{profile.latest_hour}:00, "
            f"at least {profile.min_lead_minutes} minutes ahead, up to {profile.days_ahead} days){why}."
        )


def resolve_profile(
    session: Session, contact: Contact, profile_name: str | None = None
) -> tuple[PlanningProfile, str]:
    """(profile, segment): profile_override > explicit name > the segment's mapping."""
    segment = explain_segment(session, contact).segment
    name = contact.profile_override or profile_name or profile_for_segment(session, segment)
    return get_profile(session, name), segment


def tutors_for_profile(session: Session, profile_name: str) -> list[Tutor]:
    tutors = session.exec(select(Tutor).where(Tutor.active == True).order_by(col(Tutor.id))).all()  # noqa: E712
    chosen = [t for t in tutors if not t.profiles or profile_name in t.profiles]
    if not chosen:
        raise ValidationFailed(f"No active tutor teaches profile '{profile_name}'.")
    return chosen


# --- busy time --------------------------------------------------------------------------------


def busy_by_tutor(
    session: Session,
    tutors: Sequence[Tutor],
    start: datetime,
    end: datetime,
    now: datetime,
    exclude_lesson: int | None = None,
) -> dict[int, BusyIndex]:
    """Busy time per tutor id, as the engine's index: the calendar's (from the local mirror while it is fresh, else the
    backend's live answer) plus held/confirmed lessons.

    The calendar is asked first: the local backend opens its own session, and if `session`
    already held a pooled connection, enough concurrent callers would each hold one while
    waiting for a second (a pool deadlock). Callers that can, pass a session not yet used."""
    calendar_ids = sorted({t.calendar_id for t in tutors})
    calendar_busy = mirror.calendar_busy(session, calendar_ids, start, end, now)
    lessons = lesson_busy(session, [stored_id(t) for t in tutors], start, end, now, exclude_lesson)
    busy: dict[int, BusyIndex] = {}
    for t in tutors:
        calendar = calendar_busy.get(t.calendar_id, [])
        own = lessons[stored_id(t)]
        # The mirror's index is shared and built once per version: the lessons are a layer on it.
        busy[stored_id(t)] = (
            calendar.plus(own) if isinstance(calendar, BusyIndex) else BusyIndex([*calendar, *own])
        )
    return busy


def busy_overlaps(intervals: Sequence[tuple[datetime, datetime]], start: datetime, end: datetime) -> bool:
    return any(s < end and e > start for s, e in intervals)


# --- suggesting -------------------------------------------------------------------------------


def slots_for_profile(
    session: Session,
    profile: PlanningProfile,
    now: datetime | None = None,
    *,
    limit: int | None = None,
    tutors: Sequence[Tutor] | None = None,
    exclude_lesson: int | None = None,
    every: bool = False,
) -> list[Slot]:
    """Free slots of `profile` over its tutors (a slot is offered when one tutor is free);
    `exclude_lesson`'s own time does not count as busy (the lesson that is being moved).

    The suggestions (spread over days by `max_per_day`, then `max_suggestions` or `limit`), or
    with `every` every free slot (the console's week view and staff moves), cut only by `limit`.
    Spreading only chooses what is suggested: book_slot accepts any free slot the profile allows."""
    settings = get_settings()
    tz = settings.tz
    now = now or clock.now()
    tutors = list(tutors) if tutors is not None else tutors_for_profile(session, profile.name)
    start, end = window_bounds(profile, now, tz)
    busy = busy_by_tutor(session, tutors, start, end, now, exclude_lesson)
    for tutor_id, intervals in planning_busy(session, profile, tutors, start, end, tz).items():
        busy[tutor_id] = busy[tutor_id].plus(intervals)  # closures, time outside working hours
    if len(tutors) == 1:
        return generate_slots(profile, now, busy[stored_id(tutors[0])], tz, limit=limit, every=every)
    if every or not profile.max_per_day:
        cap = limit if limit is not None else (None if every else profile.max_suggestions)
        per_tutor = [
            generate_slots(profile, now, busy[stored_id(t)], tz, limit=cap, every=True) for t in tutors
        ]
        union = sorted(set().union(*per_tutor))
        return union if cap is None else union[:cap]
    # Spread over the union: a day's choice is made among every tutor's free slots of that day.
    per_tutor = [generate_slots(profile, now, busy[stored_id(t)], tz, every=True) for t in tutors]
    cap = profile.max_suggestions if limit is None else limit
    return spread_suggestions(sorted(set().union(*per_tutor)), profile, tz, cap)


def preview_profile(
    name: str, values: dict[str, Any], now: datetime | None = None, limit: int | None = None
) -> list[Slot]:
    """The slots the edited (unsaved) profile would offer now, against current busy time: the
    Profiles page's preview. It lives here, not in core/profiles.py, because it needs
    slots_for_profile and booking imports profiles. Raises InvalidProfile for bad values and CalendarUnavailable when busy time is unknown."""
    now = now or clock.now()
    with read_session() as session:
        cleaned = merged_profile_values(session, name, values)
        draft = PlanningProfile(**cleaned)  # never added to the session: a what-if
        tutors = tutors_for_profile(session, name)
        return slots_for_profile(session, draft, now, limit=limit, tutors=tutors)


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
    register = known is None or bool(contact_info) or bool(contact_id and contact_id != known.contact_id)
    # A conversation seen for the first time is registered only once its slots could be given:
    # until then, what it would be is worked out in a transaction that is rolled back.
    with scratch_session() if register else read_session() as session:
        _conversation, contact = ensure_conversation(session, conversation_id, contact_id, contact_info)
        profile, segment = resolve_profile(session, contact, profile_name)
        tutors = tutors_for_profile(session, profile.name)
        offered_to = contact.id
    with read_session() as session:  # fresh: see busy_by_tutor on pooled connections
        slots = slots_for_profile(session, profile, tutors=tutors)
    with write_session() as session:
        if register:
            ensure_conversation(session, conversation_id, contact_id, contact_info)
        # What was offered, for the Insights funnel: one small insert with the registration.
        session.add(
            SlotOffer(
                conversation_id=conversation_id,
                contact_id=offered_to,
                profile_name=profile.name,
                segment=segment,
                slots=len(slots),
            )
        )
    return SlotSuggestion(
        profile=profile.name, timezone=get_settings().timezone, segment=segment, slots=slots
    )


# --- booking ----------------------------------------------------------------------------------


def payment_for_lesson(session: Session, lesson_id: int) -> Payment | None:
    """The lesson's latest payment, if any: its own, or the one payment of its weekly series."""
    own = session.exec(
        select(Payment).where(Payment.lesson_id == lesson_id).order_by(col(Payment.id).desc())
    ).first()
    lesson = session.get(Lesson, lesson_id) if own is None else None
    if lesson is None or lesson.series_id is None:
        return own
    return session.exec(
        select(Payment).where(Payment.series_id == lesson.series_id).order_by(col(Payment.id).desc())
    ).first()


def _find_existing(session: Session, conversation_id: str, start: datetime) -> Lesson | None:
    return session.exec(
        select(Lesson)
        .where(Lesson.conversation_id == conversation_id, Lesson.start == start)
        .where(col(Lesson.status).in_((HELD, AWAITING_PAYMENT, CONFIRMED)))
    ).first()


def _movable_paid_lesson(
    session: Session, conversation_id: str, profile: PlanningProfile, segment: str
) -> Lesson | None:
    """The conversation's paid lesson that lost its slot and may take this booking's place:
    only for a lesson of the same duration and price, or of the same profile when a prepaid
    credit paid it (anything else is a new booking)."""
    candidates = session.exec(
        select(Lesson)
        .where(Lesson.conversation_id == conversation_id, Lesson.status == NEEDS_RESCHEDULE)
        .order_by(col(Lesson.id))
    ).all()
    price_now = price_for(segment, profile.duration_minutes)
    for lesson in candidates:
        if lesson.end - lesson.start != timedelta(minutes=profile.duration_minutes):
            continue
        if credits.paid_by_credit(session, stored_id(lesson)):
            if lesson.profile_name == profile.name:
                return lesson
            continue
        payment = payment_for_lesson(session, stored_id(lesson))
        if payment is None or payment.status != PaymentStatus.PAID:
            continue
        same_price = (payment.price_id == price_now) if price_now else lesson.profile_name == profile.name
        if same_price:
            return lesson
    return None


def _week_load(session: Session, tutor_ids: Sequence[int], start: datetime, tz) -> dict[int, int]:  # noqa: ANN001
    local = start.astimezone(tz)
    monday = (local - timedelta(days=local.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    week_start = monday.astimezone(UTC)
    week_end = (monday + timedelta(days=7)).astimezone(UTC)
    rows = session.exec(
        select(Lesson.tutor_id, func.count())
        .where(col(Lesson.tutor_id).in_(list(tutor_ids)), col(Lesson.status).in_(BLOCKING_STATUSES))
        .where(col(Lesson.start) >= week_start, col(Lesson.start) < week_end)
        .group_by(col(Lesson.tutor_id))
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

    # What the request would be (its conversation registered, the bot's contact details applied),
    # rolled back: they are stored with the lesson in the claim below, or not at all.
    with scratch_session() as session:
        conversation, contact = ensure_conversation(session, conversation_id, contact_id, contact_info)
        profile, segment = resolve_profile(session, contact, profile_name)
        existing = _find_existing(session, conversation.id, start)
        if existing is not None:
            return BookingResult(
                existing, created=False, payment=payment_for_lesson(session, stored_id(existing))
            )
        tutors = tutors_for_profile(session, profile.name)
    check_requested_slot(profile, now, start, end, tz)
    with read_session() as session:  # a closure, or nobody working then: not offered either
        tutors = refuse_closed(session, profile, tutors, start, end, tz, format_when(start, "en", tz))

    buffer = timedelta(minutes=profile.buffer_minutes or 0)
    lo, hi = start - buffer, end + buffer
    # Fresh from the calendar (never cached): who is free for exactly this interval?
    calendar_busy = get_backend().busy(sorted({t.calendar_id for t in tutors}), lo, hi)
    free_in_calendar = [t for t in tutors if not busy_overlaps(calendar_busy.get(t.calendar_id, []), lo, hi)]

    lesson: Lesson | None = None
    needs_payment = False
    if free_in_calendar:
        with write_session() as session:
            lock_tutors(session, [stored_id(t) for t in free_in_calendar])
            existing = _find_existing(session, conversation.id, start)
            if existing is not None:  # the same request raced itself
                return BookingResult(
                    existing, created=False, payment=payment_for_lesson(session, stored_id(existing))
                )
            taken = lesson_busy(session, [stored_id(t) for t in free_in_calendar], lo, hi, now)
            free = [t for t in free_in_calendar if not taken[stored_id(t)]]
            if free:
                conversation, contact = ensure_conversation(session, conversation_id, contact_id)
                details_before = identity(contact)
                apply_bot_details(contact, contact_info)
                details = (details_before, identity(contact))
                load = _week_load(session, [stored_id(t) for t in free], start, tz)
                tutor = min(free, key=lambda t: (load[stored_id(t)], stored_id(t)))
                moved = _movable_paid_lesson(session, conversation.id, profile, segment)
                if moved is not None:  # paid already: the same lesson, at its new time
                    lessons.move(session, moved, start, end, tutor_id=stored_id(tutor))
                    return BookingResult(
                        moved, created=True, payment=payment_for_lesson(session, stored_id(moved))
                    )
                needs_payment = profile.requires_payment
                # A prepaid credit of this length pays instead of a Checkout (DESIGN, step 4).
                by_credit = needs_payment and credits.has_credit(
                    session, contact.id, profile.duration_minutes
                )
                needs_payment = needs_payment and not by_credit
                lesson = Lesson(
                    conversation_id=conversation.id,
                    contact_id=contact.id,
                    tutor_id=stored_id(tutor),
                    profile_name=profile.name,
                    start=start,
                    end=end,
                    title=title or f"Les {contact.name or contact.id}",
                    description=description,
                )
                hold_until = (
                    now + timedelta(minutes=settings.checkout_expires_minutes) if needs_payment else None
                )
                lessons.book(session, lesson, hold_until=hold_until)
                if (
                    by_credit
                    and credits.use_credit(session, contact, profile.duration_minutes, lesson) is None
                ):
                    raise RuntimeError("the credit checked under the contact lock is gone")
    if lesson is None:
        raise SlotTaken(
            f"{format_when(start, 'en', tz)} was just taken. Please choose another time.",
            alternatives=_alternatives(profile, exclude=start),
        )
    if needs_payment:
        return _hold_with_payment(stored_id(lesson), contact, segment, profile, conversation.id, details)
    return BookingResult(lesson, created=True)


def _hold_with_payment(
    lesson_id: int,
    contact: Contact,
    segment: str,
    profile: PlanningProfile,
    conversation_id: str,
    details: tuple[dict[str, Any], dict[str, Any]],
) -> BookingResult:
    try:
        payment = create_payment_link(
            segment,
            profile.duration_minutes,
            f"lesson-{lesson_id}",
            conversation_id,
            contact.name or "",
            profile.name,
            segment,
            profile.name,
            contact_id=contact.id,
            lesson_id=lesson_id,
            internal=True,
        )
    except Exception:
        abandon_hold(lesson_id, "no payment link could be created", contact.id, details)
        raise
    with write_session() as session:
        lesson = session.get_one(Lesson, lesson_id)
        if payment.expires_at is not None and lesson.status == HELD:
            lesson.hold_expires_at = payment.expires_at
            lesson.updated_at = clock.now()
    return BookingResult(lesson, created=True, payment=payment)


def abandon_hold(
    lesson_id: int, why: str, contact_id: str, details: tuple[dict[str, Any], dict[str, Any]]
) -> None:
    """Release a hold we could not finish (no payment link), so it does not block its slot, and
    put back the contact details the failed request brought. The customer is not messaged: the
    bot got the error and says so itself."""
    with write_session() as session:
        lesson = session.get(Lesson, lesson_id)
        if lesson is not None and lesson.status == HELD:
            lessons.cancel(session, lesson, f"booking failed: {why}", notify=False)
        before, written = details
        restore_identity(session, contact_id, written, before)


def _alternatives(profile: PlanningProfile, exclude: datetime | None = None) -> list[Slot]:
    """Free slots of the profile the request was resolved to (the conversation may not be
    registered: a refused request stores nothing)."""
    try:
        with read_session() as session:
            tutors = tutors_for_profile(session, profile.name)
        with read_session() as session:  # fresh: see busy_by_tutor on pooled connections
            slots = slots_for_profile(session, profile, limit=profile.max_suggestions + 1, tutors=tutors)
    except Exception:  # noqa: BLE001 - alternatives are a courtesy; the conflict still stands
        return []
    return [s for s in slots if s.start != exclude][: profile.max_suggestions]
