"""Trust boundaries (DESIGN → "Trust boundaries", issue 12 item 1): what a customer types vouches
for nothing. A request that fails stores nothing it carried; an e-mail address only counts for a
whitelist once staff entered or confirmed it; a conversation cannot rewrite a contact that staff
maintain. Over HTTP, as the bot sends it."""

from __future__ import annotations

import pytest
from sqlmodel import select

from core.contacts import update_contact_details
from core.db import read_session, write_session
from core.errors import PermissionDenied, ValidationFailed
from core.models import AuditLog, Contact, Conversation, Lesson, User, WhitelistEntry
from tests.support.api import FIRST_NEW_SLOT, booking

pytest_plugins = ["tests.support.api"]

TYPED = {"name": "Iemand Anders", "email": "vip@example.nl", "phone": "06 23456789"}


def contact(contact_id: str) -> Contact | None:
    with read_session() as session:
        return session.get(Contact, contact_id)


def staff(role: str = "admin") -> User:
    with write_session() as session:
        user = User(email=f"{role}@lesplanner.test", role=role, name=role)
        session.add(user)
    return user


def on_weekend_list(identifier: str) -> None:
    with write_session() as session:
        session.add(WhitelistEntry(list="weekend", identifier=identifier))


# --- a failed request stores nothing --------------------------------------------------------------


def test_a_booking_refused_with_422_keeps_none_of_the_contact_details_it_carried(
    client, tutor, monday_morning, no_payment
):
    assert client.get(
        "/api/v1/slots", params={"conversation_id": "conv-1", "contact_id": "contact-1"}
    ).is_success

    wrong_length = booking(end="2026-12-01T12:30:00+01:00", contact=TYPED)
    response = client.post("/api/v1/bookings", json=wrong_length)

    assert response.status_code == 422
    stored = contact("contact-1")
    assert (stored.name, stored.email, stored.phone) == (None, None, None)


def test_a_new_conversation_whose_booking_is_refused_is_not_registered(
    client, tutor, monday_morning, no_payment
):
    not_offered = booking(
        start="2026-12-01T03:00:00+01:00", conversation_id="conv-2", contact_id="contact-2", contact=TYPED
    )

    response = client.post("/api/v1/bookings", json=not_offered)

    assert response.status_code == 422
    with read_session() as session:
        assert session.get(Conversation, "conv-2") is None
        assert session.get(Contact, "contact-2") is None


def test_a_booking_whose_payment_link_fails_puts_the_contact_details_back(
    client, tutor, monday_morning, stripe_settings, fake_stripe
):
    assert client.get(
        "/api/v1/slots", params={"conversation_id": "conv-1", "contact_id": "contact-1"}
    ).is_success
    fake_stripe.fail_next("503", times=10)

    response = client.post("/api/v1/bookings", json=booking(contact=TYPED))

    assert response.status_code == 503
    stored = contact("contact-1")
    assert (stored.name, stored.email, stored.phone) == (None, None, None)
    with read_session() as session:  # the slot is free again
        assert session.exec(select(Lesson)).one().status == "cancelled"


# --- typed e-mail addresses do not decide the segment -------------------------------------------


def test_a_typed_e_mail_on_the_weekend_list_does_not_make_a_new_contact_weekend(
    client, tutor, monday_morning, no_payment
):
    on_weekend_list("vip@example.nl")

    response = client.post("/api/v1/bookings", json=booking(contact={"email": "VIP@example.nl"}))

    assert response.status_code == 201
    assert response.json()["profile"] == "new"
    assert contact("contact-1").email == "vip@example.nl"  # kept, as the customer's own detail
    segment = client.get("/api/v1/contacts/contact-1/segment").json()
    assert segment["segment"] == "new"
    assert "not confirmed" in segment["reason"]


def test_an_e_mail_staff_confirmed_puts_the_contact_on_its_whitelist(
    client, tutor, monday_morning, no_payment
):
    on_weekend_list("vip@example.nl")
    client.get("/api/v1/slots", params={"conversation_id": "conv-1", "contact_id": "contact-1"})

    update_contact_details(
        staff(), "contact-1", name="Vera", email="vip@example.nl", phone=None, email_confirmed=True
    )

    assert client.get("/api/v1/contacts/contact-1/segment").json()["segment"] == "weekend"


def test_a_whitelisted_phone_from_the_chat_platform_still_counts(client, tutor, monday_morning, no_payment):
    on_weekend_list("+31623456789")

    saturday = booking(start="2026-12-05T10:00:00+01:00", contact={"phone": "06 23456789"})
    response = client.post("/api/v1/bookings", json=saturday)

    assert (response.status_code, response.json()["profile"]) == (201, "weekend")
    assert client.get("/api/v1/contacts/contact-1/segment").json()["segment"] == "weekend"


# --- who may change a contact's identity --------------------------------------------------------


def test_a_new_conversation_cannot_rewrite_a_contact_staff_maintain(
    client, tutor, monday_morning, no_payment
):
    client.get("/api/v1/slots", params={"conversation_id": "conv-1", "contact_id": "contact-1"})
    update_contact_details(
        staff(),
        "contact-1",
        name="Sanne de Vries",
        email="sanne@example.nl",
        phone="+31612345678",
        email_confirmed=True,
    )

    response = client.post("/api/v1/bookings", json=booking(conversation_id="conv-9", contact=TYPED))

    assert response.status_code == 201
    stored = contact("contact-1")
    assert (stored.name, stored.email, stored.phone) == ("Sanne de Vries", "sanne@example.nl", "+31612345678")
    assert stored.email_confirmed and stored.staff_maintained


def test_the_bot_fills_in_a_contact_staff_do_not_maintain_but_never_changes_its_phone(
    client, tutor, monday_morning, no_payment
):
    first = client.post("/api/v1/bookings", json=booking(contact=TYPED))
    assert first.status_code == 201
    stored = contact("contact-1")
    assert (stored.name, stored.email, stored.phone) == ("Iemand Anders", "vip@example.nl", "+31623456789")
    assert not stored.email_confirmed and not stored.staff_maintained

    later = {"name": "Vera", "email": "vera@example.nl", "phone": "06 12345678"}
    second = client.post("/api/v1/bookings", json=booking(start="2026-12-01T11:00:00+01:00", contact=later))

    assert second.status_code == 201
    stored = contact("contact-1")
    assert (stored.name, stored.email, stored.phone) == ("Vera", "vera@example.nl", "+31623456789")


def test_staff_edits_are_audited_and_need_an_admin(client, tutor, monday_morning, no_payment):
    client.get("/api/v1/slots", params={"conversation_id": "conv-1", "contact_id": "contact-1"})
    with pytest.raises(PermissionDenied):
        update_contact_details(staff("tutor"), "contact-1", name="X", email=None, phone=None)
    admin = staff("admin")
    with pytest.raises(ValidationFailed):
        update_contact_details(admin, "contact-1", name="X", email="not-an-address", phone=None)
    assert contact("contact-1").name is None

    update_contact_details(admin, "contact-1", name="Vera", email="Vera@Example.nl", phone="06 12345678")

    stored = contact("contact-1")
    assert (stored.name, stored.email, stored.phone) == ("Vera", "vera@example.nl", "+31612345678")
    assert stored.staff_maintained and not stored.email_confirmed
    with read_session() as session:
        log = session.exec(select(AuditLog).where(AuditLog.action == "contact.details")).one()
    assert log.before["name"] is None and log.after["email"] == "vera@example.nl"


def test_the_first_slot_of_the_fixture_is_still_offered(client, tutor, monday_morning, no_payment):
    """Guard for the tests above: they book FIRST_NEW_SLOT as a valid, offered slot."""
    assert client.post("/api/v1/bookings", json=booking(start=FIRST_NEW_SLOT)).status_code == 201


# --- ids: one safe alphabet, at the receiver and again in core -------------------------------------


@pytest.mark.parametrize("order_id", ["order 1", "order-1\nINFO forged line", "../../v1/charges", "x" * 201])
def test_an_order_id_outside_the_safe_alphabet_is_refused_and_stores_nothing(
    client, stripe_settings, fake_stripe, order_id
):
    link = {
        "segment": "new",
        "minutes": 60,
        "order_id": order_id,
        "conversation_id": "conv-1",
        "contact_id": "contact-1",
    }

    response = client.post("/api/v1/payment-links", json=link)

    assert response.status_code == 422
    assert "order_id" in response.json()["detail"]
    assert not fake_stripe.requests
    with read_session() as session:
        assert session.get(Conversation, "conv-1") is None


@pytest.mark.parametrize("bad", ["..", "a/b", "conv\r\n1", ""])
def test_core_refuses_an_unsafe_conversation_or_contact_id_from_any_caller(engine, bad):
    from core.conversations import ensure_conversation

    for args in ((bad, "contact-1"), ("conv-1", bad)):
        with pytest.raises(ValidationFailed), write_session() as session:
            ensure_conversation(session, *args)
    with read_session() as session:
        assert session.exec(select(Conversation)).first() is None


def test_a_payment_link_that_stripe_refuses_registers_no_conversation(client, stripe_settings, fake_stripe):
    """The bot's route needs a known conversation; core's callers may register one with the link
    (contact_id given): only once Stripe made the session."""
    from core.errors import PaymentProviderError
    from core.payments import create_payment_link

    fake_stripe.fail_next("503", times=10)
    with pytest.raises(PaymentProviderError):
        create_payment_link(
            "new", 60, "order-1", "conv-1", "Sanne", "bijles", "havo", "wiskunde", contact_id="contact-1"
        )

    with read_session() as session:
        assert session.get(Conversation, "conv-1") is None and session.get(Contact, "contact-1") is None
    fake_stripe.clear_faults()
    create_payment_link(
        "new", 60, "order-1", "conv-1", "Sanne", "bijles", "havo", "wiskunde", contact_id="contact-1"
    )
    with read_session() as session:
        assert session.get(Conversation, "conv-1").contact_id == "contact-1"
