"""What a customer may do with their own lessons through the bot (DESIGN → HTTP contract:
lessons, cancel, reschedule; the policies on PlanningProfile).

- A conversation sees and changes only its own lessons: another conversation's lesson is
  NotFound (404), so the bot cannot even learn that it exists.
- Up to `cancel_notice_hours` before the start a customer may cancel or move a lesson; after that
  only staff can (422 saying until when it was possible). An on-time cancel of a paid lesson is
  refunded in full (`on_time_cancel = refund`) through a `stripe.refund` job written in the same
  transaction as the cancel, or gives one prepaid credit back (`on_time_cancel = credit`); a
  lesson paid by credit always gets its credit back (core/lesson_changes.py's cancel_terms). A lesson that waits for payment can always be cancelled (nothing
  was paid); a paid lesson that lost its slot (`needs_reschedule`) too, with a refund: not the
  customer's doing.
- Repeating a cancel or a move is a no-op that answers like the first time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, select

from core import clock, credits, lessons
from core.audit import audit
from core.booking import payment_for_lesson
from core.db import read_session, write_session
from core.errors import NotFound, ValidationFailed
from core.lesson_changes import (
    CREDIT,
    NONE,
    REFUND,
    CancelTerms,
    cancel_terms,
    cancel_until,
    cancel_with_consequence,
    move_lesson,
)
from core.messages import format_short
from core.models import (
    CANCELLED,
    CONFIRMED,
    Lesson,
    Tutor,
    stored_id,
)
from core.payments.refunds import queued_refund
from core.slots import require_aware


class NoticePassed(ValidationFailed):
    """Too late for the customer to cancel or move this lesson through the bot."""


@dataclass(frozen=True)
class LessonView:
    lesson: Lesson
    tutor: str
    payment_status: str | None
    terms: CancelTerms


@dataclass(frozen=True)
class CancelOutcome:
    lesson: Lesson
    terms: CancelTerms
    dry_run: bool


def _own_lesson(session: Session, lesson_id: int, conversation_id: str) -> Lesson:
    lesson = session.get(Lesson, lesson_id)
    if lesson is None or lesson.conversation_id != conversation_id:
        raise NotFound(f"Conversation '{conversation_id}' has no lesson {lesson_id}.")
    return lesson


def conversation_lessons(conversation_id: str, now: datetime | None = None) -> list[LessonView]:
    """The conversation's lessons, upcoming first (then the past, newest first)."""
    now = now or clock.now()
    with read_session() as session:
        rows = session.exec(select(Lesson).where(Lesson.conversation_id == conversation_id)).all()
        upcoming = sorted((r for r in rows if r.end >= now), key=lambda r: r.start)
        past = sorted((r for r in rows if r.end < now), key=lambda r: r.start, reverse=True)
        views = []
        for lesson in [*upcoming, *past]:
            tutor = session.get(Tutor, lesson.tutor_id)
            payment = payment_for_lesson(session, stored_id(lesson))
            views.append(
                LessonView(
                    lesson,
                    tutor.name if tutor else "",
                    payment.status if payment else None,
                    cancel_terms(session, lesson, now),
                )
            )
    return views


def _too_late(session: Session, lesson: Lesson, verb: str) -> NoticePassed:
    until = cancel_until(session, lesson)
    return NoticePassed(
        f"Lesson {lesson.id} can no longer be {verb} through the bot: that was possible until "
        f"{format_short(until)} (Dutch time). Staff can still help: please hand over to a person."
    )


def customer_cancel(
    lesson_id: int,
    conversation_id: str,
    reason: str = "",
    *,
    dry_run: bool = False,
    now: datetime | None = None,
) -> CancelOutcome:
    """Cancel the conversation's lesson under the profile's policy (see the module docstring).
    `dry_run` only tells the terms. Raises NotFound (not this conversation's) or NoticePassed."""
    now = now or clock.now()
    reason = (reason or "").strip()[:500]
    if dry_run:
        with read_session() as session:
            lesson = _own_lesson(session, lesson_id, conversation_id)
            return CancelOutcome(
                lesson, _repeat_terms(session, lesson) or cancel_terms(session, lesson, now), True
            )
    with write_session() as session:
        lesson = _own_lesson(session, lesson_id, conversation_id)
        lessons.lock_lesson(session, lesson)
        repeated = _repeat_terms(session, lesson)
        if repeated is not None:
            return CancelOutcome(lesson, repeated, False)
        terms = cancel_terms(session, lesson, now)
        if not terms.allowed:
            raise (
                _too_late(session, lesson, "cancelled")
                if lesson.status == CONFIRMED
                else ValidationFailed(f"Lesson {lesson_id} is {lesson.status}; it cannot be cancelled.")
            )
        before = lesson.status
        who = f"customer:{conversation_id}"
        terms = cancel_with_consequence(
            session, lesson, terms.consequence, reason or "cancelled by the customer", who
        )
        audit(
            session,
            f"customer:{conversation_id}",
            "lesson.cancel",
            "Lesson",
            lesson.id,
            {"status": before},
            {"status": CANCELLED, "reason": reason or None, **terms.consequence_dict()},
        )
    return CancelOutcome(lesson, terms, False)


def _repeat_terms(session: Session, lesson: Lesson) -> CancelTerms | None:
    """For a lesson this conversation already cancelled: what that cancel did."""
    if lesson.status != CANCELLED:
        return None
    given = credits.returned(session, stored_id(lesson))
    if given is not None and given.delta > 0:
        return CancelTerms(
            True, cancel_until(session, lesson), CREDIT, minutes=credits.lesson_minutes(lesson)
        )
    refund = queued_refund(session, stored_id(lesson))
    if refund is not None:
        return CancelTerms(
            True, cancel_until(session, lesson), REFUND, int(refund["amount"]), refund.get("currency")
        )
    return CancelTerms(True, cancel_until(session, lesson), NONE)


def customer_reschedule(
    lesson_id: int, conversation_id: str, start: datetime, end: datetime, now: datetime | None = None
) -> Lesson:
    """Move the conversation's confirmed lesson to `start`-`end` (same tutor, same payment, the
    event moved), up to the notice time. Repeating the same move returns the lesson unchanged."""
    now = now or clock.now()
    start, end = require_aware(start, "start"), require_aware(end, "end")
    with read_session() as session:
        lesson = _own_lesson(session, lesson_id, conversation_id)
        if end - start != lesson.end - lesson.start:
            minutes = int((lesson.end - lesson.start).total_seconds() // 60)
            raise ValidationFailed(f"Lesson {lesson_id} lasts {minutes} minutes; a move keeps its length.")
        if lesson.status == CONFIRMED and start == lesson.start:
            return lesson

    def may(session: Session, lesson: Lesson) -> str:
        _own_lesson(session, stored_id(lesson), conversation_id)
        if lesson.status == CONFIRMED and now > cancel_until(session, lesson):
            raise _too_late(session, lesson, "moved")
        return f"customer:{conversation_id}"

    def record(session: Session, who: str, lesson: Lesson, before: dict[str, Any]) -> None:
        audit(
            session,
            who,
            "lesson.reschedule",
            "Lesson",
            lesson.id,
            before,
            {"status": lesson.status, "start": lesson.start},
        )

    return move_lesson(lesson_id, start, may=may, record=record, statuses=(CONFIRMED,))
