"""The receiver as an HTTP service: health, the Stripe webhook's answers, error mapping, the
body limit, the OpenAPI document and the worker started with the app."""

from __future__ import annotations

import logging
import threading
import time

import pytest
from fastapi.testclient import TestClient
from sqlmodel import select

from core.config import Settings, set_settings
from core.db import read_session
from core.models import StripeEvent
from core.payments import webhooks
from receiver.main import create_app
from tests.conftest import make_settings
from tests.fakes.stripe_server import FakeStripe
from tests.support.api import TOKEN, WEBHOOK_SECRET, booking

pytest_plugins = ["tests.support.api"]


# --- health ---------------------------------------------------------------------------------------


def test_health_is_ok_when_the_database_answers(client):
    assert client.get("/healthz").json() == {"status": "ok", "database": "ok"}


def test_health_is_503_when_the_database_is_unreachable(tmp_path, engine, caplog):
    set_settings(make_settings(tmp_path, database_url="postgresql://lesplanner:pw-s3cret@127.0.0.1:1/x"))

    response = TestClient(create_app(start_worker=False)).get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"detail": "The database is not reachable."}
    assert "pw-s3cret" not in response.text


# --- the Stripe webhook ---------------------------------------------------------------------------


def event(type_: str = "customer.created", obj: dict | None = None, event_id: str = "evt_test_1") -> dict:
    return {
        "id": event_id,
        "object": "event",
        "type": type_,
        "api_version": "2024-06-20",
        "created": int(time.time()),
        "livemode": False,
        "data": {"object": obj or {"id": "cus_1"}},
    }


@pytest.fixture
def webhook_client(tmp_path, engine) -> TestClient:
    set_settings(make_settings(tmp_path, bot_api_token=TOKEN, stripe_webhook_secret=WEBHOOK_SECRET))
    return TestClient(create_app(start_worker=False))


def post_event(client: TestClient, evt: dict, secret: str = WEBHOOK_SECRET, **kw):
    body, header = FakeStripe.signed(evt, secret, **kw)
    return client.post(
        "/webhooks/stripe",
        content=body,
        headers={"Stripe-Signature": header, "Content-Type": "application/json"},
    )


def test_without_a_webhook_secret_the_webhook_is_closed_with_503(client):
    response = post_event(client, event())

    assert response.status_code == 503
    assert "STRIPE_WEBHOOK_SECRET" in response.json()["detail"]


@pytest.mark.parametrize(
    "headers", [{}, {"Stripe-Signature": "t=1,v1=deadbeef"}, {"Stripe-Signature": "garbage"}]
)
def test_a_missing_or_bad_signature_is_400(webhook_client, headers):
    response = webhook_client.post("/webhooks/stripe", content=FakeStripe.payload(event()), headers=headers)

    assert response.status_code == 400
    assert response.json()["detail"]
    with read_session() as session:
        assert session.exec(select(StripeEvent)).all() == []


def test_a_signature_made_with_another_secret_is_400(webhook_client):
    assert post_event(webhook_client, event(), secret="whsec_someone_else").status_code == 400


def test_an_old_signature_is_400(webhook_client):
    assert post_event(webhook_client, event(), timestamp=int(time.time()) - 3600).status_code == 400


def test_a_signed_event_is_acknowledged_once_and_a_repeat_is_a_duplicate(webhook_client):
    first = post_event(webhook_client, event())
    again = post_event(webhook_client, event())

    assert first.status_code == again.status_code == 200
    assert first.json() == {"received": True, "status": "ignored"}  # Lesplanner does not act on it
    assert again.json() == {"received": True, "status": "duplicate"}


def test_a_paid_checkout_confirms_the_held_lesson(
    client, tutor, stripe_settings, fake_stripe, monday_morning
):
    lesson = client.post("/api/v1/bookings", json=booking()).json()

    completed = fake_stripe.complete_session(lesson["checkout_session_id"])
    response = post_event(client, completed)

    assert response.json() == {"received": True, "status": "processed"}
    again = client.post("/api/v1/bookings", json=booking()).json()
    assert again["status"] == "confirmed" and again["payment_url"] is None
    keys = [m["key"] for m in client.get("/api/v1/conversations/conv-1/messages").json()]
    assert "payment_success_message" in keys


def test_a_failure_while_handling_is_500_without_details_so_stripe_retries(
    webhook_client, monkeypatch, caplog
):
    def broken(session, evt, now):
        raise RuntimeError(f"disk on fire near {WEBHOOK_SECRET}")

    monkeypatch.setattr(webhooks, "_dispatch", broken)

    with caplog.at_level(logging.WARNING):
        response = post_event(webhook_client, event())

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal error; it has been logged."}
    with read_session() as session:
        assert session.get(StripeEvent, "evt_test_1").status == "failed"
    assert WEBHOOK_SECRET not in caplog.text


def test_an_oversized_webhook_is_413(webhook_client):
    response = webhook_client.post(
        "/webhooks/stripe", content=b"x" * (256 * 1024 + 1), headers={"Stripe-Signature": "t=1,v1=x"}
    )

    assert response.status_code == 413


# --- error mapping and the body limit --------------------------------------------------------------


def test_an_unexpected_error_is_500_with_a_fixed_sentence_and_a_scrubbed_log(client, monkeypatch, caplog):
    def explode(*args, **kwargs):
        raise RuntimeError(f"boom with token {TOKEN}-and-more")

    monkeypatch.setattr("receiver.routes.slots.suggest_slots", explode)

    with caplog.at_level(logging.ERROR, logger="receiver"):
        response = client.get("/api/v1/slots", params={"conversation_id": "c", "contact_id": "p"})

    assert response.status_code == 500
    assert response.json() == {"detail": "Internal error; it has been logged."}
    assert "Traceback" not in response.text
    assert "RuntimeError: boom with token ***-and-more" in caplog.text
    assert TOKEN + "-and" not in caplog.text


def test_a_declared_oversized_body_is_413_before_it_is_read(client):
    response = client.post(
        "/api/v1/bookings",
        content=b"{" + b" " * (256 * 1024) + b"}",
        headers={"Content-Type": "application/json"},
    )

    assert response.status_code == 413
    assert response.json() == {"detail": "The request body is larger than the limit of 262144 bytes."}


def test_a_streamed_oversized_body_is_413_too(client):
    def chunks():
        yield b'{"conversation_id": "'
        for _ in range(300):
            yield b"x" * 1024
        yield b'"}'

    response = client.post("/api/v1/bookings", content=chunks(), headers={"Content-Type": "application/json"})

    assert response.status_code == 413


def test_the_limit_follows_the_settings(tmp_path, engine):
    set_settings(make_settings(tmp_path, bot_api_token=TOKEN, max_body_bytes=100))
    client = TestClient(create_app(start_worker=False), headers={"Authorization": f"Bearer {TOKEN}"})

    response = client.post("/api/v1/bookings", json=booking(title="x" * 100))

    assert response.status_code == 413


# --- OpenAPI ----------------------------------------------------------------------------------------


def test_the_openapi_document_lists_every_answer_of_each_route(client):
    spec = client.get("/openapi.json").json()

    assert spec["info"]["title"] == "Lesplanner receiver"
    codes = {
        (method, path): set(op["responses"])
        for path, ops in spec["paths"].items()
        for method, op in ops.items()
    }
    assert codes[("post", "/api/v1/bookings")] >= {"200", "201", "401", "404", "409", "413", "422", "503"}
    assert codes[("get", "/api/v1/slots")] >= {"200", "401", "404", "422", "503"}
    assert codes[("post", "/webhooks/stripe")] >= {"200", "400", "500", "503"}
    assert codes[("get", "/healthz")] >= {"200", "503"}
    assert spec["components"]["securitySchemes"]["BotToken"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "The receiver's BOT_API_TOKEN: `Authorization: Bearer <token>`.",
    }
    booking_schema = spec["components"]["schemas"]["BookingIn"]
    assert booking_schema["examples"][0]["start"] == "2026-12-01T10:00:00+01:00"


def test_the_docs_page_is_served(client):
    response = client.get("/docs")

    assert response.status_code == 200 and "swagger" in response.text.lower()


DOC_PATHS = ["/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json"]


def test_the_api_docs_are_on_by_default():
    assert Settings(_env_file=None).api_docs_enabled is True


@pytest.mark.parametrize("path", DOC_PATHS)
def test_api_docs_enabled_serves_the_docs_and_the_document(tmp_path, engine, path):
    set_settings(make_settings(tmp_path, bot_api_token=TOKEN, api_docs_enabled=True))

    assert TestClient(create_app(start_worker=False)).get(path).status_code == 200


@pytest.mark.parametrize("path", DOC_PATHS)
def test_api_docs_disabled_answers_404_for_the_docs_and_the_document(tmp_path, engine, path):
    set_settings(make_settings(tmp_path, bot_api_token=TOKEN, api_docs_enabled=False))
    client = TestClient(create_app(start_worker=False))

    response = client.get(path)

    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
    assert client.get("/healthz").status_code == 200  # the rest of the receiver is unchanged
    assert (
        client.get("/api/v1/contacts/p1/segment", headers={"Authorization": f"Bearer {TOKEN}"}).status_code
        == 404
    )


# --- the worker -------------------------------------------------------------------------------------


def _worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "lesplanner-worker"]


def test_the_app_starts_and_stops_the_outbox_worker(api_settings, monkeypatch):
    ticks = []
    monkeypatch.setattr("core.worker.tick", lambda limit=20, owner=None: ticks.append(limit))

    with TestClient(create_app(start_worker=True)) as client:
        assert client.get("/healthz").status_code == 200
        deadline = time.monotonic() + 5
        while not ticks and time.monotonic() < deadline:
            time.sleep(0.01)
        assert _worker_threads()

    assert ticks
    assert not _worker_threads()


def test_lesplanner_worker_0_keeps_the_worker_off(api_settings, monkeypatch):
    monkeypatch.setenv("LESPLANNER_WORKER", "0")
    ticks = []
    monkeypatch.setattr("core.worker.tick", lambda limit=20, owner=None: ticks.append(limit))

    with TestClient(create_app()) as client:
        client.get("/healthz")
        time.sleep(0.05)
        assert not _worker_threads()

    assert ticks == []
