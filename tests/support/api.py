"""Fixtures shared by the receiver's API tests (tests/test_api_*.py); import them by name.

- `api_settings`: settings with BOT_API_TOKEN on the test's fresh database (the `engine` fixture);
- `tutor`: one active tutor on the embedded calendar;
- `client`: a TestClient on a new app (no worker thread) sending the right bearer token;
- `monday_morning`: the clock frozen at Monday 30 November 2026, 08:00 in Amsterdam;
- `no_payment`: every profile confirms without payment;
- `fake_stripe` / `stripe_settings`: a running fake Stripe and settings pointed at it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from core import clock, worker
from core.calendars import set_backend
from core.config import Settings, set_settings
from core.db import read_session, write_session
from core.models import OutboxMessage, PlanningProfile, Tutor
from receiver.main import create_app
from tests.conftest import AMS, make_settings
from tests.fakes.stripe_server import FakeStripe

TOKEN = "test-token"
WEBHOOK_SECRET = "whsec_test_lesplanner_123"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
MONDAY_0800 = datetime(2026, 11, 30, 8, 0, tzinfo=AMS)
FIRST_NEW_SLOT = "2026-12-01T10:00:00+01:00"  # "new": 12 h lead, 10:00-20:00, weekdays


@pytest.fixture
def api_settings(tmp_path: Any, engine: Any) -> Settings:
    settings = make_settings(tmp_path, bot_api_token=TOKEN)
    set_settings(settings)
    return settings


@pytest.fixture
def tutor(api_settings: Settings) -> int:
    with write_session() as session:
        row = Tutor(name="Anna", email="anna@lesplanner.test", calendar_id="anna@lesplanner.test")
        session.add(row)
        session.flush()
        return row.id


@pytest.fixture
def client(api_settings: Settings) -> TestClient:
    return TestClient(create_app(start_worker=False), headers=AUTH)


@pytest.fixture
def monday_morning() -> datetime:
    clock.set_now(MONDAY_0800)
    return MONDAY_0800


@pytest.fixture
def no_payment(api_settings: Settings) -> None:
    with write_session() as session:
        for profile in session.exec(select(PlanningProfile)).all():
            profile.requires_payment = False
            session.add(profile)


@pytest.fixture
def fake_stripe() -> Iterator[FakeStripe]:
    with FakeStripe(now=lambda: clock.now().timestamp()) as fake:
        for price, amount in (
            ("price_std_60", 4500),
            ("price_std_90", 6500),
            ("price_wk_60", 5000),
            ("price_wk_90", 7000),
        ):
            fake.add_price(price, amount)
        yield fake


def stripe_values(fake: FakeStripe) -> dict[str, Any]:
    return dict(
        stripe_api_key=fake.api_key,
        stripe_api_base=fake.url,
        stripe_webhook_secret=WEBHOOK_SECRET,
        stripe_max_retries=0,
        standard_price_id_60="price_std_60",
        standard_price_id_90="price_std_90",
        weekend_price_id_60="price_wk_60",
        weekend_price_id_90="price_wk_90",
        checkout_success_url="https://lesplanner.test/paid",
        checkout_cancel_url="https://lesplanner.test/cancel",
    )


@pytest.fixture
def stripe_settings(tmp_path: Any, api_settings: Settings, fake_stripe: FakeStripe) -> Settings:
    settings = make_settings(tmp_path, bot_api_token=TOKEN, **stripe_values(fake_stripe))
    set_settings(settings)
    return settings


def booking(
    start: str = FIRST_NEW_SLOT,
    end: str | None = None,
    conversation_id: str = "conv-1",
    contact_id: str = "contact-1",
    **extra: Any,
) -> dict[str, Any]:
    if end is None:
        end = datetime.fromisoformat(start).replace(hour=datetime.fromisoformat(start).hour + 1).isoformat()
    return {
        "conversation_id": conversation_id,
        "contact_id": contact_id,
        "start": start,
        "end": end,
        "title": "Bijles wiskunde",
        "description": "Hoofdstuk 4",
        **extra,
    }


ANNA = "anna@lesplanner.test"


@pytest.fixture
def signed_delivery(client, fake_stripe):
    """Stripe delivers an event to the receiver, signed with the endpoint's secret."""

    def deliver(event: dict[str, Any]) -> None:
        body, header = fake_stripe.signed(event, WEBHOOK_SECRET)
        response = client.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": header})
        assert response.status_code == 200, response.text

    return deliver


@pytest.fixture
def outside(tmp_path, client, fake_stripe, fake_google, make_google_backend):
    """The receiver with Stripe and Google Calendar behind their real clients (the fakes)."""
    settings = make_settings(
        tmp_path,
        bot_api_token=TOKEN,
        **stripe_values(fake_stripe),
        calendar_backend="google",
        gcal_service_account_json=fake_google.service_account_json(),
        gcal_api_endpoint=fake_google.api_endpoint,
        gcal_calendar_id=ANNA,
        gcal_max_retries=1,
    )
    set_settings(settings)
    set_backend(make_google_backend(settings))
    return fake_google


@pytest.fixture
def paid(client, tutor, monday_morning, outside, fake_stripe, signed_delivery) -> dict[str, Any]:
    """A lesson booked and paid by conv-1 for Tuesday 10:00, its calendar event made."""
    held = client.post("/api/v1/bookings", json=booking()).json()
    signed_delivery(fake_stripe.complete_session(held["checkout_session_id"]))
    worker.drain()
    lesson = client.get("/api/v1/conversations/conv-1/lessons").json()["lessons"][0]
    assert (lesson["status"], lesson["payment_status"]) == ("confirmed", "paid")
    return lesson


def messages(conversation_id: str = "conv-1") -> list[str]:
    with read_session() as session:
        rows = session.exec(
            select(OutboxMessage)
            .where(OutboxMessage.conversation_id == conversation_id)
            .order_by(OutboxMessage.id)
        ).all()
    return [m.key for m in rows]


# --- prepaid bundles (tests/api/test_bundles.py, tests/reliability/test_attack_credits.py) ----------

BUNDLE = {"conversation_id": "conv-1", "contact_id": "contact-1", "minutes": 60, "lessons": 5}


@pytest.fixture
def stripe_api(tmp_path: Any, api_settings: Settings, fake_stripe: FakeStripe) -> Callable[..., None]:
    """Stripe (the fake) with a 60-minute bundle price of € 40,00; call it with setting overrides."""
    fake_stripe.add_price("price_bundle_60", 4000)

    def apply(**overrides: Any) -> None:
        set_settings(
            make_settings(
                tmp_path,
                bot_api_token=TOKEN,
                **stripe_values(fake_stripe),
                **{"bundle_price_id_60": "price_bundle_60", **overrides},
            )
        )

    apply()
    return apply


@pytest.fixture
def bundle(client: TestClient, tutor: int, monday_morning: datetime, stripe_api: Any) -> dict[str, Any]:
    """A payment link for a bundle of five 60-minute lessons (BUNDLE), not paid yet."""
    response = client.post("/api/v1/bundles", json=BUNDLE)
    assert response.status_code == 201, response.text
    return response.json()
