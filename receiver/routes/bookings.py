"""POST /api/v1/bookings: book one offered slot. 201 new, 200 the same booking again,
409 taken (with fresh alternatives); a held lesson comes with its Stripe payment URL."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from core.booking import BookingResult, book_slot
from core.models import Lesson, Tutor
from receiver.deps import SessionDep
from receiver.schemas import BookingIn, LessonOut, error_responses, local

router = APIRouter(tags=["bot"])


def lesson_fields(lesson: Lesson, tutor_name: str) -> dict[str, Any]:
    """A lesson as the bot sees it (LessonOut's fields), without payment details."""
    return dict(
        id=lesson.id,
        status=lesson.status,
        conversation_id=lesson.conversation_id,
        contact_id=lesson.contact_id,
        start=local(lesson.start),
        end=local(lesson.end),
        title=lesson.title,
        tutor=tutor_name,
        profile=lesson.profile_name,
        calendar_event_id=lesson.calendar_event_id,
        calendar_sync=lesson.calendar_sync,
        hold_expires_at=local(lesson.hold_expires_at),
        payment_url=None,
        checkout_session_id=None,
    )


def lesson_out(result: BookingResult, tutor: Tutor | None) -> LessonOut:
    lesson, payment = result.lesson, result.payment
    return LessonOut(
        **{
            **lesson_fields(lesson, tutor.name if tutor else ""),
            "payment_url": result.payment_url if lesson.status == "held" else None,
            "checkout_session_id": payment.checkout_session_id if payment else None,
        }
    )


@router.post(
    "/bookings",
    status_code=201,
    response_model=LessonOut,
    responses={
        200: {"model": LessonOut, "description": "The same booking again (idempotent repeat)"},
        **error_responses(401, 404, 409, 413, 422, 503),
    },
)
def create_booking(body: BookingIn, response: Response, session: SessionDep) -> LessonOut:
    result = book_slot(
        body.conversation_id,
        body.start,
        body.end,
        body.title,
        body.description,
        contact_id=body.contact_id,
        profile_name=body.profile or None,
        contact_info=body.contact.model_dump(exclude_none=True) if body.contact else None,
    )
    response.status_code = 201 if result.created else 200
    return lesson_out(result, session.get(Tutor, result.lesson.tutor_id))
