"""Pytest fixtures for the Stripe specs: a running fake Stripe with the four lesson prices, and
settings that point the real `stripe` library at it.

Test modules pull them in with `from tests.fakes.stripe_fixtures import *`. The `settings`
fixture here replaces conftest's, so conftest's `engine` builds its database on these settings.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from core import clock, payments
from core.config import Settings, set_settings
from core.payments import gateway  # reads the retry delays the tests make tiny
from tests.conftest import make_settings
from tests.fakes.stripe_server import FakeStripe

__all__ = ["PRICES", "WEBHOOK_SECRET", "configure", "fake_stripe", "settings", "signed_delivery"]

WEBHOOK_SECRET = "whsec_test_lesplanner_0123456789abcdef"
# setting name -> (Stripe price id, amount in cents)
PRICES = {
    "standard_price_id_60": ("price_standard_60", 4500),
    "standard_price_id_90": ("price_standard_90", 6500),
    "weekend_price_id_60": ("price_weekend_60", 5500),
    "weekend_price_id_90": ("price_weekend_90", 7900),
}


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    """Fake Stripe on a free port; its clock follows core.clock so frozen tests agree."""
    with FakeStripe(now=lambda: clock.now().timestamp()) as fake:
        for price_id, amount in PRICES.values():
            fake.add_price(price_id, amount, "eur")
        yield fake


def _stripe_values(fake: FakeStripe) -> dict[str, Any]:
    return dict(
        stripe_api_key=fake.api_key,
        stripe_api_base=fake.url,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_max_retries=2,
        stripe_timeout_seconds=2.0,
        checkout_success_url="https://lesplanner.test/betaald?session_id={CHECKOUT_SESSION_ID}",
        checkout_cancel_url="https://lesplanner.test/geannuleerd",
        **{name: price_id for name, (price_id, _) in PRICES.items()},
    )


@pytest.fixture
def settings(tmp_path, fake_stripe, monkeypatch) -> Iterator[Settings]:
    """Fully configured Stripe settings; retries back off in milliseconds, not seconds."""
    monkeypatch.setattr(gateway, "RETRY_INITIAL_DELAY", 0.001)
    monkeypatch.setattr(gateway, "RETRY_MAX_DELAY", 0.005)
    s = make_settings(tmp_path, **_stripe_values(fake_stripe))
    set_settings(s)
    yield s
    set_settings(None)


@pytest.fixture
def configure(tmp_path, fake_stripe, settings) -> Callable[..., Settings]:
    """Install settings with some values changed, e.g. `configure(stripe_api_key=None)`."""

    def apply(**overrides: Any) -> Settings:
        s = make_settings(tmp_path, **{**_stripe_values(fake_stripe), **overrides})
        set_settings(s)
        return s

    return apply


@pytest.fixture
def signed_delivery(fake_stripe) -> Callable[..., payments.WebhookResult]:
    """Hand an event to `handle_webhook` exactly as Stripe would sign it."""

    def deliver(event: dict[str, Any]) -> payments.WebhookResult:
        body, header = fake_stripe.signed(event, WEBHOOK_SECRET)
        return payments.handle_webhook(body, header)

    return deliver
