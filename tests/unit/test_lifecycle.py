"""The lesson lifecycle across systems (core/lessons.py, core/jobs.py): the state machine's
table, and the failures between systems that used to lose a customer's money or slot (issue 11,
"Reproduced failures"), each as its own named test.

The world is test_faults' one: the receiver's API over a real Google Calendar client against
the Google fake and the real Stripe client against the Stripe fake. Monday 30 November 2026,
08:00 in Amsterdam; the tutor has an appointment on Tuesday 10:00-11:00.
"""

from __future__ import annotations

from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from core import clock, jobs, lessons, worker
from core.calendars import CreatedEvent, EventRequest, event_id_for_lesson, set_backend
from core.calendars.local import LocalCalendarBackend
from core.config import set_settings
from core.db import read_session, write_session
from core.errors import CalendarUnavailable, InvalidTransition, LesplannerError, ValidationFailed
from core.models import (
    AWAITING_PAYMENT,
    CANCELLED,
    CONFIRMED,
    EXPIRED,
    HELD,
    NEEDS_RESCHEDULE,
    AuditLog,
    BusyBlock,
    Contact,
    Conversation,
    Job,
    Lesson,
    LessonSeries,
    LessonStatus,
    OutboxMessage,
    Payment,
    PlanningProfile,
    Tutor,
)
from receiver.errors import status_for
from tests.conftest import AMS
from tests.procs import WEBHOOK_SECRET
from tests.support.services import CALENDAR, open_world

NOON = {"start": "2026-12-01T12:00:00+01:00", "end": "2026-12-01T13:00:00+01:00"}
TWO = {"start": "2026-12-01T14:00:00+01:00", "end": "2026-12-01T15:00:00+01:00"}


def scheduled_later(job: Job) -> bool:
    """A reminder planned for later is not an unfinished job: it cannot have run yet."""
    return job.kind == "reminder" and job.status == "pending" and job.run_after > clock.now()


def lesson(lesson_id: int) -> Lesson:
    with read_session() as session:
        return session.get(Lesson, lesson_id)


def message_keys(conversation: str = "conv-1") -> list[str]:
    with read_session() as session:
        return [
            m.key
            for m in session.exec(
                select(OutboxMessage)
                .where(OutboxMessage.conversation_id == conversation)
                .order_by(OutboxMessage.id)
            ).all()
        ]


def later(**delta: float) -> None:
    clock.set_now(clock.now() + timedelta(**delta))


def pay(world, lesson_json: dict) -> None:  # noqa: ANN001
    event = world.stripe.complete_session(lesson_json["checkout_session_id"])
    body, header = world.stripe.signed(event, WEBHOOK_SECRET)
    answer = world.client.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": header})
    assert answer.status_code == 200, answer.text


def live_events(world) -> list[dict]:  # noqa: ANN001
    """Live events Lesplanner made (the tutor's own appointment is not one of them)."""
    return [e for e in world.google.events(CALENDAR) if e["id"].startswith("lesplanner")]


@pytest.fixture
def world(tmp_path, engine, monkeypatch):
    yield from open_world(tmp_path, monkeypatch)


# --- the table ----------------------------------------------------------------------------------

EVENTS = sorted({t.event for t in lessons.TRANSITIONS})


@pytest.mark.parametrize("status", [None, *LessonStatus])
@pytest.mark.parametrize("event", EVENTS)
def test_every_status_change_is_in_the_table_and_nothing_else_is_allowed(status, event):
    allowed = {(s, t.event): t.target for t in lessons.TRANSITIONS for s in t.sources}
    if (status, event) in allowed:
        assert lessons.target_of(status, event) == allowed[(status, event)]
    else:
        with pytest.raises(InvalidTransition):
            lessons.target_of(status, event)


def test_the_table_is_designs_table():
    rows = {(tuple(sorted(str(s) for s in t.sources)), t.event, str(t.target)) for t in lessons.TRANSITIONS}
    assert rows == {
        (("None",), "book_with_payment", "held"),
        (("None", "awaiting_payment", "held"), "confirm", "confirmed"),
        (("held",), "checkout_completed_unpaid", "awaiting_payment"),
        (("awaiting_payment", "held"), "hold_expired", "expired"),
        (("awaiting_payment", "held"), "payment_failed", "cancelled"),
        (("expired",), "paid_late", "confirmed"),
        (("awaiting_payment", "cancelled", "confirmed", "expired", "held"), "slot_lost", "needs_reschedule"),
        (("awaiting_payment", "confirmed", "held", "needs_reschedule"), "cancel", "cancelled"),
        (("confirmed",), "reschedule", "confirmed"),
        (("needs_reschedule",), "rebook", "confirmed"),
    }


def test_a_hold_stops_blocking_at_the_very_moment_it_expires(engine):
    until = datetime(2026, 12, 1, 9, 30, tzinfo=AMS)
    assert lessons.blocks(HELD, until, until - timedelta(microseconds=1)) is True
    assert lessons.blocks(HELD, until, until) is False
    assert lessons.blocks(AWAITING_PAYMENT, until, until) is False
    assert lessons.blocks(CONFIRMED, None, until) is True
    assert lessons.blocks(NEEDS_RESCHEDULE, None, until) is False


def test_expire_holds_releases_a_hold_at_exactly_its_expiry(world):
    booked = world.book(slot=NOON).json()
    clock.set_now(lesson(booked["id"]).hold_expires_at - timedelta(microseconds=1))
    assert lessons.expire_holds() == 0
    clock.set_now(lesson(booked["id"]).hold_expires_at)
    assert lessons.expire_holds() == 1
    assert lesson(booked["id"]).status == EXPIRED


def test_a_held_lesson_blocks_its_slot_until_its_expiry_and_not_a_moment_longer(world):
    booked = world.book(slot=NOON).json()
    until = lesson(booked["id"]).hold_expires_at
    start = datetime.fromisoformat(NOON["start"])
    with read_session() as session:
        assert lessons.lesson_busy(
            session, [1], start, start + timedelta(hours=1), until - timedelta(seconds=1)
        )[1]
        assert lessons.lesson_busy(session, [1], start, start + timedelta(hours=1), until)[1] == []


# --- reproductions ---------------------------------------------------------------------------------


def test_repro_1_a_free_booking_while_google_refuses_the_event_is_confirmed_not_a_500(world):
    """Used to answer 500 (the rollback detached the lesson, so it was never released), keep the
    slot held for 10 minutes, answer a retry with 200 'held', and then tell the customer their
    *payment* window expired although nothing was to be paid."""
    with write_session() as session:
        session.get(PlanningProfile, "new").requires_payment = False
    world.google.fail_next(500, count=10_000, match="events.insert")

    first = world.book(slot=NOON)
    again = world.book(slot=NOON)

    assert first.status_code == 201, first.text
    assert (first.json()["status"], first.json()["calendar_sync"]) == ("confirmed", "pending")
    assert again.status_code == 200 and again.json()["id"] == first.json()["id"]
    later(minutes=31)
    worker.drain()
    assert lesson(first.json()["id"]).status == CONFIRMED
    assert "hold_expired" not in message_keys()
    world.google.clear_faults()
    later(seconds=60)
    worker.drain()
    assert lesson(first.json()["id"]).calendar_sync == "synced"
    assert [e["id"] for e in live_events(world)] == [event_id_for_lesson(first.json()["id"])]


def _paid_lesson_that_lost_its_slot(world) -> dict:  # noqa: ANN001
    booked = world.book(slot=NOON).json()
    world.google.add_event(
        CALENDAR, datetime(2026, 12, 1, 12, 0, tzinfo=AMS), datetime(2026, 12, 1, 12, 30, tzinfo=AMS)
    )  # the tutor's dentist
    pay(world, booked)
    worker.drain()
    assert lesson(booked["id"]).status == NEEDS_RESCHEDULE
    return booked


def test_repro_2_rebooking_a_paid_lesson_while_the_calendar_fails_keeps_the_money_on_a_confirmed_lesson(
    world,
):
    """Used to cancel the old lesson and move the paid payment onto a new *held* lesson that then
    expired: the money was stranded and the next booking asked the customer to pay again."""
    booked = _paid_lesson_that_lost_its_slot(world)
    checkouts = world.checkout_calls()
    world.google.fail_next(500, count=10_000, match="events.insert")

    rebooked = world.book(slot=TWO)

    assert rebooked.status_code == 201, rebooked.text
    body = rebooked.json()
    assert body["id"] == booked["id"]  # the same lesson, at its new time
    assert (body["status"], body["calendar_sync"], body["payment_url"]) == ("confirmed", "pending", None)
    assert world.checkout_calls() == checkouts  # nothing to pay again
    later(hours=2)
    worker.drain()
    moved = lesson(booked["id"])
    assert moved.status == CONFIRMED and moved.start == datetime.fromisoformat(TWO["start"])
    with read_session() as session:
        assert [(p.lesson_id, p.status) for p in session.exec(select(Payment)).all()] == [
            (booked["id"], "paid")
        ]
    world.google.clear_faults()
    later(seconds=60)
    worker.drain()
    assert lesson(booked["id"]).calendar_sync == "synced"
    assert [
        datetime.fromisoformat(e["start"]["dateTime"])
        for e in live_events(world)
        if e["id"] == event_id_for_lesson(booked["id"])
    ] == [datetime.fromisoformat(TWO["start"])]


def test_repro_7_a_paid_60_minute_lesson_is_not_rebooked_as_a_90_minute_one(world):
    """Used to confirm a premium 90-minute lesson for the price of the 60-minute one."""
    booked = _paid_lesson_that_lost_its_slot(world)
    slot = {"start": "2026-12-02T14:00:00+01:00", "end": "2026-12-02T15:30:00+01:00"}

    response = world.client.post(
        "/api/v1/bookings", json={"conversation_id": "conv-1", "contact_id": "contact-1", **slot}
    )
    assert response.status_code == 422  # the contact's profile is 60 minutes
    with write_session() as session:
        from core.models import Contact

        session.get(Contact, "contact-1").profile_override = "premium"
    response = world.client.post(
        "/api/v1/bookings", json={"conversation_id": "conv-1", "contact_id": "contact-1", **slot}
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"] != booked["id"] and body["status"] == "held" and body["payment_url"]
    assert lesson(booked["id"]).status == NEEDS_RESCHEDULE  # its payment stays for a 60-minute lesson


def test_a_paid_lesson_keeps_its_length_even_when_both_lengths_share_one_price(world):
    """A set-up with one Stripe price for 60 and 90 minutes must still not turn a paid
    60-minute lesson into a 90-minute one."""
    from core.config import get_settings

    booked = _paid_lesson_that_lost_its_slot(world)
    settings = get_settings()
    set_settings(settings.model_copy(update={"standard_price_id_90": settings.standard_price_id_60}))
    with write_session() as session:
        from core.models import Contact

        session.get(Contact, "contact-1").profile_override = "premium"

    response = world.client.post(
        "/api/v1/bookings",
        json={
            "conversation_id": "conv-1",
            "contact_id": "contact-1",
            "start": "2026-12-02T14:00:00+01:00",
            "end": "2026-12-02T15:30:00+01:00",
        },
    )

    assert response.status_code == 201, response.text
    assert response.json()["id"] != booked["id"] and response.json()["status"] == "held"
    assert lesson(booked["id"]).status == NEEDS_RESCHEDULE


def test_a_paid_lesson_is_rebooked_without_paying_again_for_the_same_length_and_price(world):
    booked = _paid_lesson_that_lost_its_slot(world)

    rebooked = world.book(slot=TWO).json()
    worker.drain()

    assert rebooked["id"] == booked["id"] and rebooked["status"] == "confirmed"
    assert lesson(booked["id"]).calendar_sync == "synced"
    keys = message_keys()
    assert keys.count("slot_lost") == 1 and keys[-1] == "booking_confirmed"


def test_a_second_paid_checkout_for_a_confirmed_lesson_changes_nothing_twice(world):
    """The guard in lessons.paid: a confirmed lesson stays as it is when more money arrives."""
    booked = world.book(slot=NOON).json()
    from core.payments import create_payment_link

    second = create_payment_link(
        "new",
        60,
        f"lesson-{booked['id']}-again",
        "conv-1",
        "",
        "new",
        "new",
        "new",
        lesson_id=booked["id"],
        internal=True,
    )
    pay(world, booked)
    worker.drain()
    event = world.stripe.complete_session(second.checkout_session_id)
    body, header = world.stripe.signed(event, WEBHOOK_SECRET)

    answer = world.client.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": header})

    assert answer.status_code == 200 and answer.json()["status"] == "processed"
    assert lesson(booked["id"]).status == CONFIRMED
    with read_session() as session:
        jobs_ = session.exec(select(Job).where(Job.kind == "calendar.create")).all()
    assert [j.status for j in jobs_] == ["done"]
    assert message_keys().count("booking_confirmed") == 1


def test_a_cancelled_lessons_event_is_removed_even_when_the_create_ran_after_the_cancel(world):
    with write_session() as session:
        session.get(PlanningProfile, "new").requires_payment = False
    booked = world.book(slot=NOON).json()
    from core.lesson_changes import cancel_lesson

    cancel_lesson(booked["id"], actor=None, reason="klant belde af")  # before the worker ran
    worker.drain()

    assert live_events(world) == []
    assert lesson(booked["id"]).status == "cancelled"


# --- the fault matrix: every outside call x every fault, through a whole lifecycle -------------

# (service, what the fault matches): Google operations, Stripe path prefixes, Chatwoot paths.
CALLS = {
    "freebusy": ("google", "freebusy.query"),
    "event create": ("google", "events.insert"),
    "event update": ("google", "events.update"),
    "event delete": ("google", "events.delete"),
    "checkout create/expire": ("stripe", "/v1/checkout/sessions"),
    "chat send": ("chat", "/messages"),
}
FAULTS = ("500", "429", "timeout", "dropped")
TIMES = 6  # more than one call's own retries (4 for Google, 3 for Stripe): jobs must take over


def _inject(world, chat, call: str, fault: str) -> None:  # noqa: ANN001
    service, where = CALLS[call]
    if service == "google":
        if fault == "timeout":
            world.google.slow_next(0.4, count=TIMES, match=where)  # past GCAL_TIMEOUT
        elif fault == "dropped":
            world.google.drop_next(TIMES, match=where, after_processing=True)
        else:
            world.google.fail_next(int(fault), count=TIMES, match=where)
    elif service == "stripe":
        kind = {"timeout": "slow", "dropped": "drop"}.get(fault, fault)
        world.stripe.fail_next(kind, times=TIMES, path=where, delay=0.5)  # past STRIPE_TIMEOUT
    elif fault == "timeout":
        chat.slow_next(0.5, times=TIMES, match=where)  # past the chat timeout set below
    else:  # Chatwoot drops are a 502 from its proxy
        chat.fail_next(
            {"dropped": 502}.get(fault, int(fault) if fault != "dropped" else 502), times=TIMES, match=where
        )


def _settle(world, chat) -> None:  # noqa: ANN001
    """Heal everything; within a minute per round every job must finish."""
    world.google.clear_faults()
    world.stripe.clear_faults()
    chat.clear_faults()
    for _ in range(30):
        later(seconds=61)
        worker.drain()
        with read_session() as session:
            open_jobs = [
                j
                for j in session.exec(select(Job).where(Job.status != "done")).all()
                if not scheduled_later(j)
            ]
        if not open_jobs:
            return
    raise AssertionError([(j.key, j.status, j.last_error) for j in open_jobs])


@pytest.fixture
def chat_world(tmp_path, engine, monkeypatch):
    from core import chat as chat_module
    from tests.fakes.chatwoot import FakeChatwoot

    monkeypatch.setattr(chat_module, "TIMEOUT_SECONDS", 0.3)
    with FakeChatwoot(now=lambda: clock.now().timestamp()) as chatwoot:
        for world_ in open_world(tmp_path, monkeypatch, chatwoot=chatwoot):
            yield world_, chatwoot


@pytest.mark.parametrize("fault", FAULTS)
@pytest.mark.parametrize("call", list(CALLS))
def test_every_outside_call_failing_in_every_way_loses_nothing_and_does_nothing_twice(
    chat_world, call, fault
):
    """Book, pay, let the worker run, move, cancel, and let a second hold expire, with `call`
    failing as `fault` from the start. No caller gets a 500; once the service heals every job
    finishes; then the calendar, Stripe and the chat match the database exactly."""
    world, chat = chat_world
    _inject(world, chat, call, fault)
    answers = []

    booked = None
    for _ in range(3):  # a booking refused with a clear 503 is simply asked again
        response = world.book(slot=NOON)
        answers.append(response.status_code)
        if response.status_code == 201:
            booked = response.json()
            break
        later(seconds=61)
    assert booked is not None, answers
    pay(world, booked)
    worker.drain()
    from core.lesson_changes import cancel_lesson, reschedule_lesson
    from core.models import User

    with write_session() as session:
        admin = User(email="admin@lesplanner.test", role="admin")
        session.add(admin)
        session.flush()
        admin = User(id=admin.id, email=admin.email, role="admin", active=True)
    for _ in range(3):
        try:
            reschedule_lesson(booked["id"], datetime.fromisoformat(TWO["start"]), admin, "ruil")
            break
        except LesplannerError as exc:
            assert status_for(exc) in (409, 503), exc.message  # a clear refusal, nothing changed
            later(seconds=61)
    worker.drain()
    cancel_lesson(booked["id"], admin, "docent ziek")
    second = world.book(
        "conv-2", slot={"start": "2026-12-02T12:00:00+01:00", "end": "2026-12-02T13:00:00+01:00"}
    )
    answers.append(second.status_code)
    later(minutes=31)  # the second hold runs out: released, its checkout expired by a job
    worker.drain()

    assert 500 not in answers
    _settle(world, chat)

    with read_session() as session:
        all_lessons = session.exec(select(Lesson)).all()
        payments_ = session.exec(select(Payment)).all()
        messages = session.exec(select(OutboxMessage)).all()
    assert lesson(booked["id"]).status == "cancelled"
    assert live_events(world) == []  # confirmed, moved, cancelled: no event left behind
    for row in all_lessons:
        assert row.status not in ("held", "awaiting_payment")  # every hold ended
    for payment in payments_:
        session_state = world.stripe.sessions[payment.checkout_session_id]["status"]
        assert session_state != "open", f"{payment.checkout_session_id} can still be paid"
    for message in messages:  # each message reached Chatwoot, once
        assert message.status == "sent", (message.key, message.status, message.last_error)
        sent = chat.sent(message.conversation_id)
        assert sent.count(message.text) == 1, (message.key, sent)
    # the event was made once (the insert's answer may have been lost: adopted, not duplicated)
    inserts = [r for r in world.google.calls("events.insert") if r.status == 200]
    assert len(inserts) <= 1


# --- each step's own promises, one at a time (found by `make mutate`, docs/TESTING.md) -------------

TUE_10 = datetime(2026, 12, 1, 10, 0, tzinfo=AMS)


def _stored(status: str, start: datetime = TUE_10, **fields) -> int:
    """A lesson written straight into the database (conv-1 / contact-1, tutor Anna)."""
    with write_session() as session:
        tutor = session.exec(select(Tutor).where(Tutor.name == "Anna")).first()
        if tutor is None:
            tutor = Tutor(name="Anna", calendar_id="anna-calendar")
            session.add_all(
                [tutor, Contact(id="contact-1"), Conversation(id="conv-1", contact_id="contact-1")]
            )
            session.flush()
        row = Lesson(
            conversation_id="conv-1",
            contact_id="contact-1",
            tutor_id=tutor.id,
            profile_name="existing",
            start=start,
            end=start + timedelta(hours=1),
            title="Les",
            status=status,
            created_at=clock.now(),
            updated_at=clock.now(),
            **fields,
        )
        session.add(row)
        session.flush()
        return row.id


def _jobs(kind: str) -> list[Job]:
    with read_session() as session:
        return list(session.exec(select(Job).where(Job.kind == kind)).all())


def _step(function, lesson_id: int, *args, **kwargs):  # noqa: ANN001, ANN202
    with write_session() as session:
        return function(session, session.get(Lesson, lesson_id), *args, **kwargs)


def test_a_lesson_booked_to_be_paid_is_held_until_its_hold_runs_out(engine, frozen_now):
    now = frozen_now(2026, 11, 30, 9, 0)
    first = _stored(CONFIRMED, start=TUE_10 + timedelta(days=1))  # Anna, conv-1 and contact-1
    with write_session() as session:
        new = Lesson(
            conversation_id="conv-1",
            contact_id="contact-1",
            tutor_id=session.get_one(Lesson, first).tutor_id,
            profile_name="existing",
            start=TUE_10,
            end=TUE_10 + timedelta(hours=1),
            title="Les",
        )
        lessons.book(session, new, hold_until=now + timedelta(minutes=30))
        booked = new.id

    assert (lesson(booked).status, lesson(booked).hold_expires_at) == (HELD, now + timedelta(minutes=30))
    assert _jobs("calendar.create") == []  # the event waits for the payment
    later(minutes=30)
    lessons.expire_holds()
    assert lesson(booked).status == EXPIRED


def test_a_hold_extended_while_the_sweeper_looks_is_kept(engine, frozen_now, monkeypatch):
    """The sweeper finds the hold due, but before it takes the lesson's lock the checkout
    completes with a delayed payment method and the hold is extended: the lesson is kept (the
    sweeper decides on the row it locked, not on what it read before)."""
    now = frozen_now(2026, 11, 30, 9, 0)
    held = _stored(HELD, hold_expires_at=now)
    real_write_session = lessons.write_session

    @contextmanager
    def extended_first():  # noqa: ANN202
        assert _step(lessons.await_payment, held) is True
        with real_write_session() as session:
            yield session

    monkeypatch.setattr(lessons, "write_session", extended_first)

    assert lessons.expire_holds() == 0
    assert (lesson(held).status, lesson(held).hold_expires_at) == (
        AWAITING_PAYMENT,
        now + timedelta(hours=72),
    )


def test_an_expired_hold_closes_its_checkout_and_says_why(engine, frozen_now):
    frozen_now(2026, 11, 30, 9, 0)
    held = _stored(HELD, hold_expires_at=clock.now())

    assert _step(lessons.release, held, "hold_expired") is True

    [job] = _jobs("stripe.expire_checkout")
    assert (job.key, job.payload, job.subject) == (
        f"stripe.expire_checkout:lesson-{held}",
        {"lesson_id": held},
        f"checkout-lesson-{held}",
    )
    assert lesson(held).cancel_reason == "hold_expired"
    assert message_keys() == ["hold_expired"]
    assert _step(lessons.release, held, "hold_expired") is False  # nothing changed the second time


def test_a_failed_payment_says_so_and_leaves_the_checkout_alone(engine, frozen_now):
    frozen_now(2026, 11, 30, 9, 0)
    waiting = _stored(AWAITING_PAYMENT)

    assert _step(lessons.release, waiting, "payment_failed") is True

    assert lesson(waiting).cancel_reason == "payment_failed"
    assert message_keys() == ["payment_failed"]
    assert _jobs("stripe.expire_checkout") == []  # Stripe closed that session itself


def test_a_move_keeps_the_length_and_clears_the_cancel_reason(engine, frozen_now):
    frozen_now(2026, 11, 30, 9, 0)
    lost = _stored(NEEDS_RESCHEDULE, cancel_reason="slot_lost")
    new = TUE_10 + timedelta(hours=3)

    with pytest.raises(LesplannerError, match="^A lesson keeps its length when it moves.$"):
        _step(lessons.move, lost, new, new + timedelta(minutes=90))
    _step(lessons.move, lost, new, new + timedelta(hours=1))

    moved = lesson(lost)
    assert (moved.status, moved.start, moved.cancel_reason) == (CONFIRMED, new, None)


def test_a_move_to_another_tutor_takes_the_tutor_along_unless_an_event_exists(engine, frozen_now):
    frozen_now(2026, 11, 30, 9, 0)
    plain = _stored(CONFIRMED)
    with_event = _stored(CONFIRMED, start=TUE_10 + timedelta(hours=1), calendar_event_id="lesplanner00000009")
    with write_session() as session:
        bram = Tutor(name="Bram", calendar_id="bram-calendar")
        session.add(bram)
        session.flush()
        bram_id = bram.id
    new = TUE_10 + timedelta(days=1)

    _step(lessons.move, plain, new, new + timedelta(hours=1), tutor_id=bram_id)
    assert lesson(plain).tutor_id == bram_id
    with pytest.raises(
        InvalidTransition, match="^A lesson with a calendar event keeps its tutor when it moves.$"
    ):
        _step(lessons.move, with_event, new, new + timedelta(hours=1), tutor_id=bram_id)
    anna = lesson(with_event).tutor_id
    _step(
        lessons.move, with_event, new, new + timedelta(hours=1), tutor_id=anna
    )  # the same tutor is no change
    assert lesson(with_event).start == new


def test_a_lesson_is_marked_from_the_moment_it_ends_and_only_when_confirmed(engine, frozen_now):
    done = _stored(CONFIRMED)
    held = _stored(HELD, start=TUE_10 + timedelta(hours=2))
    frozen_now(TUE_10 + timedelta(minutes=59))
    with pytest.raises(InvalidTransition, match="^A lesson can be marked once it has ended.$"):
        _step(lessons.mark_outcome, done, "attended")
    with pytest.raises(InvalidTransition, match="^Only a confirmed lesson can be marked; this one is held.$"):
        _step(lessons.mark_outcome, held, "attended")

    frozen_now(TUE_10 + timedelta(hours=1))  # the very end of the lesson
    _step(lessons.mark_outcome, done, "no_show")
    assert lesson(done).outcome == "no_show"


def _series(status: str, weeks: int = 2, **fields) -> list[int]:
    """A weekly series of `weeks` lessons from TUE_10 on, stored as `_stored` stores one."""
    ids = [_stored(status, start=TUE_10 + timedelta(weeks=week), **fields) for week in range(weeks)]
    with write_session() as session:
        series = LessonSeries(
            conversation_id="conv-1",
            contact_id="contact-1",
            profile_name="existing",
            start=TUE_10,
            weeks=weeks,
            lessons=weeks,
        )
        session.add(series)
        session.flush()
        for lesson_id in ids:
            session.get(Lesson, lesson_id).series_id = series.id
    return ids


class _ScriptedCalendar(LocalCalendarBackend):
    """The embedded calendar, recording what it is asked: it answers a lesson's event with the
    errors queued for that lesson first (one per attempt), then makes it and invites the
    customer when there is an address."""

    def __init__(self, **errors: list[Exception]) -> None:
        self.errors = {int(lesson_id): list(queue) for lesson_id, queue in errors.items()}
        self.requests: list[EventRequest] = []
        self.deleted: list[tuple[str, str]] = []

    def create_event(self, request: EventRequest) -> CreatedEvent:
        self.requests.append(request)
        if self.errors.get(request.lesson_id):
            raise self.errors[request.lesson_id].pop(0)
        if request.attendee_email is None:
            return CreatedEvent(event_id=request.event_id)
        return CreatedEvent(request.event_id, invite_sent=True, note=f"Invited {request.attendee_email}.")

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        self.deleted.append((calendar_id, event_id))


def _paid_with(calendar: _ScriptedCalendar, *, verify_slot: bool = False) -> int:
    """A lesson held for 30 minutes, confirmed by its payment with `calendar` as the tutor's."""
    held = _stored(HELD, hold_expires_at=clock.now() + timedelta(minutes=30))
    set_backend(calendar)
    _step(lessons.confirm, held, verify_slot=verify_slot)
    return held


def _series_paid_with(calendar: _ScriptedCalendar, weeks: int = 2) -> list[int]:
    """A weekly series held for 30 minutes, paid (each lesson's job checks its slot first), with
    `calendar` as the tutor's."""
    ids = _series(HELD, weeks=weeks, hold_expires_at=clock.now() + timedelta(minutes=30))
    set_backend(calendar)
    with write_session() as session:
        for lesson_id in ids:
            lessons.confirm(session, session.get(Lesson, lesson_id), verify_slot=True)
    return ids


def test_a_calendar_that_refuses_the_event_marks_the_lesson_failed_with_its_reason(engine, frozen_now):
    frozen_now(2026, 11, 30, 9, 0)
    held = _stored(HELD, hold_expires_at=clock.now() + timedelta(minutes=30))
    reason = "Anna's calendar is read-only. " * 20  # 600 characters
    set_backend(_ScriptedCalendar(**{str(held): [ValidationFailed(reason)]}))

    _step(lessons.confirm, held, verify_slot=True)  # paid: the job checks the slot first
    worker.drain()

    refused = lesson(held)
    assert (refused.status, refused.calendar_sync) == (CONFIRMED, "failed")
    assert refused.calendar_note == f"The calendar refused this lesson's event: {reason}"[:500]
    assert len(refused.calendar_note) == 500  # the note stays readable on the lesson page
    assert message_keys() == ["booking_confirmed"]  # told once, when the slot was checked


@pytest.mark.parametrize(("then", "settled"), [("refused", "failed"), ("made", "synced")])
def test_a_series_is_told_once_its_last_lessons_event_is_settled_after_the_others_were_made(
    engine, frozen_now, then, settled
):
    """The first lesson's slot is checked, the calendar is down, the second lesson's event is
    made, then the first one's is made too or refused for good: that settles the series."""
    frozen_now(2026, 11, 30, 9, 0)
    first, second = _series(HELD, hold_expires_at=clock.now() + timedelta(minutes=30))
    errors: list[Exception] = [CalendarUnavailable("Google is not answering.")]
    if then == "refused":
        errors.append(ValidationFailed("Refused."))
    set_backend(_ScriptedCalendar(**{str(first): errors}))
    with write_session() as session:
        for lesson_id in (first, second):
            lessons.confirm(session, session.get(Lesson, lesson_id), verify_slot=True)

    worker.drain()
    assert (lesson(first).calendar_sync, lesson(second).calendar_sync) == ("pending", "synced")
    assert message_keys() == []  # the first lesson is not settled yet
    later(minutes=10)
    worker.drain()

    assert (lesson(first).calendar_sync, lesson(second).calendar_sync) == (settled, "synced")
    assert message_keys() == ["series_confirmed"]


def _busy_for_anna(start: datetime, end: datetime) -> None:
    """Something else in Anna's calendar (the embedded calendar reads BusyBlock)."""
    with write_session() as session:
        tutor = session.exec(select(Tutor).where(Tutor.name == "Anna")).one()
        session.add(BusyBlock(tutor_id=tutor.id, start=start, end=end))


def test_a_series_is_told_when_its_last_lesson_to_check_loses_its_slot(engine, frozen_now):
    """The three lessons of a paid series are checked in turn; the last one's time is taken in
    the tutor's calendar: that check settles the series, which is told about the two lessons it
    keeps (and the customer asked to pick a new time for the third)."""
    frozen_now(2026, 11, 30, 9, 0)
    first, second, third = _series_paid_with(_ScriptedCalendar(), weeks=3)
    _busy_for_anna(TUE_10 + timedelta(weeks=2), TUE_10 + timedelta(weeks=2, hours=1))

    worker.drain()

    assert [lesson(x).calendar_sync for x in (first, second)] == ["synced", "synced"]
    assert (lesson(third).status, lesson(third).calendar_sync) == (NEEDS_RESCHEDULE, None)
    assert message_keys() == ["slot_lost", "series_confirmed"]
    assert (
        _texts()[1] == "Je reeks van 2 lessen is ingepland: di 1 dec en di 8 dec, steeds om 10:00. Tot dan!"
    )


class _AnswerLost(_ScriptedCalendar):
    """Google makes the event but the answer is lost (a timeout): from then on the event is in
    the tutor's calendar, so a second look at the slot would find it taken by our own event."""

    def create_event(self, request: EventRequest) -> CreatedEvent:
        if not self.requests:
            self.requests.append(request)
            _busy_for_anna(request.start, request.end)
            raise CalendarUnavailable("Google Calendar did not answer in time.")
        return super().create_event(request)


def test_a_retry_after_a_lost_answer_does_not_check_the_slot_again(engine, frozen_now):
    """The slot was checked before the event was made; the retry only makes the event (again,
    idempotently): checking again would see our own event and take the customer's lesson."""
    frozen_now(2026, 11, 30, 9, 0)
    calendar = _AnswerLost()
    held = _paid_with(calendar, verify_slot=True)

    worker.drain()
    later(minutes=10)
    worker.drain()

    assert len(calendar.requests) == 2
    assert (lesson(held).status, lesson(held).calendar_sync) == (CONFIRMED, "synced")
    assert message_keys() == ["booking_confirmed"]


class _CancelledWhileChecking(_ScriptedCalendar):
    """Staff cancel the lesson while its slot is being checked; the slot is `taken` or free."""

    def __init__(self, *, taken: bool) -> None:
        super().__init__()
        self.taken = taken

    def busy(self, calendar_ids, start, end):  # noqa: ANN001, ANN201
        with write_session() as session:
            lesson_row = session.exec(select(Lesson).where(Lesson.start == start)).one()
            lessons.cancel(session, lesson_row, "docent ziek")
        return {calendar_id: [(start, end)] if self.taken else [] for calendar_id in calendar_ids}


def test_a_lesson_cancelled_while_its_slot_is_checked_is_left_cancelled(engine, frozen_now):
    """The check finds the slot taken, but the lesson is no longer confirmed: nothing is done to
    it (no "pick a new time"), and the job runs once more for the cancel."""
    frozen_now(2026, 11, 30, 9, 0)
    held = _paid_with(_CancelledWhileChecking(taken=True), verify_slot=True)

    jobs.run_due(kinds=["calendar.create"], limit=1)  # the run the cancel overtook

    assert (lesson(held).status, lesson(held).cancel_reason) == (CANCELLED, "docent ziek")
    assert "slot_lost" not in message_keys()
    [job] = _jobs("calendar.create")
    assert (job.status, job.result) == (
        "pending",
        "lesson changed meanwhile; nothing done; asked for again meanwhile",
    )


class _DownForTheSecondWeek(_ScriptedCalendar):
    """The calendar cannot be read for the week after next: the second lesson's check fails."""

    def busy(self, calendar_ids, start, end):  # noqa: ANN001, ANN201
        if start >= TUE_10 + timedelta(weeks=1):
            raise CalendarUnavailable("Google is not answering.")
        return super().busy(calendar_ids, start, end)


def test_a_series_is_told_when_its_last_lesson_to_settle_is_cancelled(engine, frozen_now):
    """The calendar is down for the second lesson of a paid series; the first one's event is
    made. Staff cancel the second lesson before the calendar comes back: the lesson left is
    settled, so the customer, who paid, is told it is planned (and that the other is cancelled).
    Before, nothing settled the series any more and the confirmation never came."""
    frozen_now(2026, 11, 30, 9, 0)
    first, second = _series_paid_with(_DownForTheSecondWeek())
    worker.drain()
    assert (lesson(first).calendar_sync, lesson(second).calendar_sync) == ("synced", "pending")
    assert message_keys() == []  # the second lesson's slot is not checked yet

    _step(lessons.cancel, second, "docent ziek")
    later(minutes=10)
    worker.drain()

    assert message_keys() == ["lesson_cancelled", "booking_confirmed"]
    assert _texts() == [
        "Je les op di 8 dec om 10:00 is geannuleerd.",
        "Je les is ingepland op di 1 dec om 10:00. Tot dan!",
    ]


def test_a_series_is_told_once_its_slots_are_checked_even_while_the_last_event_waits(engine, frozen_now):
    """The last lesson's slot is checked and free, then the calendar fails to make its event:
    the customer is told the series is planned at once, not when the calendar comes back."""
    frozen_now(2026, 11, 30, 9, 0)
    first, second = _series(HELD, hold_expires_at=clock.now() + timedelta(minutes=30))
    set_backend(_ScriptedCalendar(**{str(second): [CalendarUnavailable("Google is not answering.")]}))
    with write_session() as session:
        for lesson_id in (first, second):
            lessons.confirm(session, session.get(Lesson, lesson_id), verify_slot=True)

    worker.drain()

    assert (lesson(first).calendar_sync, lesson(second).calendar_sync) == ("synced", "pending")
    assert message_keys() == ["series_confirmed"]


def test_a_lesson_cancelled_while_its_free_slot_is_checked_is_not_confirmed(engine, frozen_now):
    frozen_now(2026, 11, 30, 9, 0)
    held = _paid_with(_CancelledWhileChecking(taken=False), verify_slot=True)

    worker.drain()

    assert lesson(held).status == CANCELLED
    assert message_keys() == ["lesson_cancelled"]


class _MovedWhileChecking(_ScriptedCalendar):
    """Staff move the series' second lesson two hours later while its slot is being checked."""

    def busy(self, calendar_ids, start, end):  # noqa: ANN001, ANN201
        if start == TUE_10 + timedelta(weeks=1):
            with write_session() as session:
                moving = session.exec(select(Lesson).where(Lesson.start == start)).one()
                lessons.move(
                    session, moving, moving.start + timedelta(hours=2), moving.end + timedelta(hours=2)
                )
        return super().busy(calendar_ids, start, end)


def test_a_series_is_told_only_once_a_lesson_moved_during_its_check_is_checked_at_its_new_time(
    engine, frozen_now
):
    frozen_now(2026, 11, 30, 9, 0)
    first, second = _series_paid_with(_MovedWhileChecking())

    jobs.run_due(kinds=["calendar.create"], limit=1)  # the first lesson: checked and made
    jobs.run_due(kinds=["calendar.create"], limit=1)  # the second: moved while it was checked
    assert "series_confirmed" not in message_keys()  # its new time is not checked yet

    worker.drain()
    assert message_keys() == ["lesson_rescheduled", "series_confirmed"]
    assert (
        _texts()[1] == "Je reeks van 2 lessen is ingepland: di 1 dec om 10:00 en di 8 dec om 12:00. Tot dan!"
    )


def test_cancelling_a_held_lesson_closes_its_checkout_and_tells_the_customer(engine, frozen_now):
    frozen_now(2026, 11, 30, 9, 0)
    held = _stored(HELD, hold_expires_at=clock.now() + timedelta(minutes=30))

    assert _step(lessons.cancel, held, "klant belde af") == HELD  # the status it had

    cancelled = lesson(held)
    assert (cancelled.status, cancelled.cancel_reason, cancelled.hold_expires_at) == (
        CANCELLED,
        "klant belde af",
        None,
    )
    assert [j.key for j in _jobs("stripe.expire_checkout")] == [f"stripe.expire_checkout:lesson-{held}"]
    assert _jobs("calendar.delete") == []  # it never had an event
    assert _texts() == ["Je les op di 1 dec om 10:00 is geannuleerd."]


def test_cancelling_a_confirmed_lesson_removes_its_event_and_leaves_stripe_alone(engine, frozen_now):
    """Also when the event is still being made (calendar pending, no event id yet): the delete
    job runs after the create job and removes what it made."""
    frozen_now(2026, 11, 30, 9, 0)
    made = _stored(CONFIRMED, calendar_event_id=event_id_for_lesson(1), calendar_sync="synced")
    being_made = _stored(CONFIRMED, start=TUE_10 + timedelta(hours=2), calendar_sync="pending")
    calendar = _ScriptedCalendar()
    set_backend(calendar)

    assert _step(lessons.cancel, made, "docent ziek", notify=False) == CONFIRMED
    assert _step(lessons.cancel, being_made, "docent ziek", notify=False) == CONFIRMED

    assert sorted(j.key for j in _jobs("calendar.delete")) == sorted(
        [f"calendar:lesson-{made}", f"calendar:lesson-{being_made}"]
    )
    assert lesson(made).calendar_sync == "synced"  # a delete leaves the sync state to its job
    assert _jobs("stripe.expire_checkout") == []
    assert message_keys() == []  # staff tell the customer themselves (notify=False)
    worker.drain()
    assert calendar.deleted == [("anna-calendar", event_id_for_lesson(i)) for i in (made, being_made)]
    assert [(j.status, j.result) for j in _jobs("calendar.delete")] == [
        ("done", "lesson is cancelled; event removed")
    ] * 2
    for gone in (lesson(made), lesson(being_made)):
        assert (gone.calendar_event_id, gone.calendar_sync) == (None, "synced")


def test_a_lesson_paid_late_keeps_its_slot_only_outside_the_profiles_buffer(engine, frozen_now):
    """With a 15-minute buffer, another lesson ending 10 minutes before or starting 10 minutes
    after takes the slot; one ending exactly at its start without a buffer does not."""
    frozen_now(2026, 11, 30, 9, 0)
    with write_session() as session:
        session.get(PlanningProfile, "existing").buffer_minutes = 15
    before = _stored(EXPIRED, start=TUE_10)
    _stored(CONFIRMED, start=TUE_10 - timedelta(minutes=70))
    after = _stored(EXPIRED, start=TUE_10 + timedelta(days=1))
    _stored(CONFIRMED, start=TUE_10 + timedelta(days=1, minutes=70))
    touching = _stored(EXPIRED, start=TUE_10 + timedelta(days=2), cancel_reason="hold_expired")
    _stored(CONFIRMED, start=TUE_10 + timedelta(days=2, hours=-1))

    assert _step(lessons.paid, before) == NEEDS_RESCHEDULE
    assert _step(lessons.paid, after) == NEEDS_RESCHEDULE
    with write_session() as session:
        session.get(PlanningProfile, "existing").buffer_minutes = 0
    assert _step(lessons.paid, touching) == CONFIRMED
    assert lesson(touching).cancel_reason is None
    [job] = _jobs("calendar.create")  # it checks the tutor's calendar before telling anyone
    assert (job.payload, job.subject) == ({"lesson_id": touching, "verify_slot": True}, f"lesson-{touching}")
    assert message_keys().count("booking_confirmed") == 0


def _told() -> list[tuple[str, str]]:
    """Each queued message as (key, dedupe key), oldest first."""
    with read_session() as session:
        return [
            (m.key, m.dedupe_key)
            for m in session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()
        ]


def test_a_delayed_payment_keeps_a_series_slots_and_tells_the_series_once(engine, frozen_now):
    from core.config import get_settings

    now = frozen_now(2026, 11, 30, 9, 0)
    first, second = _series(HELD, hold_expires_at=now + timedelta(minutes=30))
    other = _stored(CONFIRMED, start=TUE_10 + timedelta(days=1))

    assert _step(lessons.await_payment, first) is True
    assert _step(lessons.await_payment, second) is True  # the same payment pays both
    assert _step(lessons.await_payment, first) is False  # already waiting: nothing changes
    assert _step(lessons.await_payment, other) is False  # not held: left alone

    until = now + timedelta(hours=get_settings().async_payment_hold_hours)
    assert [(lesson(i).status, lesson(i).hold_expires_at) for i in (first, second)] == [
        (AWAITING_PAYMENT, until),
        (AWAITING_PAYMENT, until),
    ]
    assert lesson(other).status == CONFIRMED
    series_id = lesson(first).series_id
    assert _told() == [("series_payment_processing", f"series_payment_processing:{series_id}")]
    with read_session() as session:
        assert "reeks van 2 lessen" in session.exec(select(OutboxMessage)).one().text


def test_each_lifecycle_message_is_queued_once_per_lesson_under_its_events_key(engine, frozen_now):
    """The dedupe keys are what a repeated webhook or a second worker is matched against, and
    the cancellation terms queue their refund or credit message as lesson_cancelled:<id> so
    that the customer hears of a cancellation once."""
    now = frozen_now(2026, 11, 30, 9, 0)
    waiting = _stored(HELD, hold_expires_at=now + timedelta(minutes=30))
    expired = _stored(HELD, start=TUE_10 + timedelta(days=1), hold_expires_at=now)
    failed = _stored(AWAITING_PAYMENT, start=TUE_10 + timedelta(days=2))
    confirmed = _stored(HELD, start=TUE_10 + timedelta(days=3), hold_expires_at=now + timedelta(minutes=30))
    _stored(CONFIRMED, start=TUE_10 + timedelta(days=1))  # takes the expired lesson's slot

    _step(lessons.await_payment, waiting)
    _step(lessons.cancel, waiting, "klant belde af")
    _step(lessons.release, expired, "hold_expired")
    _step(lessons.paid, expired)  # paid late, the slot is gone
    _step(lessons.release, failed, "payment_failed")
    _step(lessons.paid, failed)  # paid after all, but the lesson was cancelled
    _step(lessons.confirm, confirmed)

    assert _told() == [
        ("payment_processing", f"payment_processing:{waiting}"),
        ("lesson_cancelled", f"lesson_cancelled:{waiting}"),
        ("hold_expired", f"hold_released:{expired}"),
        ("slot_lost", f"slot_lost:{expired}"),
        ("payment_failed", f"hold_released:{failed}"),
        ("paid_after_cancel", f"slot_lost:{failed}"),
        ("booking_confirmed", f"booking_confirmed:{confirmed}"),
    ]


def _texts() -> list[str]:
    with read_session() as session:
        return [m.text for m in session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()]


def test_moving_a_lesson_twice_tells_the_customer_the_new_time_each_time(engine, frozen_now):
    frozen_now(2026, 11, 30, 9, 0)
    planned = _stored(CONFIRMED)
    wednesday, thursday = TUE_10 + timedelta(days=1), TUE_10 + timedelta(days=2)

    _step(lessons.move, planned, wednesday, wednesday + timedelta(hours=1))
    _step(lessons.move, planned, thursday, thursday + timedelta(hours=1))

    assert _texts() == [
        "Je les is verplaatst naar wo 2 dec om 10:00.",
        "Je les is verplaatst naar do 3 dec om 10:00.",
    ]


def test_a_rescheduled_lesson_updates_its_event_and_a_rebooked_one_creates_it(engine, frozen_now):
    """DESIGN.md's table: reschedule → calendar.update, rebook → calendar.create. Either job
    brings the tutor's calendar in line with the lesson's new time."""
    frozen_now(2026, 11, 30, 9, 0)
    planned = _stored(CONFIRMED)
    lost = _stored(NEEDS_RESCHEDULE, start=TUE_10 + timedelta(hours=2))
    wednesday = TUE_10 + timedelta(days=1)

    _step(lessons.move, planned, wednesday, wednesday + timedelta(hours=1))
    _step(lessons.move, lost, wednesday + timedelta(hours=2), wednesday + timedelta(hours=3))

    assert [j.key for j in _jobs("calendar.update")] == [f"calendar:lesson-{planned}"]
    assert [j.key for j in _jobs("calendar.create")] == [f"calendar:lesson-{lost}"]
    worker.drain()
    assert (lesson(planned).calendar_sync, lesson(lost).calendar_sync) == ("synced", "synced")
    assert _texts()[-1] == "Je les is ingepland op wo 2 dec om 12:00. Tot dan!"


def test_a_series_whose_hold_ran_out_is_told_once_and_so_is_one_whose_payment_failed(engine, frozen_now):
    now = frozen_now(2026, 11, 30, 9, 0)
    expired = _series(HELD, hold_expires_at=now)
    failed = _series(AWAITING_PAYMENT, weeks=3)

    assert lessons.expire_holds() == 2
    for lesson_id in failed:
        _step(lessons.release, lesson_id, "payment_failed")

    expired_series, failed_series = lesson(expired[0]).series_id, lesson(failed[0]).series_id
    assert _told() == [
        ("series_hold_expired", f"series_released:{expired_series}"),
        ("series_payment_failed", f"series_released:{failed_series}"),
    ]
    texts = _texts()
    assert "reeks van 2 lessen" in texts[0] and "reeks van 3 lessen" in texts[1]


def test_a_lesson_paid_after_its_slot_was_taken_is_a_case_for_finance(engine, frozen_now):
    now = frozen_now(2026, 11, 30, 9, 0)
    late = _stored(EXPIRED)
    _stored(CONFIRMED)  # took the slot while the hold was over
    cancelled = _stored(CANCELLED, start=TUE_10 + timedelta(days=1))

    assert _step(lessons.paid, late) == NEEDS_RESCHEDULE
    assert _step(lessons.paid, cancelled) == NEEDS_RESCHEDULE  # never revived

    with read_session() as session:
        alert, second = session.exec(select(AuditLog).order_by(AuditLog.id)).all()
    assert (alert.actor, alert.action, alert.entity, alert.entity_id, alert.after, alert.at) == (
        "system",
        "finance.alert",
        "Lesson",
        str(late),
        {"status": "needs_reschedule", "why": "paid after its hold ended; another lesson has the slot"},
        now,
    )
    assert second.after == {"status": "needs_reschedule", "why": "paid after the lesson was cancelled"}


def test_a_paid_lesson_keeps_its_slot_when_the_tutors_appointments_only_touch_it(engine, frozen_now):
    """Google's free/busy may report 09:00-10:00 and 11:00-12:00 for a 10:00-11:00 lesson."""
    from tests.unit.test_booking import TouchingBusyCalendar

    now = frozen_now(2026, 11, 30, 9, 0)
    held = _stored(HELD, hold_expires_at=now + timedelta(minutes=30))
    set_backend(TouchingBusyCalendar())

    assert _step(lessons.paid, held) == CONFIRMED
    assert message_keys() == []  # told once the job has checked the tutor's calendar
    worker.drain()

    assert (lesson(held).status, lesson(held).calendar_sync) == (CONFIRMED, "synced")
    assert message_keys() == ["booking_confirmed"]


def test_a_refused_status_change_names_the_step_and_the_lessons_status():
    with pytest.raises(InvalidTransition, match="^hold expired is not possible for a confirmed lesson.$"):
        lessons.target_of(CONFIRMED, "hold_expired")
    with pytest.raises(InvalidTransition, match="^paid late is not possible for a new lesson.$"):
        lessons.target_of(None, "paid_late")


def test_a_confirmed_lesson_gets_its_calendar_job_once_when_it_has_none(engine, frozen_now):
    """Lessons from before jobs existed, or whose job finished while the calendar still waits:
    the worker adds the job, once."""
    now = frozen_now(2026, 11, 30, 9, 0)
    assert lessons.ensure_calendar_jobs() == 0  # nothing at all
    waiting = _stored(CONFIRMED, calendar_sync="pending")
    _stored(CONFIRMED, start=TUE_10 + timedelta(hours=2), calendar_sync="synced")
    _stored(HELD, start=TUE_10 + timedelta(hours=4), calendar_sync="pending", hold_expires_at=now)

    assert lessons.ensure_calendar_jobs() == 1
    [job] = _jobs("calendar.create")
    assert (job.key, job.payload, job.subject, job.status) == (
        f"calendar:lesson-{waiting}",
        {"lesson_id": waiting, "verify_slot": False},
        f"lesson-{waiting}",
        "pending",
    )
    assert lessons.ensure_calendar_jobs() == 0  # it has one now
    with write_session() as session:
        session.get(Job, job.id).status = "done"
    assert lessons.ensure_calendar_jobs() == 1
    assert [j.status for j in _jobs("calendar.create")] == ["pending"]


def test_a_tutors_busy_time_is_their_blocking_lessons_inside_the_window(engine, frozen_now):
    """Window Tuesday 10:00-13:00: a lesson touching either edge, a cancelled one and a hold
    that ran out leave it free; the lesson being moved can be left out."""
    now = frozen_now(2026, 11, 30, 9, 0)
    anna = _stored(CONFIRMED)  # 10-11
    _stored(CONFIRMED, start=TUE_10 - timedelta(hours=1))  # 9-10
    _stored(CONFIRMED, start=TUE_10 + timedelta(hours=3))  # 13-14
    _stored(CANCELLED, start=TUE_10 + timedelta(hours=1))
    _stored(HELD, start=TUE_10 + timedelta(hours=2), hold_expires_at=now)
    bram = _stored(CONFIRMED, start=TUE_10 + timedelta(hours=1))
    with write_session() as session:
        tutor = Tutor(name="Bram", calendar_id="bram-calendar")
        session.add(tutor)
        session.flush()
        session.get(Lesson, bram).tutor_id = bram_id = tutor.id
        anna_id = session.get(Lesson, anna).tutor_id
    window = (TUE_10, TUE_10 + timedelta(hours=3), now)

    with read_session() as session:
        assert lessons.lesson_busy(session, [anna_id], *window) == {
            anna_id: [(TUE_10, TUE_10 + timedelta(hours=1))]
        }
        assert lessons.lesson_busy(session, [anna_id, bram_id], *window, exclude_lesson=anna) == {
            anna_id: [],
            bram_id: [(TUE_10 + timedelta(hours=1), TUE_10 + timedelta(hours=2))],
        }


def test_the_event_made_for_a_confirmed_lesson_is_recorded_on_it(engine, frozen_now):
    frozen_now(2026, 11, 30, 9, 0)
    held = _stored(HELD, hold_expires_at=clock.now() + timedelta(minutes=30), description="Algebra")
    with write_session() as session:
        contact = session.get(Contact, "contact-1")
        contact.email, contact.name = "sam@example.org", "Sam"
    calendar = _ScriptedCalendar()
    set_backend(calendar)

    _step(lessons.confirm, held)
    later(minutes=1)
    worker.drain()

    [request] = calendar.requests
    assert (
        request.lesson_id,
        request.calendar_id,
        request.start,
        request.end,
        request.summary,
        request.description,
        request.timezone,
        request.attendee_email,
        request.attendee_name,
    ) == (
        held,
        "anna-calendar",
        TUE_10,
        TUE_10 + timedelta(hours=1),
        "Les",
        "Algebra",
        "Europe/Amsterdam",
        "sam@example.org",
        "Sam",
    )
    made = lesson(held)
    assert (
        made.calendar_event_id,
        made.calendar_sync,
        made.invite_sent,
        made.calendar_note,
        made.updated_at,
    ) == (
        event_id_for_lesson(held),
        "synced",
        True,
        "Invited sam@example.org.",
        clock.now(),
    )
    [job] = _jobs("calendar.create")
    assert job.result == f"event {event_id_for_lesson(held)} in calendar anna-calendar"


class _MovedMeanwhile(_ScriptedCalendar):
    """Staff move the lesson a day on while the calendar is making its first event."""

    def create_event(self, request: EventRequest) -> CreatedEvent:
        if not self.requests:
            with write_session() as session:
                moved = session.get(Lesson, request.lesson_id)
                lessons.move(
                    session, moved, request.start + timedelta(days=1), request.end + timedelta(days=1)
                )
        return super().create_event(request)


def test_the_event_is_asked_for_in_the_business_zone(engine, settings, frozen_now):
    """A business in another zone (TIMEZONE) has its lessons' events written in that zone."""
    set_settings(settings.model_copy(update={"timezone": "Europe/London"}))
    frozen_now(2026, 11, 30, 9, 0)
    calendar = _ScriptedCalendar()
    held = _paid_with(calendar)
    worker.drain()

    [request] = calendar.requests
    assert (request.timezone, request.start) == ("Europe/London", TUE_10)
    assert lesson(held).calendar_event_id == event_id_for_lesson(held)


def test_a_lesson_moved_while_its_event_is_being_made_gets_its_event_at_the_new_time(engine, frozen_now):
    frozen_now(2026, 11, 30, 9, 0)
    calendar = _MovedMeanwhile()
    held = _paid_with(calendar)

    worker.drain()  # the move asked for the running job again: it runs once more at once

    [job] = _jobs("calendar.create")
    assert (job.status, job.attempts) == ("done", 1)  # the second run, counted afresh
    assert [r.start for r in calendar.requests] == [TUE_10, TUE_10 + timedelta(days=1)]
    assert (lesson(held).calendar_event_id, lesson(held).calendar_sync) == (
        event_id_for_lesson(held),
        "synced",
    )


class _CancelledMeanwhile(_ScriptedCalendar):
    """Staff cancel the lesson while the calendar is making its event (the job already read the
    lesson as confirmed)."""

    def create_event(self, request: EventRequest) -> CreatedEvent:
        if not self.requests:
            with write_session() as session:
                lessons.cancel(session, session.get_one(Lesson, request.lesson_id), "docent ziek")
        return super().create_event(request)


def test_a_lesson_cancelled_while_its_event_is_being_made_loses_the_event_again(engine, frozen_now):
    """Found by the mutation triage: the cancel asked for its calendar job while that job was
    running; the job ended "a newer job brings the calendar in line", but no newer job came, so
    the event stayed in the tutor's calendar and blocked the slot. A job asked for again while
    it runs must run again once it is done."""
    frozen_now(2026, 11, 30, 9, 0)
    calendar = _CancelledMeanwhile()
    held = _paid_with(calendar)

    worker.drain()

    assert lesson(held).status == "cancelled"
    assert calendar.deleted == [(calendar.requests[0].calendar_id, event_id_for_lesson(held))]
    assert (lesson(held).calendar_event_id, lesson(held).calendar_sync) == (None, "synced")
    [job] = _jobs("calendar.create")
    assert (job.status, job.result) == ("done", "lesson is cancelled; event removed")


def test_the_run_overtaken_by_a_cancel_records_no_event_on_the_cancelled_lesson(engine, frozen_now):
    """The run that made the event while staff cancelled leaves the lesson as the cancel left it:
    no event id and no "synced" on a cancelled lesson (the console would show it in the tutor's
    calendar), and its job says why it is run once more."""
    frozen_now(2026, 11, 30, 9, 0)
    held = _paid_with(_CancelledMeanwhile())

    jobs.run_due(kinds=["calendar.create"], limit=1)  # the first run only

    cancelled = lesson(held)
    assert (cancelled.status, cancelled.calendar_event_id) == ("cancelled", None)
    assert cancelled.calendar_sync != "synced"
    [job] = _jobs("calendar.create")
    assert (job.status, job.result) == (
        "pending",
        "lesson changed meanwhile; a newer job brings the calendar in line; asked for again meanwhile",
    )


def test_a_paid_lesson_whose_time_the_tutors_calendar_has_taken_needs_a_new_time(engine, frozen_now):
    """Anna's time off from 11:00 overlaps the 10:30 lesson: the customer is asked to pick a new
    time (no confirmation first), finance sees the case, and no event is made."""
    now = frozen_now(2026, 11, 30, 9, 0)
    held = _stored(HELD, start=TUE_10 + timedelta(minutes=30), hold_expires_at=now + timedelta(minutes=30))
    with write_session() as session:
        tutor_id = session.get(Lesson, held).tutor_id
        session.add(
            BusyBlock(tutor_id=tutor_id, start=TUE_10 + timedelta(hours=1), end=TUE_10 + timedelta(hours=2))
        )

    assert _step(lessons.paid, held) == CONFIRMED
    worker.drain()

    lost = lesson(held)
    assert (lost.status, lost.calendar_sync, lost.calendar_event_id) == (NEEDS_RESCHEDULE, None, None)
    assert message_keys() == ["slot_lost"]
    [job] = _jobs("calendar.create")
    assert job.result == "slot taken in the calendar: lesson needs a new time"
    with read_session() as session:
        [alert] = session.exec(select(AuditLog)).all()
    assert alert.after == {
        "status": "needs_reschedule",
        "why": "the tutor's calendar has another event at that time",
    }
