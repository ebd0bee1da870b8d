"""Changing planned lessons: cancel, move, mark attendance — by staff in the console, and the
one path a move takes for the customer's self-service too (`move_lesson`, core/self_service.py).

Every change claims what it needs like a booking does (core/booking.py): a move reads the
calendar fresh, then claims the new slot under the tutor lock; the state change itself, its jobs
and its audit row are core/lessons.py's steps in one transaction.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel import Session

from core import clock, credits, lessons
from core.audit import audit, current_actor
from core.availability import refuse_closed
from core.booking import payment_for_lesson, slots_for_profile
from core.calendars import get_backend
from core.config import get_settings
from core.db import read_session, write_session
from core.errors import (
    InvalidTransition,
    NotFound,
    PermissionDenied,
    SlotNotOffered,
    SlotTaken,
    ValidationFailed,
)
from core.lessons import lesson_busy, lock_lesson
from core.messages import format_money, format_short, format_when, queue_message
from core.models import (
    AWAITING_PAYMENT,
    CANCELLED,
    CONFIRMED,
    HELD,
    NEEDS_RESCHEDULE,
    Lesson,
    LessonOutcome,
    PaymentStatus,
    PlanningProfile,
    Tutor,
    User,
    stored_id,
)
from core.payments.refunds import left_to_refund, lesson_share, queue_refund, refundable_amount
from core.slots import Slot, is_offered, require_aware, subtract_interval

# --- cancelling ------------------------------------------------------------------------------


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


REFUND, CREDIT, NONE = "refund", "credit", "none"
CANCEL_CONSEQUENCES = (REFUND, CREDIT, NONE)


@dataclass(frozen=True)
class CancelTerms:
    """What cancelling now would do: allowed through the bot, until when, and the money: a
    refund (with its amount), a credit (one lesson of `minutes` back in the ledger) or none."""

    allowed: bool
    cancel_until: datetime | None
    consequence: str  # refund | credit | none
    amount: int | None = None
    currency: str | None = None
    minutes: int | None = None

    def consequence_dict(self) -> dict[str, Any]:
        if self.consequence == REFUND:
            return {"kind": REFUND, "amount": self.amount, "currency": self.currency}
        if self.consequence == CREDIT:
            return {"kind": CREDIT, "minutes": self.minutes}
        return {"kind": NONE}


def cancel_until(session: Session, lesson: Lesson) -> datetime:
    profile = session.get(PlanningProfile, lesson.profile_name)
    hours = profile.cancel_notice_hours if profile is not None else 24
    return lesson.start - timedelta(hours=hours)


def cancel_terms(session: Session, lesson: Lesson, now: datetime) -> CancelTerms:
    """The profile's policy for a customer's cancel now. Waiting for payment: nothing to give
    back. Confirmed, up to the notice: a lesson paid by credit gets its credit back (there is no
    payment to refund); a paid one is refunded, or credited under `on_time_cancel = credit`.
    A paid lesson that lost its slot (needs_reschedule): a refund, not the customer's doing."""
    until = cancel_until(session, lesson)
    if lesson.status in (HELD, AWAITING_PAYMENT):
        return CancelTerms(True, until, NONE)
    payment = payment_for_lesson(session, stored_id(lesson))
    amount = lesson_share(payment, refundable_amount(payment)) if payment is not None else 0
    currency = (payment.currency or "eur") if payment is not None else None
    minutes = credits.lesson_minutes(lesson)
    by_credit = credits.paid_by_credit(session, stored_id(lesson))
    returnable = credits.credit_returnable(session, stored_id(lesson))
    profile = session.get(PlanningProfile, lesson.profile_name)
    policy = profile.on_time_cancel if profile is not None else REFUND
    if lesson.status == NEEDS_RESCHEDULE or (lesson.status == CONFIRMED and now <= until):
        if by_credit:  # its credit back, unless a refund of its bundle already paid it out
            return CancelTerms(
                True, until, CREDIT if returnable else NONE, minutes=minutes if returnable else None
            )
        # A whole lesson back only for a whole payment: partly refunded, the rest is refunded.
        whole = payment is not None and payment.status == PaymentStatus.PAID
        if amount and whole and policy == CREDIT and lesson.status == CONFIRMED:
            return CancelTerms(True, until, CREDIT, minutes=minutes)
        return CancelTerms(True, until, REFUND if amount else NONE, amount or None, currency)
    return CancelTerms(False, until, NONE)


def cancel_with_consequence(
    session: Session, lesson: Lesson, consequence: str, reason: str, actor: str, *, notify: bool = True
) -> CancelTerms:
    """Cancel `lesson` (locked by the caller) and give back what `consequence` says, in the
    caller's transaction: `refund` queues the lesson's `stripe.refund` job for what is still
    refundable, `credit` returns one lesson to the contact's ledger, `none` nothing. The
    customer is told once, in the words that fit. Returns what was done."""
    if consequence not in CANCEL_CONSEQUENCES:
        raise ValidationFailed(
            f"Choose what the cancel does: {', '.join(CANCEL_CONSEQUENCES)} (got {consequence!r}).",
            field="consequence",
        )
    lesson_id = stored_id(lesson)
    payment = payment_for_lesson(session, lesson_id)
    by_credit = credits.paid_by_credit(session, lesson_id)
    paid_money = payment is not None and payment.status in (
        PaymentStatus.PAID,
        PaymentStatus.PARTIALLY_REFUNDED,
    )
    until = cancel_until(session, lesson)
    minutes = credits.lesson_minutes(lesson)
    # A series lesson gets its share of the one payment back (core/payments/refunds.py).
    amount = (
        lesson_share(payment, left_to_refund(session, payment)) if payment is not None and paid_money else 0
    )
    if consequence == REFUND and by_credit:
        raise ValidationFailed(
            f"Lesson {lesson_id} was paid with a credit; there is no payment to refund. Give the credit back.",
            field="consequence",
        )
    if consequence == REFUND and amount <= 0:
        raise ValidationFailed(f"Lesson {lesson_id} has no payment left to refund.", field="consequence")
    if consequence == CREDIT and not (by_credit or paid_money):
        raise ValidationFailed(
            f"Lesson {lesson_id} was not paid; a credit for it would be a gift. "
            "Grant one on Contacten instead, with a reason.",
            field="consequence",
        )
    lessons.cancel(session, lesson, reason, notify=notify and consequence == NONE)
    currency = (payment.currency or "eur") if payment is not None else "eur"
    if consequence == REFUND:
        assert payment is not None  # amount > 0 needs a payment
        queue_refund(session, lesson, payment, amount, reason)
        if notify:
            queue_message(
                session,
                lesson.conversation_id,
                "lesson_cancelled_refund",
                dedupe_key=f"lesson_cancelled:{lesson_id}",
                when=format_short(lesson.start),
                amount=format_money(amount, currency),
            )
        return CancelTerms(True, until, REFUND, amount, currency)
    if consequence == CREDIT:
        credits.return_credit(session, lesson, reason, actor=actor, payment=None if by_credit else payment)
        if notify:
            queue_message(
                session,
                lesson.conversation_id,
                "lesson_cancelled_credit",
                dedupe_key=f"lesson_cancelled:{lesson_id}",
                when=format_short(lesson.start),
            )
        return CancelTerms(True, until, CREDIT, minutes=minutes)
    return CancelTerms(True, until, NONE)


def cancel_lesson(
    lesson_id: int,
    actor: User | None,
    reason: str = "",
    *,
    notify: bool = True,
    consequence: str | None = None,
) -> Lesson:
    """Cancel a lesson: its calendar event is removed and an open Checkout Session closed (as
    jobs, after commit), the slot is free at once, the customer is told once, and who did it
    is audited with what the cancel gave back. Staff choose `consequence` (refund / credit /
    none); by default what the profile's policy says for a customer's cancel now, and none
    within the notice time."""
    now = clock.now()
    with write_session() as session:
        lesson = session.get(Lesson, lesson_id)
        if lesson is None:
            raise NotFound(f"Lesson {lesson_id} does not exist.")
        lock_lesson(session, lesson)
        if actor is not None and not can_manage_lesson(session, actor, lesson):
            raise PermissionDenied("You may only cancel your own lessons.")
        if lesson.status not in (HELD, AWAITING_PAYMENT, CONFIRMED, NEEDS_RESCHEDULE):
            raise InvalidTransition(f"Lesson {lesson_id} is already {lesson.status}.")
        before = lesson.status
        if consequence is None:
            terms = cancel_terms(session, lesson, now)
            consequence = terms.consequence if terms.allowed else NONE
        who = actor.email if actor else "system"
        done = cancel_with_consequence(
            session, lesson, consequence, reason or "cancelled in the console", who, notify=notify
        )
        audit(
            session,
            who,
            "lesson.cancel",
            "Lesson",
            lesson.id,
            {"status": before},
            {
                "status": CANCELLED,
                "reason": lesson.cancel_reason,
                "consequence": done.consequence,
                **({"amount": done.amount} if done.amount else {}),
            },
        )
    return lesson


def default_cancel_consequence(session: Session, lesson_id: int, now: datetime) -> str:
    """What a staff cancel of the lesson does by default at `now` (the console's preselection)."""
    lesson = session.get(Lesson, lesson_id)
    if lesson is None:
        raise NotFound(f"Lesson {lesson_id} does not exist.")
    terms = cancel_terms(session, lesson, now)
    return terms.consequence if terms.allowed else NONE


def mark_attendance(lesson_id: int, actor: User, outcome: str) -> Lesson:
    """A tutor (their own lessons) or an admin marks a confirmed lesson that has ended as
    attended or no-show; marking again corrects it. Audited."""
    if outcome not in {o.value for o in LessonOutcome}:
        raise ValidationFailed(f"Unknown outcome '{outcome}'; use attended or no_show.")
    with write_session() as session:
        who = current_actor(session, actor, "admin", "tutor")
        lesson = session.get(Lesson, lesson_id)
        if lesson is None:
            raise NotFound(f"Lesson {lesson_id} does not exist.")
        lock_lesson(session, lesson)
        if not can_manage_lesson(session, who, lesson):
            raise PermissionDenied("You may only mark your own lessons.")
        before = lesson.outcome
        lessons.mark_outcome(session, lesson, outcome)
        audit(
            session,
            who,
            "lesson.attendance",
            "Lesson",
            lesson.id,
            {"outcome": before} if before else None,
            {"outcome": outcome},
        )
    return lesson


# --- rescheduling -----------------------------------------------------------------------------


def _managed_lesson(session: Session, lesson_id: int, actor: User | None, verb: str) -> Lesson:
    """The lesson, if it exists and the (active) actor may manage it."""
    lesson = session.get(Lesson, lesson_id)
    if lesson is None:
        raise NotFound(f"Lesson {lesson_id} does not exist.")
    who = current_actor(session, actor)
    if not can_manage_lesson(session, who, lesson):
        raise PermissionDenied(f"You may only {verb} your own lessons.")
    return lesson


def reschedule_options(
    lesson_id: int, actor: User, now: datetime | None = None, limit: int = 30
) -> list[Slot]:
    """Free slots of the lesson's profile with the lesson's tutor, the lesson itself not counting
    as busy (a lesson may move by half an hour)."""
    now = now or clock.now()
    with read_session() as session:
        lesson = _managed_lesson(session, lesson_id, actor, "reschedule")
        profile = session.get_one(PlanningProfile, lesson.profile_name)
        tutor = session.get_one(Tutor, lesson.tutor_id)
        slots = slots_for_profile(
            session, profile, now, limit=limit + 1, tutors=[tutor], exclude_lesson=lesson.id, every=True
        )
    return [s for s in slots if s.start != lesson.start][:limit]


def _calendar_busy_except(
    busy: Sequence[tuple[datetime, datetime]],
    own: tuple[datetime, datetime] | None,
    lo: datetime,
    hi: datetime,
) -> bool:
    """Whether calendar busy time overlaps [lo, hi), not counting the time of our own old event.

    Busy time comes merged: the old event and an event right next to it are one interval, so the
    old event's time is cut out of each interval and only what remains counts."""
    for interval in busy:
        pieces = subtract_interval(interval, own) if own is not None else [interval]
        if any(s < hi and e > lo for s, e in pieces):
            return True
    return False


def reschedule_lesson(lesson_id: int, start: datetime, actor: User, reason: str = "") -> Lesson:
    """Move a confirmed lesson (or rebook a needs_reschedule one) to `start`, same tutor: the
    same lesson with the same payment at its new time; its calendar event is moved by a job.

    Held lessons are refused (their Checkout Session is for the old time). The new slot is
    claimed like a booking: a fresh calendar read, then the database under the tutor lock.
    """

    def may(session: Session, lesson: Lesson) -> User:
        who = current_actor(session, actor)
        if not can_manage_lesson(session, who, lesson):
            raise PermissionDenied("You may only reschedule your own lessons.")
        return who

    def record(session: Session, who: User, lesson: Lesson, before: dict[str, Any]) -> None:
        audit(
            session,
            who,
            "lesson.reschedule",
            "Lesson",
            lesson.id,
            before,
            {"status": lesson.status, "start": lesson.start, "reason": reason.strip() or None},
        )

    return move_lesson(lesson_id, start, may=may, record=record)


def move_lesson(
    lesson_id: int,
    start: datetime,
    *,
    may: Callable[[Session, Lesson], Any],
    record: Callable[[Session, Any, Lesson, dict[str, Any]], None],
    statuses: tuple[str, ...] = (CONFIRMED, NEEDS_RESCHEDULE),
) -> Lesson:
    """The one way a lesson moves (staff in the console, the customer through the bot): `may`
    says who may (raising otherwise; it runs again under the lock), `record` audits the move."""
    start = require_aware(start, "start").astimezone(UTC)
    tz = get_settings().tz
    now = clock.now()
    with read_session() as session:
        lesson = session.get(Lesson, lesson_id)
        if lesson is None:
            raise NotFound(f"Lesson {lesson_id} does not exist.")
        may(session, lesson)
        if lesson.status in (HELD, AWAITING_PAYMENT):
            raise InvalidTransition(
                f"Lesson {lesson_id} is waiting for payment; cancel it or wait until it is paid."
            )
        if lesson.status not in statuses:
            raise InvalidTransition(f"Lesson {lesson_id} is {lesson.status}; only planned lessons can move.")
        profile = session.get_one(PlanningProfile, lesson.profile_name)
        tutor = session.get_one(Tutor, lesson.tutor_id)
        old_start, old_end, status = lesson.start, lesson.end, lesson.status
        event_id = lesson.calendar_event_id
    end = start + (old_end - old_start)
    if start == old_start and status == CONFIRMED:
        raise ValidationFailed("The lesson already starts at that time.")
    if not is_offered(profile, now, start, tz):
        raise SlotNotOffered(
            f"{format_when(start, 'en', tz)} is not a time the '{profile.name}' profile offers now."
        )
    with read_session() as session:
        refuse_closed(session, profile, [tutor], start, end, tz, format_when(start, "en", tz))
    buffer = timedelta(minutes=profile.buffer_minutes or 0)
    lo, hi = start - buffer, end + buffer
    backend = get_backend()
    # The old event is in the calendar's busy time only where the backend reports lesson events
    # (Google); elsewhere all of it is someone else's, e.g. time off, and none may be ignored.
    own_busy = (
        (old_start, old_end)
        if status == CONFIRMED and event_id and getattr(backend, "busy_includes_lesson_events", False)
        else None
    )
    busy = backend.busy([tutor.calendar_id], lo, hi).get(tutor.calendar_id, [])
    busy_without = getattr(backend, "busy_without", None)
    if (
        own_busy is not None
        and event_id
        and busy_without is not None
        and own_busy[0] < hi
        and own_busy[1] > lo
    ):
        # Moving within its old time: merged free/busy cannot tell the lesson's own event from an
        # appointment lying inside it, so the events of the window are listed without our own.
        busy, own_busy = busy_without(tutor.calendar_id, lo, hi, event_id), None
    if _calendar_busy_except(busy, own_busy, lo, hi):
        raise SlotTaken(f"{format_when(start, 'en', tz)} is busy in {tutor.name}'s calendar.")

    with write_session() as session:
        lesson = session.get_one(Lesson, lesson_id)
        lock_lesson(session, lesson)
        who = may(session, lesson)
        if lesson.status not in statuses or lesson.start != old_start:
            raise InvalidTransition(
                f"Lesson {lesson_id} changed meanwhile (now {lesson.status}); look again."
            )
        if lesson_busy(session, [stored_id(tutor)], lo, hi, now, exclude_lesson=lesson.id)[stored_id(tutor)]:
            raise SlotTaken(f"{format_when(start, 'en', tz)} was just taken. Please choose another time.")
        before = {"status": lesson.status, "start": old_start}
        lessons.move(session, lesson, start, end)
        record(session, who, lesson, before)
    return lesson
