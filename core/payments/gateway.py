"""Talking to Stripe, and the vocabulary the rest of core.payments shares.

`StripeGateway` makes the few Stripe calls Lesplanner needs through the official `stripe`
library, pointed at `STRIPE_API_BASE`; the library retries network errors, 409s, 5xx and (our
addition, `_RetryingRequestsClient`, by the shared rule of core/integrations.py) 408s and 429s
with the same idempotency key, backing off by `RETRY_INITIAL_DELAY` / `RETRY_MAX_DELAY`. What still
fails becomes a `PaymentProviderError` (the service is unavailable)
with a sentence for people, never a secret. Also here: payment states, the price settings, the
throttle of the Stripe and webhook status rows (written by core/integrations.py), and the
`check-stripe` diagnosis.

Tests that make the backoff tiny must monkeypatch *this* module (`core.payments.gateway`): it is
the one that reads the constants.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import UTC, datetime
from typing import Any, NamedTuple

import stripe
from sqlmodel import Session

from core import integrations
from core.config import Settings, get_settings
from core.errors import LesplannerError, PaymentProviderError, PaymentsNotConfigured
from core.models import PaymentStatus

log = logging.getLogger("lesplanner.payments")

ALLOWED_MINUTES = (60, 90)
# Stripe accepts a Checkout Session's expires_at 30 minutes to 24 hours after *its* creation
# time, which is a moment after ours; this margin keeps the boundaries from being refused.
EXPIRY_MARGIN_SECONDS = 15
MIN_EXPIRES_MINUTES, MAX_EXPIRES_MINUTES = 30, 24 * 60

# Backoff between the library's retries; tests make these tiny.
RETRY_INITIAL_DELAY = 0.5
RETRY_MAX_DELAY = 5.0

# How often a healthy integration's status row is rewritten (a change is written at once).
STATUS_WRITE_INTERVAL = 30.0

# Payment states (core.models.PaymentStatus), by their short names
OPEN, PROCESSING, PAID = PaymentStatus.OPEN, PaymentStatus.PROCESSING, PaymentStatus.PAID
FAILED, PAYMENT_EXPIRED, REFUNDED = PaymentStatus.FAILED, PaymentStatus.EXPIRED, PaymentStatus.REFUNDED
# Once the money came in, no checkout event (expired, failed, a repeat) changes the payment.
FINAL_PAYMENT_STATES = (PAID, REFUNDED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.DISPUTED)

PRICE_SETTINGS = {
    ("standard", 60): "STANDARD_PRICE_ID_60",
    ("standard", 90): "STANDARD_PRICE_ID_90",
    ("weekend", 60): "WEEKEND_PRICE_ID_60",
    ("weekend", 90): "WEEKEND_PRICE_ID_90",
}

# Bundles of prepaid lessons (optional: unset means the bot cannot sell bundles of that length).
BUNDLE_PRICE_SETTINGS = {60: "BUNDLE_PRICE_ID_60", 90: "BUNDLE_PRICE_ID_90"}


class StripeCheck(NamedTuple):
    """One line of `check-stripe` and the integrations page."""

    subject: str
    ok: bool
    detail: str


# --- helpers ------------------------------------------------------------------------------------


def _ts(value: Any) -> datetime | None:
    return datetime.fromtimestamp(int(value), UTC) if value not in (None, "") else None


def _id_of(value: Any) -> str | None:
    """A Stripe reference that is either an id or an expanded object."""
    if isinstance(value, dict):
        return value.get("id")
    return value or None


def _record_status(name: str, ok: bool, detail: str, session: Session | None = None) -> None:
    """Note Stripe's (or the webhook's) health for the console: an unchanged state at most every
    STATUS_WRITE_INTERVAL seconds, in the caller's transaction when given; never fatal."""
    integrations.record_health(
        name, ok, detail, error=None if ok else detail, session=session, every=STATUS_WRITE_INTERVAL
    )


# --- the gateway ----------------------------------------------------------------------------------


class _RetryingRequestsClient(stripe.RequestsClient):
    """Stripe's default sync HTTP client (requests), plus two decisions of ours:
    429 rate limits (and 408s) are retried too, by the shared rule `integrations.is_transient`
    (Stripe asks for backoff; the library only retries them when Stripe adds
    `Stripe-Should-Retry: true`), and the backoff is the shared policy with this module's
    RETRY_INITIAL_DELAY / RETRY_MAX_DELAY."""

    def _should_retry(self, response, api_connection_error, num_retries, max_network_retries):  # noqa: ANN001, ANN202
        if response is not None and num_retries < (max_network_retries or 0):
            _, status_code, headers = response
            should = headers.get("stripe-should-retry") if headers is not None else None
            if integrations.is_transient(status_code) and should != "false":
                return True
        return super()._should_retry(response, api_connection_error, num_retries, max_network_retries)

    def _sleep_time_seconds(self, num_retries: int) -> float:
        delay = integrations.backoff_delay(num_retries - 1, base=RETRY_INITIAL_DELAY, cap=RETRY_MAX_DELAY)
        return max(RETRY_INITIAL_DELAY, delay)


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
        message = integrations.scrub(exc.user_message or type(exc).__name__, self.settings)
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
                # a plain dict: Stripe's SessionCreateParams TypedDict would repeat its whole API
                params=params,  # type: ignore[arg-type]
                options={"idempotency_key": idempotency_key},
            )
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
        return self._call(
            f"read Checkout Session {session_id}", self.client.v1.checkout.sessions.retrieve, session_id
        ).to_dict()

    def expire_checkout_session(self, session_id: str) -> dict[str, Any]:
        return self._call(
            f"expire Checkout Session {session_id}", self.client.v1.checkout.sessions.expire, session_id
        ).to_dict()

    def create_refund(
        self, payment_intent_id: str, amount: int, idempotency_key: str, metadata: dict[str, str]
    ) -> dict[str, Any]:
        """Refund `amount` (cents) of a PaymentIntent. A refusal Stripe will repeat however often
        we ask (already refunded, amount too large) is a PaymentRefused, not a retryable error."""
        try:
            refund = self.client.v1.refunds.create(
                params={"payment_intent": payment_intent_id, "amount": amount, "metadata": metadata},
                options={"idempotency_key": idempotency_key},
            )
        except stripe.InvalidRequestError as exc:
            log.warning("Stripe refused a refund: %s", getattr(exc, "code", None))
            raise PaymentRefused(
                integrations.scrub(exc.user_message or "invalid request", self.settings),
                code=getattr(exc, "code", None),
            ) from None
        except stripe.StripeError as exc:
            log.warning("Stripe call failed (refund): %s", type(exc).__name__)
            raise self._fail(exc, "refund a payment") from None
        return refund.to_dict()

    def list_checkout_sessions(self, created_gte: int) -> list[dict[str, Any]]:
        """Every Checkout Session created at or after `created_gte`, newest first (all pages)."""

        def fetch() -> list[dict[str, Any]]:
            page = self.client.v1.checkout.sessions.list(
                params={"created": {"gte": created_gte}, "limit": 100}
            )
            return [s.to_dict() for s in page.auto_paging_iter()]

        return self._call("list Checkout Sessions", fetch)


_gateways: dict[tuple, StripeGateway] = {}
_gateways_lock = threading.Lock()


class PaymentRefused(Exception):
    """Stripe refused a request for good (an invalid request): asking again changes nothing."""

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.code = code


def get_gateway(settings: Settings | None = None) -> StripeGateway:
    """One gateway (and HTTP connection pool) per Stripe configuration."""
    settings = settings or get_settings()
    api_key = settings.secret("stripe_api_key") or ""
    key = (
        hashlib.sha256(api_key.encode()).hexdigest(),
        settings.stripe_api_base,
        settings.stripe_max_retries,
        settings.stripe_timeout_seconds,
    )
    with _gateways_lock:
        gateway = _gateways.get(key)
        if gateway is None:
            gateway = StripeGateway(settings)
            if len(_gateways) > 8:  # tests build many configurations; production has one
                _gateways.clear()
            _gateways[key] = gateway
        return gateway


def price_setting_name(segment: str | None, minutes: int) -> str:
    """The environment variable that holds the price for this segment and lesson length."""
    kind = "weekend" if (segment or "").strip().lower() == "weekend" else "standard"
    return PRICE_SETTINGS[(kind, minutes)]


def price_for(segment: str | None, minutes: int) -> str | None:
    """The configured Stripe price id for this segment and lesson length (None if unset)."""
    if minutes not in ALLOWED_MINUTES:
        return None
    return getattr(get_settings(), price_setting_name(segment, minutes).lower()) or None


def _expiry_seconds(settings: Settings) -> int:
    minutes = settings.checkout_expires_minutes
    if not MIN_EXPIRES_MINUTES <= minutes <= MAX_EXPIRES_MINUTES:
        raise PaymentsNotConfigured(
            f"CHECKOUT_EXPIRES_MINUTES must be between {MIN_EXPIRES_MINUTES} and "
            f"{MAX_EXPIRES_MINUTES} (Stripe's limits for a Checkout Session); it is {minutes}."
        )
    seconds = minutes * 60
    return min(
        max(seconds, MIN_EXPIRES_MINUTES * 60 + EXPIRY_MARGIN_SECONDS),
        MAX_EXPIRES_MINUTES * 60 - EXPIRY_MARGIN_SECONDS,
    )


# --- diagnosis and dashboard links ---------------------------------------------------------------


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
        checks.append(
            StripeCheck(
                "STRIPE_API_KEY", False, "not set; payment links cannot be created (see docs/STRIPE.md)."
            )
        )
    else:
        mode = "test" if "_test_" in api_key[:9] else "live" if "_live_" in api_key[:9] else "unknown"
        try:
            gateway = get_gateway(settings)
            balance = gateway.retrieve_balance()
            live = bool(balance.get("livemode"))
            checks.append(
                StripeCheck(
                    "STRIPE_API_KEY", True, f"Stripe accepted the key ({'live' if live else 'test'} mode)."
                )
            )
            if mode != "unknown" and (mode == "live") != live:
                checks.append(
                    StripeCheck(
                        "STRIPE_API_KEY",
                        False,
                        f"the key looks like a {mode}-mode key but Stripe answered in "
                        f"{'live' if live else 'test'} mode.",
                    )
                )
        except LesplannerError as exc:
            checks.append(StripeCheck("STRIPE_API_KEY", False, exc.message))
            gateway = None
    optional = set(BUNDLE_PRICE_SETTINGS.values())
    for var in [*PRICE_SETTINGS.values(), *BUNDLE_PRICE_SETTINGS.values()]:
        price_id = getattr(settings, var.lower())
        if not price_id:
            if var in optional:
                checks.append(StripeCheck(var, True, "not set; bundles of this length are not sold."))
            else:
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
        checks.append(
            StripeCheck(
                "STRIPE_WEBHOOK_SECRET", False, "not set; the webhook endpoint refuses every event (503)."
            )
        )
    elif not secret.startswith("whsec_"):
        checks.append(
            StripeCheck(
                "STRIPE_WEBHOOK_SECRET",
                False,
                "set, but it does not start with whsec_ (is it the signing secret?).",
            )
        )
    else:
        checks.append(StripeCheck("STRIPE_WEBHOOK_SECRET", True, "set (whsec_…)."))
    for var, value in (
        ("CHECKOUT_SUCCESS_URL", settings.checkout_success_url),
        ("CHECKOUT_CANCEL_URL", settings.checkout_cancel_url),
    ):
        if not value:
            checks.append(StripeCheck(var, False, "not set; payment links cannot be created."))
        elif not value.startswith(("https://", "http://")):
            checks.append(StripeCheck(var, False, f"'{value}' is not an http(s) URL."))
        else:
            checks.append(StripeCheck(var, True, value))
    try:
        seconds = _expiry_seconds(settings)
        checks.append(
            StripeCheck("CHECKOUT_EXPIRES_MINUTES", True, f"links and holds last {seconds // 60} minutes.")
        )
    except PaymentsNotConfigured as exc:
        checks.append(StripeCheck("CHECKOUT_EXPIRES_MINUTES", False, exc.message))
    if api_key:
        bad = [c for c in checks if not c.ok]
        _record_status(
            "stripe",
            not bad,
            "check-stripe: " + ("all good" if not bad else f"{len(bad)} problem(s), first: {bad[0].subject}"),
        )
    return checks


def stripe_dashboard_url(
    checkout_session_id: str, livemode: bool | None = None, *, payment_intent_id: str | None = None
) -> str | None:
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
