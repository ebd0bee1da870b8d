"""Stripe payments: Checkout payment links, webhook verification and event handling,
reconciliation of missed webhooks, and the `check-stripe` diagnosis.

Everything talks to Stripe through the official `stripe` library (`StripeGateway`), pointed at
`STRIPE_API_BASE` so tests and sandboxes can put a faithful fake behind it. The library retries
network errors, 409s and 5xx answers (`STRIPE_MAX_RETRIES`) with the same idempotency key; we
also let it retry 429 rate limits, which it leaves alone by default. What still fails becomes a
`PaymentProviderError` (503) with a sentence for people, never a secret.

Webhooks are verified with Stripe's own scheme (`Webhook.construct_event`'s check, 300 s
tolerance; a timestamp more than that ahead is refused too) and then handled in one write transaction that also stores the event by id, so a repeated or
concurrent delivery is a no-op and a failure leaves no partial writes: the event is then kept as
`failed` and the caller answers 500 so Stripe retries. Payment states only move forward:
paid and refunded are final, and a late `expired` never undoes a payment.

The modules, each importing only those above it:

- `gateway`   StripeGateway and its retries, payment states, prices, status rows, check_stripe
- `links`     create_payment_link, create_bundle_link, expire_checkout_for_lesson
- `webhooks`  verify_webhook, handle_webhook, retry_failed_event and the event handlers
- `reconcile` reconcile_payments
- `refunds`   refunds we start ourselves: `stripe.refund` jobs, one per lesson
- `rollup`    the daily payment totals (PaymentDaily by day created, PaymentPaidDaily by day paid),
              kept by every flush that changes a payment

This package re-exports their public names. The names are copies: to monkeypatch a module-level
value (RETRY_INITIAL_DELAY, _dispatch, ...), patch the submodule that reads it, e.g.
`monkeypatch.setattr(core.payments.gateway, "RETRY_INITIAL_DELAY", 0.001)`.
"""

from __future__ import annotations

from core.payments import rollup  # noqa: F401 - keeps PaymentDaily with every payment write
from core.payments.gateway import (
    ALLOWED_MINUTES,
    EXPIRY_MARGIN_SECONDS,
    FAILED,
    FINAL_PAYMENT_STATES,
    MAX_EXPIRES_MINUTES,
    MIN_EXPIRES_MINUTES,
    OPEN,
    PAID,
    PAYMENT_EXPIRED,
    PRICE_SETTINGS,
    PROCESSING,
    REFUNDED,
    RETRY_INITIAL_DELAY,
    RETRY_MAX_DELAY,
    STATUS_WRITE_INTERVAL,
    StripeCheck,
    StripeGateway,
    check_stripe,
    get_gateway,
    price_for,
    price_setting_name,
    stripe_dashboard_url,
)
from core.payments.links import (
    BOOKING_ORDER_PREFIX,
    METADATA_VALUE_MAX,
    create_bundle_link,
    create_payment_link,
    expire_checkout_for_lesson,
)
from core.payments.reconcile import ReconcileReport, reconcile_payments
from core.payments.webhooks import (
    DUPLICATE,
    EVENT_FAILED,
    IGNORED,
    PROCESSED,
    WEBHOOK_TOLERANCE_SECONDS,
    WebhookHandlingFailed,
    WebhookResult,
    handle_webhook,
    retry_failed_event,
    verify_webhook,
)

__all__ = [
    "ALLOWED_MINUTES",
    "BOOKING_ORDER_PREFIX",
    "DUPLICATE",
    "EVENT_FAILED",
    "EXPIRY_MARGIN_SECONDS",
    "FAILED",
    "FINAL_PAYMENT_STATES",
    "IGNORED",
    "MAX_EXPIRES_MINUTES",
    "METADATA_VALUE_MAX",
    "MIN_EXPIRES_MINUTES",
    "OPEN",
    "PAID",
    "PAYMENT_EXPIRED",
    "PRICE_SETTINGS",
    "PROCESSING",
    "PROCESSED",
    "REFUNDED",
    "RETRY_INITIAL_DELAY",
    "RETRY_MAX_DELAY",
    "STATUS_WRITE_INTERVAL",
    "WEBHOOK_TOLERANCE_SECONDS",
    "ReconcileReport",
    "StripeCheck",
    "StripeGateway",
    "WebhookHandlingFailed",
    "WebhookResult",
    "check_stripe",
    "create_bundle_link",
    "create_payment_link",
    "expire_checkout_for_lesson",
    "get_gateway",
    "handle_webhook",
    "price_for",
    "price_setting_name",
    "reconcile_payments",
    "retry_failed_event",
    "stripe_dashboard_url",
    "verify_webhook",
]
