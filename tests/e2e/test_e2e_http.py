"""End to end over real HTTP: the receiver runs as a uvicorn process on a migrated SQLite file,
with Google Calendar, Stripe and Chatwoot played by local fakes. A new contact asks the bot for
slots, books one, pays through Stripe Checkout, and everything downstream happens once."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import httpx
import pytest

from tests.conftest import AMS
from tests.fakes.chatwoot import FakeChatwoot
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.stripe_server import FakeStripe
from tests.procs import free_port

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "e2e-bot-token-123456"
WEBHOOK_SECRET = "whsec_e2e_lesplanner_123456"
CALENDAR = "tutor@lesplanner.test"
PAID_MESSAGE = "Bedankt voor je betaling, we hebben hem ontvangen! Je krijgt zo de bevestiging van je les."


def wait_for(condition, timeout: float = 15.0, interval: float = 0.1):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[dict]:
    with FakeGoogleCalendar() as google, FakeStripe() as stripe_fake, FakeChatwoot() as chatwoot:
        stripe_fake.add_price("price_std_60", 4500)
        stripe_fake.add_price("price_wk_60", 5000)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("STRIPE_", "GCAL_", "CHATWOOT_"))},
            "DATABASE_URL": f"sqlite:///{tmp_path}/e2e.db",
            "TIMEZONE": "Europe/Amsterdam",
            "CALENDAR_BACKEND": "google",
            "GCAL_SERVICE_ACCOUNT_JSON": google.service_account_json(),
            "GCAL_API_ENDPOINT": google.api_endpoint,
            "GCAL_CALENDAR_ID": CALENDAR,
            "STRIPE_API_KEY": stripe_fake.api_key,
            "STRIPE_API_BASE": stripe_fake.url,
            "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
            "STANDARD_PRICE_ID_60": "price_std_60",
            "WEEKEND_PRICE_ID_60": "price_wk_60",
            "CHECKOUT_SUCCESS_URL": "https://lesplanner.test/paid",
            "CHECKOUT_CANCEL_URL": "https://lesplanner.test/cancel",
            "BOT_API_TOKEN": TOKEN,
            "CHATWOOT_URL": chatwoot.url,
            "CHATWOOT_ACCOUNT_ID": chatwoot.account_id,
            "CHATWOOT_API_TOKEN": chatwoot.token,
            "LESPLANNER_WORKER": "1",
        }
        # The operator's path: migrate (schema, seed profiles, the default tutor), then serve.
        migrated = subprocess.run(
            [sys.executable, "-m", "core.cli", "migrate"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert migrated.returncode == 0, migrated.stderr
        port = free_port()
        log = (tmp_path / "receiver.log").open("w")
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "receiver.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            up = wait_for(lambda: _healthy(base), timeout=20)
            assert up, (tmp_path / "receiver.log").read_text()
            with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=20) as bot:
                yield {
                    "bot": bot,
                    "base": base,
                    "google": google,
                    "stripe": stripe_fake,
                    "chatwoot": chatwoot,
                    "log": tmp_path / "receiver.log",
                }
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
            log.close()


def _healthy(base: str) -> bool:
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_a_new_contact_books_pays_and_is_confirmed_exactly_once(world):
    bot, google, stripe_fake, chatwoot = world["bot"], world["google"], world["stripe"], world["chatwoot"]

    # The bot meets a new contact and asks which times to offer.
    assert bot.get("/api/v1/contacts/501/segment").status_code == 404
    slots = bot.get("/api/v1/slots", params={"conversation_id": "4242", "contact_id": "501"})
    assert slots.status_code == 200, slots.text
    assert (slots.json()["profile"], slots.json()["segment"]) == ("new", "new")
    slot = slots.json()["slots"][0]

    # The customer picks the first one; it is held with a real Checkout Session.
    booked = bot.post(
        "/api/v1/bookings",
        json={
            "conversation_id": "4242",
            "contact_id": "501",
            "start": slot["start"],
            "end": slot["end"],
            "title": "Bijles wiskunde",
            "description": "Hoofdstuk 4",
            "contact": {"name": "Sanne de Vries"},
        },
    )
    assert booked.status_code == 201, booked.text
    lesson = booked.json()
    assert lesson["status"] == "held"
    session_id = lesson["checkout_session_id"]
    assert lesson["payment_url"] == stripe_fake.sessions[session_id]["url"]
    assert google.events(CALENDAR) == []  # nothing in the calendar before payment

    # The customer pays; Stripe sends the signed webhook (twice: a retry must change nothing).
    completed = stripe_fake.complete_session(session_id)
    webhook = f"{world['base']}/webhooks/stripe"
    assert stripe_fake.deliver(completed, webhook, WEBHOOK_SECRET).status == 200
    assert stripe_fake.deliver(completed, webhook, WEBHOOK_SECRET).status == 200

    again = bot.post(
        "/api/v1/bookings",
        json={
            "conversation_id": "4242",
            "contact_id": "501",
            "start": slot["start"],
            "end": slot["end"],
            "title": "Bijles wiskunde",
            "description": "Hoofdstuk 4",
        },
    )
    assert again.status_code == 200 and again.json()["status"] == "confirmed"

    # The receiver's worker makes exactly one event, at the booked local wall-clock time.
    assert wait_for(lambda: len(google.events(CALENDAR)) == 1, timeout=15), world["log"].read_text()
    time.sleep(2.5)  # one more worker round: still one
    [event] = google.events(CALENDAR)
    start = datetime.fromisoformat(event["start"]["dateTime"])
    assert start == datetime.fromisoformat(slot["start"])
    assert start.astimezone(AMS).strftime("%H:%M") == slot["start"][11:16]
    assert event["id"] == f"lesplanner{again.json()['id']:08d}"

    # The Dutch payment confirmation reaches Chatwoot once, with the payment attributes.
    assert wait_for(lambda: PAID_MESSAGE in chatwoot.sent("4242"), timeout=15), world["log"].read_text()
    time.sleep(2.5)  # one more worker round: still once
    assert chatwoot.sent("4242").count(PAID_MESSAGE) == 1
    assert chatwoot.conversation_attributes["4242"]["payment_completed"] is True
    assert chatwoot.contact_attributes["501"]["has_paid_lesson"] is True

    # The contact is an existing customer now, and nothing waits in the outbox.
    segment = bot.get("/api/v1/contacts/501/segment").json()
    assert (segment["segment"], segment["profile"]) == ("existing", "existing")
    assert bot.get("/api/v1/conversations/4242/messages").json() == []
    log = world["log"].read_text()
    assert "Traceback" not in log
    assert not [
        secret for secret in (TOKEN, WEBHOOK_SECRET, chatwoot.token, stripe_fake.api_key) if secret in log
    ]
