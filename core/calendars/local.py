"""The embedded calendar (the default backend): tutors' time off lives in BusyBlock rows and
lessons live in the Lesson table, so nothing outside is needed to run Lesplanner.

An "event" in this calendar is the lesson row itself; its id is the same deterministic id a
Google event would get, so switching backends keeps the naming.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlmodel import col, select

from core.calendars.base import Busy, CalendarCheck, CreatedEvent, EventRequest, merge_intervals
from core.db import read_session
from core.models import BusyBlock, Tutor


class LocalCalendarBackend:
    name = "local"
    busy_includes_lesson_events = False  # busy() is time off only; lessons are in the Lesson table

    def busy(self, calendar_ids: Sequence[str], start: datetime, end: datetime) -> dict[str, Busy]:
        result: dict[str, Busy] = {cid: [] for cid in calendar_ids}
        if not calendar_ids:
            return result
        with read_session() as session:
            rows = session.exec(
                select(Tutor.calendar_id, BusyBlock.start, BusyBlock.end)
                .join(Tutor, col(Tutor.id) == col(BusyBlock.tutor_id))
                .where(col(Tutor.calendar_id).in_(list(calendar_ids)))
                .where(col(BusyBlock.end) > start, col(BusyBlock.start) < end)
            ).all()
        grouped: dict[str, list] = {cid: [] for cid in calendar_ids}
        for calendar_id, b_start, b_end in rows:
            grouped[calendar_id].append((b_start, b_end))
        for cid, intervals in grouped.items():
            result[cid] = merge_intervals(intervals)
        return result

    def create_event(self, request: EventRequest) -> CreatedEvent:
        note = None
        if request.attendee_email:
            note = "Embedded calendar: no e-mail invite is sent; the customer is told in the chat."
        return CreatedEvent(event_id=request.event_id, invite_sent=None, note=note)

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        return None

    def check(self, calendar_ids: Sequence[str]) -> list[CalendarCheck]:
        return [
            CalendarCheck(
                subject="embedded calendar",
                ok=True,
                detail="Busy time comes from time off entered in the console and booked lessons.",
                fix="Set CALENDAR_BACKEND=google to use Google Calendar.",
            )
        ]
