"""Payment links: a Stripe Checkout Session per lesson, stored as an open Payment, and closing
the open sessions of a lesson that no longer waits for payment.

The idempotency key is derived from the order id, so a retried call never creates a second
session; a paid order is refused.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import stripe
from sqlalchemy import or_
from sqlmodel import Session, col, select

from core import clock, jobs
from core.config import get_settings
from core.conversations import SAFE_ORDER_ID_RULE, ensure_conversation, is_safe_id, is_safe_order_id
from core.db import read_session, scratch_session, write_session
from core.errors import (
    InvalidTransition,
    NotFound,
    PaymentProviderError,
    PaymentsNotConfigured,
    ValidationFailed,
)
from core.models import WAITING_FOR_PAYMENT, Conversation, Lesson, Payment
from core.payments.gateway import (
    ALLOWED_MINUTES,
    BUNDLE_PRICE_SETTINGS,
    FINAL_PAYMENT_STATES,
    OPEN,
    PAYMENT_EXPIRED,
    PROCESSING,
    _expiry_seconds,
    _record_status,
    _ts,
    get_gateway,
    price_setting_name,
)

log = logging.getLogger("lesplanner.payments")

METADATA_VALUE_MAX = 500  # Stripe refuses longer metadata values
BOOKING_ORDER_PREFIX = "lesson-"  # booking's own order ids: lesson-<id>
BUNDLE_ORDER_PREFIX = "bundle-"  # bundles' own order ids: bundle-<random>
SERIES_ORDER_PREFIX = "series-"  # weekly series' own order ids: series-<id>
RESERVED_ORDER_PREFIXES = (BOOKING_ORDER_PREFIX, BUNDLE_ORDER_PREFIX, SERIES_ORDER_PREFIX)
LESSON, BUNDLE, SERIES = "lesson", "bundle", "series"  # Payment.kind: what the payment buys
BUNDLE_MIN_LESSONS, BUNDLE_MAX_LESSONS = 2, 20
# Every Checkout Session Lesplanner makes carries this in its metadata, so a session another
# system made on the same Stripe account (the old bot used the same metadata keys) is never
# taken for one of ours.
CREATED_BY_KEY, CREATED_BY = "created_by", "lesplanner"


def made_by_lesplanner(checkout_session: dict[str, Any]) -> bool:
    """Whether a Checkout Session (as Stripe sends it) is one Lesplanner made: its marker, and
    ids of our alphabet. Sessions we have a Payment row for are ours regardless."""
    md = checkout_session.get("metadata") or {}
    return (
        md.get(CREATED_BY_KEY) == CREATED_BY
        and is_safe_order_id(md.get("order_id"))
        and is_safe_id(md.get("conversation_id"))
    )


def _minutes(value: Any) -> int:
    allowed = " or ".join(str(m) for m in ALLOWED_MINUTES)
    if isinstance(value, bool):
        raise ValidationFailed(f"minutes must be {allowed}.", field="minutes")
    try:
        minutes = int(str(value).strip())
    except (TypeError, ValueError):
        raise ValidationFailed(f"minutes must be {allowed} (got {value!r}).", field="minutes") from None
    if minutes not in ALLOWED_MINUTES:
        raise ValidationFailed(f"minutes must be {allowed} (got {minutes}).", field="minutes")
    return minutes


def _idempotency_key(order_id: str, attempt: int) -> str:
    base = order_id if len(order_id) <= 180 else hashlib.sha256(order_id.encode()).hexdigest()
    key = f"lesplanner-checkout-{base}"
    return key if attempt <= 1 else f"{key}-{attempt}"


def _metadata_value(value: Any) -> str:
    return str(value)[:METADATA_VALUE_MAX]


def create_payment_link(
    segment: str,
    minutes: int,
    order_id: str,
    conversation_id: str,
    student_name: str,
    service: str,
    audience: str,
    program: str,
    *,
    contact_id: str | None = None,
    lesson_id: int | None = None,
    internal: bool = False,
    bundle_lessons: int | None = None,
    series: tuple[int, int] | None = None,
) -> Payment:
    """Create a Stripe Checkout Session for one lesson and store it as an open Payment; with
    `bundle_lessons`, for a bundle of that many prepaid lessons (BUNDLE_PRICE_ID_<minutes> ×
    the number; the paid webhook turns them into credits); with `series` (series id, lessons),
    for the lessons of a weekly series (the lesson price × the number, core/series.py). With STRIPE_INVOICES on, Stripe is
    asked for an invoice (the customer's receipt) too.

    An order id belongs to the conversation that created it: the same order id from the same
    conversation with the same parameters returns the stored Payment while its link is still
    usable; from another conversation, with other parameters, or once paid, it is refused (409).
    Order ids `lesson-<id>` are booking's own namespace (`internal=True`); the bot cannot use them. Raises ValidationFailed (minutes, ids), PaymentsNotConfigured
    (naming the missing setting) or PaymentProviderError. A unit of work: it calls Stripe between
    its own short transactions, never inside the caller's.
    """
    settings = get_settings()
    minutes = _minutes(minutes)
    order_id = str(order_id or "").strip()
    conversation_id = str(conversation_id or "").strip()
    if not is_safe_order_id(order_id):
        raise ValidationFailed(f"order_id {SAFE_ORDER_ID_RULE}.", field="order_id")
    if not conversation_id:
        raise ValidationFailed("conversation_id is required.", field="conversation_id")
    if not internal and order_id.lower().startswith(RESERVED_ORDER_PREFIXES):
        raise ValidationFailed(
            f"order_id '{order_id}' is reserved: ids starting with '{BOOKING_ORDER_PREFIX}' belong "
            f"to bookings (POST /api/v1/bookings makes their payment links), ids starting with "
            f"'{BUNDLE_ORDER_PREFIX}' to bundles (POST /api/v1/bundles) and ids starting with "
            f"'{SERIES_ORDER_PREFIX}' to weekly series (POST /api/v1/series).",
            field="order_id",
        )
    quantity = 1 if bundle_lessons is None else bundle_lessons
    kind = LESSON if bundle_lessons is None else BUNDLE
    series_id = None
    if series is not None:
        series_id, quantity, kind = series[0], series[1], SERIES
    if bundle_lessons is not None and not BUNDLE_MIN_LESSONS <= bundle_lessons <= BUNDLE_MAX_LESSONS:
        raise ValidationFailed(
            f"A bundle has {BUNDLE_MIN_LESSONS} to {BUNDLE_MAX_LESSONS} lessons (got {bundle_lessons}).",
            field="lessons",
        )

    price_var = price_setting_name(segment, minutes) if kind != BUNDLE else BUNDLE_PRICE_SETTINGS[minutes]
    price_id = getattr(settings, price_var.lower())
    missing = [
        name
        for name, value in (
            ("STRIPE_API_KEY", settings.secret("stripe_api_key")),
            (price_var, price_id),
            ("CHECKOUT_SUCCESS_URL", settings.checkout_success_url),
            ("CHECKOUT_CANCEL_URL", settings.checkout_cancel_url),
        )
        if not value
    ]
    if missing:
        raise PaymentsNotConfigured(
            f"Stripe is not configured: set {', '.join(missing)} "
            f"(see docs/STRIPE.md). No payment link was created.",
            missing=missing,
        )
    expiry_seconds = _expiry_seconds(settings)
    gateway = get_gateway(settings)

    args = (order_id, conversation_id, contact_id, lesson_id, minutes, price_id, quantity)
    with read_session() as read:
        known = read.get(Conversation, conversation_id) is not None
    # A conversation seen for the first time is registered with the Payment, once Stripe made
    # the session: until then what it would be is worked out in a rolled-back transaction.
    with read_session() if known else scratch_session() as prepare:
        existing, attempt, contact_id = _prepare(prepare, *args)
    if existing is not None:
        return existing

    now = clock.now()
    metadata = {
        k: _metadata_value(v)
        for k, v in {
            "segment": segment,
            "minutes": minutes,
            "order_id": order_id,
            "conversation_id": conversation_id,
            "student_name": student_name,
            "service": service,
            "audience": audience,
            "program": program,
            "contact_id": contact_id,
            "lesson_id": lesson_id,
            "kind": kind if kind != LESSON else None,
            "lessons": quantity if kind != LESSON else None,
            "series_id": series_id,
            CREATED_BY_KEY: CREATED_BY,
        }.items()
        if v is not None
    }
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [{"price": price_id, "quantity": quantity}],
        "client_reference_id": order_id,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "locale": "nl",
        "expires_at": int(now.timestamp()) + expiry_seconds,
        "success_url": settings.checkout_success_url,
        "cancel_url": settings.checkout_cancel_url,
    }
    if settings.stripe_invoices:  # a receipt with BTW details (docs/STRIPE.md); payment mode only
        params["invoice_creation"] = {"enabled": True}
    if settings.stripe_tax_rate_id:  # BTW charged: the rate is shown on Checkout and the invoice
        params["line_items"][0]["tax_rates"] = [settings.stripe_tax_rate_id]
    key = _idempotency_key(order_id, attempt)
    try:
        try:
            checkout = gateway.create_checkout_session(params, key)
        except stripe.IdempotencyError:
            # The key was used with other parameters: an earlier attempt reached Stripe but its
            # answer never got stored here (its link was never handed out). Start a new one.
            log.warning("idempotency key reused for order %r; creating a fresh session", order_id)
            checkout = gateway.create_checkout_session(params, f"{key}-r{int(time.time())}")
        except PaymentsNotConfigured:
            raise
        except PaymentProviderError as exc:
            if exc.extra.get("stripe_code") == "resource_missing" and "price" in str(
                exc.extra.get("stripe_param")
            ):
                raise PaymentsNotConfigured(
                    f"{price_var} is set to '{price_id}', but Stripe has no such price "
                    "(a typo, or a live-mode price used with a test-mode key)."
                ) from None
            raise
    except (PaymentsNotConfigured, PaymentProviderError) as exc:
        _record_status("stripe", False, exc.message)
        raise
    except stripe.StripeError as exc:  # an IdempotencyError on the fresh key as well
        error = gateway._fail(exc, "create a Checkout Session")
        _record_status("stripe", False, error.message)
        raise error from None

    with write_session() as write:
        if not known:
            ensure_conversation(write, conversation_id, contact_id)
        return _store_new_payment(
            write,
            checkout,
            order_id,
            conversation_id,
            contact_id,
            lesson_id,
            segment,
            minutes,
            price_id,
            kind=kind,
            quantity=quantity,
            series_id=series_id,
        )


def create_bundle_link(
    conversation_id: str, contact_id: str | None, minutes: int, lessons: int
) -> tuple[Payment, bool]:
    """A Checkout Session for a bundle of `lessons` prepaid lessons of `minutes`. Asking again
    while the conversation's link for the same bundle is still open returns that link (a bot
    that retries never makes two); otherwise a new order `bundle-<random>`. Returns the payment
    and whether it is new. Raises like
    create_payment_link (ValidationFailed, PaymentsNotConfigured naming BUNDLE_PRICE_ID_<n>,
    PaymentProviderError)."""
    minutes = _minutes(minutes)
    if isinstance(lessons, bool) or not isinstance(lessons, int):
        raise ValidationFailed("lessons must be a whole number.", field="lessons")
    usable_until = clock.now() + timedelta(minutes=1)
    with read_session() as session:
        open_links = session.exec(
            select(Payment)
            .where(Payment.conversation_id == conversation_id, Payment.kind == BUNDLE)
            .where(Payment.minutes == minutes, Payment.quantity == lessons, Payment.status == OPEN)
            .order_by(col(Payment.id).desc())
        ).all()
    for payment in open_links:
        same_contact = contact_id is None or payment.contact_id == contact_id
        if same_contact and payment.url and payment.expires_at and payment.expires_at > usable_until:
            return payment, False
    made = create_payment_link(
        "standard",
        minutes,
        f"{BUNDLE_ORDER_PREFIX}{uuid.uuid4().hex[:20]}",
        conversation_id,
        "",
        "bundle",
        "",
        "",
        contact_id=contact_id,
        internal=True,
        bundle_lessons=lessons,
    )
    return made, True


def _prepare(
    session: Session,
    order_id: str,
    conversation_id: str,
    contact_id: str | None,
    lesson_id: int | None,
    minutes: int,
    price_id: str,
    quantity: int = 1,
) -> tuple[Payment | None, int, str | None]:
    """Before calling Stripe: an existing usable link for the order (returned as is), the
    attempt number for the idempotency key, and the conversation's contact."""
    payments = list(
        session.exec(
            select(Payment).where(Payment.order_id == order_id).order_by(col(Payment.id).desc())
        ).all()
    )
    if payments:
        latest = payments[0]
        if any(p.conversation_id != conversation_id for p in payments):
            raise InvalidTransition(
                f"Order '{order_id}' belongs to another conversation; use a new order_id."
            )
        if (latest.minutes, latest.price_id, latest.lesson_id, latest.quantity) != (
            minutes,
            price_id,
            lesson_id,
            quantity,
        ):
            raise InvalidTransition(
                f"Order '{order_id}' was created for another lesson length, price or lesson; "
                "use a new order_id."
            )
        if latest.status in FINAL_PAYMENT_STATES:
            raise InvalidTransition(f"Order '{order_id}' is already {latest.status}; use a new order_id.")
        usable_until = clock.now() + timedelta(minutes=1)
        if latest.status == PROCESSING:
            raise InvalidTransition(
                f"Order '{order_id}' has been paid with a method that is still processing; "
                "wait for it instead of paying again."
            )
        if latest.status == OPEN and latest.expires_at and latest.expires_at > usable_until and latest.url:
            return latest, len(payments), contact_id
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        if not contact_id:
            raise NotFound(f"Unknown conversation '{conversation_id}'; send contact_id the first time.")
        conversation, _ = ensure_conversation(session, conversation_id, contact_id)
    elif contact_id and contact_id != conversation.contact_id:
        raise ValidationFailed(
            f"Conversation '{conversation_id}' belongs to another contact than '{contact_id}'."
        )
    if lesson_id is not None and session.get(Lesson, lesson_id) is None:
        raise ValidationFailed(f"Lesson {lesson_id} does not exist.", field="lesson_id")
    return None, len(payments) + 1, contact_id or conversation.contact_id


def _store_new_payment(
    session: Session,
    checkout: dict[str, Any],
    order_id: str,
    conversation_id: str,
    contact_id: str | None,
    lesson_id: int | None,
    segment: str,
    minutes: int,
    price_id: str,
    *,
    kind: str = "lesson",
    quantity: int = 1,
    series_id: int | None = None,
) -> Payment:
    session_id = checkout["id"]
    existing = session.exec(select(Payment).where(Payment.checkout_session_id == session_id)).first()
    if existing is not None:  # Stripe replayed a session we already stored
        return existing
    now = clock.now()
    payment = Payment(
        checkout_session_id=session_id,
        order_id=order_id,
        conversation_id=conversation_id,
        contact_id=contact_id,
        lesson_id=lesson_id,
        segment=segment,
        minutes=minutes,
        price_id=price_id,
        kind=kind,
        quantity=quantity,
        series_id=series_id,
        amount=checkout.get("amount_total"),
        currency=checkout.get("currency"),
        status=OPEN,
        url=checkout.get("url"),
        expires_at=_ts(checkout.get("expires_at")),
        created_at=now,
        updated_at=now,
    )
    session.add(payment)
    session.flush()
    _record_status("stripe", True, f"Checkout Session created {now:%Y-%m-%d %H:%M} UTC", session)
    return payment


def expire_checkout_job(ctx: jobs.JobContext) -> str:
    """The `stripe.expire_checkout` job: close the Checkout Sessions of a lesson that no longer
    waits for payment, so the customer cannot pay for a slot that is gone."""
    lesson_id = int(ctx.payload["lesson_id"])
    with read_session() as session:
        lesson = session.get(Lesson, lesson_id)
        if lesson is not None and lesson.status in WAITING_FOR_PAYMENT:
            return f"lesson {lesson_id} waits for payment again; its checkout stays open"
        if lesson is not None and lesson.series_id is not None and _series_waits(session, lesson.series_id):
            return f"other lessons of series {lesson.series_id} wait for payment; its checkout stays open"
    expired = expire_checkout_for_lesson(lesson_id, before_call=ctx.renew)
    return f"expired {', '.join(expired)}" if expired else "no open Checkout Session"


def _series_waits(session: Session, series_id: int) -> bool:
    return (
        session.exec(
            select(Lesson.id).where(
                Lesson.series_id == series_id, col(Lesson.status).in_(WAITING_FOR_PAYMENT)
            )
        ).first()
        is not None
    )


jobs.register("stripe.expire_checkout", expire_checkout_job)


def expire_checkout_for_lesson(lesson_id: int, before_call: Callable[[], None] | None = None) -> list[str]:
    """Close the open Checkout Sessions of a lesson that no longer waits for payment (cancelled
    in the console), so the customer cannot pay for it any more. Returns the session ids Stripe
    expired. A session that completed meanwhile is left alone: its webhook decides (the lesson
    then needs a new time and finance sees it). Demo rows, which Stripe never issued, are skipped.
    """
    with read_session() as session:
        lesson = session.get(Lesson, lesson_id)
        series_id = lesson.series_id if lesson is not None else None
        whose = col(Payment.lesson_id) == lesson_id
        if series_id is not None:  # a series is paid as one: its payment is the lesson's too
            whose = or_(whose, col(Payment.series_id) == series_id)
        open_ids = [
            p.checkout_session_id
            for p in session.exec(select(Payment).where(whose, Payment.status == OPEN)).all()
            if p.checkout_session_id.startswith(("cs_test_", "cs_live_"))
        ]
    if not open_ids:
        return []
    gateway = get_gateway()
    expired: list[str] = []
    for session_id in open_ids:
        if before_call:
            before_call()
        current = gateway.retrieve_checkout_session(session_id)
        if current.get("status") == "open":
            if before_call:
                before_call()
            current = gateway.expire_checkout_session(session_id)
        if current.get("status") != "expired":
            continue
        expired.append(session_id)
        with write_session() as session:
            row = session.exec(select(Payment).where(Payment.checkout_session_id == session_id)).one()
            if row.status == OPEN:  # the webhook may have been first; never undo a final state
                row.status = PAYMENT_EXPIRED
                row.updated_at = clock.now()
                session.add(row)
    return expired
