"""Stripe payments: Checkout payment links, webhook verification and event handling,
reconciliation of missed webhooks, and the `check-stripe` diagnosis.

Everything talks to Stripe through the official `stripe` library (`StripeGateway`), pointed at
`STRIPE_API_BASE` so tests and sandboxes can put a faithful fake behind it. The library retries
network errors, 409s and 5xx answers (`STRIPE_MAX_RETRIES`) with the same idempotency key; we
also let it retry 429 rate limits, which it leaves alone by default. What still fails becomes a
`PaymentProviderError` (503) with a sentence for people, never a secret.

Webhooks are verified with Stripe's own scheme (`Webhook.construct_event`, 300 s tolerance) and
then handled in one write transaction that also stores the event by id, so a repeated or
concurrent delivery is a no-op and a failure leaves no partial writes: the event is then kept as
`failed` and the caller answers 500 so Stripe retries. Payment states only move forward:
paid and refunded are final, and a late `expired` never undoes a payment.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import stripe
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import clock
from core.config import Settings, get_settings, scrub
from core.db import get_engine, is_sqlite, read_session, write_session
from core.errors import (
    InvalidTransition,
    LesplannerError,
    NotFound,
    PaymentProviderError,
    PaymentsNotConfigured,
    ValidationFailed,
    WebhookNotConfigured,
    WebhookSignatureInvalid,
)
from core.messages import queue_message
from core.models import (
    CANCELLED,
    EXPIRED,
    HELD,
    NEEDS_RESCHEDULE,
    Contact,
    Conversation,
    Lesson,
    Payment,
    StripeEvent,
)
from core.status import status_row

log = logging.getLogger("lesplanner.payments")

ALLOWED_MINUTES = (60, 90)
WEBHOOK_TOLERANCE_SECONDS = 300
# Stripe accepts a Checkout Session's expires_at 30 minutes to 24 hours after *its* creation
# time, which is a moment after ours; this margin keeps the boundaries from being refused.
EXPIRY_MARGIN_SECONDS = 15
MIN_EXPIRES_MINUTES, MAX_EXPIRES_MINUTES = 30, 24 * 60
METADATA_VALUE_MAX = 500  # Stripe refuses longer metadata values

# Backoff between the library's retries; tests make these tiny.
RETRY_INITIAL_DELAY = 0.5
RETRY_MAX_DELAY = 5.0

# How often a healthy integration's status row is rewritten (a change is written at once).
STATUS_WRITE_INTERVAL = 30.0

# Payment states
OPEN, PAID, FAILED, PAYMENT_EXPIRED, REFUNDED = "open", "paid", "failed", "expired", "refunded"
FINAL_PAYMENT_STATES = (PAID, REFUNDED)

# StripeEvent states (DESIGN.md) and the extra answer for a repeat
PROCESSED, IGNORED, EVENT_FAILED, DUPLICATE = "processed", "ignored", "failed", "duplicate"

PRICE_SETTINGS = {
    ("standard", 60): "STANDARD_PRICE_ID_60",
    ("standard", 90): "STANDARD_PRICE_ID_90",
    ("weekend", 60): "WEEKEND_PRICE_ID_60",
    ("weekend", 90): "WEEKEND_PRICE_ID_90",
}

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
    """A verified event could not be handled; it is stored as failed and Stripe will retry."""

    http_status = 500


@dataclass(frozen=True)
class WebhookResult:
    event_id: str
    type: str
    status: str  # processed | duplicate | ignored
    detail: str = ""


class StripeCheck(NamedTuple):
    """One line of `check-stripe` and the integrations page."""

    subject: str
    ok: bool
    detail: str


@dataclass
class ReconcileReport:
    since: datetime
    checked: int = 0  # Checkout Sessions Stripe listed
    ours: int = 0  # of those, created by Lesplanner
    applied: list[str] = field(default_factory=list)  # "cs_… → paid (lesson 12 confirmed)"
    created: list[str] = field(default_factory=list)  # Payment rows we did not have
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"Checked {self.checked} Checkout Sessions since {self.since.isoformat()}: "
                 f"{self.ours} from Lesplanner, {len(self.applied)} applied, "
                 f"{len(self.created)} recorded, {self.unchanged} already in sync, "
                 f"{len(self.errors)} errors."]
        lines += [f"  applied  {line}" for line in self.applied]
        lines += [f"  recorded {line}" for line in self.created]
        lines += [f"  ERROR    {line}" for line in self.errors]
        return "\n".join(lines)


# --- helpers ------------------------------------------------------------------------------------


def _scrub(text: str, settings: Settings | None = None) -> str:
    """`text` without any configured secret (Stripe masks keys itself; this is the belt)."""
    return scrub(text, settings)


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value not in (None, "") else None


def _id_of(value: Any) -> str | None:
    """A Stripe reference that is either an id or an expanded object."""
    if isinstance(value, dict):
        return value.get("id")
    return value or None


def _status_key(name: str) -> tuple[str, str]:
    return (get_settings().database_url, name)


_status_memo: dict[tuple[str, str], tuple[bool, float]] = {}
_status_lock = threading.Lock()


def _status_due(name: str, ok: bool) -> bool:
    with _status_lock:
        prev = _status_memo.get(_status_key(name))
    return prev is None or prev[0] != ok or time.monotonic() - prev[1] >= STATUS_WRITE_INTERVAL


def _write_status(session: Session, name: str, ok: bool, detail: str) -> None:
    now = clock.now()
    row = status_row(session, name)
    row.ok = ok
    row.detail = detail[:500]
    if ok:
        row.last_ok_at = now
    else:
        row.last_error_at = now
        row.last_error = detail[:500]
    session.add(row)


def _record_status(name: str, ok: bool, detail: str, session: Session | None = None) -> None:
    """Note an integration's health for the console; cheap (throttled) and never fatal."""
    if not _status_due(name, ok):
        return
    detail = _scrub(detail)
    try:
        if session is not None:
            with session.begin_nested():
                _write_status(session, name, ok, detail)
        else:
            with write_session() as own:
                _write_status(own, name, ok, detail)
        with _status_lock:
            _status_memo[_status_key(name)] = (ok, time.monotonic())
    except Exception as exc:  # noqa: BLE001 - status bookkeeping must not break payments
        log.warning("could not record %s status: %s", name, type(exc).__name__)


def reset_status_memo() -> None:
    """Forget when status rows were last written (tests use fresh databases)."""
    with _status_lock:
        _status_memo.clear()


# --- the gateway ----------------------------------------------------------------------------------


class _RetryingRequestsClient(stripe.RequestsClient):
    """Stripe's default sync HTTP client (requests), plus two decisions of ours:
    429 rate limits are retried too (Stripe asks for backoff; the library only retries them
    when Stripe adds `Stripe-Should-Retry: true`), and the backoff comes from this module."""

    def _should_retry(self, response, api_connection_error, num_retries, max_network_retries):  # noqa: ANN001, ANN202
        if response is not None and num_retries < (max_network_retries or 0):
            _, status_code, headers = response
            should = headers.get("stripe-should-retry") if headers is not None else None
            if status_code == 429 and should != "false":
                return True
        return super()._should_retry(response, api_connection_error, num_retries, max_network_retries)

    def _sleep_time_seconds(self, num_retries: int) -> float:
        delay = min(RETRY_INITIAL_DELAY * (2 ** (num_retries - 1)), RETRY_MAX_DELAY)
        return max(RETRY_INITIAL_DELAY, self._add_jitter_time(delay))


class StripeGateway:
    """The few Stripe calls Lesplanner makes, as plain dicts, with errors translated."""

    def __init__(self, settings: Settings) -> None:
        api_key = settings.secret("stripe_api_key")
        if not api_key:
            raise PaymentsNotConfigured(
                "Stripe is not configured: set STRIPE_API_KEY to your secret key "
                "(sk_test_… or sk_live_…, Stripe dashboard → Developers → API keys)."
            )
        self.settings = settings
        self.max_retries = max(0, settings.stripe_max_retries)
        self.client = stripe.StripeClient(
            api_key,
            base_addresses={"api": settings.stripe_api_base.rstrip("/")},
            max_network_retries=self.max_retries,
            http_client=_RetryingRequestsClient(timeout=settings.stripe_timeout_seconds),
        )

    def _fail(self, exc: stripe.StripeError, doing: str) -> LesplannerError:
        attempts = self.max_retries + 1
        if isinstance(exc, stripe.AuthenticationError):
            return PaymentsNotConfigured(
                "Stripe rejected STRIPE_API_KEY (invalid, revoked or expired key); "
                "set a valid secret key from the Stripe dashboard."
            )
        if isinstance(exc, stripe.PermissionError):
            return PaymentsNotConfigured(
                f"STRIPE_API_KEY is not allowed to {doing}; use a secret key or give the "
                "restricted key that permission."
            )
        if isinstance(exc, stripe.RateLimitError):
            return PaymentProviderError(
                f"Stripe is rate limiting our requests and refused to {doing} after {attempts} "
                "attempts; try again in a minute."
            )
        if isinstance(exc, stripe.APIConnectionError):
            return PaymentProviderError(
                f"Stripe could not be reached to {doing} (network error or timeout, "
                f"{attempts} attempts); try again shortly."
            )
        if isinstance(exc, stripe.APIError):
            return PaymentProviderError(
                f"Stripe had an internal error and could not {doing} ({attempts} attempts); "
                "try again shortly."
            )
        message = _scrub(exc.user_message or type(exc).__name__, self.settings)
        return PaymentProviderError(f"Stripe refused to {doing}: {message}")

    def _call(self, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except stripe.StripeError as exc:
            log.warning("Stripe call failed (%s): %s", doing, type(exc).__name__)
            raise self._fail(exc, doing) from None

    def retrieve_price(self, price_id: str) -> dict[str, Any]:
        return self._call(f"read price {price_id}", self.client.v1.prices.retrieve, price_id).to_dict()

    def retrieve_balance(self) -> dict[str, Any]:
        return self._call("read the account balance", self.client.v1.balance.retrieve).to_dict()

    def create_checkout_session(self, params: dict[str, Any], idempotency_key: str) -> dict[str, Any]:
        """Raises stripe.IdempotencyError untranslated: the caller knows what to do with it."""
        try:
            session = self.client.v1.checkout.sessions.create(
                params=params, options={"idempotency_key": idempotency_key})
        except stripe.IdempotencyError:
            raise
        except stripe.StripeError as exc:
            log.warning("Stripe call failed (create a Checkout Session): %s", type(exc).__name__)
            error = self._fail(exc, "create a Checkout Session")
            error.extra["stripe_code"] = getattr(exc, "code", None)
            error.extra["stripe_param"] = getattr(exc, "param", None)
            raise error from None
        return session.to_dict()

    def retrieve_checkout_session(self, session_id: str) -> dict[str, Any]:
        return self._call(f"read Checkout Session {session_id}",
                          self.client.v1.checkout.sessions.retrieve, session_id).to_dict()

    def expire_checkout_session(self, session_id: str) -> dict[str, Any]:
        return self._call(f"expire Checkout Session {session_id}",
                          self.client.v1.checkout.sessions.expire, session_id).to_dict()

    def list_checkout_sessions(self, created_gte: int) -> list[dict[str, Any]]:
        """Every Checkout Session created at or after `created_gte`, newest first (all pages)."""

        def fetch() -> list[dict[str, Any]]:
            page = self.client.v1.checkout.sessions.list(
                params={"created": {"gte": created_gte}, "limit": 100})
            return [s.to_dict() for s in page.auto_paging_iter()]

        return self._call("list Checkout Sessions", fetch)


_gateways: dict[tuple, StripeGateway] = {}
_gateways_lock = threading.Lock()


def get_gateway(settings: Settings | None = None) -> StripeGateway:
    """One gateway (and HTTP connection pool) per Stripe configuration."""
    settings = settings or get_settings()
    api_key = settings.secret("stripe_api_key") or ""
    key = (hashlib.sha256(api_key.encode()).hexdigest(), settings.stripe_api_base,
           settings.stripe_max_retries, settings.stripe_timeout_seconds)
    with _gateways_lock:
        gateway = _gateways.get(key)
        if gateway is None:
            gateway = StripeGateway(settings)
            if len(_gateways) > 8:  # tests build many configurations; production has one
                _gateways.clear()
            _gateways[key] = gateway
        return gateway


# --- payment links --------------------------------------------------------------------------------


def price_setting_name(segment: str | None, minutes: int) -> str:
    """The environment variable that holds the price for this segment and lesson length."""
    kind = "weekend" if (segment or "").strip().lower() == "weekend" else "standard"
    return PRICE_SETTINGS[(kind, minutes)]


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


def _expiry_seconds(settings: Settings) -> int:
    minutes = settings.checkout_expires_minutes
    if not MIN_EXPIRES_MINUTES <= minutes <= MAX_EXPIRES_MINUTES:
        raise PaymentsNotConfigured(
            f"CHECKOUT_EXPIRES_MINUTES must be between {MIN_EXPIRES_MINUTES} and "
            f"{MAX_EXPIRES_MINUTES} (Stripe's limits for a Checkout Session); it is {minutes}."
        )
    seconds = minutes * 60
    return min(max(seconds, MIN_EXPIRES_MINUTES * 60 + EXPIRY_MARGIN_SECONDS),
               MAX_EXPIRES_MINUTES * 60 - EXPIRY_MARGIN_SECONDS)


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
    session: Session | None = None,
) -> Payment:
    """Create a Stripe Checkout Session for one lesson and store it as an open Payment.

    The same order_id again returns the stored Payment while its link is still usable; a
    paid order is refused (409). Raises ValidationFailed (minutes, ids), PaymentsNotConfigured
    (naming the missing setting) or PaymentProviderError. With `session`, the Payment is
    written in the caller's transaction.
    """
    settings = get_settings()
    minutes = _minutes(minutes)
    order_id = str(order_id or "").strip()
    conversation_id = str(conversation_id or "").strip()
    if not order_id or len(order_id) > 200:
        raise ValidationFailed("order_id is required (at most 200 characters).", field="order_id")
    if not conversation_id:
        raise ValidationFailed("conversation_id is required.", field="conversation_id")

    price_var = price_setting_name(segment, minutes)
    price_id = getattr(settings, price_var.lower())
    missing = [name for name, value in (
        ("STRIPE_API_KEY", settings.secret("stripe_api_key")),
        (price_var, price_id),
        ("CHECKOUT_SUCCESS_URL", settings.checkout_success_url),
        ("CHECKOUT_CANCEL_URL", settings.checkout_cancel_url),
    ) if not value]
    if missing:
        raise PaymentsNotConfigured(
            f"Stripe is not configured: set {', '.join(missing)} "
            f"(see docs/STRIPE.md). No payment link was created.",
            missing=missing,
        )
    expiry_seconds = _expiry_seconds(settings)
    gateway = get_gateway(settings)

    args = (order_id, conversation_id, contact_id, lesson_id)
    if session is not None:
        prepared = _prepare(session, *args)
    else:
        with read_session() as read:
            prepared = _prepare(read, *args) if read.get(Conversation, conversation_id) else None
        if prepared is None:  # a new conversation is registered first (a short write)
            with write_session() as write:
                prepared = _prepare(write, *args)
    existing, attempt, contact_id = prepared
    if existing is not None:
        return existing

    now = clock.now()
    metadata = {k: _metadata_value(v) for k, v in {
        "segment": segment, "minutes": minutes, "order_id": order_id,
        "conversation_id": conversation_id, "student_name": student_name, "service": service,
        "audience": audience, "program": program, "contact_id": contact_id, "lesson_id": lesson_id,
    }.items() if v is not None}
    params: dict[str, Any] = {
        "mode": "payment",
        "line_items": [{"price": price_id, "quantity": 1}],
        "client_reference_id": order_id,
        "metadata": metadata,
        "payment_intent_data": {"metadata": metadata},
        "locale": "nl",
        "expires_at": int(now.timestamp()) + expiry_seconds,
        "success_url": settings.checkout_success_url,
        "cancel_url": settings.checkout_cancel_url,
    }
    key = _idempotency_key(order_id, attempt)
    try:
        try:
            checkout = gateway.create_checkout_session(params, key)
        except stripe.IdempotencyError:
            # The key was used with other parameters: an earlier attempt reached Stripe but its
            # answer never got stored here (its link was never handed out). Start a new one.
            log.warning("idempotency key reused for order %s; creating a fresh session", order_id)
            checkout = gateway.create_checkout_session(params, f"{key}-r{int(time.time())}")
        except PaymentsNotConfigured:
            raise
        except PaymentProviderError as exc:
            if exc.extra.get("stripe_code") == "resource_missing" and "price" in str(exc.extra.get("stripe_param")):
                raise PaymentsNotConfigured(
                    f"{price_var} is set to '{price_id}', but Stripe has no such price "
                    "(a typo, or a live-mode price used with a test-mode key)."
                ) from None
            raise
    except (PaymentsNotConfigured, PaymentProviderError) as exc:
        _record_status("stripe", False, exc.message, session)
        raise
    except stripe.StripeError as exc:  # an IdempotencyError on the fresh key as well
        error = gateway._fail(exc, "create a Checkout Session")
        _record_status("stripe", False, error.message, session)
        raise error from None

    if session is not None:
        return _store_new_payment(session, checkout, order_id, conversation_id, contact_id,
                                  lesson_id, segment, minutes, price_id)
    with write_session() as write:
        return _store_new_payment(write, checkout, order_id, conversation_id, contact_id,
                                  lesson_id, segment, minutes, price_id)


def _prepare(session: Session, order_id: str, conversation_id: str, contact_id: str | None,
             lesson_id: int | None) -> tuple[Payment | None, int, str | None]:
    """Before calling Stripe: an existing usable link for the order (returned as is), the
    attempt number for the idempotency key, and the conversation's contact."""
    payments = list(session.exec(
        select(Payment).where(Payment.order_id == order_id).order_by(col(Payment.id).desc())
    ).all())
    if payments:
        latest = payments[0]
        if latest.status in FINAL_PAYMENT_STATES:
            raise InvalidTransition(f"Order '{order_id}' is already {latest.status}; use a new order_id.")
        usable_until = clock.now() + timedelta(minutes=1)
        if latest.status == OPEN and latest.expires_at and latest.expires_at > usable_until and latest.url:
            return latest, len(payments), contact_id
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        if not contact_id:
            raise NotFound(f"Unknown conversation '{conversation_id}'; send contact_id the first time.")
        from core.booking import ensure_conversation  # lazy: booking imports this module

        conversation, _ = ensure_conversation(session, conversation_id, contact_id)
    elif contact_id and contact_id != conversation.contact_id:
        raise ValidationFailed(
            f"Conversation '{conversation_id}' belongs to another contact than '{contact_id}'.")
    if lesson_id is not None and session.get(Lesson, lesson_id) is None:
        raise ValidationFailed(f"Lesson {lesson_id} does not exist.", field="lesson_id")
    return None, len(payments) + 1, contact_id or conversation.contact_id


def _store_new_payment(session: Session, checkout: dict[str, Any], order_id: str,
                       conversation_id: str, contact_id: str | None, lesson_id: int | None,
                       segment: str, minutes: int, price_id: str) -> Payment:
    session_id = checkout["id"]
    existing = session.exec(select(Payment).where(Payment.checkout_session_id == session_id)).first()
    if existing is not None:  # Stripe replayed a session we already stored
        return existing
    now = clock.now()
    payment = Payment(
        checkout_session_id=session_id, order_id=order_id, conversation_id=conversation_id,
        contact_id=contact_id, lesson_id=lesson_id, segment=segment, minutes=minutes,
        price_id=price_id, amount=checkout.get("amount_total"), currency=checkout.get("currency"),
        status=OPEN, url=checkout.get("url"), expires_at=_ts(checkout.get("expires_at")),
        created_at=now, updated_at=now,
    )
    session.add(payment)
    session.flush()
    _record_status("stripe", True, f"Checkout Session created {now:%Y-%m-%d %H:%M} UTC", session)
    return payment


# --- webhooks -------------------------------------------------------------------------------------


def _signature_problem(exc: stripe.SignatureVerificationError) -> str:
    text = str(exc.user_message or "")
    if "tolerance" in text:
        return (f"The Stripe-Signature timestamp is more than {WEBHOOK_TOLERANCE_SECONDS} seconds "
                "old: a replayed or badly delayed delivery (or this server's clock is wrong).")
    if "matching the expected signature" in text:
        return ("The Stripe-Signature does not match the body: the body was changed, or "
                "STRIPE_WEBHOOK_SECRET is not this endpoint's signing secret.")
    if "expected scheme" in text or "extract timestamp" in text:
        return "The Stripe-Signature header is malformed (expected t=…,v1=…)."
    return "The Stripe-Signature header could not be verified."


def verify_webhook(payload: bytes, sig_header: str | None) -> dict[str, Any]:
    """Check a webhook's `Stripe-Signature` with Stripe's scheme and return the event as a dict.

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
            "The Stripe-Signature header is missing; this endpoint only accepts webhooks signed by Stripe.")
    try:
        # Stripe's check (what Webhook.construct_event runs before building an Event object we
        # would not use): HMAC-SHA256 of "<t>.<body>" against every v1 signature, and t no
        # older than the tolerance.
        stripe.WebhookSignature.verify_header(payload, sig_header, secret, tolerance=WEBHOOK_TOLERANCE_SECONDS)
        event = json.loads(payload)
    except stripe.SignatureVerificationError as exc:
        raise WebhookSignatureInvalid(_signature_problem(exc)) from None
    except (ValueError, TypeError, AttributeError):  # signed, but not a JSON object / not UTF-8
        raise WebhookSignatureInvalid("The webhook body is not a Stripe event (not a JSON object).") from None
    if not isinstance(event, dict) or not isinstance(event.get("id"), str) or not isinstance(event.get("type"), str):
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
                row = session.get(StripeEvent, event_id)
                done = (PROCESSED,) if retry_ignored else (PROCESSED, IGNORED)
                if row is not None and row.status in done:
                    return WebhookResult(event_id, type_, DUPLICATE, f"already {row.status}")
                now = clock.now()
                if row is None:
                    row = StripeEvent(id=event_id, type=type_[:255], payload=payload, received_at=now,
                                      status=EVENT_FAILED, attempts=1)
                    if is_sqlite(session.get_bind()):
                        session.add(row)  # BEGIN IMMEDIATE: nobody else can insert it meanwhile
                    else:
                        try:
                            with session.begin_nested():
                                session.add(row)
                        except IntegrityError:  # a concurrent delivery stored it first
                            return WebhookResult(event_id, type_, DUPLICATE, "handled by a concurrent delivery")
                else:
                    row.attempts += 1
                status, detail = _dispatch(session, event, now)
                row.status = status
                row.processed_at = now
                row.error = detail[:1000] if status == IGNORED else None  # why it was ignored
                _record_status("webhook", True, f"last event {event_id} ({type_}) {status}", session)
                return WebhookResult(event_id, type_, status, detail)
        except Exception as exc:
            message = _scrub(f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}")[:1000]
            log.error("Stripe event %s (%s) failed: %s", event_id, type_, message)
            _store_failure(event_id, type_, payload, message)
            raise WebhookHandlingFailed(
                f"Stripe event {event_id} ({type_}) could not be handled and is stored as failed; "
                f"Stripe will retry it. Cause: {message}"
            ) from exc


def _store_failure(event_id: str, type_: str, payload: str, message: str) -> None:
    try:
        with write_session() as session:
            row = session.get(StripeEvent, event_id)
            if row is None:
                session.add(StripeEvent(id=event_id, type=type_[:255], payload=payload,
                                        received_at=clock.now(), status=EVENT_FAILED, error=message,
                                        attempts=1))
            elif row.status == EVENT_FAILED or row.status == IGNORED:
                row.status = EVENT_FAILED
                row.error = message
                row.attempts += 1
            # processed meanwhile (a concurrent delivery won): leave it
        _record_status("webhook", False, f"event {event_id} ({type_}) failed: {message}")
    except Exception as exc:  # noqa: BLE001 - the original failure is what the caller must see
        log.error("could not store the failure of Stripe event %s: %s", event_id, type(exc).__name__)


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
        return _on_released(session, obj, now, FAILED, CANCELLED, "payment_failed")
    if type_ == "checkout.session.expired":
        return _on_released(session, obj, now, PAYMENT_EXPIRED, EXPIRED, "hold_expired")
    if type_ == "charge.refunded":
        return _on_refunded(session, obj, now)
    return IGNORED, f"Lesplanner does not act on {type_ or 'untyped'} events."


def _not_ours(obj: dict[str, Any]) -> tuple[str, str]:
    return IGNORED, (f"Checkout Session {obj.get('id')} was not created by Lesplanner "
                     "(no order_id and conversation_id in its metadata).")


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
    order_id = md.get("order_id") or obj.get("client_reference_id")
    conversation_id = md.get("conversation_id")
    if not (order_id and conversation_id and md.get("order_id")):
        return None
    contact_id = md.get("contact_id") or None
    if session.get(Conversation, conversation_id) is None:
        if contact_id:
            from core.booking import ensure_conversation  # lazy: booking imports this module

            ensure_conversation(session, conversation_id, contact_id)
        else:
            conversation_id = None
    if contact_id and session.get(Contact, contact_id) is None:
        contact_id = None
    lesson_id = int(md["lesson_id"]) if str(md.get("lesson_id", "")).isdigit() else None
    if lesson_id is not None and session.get(Lesson, lesson_id) is None:
        lesson_id = None
    minutes = int(md["minutes"]) if str(md.get("minutes", "")).isdigit() else 0
    segment = md.get("segment")
    price_id = "unknown"
    if minutes in ALLOWED_MINUTES:
        price_id = getattr(get_settings(), price_setting_name(segment, minutes).lower()) or "unknown"
    payment = Payment(
        checkout_session_id=session_id, order_id=order_id, conversation_id=conversation_id,
        contact_id=contact_id, lesson_id=lesson_id, segment=segment, minutes=minutes,
        price_id=price_id, amount=obj.get("amount_total"), currency=obj.get("currency"),
        status=OPEN, url=obj.get("url"), expires_at=_ts(obj.get("expires_at")),
        created_at=_ts(obj.get("created")) or now, updated_at=now,
    )
    session.add(payment)
    session.flush()
    log.info("recorded Checkout Session %s from its metadata (order %s)", session_id, order_id)
    return payment


def _on_paid(session: Session, obj: dict[str, Any], now: datetime) -> tuple[str, str]:
    payment = _payment_for_session(session, obj, now)
    if payment is None:
        return _not_ours(obj)
    if payment.status in FINAL_PAYMENT_STATES:
        return PROCESSED, f"Payment {payment.checkout_session_id} was already {payment.status}; nothing changed."
    previous = payment.status
    payment.status = PAID
    payment.paid_at = now
    payment.payment_intent_id = _id_of(obj.get("payment_intent")) or payment.payment_intent_id
    if obj.get("amount_total") is not None:
        payment.amount = obj["amount_total"]
    payment.currency = obj.get("currency") or payment.currency
    payment.updated_at = now
    details = [f"Payment {payment.checkout_session_id} paid (was {previous})."]

    lesson = session.get(Lesson, payment.lesson_id) if payment.lesson_id else None
    if lesson is not None:
        from core.booking import confirm_paid_lesson  # lazy: booking imports this module

        confirm_paid_lesson(session, lesson)
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
    if conversation is not None and not (lesson is not None and lesson.status == NEEDS_RESCHEDULE):
        queue_message(session, conversation.id, "payment_success_message",
                      dedupe_key=f"payment_success:{payment.checkout_session_id}")
    return PROCESSED, " ".join(details)


def _on_awaiting_payment(session: Session, obj: dict[str, Any], now: datetime) -> tuple[str, str]:
    payment = _payment_for_session(session, obj, now)
    if payment is None:
        return _not_ours(obj)
    if payment.status in FINAL_PAYMENT_STATES:
        return PROCESSED, f"Payment {payment.checkout_session_id} was already {payment.status}; nothing changed."
    payment.payment_intent_id = _id_of(obj.get("payment_intent")) or payment.payment_intent_id
    payment.updated_at = now
    return PROCESSED, (f"Checkout completed but the payment is still processing "
                       f"(payment_status {obj.get('payment_status')}); waiting for "
                       "checkout.session.async_payment_succeeded or _failed.")


def _other_live_payment(session: Session, payment: Payment, now: datetime) -> bool:
    """Does the lesson have another payment that still counts (paid, or an open link)?"""
    others = session.exec(
        select(Payment).where(Payment.lesson_id == payment.lesson_id, Payment.id != payment.id)
        .where(col(Payment.status).in_((OPEN, PAID)))
    ).all()
    return any(p.status == PAID or (p.expires_at is None or p.expires_at > now) for p in others)


def _on_released(session: Session, obj: dict[str, Any], now: datetime, payment_status: str,
                 lesson_status: str, message_key: str) -> tuple[str, str]:
    payment = _payment_for_session(session, obj, now)
    if payment is None:
        return _not_ours(obj)
    if payment.status in FINAL_PAYMENT_STATES:
        return PROCESSED, (f"Payment {payment.checkout_session_id} is already {payment.status}; "
                           f"a late '{payment_status}' changes nothing.")
    if payment.status == OPEN:
        payment.status = payment_status
        payment.updated_at = now
    details = [f"Payment {payment.checkout_session_id} is {payment.status}."]
    lesson = session.get(Lesson, payment.lesson_id) if payment.lesson_id else None
    if lesson is not None and lesson.status == HELD:
        if _other_live_payment(session, payment, now):
            details.append(f"Lesson {lesson.id} stays held: it has another payment link.")
        else:
            from core.booking import release_hold  # lazy: booking imports this module

            release_hold(session, lesson, lesson_status, message_key)
            details.append(f"Lesson {lesson.id} released ({lesson.status}).")
    return PROCESSED, " ".join(details)


def _on_refunded(session: Session, charge: dict[str, Any], now: datetime) -> tuple[str, str]:
    intent = _id_of(charge.get("payment_intent"))
    payment = None
    if intent:
        payment = session.exec(select(Payment).where(Payment.payment_intent_id == intent)).first()
    if payment is None:
        return IGNORED, f"No Lesplanner payment has payment intent {intent or '(none)'}."
    if not charge.get("refunded"):
        return IGNORED, (f"Partial refund of {charge.get('amount_refunded')} of {charge.get('amount')} "
                         f"{charge.get('currency', '')}: payment {payment.checkout_session_id} stays {payment.status}.")
    if payment.status == REFUNDED:
        return PROCESSED, f"Payment {payment.checkout_session_id} was already refunded; nothing changed."
    payment.status = REFUNDED
    payment.updated_at = now
    if payment.conversation_id and session.get(Conversation, payment.conversation_id) is not None:
        queue_message(session, payment.conversation_id, "refund_issued",
                      dedupe_key=f"refund_issued:{payment.checkout_session_id}")
    return PROCESSED, f"Payment {payment.checkout_session_id} refunded."


# --- reconciliation, diagnosis, links -------------------------------------------------------------


def _is_ours(obj: dict[str, Any]) -> bool:
    md = obj.get("metadata") or {}
    return bool(md.get("order_id") and md.get("conversation_id"))


def reconcile_payments(since: datetime) -> ReconcileReport:
    """Compare Stripe's Checkout Sessions created since `since` with our Payments and apply what
    a missed (or failed) webhook would have: paid, processing, expired. Each fix goes through
    the webhook handler as a synthetic event `reconcile:<session>:<state>`, so running this
    twice, or a late real webhook, changes nothing twice."""
    if since.tzinfo is None:
        raise ValidationFailed("since must be timezone-aware.", field="since")
    report = ReconcileReport(since=since)
    gateway = get_gateway()
    try:
        sessions = gateway.list_checkout_sessions(int(since.timestamp()))
    except LesplannerError as exc:
        _record_status("stripe", False, exc.message)
        raise
    _record_status("stripe", True, f"listed {len(sessions)} Checkout Sessions for reconciliation")
    for obj in sessions:
        report.checked += 1
        session_id = obj.get("id")
        with read_session() as read:
            payment = read.exec(select(Payment).where(Payment.checkout_session_id == session_id)).first()
        if payment is None and not _is_ours(obj):
            continue
        report.ours += 1
        state, paid = obj.get("status"), obj.get("payment_status") in ("paid", "no_payment_required")
        ours = payment.status if payment else None
        if state == "complete" and paid and ours not in FINAL_PAYMENT_STATES:
            type_, label = "checkout.session.completed", "paid"
        elif state == "complete" and not paid and (payment is None or not payment.payment_intent_id) \
                and ours not in FINAL_PAYMENT_STATES:
            type_, label = "checkout.session.completed", "processing"
        elif state == "expired" and ours in (None, OPEN):
            type_, label = "checkout.session.expired", "expired"
        elif state == "open" and payment is None:
            try:
                with write_session() as write:
                    _payment_for_session(write, obj, clock.now())
                report.created.append(f"{session_id} (open, order {obj['metadata'].get('order_id')})")
            except Exception as exc:  # noqa: BLE001 - one bad session must not stop the run
                report.errors.append(f"{session_id}: {_scrub(str(exc))}")
            continue
        else:
            report.unchanged += 1
            continue
        event = {
            "id": f"reconcile:{session_id}:{label}", "object": "event", "type": type_,
            "created": int(clock.now().timestamp()), "livemode": bool(obj.get("livemode")),
            "data": {"object": obj}, "request": {"id": None, "idempotency_key": None},
        }
        try:
            result = _process_event(event, json.dumps(event))
        except WebhookHandlingFailed as exc:
            report.errors.append(f"{session_id}: {exc.message}")
            continue
        if result.status == PROCESSED:
            report.applied.append(f"{session_id} → {label}: {result.detail}")
        else:
            report.unchanged += 1
    return report


def _money(amount: int | None, currency: str | None) -> str:
    if amount is None:
        return "no fixed amount"
    symbol = {"eur": "€", "usd": "$", "gbp": "£"}.get((currency or "").lower())
    value = f"{amount / 100:.2f}"
    return f"{symbol}{value}" if symbol else f"{value} {(currency or '').upper()}"


def check_stripe() -> list[StripeCheck]:
    """Diagnose the Stripe set-up: key, each price, webhook secret, checkout URLs and expiry."""
    settings = get_settings()
    checks: list[StripeCheck] = []
    api_key = settings.secret("stripe_api_key")
    gateway: StripeGateway | None = None
    if not api_key:
        checks.append(StripeCheck("STRIPE_API_KEY", False,
                                  "not set; payment links cannot be created (see docs/STRIPE.md)."))
    else:
        mode = "test" if "_test_" in api_key[:9] else "live" if "_live_" in api_key[:9] else "unknown"
        try:
            gateway = get_gateway(settings)
            balance = gateway.retrieve_balance()
            live = bool(balance.get("livemode"))
            checks.append(StripeCheck("STRIPE_API_KEY", True,
                                      f"Stripe accepted the key ({'live' if live else 'test'} mode)."))
            if mode != "unknown" and (mode == "live") != live:
                checks.append(StripeCheck("STRIPE_API_KEY", False,
                                          f"the key looks like a {mode}-mode key but Stripe answered in "
                                          f"{'live' if live else 'test'} mode."))
        except LesplannerError as exc:
            checks.append(StripeCheck("STRIPE_API_KEY", False, exc.message))
            gateway = None
    for var in PRICE_SETTINGS.values():
        price_id = getattr(settings, var.lower())
        if not price_id:
            checks.append(StripeCheck(var, False, "not set; these lessons cannot be paid."))
            continue
        if gateway is None:
            checks.append(StripeCheck(var, False, f"'{price_id}' not checked: the API key does not work."))
            continue
        try:
            price = gateway.retrieve_price(price_id)
        except LesplannerError as exc:
            checks.append(StripeCheck(var, False, f"'{price_id}': {exc.message}"))
            continue
        problems = []
        if not price.get("active"):
            problems.append("the price is archived (inactive)")
        if price.get("type") != "one_time":
            problems.append("the price is recurring; lessons need a one-time price")
        if price.get("unit_amount") is None:
            problems.append("the price has no fixed amount")
        text = f"{price_id}: {_money(price.get('unit_amount'), price.get('currency'))} per lesson"
        checks.append(StripeCheck(var, not problems, "; ".join([text, *problems])))
    secret = settings.secret("stripe_webhook_secret")
    if not secret:
        checks.append(StripeCheck("STRIPE_WEBHOOK_SECRET", False,
                                  "not set; the webhook endpoint refuses every event (503)."))
    elif not secret.startswith("whsec_"):
        checks.append(StripeCheck("STRIPE_WEBHOOK_SECRET", False,
                                  "set, but it does not start with whsec_ (is it the signing secret?)."))
    else:
        checks.append(StripeCheck("STRIPE_WEBHOOK_SECRET", True, "set (whsec_…)."))
    for var, value in (("CHECKOUT_SUCCESS_URL", settings.checkout_success_url),
                       ("CHECKOUT_CANCEL_URL", settings.checkout_cancel_url)):
        if not value:
            checks.append(StripeCheck(var, False, "not set; payment links cannot be created."))
        elif not value.startswith(("https://", "http://")):
            checks.append(StripeCheck(var, False, f"'{value}' is not an http(s) URL."))
        else:
            checks.append(StripeCheck(var, True, value))
    try:
        seconds = _expiry_seconds(settings)
        checks.append(StripeCheck("CHECKOUT_EXPIRES_MINUTES", True,
                                  f"links and holds last {seconds // 60} minutes."))
    except PaymentsNotConfigured as exc:
        checks.append(StripeCheck("CHECKOUT_EXPIRES_MINUTES", False, exc.message))
    if api_key:
        bad = [c for c in checks if not c.ok]
        _record_status("stripe", not bad, "check-stripe: " + ("all good" if not bad else
                                                               f"{len(bad)} problem(s), first: {bad[0].subject}"))
    return checks


def expire_checkout_for_lesson(lesson_id: int) -> list[str]:
    """Close the open Checkout Sessions of a lesson that no longer waits for payment (cancelled
    in the console), so the customer cannot pay for it any more. Returns the session ids Stripe
    expired. A session that completed meanwhile is left alone: its webhook decides (the lesson
    then needs a new time and finance sees it). Demo rows, which Stripe never issued, are skipped.
    """
    with read_session() as session:
        open_ids = [p.checkout_session_id for p in session.exec(
            select(Payment).where(Payment.lesson_id == lesson_id, Payment.status == OPEN)).all()
            if p.checkout_session_id.startswith(("cs_test_", "cs_live_"))]
    if not open_ids:
        return []
    gateway = get_gateway()
    expired: list[str] = []
    for session_id in open_ids:
        current = gateway.retrieve_checkout_session(session_id)
        if current.get("status") == "open":
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


def stripe_dashboard_url(checkout_session_id: str, livemode: bool | None = None, *,
                         payment_intent_id: str | None = None) -> str | None:
    """Where finance finds this payment in the Stripe dashboard: the payment itself when there
    is a PaymentIntent, otherwise a dashboard search for the Checkout Session id. None for ids
    Stripe never issued (demo rows), so the console shows no link that leads nowhere. Test or
    live mode follows the session id's prefix unless `livemode` says otherwise."""
    if not checkout_session_id or not checkout_session_id.startswith(("cs_test_", "cs_live_")):
        return None
    if livemode is None:
        livemode = checkout_session_id.startswith("cs_live_")
    base = "https://dashboard.stripe.com" + ("" if livemode else "/test")
    if payment_intent_id:
        return f"{base}/payments/{payment_intent_id}"
    return f"{base}/search?query={checkout_session_id}"

