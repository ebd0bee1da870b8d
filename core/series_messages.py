"""What the customer is told about a weekly series (core/series.py): ONE message per event for
the whole series, not one per lesson. core/lessons.py calls in here for a lesson with a
`series_id` where it would tell a single lesson's customer; this module sits below lessons and
imports only messages and models.

- Confirmed: once every confirmed lesson of the series has had its slot checked by its calendar
  job (calendar_sync synced or failed, or the lesson whose job is checking it now), one
  `series_confirmed` lists them. A lesson whose slot turned out taken got `slot_lost` and is not
  in the list. Without payment the series is confirmed at booking: told at once.
- Payment still processing, hold expired, payment failed: one message listing the lessons that
  were waiting for the series' payment.

Each has a dedupe key per series, so a repeated webhook, a job run twice or two workers at once
tell it once; the series row is locked (Postgres) so the last calendar job always sees the others.
"""

from __future__ import annotations

from sqlmodel import Session, col, select

from core.db import is_sqlite
from core.messages import format_dates, format_short, queue_message
from core.models import CONFIRMED, WAITING_FOR_PAYMENT, CalendarSync, Lesson, LessonSeries, OutboxMessage

SETTLED = (CalendarSync.SYNCED, CalendarSync.FAILED)  # the job checked the slot (and is done)
SINGLE = {  # a "series" of one lesson (the others lost or cancelled) reads as a single lesson
    "series_confirmed": "booking_confirmed",
    "series_payment_processing": "payment_processing",
    "series_hold_expired": "hold_expired",
    "series_payment_failed": "payment_failed",
}


def _lessons(session: Session, series_id: int) -> list[Lesson]:
    return list(
        session.exec(
            select(Lesson).where(Lesson.series_id == series_id).order_by(col(Lesson.start), col(Lesson.id))
        ).all()
    )


def _told(session: Session, dedupe_key: str) -> bool:
    return (
        session.exec(select(OutboxMessage.id).where(OutboxMessage.dedupe_key == dedupe_key)).first()
        is not None
    )


def _tell(session: Session, told: list[Lesson], key: str, dedupe_key: str) -> None:
    if not told:
        return
    if len(told) == 1:
        when = format_short(told[0].start)
        queue_message(session, told[0].conversation_id, SINGLE[key], dedupe_key=dedupe_key, when=when)
        return
    dates = format_dates([x.start for x in told])
    queue_message(
        session, told[0].conversation_id, key, dedupe_key=dedupe_key, lessons=len(told), dates=dates
    )


def confirmed_when_checked(session: Session, series_id: int, checked: int | None = None) -> None:
    """After a calendar job of the series checked a slot (lesson `checked`, its event still to be
    made), made an event or lost a slot: tell the series once every confirmed lesson is checked."""
    dedupe_key = f"series_confirmed:{series_id}"
    if _told(session, dedupe_key):
        return
    if not is_sqlite(session.get_bind()):  # the jobs of a series' lessons run side by side
        session.exec(select(LessonSeries.id).where(LessonSeries.id == series_id).with_for_update()).all()
    confirmed = [x for x in _lessons(session, series_id) if x.status == CONFIRMED]
    if all(x.calendar_sync in SETTLED or x.id == checked for x in confirmed):
        _tell(session, confirmed, "series_confirmed", dedupe_key)


def confirmed_at_once(session: Session, series_id: int) -> None:
    """A series booked without payment: its slots were checked while claiming them."""
    confirmed = [x for x in _lessons(session, series_id) if x.status == CONFIRMED]
    _tell(session, confirmed, "series_confirmed", f"series_confirmed:{series_id}")


def waiting(session: Session, lesson: Lesson, key: str, dedupe: str) -> None:
    """`lesson` of a series just moved for its payment (processing, expired, failed): one message
    for it and the series' lessons still waiting for that payment (the first lesson decides)."""
    assert lesson.series_id is not None
    told = [
        x for x in _lessons(session, lesson.series_id) if x.id == lesson.id or x.status in WAITING_FOR_PAYMENT
    ]
    _tell(session, told, key, f"{dedupe}:{lesson.series_id}")
