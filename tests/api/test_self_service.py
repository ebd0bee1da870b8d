"""Customers manage their own lessons through the bot (issue 14): list, cancel (with a dry run
that tells the consequence first), reschedule. End to end over HTTP: the receiver, the worker's
jobs, and the Stripe fake behind the real client; the local calendar."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlmodel import select

from core import clock, worker
from core.db import read_session, write_session
from core.models import Lesson, Payment, PlanningProfile
from tests.conftest import AMS
from tests.support.api import (
    ANNA,
    FIRST_NEW_SLOT,
    messages,
)

pytest_plugins = ["tests.support.api", "tests.fakes.google_fixtures"]

SECOND_SLOT = "2026-12-01T11:00:00+01:00"


@pytest.fixture
def events(outside):
    """The events in Anna's Google calendar, as (start) in local time."""
    return lambda: [
        datetime.fromisoformat(e["start"]["dateTime"]).astimezone(AMS) for e in outside.events(ANNA)
    ]


# --- the list -----------------------------------------------------------------------------------


def test_a_conversation_lists_its_lessons_with_what_a_cancel_would_do_now(paid):
    assert paid["start"] == FIRST_NEW_SLOT
    assert paid["cancel_until"] == "2026-11-30T10:00:00+01:00"  # 24 h notice
    assert paid["cancel_now"] == {
        "allowed": True,
        "consequence": "refund",
        "amount": 4500,
        "currency": "eur",
        "minutes": None,
    }
    assert paid["tutor"] == "Anna"


def test_another_conversations_lessons_are_not_shown(client, paid):
    assert client.get("/api/v1/conversations/conv-2/lessons").json()["lessons"] == []


# --- cancel -------------------------------------------------------------------------------------


def test_a_dry_run_tells_the_consequence_and_changes_nothing(client, paid, fake_stripe):
    response = client.post(
        f"/api/v1/lessons/{paid['id']}/cancel", json={"conversation_id": "conv-1", "dry_run": True}
    )

    assert response.status_code == 200
    body = response.json()
    assert body["consequence"] == {"kind": "refund", "amount": 4500, "currency": "eur", "minutes": None}
    assert body["lesson"]["status"] == "confirmed" and body["dry_run"] is True
    worker.drain()
    assert fake_stripe.refunds == {}


def test_an_on_time_cancel_refunds_once_frees_the_slot_and_tells_the_customer_once(
    client, paid, fake_stripe, signed_delivery, events
):
    response = client.post(
        f"/api/v1/lessons/{paid['id']}/cancel", json={"conversation_id": "conv-1", "reason": "ziek"}
    )

    assert response.status_code == 200
    assert response.json()["lesson"]["status"] == "cancelled"
    assert response.json()["consequence"] == {
        "kind": "refund",
        "amount": 4500,
        "currency": "eur",
        "minutes": None,
    }
    worker.drain()
    assert [r["amount"] for r in fake_stripe.refunds.values()] == [4500]
    refunded = next(e for e in reversed(fake_stripe.events) if e["type"] == "charge.refunded")
    signed_delivery(refunded)
    with read_session() as session:
        assert session.exec(select(Payment)).one().status == "refunded"
    assert events() == []  # the calendar event is gone
    slots = client.get(
        "/api/v1/slots", params={"conversation_id": "conv-2", "contact_id": "contact-2"}
    ).json()
    assert FIRST_NEW_SLOT in [s["start"] for s in slots["slots"]]  # the slot is free again
    assert messages().count("lesson_cancelled_refund") == 1

    again = client.post(f"/api/v1/lessons/{paid['id']}/cancel", json={"conversation_id": "conv-1"})
    assert again.status_code == 200 and again.json()["consequence"]["kind"] == "refund"
    worker.drain()
    assert len(fake_stripe.refunds) == 1 and messages().count("lesson_cancelled_refund") == 1


def test_a_late_cancel_is_422_saying_until_when_and_changes_nothing(client, paid, fake_stripe, events):
    clock.set_now(datetime(2026, 11, 30, 12, 0, tzinfo=AMS))  # 22 h before the lesson

    response = client.post(f"/api/v1/lessons/{paid['id']}/cancel", json={"conversation_id": "conv-1"})

    assert response.status_code == 422
    detail = response.json()["detail"]
    assert "ma 30 nov om 10:00" in detail and "Staff can still help" in detail
    dry = client.post(
        f"/api/v1/lessons/{paid['id']}/cancel", json={"conversation_id": "conv-1", "dry_run": True}
    )
    assert dry.status_code == 200 and dry.json()["consequence"]["kind"] == "none"
    assert dry.json()["allowed"] is False
    worker.drain()
    with read_session() as session:
        assert session.get(Lesson, paid["id"]).status == "confirmed"
    assert fake_stripe.refunds == {} and len(events()) == 1


def test_another_conversations_lesson_is_404_not_403(client, paid):
    response = client.post(f"/api/v1/lessons/{paid['id']}/cancel", json={"conversation_id": "conv-2"})

    assert response.status_code == 404
    with read_session() as session:
        assert session.get(Lesson, paid["id"]).status == "confirmed"


def test_the_notice_is_the_profiles_setting(client, paid):
    with write_session() as session:
        session.get(PlanningProfile, "new").cancel_notice_hours = 48
    lesson = client.get("/api/v1/conversations/conv-1/lessons").json()["lessons"][0]

    assert lesson["cancel_until"] == "2026-11-29T10:00:00+01:00"
    assert lesson["cancel_now"]["allowed"] is False


# --- reschedule ---------------------------------------------------------------------------------


def test_a_reschedule_moves_the_same_lesson_and_its_event(client, paid, fake_stripe, events):
    response = client.post(
        f"/api/v1/lessons/{paid['id']}/reschedule",
        json={"conversation_id": "conv-1", "start": SECOND_SLOT, "end": "2026-12-01T12:00:00+01:00"},
    )

    assert response.status_code == 200, response.text
    assert (response.json()["id"], response.json()["start"]) == (paid["id"], SECOND_SLOT)
    worker.drain()
    assert events() == [datetime.fromisoformat(SECOND_SLOT)]
    assert fake_stripe.refunds == {}
    assert messages().count("lesson_rescheduled") == 1

    again = client.post(
        f"/api/v1/lessons/{paid['id']}/reschedule",
        json={"conversation_id": "conv-1", "start": SECOND_SLOT, "end": "2026-12-01T12:00:00+01:00"},
    )
    assert again.status_code == 200
    assert messages().count("lesson_rescheduled") == 1


def test_a_late_reschedule_is_422(client, paid):
    clock.set_now(datetime(2026, 11, 30, 12, 0, tzinfo=AMS))

    response = client.post(
        f"/api/v1/lessons/{paid['id']}/reschedule",
        json={"conversation_id": "conv-1", "start": SECOND_SLOT, "end": "2026-12-01T12:00:00+01:00"},
    )

    assert response.status_code == 422
    with read_session() as session:
        assert session.get(Lesson, paid["id"]).start == datetime.fromisoformat(FIRST_NEW_SLOT)


def test_the_list_shows_what_the_tutor_marked_after_the_lesson(client, paid):
    from core.lesson_changes import mark_attendance
    from core.models import User

    with write_session() as session:
        session.add(User(email="admin@lesplanner.test", role="admin"))
    with read_session() as session:
        admin = session.exec(select(User)).one()
    clock.set_now(datetime(2026, 12, 1, 12, 0, tzinfo=AMS))  # the lesson has ended
    assert client.get("/api/v1/conversations/conv-1/lessons").json()["lessons"][0]["outcome"] is None

    mark_attendance(paid["id"], admin, "no_show")

    assert client.get("/api/v1/conversations/conv-1/lessons").json()["lessons"][0]["outcome"] == "no_show"
