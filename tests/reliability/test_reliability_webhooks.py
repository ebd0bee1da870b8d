"""Reliability of the Stripe webhook under a crash: nothing lost, nothing handled twice.

A burst of 200 signed deliveries (180 distinct "paid" events, 20 repeats, in random order) goes
to a real receiver process from 16 concurrent senders that behave like Stripe: every non-2xx
answer or connection error is retried. In the middle of the burst the receiver is killed with
SIGKILL (open transactions die with it) and started again on the same port and database. When
the senders are done, every event is stored once and processed, every payment is paid, and
each conversation got exactly one "payment received" message.
"""

from __future__ import annotations

import json
import random
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import Session, select

from core.db import get_engine
from core.models import Contact, OutboxMessage, Payment, StripeEvent
from tests.conftest import test_database_url as database_url
from tests.fakes.stripe_server import Delivery, FakeStripe
from tests.procs import (
    PRICES,
    WEBHOOK_SECRET,
    ReceiverProcess,
    add_prices,
    prepare_database,
    receiver_env,
    stripe_settings,
)

DISTINCT = 180
REPEATS = 20
SENDERS = 16
KILL_AFTER = 50  # stored events before the SIGKILL


def paid_event(fake: FakeStripe, n: int) -> dict[str, Any]:
    """Stripe's checkout.session.completed for a Checkout Session Lesplanner created (its
    metadata names the order, conversation and contact), made inside the fake."""
    price_id = PRICES["standard_price_id_60"][0]
    metadata = {
        "order_id": f"order-{n}",
        "conversation_id": f"conv-{n}",
        "contact_id": f"contact-{n}",
        "segment": "new",
        "minutes": "60",
        "student_name": f"Leerling {n}",
        "created_by": "lesplanner",
    }
    status, _, body = fake.handle(
        "POST",
        "/v1/checkout/sessions",
        {
            "mode": "payment",
            "line_items": [{"price": price_id, "quantity": "1"}],
            "client_reference_id": f"order-{n}",
            "metadata": metadata,
            "success_url": "https://lesplanner.test/betaald",
            "cancel_url": "https://lesplanner.test/geannuleerd",
        },
        {"authorization": f"Bearer {fake.api_key}"},
    )
    assert status == 200, body
    return fake.complete_session(json.loads(body)["id"])


def count(url: str, statement) -> int:  # noqa: ANN001
    with Session(get_engine(url)) as session:
        return session.exec(statement).one()


@pytest.fixture
def stripe_fake():
    with FakeStripe() as fake:
        add_prices(fake)
        yield fake


def test_a_receiver_killed_mid_burst_loses_no_webhook_and_handles_none_twice(tmp_path, stripe_fake):
    url = database_url(tmp_path)
    prepare_database(url)
    receiver = ReceiverProcess(
        receiver_env(url, lesplanner_worker="0", **stripe_settings(stripe_fake)), workdir=tmp_path / "r"
    ).start()
    events = [paid_event(stripe_fake, n) for n in range(DISTINCT)]
    rng = random.Random(8)
    deliveries = events + rng.sample(events, REPEATS)
    rng.shuffle(deliveries)
    endpoint = f"{receiver.url}/webhooks/stripe"

    def send(event: dict[str, Any]) -> Delivery:
        # Like Stripe: retried on any non-2xx or connection error (Stripe goes on for days). A
        # restart takes ~3 s on an idle machine; up to 60 s leaves room for a busy CI machine.
        return stripe_fake.deliver(event, endpoint, WEBHOOK_SECRET, retries=600, delay=0.1, timeout=15)

    killed = threading.Event()

    def crash_and_restart() -> None:
        deadline = time.monotonic() + 60
        while count(url, select(func.count()).select_from(StripeEvent)) < KILL_AFTER:
            assert time.monotonic() < deadline, "the burst never got going"
            time.sleep(0.01)
        receiver.kill()
        killed.set()
        time.sleep(0.3)  # senders meet a closed port for a while
        receiver.start()

    try:
        with ThreadPoolExecutor(SENDERS + 1) as pool:
            crash = pool.submit(crash_and_restart)
            results = list(pool.map(send, deliveries))
            crash.result()
    finally:
        receiver.stop()

    assert killed.is_set() and receiver.starts == 2
    assert all(r.ok for r in results), Counter(r.status for r in results)
    failed_attempts = [s for r in results for s in r.attempts if not 200 <= s < 300]
    assert failed_attempts, "the kill fell outside the burst; nothing was retried"
    assert count(url, select(func.count()).select_from(StripeEvent)) == DISTINCT
    assert (
        count(url, select(func.count()).select_from(StripeEvent).where(StripeEvent.status != "processed"))
        == 0
    )
    assert count(url, select(func.count()).select_from(Payment)) == DISTINCT
    assert count(url, select(func.count()).select_from(Payment).where(Payment.status == "paid")) == DISTINCT
    with Session(get_engine(url)) as session:
        paid_messages = Counter(
            m.conversation_id
            for m in session.exec(select(OutboxMessage).where(OutboxMessage.key == "payment_success_message"))
        )
        contacts = session.exec(select(Contact)).all()
    assert len(paid_messages) == DISTINCT and set(paid_messages.values()) == {1}
    assert len(contacts) == DISTINCT and all(c.attributes.get("has_paid_lesson") for c in contacts)
    assert "Traceback" not in receiver.output(), receiver.output()[-3000:]
