"""Availability: everything that is not the calendar, turned into busy intervals for the slot
engine (which stays pure), and its console edits.

- Time off (BusyBlock rows of the local calendar backend): admins for anyone, tutors for
  themselves.
- Tutors' working hours (TutorHours): local wall-clock blocks per weekday; the time outside them
  is busy. A tutor without rows works the profile's whole window.
- Closures (Closure): public holidays from the `holidays` package (HOLIDAYS_COUNTRY, on per
  profile by default; an admin may mark one as not applying), school holidays imported per region
  (a profile switches one region on) and business closures entered by admins. A closure is busy
  from local midnight to local midnight for every tutor: never offered, never bookable.

`planning_busy` is what booking adds to the calendar's busy time; `refuse_closed` is the booking
and moving check. The week view that needs booking's slots is core/availability_queries.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from sqlmodel import Session, col, select

from core.audit import audit, current_actor
from core.config import get_settings
from core.db import write_session
from core.errors import NotFound, PermissionDenied, SlotNotOffered, ValidationFailed
from core.models import (
    BLOCKING_STATUSES,
    NEEDS_RESCHEDULE,
    BusyBlock,
    Closure,
    Contact,
    Lesson,
    PlanningProfile,
    Tutor,
    TutorHours,
    User,
    stored_id,
)
from core.paging import local_bounds, row_from
from core.slots import require_aware
from core.tutors import is_own_tutor, managed_tutor

Interval = tuple[datetime, datetime]

BUSY_BLOCK_MAX = timedelta(days=62)  # longer time off is almost always a typo in the year


def add_busy_block(actor: User, tutor_id: int, start: datetime, end: datetime, reason: str = "") -> BusyBlock:
    """Time off for a tutor: admins for anyone, tutors for themselves."""
    start = require_aware(start, "start").astimezone(UTC)
    end = require_aware(end, "end").astimezone(UTC)
    if end <= start:
        raise ValidationFailed("The end of the time off must be after its start.")
    if end - start > BUSY_BLOCK_MAX:
        raise ValidationFailed("Time off longer than 62 days: split it up (or check the year).")
    with write_session() as session:
        who, tutor = managed_tutor(
            session, actor, tutor_id, "You can only enter time off in your own calendar."
        )
        block = BusyBlock(
            tutor_id=tutor_id,
            start=start,
            end=end,
            reason=(reason or "").strip()[:200] or None,
            created_by=who.email,
        )
        session.add(block)
        session.flush()
        audit(
            session,
            who,
            "busy_block.add",
            "BusyBlock",
            block.id,
            None,
            {"tutor_id": tutor_id, "start": start, "end": end, "reason": block.reason},
        )
    return block


def remove_busy_block(actor: User, block_id: int) -> None:
    with write_session() as session:
        who = current_actor(session, actor, "admin", "tutor")
        block = session.get(BusyBlock, block_id)
        if block is None:
            raise NotFound("That time off no longer exists.")
        tutor = session.get(Tutor, block.tutor_id)
        if who.role != "admin" and not (tutor and is_own_tutor(who, tutor)):
            raise PermissionDenied("You can only remove time off from your own calendar.")
        audit(
            session,
            who,
            "busy_block.remove",
            "BusyBlock",
            block.id,
            {"tutor_id": block.tutor_id, "start": block.start, "end": block.end, "reason": block.reason},
            None,
        )
        session.delete(block)


# --- reads ------------------------------------------------------------------------------------


def week_bounds(week_start: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC [start, end) of the local week starting `week_start`."""
    lo, hi = local_bounds(week_start, week_start + timedelta(days=6), tz)
    assert lo is not None and hi is not None  # both dates are given, so neither end is open
    return lo, hi


@dataclass(frozen=True, slots=True)
class WeekLesson:
    id: int
    start: datetime
    end: datetime
    status: str
    title: str
    profile_name: str
    contact_name: str | None


@dataclass(frozen=True, slots=True)
class BusyBlockRow:
    """Time off of a tutor (a BusyBlock)."""

    id: int
    tutor_id: int
    start: datetime
    end: datetime
    reason: str | None
    created_by: str | None


@dataclass(frozen=True, slots=True)
class WeekItems:
    start: datetime  # UTC bounds of the local week
    end: datetime
    lessons: list[WeekLesson]
    busy_blocks: list[BusyBlockRow]


def week_items(session: Session, tutor_id: int, week_start: date, tz: ZoneInfo) -> WeekItems:
    """Lessons and time off (BusyBlock rows) of one tutor in the local week starting `week_start`."""
    lo, hi = week_bounds(week_start, tz)
    lessons = session.execute(
        # sqlmodel's select() is typed for at most four columns
        select(
            Lesson.id,
            Lesson.start,
            Lesson.end,
            Lesson.status,  # type: ignore[call-overload]
            Lesson.title,
            Lesson.profile_name,
            col(Contact.name).label("contact_name"),
        )
        .join(Contact, col(Contact.id) == col(Lesson.contact_id), isouter=True)
        .where(Lesson.tutor_id == tutor_id, col(Lesson.start) < hi, col(Lesson.end) > lo)
        .where(col(Lesson.status).in_((*BLOCKING_STATUSES, NEEDS_RESCHEDULE)))
        .order_by(col(Lesson.start))
    ).all()
    blocks = session.exec(
        select(BusyBlock)
        .where(BusyBlock.tutor_id == tutor_id, col(BusyBlock.start) < hi, col(BusyBlock.end) > lo)
        .order_by(col(BusyBlock.start))
    ).all()
    return WeekItems(
        start=lo,
        end=hi,
        lessons=[WeekLesson(**r._mapping) for r in lessons],
        busy_blocks=[row_from(BusyBlockRow, b) for b in blocks],
    )


def future_busy_blocks(
    session: Session, tutor_id: int, now: datetime, limit: int = 200
) -> list[BusyBlockRow]:
    rows = session.exec(
        select(BusyBlock)
        .where(BusyBlock.tutor_id == tutor_id, col(BusyBlock.end) > now)
        .order_by(col(BusyBlock.start))
        .limit(limit)
    ).all()
    return [row_from(BusyBlockRow, b) for b in rows]


# --- closures and working hours as busy time ----------------------------------------------------


@dataclass(frozen=True)
class ClosedDays:
    start_date: date
    end_date: date  # inclusive
    name: str
    source: str  # holidays | import | admin
    region: str | None = None


def midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _wall(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """The UTC instant of local wall-clock `minutes` after midnight of `day` (24:00 = the next
    midnight). A time in a spring-forward gap takes the offset before it (fold=0), which puts it
    after the gap: fine for the edges of busy time."""
    if minutes >= 24 * 60:
        return midnight(day + timedelta(days=1), tz)
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=tz).astimezone(UTC)


@lru_cache(maxsize=64)
def _holidays_of(country: str, year: int) -> tuple[tuple[date, str], ...]:
    found = holidays.country_holidays(country, years=year, language="nl" if country == "NL" else None)
    return tuple(sorted(found.items()))


def public_holidays(first: date, last: date, country: str | None = None) -> list[tuple[date, str]]:
    """The public holidays of HOLIDAYS_COUNTRY (or `country`) from `first` through `last`."""
    country = get_settings().holidays_country if country is None else country
    if not country:
        return []
    return [
        (d, n)
        for year in range(first.year, last.year + 1)
        for d, n in _holidays_of(country, year)
        if first <= d <= last
    ]


def closure_rows(session: Session, first: date, last: date) -> list[Closure]:
    return list(
        session.exec(
            select(Closure)
            .where(col(Closure.start_date) <= last, col(Closure.end_date) >= first)
            .order_by(col(Closure.start_date), col(Closure.id))
        ).all()
    )


def closures_for(session: Session, profile: PlanningProfile, first: date, last: date) -> list[ClosedDays]:
    """The closures that apply to `profile` on the local dates `first` through `last`."""
    rows = closure_rows(session, first, last)
    out: list[ClosedDays] = []
    if profile.public_holidays:
        off = {r.start_date for r in rows if r.source == "holidays" and not r.active}
        out += [ClosedDays(d, d, n, "holidays") for d, n in public_holidays(first, last) if d not in off]
    for r in rows:
        if not r.active or r.source == "holidays":
            continue
        if r.source == "import" and not (
            profile.school_holidays and r.region in (None, profile.school_holidays)
        ):
            continue
        out.append(ClosedDays(r.start_date, r.end_date, r.name, r.source, r.region))
    return sorted(out, key=lambda c: (c.start_date, c.end_date, c.name))


def _hours_by_tutor(
    session: Session, tutor_ids: Sequence[int]
) -> dict[int, dict[int, list[tuple[int, int]]]]:
    rows = session.exec(
        select(TutorHours)
        .where(col(TutorHours.tutor_id).in_(list(tutor_ids)))
        .order_by(col(TutorHours.weekday), col(TutorHours.start_minute))
    ).all()
    out: dict[int, dict[int, list[tuple[int, int]]]] = {}
    for h in rows:
        out.setdefault(h.tutor_id, {}).setdefault(h.weekday, []).append((h.start_minute, h.end_minute))
    return out


def outside_hours(
    week: dict[int, list[tuple[int, int]]], start: datetime, end: datetime, tz: ZoneInfo
) -> list[Interval]:
    """The time in [start, end) outside the weekly blocks `week` (weekday -> sorted blocks)."""
    busy: list[Interval] = []
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    while day <= last:
        cursor = 0
        for block_start, block_end in week.get(day.weekday(), []):
            if block_start > cursor:
                busy.append((_wall(day, cursor, tz), _wall(day, block_start, tz)))
            cursor = max(cursor, block_end)
        if cursor < 24 * 60:
            busy.append((_wall(day, cursor, tz), _wall(day, 24 * 60, tz)))
        day += timedelta(days=1)
    return [(s, e) for s, e in busy if s < end and e > start]


def _shrink(intervals: Iterable[Interval], buffer: timedelta) -> list[Interval]:
    """Busy time the engine's buffer must not widen: the engine keeps [start - buffer, end +
    buffer) clear, so an interval shrunk by the buffer on both sides blocks exactly the slots that
    overlap the interval itself. One too short to shrink stays whole (blocks a little more)."""
    if not buffer:
        return list(intervals)
    return [(s + buffer, e - buffer) if e - s > 2 * buffer else (s, e) for s, e in intervals]


def planning_busy(
    session: Session,
    profile: PlanningProfile,
    tutors: Sequence[Tutor],
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
) -> dict[int, list[Interval]]:
    """Busy time per tutor id in [start, end) that is not the calendar: the profile's closures
    (everyone) and the time outside each tutor's working hours. Shrunk by the profile's buffer:
    the buffer is room between lessons, not before a working day or a holiday."""
    first, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    closed = [
        (midnight(c.start_date, tz), midnight(c.end_date + timedelta(days=1), tz))
        for c in closures_for(session, profile, first, last)
    ]
    hours = _hours_by_tutor(session, [stored_id(t) for t in tutors])
    buffer = timedelta(minutes=profile.buffer_minutes or 0)
    out: dict[int, list[Interval]] = {}
    for tutor in tutors:
        week = hours.get(stored_id(tutor))
        outside = outside_hours(week, start, end, tz) if week else []
        out[stored_id(tutor)] = _shrink(closed + outside, buffer)
    return out


def refuse_closed(
    session: Session,
    profile: PlanningProfile,
    tutors: Sequence[Tutor],
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    when: str,
) -> list[Tutor]:
    """The tutors who work all of [start, end); SlotNotOffered when a closure covers it (with the
    closure's name) or nobody works then. Like a time outside the profile's window, a closure is
    not offered, so it is not bookable either (422, not 409: no other tutor can take it)."""
    first, last = start.astimezone(tz).date(), (end - timedelta(microseconds=1)).astimezone(tz).date()
    for closure in closures_for(session, profile, first, last):
        raise SlotNotOffered(f"{when} falls in a closure ({closure.name}): no lessons are given then.")
    hours = _hours_by_tutor(session, [stored_id(t) for t in tutors])
    working = [
        t
        for t in tutors
        if stored_id(t) not in hours or not outside_hours(hours[stored_id(t)], start, end, tz)
    ]
    if not working:
        raise SlotNotOffered(f"{when} is outside the working hours of every tutor of this profile.")
    return working


# --- closures: edits -----------------------------------------------------------------------------


# --- school holidays: CSV import with a preview ---------------------------------------------------


# --- tutors' working hours ---------------------------------------------------------------------


def tutor_hours(session: Session, tutor_id: int) -> list[TutorHours]:
    return list(
        session.exec(
            select(TutorHours)
            .where(TutorHours.tutor_id == tutor_id)
            .order_by(col(TutorHours.weekday), col(TutorHours.start_minute))
        ).all()
    )
