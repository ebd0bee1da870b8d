"""Faults of the outside services, as the bot sees them through the API (DESIGN.md: "Google or
Stripe answering 429/5xx or timing out → bounded retries with backoff, then a clear 503; the
database stays consistent; nothing is lost; nothing fake is shown").

Google Calendar and Stripe are the local fakes, reached by the real client libraries over
HTTP; faults are injected in front of them (error answers, slow answers past our timeout,
connections dropped). The clock stands at Monday 30 November 2026, 08:00 in Amsterdam; a new
contact gets the "new" profile (paid lessons, Tuesday 1 December 10:00 is its first slot).
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from sqlmodel import select

from core import clock, worker
from core.calendars import event_id_for_lesson
from core.db import read_session
from core.models import CANCELLED, CONFIRMED, HELD, Contact, Job, Lesson, Payment
from tests.procs import WEBHOOK_SECRET
from tests.support.services import (
    CALENDAR,
    FIRST,
    GCAL_BUDGET,
    GCAL_RETRIES,
    GCAL_TIMEOUT,
    STRIPE_RETRIES,
    STRIPE_TIMEOUT,
    lessons,
    open_world,
    payments_rows,
)


@pytest.fixture
def world(tmp_path, engine, monkeypatch):
    yield from open_world(tmp_path, monkeypatch)


# --- Google Calendar: GET /api/v1/slots -----------------------------------------------------------


@pytest.mark.parametrize("status", [429, 500, 503])
def test_a_google_that_keeps_failing_gives_a_clear_503_after_bounded_retries(world, status):
    world.google.fail_next(status, count=100, match="freebusy.query")

    started = time.monotonic()
    response = world.slots()

    assert response.status_code == 503
    assert response.json() == {"detail": response.json()["detail"]}  # no slots, no alternatives
    assert "Google Calendar is not answering" in response.json()["detail"]
    assert f"HTTP {status}" in response.json()["detail"] and "Try again" in response.json()["detail"]
    assert world.freebusy_calls() == GCAL_RETRIES + 1
    assert time.monotonic() - started < GCAL_BUDGET + 1


def test_a_google_that_recovers_within_the_retries_gives_its_real_busy_time(world):
    world.google.fail_next(500, count=1, match="freebusy.query")
    world.google.fail_next(429, count=1, match="freebusy.query")

    response = world.slots()

    assert response.status_code == 200
    starts = [s["start"] for s in response.json()["slots"]]
    assert FIRST["start"] not in starts  # the tutor's appointment is respected
    assert starts[0] == "2026-12-01T11:00:00+01:00"
    assert world.freebusy_calls() == 3


def test_a_google_that_does_not_answer_in_time_gives_a_503_within_the_call_budget(world):
    world.google.slow_next(GCAL_TIMEOUT * 4, count=100, match="freebusy.query")

    started = time.monotonic()
    response = world.slots()
    took = time.monotonic() - started

    assert response.status_code == 503
    assert f"no answer within {GCAL_TIMEOUT:g} s" in response.json()["detail"]
    assert 1 < world.freebusy_calls() <= GCAL_RETRIES + 1
    assert took < GCAL_BUDGET + 1


def test_dropped_google_answers_are_retried(world):
    world.google.drop_next(count=2, match="freebusy.query")

    response = world.slots()

    assert response.status_code == 200 and response.json()["slots"][0]["start"] == "2026-12-01T11:00:00+01:00"


def test_a_google_that_keeps_dropping_the_connection_gives_a_503(world):
    world.google.drop_next(count=100, match="freebusy.query")

    response = world.slots()

    assert response.status_code == 503 and "connection failed" in response.json()["detail"]
    # Bounded: our attempts, each of which httplib2 itself tries twice on a dropped connection.
    assert GCAL_RETRIES + 1 <= world.freebusy_calls() <= 2 * (GCAL_RETRIES + 1)


def test_a_booking_while_google_is_down_is_a_503_and_leaves_no_lesson(world):
    slot = {"start": "2026-12-01T12:00:00+01:00", "end": "2026-12-01T13:00:00+01:00"}
    world.google.fail_next(503, count=100, match="freebusy.query")

    response = world.book(slot=slot)

    assert response.status_code == 503 and "Google Calendar" in response.json()["detail"]
    assert lessons() == [] and payments_rows() == [] and world.checkout_calls() == 0
    world.google.clear_faults()
    assert world.book(slot=slot).status_code == 201


def test_a_payment_while_google_is_down_is_kept_and_the_event_follows_when_google_heals(world):
    """Issue 11, reproduction 4: payment, attributes and event used to share one transaction, so
    a paid webhook while Google was down answered 500 and left the payment open and the
    contact's attributes empty. Money first: the webhook commits the payment and the confirmed
    lesson (calendar pending); the worker makes the event once Google answers again."""
    slot = {"start": "2026-12-01T12:00:00+01:00", "end": "2026-12-01T13:00:00+01:00"}
    booked = world.book(slot=slot).json()
    event = world.stripe.complete_session(booked["checkout_session_id"])
    body, header = world.stripe.signed(event, WEBHOOK_SECRET)
    world.google.fail_next(503, count=10_000)  # every Google call, FreeBusy and insert alike

    answer = world.client.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": header})

    assert answer.status_code == 200 and answer.json()["status"] == "processed"
    with read_session() as session:
        lesson = session.get(Lesson, booked["id"])
        assert (lesson.status, lesson.calendar_sync) == (CONFIRMED, "pending")
        assert session.exec(select(Payment)).one().status == "paid"
        assert session.get(Contact, "contact-1").attributes["has_paid_lesson"] is True
    for _ in range(3):  # the worker keeps trying while Google is down; nothing is lost
        worker.drain()
        clock.set_now(clock.now() + timedelta(minutes=1))
    with read_session() as session:
        assert session.get(Lesson, booked["id"]).calendar_sync == "pending"
        job = session.exec(select(Job).where(Job.kind == "calendar.create")).one()
        assert job.status == "pending" and "503" in job.last_error

    world.google.clear_faults()
    clock.set_now(clock.now() + timedelta(seconds=60))  # the backoff never exceeds a minute
    worker.drain()

    with read_session() as session:
        lesson = session.get(Lesson, booked["id"])
    assert (lesson.status, lesson.calendar_sync) == (CONFIRMED, "synced")
    live = [e for e in world.google.events(CALENDAR) if e["id"] == event_id_for_lesson(booked["id"])]
    assert len(live) == 1
    # Expiry of the original hold time changes nothing: the lesson is paid and confirmed.
    clock.set_now(clock.now() + timedelta(hours=1))
    worker.drain()
    assert lessons()[0].status == CONFIRMED


# --- Stripe: POST /api/v1/bookings ----------------------------------------------------------------

SLOT = {"start": "2026-12-01T12:00:00+01:00", "end": "2026-12-01T13:00:00+01:00"}


@pytest.mark.parametrize("fault", ["500", "503", "429", "drop"])
def test_stripe_failing_on_checkout_gives_a_503_and_frees_the_slot(world, fault):
    offered_before = world.slots("conv-2").json()["slots"]
    world.stripe.fail_next(fault, times=100, path="/v1/checkout/sessions")

    response = world.book(slot=SLOT)

    assert response.status_code == 503
    assert "Stripe" in response.json()["detail"] and "try again" in response.json()["detail"]
    assert world.checkout_calls() == STRIPE_RETRIES + 1
    assert [lesson.status for lesson in lessons()] == [CANCELLED]
    assert payments_rows() == []
    world.stripe.clear_faults()
    # The slot is free again: the suggestions (spread, so 12:00 need not be among them) are as
    # before, and it can be booked.
    assert world.slots("conv-2").json()["slots"] == offered_before
    retry = world.book("conv-2", SLOT)
    assert retry.status_code == 201 and retry.json()["status"] == HELD


@pytest.mark.parametrize("fault", ["500", "429", "drop"])
def test_one_stripe_hiccup_is_retried_with_the_same_idempotency_key(world, fault):
    world.stripe.fail_next(fault, times=1, path="/v1/checkout/sessions")

    response = world.book(slot=SLOT)

    assert response.status_code == 201 and response.json()["payment_url"]
    calls = world.stripe.requests_to("POST", "/v1/checkout/sessions")
    assert len(calls) == 2 and len(world.stripe.sessions) == 1
    assert calls[0].headers.get("idempotency-key") == calls[1].headers.get("idempotency-key")


def test_a_checkout_request_that_times_out_but_reaches_stripe_creates_one_session(world):
    """The first request is still on its way when we give up and retry with the same
    idempotency key; when it lands, Stripe replays the retry's session instead of a second one."""
    world.stripe.fail_next("slow", times=1, path="/v1/checkout/sessions", delay=STRIPE_TIMEOUT * 2)

    response = world.book(slot=SLOT)

    assert response.status_code == 201
    deadline = time.monotonic() + 5
    while world.checkout_calls() < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    calls = world.stripe.requests_to("POST", "/v1/checkout/sessions")
    assert len(calls) == 2 and [c.replayed for c in calls] == [False, True]
    assert list(world.stripe.sessions) == [response.json()["checkout_session_id"]]
    assert [p.checkout_session_id for p in payments_rows()] == [response.json()["checkout_session_id"]]
