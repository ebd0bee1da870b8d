"""Bundles of prepaid lessons (issue 15) and receipts (STRIPE_INVOICES), over HTTP against the
Stripe fake: POST /api/v1/bundles makes a Checkout Session for BUNDLE_PRICE_ID_<minutes> ×
lessons; the paid webhook adds the credits exactly once (repeats are no-ops) and tells the
customer; GET /api/v1/contacts/{id}/credits shows them; a booking then uses one."""

from __future__ import annotations

import pytest
from sqlmodel import select

from core import credits, worker
from core.db import read_session, write_session
from core.models import OutboxMessage, Payment
from tests.support.api import (
    BUNDLE,
    booking,
    signed_delivery,  # noqa: F401
)

pytest_plugins = ["tests.support.api"]


def payment() -> Payment:
    with read_session() as session:
        return session.exec(select(Payment)).one()


def balance(minutes: int = 60) -> int:
    with read_session() as session:
        return credits.balance(session, "contact-1", minutes)


def outbox_keys() -> list[str | None]:
    with read_session() as session:
        return [m.key for m in session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()]


def test_a_bundle_is_one_checkout_session_of_the_bundle_price_times_the_lessons(bundle, fake_stripe):
    session = fake_stripe.sessions[bundle["checkout_session_id"]]
    [request] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert request.params["line_items"] == [{"price": "price_bundle_60", "quantity": "5"}]
    assert session["amount_total"] == 20000
    assert session["metadata"]["kind"] == "bundle" and session["metadata"]["lessons"] == "5"
    assert session["metadata"]["created_by"] == "lesplanner"
    assert "invoice_creation" not in request.params  # STRIPE_INVOICES is off
    row = payment()
    assert (row.kind, row.quantity, row.minutes, row.amount, row.lesson_id) == ("bundle", 5, 60, 20000, None)
    assert bundle["url"].startswith("https://checkout.stripe.com/")
    assert (bundle["lessons"], bundle["minutes"], bundle["amount"]) == (5, 60, 20000)


def test_asking_again_gives_the_same_open_link(client, bundle):
    again = client.post("/api/v1/bundles", json=BUNDLE)
    assert again.status_code == 200
    assert again.json()["checkout_session_id"] == bundle["checkout_session_id"]


@pytest.mark.parametrize(
    "change", [{"lessons": 1}, {"lessons": 21}, {"minutes": 45}, {"conversation_id": "../x"}]
)
def test_a_bundle_out_of_bounds_is_a_422(client, tutor, monday_morning, stripe_api, change):
    response = client.post("/api/v1/bundles", json={**BUNDLE, **change})
    assert response.status_code == 422, response.text


def test_an_unconfigured_bundle_price_is_a_clear_503(client, tutor, monday_morning, stripe_api):
    response = client.post("/api/v1/bundles", json={**BUNDLE, "minutes": 90})
    assert response.status_code == 503
    assert "BUNDLE_PRICE_ID_90" in response.json()["detail"]


def test_a_paid_bundle_becomes_credits_exactly_once_and_a_booking_uses_one(
    client,
    bundle,
    fake_stripe,
    signed_delivery,  # noqa: F811
):
    event = fake_stripe.complete_session(bundle["checkout_session_id"])
    signed_delivery(event)
    signed_delivery(event)  # Stripe repeats itself
    fake_stripe.events.append({**event, "id": event["id"] + "x"})
    signed_delivery({**event, "id": event["id"] + "x"})  # even as another event

    assert balance() == 5
    assert outbox_keys().count("bundle_paid") == 1
    assert "payment_success_message" not in outbox_keys()
    credits_out = client.get("/api/v1/contacts/contact-1/credits").json()
    assert credits_out["balance"] == {"60": 5, "90": 0}
    assert credits_out["total"] == 5
    assert [(e["kind"], e["delta"], e["minutes"]) for e in credits_out["entries"]] == [("purchase", 5, 60)]

    booked = client.post("/api/v1/bookings", json=booking())
    assert booked.status_code == 201 and booked.json()["status"] == "confirmed"
    assert booked.json()["payment_url"] is None
    assert balance() == 4
    assert client.get("/api/v1/contacts/contact-1/credits").json()["entries"][0]["kind"] == "use"


def test_a_paid_bundle_says_how_many_lessons_of_how_long_to_the_customer_and_in_its_detail(
    bundle, fake_stripe
):
    """The customer's message, and the event's detail finance reads on a retry."""
    from core.payments import handle_webhook
    from tests.support.api import WEBHOOK_SECRET

    event = fake_stripe.complete_session(bundle["checkout_session_id"])

    result = handle_webhook(*fake_stripe.signed(event, WEBHOOK_SECRET))

    assert result.detail == (
        f"Payment {bundle['checkout_session_id']} paid (was open). 5 credits of 60 minutes added."
    )
    with read_session() as session:
        [message] = session.exec(select(OutboxMessage).where(OutboxMessage.key == "bundle_paid")).all()
    assert "5 lessen van 60 minuten" in message.text


def test_a_bundle_whose_payment_row_was_lost_is_rebuilt_from_its_metadata(
    bundle,
    fake_stripe,
    signed_delivery,  # noqa: F811
):
    with write_session() as session:  # the answer to the create call never got stored
        session.delete(session.exec(select(Payment)).one())

    signed_delivery(fake_stripe.complete_session(bundle["checkout_session_id"]))

    rebuilt = payment()
    assert (rebuilt.kind, rebuilt.quantity, rebuilt.minutes, rebuilt.price_id, rebuilt.series_id) == (
        "bundle",
        5,
        60,
        "price_bundle_60",
        None,
    )
    assert (rebuilt.status, balance()) == ("paid", 5)


def test_a_bundle_paid_later_by_a_delayed_method_adds_the_credits_once(
    bundle,
    fake_stripe,
    signed_delivery,  # noqa: F811
):
    signed_delivery(fake_stripe.complete_session(bundle["checkout_session_id"], paid=False))
    assert balance() == 0 and payment().status == "processing"
    succeeded = fake_stripe.async_succeed(bundle["checkout_session_id"])
    signed_delivery(succeeded)
    signed_delivery(succeeded)
    assert balance() == 5


def test_a_refunded_bundle_takes_back_only_the_unused_credits(
    client,
    bundle,
    fake_stripe,
    signed_delivery,  # noqa: F811
):
    signed_delivery(fake_stripe.complete_session(bundle["checkout_session_id"]))
    client.post("/api/v1/bookings", json=booking())
    assert balance() == 4

    refunded = fake_stripe.refund(bundle["checkout_session_id"])
    signed_delivery(refunded)
    signed_delivery(refunded)

    assert payment().status == "refunded"
    assert balance() == 0  # 4 unused taken back; the lesson already booked stays


def test_the_credits_of_an_unknown_contact_are_a_404(client, tutor, stripe_api):
    assert client.get("/api/v1/contacts/nobody/credits").status_code == 404


# --- receipts --------------------------------------------------------------------------------


@pytest.mark.parametrize("invoice_event", ["invoice.finalized", "invoice.paid"])  # whichever comes first
def test_with_stripe_invoices_checkout_asks_for_an_invoice_and_betalingen_gets_its_url(
    client,
    tutor,
    monday_morning,
    stripe_api,
    fake_stripe,
    signed_delivery,  # noqa: F811
    invoice_event,
):
    stripe_api(stripe_invoices=True)
    made = client.post("/api/v1/bundles", json=BUNDLE).json()
    [request] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert request.params["invoice_creation"] == {"enabled": "true"}

    signed_delivery(fake_stripe.complete_session(made["checkout_session_id"]))
    invoice_id = payment().invoice_id
    assert invoice_id and invoice_id.startswith("in_")
    signed_delivery(next(e for e in fake_stripe.events if e["type"] == invoice_event))
    assert payment().invoice_url == fake_stripe.invoices[invoice_id]["hosted_invoice_url"]


def test_lesson_checkouts_ask_for_an_invoice_only_when_enabled(
    client, tutor, monday_morning, stripe_api, fake_stripe
):
    client.post("/api/v1/bookings", json=booking())
    stripe_api(stripe_invoices=True)
    client.post("/api/v1/bookings", json=booking(start="2026-12-01T11:00:00+01:00", conversation_id="conv-2"))
    first, second = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert "invoice_creation" not in first.params
    assert second.params["invoice_creation"] == {"enabled": "true"}
    worker.drain()


def test_a_configured_tax_rate_goes_on_every_line_item(
    client, tutor, monday_morning, stripe_api, fake_stripe
):
    stripe_api(stripe_tax_rate_id="txr_btw_21_incl")
    client.post("/api/v1/bundles", json=BUNDLE)
    client.post("/api/v1/bookings", json=booking())
    for request in fake_stripe.requests_to("POST", "/v1/checkout/sessions"):
        assert request.params["line_items"][0]["tax_rates"] == ["txr_btw_21_incl"]
