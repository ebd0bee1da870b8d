"""Specification of Stripe webhooks (core/payments.py): signatures, what each event does to
payments, lessons, the customer's attributes and the outbox, and that repeats, reordering,
crashes and concurrent deliveries never change anything twice.

Lessons are booked through core.booking with the 'new' profile, which requires payment, so each
booking holds its slot and creates a real Checkout Session in the fake Stripe. The clock stands
at Monday 30 November 2026, 09:00 in Amsterdam; the lesson is Tuesday 1 December, 10:00.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import stripe
from sqlmodel import select

from core import lessons, worker
from core.booking import book_slot
from core.config import set_settings
from core.db import read_session, write_session
from core.errors import (
    LesplannerError,
    NotFound,
    SlotTaken,
    WebhookNotConfigured,
    WebhookSignatureInvalid,
)
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
    IntegrationStatus,
    Job,
    Lesson,
    OutboxMessage,
    Payment,
    StripeEvent,
    Tutor,
)
from core.payments import WebhookHandlingFailed, handle_webhook, retry_failed_event
from core.segments import detect_segment
from receiver.errors import status_for
from tests.conftest import AMS
from tests.fakes.stripe_fixtures import *  # noqa: F403
from tests.fakes.stripe_fixtures import WEBHOOK_SECRET

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=AMS)  # Monday
TUE_10 = datetime(2026, 12, 1, 10, 0, tzinfo=AMS)


@pytest.fixture(autouse=True)
def world(engine, frozen_now):
    frozen_now(NOW)
    with write_session() as session:
        session.add(Tutor(name="Anna", email="anna@lesplanner.test", calendar_id="anna-calendar"))
    return engine


def book(
    conversation: str = "conv-1", start: datetime = TUE_10, contact: str | None = None
) -> tuple[int, str]:
    """Hold a lesson; returns (lesson id, checkout session id)."""
    contact = contact or conversation.replace("conv", "contact")
    result = book_slot(
        conversation,
        start,
        start + timedelta(hours=1),
        "Wiskunde",
        contact_id=contact,
        contact_info={"name": "Sanne"},
    )
    assert result.lesson.status == HELD and result.payment is not None
    return result.lesson.id, result.payment.checkout_session_id


@pytest.fixture
def held(fake_stripe) -> tuple[int, str]:
    return book()


def lesson(lesson_id: int) -> Lesson:
    with read_session() as session:
        return session.get(Lesson, lesson_id)


def payment(session_id: str) -> Payment:
    with read_session() as session:
        return session.exec(select(Payment).where(Payment.checkout_session_id == session_id)).one()


def messages(conversation: str = "conv-1") -> list[str]:
    with read_session() as session:
        rows = session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.conversation_id == conversation)
            .order_by(OutboxMessage.id)
        ).all()
        return [m.key for m in rows]


def stored_event(event_id: str) -> StripeEvent | None:
    with read_session() as session:
        return session.get(StripeEvent, event_id)


def busy(start: datetime, end: datetime) -> None:
    with write_session() as session:
        tutor = session.exec(select(Tutor)).first()
        session.add(BusyBlock(tutor_id=tutor.id, start=start, end=end, reason="private"))


def expired_snapshot(fake, session_id: str) -> dict:
    """The checkout.session.expired event Stripe would send for this session."""
    return fake.event(
        "checkout.session.expired", {**fake.sessions[session_id], "status": "expired", "url": None}
    )


# --- signatures -------------------------------------------------------------------------------


def test_a_correctly_signed_event_is_accepted_and_stored(fake_stripe, held, signed_delivery):
    event = fake_stripe.complete_session(held[1])

    result = signed_delivery(event)

    assert (result.event_id, result.type, result.status) == (
        event["id"],
        "checkout.session.completed",
        "processed",
    )
    row = stored_event(event["id"])
    assert row.status == "processed" and row.attempts == 1
    assert row.processed_at == NOW
    assert json.loads(row.payload) == event


def _wrong_secret(body, header):
    return body, fake_header(body, "whsec_someone_elses_secret")


def _tampered(body, header):
    return body.replace(b'"amount_total": 4500', b'"amount_total": 1'), header


def _old(body, header):
    return body, fake_header(body, WEBHOOK_SECRET, timestamp=int(time.time()) - 301)


def _future(body, header):
    return body, fake_header(body, WEBHOOK_SECRET, timestamp=int(time.time()) + 3600)


def _just_too_far_ahead(body, header):
    return body, fake_header(body, WEBHOOK_SECRET, timestamp=int(time.time()) + 310)


def _missing(body, header):
    return body, None


def _empty(body, header):
    return body, ""


def _blank(body, header):
    return body, "   "


def _garbled(body, header):
    return body, "t=abc,v0=123"


def fake_header(body: bytes, secret: str, timestamp: int | None = None) -> str:
    return stripe.WebhookSignature.generate_signature_header(body.decode(), secret, timestamp=timestamp)


def _no_v1_signature(body, header):
    return body, f"t={int(time.time())},v0=0123456789abcdef"


MISMATCH = (
    "The Stripe-Signature does not match the body: the body was changed, or "
    "STRIPE_WEBHOOK_SECRET is not this endpoint's signing secret."
)
TOO_OLD = (
    "The Stripe-Signature timestamp is more than 300 seconds old: a replayed or badly delayed "
    "delivery (or this server's clock is wrong)."
)
AHEAD = (
    "The Stripe-Signature timestamp is more than 300 seconds in the future: not a delivery Stripe "
    "just made (or this server's clock is wrong)."
)
MISSING = "The Stripe-Signature header is missing; this endpoint only accepts webhooks signed by Stripe."
MALFORMED = "The Stripe-Signature header is malformed (expected t=…,v1=…)."


@pytest.mark.parametrize(
    ("spoil", "says"),
    [
        (_wrong_secret, MISMATCH),
        (_tampered, MISMATCH),
        (_old, TOO_OLD),
        (_future, AHEAD),
        (_just_too_far_ahead, AHEAD),
        (_missing, MISSING),
        (_empty, MISSING),
        (_blank, MISSING),
        (_garbled, MALFORMED),
        (_no_v1_signature, MALFORMED),
    ],
)
def test_a_bad_or_missing_signature_is_refused_and_nothing_is_stored(fake_stripe, held, spoil, says):
    """Each refusal says what is wrong in the words finance reads on Integraties."""
    event = fake_stripe.complete_session(held[1])
    body, header = spoil(*fake_stripe.signed(event, WEBHOOK_SECRET))

    with pytest.raises(WebhookSignatureInvalid) as info:
        handle_webhook(body, header)

    assert info.value.message == says
    assert status_for(info.value) == 400
    assert stored_event(event["id"]) is None
    assert payment(held[1]).status == "open"
    assert WEBHOOK_SECRET not in info.value.message


def test_a_timestamp_within_five_minutes_is_accepted(fake_stripe, held):
    event = fake_stripe.complete_session(held[1])
    body = fake_stripe.payload(event)

    assert (
        handle_webhook(body, fake_header(body, WEBHOOK_SECRET, int(time.time()) - 290)).status == "processed"
    )


@pytest.mark.parametrize("ahead", [1, 60, 290])
def test_a_timestamp_slightly_ahead_is_accepted_as_clock_skew(fake_stripe, held, ahead):
    event = fake_stripe.complete_session(held[1])
    body = fake_stripe.payload(event)

    assert (
        handle_webhook(body, fake_header(body, WEBHOOK_SECRET, int(time.time()) + ahead)).status
        == "processed"
    )


def test_a_timestamp_exactly_five_minutes_ahead_is_still_accepted(fake_stripe, held, monkeypatch):
    """Only more than the tolerance ahead is refused (the clock read as Stripe's check reads it)."""
    now = int(time.time())
    monkeypatch.setattr(time, "time", lambda: now)
    event = fake_stripe.complete_session(held[1])
    body = fake_stripe.payload(event)

    assert handle_webhook(body, fake_header(body, WEBHOOK_SECRET, now + 300)).status == "processed"


def test_a_far_future_timestamp_is_refused_even_with_other_valid_looking_parts(fake_stripe, held):
    """Stripe's header may carry several v1 signatures (secret rotation); the one timestamp they
    all sign is what counts."""
    event = fake_stripe.complete_session(held[1])
    body = fake_stripe.payload(event)
    t = int(time.time()) + 3600
    signature = hmac.new(WEBHOOK_SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()

    with pytest.raises(WebhookSignatureInvalid, match="in the future"):
        handle_webhook(body, f"t={t},v1={'0' * 64},v1={signature},v0=abc")
    with pytest.raises(WebhookSignatureInvalid, match="in the future"):  # the signed t is the first
        handle_webhook(body, f"t={t},v1={signature},t={int(time.time())}")

    assert stored_event(event["id"]) is None


def test_without_a_webhook_secret_every_event_is_refused(fake_stripe, held, configure):
    event = fake_stripe.complete_session(held[1])
    body, header = fake_stripe.signed(event, WEBHOOK_SECRET)
    configure(stripe_webhook_secret=None)

    with pytest.raises(WebhookNotConfigured) as info:
        handle_webhook(body, header)

    assert info.value.message == (
        "Stripe webhooks are not configured: set STRIPE_WEBHOOK_SECRET to the endpoint's signing "
        "secret (whsec_…); until then every webhook is refused."
    )

    assert status_for(info.value) == 503
    assert stored_event(event["id"]) is None


NOT_JSON = "The webhook body is not a Stripe event (not a JSON object)."
NO_ID_AND_TYPE = "The webhook body is not a Stripe event (it has no id and type)."


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b"not json at all", NOT_JSON),
        (b"\xff\xfe", NOT_JSON),
        (b"[1, 2, 3]", NO_ID_AND_TYPE),
        (b'{"hello": "world"}', NO_ID_AND_TYPE),
        (b'{"id": "evt_1"}', NO_ID_AND_TYPE),
        (b'{"type": "charge.refunded"}', NO_ID_AND_TYPE),
        (b'{"id": 1, "type": "charge.refunded"}', NO_ID_AND_TYPE),
    ],
)
def test_a_signed_body_that_is_not_a_stripe_event_is_refused(fake_stripe, body, says):
    # Signed by hand: Stripe's scheme is HMAC-SHA256 over "<t>.<raw body>".
    t = int(time.time())
    signature = hmac.new(WEBHOOK_SECRET.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()

    with pytest.raises(WebhookSignatureInvalid) as info:
        handle_webhook(body, f"t={t},v1={signature}")

    assert info.value.message == says
    assert status_for(info.value) == 400
    with read_session() as session:
        assert session.exec(select(StripeEvent)).all() == []


def test_refused_deliveries_show_on_the_webhook_status(fake_stripe, held):
    event = fake_stripe.complete_session(held[1])
    body, _ = fake_stripe.signed(event, WEBHOOK_SECRET)

    with pytest.raises(WebhookSignatureInvalid):
        handle_webhook(body, fake_header(body, "whsec_wrong"))

    with read_session() as session:
        status = session.get(IntegrationStatus, "webhook")
    assert status.ok is False and "does not match" in status.last_error


# --- what each event does ------------------------------------------------------------------


def test_a_paid_checkout_confirms_the_lesson_and_tells_the_customer_once(fake_stripe, held, signed_delivery):
    lesson_id, session_id = held
    event = fake_stripe.complete_session(session_id)

    result = signed_delivery(event)

    paid = payment(session_id)
    stripe_session = fake_stripe.sessions[session_id]
    assert paid.status == "paid"
    assert paid.paid_at == NOW
    assert paid.payment_intent_id == stripe_session["payment_intent"]
    assert (paid.amount, paid.currency) == (4500, "eur")
    confirmed = lesson(lesson_id)
    assert confirmed.status == CONFIRMED and confirmed.calendar_sync == "pending"
    assert messages() == ["payment_success_message"]
    assert f"Lesson {lesson_id} is confirmed" in result.detail

    worker.drain()  # after commit: the calendar job checks the slot, makes the event, confirms

    confirmed = lesson(lesson_id)
    assert confirmed.calendar_sync == "synced" and confirmed.calendar_event_id
    assert messages() == ["payment_success_message", "booking_confirmed"]


def test_a_payment_sets_the_seeds_conversation_and_contact_attributes(fake_stripe, held, signed_delivery):
    signed_delivery(fake_stripe.complete_session(held[1]))

    with read_session() as session:
        conversation = session.get(Conversation, "conv-1")
        contact = session.get(Contact, "contact-1")
    intent = fake_stripe.sessions[held[1]]["payment_intent"]
    assert conversation.attributes == {
        "payment_completed": True,
        "payment_intent_id": intent,
        "payment_amount": 4500,
        "payment_currency": "eur",
    }
    assert contact.attributes["has_paid_lesson"] is True
    assert contact.attributes["has_completed_intake"] is True
    assert contact.attributes["lesson_booked"] is True
    assert contact.attributes["customer_since"] == "2026-11-30T09:00:00+01:00"


def test_after_paying_the_customer_is_an_existing_customer(fake_stripe, held, signed_delivery):
    assert detect_segment("contact-1") == "new"

    signed_delivery(fake_stripe.complete_session(held[1]))

    assert detect_segment("contact-1") == "existing"


def test_customer_since_is_never_overwritten(fake_stripe, held, signed_delivery):
    with write_session() as session:
        contact = session.get(Contact, "contact-1")
        contact.attributes = {**contact.attributes, "customer_since": "2024-09-01T10:00:00+02:00"}

    signed_delivery(fake_stripe.complete_session(held[1]))

    with read_session() as session:
        assert session.get(Contact, "contact-1").attributes["customer_since"] == "2024-09-01T10:00:00+02:00"


def test_a_payment_keeps_what_the_conversation_already_knew(fake_stripe, held, signed_delivery):
    with write_session() as session:
        session.get(Conversation, "conv-1").attributes = {"language": "en"}

    signed_delivery(fake_stripe.complete_session(held[1]))

    with read_session() as session:
        attributes = session.get(Conversation, "conv-1").attributes
    assert (attributes["language"], attributes["payment_completed"]) == ("en", True)


def test_a_payment_without_a_contact_makes_the_conversations_contact_a_customer(
    fake_stripe, held, signed_delivery
):
    with write_session() as session:  # e.g. recorded from metadata naming a contact we did not know
        session.exec(select(Payment)).one().contact_id = None

    signed_delivery(fake_stripe.complete_session(held[1]))

    with read_session() as session:
        assert session.get(Contact, "contact-1").attributes["has_paid_lesson"] is True


def test_a_payment_of_no_conversation_or_contact_still_confirms_the_lesson_and_tells_no_one(
    fake_stripe, held, signed_delivery
):
    lesson_id, session_id = held
    with write_session() as session:  # recorded from metadata naming neither one we know
        row = session.exec(select(Payment)).one()
        row.conversation_id, row.contact_id = None, None

    result = signed_delivery(fake_stripe.complete_session(session_id))

    assert (result.status, payment(session_id).status, lesson(lesson_id).status) == (
        "processed",
        "paid",
        CONFIRMED,
    )
    assert "payment_success_message" not in messages()


def test_a_checkout_completed_with_no_payment_required_confirms_the_lesson(
    fake_stripe, held, signed_delivery
):
    """A 100% promotion code: Stripe completes the session with nothing to pay."""
    lesson_id, session_id = held
    event = fake_stripe.complete_session(session_id)
    event["data"]["object"].update(payment_status="no_payment_required", amount_total=0)

    signed_delivery(event)

    assert (payment(session_id).status, payment(session_id).amount) == ("paid", 0)
    assert lesson(lesson_id).status == CONFIRMED


def test_a_payment_in_another_currency_records_the_currency_stripe_charged(
    fake_stripe, held, signed_delivery
):
    """Stripe's adaptive pricing may charge a visitor in their own currency."""
    event = fake_stripe.complete_session(held[1])
    event["data"]["object"].update(amount_total=5200, currency="usd")

    signed_delivery(event)

    assert (payment(held[1]).amount, payment(held[1]).currency) == (5200, "usd")


def test_a_delayed_payment_method_keeps_the_hold_until_the_money_arrives(fake_stripe, held, signed_delivery):
    lesson_id, session_id = held

    result = signed_delivery(fake_stripe.complete_session(session_id, paid=False))

    assert result.status == "processed"
    assert result.detail == (
        "Checkout completed but the payment is still processing (payment_status unpaid); waiting "
        "for checkout.session.async_payment_succeeded or _failed. "
        f"Lesson {lesson_id} keeps its slot until {(NOW + timedelta(hours=72)).astimezone(UTC).isoformat()}."
    )
    waiting = payment(session_id)
    assert waiting.status == "processing" and waiting.payment_intent_id
    assert lesson(lesson_id).status == AWAITING_PAYMENT
    assert lesson(lesson_id).hold_expires_at == NOW + timedelta(hours=72)
    assert messages()[-1] == "payment_processing"
    assert "payment_success_message" not in messages()

    signed_delivery(fake_stripe.async_succeed(session_id))

    assert payment(session_id).status == "paid"
    assert lesson(lesson_id).status == CONFIRMED
    assert messages().count("payment_success_message") == 1


def test_a_delayed_payment_keeps_the_slot_past_the_checkout_window(
    fake_stripe, held, signed_delivery, frozen_now
):
    """Issue 11, reproduction 3: SEPA/Bancontact complete the checkout unpaid; the money comes
    a day later. The slot must not go to someone else at +31 minutes meanwhile."""
    lesson_id, session_id = held
    signed_delivery(fake_stripe.complete_session(session_id, paid=False))

    frozen_now(NOW + timedelta(minutes=31))
    worker.drain()
    assert lesson(lesson_id).status == AWAITING_PAYMENT
    with pytest.raises(SlotTaken):
        book("conv-2")  # the slot is still this customer's

    frozen_now(NOW + timedelta(hours=26))
    signed_delivery(fake_stripe.async_succeed(session_id))
    worker.drain()

    assert lesson(lesson_id).status == CONFIRMED and lesson(lesson_id).calendar_sync == "synced"
    assert "hold_expired" not in messages() and "slot_lost" not in messages()


def test_a_delayed_payment_that_never_arrives_frees_the_slot_after_the_async_hold(
    fake_stripe, held, signed_delivery, frozen_now
):
    lesson_id, session_id = held
    signed_delivery(fake_stripe.complete_session(session_id, paid=False))

    frozen_now(NOW + timedelta(hours=72))  # exactly at the end of the hold: released
    worker.drain()

    assert lesson(lesson_id).status == EXPIRED
    assert messages()[-1] == "hold_expired"


def test_a_failed_delayed_payment_releases_the_slot_and_tells_the_customer(
    fake_stripe, held, signed_delivery
):
    lesson_id, session_id = held
    signed_delivery(fake_stripe.complete_session(session_id, paid=False))

    signed_delivery(fake_stripe.async_fail(session_id))

    assert payment(session_id).status == "failed"
    assert lesson(lesson_id).status == CANCELLED
    assert messages()[-1] == "payment_failed"


def test_an_expired_checkout_releases_the_slot_for_someone_else(fake_stripe, held, signed_delivery):
    lesson_id, session_id = held

    signed_delivery(fake_stripe.expire_session(session_id))

    assert payment(session_id).status == "expired"
    assert lesson(lesson_id).status == EXPIRED
    assert messages()[-1] == "hold_expired"
    other_lesson, _ = book("conv-2")
    assert (lesson(other_lesson).status, lesson(other_lesson).start) == (HELD, TUE_10)


def second_link(lesson_id: int, status: str, expires_in: timedelta | None) -> None:
    """Another payment for the same lesson (a new link made after the first one)."""
    with write_session() as session:
        first = session.exec(select(Payment).where(Payment.lesson_id == lesson_id)).first()
        session.add(
            Payment(
                checkout_session_id="cs_test_second_link",
                order_id=first.order_id + "-2",
                conversation_id=first.conversation_id,
                contact_id=first.contact_id,
                lesson_id=lesson_id,
                minutes=first.minutes,
                price_id=first.price_id,
                amount=first.amount,
                currency=first.currency,
                status=status,
                expires_at=NOW + expires_in if expires_in is not None else None,
            )
        )


@pytest.mark.parametrize(
    ("status", "expires_in", "stays_held"),
    [
        ("open", timedelta(minutes=20), True),  # the customer may still pay the new link
        ("open", None, True),  # a link without an expiry counts as live
        ("processing", timedelta(minutes=-5), True),  # the money is on its way
        ("paid", None, True),
        ("open", timedelta(minutes=-1), False),  # that link ran out too
        ("open", timedelta(0), False),  # ... at this very moment
        ("failed", timedelta(minutes=20), False),
        ("expired", timedelta(minutes=20), False),
    ],
)
def test_a_first_link_that_expires_keeps_the_lesson_while_another_payment_counts(
    fake_stripe, held, signed_delivery, status, expires_in, stays_held
):
    lesson_id, session_id = held
    second_link(lesson_id, status, expires_in)

    result = signed_delivery(fake_stripe.expire_session(session_id))

    assert payment(session_id).status == "expired"
    if stays_held:
        assert lesson(lesson_id).status == HELD
        assert result.detail == (
            f"Payment {session_id} is expired. Lesson {lesson_id} stays held: it has another payment link."
        )
    else:
        assert lesson(lesson_id).status == EXPIRED
        assert result.detail == f"Payment {session_id} is expired. Lesson {lesson_id} released (expired)."


def test_another_lessons_open_link_does_not_keep_an_expired_lesson_held(fake_stripe, held, signed_delivery):
    lesson_id, session_id = held
    book("conv-2", TUE_10 + timedelta(hours=2))  # someone else's lesson, its link still open

    result = signed_delivery(fake_stripe.expire_session(session_id))

    assert lesson(lesson_id).status == EXPIRED
    assert result.detail == f"Payment {session_id} is expired. Lesson {lesson_id} released (expired)."


@pytest.mark.parametrize("type_", ["checkout.session.expired", "checkout.session.async_payment_failed"])
def test_an_expired_or_failed_checkout_not_made_by_lesplanner_is_ignored_with_the_reason(
    fake_stripe, signed_delivery, type_
):
    foreign = {"id": "cs_test_foreign", "object": "checkout.session", "status": "expired", "metadata": {}}

    result = signed_delivery(fake_stripe.event(type_, foreign))

    assert (result.status, result.detail) == (
        "ignored",
        "Checkout Session cs_test_foreign was not created by Lesplanner (no Payment for it here, "
        "and no Lesplanner marker in its metadata).",
    )


def test_a_full_refund_marks_the_payment_refunded_and_tells_the_customer_once(
    fake_stripe, held, signed_delivery
):
    """The refund cancels the lesson still to come; the customer hears of the refund only, not
    also of a cancellation."""
    lesson_id, session_id = held
    signed_delivery(fake_stripe.complete_session(session_id))

    result = signed_delivery(fake_stripe.refund(session_id))

    assert result.status == "processed"
    assert payment(session_id).status == "refunded"
    assert lesson(lesson_id).status == CANCELLED
    assert messages() == ["payment_success_message", "refund_issued"]


def test_a_full_refund_once_the_lesson_has_begun_leaves_the_lesson_as_it_is(
    fake_stripe, held, signed_delivery, frozen_now
):
    """Only lessons still to come are cancelled by a refund; one starting this very minute is
    being given."""
    lesson_id, session_id = held
    signed_delivery(fake_stripe.complete_session(session_id))
    frozen_now(TUE_10)

    signed_delivery(fake_stripe.refund(session_id))

    assert payment(session_id).status == "refunded"
    assert lesson(lesson_id).status == CONFIRMED


def test_a_partial_refund_records_the_amount_and_the_rest_completes_it(fake_stripe, held, signed_delivery):
    """DESIGN: charge.refunded → refunded or partially_refunded with the amount."""
    session_id = held[1]
    signed_delivery(fake_stripe.complete_session(session_id))

    partial = signed_delivery(fake_stripe.refund(session_id, amount=1000))

    assert partial.status == "processed"
    assert partial.detail == f"Payment {session_id}: 1000 of 4500 eur refunded."
    assert (payment(session_id).status, payment(session_id).refunded_amount) == ("partially_refunded", 1000)
    assert lesson(held[0]).status == CONFIRMED  # a partial refund only records the money
    assert "refund_issued" not in messages()
    signed_delivery(fake_stripe.events[-1])  # the same event again changes nothing
    assert payment(session_id).refunded_amount == 1000
    # Another event saying the same total (Stripe sends charge.refunded and charge.updated-like
    # snapshots out of order) records nothing new.
    again = fake_stripe.event("charge.refunded", fake_stripe.events[-1]["data"]["object"])
    assert signed_delivery(again).detail == f"Payment {session_id}: refund of 1000 already recorded."

    rest = signed_delivery(fake_stripe.refund(session_id))

    assert rest.status == "processed"
    assert (payment(session_id).status, payment(session_id).refunded_amount) == ("refunded", 4500)


def test_a_refund_of_a_payment_lesplanner_does_not_know_is_ignored(fake_stripe, signed_delivery):
    charge = {
        "id": "ch_other",
        "object": "charge",
        "payment_intent": "pi_other",
        "refunded": True,
        "amount": 100,
        "amount_refunded": 100,
        "currency": "eur",
    }

    result = signed_delivery(fake_stripe.event("charge.refunded", charge))

    assert (result.status, result.detail) == ("ignored", "No Lesplanner payment has payment intent pi_other.")
    without = signed_delivery(fake_stripe.event("charge.refunded", {**charge, "payment_intent": None}))
    assert without.detail == "No Lesplanner payment has payment intent (none)."


def test_a_full_refund_without_an_amount_records_the_whole_payment(fake_stripe, held, signed_delivery):
    session_id = held[1]
    signed_delivery(fake_stripe.complete_session(session_id))
    charge = dict(fake_stripe.refund(session_id)["data"]["object"])
    del charge["amount_refunded"]

    signed_delivery(fake_stripe.event("charge.refunded", charge))

    assert (payment(session_id).status, payment(session_id).refunded_amount) == ("refunded", 4500)


def test_a_refund_event_without_an_amount_never_invents_one(fake_stripe, held, signed_delivery):
    """A partial refund that says no amount records nothing; a full one of a payment whose amount
    is unknown too records 0, not a made-up cent."""
    session_id = held[1]
    signed_delivery(fake_stripe.complete_session(session_id))
    partial = dict(fake_stripe.refund(session_id, amount=1000)["data"]["object"])
    del partial["amount_refunded"]

    result = signed_delivery(fake_stripe.event("charge.refunded", partial))

    assert result.detail == f"Payment {session_id}: refund of 0 already recorded."
    assert (payment(session_id).status, payment(session_id).refunded_amount) == ("paid", 0)

    with write_session() as session:  # as if recorded from metadata without amount_total
        session.exec(select(Payment)).one().amount = None
    signed_delivery(fake_stripe.event("charge.refunded", {**partial, "refunded": True}))

    assert (payment(session_id).status, payment(session_id).refunded_amount) == ("refunded", 0)


def test_a_partial_refund_without_a_currency_names_only_the_amounts(fake_stripe, held, signed_delivery):
    """The detail finance reads on a retry says no 'None' (and leaves no gap) for a currency
    Stripe left out."""
    session_id = held[1]
    signed_delivery(fake_stripe.complete_session(session_id))
    charge = dict(fake_stripe.refund(session_id, amount=1000)["data"]["object"])
    del charge["currency"]

    result = signed_delivery(fake_stripe.event("charge.refunded", charge))

    assert result.detail == f"Payment {session_id}: 1000 of 4500 refunded."
    assert payment(session_id).refunded_amount == 1000


@pytest.mark.parametrize("type_", ["payment_intent.succeeded", "customer.created", "refund.created"])
def test_event_types_lesplanner_does_not_act_on_are_stored_as_ignored(fake_stripe, signed_delivery, type_):
    event = fake_stripe.event(type_, {"id": "obj_1", "object": type_.split(".")[0]})

    result = signed_delivery(event)

    assert result.status == "ignored"
    row = stored_event(event["id"])
    assert row.status == "ignored" and type_ in row.error


def test_an_event_without_a_type_is_stored_as_ignored_and_untyped(fake_stripe, signed_delivery):
    event = fake_stripe.event("", {"id": "obj_1"})

    result = signed_delivery(event)

    assert (result.type, result.status, result.detail) == (
        "",
        "ignored",
        "Lesplanner does not act on untyped events.",
    )
    assert stored_event(event["id"]).type == ""


def test_a_checkout_session_not_made_by_lesplanner_is_ignored_with_the_reason(fake_stripe, signed_delivery):
    foreign = {
        "id": "cs_test_foreign",
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "metadata": {},
        "amount_total": 999,
        "currency": "eur",
    }

    result = signed_delivery(fake_stripe.event("checkout.session.completed", foreign))

    assert result.status == "ignored" and "not created by Lesplanner" in result.detail
    with read_session() as session:
        assert session.exec(select(Payment)).all() == []


def test_another_systems_session_with_look_alike_metadata_is_ignored(fake_stripe, signed_delivery):
    """Another system on the same Stripe account (the old bot made links with these very keys)
    must not create payments, conversations or contacts here: only sessions Lesplanner made
    carry its `created_by` marker."""
    look_alike = {
        "id": "cs_test_old_bot",
        "object": "checkout.session",
        "status": "complete",
        "payment_status": "paid",
        "client_reference_id": "order-77",
        "amount_total": 4500,
        "currency": "eur",
        "metadata": {
            "order_id": "order-77",
            "conversation_id": "conv-77",
            "contact_id": "contact-77",
            "minutes": "60",
        },
    }

    result = signed_delivery(fake_stripe.event("checkout.session.completed", look_alike))

    assert result.status == "ignored" and "not created by Lesplanner" in result.detail
    with read_session() as session:
        assert session.exec(select(Payment)).all() == []
        assert session.get(Conversation, "conv-77") is None and session.get(Contact, "contact-77") is None


def test_a_session_of_ours_without_a_stored_payment_is_recorded_from_its_metadata(
    fake_stripe, held, signed_delivery, frozen_now, caplog
):
    """As it was made: the same order, conversation, contact, lesson, segment, length, price,
    amount, expiry and creation time (Stripe's), updated when the event came; the log says so."""
    lesson_id, session_id = held
    made = payment(session_id)
    with write_session() as session:  # as if the answer to the create call had been lost
        session.delete(session.exec(select(Payment)).one())
    frozen_now(NOW + timedelta(minutes=10))

    with caplog.at_level("INFO", logger="lesplanner.payments"):
        signed_delivery(fake_stripe.complete_session(session_id))

    recovered = payment(session_id)
    fields = (
        "order_id conversation_id contact_id lesson_id segment minutes price_id kind quantity "
        "series_id amount currency expires_at created_at"
    ).split()
    assert {f: getattr(recovered, f) for f in fields} == {f: getattr(made, f) for f in fields}
    assert (recovered.order_id, recovered.lesson_id, recovered.price_id) == (
        f"lesson-{lesson_id}",
        lesson_id,
        "price_standard_60",
    )
    assert (recovered.status, recovered.updated_at) == ("paid", NOW + timedelta(minutes=10))
    assert lesson(lesson_id).status == CONFIRMED
    assert f"recorded Checkout Session '{session_id}' from its metadata (order 'lesson-{lesson_id}')" in (
        caplog.messages
    )


@pytest.mark.parametrize(
    ("metadata", "recorded"),
    [
        # a conversation seen for the first time is registered with the contact
        ({"conversation_id": "conv-new"}, ("conv-new", "contact-1", True, 60, "price_standard_60")),
        ({"conversation_id": "conv-new", "contact_id": None}, (None, None, True, 60, "price_standard_60")),
        ({"contact_id": "contact-unknown"}, ("conv-1", None, True, 60, "price_standard_60")),
        ({"lesson_id": "999"}, ("conv-1", "contact-1", False, 60, "price_standard_60")),
        ({"minutes": None}, ("conv-1", "contact-1", True, 0, "unknown")),
        ({"segment": "weekend"}, ("conv-1", "contact-1", True, 60, "price_weekend_60")),  # its price
        # not whole numbers: "²" passes str.isdigit() but int() refuses it
        ({"lesson_id": "²"}, ("conv-1", "contact-1", False, 60, "price_standard_60")),
        ({"minutes": "6²"}, ("conv-1", "contact-1", True, 0, "unknown")),
        ({"minutes": "-60"}, ("conv-1", "contact-1", True, 0, "unknown")),
    ],
)
def test_metadata_naming_what_lesplanner_does_not_know_is_recorded_without_it(
    fake_stripe, held, signed_delivery, metadata, recorded
):
    lesson_id, session_id = held
    with write_session() as session:
        session.delete(session.exec(select(Payment)).one())
    event = fake_stripe.complete_session(session_id)
    md = event["data"]["object"]["metadata"]
    md.update(metadata)
    event["data"]["object"]["metadata"] = {k: v for k, v in md.items() if v is not None}

    signed_delivery(event)

    recovered = payment(session_id)
    assert (
        recovered.conversation_id,
        recovered.contact_id,
        recovered.lesson_id == lesson_id,
        recovered.minutes,
        recovered.price_id,
    ) == recorded
    with read_session() as session:
        assert session.get(Conversation, recovered.conversation_id or "conv-1") is not None


def test_a_lost_payment_whose_price_is_no_longer_configured_is_recorded_with_price_unknown(
    fake_stripe, held, signed_delivery, settings
):
    session_id = held[1]
    with write_session() as session:
        session.delete(session.exec(select(Payment)).one())
    set_settings(settings.model_copy(update={"standard_price_id_60": ""}))

    signed_delivery(fake_stripe.complete_session(session_id))

    assert (payment(session_id).price_id, payment(session_id).status) == ("unknown", "paid")


@pytest.mark.parametrize(("stripe_says", "status"), [("unpaid", "processing"), ("expired", "expired")])
def test_a_session_of_ours_recorded_from_an_event_without_a_creation_time_is_dated_now(
    fake_stripe, held, signed_delivery, stripe_says, status
):
    """The Payment row was lost and the event that brings the session back (a delayed payment
    method's completion, or the expiry) carries no `created`: the payment is dated when it came,
    with the session's amount."""
    session_id = held[1]
    with write_session() as session:
        session.delete(session.exec(select(Payment)).one())
    if stripe_says == "unpaid":
        event = fake_stripe.complete_session(session_id, paid=False)
    else:
        event = fake_stripe.expire_session(session_id)
    del event["data"]["object"]["created"]

    signed_delivery(event)

    recorded = payment(session_id)
    assert (recorded.status, recorded.created_at, recorded.amount, recorded.currency) == (
        status,
        NOW,
        4500,
        "eur",
    )


def test_paid_after_the_slot_was_taken_needs_a_reschedule_not_a_confirmation(
    fake_stripe, held, signed_delivery
):
    lesson_id, session_id = held
    busy(TUE_10, TUE_10 + timedelta(hours=1))  # the tutor blocked the time meanwhile

    signed_delivery(fake_stripe.complete_session(session_id))
    worker.drain()  # the calendar job finds the tutor's own event in the slot

    assert payment(session_id).status == "paid"
    assert lesson(lesson_id).status == NEEDS_RESCHEDULE
    assert messages() == ["payment_success_message", "slot_lost"]  # never "booked for Tuesday"
    with read_session() as session:
        alert = session.exec(select(AuditLog).where(AuditLog.action == "finance.alert")).one()
    assert alert.entity_id == str(lesson_id)


# --- repeats and reordering -------------------------------------------------------------------


def test_the_same_event_twice_is_handled_once(fake_stripe, held, signed_delivery):
    event = fake_stripe.complete_session(held[1])

    first, second = signed_delivery(event), signed_delivery(event)

    assert (first.status, second.status) == ("processed", "duplicate")
    assert (second.event_id, second.type, second.detail) == (
        event["id"],
        "checkout.session.completed",
        "already processed",
    )
    worker.drain()
    assert messages().count("payment_success_message") == 1
    assert messages().count("booking_confirmed") == 1
    assert stored_event(event["id"]).attempts == 1


def test_a_second_event_for_an_already_paid_session_changes_nothing(fake_stripe, held, signed_delivery):
    completed = fake_stripe.complete_session(held[1])
    signed_delivery(completed)
    again = fake_stripe.event("checkout.session.completed", completed["data"]["object"])  # new event id

    result = signed_delivery(again)

    assert result.status == "processed" and "already paid" in result.detail
    assert messages().count("payment_success_message") == 1


def test_an_expired_event_after_the_payment_changes_nothing(fake_stripe, held, signed_delivery):
    lesson_id, session_id = held
    signed_delivery(fake_stripe.complete_session(session_id))

    result = signed_delivery(expired_snapshot(fake_stripe, session_id))

    assert "changes nothing" in result.detail
    assert payment(session_id).status == "paid"
    assert lesson(lesson_id).status == CONFIRMED
    assert "hold_expired" not in messages()


def test_a_failed_event_after_the_payment_changes_nothing(fake_stripe, held, signed_delivery):
    lesson_id, session_id = held
    signed_delivery(fake_stripe.complete_session(session_id))
    failed = fake_stripe.event("checkout.session.async_payment_failed", fake_stripe.sessions[session_id])

    signed_delivery(failed)

    assert payment(session_id).status == "paid" and lesson(lesson_id).status == CONFIRMED


def test_a_refund_is_final_even_if_an_old_paid_event_arrives_late(fake_stripe, held, signed_delivery):
    session_id = held[1]
    completed = fake_stripe.complete_session(session_id)
    signed_delivery(completed)
    signed_delivery(fake_stripe.refund(session_id))
    late = fake_stripe.event("checkout.session.async_payment_succeeded", completed["data"]["object"])

    signed_delivery(late)

    assert payment(session_id).status == "refunded"


def test_paid_after_the_hold_expired_still_confirms_when_the_slot_is_free(fake_stripe, held, signed_delivery):
    lesson_id, session_id = held
    expired = expired_snapshot(fake_stripe, session_id)
    completed = fake_stripe.complete_session(session_id)
    signed_delivery(expired)  # delivered first, though Stripe created it for a stale view
    assert lesson(lesson_id).status == EXPIRED

    signed_delivery(completed)

    assert payment(session_id).status == "paid"
    assert lesson(lesson_id).status == CONFIRMED


def test_paid_after_the_hold_expired_and_the_slot_went_to_someone_else_needs_a_reschedule(
    fake_stripe, held, signed_delivery
):
    lesson_id, session_id = held
    expired = expired_snapshot(fake_stripe, session_id)
    completed = fake_stripe.complete_session(session_id)
    signed_delivery(expired)
    book("conv-2")  # someone else holds the freed slot

    signed_delivery(completed)

    assert payment(session_id).status == "paid"
    assert lesson(lesson_id).status == NEEDS_RESCHEDULE
    assert "slot_lost" in messages()


def test_the_hold_sweep_and_a_late_payment_agree(fake_stripe, held, signed_delivery, frozen_now):
    from core.booking import expire_holds

    lesson_id, session_id = held
    frozen_now(NOW + timedelta(minutes=31))
    assert expire_holds() == 1

    signed_delivery(fake_stripe.complete_session(session_id))

    assert lesson(lesson_id).status == CONFIRMED
    assert payment(session_id).status == "paid"


# --- failures while handling -------------------------------------------------------------------


@pytest.fixture
def crash_once(monkeypatch):
    """Handling the next `n` paid events crashes inside the transaction (a bug, a lost database
    connection): what must then hold is that nothing half-done stays behind."""
    real = lessons.paid
    left = {"n": 1}

    def arm(n: int = 1) -> None:
        left["n"] = n

    def paid(session, lesson):  # noqa: ANN001, ANN202
        if left["n"] > 0:
            left["n"] -= 1
            raise RuntimeError("the database connection was lost (simulated)")
        return real(session, lesson)

    monkeypatch.setattr(lessons, "paid", paid)
    return arm


def test_a_crash_while_handling_keeps_the_event_as_failed_and_writes_nothing_else(
    fake_stripe, held, signed_delivery, crash_once, caplog
):
    lesson_id, session_id = held
    before = messages()
    crash_once()
    event = fake_stripe.complete_session(session_id)

    with pytest.raises(WebhookHandlingFailed, match="stored as failed") as info:
        signed_delivery(event)

    assert caplog.messages == [  # the log names the event, its type and the cause
        f"Stripe event '{event['id']}' ('checkout.session.completed') failed: "
        "RuntimeError: the database connection was lost (simulated)"
    ]

    assert status_for(info.value) == 500
    row = stored_event(event["id"])
    assert row.status == "failed" and row.attempts == 1
    assert "database connection was lost" in row.error
    assert payment(session_id).status == "open"
    assert lesson(lesson_id).status == HELD
    assert messages() == before
    with read_session() as session:
        assert session.get(Conversation, "conv-1").attributes == {}


def test_the_cause_of_a_failed_event_is_kept_to_a_thousand_characters(
    fake_stripe, held, signed_delivery, monkeypatch
):
    def paid(session, lesson):  # noqa: ANN001, ANN202
        raise ValueError("x" * 1500)

    monkeypatch.setattr(lessons, "paid", paid)
    event = fake_stripe.complete_session(held[1])

    with pytest.raises(WebhookHandlingFailed):
        signed_delivery(event)

    assert stored_event(event["id"]).error == "ValueError: " + "x" * (1000 - len("ValueError: "))


def test_stripes_redelivery_of_a_failed_event_is_handled(fake_stripe, held, signed_delivery, crash_once):
    lesson_id, session_id = held
    crash_once()
    event = fake_stripe.complete_session(session_id)
    with pytest.raises(WebhookHandlingFailed):
        signed_delivery(event)

    result = signed_delivery(event)

    assert result.status == "processed"
    row = stored_event(event["id"])
    assert (row.status, row.attempts, row.error) == ("processed", 2, None)
    assert lesson(lesson_id).status == CONFIRMED
    assert messages().count("payment_success_message") == 1


def test_finance_can_retry_a_failed_event(fake_stripe, held, signed_delivery, crash_once):
    lesson_id, session_id = held
    crash_once()
    event = fake_stripe.complete_session(session_id)
    with pytest.raises(WebhookHandlingFailed):
        signed_delivery(event)

    result = retry_failed_event(event["id"])

    assert result.status == "processed"
    assert payment(session_id).status == "paid"
    assert retry_failed_event(event["id"]).status == "duplicate"


def test_paid_records_what_stripe_charged_and_says_what_changed(fake_stripe, held, signed_delivery):
    """A promotion code in Checkout changes the amount: the payment keeps what was charged."""
    lesson_id, session_id = held
    event = fake_stripe.complete_session(session_id)
    event["data"]["object"].update(amount_total=4000, currency="eur")

    result = signed_delivery(event)

    assert result.detail == f"Payment {session_id} paid (was open). Lesson {lesson_id} is confirmed."
    assert (payment(session_id).amount, payment(session_id).currency) == (4000, "eur")


def test_a_paid_event_without_amount_or_currency_keeps_the_stored_ones(fake_stripe, held, signed_delivery):
    event = fake_stripe.complete_session(held[1])
    for key in ("amount_total", "currency"):
        del event["data"]["object"][key]

    signed_delivery(event)

    assert (payment(held[1]).status, payment(held[1]).amount, payment(held[1]).currency) == (
        "paid",
        4500,
        "eur",
    )


def test_a_verification_failure_stripe_words_otherwise_is_still_a_clear_refusal():
    from core.payments.webhooks import _signature_problem

    odd = stripe.SignatureVerificationError("Something new went wrong", "t=1,v1=x")
    assert _signature_problem(odd) == "The Stripe-Signature header could not be verified."


def test_finance_retrying_an_unknown_or_processed_event_is_told_why(fake_stripe, held, signed_delivery):
    with pytest.raises(NotFound) as info:
        retry_failed_event("evt_never_received")
    assert info.value.message == "No Stripe event 'evt_never_received' has been received."

    event = fake_stripe.complete_session(held[1])
    signed_delivery(event)
    result = retry_failed_event(event["id"])
    assert (result.event_id, result.type, result.status, result.detail) == (
        event["id"],
        "checkout.session.completed",
        "duplicate",
        "already processed; nothing to retry",
    )


def test_finance_can_retry_an_ignored_event_and_it_is_handled_again(fake_stripe, held, signed_delivery):
    """An event ignored on arrival (here: a payment event for a Checkout Session we had no row
    for and that carries no Lesplanner marker) is handled again when finance retries it, not
    answered 'duplicate' like a repeat from Stripe."""
    event = fake_stripe.event(
        "checkout.session.completed",
        {"id": "cs_test_foreign", "object": "checkout.session", "payment_status": "paid", "metadata": {}},
    )
    assert signed_delivery(event).status == "ignored"
    assert signed_delivery(event).status == "duplicate"  # Stripe's repeat

    result = retry_failed_event(event["id"])

    assert result.status == "ignored"
    assert result.detail == (
        "Checkout Session cs_test_foreign was not created by Lesplanner (no Payment for it here, "
        "and no Lesplanner marker in its metadata)."
    )
    assert stored_event(event["id"]).attempts == 2  # Stripe's repeat was no attempt; the retry is


def test_a_failure_of_a_new_event_stores_it_whole(fake_stripe, held, signed_delivery, crash_once):
    """Stored on failure with its type, its payload, one attempt, the cause, and when it came."""
    crash_once()
    event = fake_stripe.complete_session(held[1])
    with pytest.raises(WebhookHandlingFailed):
        signed_delivery(event)

    row = stored_event(event["id"])
    assert (row.type, row.status, row.attempts, row.received_at) == (
        "checkout.session.completed",
        "failed",
        1,
        NOW,
    )
    assert json.loads(row.payload) == event and "database connection was lost" in row.error


def test_an_event_type_longer_than_the_column_is_cut_to_255(fake_stripe, held, signed_delivery):
    """... and the reason it was ignored, which names the type, to 1000 characters."""
    event = fake_stripe.event("x" * 1100, {"id": "obj_1"})
    assert signed_delivery(event).status == "ignored"
    assert stored_event(event["id"]).type == "x" * 255
    assert stored_event(event["id"]).error == f"Lesplanner does not act on {'x' * 1100} events."[:1000]


@pytest.fixture
def handling_crashes(monkeypatch):
    """From the call on, handling any event crashes inside its transaction."""
    from core.payments import webhooks

    def crash(*_args):  # noqa: ANN002, ANN202
        raise RuntimeError("the database connection was lost (simulated)")

    return lambda: monkeypatch.setattr(webhooks, "_dispatch", crash)


def test_a_failing_event_with_a_type_longer_than_the_column_is_stored_cut_to_255(
    fake_stripe, signed_delivery, handling_crashes
):
    handling_crashes()
    event = fake_stripe.event("x" * 300, {"id": "obj_1"})

    with pytest.raises(WebhookHandlingFailed):
        signed_delivery(event)

    assert (stored_event(event["id"]).status, stored_event(event["id"]).type) == ("failed", "x" * 255)


def test_a_retried_ignored_event_that_fails_is_stored_as_failed_with_the_cause(
    fake_stripe, signed_delivery, handling_crashes
):
    """Finance retries an event that was ignored on arrival, and handling it crashes now: it is
    kept as failed, with this cause and the attempt counted, for Stripe or finance to retry."""
    event = fake_stripe.event(
        "checkout.session.completed",
        {"id": "cs_test_foreign", "object": "checkout.session", "payment_status": "paid", "metadata": {}},
    )
    assert signed_delivery(event).status == "ignored"
    handling_crashes()

    with pytest.raises(WebhookHandlingFailed):
        retry_failed_event(event["id"])

    row = stored_event(event["id"])
    assert (row.status, row.attempts, row.error) == (
        "failed",
        2,
        "RuntimeError: the database connection was lost (simulated)",
    )


def test_when_even_the_failure_cannot_be_stored_the_log_says_so(monkeypatch, caplog):
    from core.payments import webhooks

    def unavailable():
        raise OSError("disk full")

    monkeypatch.setattr(webhooks, "write_session", unavailable)
    with caplog.at_level("ERROR", logger="lesplanner.payments"):
        webhooks._store_failure("evt_1", "checkout.session.completed", "{}", "boom")
    assert caplog.messages == ["could not store the failure of Stripe event 'evt_1': OSError"]


def test_failing_again_counts_the_attempts(fake_stripe, held, signed_delivery, crash_once):
    crash_once(3)
    event = fake_stripe.complete_session(held[1])

    for _ in range(3):
        with pytest.raises(WebhookHandlingFailed):
            signed_delivery(event)

    assert stored_event(event["id"]).attempts == 3
    with read_session() as session:
        assert session.get(IntegrationStatus, "webhook").ok is False


class _Receiver(BaseHTTPRequestHandler):
    """A stand-in for the receiver's route: raw body + header in, status code out."""

    disable_nagle_algorithm = True

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        try:
            result = handle_webhook(body, self.headers.get("Stripe-Signature"))
            status, answer = 200, {"status": result.status}
        except LesplannerError as exc:
            status, answer = status_for(exc), {"detail": exc.message}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/webhooks/stripe"
    server.shutdown()
    server.server_close()


def test_stripe_retries_a_500_and_the_retry_confirms_the_lesson(fake_stripe, held, receiver_url, crash_once):
    lesson_id, session_id = held
    crash_once()

    delivery = fake_stripe.deliver(fake_stripe.complete_session(session_id), receiver_url, WEBHOOK_SECRET)

    assert delivery.attempts == [500, 200]
    assert lesson(lesson_id).status == CONFIRMED


def test_a_delivery_signed_with_another_secret_gets_a_400_every_time(fake_stripe, held, receiver_url):
    delivery = fake_stripe.deliver(
        fake_stripe.complete_session(held[1]), receiver_url, "whsec_other", retries=2
    )

    assert delivery.attempts == [400, 400, 400]
    assert payment(held[1]).status == "open"


# --- concurrency --------------------------------------------------------------------------------


def test_twenty_simultaneous_deliveries_of_one_event_are_handled_once(fake_stripe, held):
    lesson_id, session_id = held
    body, header = fake_stripe.signed(fake_stripe.complete_session(session_id), WEBHOOK_SECRET)
    start = threading.Barrier(20)

    def deliver(_: int) -> str:
        start.wait()
        return handle_webhook(body, header).status

    with ThreadPoolExecutor(max_workers=20) as pool:
        statuses = list(pool.map(deliver, range(20)))

    assert sorted(statuses) == ["duplicate"] * 19 + ["processed"]
    worker.drain()
    assert messages().count("payment_success_message") == 1
    assert messages().count("booking_confirmed") == 1
    assert lesson(lesson_id).status == CONFIRMED
    with read_session() as session:
        assert len(session.exec(select(Job).where(Job.kind == "calendar.create")).all()) == 1


def test_simultaneous_events_for_different_lessons_are_all_handled(fake_stripe, frozen_now):
    held = [book(f"conv-{i}", TUE_10 + timedelta(hours=i)) for i in range(6)]
    bodies = [fake_stripe.signed(fake_stripe.complete_session(s), WEBHOOK_SECRET) for _, s in held]

    with ThreadPoolExecutor(max_workers=6) as pool:
        statuses = list(pool.map(lambda bh: handle_webhook(*bh).status, bodies))

    assert statuses == ["processed"] * 6
    assert [lesson(lesson_id).status for lesson_id, _ in held] == [CONFIRMED] * 6


def test_the_webhook_status_shows_the_last_event(fake_stripe, held, signed_delivery):
    event = fake_stripe.complete_session(held[1])

    signed_delivery(event)

    with read_session() as session:
        status = session.get(IntegrationStatus, "webhook")
    assert status.ok is True and event["id"] in status.detail


def test_error_texts_never_contain_the_secrets(fake_stripe, held, signed_delivery, settings, crash_once):
    crash_once()
    event = fake_stripe.complete_session(held[1])
    with pytest.raises(WebhookHandlingFailed) as info:
        signed_delivery(event)

    texts = [info.value.message, stored_event(event["id"]).error]
    with read_session() as session:
        texts += [s.last_error or "" for s in session.exec(select(IntegrationStatus)).all()]
    for secret in (WEBHOOK_SECRET, settings.secret("stripe_api_key")):
        assert all(secret not in text for text in texts)
