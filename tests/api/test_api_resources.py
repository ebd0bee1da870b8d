"""Segments, payment links and the conversation's outbox, as the bot sees them."""

from __future__ import annotations

import pytest
from sqlmodel import select

from core.db import read_session, write_session
from core.models import Contact, OutboxMessage, WhitelistEntry
from tests.support.api import booking

pytest_plugins = ["tests.support.api"]


# --- segments -------------------------------------------------------------------------------------


def add_contact(contact_id: str, **fields) -> None:
    with write_session() as session:
        session.add(Contact(id=contact_id, **fields))


def test_an_unknown_contact_is_404(client):
    response = client.get("/api/v1/contacts/nobody/segment")

    assert response.status_code == 404
    assert response.json() == {"detail": "Unknown contact 'nobody'."}


@pytest.mark.parametrize(
    ("fields", "segment", "profile", "reason"),
    [
        ({}, "new", "new", "no list or customer attribute matched"),
        ({"attributes": {"has_paid_lesson": True}}, "existing", "existing", "attribute has_paid_lesson"),
        ({"attributes": {"customer_status": "active"}}, "existing", "existing", "customer_status = active"),
        (
            {"attributes": {"returning_broadcast": True}},
            "returning_broadcast",
            "existing",
            "returning_broadcast",
        ),
        ({"segment_override": "weekend"}, "weekend", "weekend", "segment override"),
        ({"profile_override": "premium"}, "new", "premium", "no list"),
    ],
)
def test_the_segment_says_which_profile_and_why(client, fields, segment, profile, reason):
    add_contact("c-1", **fields)

    body = client.get("/api/v1/contacts/c-1/segment").json()

    assert (body["contact_id"], body["segment"], body["profile"]) == ("c-1", segment, profile)
    assert reason in body["reason"]


def test_a_whitelisted_phone_number_makes_a_weekend_customer(client):
    add_contact("c-1", phone="+31612345678")
    with write_session() as session:
        session.add(WhitelistEntry(list="weekend", identifier="+31612345678"))

    body = client.get("/api/v1/contacts/c-1/segment").json()

    assert (body["segment"], body["profile"]) == ("weekend", "weekend")


def test_the_segment_is_derived_afresh_each_time(client):
    add_contact("c-1")
    assert client.get("/api/v1/contacts/c-1/segment").json()["segment"] == "new"
    with write_session() as session:
        session.get(Contact, "c-1").attributes = {"lesson_booked": True}

    assert client.get("/api/v1/contacts/c-1/segment").json()["segment"] == "existing"


# --- payment links --------------------------------------------------------------------------------

LINK = {
    "segment": "new",
    "minutes": 60,
    "order_id": "order-1",
    "conversation_id": "conv-1",
    "student_name": "Sanne",
    "service": "bijles",
    "audience": "havo",
    "program": "wiskunde B",
}


def register(client) -> None:
    client.get("/api/v1/slots", params={"conversation_id": "conv-1", "contact_id": "contact-1"})


def test_a_payment_link_is_a_real_checkout_session(
    client, tutor, stripe_settings, fake_stripe, monday_morning
):
    register(client)

    response = client.post("/api/v1/payment-links", json=LINK)

    assert response.status_code == 200, response.text
    body = response.json()
    session = fake_stripe.sessions[body["checkout_session_id"]]
    assert body["url"] == session["url"]
    assert body["expires_at"].endswith("+01:00")
    assert session["metadata"]["order_id"] == "order-1" and session["locale"] == "nl"
    again = client.post("/api/v1/payment-links", json=LINK)
    assert again.json()["checkout_session_id"] == body["checkout_session_id"]


def test_weekend_links_use_the_weekend_price(client, tutor, stripe_settings, fake_stripe, monday_morning):
    register(client)

    response = client.post("/api/v1/payment-links", json={**LINK, "segment": "weekend", "minutes": 90})

    assert response.status_code == 200
    [create] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert create.params["line_items"][0]["price"] == "price_wk_90"


def test_a_payment_link_for_an_unknown_conversation_is_404(client, stripe_settings, monday_morning):
    response = client.post("/api/v1/payment-links", json={**LINK, "conversation_id": "conv-x"})

    assert response.status_code == 404


@pytest.mark.parametrize("minutes", [0, 45, 120])
def test_payment_links_are_for_60_or_90_minutes(client, stripe_settings, minutes):
    response = client.post("/api/v1/payment-links", json={**LINK, "minutes": minutes})

    assert response.status_code == 422
    assert "minutes must be" in response.json()["detail"]


def test_without_stripe_no_link_is_invented(client):
    response = client.post("/api/v1/payment-links", json=LINK)

    assert response.status_code == 503
    assert response.json()["detail"].startswith("Stripe is not configured: set STRIPE_API_KEY")


# --- the outbox -----------------------------------------------------------------------------------


def test_the_bot_fetches_pending_messages_and_acknowledges_them(client, tutor, monday_morning, no_payment):
    client.post("/api/v1/bookings", json=booking())

    pending = client.get("/api/v1/conversations/conv-1/messages")

    assert pending.status_code == 200
    [message] = pending.json()
    assert (
        message["key"] == "booking_confirmed" and message["locale"] == "nl" and message["status"] == "pending"
    )
    assert message["text"] == "Je les is ingepland op di 1 dec om 10:00. Tot dan!"
    assert message["created_at"] == "2026-11-30T08:00:00+01:00"

    acked = client.post(f"/api/v1/conversations/conv-1/messages/{message['id']}/ack")

    assert acked.status_code == 200 and acked.json()["status"] == "sent"
    assert client.get("/api/v1/conversations/conv-1/messages").json() == []
    assert [m["status"] for m in client.get("/api/v1/conversations/conv-1/messages?status=all").json()] == [
        "sent"
    ]
    assert client.post(f"/api/v1/conversations/conv-1/messages/{message['id']}/ack").status_code == 200


def test_messages_of_an_unknown_conversation_are_404(client):
    assert client.get("/api/v1/conversations/nope/messages").status_code == 404


def test_a_message_of_another_conversation_cannot_be_acknowledged(client, tutor, monday_morning, no_payment):
    client.post("/api/v1/bookings", json=booking())
    client.get("/api/v1/slots", params={"conversation_id": "conv-2", "contact_id": "contact-2"})
    with read_session() as session:
        message_id = session.exec(select(OutboxMessage.id)).first()

    response = client.post(f"/api/v1/conversations/conv-2/messages/{message_id}/ack")

    assert response.status_code == 404


def test_an_unknown_status_filter_is_422(client):
    response = client.get("/api/v1/conversations/conv-1/messages", params={"status": "read"})

    assert response.status_code == 422
    assert response.json()["detail"].startswith("status: Input should be")


def test_repro_6_an_order_id_belongs_to_the_conversation_that_made_it(
    client, tutor, stripe_settings, fake_stripe, monday_morning
):
    """Issue 11, reproduction 6: another conversation's order id used to return *that*
    conversation's Checkout Session, whose payment never confirmed the right lesson."""
    register(client)
    client.get("/api/v1/slots", params={"conversation_id": "conv-2", "contact_id": "contact-2"})
    first = client.post("/api/v1/payment-links", json=LINK)
    assert first.status_code == 200

    other = client.post("/api/v1/payment-links", json={**LINK, "conversation_id": "conv-2"})

    assert other.status_code == 409
    assert "belongs to another conversation" in other.json()["detail"]
    assert len(fake_stripe.requests_to("POST", "/v1/checkout/sessions")) == 1


def test_the_same_order_id_with_other_parameters_is_a_conflict(
    client, tutor, stripe_settings, fake_stripe, monday_morning
):
    register(client)
    client.post("/api/v1/payment-links", json=LINK)

    other = client.post("/api/v1/payment-links", json={**LINK, "minutes": 90})

    assert other.status_code == 409 and "use a new order_id" in other.json()["detail"]


@pytest.mark.parametrize("order_id", ["lesson-1", "LESSON-7", "lesson-"])
def test_bookings_order_ids_are_not_the_bots_to_use(
    client, tutor, stripe_settings, fake_stripe, monday_morning, order_id
):
    register(client)

    response = client.post("/api/v1/payment-links", json={**LINK, "order_id": order_id})

    assert response.status_code == 422 and "reserved" in response.json()["detail"]
    assert fake_stripe.requests_to("POST", "/v1/checkout/sessions") == []
