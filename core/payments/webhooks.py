"""Stripe webhooks: verification with Stripe's own scheme (300 s tolerance, in the past and, our
addition, in the future) and handling.

Each event is handled in one write transaction that also stores the event by id, so a repeated
or concurrent delivery is a no-op and a failure leaves no partial writes: the event is then kept
as `failed` and the caller answers 500 so Stripe retries. That transaction changes only rows and
writes Jobs (core/lessons.py decides what a payment does to its lesson); nothing in it calls an
outside service, so an unreachable calendar or chat can never roll a payment back. Payment
states only move forward: once paid, a late `expired` or `failed` changes nothing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import stripe
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import make_transient_to_detached
from sqlmodel import Session, col, select

from core import clock, credits, lessons
from core.config import get_settings
from core.conversations import ensure_conversation
from core.db import get_engine, is_sqlite, read_session, write_session
from core.errors import (
    LesplannerError,
    NotFound,
    WebhookNotConfigured,
    WebhookSignatureInvalid,
)
from core.integrations import scrub
from core.messages import queue_message
from core.models import (
    CONFIRMED,
    NEEDS_RESCHEDULE,
    WAITING_FOR_PAYMENT,
    Contact,
    Conversation,
    Lesson,
    LessonSeries,
    Payment,
    PaymentStatus,
    StripeEvent,
)
from core.payments.after_payment import (
    IGNORED,
    PROCESSED,
    lessons_paid_by,
    on_dispute,
    on_invoice,
    refund_announced,
)
from core.payments.gateway import (
    ALLOWED_MINUTES,
    BUNDLE_PRICE_SETTINGS,
    FAILED,
    FINAL_PAYMENT_STATES,
    OPEN,
    PAID,
    PAYMENT_EXPIRED,
    PROCESSING,
    REFUNDED,
    _id_of,
    _record_status,
    _ts,
    price_setting_name,
)
from core.payments.links import BUNDLE, SERIES, made_by_lesplanner

log = logging.getLogger("lesplanner.payments")

WEBHOOK_TOLERANCE_SECONDS = 300

# StripeEvent states (DESIGN.md) and the extra answer for a repeat
EVENT_FAILED, DUPLICATE = "failed", "duplicate"

# How many webhook transactions may run at once in this process. On SQLite writes are
# serialised anyway, and writers queueing inside SQLite wait in its busy handler, which sleeps in
# growing steps (up to 100 ms) instead of waking when the lock frees; a Python lock hands over at
# once. On Postgres a few may run side by side. Either way waiting writers hold no pooled
# connection, and the one that runs may need a second one (the local calendar reads in its own
# session), so the pool never runs dry.
_SQLITE_WEBHOOK_SLOTS = threading.Lock()
_SERVER_WEBHOOK_SLOTS = threading.BoundedSemaphore(4)


def _webhook_slots() -> Any:
    return _SQLITE_WEBHOOK_SLOTS if is_sqlite(get_engine()) else _SERVER_WEBHOOK_SLOTS


class WebhookHandlingFailed(LesplannerError):
    """A verified event could not be handled; it is stored as failed and Stripe will retry
    (the receiver answers 500 without the cause)."""


@dataclass(frozen=True)
class WebhookResult:
    event_id: str
    type: str
    status: str  # processed | duplicate | ignored
    detail: str = ""


def _signature_problem(exc: stripe.SignatureVerificationError) -> str:
    text = str(exc.user_message or "")
    if "tolerance" in text:
        return (
            f"The Stripe-Signature timestamp is more than {WEBHOOK_TOLERANCE_SECONDS} seconds "
            "old: a replayed or badly delayed delivery (or this server's clock is wrong)."
        )
    if "matching the expected signature" in text:
        return (
            "The Stripe-Signature does not match the body: the body was changed, or "
            "STRIPE_WEBHOOK_SECRET is not this endpoint's signing secret."
        )
    if "expected scheme" in text or "extract timestamp" in text:
        return "The Stripe-Signature header is malformed (expected t=…,v1=…)."
    return "The Stripe-Signature header could not be verified."


def _signed_timestamp(sig_header: str) -> int:
    """The header's `t=`, read exactly as Stripe's library reads it (the first one), so it is the
    timestamp the verified signature covers."""
    items = [item.split("=", 2) for item in sig_header.split(",")]
    return int([item[1] for item in items if item[0] == "t"][0])


def _refuse_future_timestamp(sig_header: str) -> None:
    """Stripe's check only refuses timestamps older than the tolerance. One far ahead would stay
    valid until that time came (a signature made with a leaked secret, or a replay dated ahead),
    so anything more than the same tolerance ahead is refused too; less is clock skew. The clock
    is the one Stripe's check uses: this process's wall clock, not core.clock."""
    ahead = _signed_timestamp(sig_header) - time.time()
    if ahead > WEBHOOK_TOLERANCE_SECONDS:
        raise WebhookSignatureInvalid(
            f"The Stripe-Signature timestamp is more than {WEBHOOK_TOLERANCE_SECONDS} seconds in the "
            "future: not a delivery Stripe just made (or this server's clock is wrong)."
        )


def verify_webhook(payload: bytes, sig_header: str | None) -> dict[str, Any]:
    """Check a webhook's `Stripe-Signature` with Stripe's scheme and return the event as a dict:
    the signature must match and its timestamp be at most the tolerance old or ahead.

    Raises WebhookNotConfigured (no secret: fail closed, 503) or WebhookSignatureInvalid (400).
    """
    secret = get_settings().secret("stripe_webhook_secret")
    if not secret:
        raise WebhookNotConfigured(
            "Stripe webhooks are not configured: set STRIPE_WEBHOOK_SECRET to the endpoint's "
            "signing secret (whsec_…); until then every webhook is refused."
        )
    if not sig_header or not sig_header.strip():
        raise WebhookSignatureInvalid(
            "The Stripe-Signature header is missing; this endpoint only accepts webhooks signed by Stripe."
        )
    try:
        # Stripe's check (what Webhook.construct_event runs before building an Event object we
        # would not use): HMAC-SHA256 of "<t>.<body>" against every v1 signature, and t no
        # older than the tolerance.
        stripe.WebhookSignature.verify_header(
            payload, sig_header, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS
        )
        _refuse_future_timestamp(sig_header)
        event = json.loads(payload)
    except stripe.SignatureVerificationError as exc:
        raise WebhookSignatureInvalid(_signature_problem(exc)) from None
    except (ValueError, TypeError, AttributeError):  # signed, but not a JSON object / not UTF-8
        raise WebhookSignatureInvalid("The webhook body is not a Stripe event (not a JSON object).") from None
    if (
        not isinstance(event, dict)
        or not isinstance(event.get("id"), str)
        or not isinstance(event.get("type"), str)
    ):
        raise WebhookSignatureInvalid("The webhook body is not a Stripe event (it has no id and type).")
    return event


def handle_webhook(payload: bytes, sig_header: str | None) -> WebhookResult:
    """Verify and handle one Stripe webhook delivery.

    Returns the outcome (processed, duplicate or ignored: all answered 200). Raises
    WebhookNotConfigured / WebhookSignatureInvalid before anything is stored, and
    WebhookHandlingFailed (500, so Stripe retries) after storing the event as failed.
    """
    try:
        event = verify_webhook(payload, sig_header)
    except (WebhookNotConfigured, WebhookSignatureInvalid) as exc:
        _record_status("webhook", False, f"refused a delivery: {exc.message}")
        raise
    return _process_event(event, payload.decode("utf-8"))


def retry_failed_event(event_id: str) -> WebhookResult:
    """Handle a stored failed (or ignored) event again, for finance. Its signature was checked
    when it arrived, so the stored payload is trusted."""
    with read_session() as session:
        row = session.get(StripeEvent, event_id)
        if row is None:
            raise NotFound(f"No Stripe event '{event_id}' has been received.")
        if row.status == PROCESSED:
            return WebhookResult(row.id, row.type, DUPLICATE, "already processed; nothing to retry")
        payload = row.payload
    return _process_event(json.loads(payload), payload, retry_ignored=True)


def _process_event(event: dict[str, Any], payload: str, *, retry_ignored: bool = False) -> WebhookResult:
    event_id, type_ = str(event["id"]), str(event.get("type") or "")
    with _webhook_slots():
        try:
            with write_session() as session:
                now = clock.now()
                claimed = _claim_event(session, event_id, type_, payload, now)
                row = claimed or session.get(StripeEvent, event_id)
                done = (PROCESSED,) if retry_ignored else (PROCESSED, IGNORED)
                if row is not None and row.status in done:
                    return WebhookResult(event_id, type_, DUPLICATE, f"already {row.status}")
                if row is None:  # SQLite (BEGIN IMMEDIATE: nobody else can insert it meanwhile)
                    row = StripeEvent(
                        id=event_id,
                        type=type_[:255],
                        payload=payload,
                        received_at=now,
                        status=EVENT_FAILED,
                        attempts=1,
                    )
                    session.add(row)
                elif claimed is None:
                    row.attempts += 1
                status, detail = _dispatch(session, event, now)
                row.status = status
                row.processed_at = now
                row.error = detail[:1000] if status == IGNORED else None  # why it was ignored
                _record_status("webhook", True, f"last event {event_id} ({type_}) {status}", session)
                return WebhookResult(event_id, type_, status, detail)
        except Exception as exc:
            message = scrub(f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}")[:1000]
            log.error("Stripe event %r (%r) failed: %s", event_id, type_, message)
            _store_failure(event_id, type_, payload, message)
            raise WebhookHandlingFailed(
                f"Stripe event {event_id} ({type_}) could not be handled and is stored as failed; "
                f"Stripe will retry it. Cause: {message}"
            ) from exc


def _claim_event(
    session: Session, event_id: str, type_: str, payload: str, now: datetime
) -> StripeEvent | None:
    """On Postgres, store a new event in one statement (INSERT ... ON CONFLICT DO NOTHING, which
    waits for a concurrent delivery of the same id to commit): returns the row, attached to the
    session without reading it back, or None when it was there already. SQLite: None (the caller
    reads it; BEGIN IMMEDIATE already serialises deliveries)."""
    if is_sqlite(session.get_bind()):
        return None
    values: dict[str, Any] = dict(
        id=event_id, type=type_[:255], payload=payload, received_at=now, status=EVENT_FAILED, attempts=1
    )
    table = StripeEvent.__table__  # type: ignore[attr-defined]
    inserted = session.execute(
        pg_insert(table).values(**values).on_conflict_do_nothing(index_elements=["id"]).returning(table.c.id)
    ).first()
    if inserted is None:
        return None
    row = StripeEvent(**values, processed_at=None, error=None)
    make_transient_to_detached(row)
    session.add(row)
    return row


def _store_failure(event_id: str, type_: str, payload: str, message: str) -> None:
    try:
        with write_session() as session:
            row = session.get(StripeEvent, event_id)
            if row is None:
                session.add(
                    StripeEvent(
                        id=event_id,
                        type=type_[:255],
                        payload=payload,
                        received_at=clock.now(),
                        status=EVENT_FAILED,
                        error=message,
                        attempts=1,
                    )
                )
            elif row.status == EVENT_FAILED or row.status == IGNORED:
                row.status = EVENT_FAILED
                row.error = message
                row.attempts += 1
            # processed meanwhile (a concurrent delivery won): leave it
        _record_status("webhook", False, f"event {event_id} ({type_}) failed: {message}")
    except Exception as exc:  # noqa: BLE001 - the original failure is what the caller must see
        log.error("could not store the failure of Stripe event %r: %s", event_id, type(exc).__name__)


def _dispatch(session: Session, event: dict[str, Any], now: datetime) -> tuple[str, str]:
    type_ = event.get("type") or ""
    obj = (event.get("data") or {}).get("object") or {}
    if type_ == "checkout.session.completed":
        if obj.get("payment_status") in ("paid", "no_payment_required"):
            return _on_paid(session, obj, now)
        return _on_awaiting_payment(session, obj, now)
    if type_ == "checkout.session.async_payment_succeeded":
        return _on_paid(session, obj, now)
    if type_ == "checkout.session.async_payment_failed":
        return _on_released(session, obj, now, FAILED, "payment_failed")
    if type_ == "checkout.session.expired":
        return _on_released(session, obj, now, PAYMENT_EXPIRED, "hold_expired")
    if type_ == "charge.refunded":
        return _on_refunded(session, obj, now)
    if type_ in ("charge.dispute.created", "charge.dispute.updated", "charge.dispute.closed"):
        return on_dispute(session, obj, now)
    if type_ in ("invoice.finalized", "invoice.paid"):
        return on_invoice(session, obj, now)
    return IGNORED, f"Lesplanner does not act on {type_ or 'untyped'} events."


def _not_ours(obj: dict[str, Any]) -> tuple[str, str]:
    return IGNORED, (
        f"Checkout Session {obj.get('id')} was not created by Lesplanner "
        "(no Payment for it here, and no Lesplanner marker in its metadata)."
    )


def _whole_number(metadata: dict[str, Any], key: str) -> int | None:
    """A metadata value that is a whole number (Stripe keeps metadata as text), else None."""
    text = str(metadata.get(key, ""))
    return int(text) if text.isascii() and text.isdigit() else None


def _payment_for_session(session: Session, obj: dict[str, Any], now: datetime) -> Payment | None:
    """Our Payment for a Checkout Session; created from the session's metadata when it is one
    of ours we have no row for (e.g. the answer to the create call was lost)."""
    session_id = obj.get("id")
    if not session_id:
        return None
    payment = session.exec(select(Payment).where(Payment.checkout_session_id == session_id)).first()
    if payment is not None:
        return payment
    md = obj.get("metadata") or {}
    if not made_by_lesplanner(obj):
        return None
    # made_by_lesplanner checked both: ids of our alphabet.
    order_id: str = md["order_id"]
    conversation_id: str = md["conversation_id"]
    payment_conversation: str | None = conversation_id
    contact_id = md.get("contact_id") or None
    if session.get(Conversation, conversation_id) is None:
        if contact_id:
            ensure_conversation(session, conversation_id, contact_id)
        else:
            payment_conversation = None
    if contact_id and session.get(Contact, contact_id) is None:
        contact_id = None
    lesson_id = _whole_number(md, "lesson_id")
    if lesson_id is not None and session.get(Lesson, lesson_id) is None:
        lesson_id = None
    minutes = _whole_number(md, "minutes") or 0
    segment = md.get("segment")
    quantity = _whole_number(md, "lessons")
    bundle = md.get("kind") == BUNDLE and quantity is not None
    series_id = _whole_number(md, "series_id")
    if series_id is not None and session.get(LessonSeries, series_id) is None:
        series_id = None
    series = md.get("kind") == SERIES and series_id is not None and quantity is not None
    price_id = "unknown"
    if minutes in ALLOWED_MINUTES:
        var = BUNDLE_PRICE_SETTINGS[minutes] if bundle else price_setting_name(segment, minutes)
        price_id = getattr(get_settings(), var.lower()) or "unknown"
    payment = Payment(
        checkout_session_id=session_id,
        order_id=order_id,
        conversation_id=payment_conversation,
        contact_id=contact_id,
        lesson_id=lesson_id,
        segment=segment,
        minutes=minutes,
        price_id=price_id,
        kind=BUNDLE if bundle else SERIES if series else "lesson",
        quantity=quantity if quantity is not None and (bundle or series) else 1,
        series_id=series_id if series else None,
        amount=obj.get("amount_total"),
        currency=obj.get("currency"),
        status=OPEN,
        url=obj.get("url"),  # an open session's link (reconcile); events of a closed one carry null
        expires_at=_ts(obj.get("expires_at")),
        created_at=_ts(obj.get("created")) or now,
        updated_at=now,
    )
    session.add(payment)
    session.flush()
    log.info("recorded Checkout Session %r from its metadata (order %r)", session_id, order_id)
    return payment


def _payment_to_change(
    session: Session, obj: dict[str, Any], now: datetime
) -> tuple[Payment | None, tuple[str, str]]:
    """Our payment for a Checkout Session event, or why nothing changes (not ours; the money is
    already in, and no checkout event undoes that)."""
    payment = _payment_for_session(session, obj, now)
    if payment is None:
        return None, _not_ours(obj)
    if payment.status in FINAL_PAYMENT_STATES:
        return None, (
            PROCESSED,
            f"Payment {payment.checkout_session_id} was already {payment.status}; nothing changed.",
        )
    return payment, (PROCESSED, "")


def _on_paid(session: Session, obj: dict[str, Any], now: datetime) -> tuple[str, str]:
    payment, unchanged = _payment_to_change(session, obj, now)
    if payment is None:
        return unchanged
    previous = payment.status
    payment.status = PAID
    payment.paid_at = now
    payment.payment_intent_id = _id_of(obj.get("payment_intent")) or payment.payment_intent_id
    if obj.get("amount_total") is not None:
        payment.amount = obj["amount_total"]
    payment.currency = obj.get("currency") or payment.currency
    payment.invoice_id = _id_of(obj.get("invoice")) or payment.invoice_id
    payment.updated_at = now
    details = [f"Payment {payment.checkout_session_id} paid (was {previous})."]
    if payment.kind == BUNDLE and payment.contact_id:
        # Rows only, once per payment (the ledger's key): a repeated event adds nothing.
        if credits.add_purchase(session, payment) is not None:
            details.append(f"{payment.quantity} credits of {payment.minutes} minutes added.")

    paid_for = lessons_paid_by(session, payment)  # one lesson, or a series' lessons
    for lesson in paid_for:
        # Rows and jobs only: the calendar event is made after commit, so an unreachable
        # calendar can never roll this payment back.
        lessons.paid(session, lesson)
        details.append(f"Lesson {lesson.id} is {lesson.status}.")

    conversation = session.get(Conversation, payment.conversation_id) if payment.conversation_id else None
    if conversation is not None:
        conversation.attributes = {
            **(conversation.attributes or {}),
            "payment_completed": True,
            "payment_intent_id": payment.payment_intent_id,
            "payment_amount": payment.amount,
            "payment_currency": payment.currency,
        }
        session.add(conversation)
    contact_id = payment.contact_id or (conversation.contact_id if conversation else None)
    contact = session.get(Contact, contact_id) if contact_id else None
    if contact is not None:
        attributes = dict(contact.attributes or {})
        attributes.update(has_paid_lesson=True, has_completed_intake=True, lesson_booked=True)
        if not attributes.get("customer_since"):
            attributes["customer_since"] = now.astimezone(get_settings().tz).isoformat()
        contact.attributes = attributes
        contact.updated_at = now
        session.add(contact)
    # A lesson whose slot was lost gets the "slot_lost" message (payment received, pick a new
    # time) from booking; "your lesson is confirmed" would contradict it.
    if conversation is not None and payment.kind == BUNDLE:
        queue_message(
            session,
            conversation.id,
            "bundle_paid",
            dedupe_key=f"bundle_paid:{payment.checkout_session_id}",
            lessons=payment.quantity,
            minutes=payment.minutes,
        )
    elif conversation is not None and not (
        paid_for and all(lesson.status == NEEDS_RESCHEDULE for lesson in paid_for)
    ):
        queue_message(
            session,
            conversation.id,
            "series_payment_success" if payment.kind == SERIES else "payment_success_message",
            dedupe_key=f"payment_success:{payment.checkout_session_id}",
        )
    return PROCESSED, " ".join(details)


def _on_awaiting_payment(session: Session, obj: dict[str, Any], now: datetime) -> tuple[str, str]:
    payment, unchanged = _payment_to_change(session, obj, now)
    if payment is None:
        return unchanged
    payment.payment_intent_id = _id_of(obj.get("payment_intent")) or payment.payment_intent_id
    if payment.status in (OPEN, PAYMENT_EXPIRED):
        payment.status = PROCESSING
    payment.updated_at = now
    details = [
        f"Checkout completed but the payment is still processing (payment_status "
        f"{obj.get('payment_status')}); waiting for checkout.session.async_payment_succeeded "
        "or _failed."
    ]
    for lesson in lessons_paid_by(session, payment):
        if lessons.await_payment(session, lesson):
            until = lesson.hold_expires_at
            assert until is not None  # await_payment set it
            details.append(f"Lesson {lesson.id} keeps its slot until {until.isoformat()}.")
    return PROCESSED, " ".join(details)


def _other_live_payment(session: Session, payment: Payment, now: datetime) -> bool:
    """Does the lesson have another payment that still counts (paid, or an open link)?"""
    if payment.lesson_id is None:  # a series has one payment
        return False
    others = session.exec(
        select(Payment)
        .where(Payment.lesson_id == payment.lesson_id, Payment.id != payment.id)
        .where(col(Payment.status).in_((OPEN, PROCESSING, PAID)))
    ).all()
    return any(p.status != OPEN or (p.expires_at is None or p.expires_at > now) for p in others)


def _on_released(
    session: Session, obj: dict[str, Any], now: datetime, payment_status: str, lesson_event: str
) -> tuple[str, str]:
    payment = _payment_for_session(session, obj, now)
    if payment is None:
        return _not_ours(obj)
    if payment.status in FINAL_PAYMENT_STATES:
        return PROCESSED, (
            f"Payment {payment.checkout_session_id} is already {payment.status}; "
            f"a late '{payment_status}' changes nothing."
        )
    if payment.status in (OPEN, PROCESSING):
        payment.status = payment_status
        payment.updated_at = now
    details = [f"Payment {payment.checkout_session_id} is {payment.status}."]
    for lesson in lessons_paid_by(session, payment):
        if lesson.status not in WAITING_FOR_PAYMENT:
            continue
        if _other_live_payment(session, payment, now):
            details.append(f"Lesson {lesson.id} stays held: it has another payment link.")
        elif lessons.release(session, lesson, lesson_event):
            details.append(f"Lesson {lesson.id} released ({lesson.status}).")
    return PROCESSED, " ".join(details)


def _on_refunded(session: Session, charge: dict[str, Any], now: datetime) -> tuple[str, str]:
    intent = _id_of(charge.get("payment_intent"))
    payment = None
    if intent:
        payment = session.exec(select(Payment).where(Payment.payment_intent_id == intent)).first()
    if payment is None:
        return IGNORED, f"No Lesplanner payment has payment intent {intent or '(none)'}."
    refunded = int(charge.get("amount_refunded") or 0)
    if payment.status == REFUNDED:
        return PROCESSED, f"Payment {payment.checkout_session_id} was already refunded; nothing changed."
    if not charge.get("refunded"):
        # Partial: only the money is recorded (events may arrive out of order: never go down).
        if refunded <= payment.refunded_amount:
            return PROCESSED, f"Payment {payment.checkout_session_id}: refund of {refunded} already recorded."
        payment.refunded_amount = refunded
        payment.status = PaymentStatus.PARTIALLY_REFUNDED
        payment.updated_at = now
        of = " ".join(str(part) for part in (charge.get("amount"), charge.get("currency")) if part)
        return PROCESSED, f"Payment {payment.checkout_session_id}: {refunded} of {of} refunded."
    payment.status = REFUNDED
    payment.refunded_amount = max(refunded, payment.amount or 0)
    payment.updated_at = now
    if payment.kind == BUNDLE:
        # What was not used yet is taken back; lessons already booked with it stay (DECISIONS).
        credits.take_back_refunded_bundle(session, payment)
    paid_for = lessons_paid_by(session, payment)  # its one lesson, or a series' lessons
    for lesson in paid_for:
        # A cancel that gave a credit for this money: the refund takes it back, or finance looks.
        if credits.credit_given_for(session, payment, lesson) is not None:
            if credits.take_back_credit_of_refunded_payment(session, payment, lesson) is None:
                lessons.finance_alert(
                    session, lesson, "refunded in full; the credit its cancel gave is already used"
                )
    # A full refund of lessons still to come cancels them: their slots and events are freed.
    for planned in paid_for:
        if planned.status in (CONFIRMED, NEEDS_RESCHEDULE) and planned.start > now:
            lessons.cancel(session, planned, "payment refunded in full", notify=False)
    # A refund we started at the customer's cancel was announced with that cancel: one message.
    announced = refund_announced(session, payment, paid_for)
    if (
        not announced
        and payment.conversation_id
        and session.get(Conversation, payment.conversation_id) is not None
    ):
        queue_message(
            session,
            payment.conversation_id,
            "refund_issued",
            dedupe_key=f"refund_issued:{payment.checkout_session_id}",
        )
    return PROCESSED, f"Payment {payment.checkout_session_id} refunded."
