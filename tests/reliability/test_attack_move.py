"""Attack: moving a lesson on Google Calendar (core/lesson_changes.py move_lesson). FreeBusy
merges busy time, so the lesson's own old event is cut out of it before the new time is checked
(_calendar_busy_except). Cutting out the whole old interval also cuts out any *other* event that
lies inside it: a tutor's private appointment within the lesson's old hour disappears."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlmodel import select

from core import booking, lesson_changes, worker
from core.db import read_session, write_session
from core.errors import SlotTaken
from core.models import Contact, Lesson, PlanningProfile, Tutor, User
from tests.conftest import AMS

pytest_plugins = ["tests.fakes.google_fixtures"]

ANNA = "tutor@lesplanner.test"


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=AMS)


@pytest.fixture
def lesson_with_a_private_event_inside(engine, google_backend, fake_google, frozen_now):
    frozen_now(2026, 11, 30, 22, 0)
    with write_session() as s:
        s.add(Tutor(name="Anna", email="anna@lesplanner.test", calendar_id=ANNA))
        profile = s.get_one(PlanningProfile, "existing")
        profile.requires_payment, profile.slot_step_minutes = False, 30
        s.add(Contact(id="c1", name="Sanne", attributes={"has_paid_lesson": True}))
        s.add(User(email="admin@lesplanner.test", role="admin"))
    lesson = booking.book_slot("conv1", local(1, 10), local(1, 11), "Wiskunde B", contact_id="c1").lesson
    worker.drain()
    # Anna's dentist, 10:30-11:00, inside the lesson's hour (booked by someone else in her calendar).
    fake_google.add_event(ANNA, local(1, 10, 30), local(1, 11), summary="Tandarts")
    with read_session() as s:
        return s.get_one(Lesson, lesson.id), s.exec(select(User)).one()


def test_a_move_onto_a_private_event_inside_the_old_lesson_time_is_refused(
    google_backend, lesson_with_a_private_event_inside
):
    old, boss = lesson_with_a_private_event_inside
    assert google_backend.busy([ANNA], local(1, 8), local(1, 13))[ANNA] == [(local(1, 10), local(1, 11))]
    with pytest.raises(SlotTaken):
        lesson_changes.reschedule_lesson(old.id, local(1, 10, 30), boss, "half an hour later")
