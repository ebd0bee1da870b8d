"""POST /api/v1/series: a weekly series (core/series.py). A dry run tells per week free or taken
(with alternatives); otherwise the asked weeks are booked at once (201; 200 for the same series
again) with one payment link for them all, or none (409 naming the taken week)."""

from __future__ import annotations

from fastapi import APIRouter, Response

from core.config import get_settings
from core.models import HELD
from core.series import SeriesResult, book_series
from receiver.routes.bookings import lesson_fields
from receiver.schemas import (
    LessonOut,
    SeriesIn,
    SeriesOut,
    SeriesWeekOut,
    SlotOut,
    error_responses,
    local,
)

router = APIRouter(tags=["bot"])


def series_out(result: SeriesResult) -> SeriesOut:
    payment = result.payment
    held = any(lesson.status == HELD for lesson in result.lessons)
    open_link = payment is not None and payment.status == "open" and held
    return SeriesOut(
        series_id=result.series_id,
        profile=result.profile,
        timezone=get_settings().timezone,
        dry_run=result.dry_run,
        weeks=[
            SeriesWeekOut(
                week=w.week,
                start=local(w.start),
                end=local(w.end),
                status=w.status,
                reason=w.reason,
                tutor=w.tutor.name
                if w.tutor is not None
                else (result.tutors.get(w.lesson.tutor_id) if w.lesson is not None else None),
                lesson_id=w.lesson.id if w.lesson is not None else None,
                alternatives=[SlotOut.of(s) for s in w.alternatives],
            )
            for w in result.weeks
        ],
        lessons=[
            LessonOut(
                **{
                    **lesson_fields(lesson, result.tutors.get(lesson.tutor_id, "")),
                    "payment_url": payment.url if open_link and lesson.status == HELD and payment else None,
                    "checkout_session_id": payment.checkout_session_id if payment else None,
                }
            )
            for lesson in result.lessons
        ],
        payment_url=payment.url if open_link and payment else None,
        checkout_session_id=payment.checkout_session_id if payment else None,
        amount=payment.amount if payment else None,
        currency=payment.currency if payment else None,
        hold_expires_at=local(
            max((x.hold_expires_at for x in result.lessons if x.hold_expires_at), default=None)
        ),
    )


@router.post(
    "/series",
    status_code=201,
    response_model=SeriesOut,
    responses={
        200: {"model": SeriesOut, "description": "A dry run, or the same series again (idempotent repeat)"},
        **error_responses(401, 404, 409, 413, 422, 503),
    },
)
def create_series(body: SeriesIn, response: Response) -> SeriesOut:
    result = book_series(
        body.conversation_id,
        body.start,
        body.end,
        body.weeks,
        contact_id=body.contact_id,
        profile_name=body.profile or None,
        skip=body.skip,
        title=body.title,
        description=body.description,
        dry_run=body.dry_run,
    )
    response.status_code = 201 if result.created else 200
    return series_out(result)
