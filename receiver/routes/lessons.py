"""The customer's own lessons, as the bot manages them (core/self_service.py): list, cancel
(with `dry_run` to tell the consequence first), reschedule. Another conversation's lesson is a
404; within the notice time a change is a 422 saying until when it was possible."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from core.models import Lesson, Tutor
from core.self_service import conversation_lessons, customer_cancel, customer_reschedule
from receiver.deps import SessionDep
from receiver.routes.bookings import lesson_fields
from receiver.schemas import (
    CancelIn,
    CancelNow,
    CancelOut,
    Consequence,
    CustomerLessonOut,
    CustomerLessonsOut,
    LessonOut,
    RescheduleIn,
    SafeId,
    error_responses,
    local,
)

router = APIRouter(tags=["bot"])

ConversationId = Annotated[str, Path(), SafeId]
LessonId = Annotated[int, Path(ge=1, le=2**31 - 1)]


@router.get(
    "/conversations/{conversation_id}/lessons",
    response_model=CustomerLessonsOut,
    responses=error_responses(401, 422, 503),
)
def list_lessons(conversation_id: ConversationId) -> CustomerLessonsOut:
    return CustomerLessonsOut(
        lessons=[
            CustomerLessonOut(
                **lesson_fields(view.lesson, view.tutor),
                payment_status=view.payment_status,
                outcome=view.lesson.outcome,
                cancel_until=local(view.terms.cancel_until),
                cancel_now=CancelNow(
                    allowed=view.terms.allowed,
                    consequence=view.terms.consequence,
                    amount=view.terms.amount,
                    currency=view.terms.currency,
                    minutes=view.terms.minutes,
                ),
            )
            for view in conversation_lessons(conversation_id)
        ]
    )


def _tutor(session: SessionDep, lesson: Lesson) -> str:  # noqa: ANN001
    tutor = session.get(Tutor, lesson.tutor_id)
    return tutor.name if tutor else ""


@router.post(
    "/lessons/{lesson_id}/cancel", response_model=CancelOut, responses=error_responses(401, 404, 422, 503)
)
def cancel(lesson_id: LessonId, body: CancelIn, session: SessionDep) -> CancelOut:
    outcome = customer_cancel(lesson_id, body.conversation_id, body.reason, dry_run=body.dry_run)
    terms = outcome.terms
    return CancelOut(
        lesson=LessonOut(**lesson_fields(outcome.lesson, _tutor(session, outcome.lesson))),
        allowed=terms.allowed,
        consequence=Consequence(**terms.consequence_dict()),
        cancel_until=local(terms.cancel_until),
        dry_run=outcome.dry_run,
    )


@router.post(
    "/lessons/{lesson_id}/reschedule",
    response_model=LessonOut,
    responses=error_responses(401, 404, 409, 422, 503),
)
def reschedule(lesson_id: LessonId, body: RescheduleIn, session: SessionDep) -> LessonOut:
    lesson = customer_reschedule(lesson_id, body.conversation_id, body.start, body.end)
    return LessonOut(**lesson_fields(lesson, _tutor(session, lesson)))
