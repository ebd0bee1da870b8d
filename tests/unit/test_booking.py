"""Specification of suggesting and booking lessons (core/booking.py) on the embedded calendar.

The clock stands at Monday 30 November 2026, 09:00 in Amsterdam. A contact without attributes is
"new", so the 'new' profile applies: 60 minutes, 10:00-20:00, weekdays, 12 hours ahead, 10 days.
Profiles here do not require payment; the held-with-payment path is tested with the Stripe fake.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlmodel import col, select

from core import clock, worker
from core.booking import book_slot, expire_holds, slots_for_profile, suggest_slots
from core.calendars import CreatedEvent, event_id_for_lesson, set_backend
from core.calendars.local import LocalCalendarBackend
from core.db import read_session, write_session
from core.errors import (
    InvalidTransition,
    NotFound,
    PermissionDenied,
    SlotNotOffered,
    SlotTaken,
    ValidationFailed,
)
from core.lesson_changes import cancel_lesson
from core.models import (
    BLOCKING_STATUSES,
    CANCELLED,
    CONFIRMED,
    EXPIRED,
    HELD,
    BusyBlock,
    Contact,
    Conversation,
    Lesson,
    OutboxMessage,
    PlanningProfile,
    Tutor,
    User,
)
from core.slots import is_offered
from tests.conftest import AMS

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=AMS)  # Monday


def at(day: int, hour: int, minute: int = 0) -> datetime:
    """A local time in the first two weeks of December 2026 (1 December is a Tuesday)."""
    return datetime(2026, 12, day, hour, minute, tzinfo=AMS)


TUE_10 = at(1, 10)


@pytest.fixture(autouse=True)
def world(engine, frozen_now):
    """Frozen clock and profiles that confirm without payment."""
    frozen_now(NOW)
    with write_session() as session:
        for profile in session.exec(select(PlanningProfile)):
            profile.requires_payment = False
    return engine


@pytest.fixture
def add_tutor():
    def add(name: str = "Anna", teaches: list[str] | None = None) -> int:
        with write_session() as session:
            tutor = Tutor(
                name=name,
                email=f"{name.lower()}@lesplanner.test",
                calendar_id=f"{name.lower()}-calendar",
                profiles=teaches,
            )
            session.add(tutor)
            session.flush()
            return tutor.id

    return add


@pytest.fixture
def anna(add_tutor) -> int:
    return add_tutor("Anna")


def book(conversation: str, start: datetime, minutes: int = 60, **kw):
    kw.setdefault("contact_id", f"contact-{conversation}")
    return book_slot(conversation, start, start + timedelta(minutes=minutes), "Wiskunde", "", **kw)


def suggest(conversation: str, profile_name: str | None = None, **kw):
    kw.setdefault("contact_id", f"contact-{conversation}")
    return suggest_slots(conversation, profile_name, **kw)


def busy(tutor_id: int, start: datetime, end: datetime) -> None:
    with write_session() as session:
        session.add(BusyBlock(tutor_id=tutor_id, start=start, end=end, reason="dentist"))


def insert_lesson(
    conversation: str,
    start: datetime,
    tutor_id: int,
    status: str = CONFIRMED,
    hold_expires_at: datetime | None = None,
    minutes: int = 60,
) -> int:
    """A lesson put straight into the database, as another booking would have left it."""
    with write_session() as session:
        if session.get(Conversation, conversation) is None:
            session.add(Contact(id=f"contact-{conversation}"))
            session.flush()
            session.add(Conversation(id=conversation, contact_id=f"contact-{conversation}"))
            session.flush()
        lesson = Lesson(
            conversation_id=conversation,
            contact_id=f"contact-{conversation}",
            tutor_id=tutor_id,
            profile_name="new",
            start=start,
            end=start + timedelta(minutes=minutes),
            status=status,
            hold_expires_at=hold_expires_at,
        )
        session.add(lesson)
        session.flush()
        return lesson.id


def lessons(*statuses: str) -> list[Lesson]:
    with read_session() as session:
        stmt = select(Lesson).order_by(Lesson.id)
        if statuses:
            stmt = stmt.where(col(Lesson.status).in_(statuses))
        return list(session.exec(stmt).all())


def lesson(lesson_id: int) -> Lesson:
    with read_session() as session:
        return session.get(Lesson, lesson_id)


def messages(conversation: str) -> list[tuple[str, str]]:
    with read_session() as session:
        rows = session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.conversation_id == conversation)
            .order_by(OutboxMessage.id)
        ).all()
    return [(m.key, m.text) for m in rows]


def starts(slots) -> list[datetime]:
    return [s.start for s in slots]


# --- the happy path -----------------------------------------------------------------------------


def test_booking_a_free_slot_confirms_it_in_the_calendar(anna):
    result = book("conv-a", TUE_10)

    assert result.created is True
    assert result.payment is None
    booked = result.lesson
    assert booked.status == CONFIRMED and booked.calendar_sync == "pending"
    assert (booked.start, booked.end) == (TUE_10, TUE_10 + timedelta(hours=1))
    assert (booked.tutor_id, booked.profile_name, booked.title) == (anna, "new", "Wiskunde")
    assert booked.hold_expires_at is None
    worker.drain()  # the calendar event is made after commit
    stored = lesson(booked.id)
    assert (stored.status, stored.calendar_event_id, stored.calendar_sync) == (
        CONFIRMED,
        event_id_for_lesson(booked.id),
        "synced",
    )
    assert messages("conv-a") == [("booking_confirmed", "Je les is ingepland op di 1 dec om 10:00. Tot dan!")]


def test_a_first_booking_registers_the_conversation_and_its_contact(anna):
    book("conv-a", TUE_10, contact_id="chat-77", contact_info={"name": "Sam", "phone": "06 12345678"})
    with read_session() as session:
        assert session.get(Conversation, "conv-a").contact_id == "chat-77"
        contact = session.get(Contact, "chat-77")
    assert (contact.name, contact.phone) == ("Sam", "+31612345678")


def test_booking_the_same_slot_again_returns_the_same_lesson(anna):
    first = book("conv-a", TUE_10)
    again = book("conv-a", TUE_10.astimezone(timezone(timedelta(hours=-5))))  # same instant
    assert again.created is False
    assert again.lesson.id == first.lesson.id
    assert len(lessons()) == 1
    assert [key for key, _ in messages("conv-a")] == ["booking_confirmed"]


def test_a_repeat_after_the_slot_stopped_being_offered_still_returns_the_lesson(anna, frozen_now):
    first = book("conv-a", TUE_10)
    frozen_now(TUE_10 - timedelta(hours=1))  # well inside the 12-hour lead time now
    again = book("conv-a", TUE_10)
    assert (again.created, again.lesson.id) == (False, first.lesson.id)


def test_the_same_conversation_may_book_a_second_lesson(anna):
    book("conv-a", TUE_10)
    second = book("conv-a", at(1, 11))
    assert second.created is True
    assert len(lessons(CONFIRMED)) == 2


# --- refused requests -----------------------------------------------------------------------


@pytest.mark.parametrize("minutes", [30, 59, 61, 90])
def test_wrong_duration_is_refused_naming_the_minutes(anna, minutes):
    with pytest.raises(ValidationFailed) as caught:
        book("conv-a", TUE_10, minutes=minutes)
    assert "lasts 60 minutes" in caught.value.message
    assert f"lasts {minutes} minutes" in caught.value.message
    assert lessons() == []


@pytest.mark.parametrize(
    ("start", "end"),
    [
        pytest.param(datetime(2026, 12, 1, 10), TUE_10 + timedelta(hours=1), id="naive start"),
        pytest.param(TUE_10, datetime(2026, 12, 1, 11), id="naive end"),
    ],
)
def test_naive_datetimes_are_refused(anna, start, end):
    with pytest.raises(ValidationFailed, match="time zone"):
        book_slot("conv-a", start, end, contact_id="c1")
    assert lessons() == []


@pytest.mark.parametrize(
    "start",
    [
        pytest.param(at(1, 9), id="before the 10:00-20:00 window"),
        pytest.param(at(1, 20), id="would end after 20:00"),
        pytest.param(at(1, 10, 30), id="between two slots"),
        pytest.param(datetime(2026, 11, 30, 19, 0, tzinfo=AMS), id="sooner than 12 hours"),
        pytest.param(at(5, 10), id="Saturday"),
        pytest.param(at(6, 10), id="Sunday"),
        pytest.param(at(11, 10), id="more than 10 days ahead"),
        pytest.param(datetime(2026, 11, 27, 10, tzinfo=AMS), id="in the past"),
    ],
)
def test_a_time_the_new_profile_does_not_offer_is_refused(anna, start):
    with pytest.raises(SlotNotOffered, match="'new' profile"):
        book("conv-a", start)
    assert lessons() == []


def test_unknown_conversation_without_contact_is_not_found(anna):
    with pytest.raises(NotFound, match="contact_id"):
        book_slot("conv-x", TUE_10, TUE_10 + timedelta(hours=1))
    with pytest.raises(NotFound, match="contact_id"):
        suggest_slots("conv-x")
    with read_session() as session:
        assert session.get(Conversation, "conv-x") is None


def test_a_conversation_cannot_change_contact(anna):
    book("conv-a", TUE_10, contact_id="c1")
    with pytest.raises(ValidationFailed, match="another contact"):
        book("conv-a", at(1, 11), contact_id="c2")


# --- taken slots ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("block_start", "block_end"),
    [
        pytest.param(TUE_10, TUE_10 + timedelta(hours=1), id="same hour"),
        pytest.param(at(1, 10, 30), at(1, 10, 45), id="inside the lesson"),
        pytest.param(at(1, 8), at(1, 10, 1), id="ends a minute into it"),
        pytest.param(at(1, 10, 59), at(1, 12), id="starts a minute before its end"),
    ],
)
def test_time_off_in_the_calendar_makes_the_slot_taken_with_free_alternatives(anna, block_start, block_end):
    busy(anna, block_start, block_end)
    with pytest.raises(SlotTaken) as caught:
        book("conv-a", TUE_10)

    alternatives = caught.value.alternatives
    assert len(alternatives) == 6
    with read_session() as session:
        profile = session.get(PlanningProfile, "new")
    for slot in alternatives:
        assert slot.start != TUE_10
        assert not (slot.start < block_end and slot.end > block_start)
        assert is_offered(profile, clock.now(), slot.start, AMS)
    assert lessons(*BLOCKING_STATUSES) == []
    # and an alternative can really be booked
    assert book("conv-a", alternatives[0].start).lesson.status == CONFIRMED


def test_time_off_ending_when_the_lesson_starts_does_not_block_it(anna):
    busy(anna, at(1, 8), TUE_10)
    busy(anna, TUE_10 + timedelta(hours=1), at(1, 12))
    assert book("conv-a", TUE_10).lesson.status == CONFIRMED


class TouchingBusyCalendar(LocalCalendarBackend):
    """A calendar that, like Google's free/busy, may report busy time that only touches the
    asked range: 09:00-10:00 and 11:00-12:00 on Tuesday."""

    name = "touching"

    def busy(self, calendar_ids, start, end):
        return {cid: [(at(1, 9), at(1, 10)), (at(1, 11), at(1, 12))] for cid in calendar_ids}

    def create_event(self, request):
        return CreatedEvent(event_id=request.event_id)


def test_busy_time_touching_the_lesson_in_the_calendar_does_not_block_it(anna):
    set_backend(TouchingBusyCalendar())
    assert book("conv-a", TUE_10).lesson.status == CONFIRMED
    with pytest.raises(SlotTaken):
        book("conv-b", at(1, 11))


# --- the window's edges and the buffer -----------------------------------------------------------
# Busy time is fetched for the profile's days; a slot at the edge of them needs its buffer free
# too, and that buffer reaches past midnight. What is offered there must also be bookable.


def change_new_profile(**changes) -> None:
    with write_session() as session:
        profile = session.get(PlanningProfile, "new")
        for field, value in changes.items():
            setattr(profile, field, value)


def all_offered() -> list[datetime]:
    with read_session() as session:
        return starts(slots_for_profile(session, session.get(PlanningProfile, "new"), every=True))


def time_off(anna: int, start: datetime) -> None:
    busy(anna, start, start + timedelta(minutes=30))


def other_lesson(anna: int, start: datetime) -> None:
    insert_lesson("conv-other", start, anna, minutes=30)


@pytest.mark.parametrize("occupy", [time_off, other_lesson], ids=["time off", "another lesson"])
def test_last_slot_at_window_edge_respects_buffer_against_busy_time_just_after_the_window(anna, occupy):
    change_new_profile(latest_hour=24, buffer_minutes=30)  # last day: Thursday 10 December
    last_slot = at(10, 23)  # 23:00-24:00, its buffer reaches Friday 00:30
    occupy(anna, at(11, 0, 15))

    offered = all_offered()

    assert last_slot not in offered
    assert at(10, 22) in offered  # 22:00-23:00 keeps its 30 minutes to 00:15
    with pytest.raises(SlotTaken):
        book("conv-a", last_slot)


@pytest.mark.parametrize("occupy", [time_off, other_lesson], ids=["time off", "another lesson"])
def test_first_slot_at_window_edge_respects_buffer_against_busy_time_just_before_the_window(
    anna, occupy, frozen_now
):
    frozen_now(at(1, 0))  # Tuesday 00:00: the first day's window opens now
    change_new_profile(earliest_hour=0, min_lead_minutes=0, buffer_minutes=30)
    first_slot = at(1, 0)  # 00:00-01:00, its buffer reaches back to Monday 23:30
    occupy(anna, datetime(2026, 11, 30, 23, 15, tzinfo=AMS))  # until 23:45

    offered = all_offered()

    assert first_slot not in offered
    assert at(1, 1) in offered
    with pytest.raises(SlotTaken):
        book("conv-a", first_slot)


def test_another_conversations_lesson_makes_the_slot_taken(anna):
    first = book("conv-a", TUE_10)
    with pytest.raises(SlotTaken) as caught:
        book("conv-b", TUE_10)
    assert TUE_10 not in starts(caught.value.alternatives)
    assert caught.value.alternatives
    assert [row.id for row in lessons(*BLOCKING_STATUSES)] == [first.lesson.id]
    assert messages("conv-b") == []


def test_an_overlapping_lesson_of_another_length_makes_the_slot_taken(anna):
    insert_lesson("conv-premium", at(1, 9, 30), anna, minutes=90)  # 09:30-11:00
    with pytest.raises(SlotTaken):
        book("conv-b", TUE_10)
    assert book("conv-b", at(1, 11)).created


def test_a_held_lesson_blocks_its_slot(anna):
    insert_lesson("conv-a", TUE_10, anna, status=HELD, hold_expires_at=NOW + timedelta(minutes=30))
    with pytest.raises(SlotTaken):
        book("conv-b", TUE_10)


# --- freeing slots ----------------------------------------------------------------------------


@pytest.fixture
def admin() -> User:
    return User(email="admin@lesplanner.test", role="admin")


def test_a_cancelled_lesson_frees_its_slot(anna, admin):
    first = book("conv-a", TUE_10).lesson
    cancelled = cancel_lesson(first.id, admin, "customer asked")

    assert cancelled.status == CANCELLED
    assert lesson(first.id).cancel_reason == "customer asked"
    assert messages("conv-a")[-1] == (
        "lesson_cancelled",
        "Je les op di 1 dec om 10:00 is geannuleerd.",
    )
    second = book("conv-b", TUE_10)
    assert second.created and second.lesson.status == CONFIRMED
    assert [row.conversation_id for row in lessons(*BLOCKING_STATUSES)] == ["conv-b"]


def test_cancelling_twice_is_refused_and_tells_the_customer_once(anna, admin):
    first = book("conv-a", TUE_10).lesson
    cancel_lesson(first.id, admin)
    with pytest.raises(InvalidTransition, match="already cancelled"):
        cancel_lesson(first.id, admin)
    assert [key for key, _ in messages("conv-a")] == ["booking_confirmed", "lesson_cancelled"]


def test_after_a_cancel_the_same_conversation_can_book_the_same_time_again(anna, admin):
    first = book("conv-a", TUE_10).lesson
    cancel_lesson(first.id, admin)
    again = book("conv-a", TUE_10)
    assert again.created is True
    assert again.lesson.id != first.id


def test_an_expired_hold_frees_its_slot(anna, frozen_now):
    held = insert_lesson("conv-a", TUE_10, anna, status=HELD, hold_expires_at=NOW + timedelta(minutes=30))
    assert expire_holds() == 0
    with pytest.raises(SlotTaken):
        book("conv-b", TUE_10)

    frozen_now(NOW + timedelta(minutes=31))
    assert expire_holds() == 1
    assert lesson(held).status == EXPIRED
    assert [key for key, _ in messages("conv-a")] == ["hold_expired"]
    assert "di 1 dec om 10:00" in messages("conv-a")[0][1]
    assert expire_holds() == 0  # nothing left to do, no second message
    assert len(messages("conv-a")) == 1

    second = book("conv-b", TUE_10)
    assert second.lesson.status == CONFIRMED


def test_an_expired_hold_no_longer_blocks_even_before_expire_holds_runs(anna, frozen_now):
    insert_lesson("conv-a", TUE_10, anna, status=HELD, hold_expires_at=NOW + timedelta(minutes=30))
    frozen_now(NOW + timedelta(minutes=31))
    assert TUE_10 in starts(suggest("conv-b").slots)


def test_the_week_view_does_not_count_an_expired_hold_as_busy(anna, frozen_now):
    held = insert_lesson("conv-a", TUE_10, anna, status=HELD, hold_expires_at=NOW + timedelta(minutes=30))
    with read_session() as session:
        profile = session.get(PlanningProfile, "new")
        assert TUE_10 not in starts(slots_for_profile(session, profile, limit=50))
    frozen_now(NOW + timedelta(minutes=31))
    with read_session() as session:  # expire_holds has not run yet
        assert TUE_10 in starts(slots_for_profile(session, profile, limit=50))
    assert lesson(held).status == HELD


# --- suggesting -----------------------------------------------------------------------------


def test_suggestions_leave_out_held_and_confirmed_lessons(anna):
    book("conv-a", TUE_10)
    insert_lesson("conv-c", at(1, 11), anna, status=HELD, hold_expires_at=NOW + timedelta(minutes=30))
    insert_lesson("conv-d", at(1, 12), anna, status=CANCELLED)
    insert_lesson("conv-e", at(1, 13), anna, status=EXPIRED)

    suggestion = suggest("conv-b")
    assert (suggestion.profile, suggestion.segment, suggestion.timezone) == ("new", "new", "Europe/Amsterdam")
    assert starts(suggestion.slots)[:2] == [at(1, 12), at(1, 17)]  # afternoon and evening
    tuesday = [s for s in all_offered() if s.astimezone(AMS).date() == at(1, 0).date()]
    assert [s.astimezone(AMS).hour for s in tuesday] == [12, 13, 14, 15, 16, 17, 18, 19]


def test_a_free_slot_that_is_not_suggested_can_still_be_booked(anna, add_tutor):
    add_tutor("Bram")
    suggested = starts(suggest("conv-b").slots)
    assert at(1, 11) not in suggested  # two a day, spread: 10:00 and 12:00 on Tuesday
    assert at(1, 11) in all_offered()
    for n, start in enumerate([at(1, 11), at(1, 13), at(1, 14)]):  # a third and more on one day
        assert book(f"conv-{n}", start).lesson.status == CONFIRMED


def test_suggestions_leave_out_time_off(anna):
    busy(anna, at(1, 10), at(1, 15))
    assert starts(suggest("conv-b").slots)[0] == at(1, 15)


def test_explicit_profile_name_is_used_unless_the_contact_has_an_override(anna):
    assert suggest("conv-b", "premium").profile == "premium"
    with write_session() as session:
        session.get(Contact, "contact-conv-b").profile_override = "weekend"
    assert suggest_slots("conv-b", "premium").profile == "weekend"


# --- several tutors ---------------------------------------------------------------------------


def test_a_slot_is_offered_while_one_tutor_is_free_and_goes_to_that_tutor(add_tutor):
    anna, bram = add_tutor("Anna"), add_tutor("Bram")
    busy(anna, TUE_10, TUE_10 + timedelta(hours=1))

    assert TUE_10 in starts(suggest("conv-a").slots)
    assert book("conv-a", TUE_10).lesson.tutor_id == bram

    with pytest.raises(SlotTaken):  # now both are busy
        book("conv-b", TUE_10)
    assert TUE_10 not in starts(suggest("conv-b").slots)


def test_two_tutors_give_two_lessons_at_the_same_time(add_tutor):
    tutors = {add_tutor("Anna"), add_tutor("Bram")}
    first, second = book("conv-a", TUE_10), book("conv-b", TUE_10)
    assert {first.lesson.tutor_id, second.lesson.tutor_id} == tutors
    with pytest.raises(SlotTaken):
        book("conv-c", TUE_10)


# Lessons the tutors already have. The ISO week of Tuesday 1 December runs Mon 30 Nov - Sun 6 Dec.
THIS_WEEK = [at(2, 10), at(3, 10), at(4, 10)]
NEXT_WEEK = [at(7, 10), at(8, 10), at(9, 10)]
MONDAY_START = datetime(2026, 11, 30, 0, 0, tzinfo=AMS)
SUNDAY_LATE = at(6, 23)
LAST_WEEK_LATE = datetime(2026, 11, 29, 23, 0, tzinfo=AMS)
NEXT_MONDAY_START = at(7, 0)


@pytest.mark.parametrize(
    ("anna_has", "bram_has", "expected"),
    [
        pytest.param([], [], "Anna", id="tie: the first tutor"),
        pytest.param(THIS_WEEK[:1], [], "Bram", id="Anna has one this week"),
        pytest.param(THIS_WEEK[:1], THIS_WEEK[:2], "Anna", id="Bram has two this week"),
        pytest.param(NEXT_WEEK, THIS_WEEK[:1], "Anna", id="next week does not count"),
        pytest.param([MONDAY_START], [], "Bram", id="Monday 00:00 is this week"),
        pytest.param([SUNDAY_LATE], [], "Bram", id="Sunday 23:00 is this week"),
        pytest.param([LAST_WEEK_LATE, NEXT_MONDAY_START], [], "Anna", id="neighbouring weeks do not count"),
    ],
)
def test_the_free_tutor_with_the_fewest_lessons_that_week_gets_the_booking(
    add_tutor, anna_has, bram_has, expected
):
    ids = {"Anna": add_tutor("Anna"), "Bram": add_tutor("Bram")}
    for name, existing in (("Anna", anna_has), ("Bram", bram_has)):
        for n, start in enumerate(existing):
            insert_lesson(f"conv-{name}-{n}", start, ids[name])
    assert book("conv-x", at(1, 12)).lesson.tutor_id == ids[expected]


def test_cancelled_lessons_do_not_count_towards_a_tutors_week(add_tutor):
    anna, bram = add_tutor("Anna"), add_tutor("Bram")
    insert_lesson("conv-1", at(2, 10), anna, status=CANCELLED)
    insert_lesson("conv-2", at(3, 10), anna, status=CANCELLED)
    insert_lesson("conv-3", at(2, 11), bram)
    assert book("conv-x", at(1, 12)).lesson.tutor_id == anna


def test_a_tutor_who_does_not_teach_the_profile_is_never_assigned(add_tutor):
    anna = add_tutor("Anna")
    add_tutor("Bram", teaches=["premium"])
    insert_lesson("conv-1", at(2, 10), anna)
    assert book("conv-x", at(1, 12)).lesson.tutor_id == anna
    busy(anna, at(1, 13), at(1, 14))
    with pytest.raises(SlotTaken):
        book("conv-y", at(1, 13))


# --- who may cancel -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("user", "allowed"),
    [
        pytest.param(User(email="admin@lesplanner.test", role="admin"), True, id="admin"),
        pytest.param(User(email="Anna@Lesplanner.test", role="tutor"), True, id="the lesson's tutor"),
        pytest.param(User(email="bram@lesplanner.test", role="tutor"), False, id="another tutor"),
        pytest.param(User(email="finance@lesplanner.test", role="finance"), False, id="finance"),
        pytest.param(
            User(email="old@lesplanner.test", role="admin", active=False), False, id="deactivated admin"
        ),
    ],
)
def test_who_may_cancel_a_lesson(add_tutor, user, allowed):
    anna = add_tutor("Anna")
    add_tutor("Bram")
    booked = book("conv-a", TUE_10).lesson
    assert booked.tutor_id == anna

    if allowed:
        assert cancel_lesson(booked.id, user).status == CANCELLED
        assert messages("conv-a")[-1][0] == "lesson_cancelled"
    else:
        with pytest.raises(PermissionDenied):
            cancel_lesson(booked.id, user)
        assert lesson(booked.id).status == CONFIRMED
        assert [key for key, _ in messages("conv-a")] == ["booking_confirmed"]


def test_cancelling_an_unknown_lesson_is_not_found(anna, admin):
    with pytest.raises(NotFound):
        cancel_lesson(999, admin)


def test_times_are_stored_and_returned_in_utc(anna):
    booked = book("conv-a", TUE_10).lesson
    assert lesson(booked.id).start == datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    assert lesson(booked.id).start.utcoffset() == timedelta(0)
