"""Reminders before a lesson (DESIGN → Reminders).

For each confirmed lesson a `reminder` job is planned `reminder_hours` (per profile, default
[24]) before its start, in the transaction that confirms or moves it. The job's key carries the
start it was planned for, so a moved lesson gets new jobs; at send time the job reads the lesson
again and sends nothing when it is no longer confirmed at that time (moved or cancelled). A
reminder whose time has passed when the lesson is confirmed is not planned (a lesson booked for
this afternoon needs no "see you tomorrow").

WhatsApp delivers free text only within 24 hours of the customer's last message; with
CHATWOOT_REMINDER_TEMPLATE set, the reminder goes out as that approved template with the
customer's name, the lesson's time and the tutor as parameters 1, 2 and 3.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import Session

from core import clock, jobs
from core.config import get_settings
from core.db import write_session
from core.messages import format_short, queue_message
from core.models import CONFIRMED, Contact, Lesson, PlanningProfile, Tutor, stored_id

REMINDER_JOB = "reminder"


def plan(session: Session, lesson: Lesson) -> int:
    """Write the lesson's reminder jobs for its current start (in the caller's transaction);
    returns how many were planned."""
    profile = session.get(PlanningProfile, lesson.profile_name)
    hours = sorted({int(h) for h in (profile.reminder_hours if profile else [24]) or [] if int(h) > 0})
    stamp = int(lesson.start.timestamp())
    now = clock.now()
    planned = 0
    for h in hours:
        when = lesson.start - timedelta(hours=h)
        if when <= now:
            continue
        jobs.enqueue(
            session,
            REMINDER_JOB,
            f"reminder:lesson-{stored_id(lesson)}:{stamp}:{h}h",
            {"lesson_id": stored_id(lesson), "start": stamp, "hours": h},
            subject=f"lesson-{stored_id(lesson)}",
            run_after=when,
        )
        planned += 1
    return planned


def _template(contact: Contact | None, when: str, tutor: str) -> dict[str, Any] | None:
    settings = get_settings()
    if not settings.chatwoot_reminder_template:
        return None
    return {
        "name": settings.chatwoot_reminder_template,
        "category": settings.chatwoot_reminder_template_category,
        "language": settings.chatwoot_reminder_template_language,
        "processed_params": {"1": (contact.name if contact else None) or "", "2": when, "3": tutor},
    }


def reminder_job(ctx: jobs.JobContext) -> str:
    """The `reminder` job: queue the reminder if the lesson is still confirmed at that start."""
    lesson_id, stamp = int(ctx.payload["lesson_id"]), int(ctx.payload["start"])
    with write_session() as session:
        lesson = session.get(Lesson, lesson_id)
        if lesson is None or lesson.status != CONFIRMED:
            return f"lesson {lesson_id} is {lesson.status if lesson else 'gone'}: no reminder"
        if int(lesson.start.timestamp()) != stamp:
            return f"lesson {lesson_id} moved: its reminder follows the new time"
        tutor = session.get(Tutor, lesson.tutor_id)
        contact = session.get(Contact, lesson.contact_id)
        when = format_short(lesson.start)
        tutor_name = tutor.name if tutor else ""
        queued = queue_message(
            session,
            lesson.conversation_id,
            "lesson_reminder",
            dedupe_key=f"reminder:{lesson_id}:{stamp}:{ctx.payload.get('hours')}",
            template=_template(contact, when, tutor_name),
            when=when,
            tutor=tutor_name,
        )
    return "reminder queued" if queued is not None else "reminder was queued before"


jobs.register(REMINDER_JOB, reminder_job)
