"""The calendar protocol every backend implements, and the value types it speaks.

A backend answers three questions for tutor calendars: when is each one busy in a range, create
this lesson's event, delete that event. Busy time is a list of aware (start, end) pairs per
calendar id. A backend that cannot read a calendar raises `CalendarUnavailable`; it never
answers "free" when it does not know.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable

from core.slots import merge_intervals

Busy = list[tuple[datetime, datetime]]
__all__ = [
    "Busy",
    "CalendarBackend",
    "CalendarCheck",
    "CreatedEvent",
    "EventRequest",
    "event_id_for_lesson",
    "merge_intervals",
]


def event_id_for_lesson(lesson_id: int) -> str:
    """Deterministic calendar event id for a lesson.

    Google accepts 5-1024 characters of base32hex (a-v, 0-9), so a retried insert after a lost
    response hits 409 instead of creating a second event.
    """
    return f"lesplanner{int(lesson_id):08d}"


@dataclass(frozen=True)
class EventRequest:
    lesson_id: int
    calendar_id: str
    start: datetime
    end: datetime
    summary: str
    description: str = ""
    timezone: str = "Europe/Amsterdam"
    attendee_email: str | None = None
    attendee_name: str | None = None

    @property
    def event_id(self) -> str:
        return event_id_for_lesson(self.lesson_id)


@dataclass(frozen=True)
class CreatedEvent:
    event_id: str
    # None: no attendee to invite; True: the calendar sent the invite; False: it refused.
    invite_sent: bool | None = None
    note: str | None = None  # shown on the lesson, e.g. why no invite went out
    html_link: str | None = None


@dataclass
class CalendarCheck:
    """One line of `check-calendar` / the integrations page."""

    subject: str  # "credentials" or a calendar id
    ok: bool
    detail: str
    fix: str | None = None
    extra: dict = field(default_factory=dict)


@runtime_checkable
class CalendarBackend(Protocol):
    name: str
    # Whether busy() includes the events this backend created for lessons. Google: yes, a
    # confirmed lesson's event is busy time like any other. The embedded calendar: no, its busy
    # time is only tutors' time off (lessons live in the Lesson table). Rescheduling ignores a
    # lesson's own old time in busy() only when it is there.
    busy_includes_lesson_events: bool

    def busy(self, calendar_ids: Sequence[str], start: datetime, end: datetime) -> dict[str, Busy]:
        """Busy intervals per calendar id in [start, end), merged and sorted.

        Raises CalendarUnavailable when any calendar cannot be read."""
        ...

    def create_event(self, request: EventRequest) -> CreatedEvent:
        """Create the lesson's event; idempotent on the lesson id."""
        ...

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete (with updates to attendees); already gone is success."""
        ...

    def check(self, calendar_ids: Sequence[str]) -> list[CalendarCheck]:
        """Diagnose credentials and access to each calendar."""
        ...
