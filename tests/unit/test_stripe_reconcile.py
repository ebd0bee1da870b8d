"""Specification of `reconcile_payments`: Stripe's Checkout Sessions are the truth when a webhook
never arrived (endpoint down, secret rotated) or kept failing. Reconciling applies what the
webhook would have done, exactly once, and a late real webhook then changes nothing.

The clock stands at Monday 30 November 2026, 09:00 in Amsterdam.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import stripe
from sqlmodel import select

from core.booking import book_slot
from core.db import read_session, write_session
from core.errors import PaymentProviderError, ValidationFailed
from core.models import (
    AWAITING_PAYMENT,
    CONFIRMED,
    EXPIRED,
    Lesson,
    OutboxMessage,
    Payment,
    StripeEvent,
    Tutor,
)
from core.payments import create_payment_link, reconcile_payments
from tests.conftest import AMS
from tests.fakes.stripe_fixtures import *  # noqa: F403

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=AMS)
TUE_10 = datetime(2026, 12, 1, 10, 0, tzinfo=AMS)
SINCE = NOW - timedelta(days=3)


@pytest.fixture(autouse=True)
def world(engine, frozen_now):
    frozen_now(NOW)
    with write_session() as session:
        session.add(Tutor(name="Anna", email="anna@lesplanner.test", calendar_id="anna-calendar"))
    return engine


@pytest.fixture
def held(fake_stripe) -> tuple[int, str]:
    result = book_slot("conv-1", TUE_10, TUE_10 + timedelta(hours=1), "Wiskunde", contact_id="contact-1")
    return result.lesson.id, result.payment.checkout_session_id


def payment(session_id: str) -> Payment:
    with read_session() as session:
        return session.exec(select(Payment).where(Payment.checkout_session_id == session_id)).one()


def lesson_status(lesson_id: int) -> str:
    with read_session() as session:
        return session.get(Lesson, lesson_id).status


def message_keys() -> list[str]:
    with read_session() as session:
        return [m.key for m in session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()]


def test_a_payment_whose_webhook_never_arrived_is_applied(fake_stripe, held):
    lesson_id, session_id = held
    fake_stripe.complete_session(session_id)  # Stripe sent the event; we never got it

    report = reconcile_payments(SINCE)

    assert (report.checked, report.ours, len(report.applied)) == (1, 1, 1)
    assert session_id in report.applied[0] and "paid" in report.applied[0]
    assert payment(session_id).status == "paid"
    assert payment(session_id).payment_intent_id == fake_stripe.sessions[session_id]["payment_intent"]
    assert lesson_status(lesson_id) == CONFIRMED
    assert message_keys().count("payment_success_message") == 1


def test_reconciling_twice_changes_nothing_the_second_time(fake_stripe, held):
    fake_stripe.complete_session(held[1])
    reconcile_payments(SINCE)

    again = reconcile_payments(SINCE)

    assert again.applied == [] and again.unchanged == 1
    assert message_keys().count("payment_success_message") == 1


def test_the_real_webhook_arriving_after_reconciliation_changes_nothing(fake_stripe, held, signed_delivery):
    event = fake_stripe.complete_session(held[1])
    reconcile_payments(SINCE)

    result = signed_delivery(event)

    assert result.status == "processed" and "already paid" in result.detail
    assert message_keys().count("payment_success_message") == 1


def test_the_fix_is_stored_as_a_synthetic_event_for_the_audit_trail(fake_stripe, held):
    fake_stripe.complete_session(held[1])

    reconcile_payments(SINCE)

    with read_session() as session:
        row = session.get(StripeEvent, f"reconcile:{held[1]}:paid")
    assert row is not None and row.status == "processed" and row.type == "checkout.session.completed"


def test_an_expiry_whose_webhook_never_arrived_releases_the_hold(fake_stripe, held):
    lesson_id, session_id = held
    fake_stripe.expire_session(session_id)

    report = reconcile_payments(SINCE)

    assert len(report.applied) == 1
    assert payment(session_id).status == "expired"
    assert lesson_status(lesson_id) == EXPIRED
    assert message_keys()[-1] == "hold_expired"


def test_a_payment_still_processing_is_noted_and_the_hold_kept(fake_stripe, held):
    lesson_id, session_id = held
    fake_stripe.complete_session(session_id, paid=False)

    reconcile_payments(SINCE)

    assert payment(session_id).status == "processing" and payment(session_id).payment_intent_id
    assert lesson_status(lesson_id) == AWAITING_PAYMENT
    fake_stripe.async_succeed(session_id)
    reconcile_payments(SINCE)
    assert payment(session_id).status == "paid" and lesson_status(lesson_id) == CONFIRMED


def test_an_open_session_of_ours_that_was_never_stored_is_recorded(fake_stripe, held):
    lesson_id, session_id = held
    with write_session() as session:
        session.delete(session.exec(select(Payment)).one())

    report = reconcile_payments(SINCE)

    assert len(report.created) == 1 and session_id in report.created[0]
    recorded = payment(session_id)
    assert (recorded.status, recorded.lesson_id, recorded.url) == (
        "open",
        lesson_id,
        fake_stripe.sessions[session_id]["url"],
    )


def test_sessions_not_made_by_lesplanner_are_left_alone(fake_stripe, held):
    client = stripe.StripeClient(fake_stripe.api_key, base_addresses={"api": fake_stripe.url})
    other = client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": "price_standard_60", "quantity": 1}],
            "success_url": "https://shop.test/ok",
        }
    )
    fake_stripe.complete_session(other.id)

    report = reconcile_payments(SINCE)

    assert (report.checked, report.ours, report.applied) == (2, 1, [])
    with read_session() as session:
        assert len(session.exec(select(Payment)).all()) == 1


def test_all_pages_are_read_and_only_sessions_since_the_given_time(fake_stripe, frozen_now):
    frozen_now(NOW - timedelta(days=5))
    create_payment_link(
        "new", 60, "old-order", "conv-old", "Oud", "bijles", "havo", "wiskunde", contact_id="contact-old"
    )
    frozen_now(NOW)
    for i in range(105):  # more than one page of 100
        create_payment_link(
            "new", 60, f"order-{i}", "conv-1", "Sanne", "bijles", "havo", "wiskunde", contact_id="contact-1"
        )
    for session_id in list(fake_stripe.sessions)[1:]:
        fake_stripe.complete_session(session_id)

    report = reconcile_payments(SINCE)

    assert report.checked == 105 and len(report.applied) == 105
    lists = fake_stripe.requests_to("GET", "/v1/checkout/sessions")
    assert len(lists) == 2 and lists[1].params.get("starting_after")
    with read_session() as session:
        assert session.exec(select(Payment).where(Payment.order_id == "old-order")).one().status == "open"


def test_stripe_being_down_is_a_clear_error(fake_stripe, held):
    fake_stripe.fail_next("503", times=10)

    with pytest.raises(PaymentProviderError, match="list Checkout Sessions"):
        reconcile_payments(SINCE)


def test_since_must_be_timezone_aware(fake_stripe):
    with pytest.raises(ValidationFailed, match="timezone"):
        reconcile_payments(datetime(2026, 11, 1))


def test_the_report_reads_as_a_summary(fake_stripe, held):
    fake_stripe.complete_session(held[1])

    text = str(reconcile_payments(SINCE))

    assert text.startswith("Checked 1 Checkout Sessions since 2026-11-27")
    assert "1 applied" in text and held[1] in text
