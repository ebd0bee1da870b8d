"""Booking on Google Calendar, end to end through core: the real client library talks to the
fake Google, so what a tutor sees in their calendar is what these tests check.

Calendar writes are jobs that run after commit (core/lessons.py), so each test runs the worker
(`worker.drain()`) before it looks at the calendar."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from core import booking, lesson_changes, lessons, worker
from core.calendars import event_id_for_lesson
from core.db import read_session, write_session
from core.errors import SlotTaken
from core.models import (
    CONFIRMED,
    HELD,
    NEEDS_RESCHEDULE,
    AuditLog,
    Contact,
    Conversation,
    Lesson,
    OutboxMessage,
    PlanningProfile,
    Tutor,
    User,
)
from tests.conftest import AMS

pytest_plugins = ["tests.fakes.google_fixtures"]

ANNA = "tutor@lesplanner.test"
BRAM = "bram@lesplanner.test"


@pytest.fixture
def world(engine, google_backend, fake_google, frozen_now):
    """Monday 30 Nov 2026, 22:00 (so the first slots are Tuesday 1 Dec from 09:00); Anna teaches everything from her Google calendar; the
    'existing' profile confirms without payment."""
    frozen_now(2026, 11, 30, 22, 0)
    with write_session() as s:
        s.add(Tutor(name="Anna", email="anna@lesplanner.test", calendar_id=ANNA))
        s.get(PlanningProfile, "existing").requires_payment = False
        s.add(
            Contact(id="c1", name="Sanne", email="sanne@leerling.test", attributes={"has_paid_lesson": True})
        )
    return fake_google


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=AMS)


def test_a_booking_creates_one_event_at_the_local_time_carrying_the_lesson_id(world):
    offered = booking.suggest_slots("conv1", contact_id="c1").slots
    result = booking.book_slot("conv1", offered[0].start, offered[0].end, "Wiskunde B")

    assert result.lesson.status == CONFIRMED and result.lesson.calendar_sync == "pending"
    assert world.events(ANNA) == []  # the event is made after commit, by the calendar job
    worker.drain()

    with read_session() as s:
        lesson = s.get(Lesson, result.lesson.id)
    assert lesson.calendar_sync == "synced"
    events = world.events(ANNA)
    assert len(events) == 1
    event = events[0]
    assert event["id"] == lesson.calendar_event_id == event_id_for_lesson(lesson.id)
    assert datetime.fromisoformat(event["start"]["dateTime"]) == offered[0].start
    assert event["start"]["timeZone"] == "Europe/Amsterdam"
    assert event["extendedProperties"]["private"]["lesplanner_lesson_id"] == str(lesson.id)


def test_an_event_added_in_google_after_the_suggestion_makes_the_booking_a_409(world):
    offered = booking.suggest_slots("conv1", contact_id="c1").slots
    taken = offered[0]
    world.add_event(
        ANNA, taken.start - timedelta(minutes=15), taken.start + timedelta(minutes=15), summary="Tandarts"
    )

    with pytest.raises(SlotTaken) as conflict:
        booking.book_slot("conv1", taken.start, taken.end, "Wiskunde B")

    assert conflict.value.alternatives and taken.start not in {s.start for s in conflict.value.alternatives}
    with read_session() as s:
        assert s.exec(select(Lesson)).all() == []
    assert [e["summary"] for e in world.events(ANNA)] == ["Tandarts"]


def test_a_free_marked_event_does_not_block_but_a_busy_one_does(world):
    world.add_event(ANNA, local(1, 9), local(1, 10), transparent=True)
    world.add_event(ANNA, local(1, 10), local(1, 11))

    starts = {s.start for s in booking.suggest_slots("conv1", contact_id="c1").slots}

    assert local(1, 9) in starts
    assert local(1, 10) not in starts


def test_paid_after_the_tutor_added_a_private_event_needs_reschedule_and_creates_no_event(world):
    with write_session() as s:
        s.add(Conversation(id="conv1", contact_id="c1"))
        anna = s.exec(select(Tutor)).one()
        lesson = Lesson(
            conversation_id="conv1",
            contact_id="c1",
            tutor_id=anna.id,
            profile_name="existing",
            start=local(2, 14),
            end=local(2, 15),
            status=HELD,
            hold_expires_at=local(1, 8),
        )
        s.add(lesson)
    world.add_event(ANNA, local(2, 14), local(2, 16), summary="Privé")

    with write_session() as s:  # what the payment webhook does
        lessons.paid(s, s.get(Lesson, lesson.id))
    worker.drain()  # the calendar job checks the slot before it makes the event

    with read_session() as s:
        after = s.get(Lesson, lesson.id)
        keys = [m.key for m in s.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()]
        alerts = s.exec(select(AuditLog).where(AuditLog.action == "finance.alert")).all()
    assert after.status == NEEDS_RESCHEDULE
    assert after.calendar_event_id is None and after.calendar_sync is None
    assert keys == ["slot_lost"]  # never "your lesson is booked" first
    assert [a.entity_id for a in alerts] == [str(lesson.id)]
    assert [e["summary"] for e in world.events(ANNA)] == ["Privé"]


def test_cancelling_removes_the_event_from_the_tutors_calendar(world, engine):
    offered = booking.suggest_slots("conv1", contact_id="c1").slots
    lesson = booking.book_slot("conv1", offered[0].start, offered[0].end, "Wiskunde B").lesson
    worker.drain()
    assert [e["id"] for e in world.events(ANNA)] == [event_id_for_lesson(lesson.id)]

    lesson_changes.cancel_lesson(lesson.id, actor=None, reason="ziek")
    worker.drain()

    assert world.events(ANNA) == []
    assert world.event(ANNA, event_id_for_lesson(lesson.id))["status"] == "cancelled"
    with read_session() as s:
        assert s.get(Lesson, lesson.id).calendar_event_id is None


def test_with_two_tutors_a_time_one_of_them_is_busy_goes_to_the_other(world):
    with write_session() as s:
        s.add(Tutor(name="Bram", email="bram@lesplanner.test", calendar_id=BRAM))
    world.add_event(ANNA, local(1, 9), local(1, 21), summary="Studiedag")

    offered = booking.suggest_slots("conv1", contact_id="c1").slots
    first_tuesday = next(s for s in offered if s.start.astimezone(AMS).day == 1)
    result = booking.book_slot("conv1", first_tuesday.start, first_tuesday.end, "Wiskunde B")
    worker.drain()

    with read_session() as s:
        assert s.get(Tutor, result.lesson.tutor_id).calendar_id == BRAM
    assert [e["id"] for e in world.events(BRAM)] == [event_id_for_lesson(result.lesson.id)]
    assert [e["summary"] for e in world.events(ANNA)] == ["Studiedag"]


# --- rescheduling next to another event ---------------------------------------------------------
# Google's free/busy merges the lesson's own event and an event right after it into one busy
# period (10:00-12:00). Moving the lesson must ignore its own old time inside that period, and
# only that: the other event still counts, with the profile's buffer around the new time.


@pytest.fixture
def lesson_next_to_a_meeting(world):
    """Anna's confirmed lesson Tuesday 10:00-11:00 (its own event in her calendar) and her
    meeting 11:00-12:00 right after it; the 'existing' profile offers every half hour."""
    with write_session() as s:
        s.get(PlanningProfile, "existing").slot_step_minutes = 30
        s.add(User(email="admin@lesplanner.test", role="admin"))
    lesson = booking.book_slot("conv1", local(1, 10), local(1, 11), "Wiskunde B", contact_id="c1").lesson
    worker.drain()  # the lesson's own event is in Google only once its calendar job ran
    world.add_event(ANNA, local(1, 11), local(1, 12), summary="Teamoverleg")
    with read_session() as s:
        lesson = s.get(Lesson, lesson.id)
    assert lesson.calendar_event_id == event_id_for_lesson(lesson.id)
    with read_session() as s:
        boss = s.exec(select(User)).one()
    return lesson, boss


def set_buffer(minutes: int) -> None:
    with write_session() as s:
        s.get(PlanningProfile, "existing").buffer_minutes = minutes


def event_times(calendar: str, fake) -> list[tuple[datetime, datetime]]:  # noqa: ANN001
    return sorted(
        (datetime.fromisoformat(e["start"]["dateTime"]), datetime.fromisoformat(e["end"]["dateTime"]))
        for e in fake.events(calendar)
    )


@pytest.mark.parametrize(
    ("buffer", "new_start"),
    [
        pytest.param(0, local(1, 9, 30), id="half an hour earlier, into its own old time"),
        pytest.param(30, local(1, 9), id="an hour earlier, the buffer reaching into its own old time"),
    ],
)
def test_a_lesson_moves_into_its_own_old_time_although_google_merges_it_with_the_next_event(
    world, google_backend, lesson_next_to_a_meeting, buffer, new_start
):
    old, boss = lesson_next_to_a_meeting
    set_buffer(buffer)
    assert google_backend.busy([ANNA], local(1, 8), local(1, 13))[ANNA] == [(local(1, 10), local(1, 12))]

    moved = lesson_changes.reschedule_lesson(old.id, new_start, boss, "eerder")

    assert moved.id == old.id  # the same lesson, at its new time
    assert moved.status == CONFIRMED and moved.start == new_start
    assert moved.calendar_sync == "pending"
    worker.drain()

    with read_session() as s:
        lesson = s.get(Lesson, old.id)
        keys = [m.key for m in s.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()]
    assert lesson.calendar_sync == "synced" and lesson.calendar_event_id == old.calendar_event_id
    assert keys.count("lesson_rescheduled") == 1 and "lesson_cancelled" not in keys
    assert event_times(ANNA, world) == [
        (new_start, new_start + timedelta(hours=1)),
        (local(1, 11), local(1, 12)),
    ]
    assert world.event(ANNA, old.calendar_event_id)["status"] != "cancelled"


@pytest.mark.parametrize(
    ("buffer", "new_start"),
    [
        pytest.param(0, local(1, 10, 30), id="half an hour later, overlapping the meeting"),
        pytest.param(0, local(1, 11), id="onto the meeting"),
        pytest.param(45, local(1, 9, 30), id="half an hour earlier, the buffer reaching the meeting"),
    ],
)
def test_a_move_that_overlaps_the_adjacent_event_is_still_refused(
    world, lesson_next_to_a_meeting, buffer, new_start
):
    old, boss = lesson_next_to_a_meeting
    set_buffer(buffer)
    before = event_times(ANNA, world)

    with pytest.raises(SlotTaken):
        lesson_changes.reschedule_lesson(old.id, new_start, boss, "later")
    worker.drain()

    with read_session() as s:
        lesson = s.get(Lesson, old.id)
    assert lesson.status == CONFIRMED and lesson.start == local(1, 10)
    assert event_times(ANNA, world) == before == [(local(1, 10), local(1, 11)), (local(1, 11), local(1, 12))]
