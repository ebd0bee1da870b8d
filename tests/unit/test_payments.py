"""Specification of Stripe payment links (core/payments.py) against the fake Stripe server.

The real `stripe` library talks HTTP to tests/fakes/stripe_server.py, so prices, Stripe's
validation, idempotency keys, error shapes and the library's retries are all in play.
The clock stands at Monday 30 November 2026, 09:00 in Amsterdam.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
import stripe
from sqlmodel import select

from core import payments
from core.db import read_session, write_session
from core.errors import (
    InvalidTransition,
    NotFound,
    PaymentProviderError,
    PaymentsNotConfigured,
    ValidationFailed,
)
from core.models import IntegrationStatus, Payment
from core.payments import create_payment_link
from receiver.errors import status_for
from tests.conftest import AMS
from tests.fakes.stripe_fixtures import *  # noqa: F403

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=AMS)
SESSIONS = "/v1/checkout/sessions"


@pytest.fixture(autouse=True)
def world(engine, frozen_now):
    frozen_now(NOW)
    return engine


def link(segment: str = "new", minutes: int = 60, order_id: str = "order-1", **kw) -> Payment:
    args = dict(
        conversation_id="conv-1",
        student_name="Sanne de Vries",
        service="bijles",
        audience="havo 4",
        program="wiskunde B",
        contact_id="contact-1",
    )
    args.update(kw)
    return create_payment_link(
        segment,
        minutes,
        order_id,
        args.pop("conversation_id"),
        args.pop("student_name"),
        args.pop("service"),
        args.pop("audience"),
        args.pop("program"),
        **args,
    )


def payments_in_db() -> list[Payment]:
    with read_session() as session:
        return list(session.exec(select(Payment)).all())


def creates(fake) -> list:
    return fake.requests_to("POST", SESSIONS)


# --- which price ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("segment", "minutes", "price_id", "amount"),
    [
        ("new", 60, "price_standard_60", 4500),
        ("existing", 90, "price_standard_90", 6500),
        ("returning_broadcast", 60, "price_standard_60", 4500),
        ("weekend", 60, "price_weekend_60", 5500),
        ("weekend", 90, "price_weekend_90", 7900),
    ],
)
def test_the_segment_and_length_choose_the_price_and_amount(fake_stripe, segment, minutes, price_id, amount):
    payment = link(segment, minutes)

    sent = creates(fake_stripe)[-1].params
    assert sent["line_items"] == [{"price": price_id, "quantity": "1"}]
    assert (payment.price_id, payment.amount, payment.currency) == (price_id, amount, "eur")
    assert (payment.segment, payment.minutes, payment.status) == (segment, minutes, "open")


def test_a_payment_link_is_a_real_checkout_url_stored_as_an_open_payment(fake_stripe):
    payment = link()

    session = fake_stripe.sessions[payment.checkout_session_id]
    assert payment.url == session["url"]
    assert payment.url.startswith("https://checkout.stripe.com/c/pay/cs_test_")
    [stored] = payments_in_db()
    assert (stored.checkout_session_id, stored.status, stored.order_id) == (
        payment.checkout_session_id,
        "open",
        "order-1",
    )
    assert (stored.conversation_id, stored.contact_id) == ("conv-1", "contact-1")


def test_the_session_is_a_dutch_one_off_payment_for_the_order(fake_stripe):
    link(order_id="order-42")

    sent = creates(fake_stripe)[-1].params
    assert sent["mode"] == "payment"
    assert sent["locale"] == "nl"
    assert sent["client_reference_id"] == "order-42"
    assert sent["success_url"] == "https://lesplanner.test/betaald?session_id={CHECKOUT_SESSION_ID}"
    assert sent["cancel_url"] == "https://lesplanner.test/geannuleerd"


def test_every_argument_is_in_the_metadata_of_the_session_and_the_payment_intent(fake_stripe):
    payment = link("weekend", 90, order_id="order-7", lesson_id=None)

    expected = {
        "segment": "weekend",
        "minutes": "90",
        "order_id": "order-7",
        "conversation_id": "conv-1",
        "student_name": "Sanne de Vries",
        "service": "bijles",
        "audience": "havo 4",
        "program": "wiskunde B",
        "contact_id": "contact-1",
        "created_by": "lesplanner",
    }
    session = fake_stripe.sessions[payment.checkout_session_id]
    assert session["metadata"] == expected
    fake_stripe.complete_session(payment.checkout_session_id)
    intent = fake_stripe.payment_intents[fake_stripe.sessions[payment.checkout_session_id]["payment_intent"]]
    assert intent["metadata"] == expected


def test_the_contact_of_a_known_conversation_goes_into_the_metadata(fake_stripe):
    link(order_id="first")
    link(order_id="second", contact_id=None)

    assert creates(fake_stripe)[-1].params["metadata"]["contact_id"] == "contact-1"


def test_the_link_expires_after_the_configured_half_hour_and_the_expiry_is_stored(fake_stripe):
    payment = link()

    session = fake_stripe.sessions[payment.checkout_session_id]
    assert payment.expires_at.timestamp() == session["expires_at"]
    assert timedelta(minutes=30) <= payment.expires_at - NOW <= timedelta(minutes=31)


def test_a_longer_expiry_setting_gives_a_longer_link(fake_stripe, configure):
    configure(checkout_expires_minutes=120)

    payment = link()

    assert payment.expires_at - NOW == timedelta(minutes=120)


@pytest.mark.parametrize("minutes", [29, 1441])
def test_an_expiry_setting_stripe_would_refuse_is_a_configuration_error(fake_stripe, configure, minutes):
    configure(checkout_expires_minutes=minutes)

    with pytest.raises(PaymentsNotConfigured, match="CHECKOUT_EXPIRES_MINUTES"):
        link()
    assert creates(fake_stripe) == []


def test_the_fake_refuses_an_expiry_under_thirty_minutes_like_stripe(fake_stripe, settings):
    client = stripe.StripeClient(fake_stripe.api_key, base_addresses={"api": fake_stripe.url})
    params = {
        "mode": "payment",
        "line_items": [{"price": "price_standard_60", "quantity": 1}],
        "success_url": "https://lesplanner.test/ok",
        "expires_at": int(NOW.timestamp()) + 29 * 60,
    }

    with pytest.raises(stripe.InvalidRequestError, match="at least 30 minutes") as info:
        client.v1.checkout.sessions.create(params=params)
    assert info.value.http_status == 400
    assert info.value.param == "expires_at"


# --- refused input and missing configuration -----------------------------------------------


@pytest.mark.parametrize("minutes", [45, 0, 120, "sixty", None, True])
def test_lengths_other_than_60_or_90_minutes_are_refused_naming_the_allowed_values(fake_stripe, minutes):
    with pytest.raises(ValidationFailed, match="60 or 90") as info:
        link(minutes=minutes)

    assert status_for(info.value) == 422
    assert creates(fake_stripe) == []
    assert payments_in_db() == []


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ({"stripe_api_key": None}, "STRIPE_API_KEY"),
        ({"standard_price_id_60": None}, "STANDARD_PRICE_ID_60"),
        ({"checkout_success_url": None}, "CHECKOUT_SUCCESS_URL"),
        ({"checkout_cancel_url": None}, "CHECKOUT_CANCEL_URL"),
    ],
)
def test_missing_configuration_is_named_and_no_link_or_payment_is_made(
    fake_stripe, configure, override, named
):
    configure(**override)

    with pytest.raises(PaymentsNotConfigured, match=named) as info:
        link()

    assert status_for(info.value) == 503
    assert "Stripe is not configured" in info.value.message
    assert creates(fake_stripe) == []
    assert payments_in_db() == []


def test_a_missing_weekend_price_only_blocks_weekend_links(fake_stripe, configure):
    configure(weekend_price_id_60=None)

    with pytest.raises(PaymentsNotConfigured, match="WEEKEND_PRICE_ID_60"):
        link("weekend", 60)
    assert link("new", 60).price_id == "price_standard_60"


def test_a_price_id_stripe_does_not_know_is_a_configuration_error_naming_the_setting(fake_stripe, configure):
    configure(standard_price_id_60="price_typo")

    with pytest.raises(PaymentsNotConfigured, match="STANDARD_PRICE_ID_60") as info:
        link()

    assert "price_typo" in info.value.message
    assert payments_in_db() == []


def test_a_rejected_api_key_is_a_configuration_error_without_the_key(fake_stripe, configure):
    configure(stripe_api_key="sk_test_wrong_key_123456789")

    with pytest.raises(PaymentsNotConfigured, match="STRIPE_API_KEY") as info:
        link()

    assert "sk_test_wrong" not in str(info.value)
    assert "123456789" not in str(info.value)
    assert payments_in_db() == []


def test_an_unknown_conversation_needs_its_contact(fake_stripe):
    with pytest.raises(NotFound, match="contact_id"):
        link(conversation_id="conv-new", contact_id=None)
    assert creates(fake_stripe) == []


def test_a_link_for_a_lesson_that_does_not_exist_is_refused(fake_stripe):
    with pytest.raises(ValidationFailed, match="Lesson 999"):
        link(lesson_id=999)
    assert creates(fake_stripe) == []


# --- idempotency --------------------------------------------------------------------------


def test_asking_twice_for_the_same_order_gives_the_same_link_and_one_session(fake_stripe):
    first = link(order_id="order-5")
    second = link(order_id="order-5")

    assert second.checkout_session_id == first.checkout_session_id
    assert second.url == first.url
    assert len(fake_stripe.sessions) == 1
    assert len(payments_in_db()) == 1


def test_the_idempotency_key_is_derived_from_the_order(fake_stripe):
    link(order_id="order-5")

    assert creates(fake_stripe)[-1].headers["idempotency-key"] == "lesplanner-checkout-order-5"


def test_a_lost_answer_is_retried_with_the_same_key_and_stripe_replays_the_session(fake_stripe, configure):
    configure(stripe_timeout_seconds=0.3)
    fake_stripe.fail_next("slow", delay=0.6, path=SESSIONS)

    payment = link(order_id="order-9")

    assert len(fake_stripe.sessions) == 1
    assert payment.checkout_session_id in fake_stripe.sessions
    keys = {r.headers["idempotency-key"] for r in creates(fake_stripe)}
    assert keys == {"lesplanner-checkout-order-9"}


def test_a_dropped_connection_is_retried(fake_stripe):
    fake_stripe.fail_next("drop", path=SESSIONS)

    payment = link()

    assert payment.checkout_session_id in fake_stripe.sessions
    assert len(fake_stripe.sessions) == 1


def test_the_fake_refuses_a_reused_key_with_other_parameters_like_stripe(fake_stripe, settings):
    client = stripe.StripeClient(fake_stripe.api_key, base_addresses={"api": fake_stripe.url})
    params = {
        "mode": "payment",
        "line_items": [{"price": "price_standard_60", "quantity": 1}],
        "success_url": "https://lesplanner.test/ok",
    }
    client.v1.checkout.sessions.create(params=params, options={"idempotency_key": "k"})

    with pytest.raises(stripe.IdempotencyError):
        client.v1.checkout.sessions.create(
            params={**params, "locale": "en"}, options={"idempotency_key": "k"}
        )


def test_a_session_created_earlier_whose_answer_was_lost_does_not_block_a_new_link(fake_stripe, settings):
    # An earlier attempt reached Stripe with the order's key, but nothing was stored here.
    client = stripe.StripeClient(fake_stripe.api_key, base_addresses={"api": fake_stripe.url})
    client.v1.checkout.sessions.create(
        params={
            "mode": "payment",
            "line_items": [{"price": "price_standard_60", "quantity": 1}],
            "success_url": "https://lesplanner.test/ok",
        },
        options={"idempotency_key": "lesplanner-checkout-order-3"},
    )

    payment = link(order_id="order-3")

    assert payment.checkout_session_id in fake_stripe.sessions
    assert len(fake_stripe.sessions) == 2
    assert [p.checkout_session_id for p in payments_in_db()] == [payment.checkout_session_id]


def test_an_expired_link_for_the_order_is_replaced_by_a_new_session(fake_stripe, frozen_now):
    first = link(order_id="order-5")
    with write_session() as session:
        session.get(Payment, first.id).status = "expired"
    frozen_now(NOW + timedelta(hours=1))

    second = link(order_id="order-5")

    assert second.checkout_session_id != first.checkout_session_id
    assert creates(fake_stripe)[-1].headers["idempotency-key"] == "lesplanner-checkout-order-5-2"
    assert len(payments_in_db()) == 2


def test_a_paid_order_gets_no_new_link(fake_stripe):
    first = link(order_id="order-5")
    with write_session() as session:
        session.get(Payment, first.id).status = "paid"

    with pytest.raises(InvalidTransition, match="already paid"):
        link(order_id="order-5")
    assert len(fake_stripe.sessions) == 1


# --- Stripe failing -----------------------------------------------------------------------


def test_a_stripe_server_error_is_retried_and_then_succeeds(fake_stripe):
    fake_stripe.fail_next("500", path=SESSIONS)

    payment = link()

    assert [r.status for r in creates(fake_stripe)] == [500, 200]
    assert payment.status == "open"
    assert len(fake_stripe.sessions) == 1


def test_a_short_rate_limit_is_retried(fake_stripe):
    fake_stripe.fail_next("429", times=2, path=SESSIONS)

    link()

    assert [r.status for r in creates(fake_stripe)] == [429, 429, 200]


def test_a_persistent_rate_limit_becomes_a_clear_provider_error_after_the_retries(fake_stripe, settings):
    fake_stripe.fail_next("429", times=10, path=SESSIONS)

    with pytest.raises(PaymentProviderError, match="rate limiting") as info:
        link()

    assert status_for(info.value) == 503
    assert len(creates(fake_stripe)) == settings.stripe_max_retries + 1
    assert payments_in_db() == []


def test_stripe_down_becomes_a_provider_error_and_the_status_shows_it(fake_stripe):
    fake_stripe.fail_next("503", times=10)

    with pytest.raises(PaymentProviderError, match="internal error"):
        link()

    with read_session() as session:
        status = session.get(IntegrationStatus, "stripe")
    assert status is not None and status.ok is False
    assert "internal error" in status.last_error


def test_a_working_call_marks_stripe_healthy(fake_stripe):
    link()

    with read_session() as session:
        status = session.get(IntegrationStatus, "stripe")
    assert status.ok is True and status.last_ok_at is not None


# --- check-stripe and dashboard links --------------------------------------------------------


def test_check_stripe_reports_a_healthy_setup_with_prices(fake_stripe):
    checks = {c.subject: c for c in payments.check_stripe()}

    assert all(c.ok for c in checks.values()), checks
    assert checks["STANDARD_PRICE_ID_60"].detail == "price_standard_60: €45.00 per lesson"
    assert "test mode" in checks["STRIPE_API_KEY"].detail


def test_check_stripe_names_what_is_missing_or_wrong(fake_stripe, configure):
    fake_stripe.add_price("price_archived", 4500, active=False)
    configure(
        weekend_price_id_90=None,
        standard_price_id_90="price_archived",
        standard_price_id_60="price_nope",
        stripe_webhook_secret=None,
        checkout_cancel_url=None,
    )

    failed = {c.subject: c.detail for c in payments.check_stripe() if not c.ok}

    assert set(failed) == {
        "WEEKEND_PRICE_ID_90",
        "STANDARD_PRICE_ID_90",
        "STANDARD_PRICE_ID_60",
        "STRIPE_WEBHOOK_SECRET",
        "CHECKOUT_CANCEL_URL",
    }
    assert "archived" in failed["STANDARD_PRICE_ID_90"]
    assert "No such price" in failed["STANDARD_PRICE_ID_60"]


def test_check_stripe_with_a_bad_key_says_so_and_never_prints_it(fake_stripe, configure):
    configure(stripe_api_key="sk_test_not_the_right_one_42")

    checks = payments.check_stripe()

    assert [c.ok for c in checks if c.subject == "STRIPE_API_KEY"] == [False]
    assert all("not_the_right_one" not in c.detail for c in checks)


@pytest.mark.parametrize(
    ("livemode", "intent", "expected"),
    [
        (False, None, "https://dashboard.stripe.com/test/search?query=cs_test_1"),
        (True, None, "https://dashboard.stripe.com/search?query=cs_test_1"),
        (False, "pi_1", "https://dashboard.stripe.com/test/payments/pi_1"),
    ],
)
def test_dashboard_links_point_at_the_payment_in_the_right_mode(livemode, intent, expected):
    assert payments.stripe_dashboard_url("cs_test_1", livemode, payment_intent_id=intent) == expected


def test_dashboard_mode_follows_the_session_id_and_demo_rows_get_no_link():
    assert payments.stripe_dashboard_url("cs_live_9") == "https://dashboard.stripe.com/search?query=cs_live_9"
    assert payments.stripe_dashboard_url("cs_test_9").startswith("https://dashboard.stripe.com/test/")
    assert payments.stripe_dashboard_url("cs_demo_00011234") is None
