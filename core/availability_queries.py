"""The console's week view of a tutor: the calendar's busy time, the profile's free slots (every
one, not only what the bot would suggest), the closures with their names, and the hours outside
the tutor's working hours. Above core/booking.py: the free slots are booking's."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session

from core.availability import Interval, closures_for, midnight, outside_hours, tutor_hours, week_bounds
from core.booking import slots_for_profile
from core.calendars import get_backend
from core.errors import NotFound
from core.models import PlanningProfile, Tutor


@dataclass(frozen=True, slots=True)
class ClosureSpan:
    """A closure that applies in the week, as time: local midnight to local midnight."""

    name: str
    source: str  # holidays | import | admin
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class WeekCalendar:
    busy: list[Interval]  # the tutor's calendar
    free: list[Interval]  # every slot the profile could offer now
    closures: list[ClosureSpan]
    off_hours: list[Interval]  # outside the tutor's working hours; empty when none are set


def week_calendar(
    session: Session, profile_name: str, tutor_id: int, week_start: date, tz: ZoneInfo, now: datetime
) -> WeekCalendar:
    """The tutor's calendar busy time in the week, the profile's free slots in it, the closures
    that apply (with their names) and the time outside the tutor's working hours (`off_hours`,
    empty when the tutor has none set: the profile's window applies).

    Free slots are what the bot could offer now (lead time and horizon apply), for this tutor
    only. Raises CalendarUnavailable when the calendar cannot be read: no slots are guessed."""
    tutor = session.get(Tutor, tutor_id)
    profile = session.get(PlanningProfile, profile_name)
    if tutor is None or profile is None:
        raise NotFound("Unknown tutor or profile.")
    lo, hi = week_bounds(week_start, tz)
    busy = get_backend().busy([tutor.calendar_id], lo, hi).get(tutor.calendar_id, [])
    free = [
        s for s in slots_for_profile(session, profile, now, tutors=[tutor], every=True) if lo <= s.start < hi
    ]
    closures = [
        ClosureSpan(
            name=c.name,
            source=c.source,
            start=midnight(max(c.start_date, week_start), tz),
            end=midnight(min(c.end_date, week_start + timedelta(days=6)) + timedelta(days=1), tz),
        )
        for c in closures_for(session, profile, week_start, week_start + timedelta(days=6))
    ]
    hours: dict[int, list[tuple[int, int]]] = {}
    for h in tutor_hours(session, tutor_id):
        hours.setdefault(h.weekday, []).append((h.start_minute, h.end_minute))
    off_hours = outside_hours(hours, lo, hi, tz) if hours else []
    return WeekCalendar(
        busy=[(s, e) for s, e in busy],
        free=[(s.start, s.end) for s in free],
        closures=closures,
        off_hours=off_hours,
    )
