"""A tutor's availability as the console shows and edits it: time off (BusyBlock rows of the
local calendar backend) added and removed by admins for anyone and by tutors for themselves, the
lessons and time off in a week, and the free slots a profile would offer in it.

This sits above core/booking.py: the free slots are booking's `slots_for_profile`, for one tutor.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from core.audit import audit, current_actor
from core.booking import slots_for_profile
from core.calendars import get_backend
from core.db import write_session
from core.errors import NotFound, PermissionDenied, ValidationFailed
from core.models import (
    BLOCKING_STATUSES,
    NEEDS_RESCHEDULE,
    BusyBlock,
    Contact,
    Lesson,
    PlanningProfile,
    Tutor,
    User,
)
from core.paging import local_bounds
from core.slots import require_aware
from core.tutors import is_own_tutor

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
        who = current_actor(session, actor, "admin", "tutor")
        tutor = session.get(Tutor, tutor_id)
        if tutor is None:
            raise NotFound("That tutor does not exist.")
        if who.role != "admin" and not is_own_tutor(who, tutor):
            raise PermissionDenied("You can only enter time off in your own calendar.")
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


def _week_bounds(week_start: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC [start, end) of the local week starting `week_start`."""
    lo, hi = local_bounds(week_start, week_start + timedelta(days=6), tz)
    assert lo is not None and hi is not None  # both dates are given, so neither end is open
    return lo, hi


def week_items(session: Session, tutor_id: int, week_start: date, tz: ZoneInfo) -> dict[str, Any]:
    """Lessons and time off (BusyBlock rows) of one tutor in the local week starting `week_start`."""
    lo, hi = _week_bounds(week_start, tz)
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
    return {
        "start": lo,
        "end": hi,
        "lessons": [dict(r._mapping) for r in lessons],
        "busy_blocks": [b.model_dump() for b in blocks],
    }


def future_busy_blocks(
    session: Session, tutor_id: int, now: datetime, limit: int = 200
) -> list[dict[str, Any]]:
    rows = session.exec(
        select(BusyBlock)
        .where(BusyBlock.tutor_id == tutor_id, col(BusyBlock.end) > now)
        .order_by(col(BusyBlock.start))
        .limit(limit)
    ).all()
    return [b.model_dump() for b in rows]


def week_calendar(
    session: Session, profile_name: str, tutor_id: int, week_start: date, tz: ZoneInfo, now: datetime
) -> dict[str, Any]:
    """The tutor's calendar busy time in the week and the profile's free slots in it.

    Free slots are what the bot could offer now (lead time and horizon apply), for this tutor
    only. Raises CalendarUnavailable when the calendar cannot be read: no slots are guessed."""
    tutor = session.get(Tutor, tutor_id)
    profile = session.get(PlanningProfile, profile_name)
    if tutor is None or profile is None:
        raise NotFound("Unknown tutor or profile.")
    lo, hi = _week_bounds(week_start, tz)
    busy = get_backend().busy([tutor.calendar_id], lo, hi).get(tutor.calendar_id, [])
    free = [
        s for s in slots_for_profile(session, profile, now, tutors=[tutor], every=True) if lo <= s.start < hi
    ]
    return {"busy": [(s, e) for s, e in busy], "free": [(s.start, s.end) for s in free]}
