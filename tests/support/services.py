"""The receiver over the faked outside services (Google and Stripe behind the real clients, optionally Chatwoot), shared by the fault and lifecycle tests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from fastapi.testclient import TestClient
from sqlmodel import select

from core import clock
from core.calendars import set_backend
from core.calendars.google import GoogleCalendarBackend
from core.config import set_settings
from core.db import read_session, write_session
from core.models import Lesson, Payment, Tutor
from core.payments import gateway  # reads the retry delays the tests make tiny
from receiver.main import create_app
from tests.conftest import AMS, make_settings
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.stripe_server import FakeStripe
from tests.procs import BOT_TOKEN, add_prices, stripe_settings

MONDAY_0800 = datetime(2026, 11, 30, 8, 0, tzinfo=AMS)


CALENDAR = "tutor@lesplanner.test"


FIRST = {"start": "2026-12-01T10:00:00+01:00", "end": "2026-12-01T11:00:00+01:00"}


GCAL_RETRIES = 3


GCAL_TIMEOUT = 0.25


GCAL_BUDGET = 3.0


STRIPE_RETRIES = 2


STRIPE_TIMEOUT = 0.3


class World:
    def __init__(self, client: TestClient, google: FakeGoogleCalendar, stripe_fake: FakeStripe) -> None:
        self.client, self.google, self.stripe = client, google, stripe_fake

    def slots(self, conversation: str = "conv-1") -> Any:
        return self.client.get(
            "/api/v1/slots",
            params={"conversation_id": conversation, "contact_id": conversation.replace("conv", "contact")},
        )

    def book(self, conversation: str = "conv-1", slot: dict[str, str] = FIRST) -> Any:
        return self.client.post(
            "/api/v1/bookings",
            json={
                "conversation_id": conversation,
                "contact_id": conversation.replace("conv", "contact"),
                **slot,
            },
        )

    def freebusy_calls(self) -> int:
        return len(self.google.calls("freebusy.query"))

    def checkout_calls(self) -> int:
        return len(self.stripe.requests_to("POST", "/v1/checkout/sessions"))


def open_world(tmp_path, monkeypatch, chatwoot=None) -> Iterator[World]:  # noqa: ANN001
    """The receiver (no worker thread) over the Google and Stripe fakes, behind the real clients;
    the test's database must exist (the `engine` fixture). With `chatwoot` (a running fake),
    messages are delivered there. Shared with tests/unit/test_lifecycle.py."""
    clock.set_now(MONDAY_0800)
    monkeypatch.setattr(gateway, "RETRY_INITIAL_DELAY", 0.001)
    monkeypatch.setattr(gateway, "RETRY_MAX_DELAY", 0.005)
    with FakeGoogleCalendar() as google, FakeStripe(now=lambda: clock.now().timestamp()) as stripe_fake:
        add_prices(stripe_fake)
        settings = make_settings(
            tmp_path,
            bot_api_token=BOT_TOKEN,
            calendar_backend="google",
            gcal_service_account_json=google.service_account_json(),
            gcal_api_endpoint=google.api_endpoint,
            gcal_calendar_id=CALENDAR,
            gcal_timeout_seconds=GCAL_TIMEOUT,
            gcal_max_retries=GCAL_RETRIES,
            gcal_call_budget_seconds=GCAL_BUDGET,
            **{
                **stripe_settings(stripe_fake, max_retries=STRIPE_RETRIES),
                "stripe_timeout_seconds": STRIPE_TIMEOUT,
            },
            **(
                {}
                if chatwoot is None
                else dict(
                    chatwoot_url=chatwoot.url + "/",
                    chatwoot_account_id=chatwoot.account_id,
                    chatwoot_api_token=chatwoot.token,
                )
            ),
        )
        set_settings(settings)
        backend = GoogleCalendarBackend(settings, retry_base_delay=0.01)
        set_backend(backend)
        with write_session() as session:
            session.add(Tutor(name="Anna", email="anna@lesplanner.test", calendar_id=CALENDAR))
        # The tutor's own appointment on Tuesday 10:00-11:00 in Google Calendar.
        google.add_event(
            CALENDAR, datetime(2026, 12, 1, 10, 0, tzinfo=AMS), datetime(2026, 12, 1, 11, 0, tzinfo=AMS)
        )
        client = TestClient(create_app(start_worker=False), headers={"Authorization": f"Bearer {BOT_TOKEN}"})
        yield World(client, google, stripe_fake)
        backend.flush_status()


def lessons() -> list[Lesson]:
    with read_session() as session:
        return list(session.exec(select(Lesson).order_by(Lesson.id)).all())


def payments_rows() -> list[Payment]:
    with read_session() as session:
        return list(session.exec(select(Payment)).all())
