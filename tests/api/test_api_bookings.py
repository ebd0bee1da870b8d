"""GET /api/v1/slots and POST /api/v1/bookings: what the bot sees when it offers and books."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from core import clock, worker
from core.calendars import set_backend
from core.calendars.local import LocalCalendarBackend
from core.db import read_session, write_session
from core.errors import CalendarUnavailable
from core.models import BusyBlock, Lesson, OutboxMessage
from tests.conftest import AMS
from tests.support.api import FIRST_NEW_SLOT, booking

pytest_plugins = ["tests.support.api"]

# --- slots ----------------------------------------------------------------------------------------


def test_a_new_contact_gets_the_new_profiles_slots_in_local_time(client, tutor, monday_morning):
    response = client.get("/api/v1/slots", params={"conversation_id": "conv-1", "contact_id": "contact-1"})

    assert response.status_code == 200
    body = response.json()
    assert (body["profile"], body["segment"], body["timezone"]) == ("new", "new", "Europe/Amsterdam")
    assert len(body["slots"]) == 6
    assert body["slots"][0] == {"start": FIRST_NEW_SLOT, "end": "2026-12-01T11:00:00+01:00"}
    # two a day, morning and afternoon: a choice over three days, not six hours of one
    assert [s["start"][5:16] for s in body["slots"]] == [
        "12-01T10:00",
        "12-01T12:00",
        "12-02T10:00",
        "12-02T12:00",
        "12-03T10:00",
        "12-03T12:00",
    ]


def test_a_known_conversation_needs_no_contact_id(client, tutor, monday_morning):
    client.get("/api/v1/slots", params={"conversation_id": "conv-1", "contact_id": "contact-1"})

    assert client.get("/api/v1/slots", params={"conversation_id": "conv-1"}).status_code == 200


def test_an_unknown_conversation_without_contact_id_is_404(client, tutor, monday_morning):
    response = client.get("/api/v1/slots", params={"conversation_id": "conv-x"})

    assert response.status_code == 404
    assert "send contact_id the first time" in response.json()["detail"]


def test_a_conversation_of_another_contact_is_refused(client, tutor, monday_morning):
    client.get("/api/v1/slots", params={"conversation_id": "conv-1", "contact_id": "contact-1"})

    response = client.get("/api/v1/slots", params={"conversation_id": "conv-1", "contact_id": "contact-2"})

    assert response.status_code == 422
    assert "belongs to another contact" in response.json()["detail"]


def test_an_explicit_profile_is_used(client, tutor, monday_morning):
    body = client.get(
        "/api/v1/slots", params={"conversation_id": "c", "contact_id": "p", "profile": "premium"}
    ).json()

    assert body["profile"] == "premium" and len(body["slots"]) == 15
    start, end = (datetime.fromisoformat(body["slots"][0][k]) for k in ("start", "end"))
    assert end - start == timedelta(minutes=90)


def test_an_unknown_profile_is_422_naming_the_known_ones(client, tutor, monday_morning):
    response = client.get(
        "/api/v1/slots", params={"conversation_id": "c", "contact_id": "p", "profile": "vip"}
    )

    assert response.status_code == 422
    assert "Unknown planning profile 'vip'" in response.json()["detail"]


def test_busy_time_is_not_offered(client, tutor, monday_morning):
    with write_session() as session:
        session.add(
            BusyBlock(
                tutor_id=tutor,
                start=datetime(2026, 12, 1, 10, 0, tzinfo=AMS),
                end=datetime(2026, 12, 1, 12, 0, tzinfo=AMS),
                reason="dentist",
            )
        )

    body = client.get("/api/v1/slots", params={"conversation_id": "c", "contact_id": "p"}).json()

    assert body["slots"][0]["start"] == "2026-12-01T12:00:00+01:00"


def test_summer_slots_carry_the_summer_offset(client, tutor):
    clock.set_now(datetime(2027, 6, 7, 8, 0, tzinfo=AMS))

    body = client.get("/api/v1/slots", params={"conversation_id": "c", "contact_id": "p"}).json()

    assert body["slots"][0] == {"start": "2027-06-08T10:00:00+02:00", "end": "2027-06-08T11:00:00+02:00"}


def test_an_unreadable_calendar_is_503_and_no_slots_are_invented(client, tutor, monday_morning):
    class Down(LocalCalendarBackend):
        def busy(self, calendar_ids, start, end):
            raise CalendarUnavailable("Google Calendar did not answer (timeout); try again shortly.")

    set_backend(Down())

    response = client.get("/api/v1/slots", params={"conversation_id": "c", "contact_id": "p"})

    assert response.status_code == 503
    assert response.json() == {"detail": "Google Calendar did not answer (timeout); try again shortly."}


@pytest.mark.parametrize(
    "params", [{}, {"conversation_id": ""}, {"conversation_id": "   "}, {"conversation_id": "c" * 121}]
)
def test_a_missing_or_blank_conversation_id_is_422(client, params):
    response = client.get("/api/v1/slots", params=params)

    assert response.status_code == 422
    assert response.json()["detail"].startswith("conversation_id")


# --- bookings -------------------------------------------------------------------------------------


def test_booking_without_payment_confirms_at_once(client, tutor, monday_morning, no_payment):
    response = client.post(
        "/api/v1/bookings", json=booking(contact={"name": "Sanne", "email": "Sanne@Example.nl"})
    )

    assert response.status_code == 201, response.text
    lesson = response.json()
    assert lesson["status"] == "confirmed"
    assert (lesson["start"], lesson["end"]) == (FIRST_NEW_SLOT, "2026-12-01T11:00:00+01:00")
    assert lesson["tutor"] == "Anna" and lesson["profile"] == "new"
    # Confirmed at once; the calendar event follows from the worker, right after the commit.
    assert lesson["calendar_event_id"] is None and lesson["calendar_sync"] == "pending"
    assert lesson["payment_url"] is None and lesson["checkout_session_id"] is None
    with read_session() as session:
        keys = [m.key for m in session.exec(select(OutboxMessage)).all()]
    assert keys == ["booking_confirmed"]
    worker.drain()
    with read_session() as session:
        stored = session.get(Lesson, lesson["id"])
    assert (stored.calendar_event_id, stored.calendar_sync) == (f"lesplanner{lesson['id']:08d}", "synced")


def test_the_same_booking_again_is_200_with_the_same_lesson(client, tutor, monday_morning, no_payment):
    first = client.post("/api/v1/bookings", json=booking())
    again = client.post("/api/v1/bookings", json=booking())

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()


def test_a_taken_slot_is_409_with_fresh_alternatives(client, tutor, monday_morning, no_payment):
    client.post("/api/v1/bookings", json=booking())

    response = client.post("/api/v1/bookings", json=booking(conversation_id="conv-2", contact_id="contact-2"))

    assert response.status_code == 409
    body = response.json()
    assert "was just taken" in body["detail"]
    assert body["alternatives"] and FIRST_NEW_SLOT not in [a["start"] for a in body["alternatives"]]
    assert body["alternatives"][0] == {
        "start": "2026-12-01T11:00:00+01:00",
        "end": "2026-12-01T12:00:00+01:00",
    }


def test_a_booking_with_the_offset_of_another_zone_is_the_same_instant(
    client, tutor, monday_morning, no_payment
):
    response = client.post(
        "/api/v1/bookings", json=booking(start="2026-12-01T09:00:00Z", end="2026-12-01T10:00:00Z")
    )

    assert response.status_code == 201
    assert response.json()["start"] == FIRST_NEW_SLOT


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        (
            {"start": "2026-12-01T10:00:00", "end": "2026-12-01T11:00:00"},
            "start has no time zone offset; send ISO 8601 with an offset, e.g. 2026-12-01T10:00:00+01:00",
        ),
        ({"end": "2026-12-01T11:00:00"}, "end has no time zone offset"),
        ({"end": "2026-12-01T11:30:00+01:00"}, "lasts 60 minutes; the requested one lasts 90 minutes"),
        (
            {"start": "2026-12-01T10:30:00+01:00", "end": "2026-12-01T11:30:00+01:00"},
            "is not a time the 'new' profile offers",
        ),
        (
            {"start": "2026-12-05T10:00:00+01:00", "end": "2026-12-05T11:00:00+01:00"},
            "is not a time the 'new' profile offers",
        ),
        ({"profile": "vip"}, "Unknown planning profile 'vip'"),
        ({"start": "0001-01-01T00:00:00+01:00"}, "start: must be a date between the years 2000 and 2999"),
        ({"start": "tomorrow at ten"}, "start: Input should be a valid datetime"),
        ({"conversation_id": ""}, "conversation_id: must be 1 to 120 letters, digits or - _ . : @ +"),
        ({"conversation_id": ".."}, "conversation_id: must be 1 to 120 letters, digits or - _ . : @ +"),
        ({"contact_id": "p1\nFORGED"}, "contact_id: must be 1 to 120 letters, digits or - _ . : @ +"),
        ({"contact": {"email": "not-an-address"}}, "'not-an-address' is not a valid e-mail address"),
        ({"contact": {"phone": "12"}}, "'12' is not a valid phone number"),
        ({"title": "x" * 201}, "title: String should have at most 200 characters"),
        ({"title": "Bijles\x00"}, "title: must not contain NUL characters"),
    ],
)
def test_invalid_bookings_are_422_in_one_readable_sentence(
    client, tutor, monday_morning, no_payment, changes, expected
):
    response = client.post("/api/v1/bookings", json={**booking(), **changes})

    assert response.status_code == 422, response.text
    assert expected in response.json()["detail"]
    with read_session() as session:
        assert session.exec(select(Lesson)).all() == []


def test_missing_fields_are_named(client):
    response = client.post("/api/v1/bookings", json={"conversation_id": "c"})

    assert response.status_code == 422
    body = response.json()
    assert body["detail"] == "start: Field required; end: Field required"
    assert [e["field"] for e in body["errors"]] == ["start", "end"]


@pytest.mark.parametrize("raw", [b"{not json", b"", b"[1, 2]", b'"text"'])
def test_a_body_that_is_not_a_json_object_is_422(client, raw):
    response = client.post("/api/v1/bookings", content=raw, headers={"Content-Type": "application/json"})

    assert response.status_code == 422
    assert response.json()["detail"]


def test_malformed_json_says_so(client):
    response = client.post(
        "/api/v1/bookings", content=b'{"conversation_id": ', headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["detail"].startswith("The request body is not valid JSON")
    assert [e["field"] for e in response.json()["errors"]] == ["body"]


def test_a_booking_that_needs_payment_is_held_with_a_checkout_url(
    client, tutor, monday_morning, stripe_settings, fake_stripe
):
    response = client.post("/api/v1/bookings", json=booking())

    assert response.status_code == 201, response.text
    lesson = response.json()
    assert lesson["status"] == "held"
    session_id = lesson["checkout_session_id"]
    assert session_id in fake_stripe.sessions
    assert lesson["payment_url"] == fake_stripe.sessions[session_id]["url"]
    hold = datetime.fromisoformat(lesson["hold_expires_at"])
    assert hold.utcoffset() == timedelta(hours=1)
    assert timedelta(minutes=30) <= hold - monday_morning <= timedelta(minutes=31)  # the Checkout's expiry
    assert lesson["calendar_event_id"] is None
    again = client.post("/api/v1/bookings", json=booking())
    assert again.status_code == 200 and again.json()["checkout_session_id"] == session_id


def test_without_stripe_a_paid_booking_is_503_and_the_slot_stays_free(client, tutor, monday_morning):
    response = client.post("/api/v1/bookings", json=booking())

    assert response.status_code == 503
    assert "Stripe is not configured" in response.json()["detail"]
    slots = client.get("/api/v1/slots", params={"conversation_id": "conv-1"}).json()["slots"]
    assert slots[0]["start"] == FIRST_NEW_SLOT


def test_a_body_that_is_not_utf8_is_422_like_any_invalid_json(client):
    response = client.post(
        "/api/v1/bookings", content=b'{"title": "\xff\xfe"}', headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert response.json()["detail"] == "The request body is not valid JSON (it is not UTF-8 text)."


def test_a_public_holiday_is_never_offered_and_booking_it_is_422_naming_it(client, tutor, no_payment):
    clock.set_now(datetime(2026, 12, 21, 8, 0, tzinfo=AMS))  # Monday before Christmas
    slots = client.get("/api/v1/slots", params={"conversation_id": "conv-1", "contact_id": "contact-1"})
    assert slots.status_code == 200
    assert not [s for s in slots.json()["slots"] if s["start"][:10] in ("2026-12-25", "2026-12-26")]
    response = client.post("/api/v1/bookings", json=booking("2026-12-25T10:00:00+01:00"))
    assert response.status_code == 422
    assert "Eerste kerstdag" in response.json()["detail"]
