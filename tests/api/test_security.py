"""Security of the receiver: closed by default, no secret ever leaves the process, input is data.

- Every route under /api/v1 — found from the app itself, so a new route cannot forget it —
  answers 401 without or with a wrong bearer token and 503 when no token is configured; the
  only public routes are health, the Stripe webhook and the API docs.
- The webhook fails closed: no secret → 503; a missing, malformed, foreign, tampered or old
  signature → 400; nothing is stored.
- With every secret configured (Stripe key, webhook secret, bot token, Chatwoot token, the
  service account's private key) a run full of failures — bad signatures, Stripe refusing the
  key, Google refusing the credentials, Chatwoot refusing the token, an unhandled error inside a
  route — shows no secret in any answer, any log record at DEBUG of any logger, the console's
  integration status, or a real uvicorn process's stdout/stderr.
- Oversized bodies are 413; contact names full of HTML or markdown are stored as text and come
  back as JSON strings.
"""

from __future__ import annotations

import json
import logging
import re
import time
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlmodel import Session, select

from core import clock, jobs
from core.calendars import set_backend
from core.calendars.google import GoogleCalendarBackend
from core.chat import deliver_pending
from core.config import Settings, scrub, set_settings
from core.db import get_engine, read_session, write_session
from core.models import (
    Contact,
    Conversation,
    IntegrationStatus,
    Lesson,
    OutboxMessage,
    Payment,
    PlanningProfile,
    StripeEvent,
    Tutor,
)
from core.payments import gateway  # reads the retry delays the tests make tiny
from receiver.main import create_app
from tests.conftest import AMS, make_settings
from tests.conftest import test_database_url as database_url
from tests.fakes.chatwoot import FakeChatwoot
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.stripe_server import FakeStripe
from tests.procs import ReceiverProcess, add_prices, prepare_database, receiver_env, stripe_settings

BOT_TOKEN = "bot-SecretTokenDoNotLeak-0123456789"
STRIPE_KEY = "sk_test_51SecretStripeKeyDoNotLeak0123456789"  # a key the fake Stripe does not know
WEBHOOK_SECRET = "whsec_SecretWebhookDoNotLeak0123456789"
CHATWOOT_TOKEN = "cw-SecretChatwootDoNotLeak-0123456789"  # Chatwoot expects another one
CALENDAR = "tutor@lesplanner.test"
# Public on purpose: health, and the two webhooks that check their own proof (Stripe's signature;
# Google's channel id and secret token, see tests/unit/test_calendar_mirror.py); the API docs.
PUBLIC_PATHS = {
    "/healthz",
    "/webhooks/stripe",
    "/webhooks/google",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
    "/openapi.json",
}
PATH_VALUES = {"contact_id": "p1", "conversation_id": "c1", "message_id": "1"}


# --- bearer auth on every bot route ----------------------------------------------------------------


def served_routes() -> list[tuple[str, str]]:
    """(method, path template) of every route the app serves, included routers flattened."""

    def walk(routes) -> list[tuple[str, str]]:  # noqa: ANN001
        found = []
        for route in routes:
            contexts = getattr(route, "effective_route_contexts", None)
            if callable(contexts):  # FastAPI >= 0.16x keeps included routers as one entry
                found += [(m, c.path) for c in contexts() for m in (c.methods or ())]
            elif getattr(route, "methods", None):
                found += [(m, route.path) for m in route.methods]
            elif getattr(route, "routes", None):
                found += walk(route.routes)
        return found

    return sorted({(m, p) for m, p in walk(create_app(start_worker=False).routes) if m != "HEAD"})


def bot_routes() -> list[tuple[str, str]]:
    return [
        (method, re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m.group(1), "x"), path))
        for method, path in served_routes()
        if path.startswith("/api/v1")
    ]


BOT_ROUTES = bot_routes()


def test_the_bot_api_has_the_routes_of_the_contract():
    assert {
        ("GET", "/api/v1/slots"),
        ("POST", "/api/v1/bookings"),
        ("POST", "/api/v1/payment-links"),
        ("GET", "/api/v1/contacts/p1/segment"),
        ("GET", "/api/v1/conversations/c1/messages"),
    } <= set(BOT_ROUTES)


def test_every_route_outside_the_bot_api_is_a_known_public_one():
    public = {path for _, path in served_routes() if not path.startswith("/api/v1")}
    assert {"/healthz", "/webhooks/stripe"} <= public <= PUBLIC_PATHS, public - PUBLIC_PATHS


@pytest.fixture
def token_settings(tmp_path, engine) -> Settings:
    s = make_settings(tmp_path, bot_api_token=BOT_TOKEN)
    set_settings(s)
    return s


@pytest.mark.parametrize(("method", "path"), BOT_ROUTES)
def test_every_bot_route_refuses_a_missing_or_wrong_token(token_settings, method, path):
    client = TestClient(create_app(start_worker=False))
    for headers in (
        {},
        {"Authorization": "Bearer not-the-token"},
        {"Authorization": f"Bearer {BOT_TOKEN[:-1]}"},
        {"Authorization": BOT_TOKEN},
        {"Authorization": f"Basic {BOT_TOKEN}"},
    ):
        response = client.request(method, path, headers=headers, json={})

        assert response.status_code == 401, (headers, response.text)
        assert response.headers["www-authenticate"] == "Bearer"
        assert BOT_TOKEN not in response.text


@pytest.mark.parametrize(("method", "path"), BOT_ROUTES)
def test_every_bot_route_is_closed_when_no_token_is_configured(tmp_path, engine, method, path):
    set_settings(make_settings(tmp_path))
    client = TestClient(create_app(start_worker=False))

    for headers in ({}, {"Authorization": "Bearer "}, {"Authorization": "Bearer anything"}):
        response = client.request(method, path, headers=headers, json={})

        assert response.status_code == 503, response.text
        assert "BOT_API_TOKEN" in response.json()["detail"]


# --- the webhook fails closed -------------------------------------------------------------------


def paid_event(n: int = 1, obj: Any = None) -> dict[str, Any]:
    """A checkout.session.completed for a session with Lesplanner's metadata: handling it would
    create a paid Payment, a conversation and a message, so "nothing stored" is visible."""
    if obj is None:
        obj = {
            "id": f"cs_test_sec{n}",
            "object": "checkout.session",
            "status": "complete",
            "payment_status": "paid",
            "amount_total": 4500,
            "currency": "eur",
            "client_reference_id": f"order-{n}",
            "payment_intent": f"pi_sec{n}",
            "metadata": {
                "order_id": f"order-{n}",
                "conversation_id": f"conv-{n}",
                "contact_id": f"contact-{n}",
                "segment": "new",
                "minutes": "60",
                "created_by": "lesplanner",
            },
        }
    return {
        "id": f"evt_sec{n}",
        "object": "event",
        "type": "checkout.session.completed",
        "created": int(time.time()),
        "data": {"object": obj},
    }


def signed(
    event: dict[str, Any], secret: str = WEBHOOK_SECRET, timestamp: int | None = None
) -> tuple[bytes, str]:
    return FakeStripe.signed(event, secret, timestamp=timestamp)


def nothing_stored() -> bool:
    with read_session() as session:
        return not any(
            session.exec(select(model)).first()
            for model in (StripeEvent, Payment, Conversation, OutboxMessage)
        )


def _foreign(body: bytes, header: str) -> tuple[bytes, dict]:
    return body, {"Stripe-Signature": signed(json.loads(body), "whsec_someone_else_0123456789")[1]}


def _tampered(body: bytes, header: str) -> tuple[bytes, dict]:
    return body.replace(b"4500", b"1"), {"Stripe-Signature": header}


def _old(body: bytes, header: str) -> tuple[bytes, dict]:
    return body, {"Stripe-Signature": signed(json.loads(body), timestamp=int(time.time()) - 301)[1]}


def _future(body: bytes, header: str) -> tuple[bytes, dict]:
    return body, {"Stripe-Signature": signed(json.loads(body), timestamp=int(time.time()) + 3600)[1]}


def _missing(body: bytes, header: str) -> tuple[bytes, dict]:
    return body, {}


def _malformed(body: bytes, header: str) -> tuple[bytes, dict]:
    return body, {"Stripe-Signature": "v1=" + header.split("v1=")[1]}


def _v0_only(body: bytes, header: str) -> tuple[bytes, dict]:
    return body, {"Stripe-Signature": header.replace("v1=", "v0=")}


@pytest.fixture
def webhook_client(tmp_path, engine) -> TestClient:
    set_settings(make_settings(tmp_path, stripe_webhook_secret=WEBHOOK_SECRET))
    return TestClient(create_app(start_worker=False))


@pytest.mark.parametrize("spoil", [_foreign, _tampered, _old, _future, _missing, _malformed, _v0_only])
def test_a_webhook_without_a_valid_fresh_signature_is_400_and_stores_nothing(webhook_client, spoil):
    body, headers = spoil(*signed(paid_event()))

    response = webhook_client.post("/webhooks/stripe", content=body, headers=headers)

    assert response.status_code == 400, response.text
    assert nothing_stored()
    assert WEBHOOK_SECRET not in response.text


def test_a_webhook_signed_an_hour_ahead_is_400_with_the_reason_and_stores_nothing(webhook_client):
    """Stripe's library only refuses timestamps older than its tolerance; a signature dated in
    the future would stay valid for as long as it is ahead (issue 12, webhook clock)."""
    body, header = signed(paid_event(), timestamp=int(time.time()) + 3600)

    response = webhook_client.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": header})

    assert response.status_code == 400
    assert response.json() == {
        "detail": "The Stripe-Signature timestamp is more than 300 seconds in the "
        "future: not a delivery Stripe just made (or this server's clock is "
        "wrong)."
    }
    assert nothing_stored()


def test_a_webhook_signed_a_minute_ahead_is_accepted_as_clock_skew(webhook_client):
    body, header = signed(paid_event(), timestamp=int(time.time()) + 60)

    response = webhook_client.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": header})

    assert response.status_code == 200, response.text
    assert not nothing_stored()


def test_without_a_webhook_secret_even_a_well_signed_event_is_503_and_stores_nothing(tmp_path, engine):
    set_settings(make_settings(tmp_path))
    client = TestClient(create_app(start_worker=False))
    body, header = signed(paid_event())

    response = client.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": header})

    assert response.status_code == 503 and "STRIPE_WEBHOOK_SECRET" in response.json()["detail"]
    assert nothing_stored()


def test_the_same_event_signed_correctly_is_accepted(webhook_client):
    body, header = signed(paid_event())

    assert (
        webhook_client.post(
            "/webhooks/stripe", content=body, headers={"Stripe-Signature": header}
        ).status_code
        == 200
    )
    assert not nothing_stored()


# --- no secret in answers or logs ------------------------------------------------------------------


def secret_values(service_account_json: str) -> dict[str, str]:
    info = json.loads(service_account_json)
    key_lines = [line for line in info["private_key"].splitlines() if len(line) == 64]
    return {
        "STRIPE_API_KEY": STRIPE_KEY,
        "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET,
        "BOT_API_TOKEN": BOT_TOKEN,
        "CHATWOOT_API_TOKEN": CHATWOOT_TOKEN,
        "GCAL_SERVICE_ACCOUNT_JSON": service_account_json,
        "private_key": info["private_key"],
        "private_key line": key_lines[len(key_lines) // 2],
        "private_key_id": info["private_key_id"],
    }


def leaks(text: str, secrets: dict[str, str]) -> list[str]:
    escaped = text.replace("\\n", "\n")  # a PEM inside JSON or repr() has escaped newlines
    return [name for name, value in secrets.items() if value in text or value in escaped]


@pytest.fixture
def outside(tmp_path):
    """Fakes of Google (which does not know our key), Stripe (which does not know our API key)
    and Chatwoot (which expects another token)."""
    with FakeGoogleCalendar() as google, FakeStripe() as stripe_fake, FakeChatwoot() as chatwoot:
        add_prices(stripe_fake)
        yield google, stripe_fake, chatwoot, google.service_account_json(registered=False)


def all_secret_settings(google, stripe_fake, chatwoot, sa_json) -> dict[str, Any]:  # noqa: ANN001
    return dict(
        bot_api_token=BOT_TOKEN,
        calendar_backend="google",
        gcal_service_account_json=sa_json,
        gcal_api_endpoint=google.api_endpoint,
        gcal_calendar_id=CALENDAR,
        gcal_max_retries=1,
        **{**stripe_settings(stripe_fake, webhook_secret=WEBHOOK_SECRET), "stripe_api_key": STRIPE_KEY},
        chatwoot_url=chatwoot.url,
        chatwoot_account_id=chatwoot.account_id,
        chatwoot_api_token=CHATWOOT_TOKEN,
    )


def a_new_slot() -> dict[str, str]:
    """10:00 on a weekday at least two days from now: a slot the "new" profile offers."""
    day = datetime.now(AMS).date() + timedelta(days=2)
    while day.weekday() >= 5:
        day += timedelta(days=1)
    start = datetime(day.year, day.month, day.day, 10, 0, tzinfo=AMS)
    return {"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}


def failing_requests(client: httpx.Client | TestClient) -> list[Any]:
    """Requests that each make something go wrong; returns their responses."""
    auth = {"Authorization": f"Bearer {BOT_TOKEN}"}
    answers = []
    body, _ = signed(paid_event(1))
    answers.append(
        client.post(
            "/webhooks/stripe",
            content=body,  # signed with another secret
            headers={"Stripe-Signature": signed(paid_event(1), "whsec_other_0123456789")[1]},
        )
    )
    answers.append(client.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": "t=1,v1=00"}))
    broken, header = signed(paid_event(2, obj="not an object"))  # fails inside the handler: 500
    answers.append(client.post("/webhooks/stripe", content=broken, headers={"Stripe-Signature": header}))
    paid, header = signed(paid_event(3))  # handled: a Payment and a message for Chatwoot
    answers.append(client.post("/webhooks/stripe", content=paid, headers={"Stripe-Signature": header}))
    answers.append(
        client.post(
            "/api/v1/payment-links",
            headers=auth,
            json={  # Stripe: 401
                "segment": "new",
                "minutes": 60,
                "order_id": "order-9",
                "conversation_id": "conv-3",
            },
        )
    )
    answers.append(
        client.get(
            "/api/v1/slots",
            headers=auth,  # Google: invalid_grant
            params={"conversation_id": "conv-8", "contact_id": "contact-8"},
        )
    )
    answers.append(
        client.post(
            "/api/v1/bookings",
            headers=auth,
            json={"conversation_id": "conv-8", "contact_id": "contact-8", **a_new_slot()},
        )
    )
    answers.append(
        client.get(
            "/api/v1/slots",
            headers={"Authorization": f"Bearer {CHATWOOT_TOKEN}"},
            params={"conversation_id": "conv-8"},
        )
    )  # another secret as token: 401
    answers.append(
        client.post(
            "/webhooks/stripe", content=b"x" * (256 * 1024 + 1), headers={"Stripe-Signature": "t=1,v1=00"}
        )
    )
    return answers


def answer_text(response: Any) -> str:
    return response.text + "\n" + "\n".join(f"{k}: {v}" for k, v in response.headers.items())


def stored_texts(engine) -> str:  # noqa: ANN001
    """What the console shows about failures: integration status, failed events, outbox."""
    with Session(engine) as session:
        rows: list[Any] = [
            *session.exec(select(IntegrationStatus)),
            *session.exec(select(StripeEvent)),
            *session.exec(select(OutboxMessage)),
        ]
        return "\n".join(repr(row.model_dump()) for row in rows)


def test_no_secret_leaves_the_process_while_everything_fails(
    tmp_path, engine, outside, caplog, capsys, monkeypatch
):
    google, stripe_fake, chatwoot, sa_json = outside
    secrets = secret_values(sa_json)
    settings = make_settings(tmp_path, **all_secret_settings(google, stripe_fake, chatwoot, sa_json))
    set_settings(settings)
    monkeypatch.setattr(gateway, "RETRY_INITIAL_DELAY", 0.001)
    backend = GoogleCalendarBackend(settings, retry_base_delay=0.001)
    set_backend(backend)
    with write_session() as session:
        session.add(Tutor(name="Anna", calendar_id=CALENDAR))
    caplog.set_level(logging.DEBUG)
    for name in list(logging.root.manager.loggerDict):  # every library's logger, restored after
        caplog.set_level(logging.DEBUG, logger=name)
    client = TestClient(create_app(start_worker=False), raise_server_exceptions=False)

    def explode(*args: Any, **kwargs: Any) -> None:  # an error whose text holds every setting
        raise RuntimeError("unexpected: " + " | ".join(settings.configured_secrets()))

    answers = failing_requests(client)
    monkeypatch.setattr("receiver.routes.contacts.explain_segment", explode)
    with write_session() as session:
        session.add(Contact(id="p1"))
    answers.append(
        client.get("/api/v1/contacts/p1/segment", headers={"Authorization": f"Bearer {BOT_TOKEN}"})
    )
    report = deliver_pending()  # Chatwoot refuses the token
    backend.flush_status()

    assert [a.status_code for a in answers] == [400, 400, 500, 200, 503, 503, 503, 401, 413, 500]
    assert report.errors or report.failed or chatwoot.requests, report
    assert chatwoot.requests and {r.status for r in chatwoot.requests} == {401}
    for answer in answers:
        assert "Traceback" not in answer.text
        assert not leaks(answer_text(answer), secrets), answer.text
    assert "RuntimeError: unexpected" in caplog.text  # the error was logged, scrubbed
    assert "DEBUG" in {r.levelname for r in caplog.records}
    assert not leaks(caplog.text, secrets), [
        r.getMessage()[:300] for r in caplog.records if leaks(r.getMessage() + str(r.exc_text), secrets)
    ]
    out = capsys.readouterr()
    assert not leaks(out.out + out.err, secrets)
    assert not leaks(stored_texts(engine), secrets)


def test_no_secret_in_a_real_receivers_output_or_answers(tmp_path, outside):
    google, stripe_fake, chatwoot, sa_json = outside
    secrets = secret_values(sa_json)
    url = database_url(tmp_path)
    prepare_database(url, tutor_calendar=CALENDAR)
    env = receiver_env(
        url, **all_secret_settings(google, stripe_fake, chatwoot, sa_json), lesplanner_worker="1"
    )
    receiver = ReceiverProcess(env, workdir=tmp_path / "r", debug_logs=True).start()
    try:
        with httpx.Client(base_url=receiver.url, timeout=30) as client:
            answers = failing_requests(client)
            deadline = time.monotonic() + 10  # the outbox worker tries Chatwoot
            while not chatwoot.requests and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        receiver.stop()
    output = receiver.output()

    assert [a.status_code for a in answers] == [400, 400, 500, 200, 503, 503, 503, 401, 413]
    assert chatwoot.requests and chatwoot.requests[0].status == 401
    assert "DEBUG" in output and "Stripe" in output  # the logs were there to look at
    for answer in answers:
        assert not leaks(answer_text(answer), secrets), answer.text
    assert not leaks(output, secrets), [line[:300] for line in output.splitlines() if leaks(line, secrets)]
    assert not leaks(stored_texts(get_engine(url)), secrets)


# --- body limits and hostile text --------------------------------------------------------------


@pytest.fixture
def bot(token_settings) -> TestClient:
    clock.set_now(datetime(2026, 11, 30, 8, 0, tzinfo=AMS))
    with write_session() as session:
        session.add(Tutor(name="Anna", calendar_id=CALENDAR))
        for profile in session.exec(select(PlanningProfile)).all():
            profile.requires_payment = False
    return TestClient(create_app(start_worker=False), headers={"Authorization": f"Bearer {BOT_TOKEN}"})


def test_an_oversized_booking_body_is_413_and_books_nothing(bot):
    body = {
        "conversation_id": "c1",
        "contact_id": "p1",
        "start": "2026-12-01T10:00:00+01:00",
        "end": "2026-12-01T11:00:00+01:00",
        "description": "x" * (300 * 1024),
    }

    response = bot.post("/api/v1/bookings", json=body)

    assert response.status_code == 413 and "larger than the limit" in response.json()["detail"]
    with read_session() as session:
        assert session.exec(select(Lesson)).first() is None


def test_an_oversized_webhook_is_413_and_stores_nothing(tmp_path, engine):
    set_settings(make_settings(tmp_path, stripe_webhook_secret=WEBHOOK_SECRET))
    client = TestClient(create_app(start_worker=False))
    event = paid_event()
    event["data"]["object"]["padding"] = "x" * (300 * 1024)  # correctly signed, just too big
    body, header = signed(event)

    response = client.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": header})

    assert response.status_code == 413
    assert nothing_stored()


HOSTILE_NAMES = [
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    '"><img src=x onerror=alert(1)>',
    "Robert'); DROP TABLE lesson;--",
]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_a_hostile_contact_name_is_stored_as_text_and_returned_as_a_json_string(bot, name):
    response = bot.post(
        "/api/v1/bookings",
        json={
            "conversation_id": "c1",
            "contact_id": "p1",
            "start": "2026-12-01T10:00:00+01:00",
            "end": "2026-12-01T11:00:00+01:00",
            "title": name,
            "contact": {"name": name},
        },
    )

    assert response.status_code == 201, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json()["title"] == name
    assert json.dumps(name)[1:-1] in response.text  # a JSON string: quotes escaped, nothing bare
    with read_session() as session:
        assert session.get(Contact, "p1").name == name
        assert session.exec(select(Lesson)).one().title == name


def test_hostile_text_in_an_error_comes_back_as_json_not_html(bot):
    # A hostile id is refused outright (422, not echoed); hostile text the error does echo (an
    # unknown profile's name) comes back as a JSON string.
    refused = bot.get("/api/v1/slots", params={"conversation_id": "<script>alert(1)</script>"})
    echoed = bot.get(
        "/api/v1/slots",
        params={"conversation_id": "c1", "contact_id": "p1", "profile": "<script>alert(1)</script>"},
    )

    assert refused.status_code == 422 and refused.json()["detail"].startswith("conversation_id: ")
    assert echoed.status_code == 422, echoed.text
    assert echoed.json()["detail"].startswith("Unknown planning profile '<script>alert(1)</script>'")
    for response in (refused, echoed):
        assert response.headers["content-type"] == "application/json"


def test_the_service_account_private_key_alone_is_scrubbed_from_logs(tmp_path, engine, caplog):
    with FakeGoogleCalendar() as google:
        sa_json = google.service_account_json()
    set_settings(make_settings(tmp_path, bot_api_token=BOT_TOKEN, gcal_service_account_json=sa_json))
    private_key = json.loads(sa_json)["private_key"]

    def explode(*args: Any, **kwargs: Any) -> None:  # e.g. a library error quoting the key it parsed
        raise ValueError(f"could not use key {private_key!r}")

    client = TestClient(create_app(start_worker=False), raise_server_exceptions=False)
    with write_session() as session:
        session.add(Contact(id="p1"))
    with pytest.MonkeyPatch.context() as patch, caplog.at_level(logging.DEBUG):
        patch.setattr("receiver.routes.contacts.explain_segment", explode)
        response = client.get("/api/v1/contacts/p1/segment", headers={"Authorization": f"Bearer {BOT_TOKEN}"})

    assert response.status_code == 500 and "could not use key" in caplog.text
    assert not leaks(caplog.text, {"private_key": private_key})


def test_a_key_file_named_by_path_is_scrubbed_too(tmp_path):
    with FakeGoogleCalendar() as google:
        sa_json = google.service_account_json()
    key_file = tmp_path / "service-account.json"
    key_file.write_text(sa_json)
    settings = make_settings(tmp_path, gcal_service_account_json=str(key_file))
    info = json.loads(sa_json)
    line = f"failed with {info['private_key']!r} (key id {info['private_key_id']})"

    scrubbed = scrub(line, settings)

    assert not leaks(scrubbed, {"private_key": info["private_key"], "key_id": info["private_key_id"]})
    assert "failed with" in scrubbed


# --- ids from the bot: one safe alphabet (issue 12, items 6-7) --------------------------------------

UNSAFE_IDS = ["..", ".", "a/b", "a\nb", "x y", "<script>", "a" * 121, "%2e%2e", ""]


def _no_conversation_stored() -> bool:
    with read_session() as session:
        return (
            session.exec(select(Conversation)).first() is None
            and session.exec(select(Contact)).first() is None
        )


@pytest.mark.parametrize("bad", UNSAFE_IDS)
@pytest.mark.parametrize("field", ["conversation_id", "contact_id"])
def test_a_booking_with_an_unsafe_id_is_422_naming_the_field_and_stores_nothing(bot, field, bad):
    body = {
        "conversation_id": "c1",
        "contact_id": "p1",
        "start": "2026-12-01T10:00:00+01:00",
        "end": "2026-12-01T11:00:00+01:00",
        field: bad,
    }

    response = bot.post("/api/v1/bookings", json=body)

    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"{field}: ")
    assert _no_conversation_stored()


@pytest.mark.parametrize("bad", ["..", "a\nb", "a/b"])
@pytest.mark.parametrize("field", ["conversation_id", "contact_id"])
def test_slots_with_an_unsafe_id_are_422_naming_the_field_and_store_nothing(bot, field, bad):
    params = {"conversation_id": "c1", "contact_id": "p1", field: bad}

    response = bot.get("/api/v1/slots", params=params)

    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith(f"{field}: ")
    assert _no_conversation_stored()


@pytest.mark.parametrize("bad", ["..", "a\nb"])
def test_a_payment_link_with_an_unsafe_conversation_id_is_422(bot, bad):
    response = bot.post(
        "/api/v1/payment-links",
        json={"segment": "new", "minutes": 60, "order_id": "o-1", "conversation_id": bad},
    )

    assert response.status_code == 422, response.text
    assert response.json()["detail"].startswith("conversation_id: ")
    assert _no_conversation_stored()


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/contacts/%2E%2E/segment",
        "/api/v1/contacts/a%0Ab/segment",
        "/api/v1/conversations/%2E%2E/messages",
        "/api/v1/conversations/a%0Ab/messages",
        "/api/v1/conversations/a%20b/messages/1/ack",
    ],
)
def test_an_unsafe_id_in_a_path_is_422_naming_the_field(bot, path):
    method = "POST" if path.endswith("/ack") else "GET"

    response = bot.request(method, path)

    assert response.status_code == 422, response.text
    field = "contact_id" if "/contacts/" in path else "conversation_id"
    assert response.json()["detail"].startswith(f"{field}: ")


def test_the_ids_the_bot_sends_today_stay_valid(bot):
    for ok in ["conv-1", "contact-1", "4242", "501", "1001", "c1", "p1", "a.b", "x:y@z+1", "a_b-c"]:
        response = bot.get("/api/v1/slots", params={"conversation_id": ok, "contact_id": ok})
        assert response.status_code == 200, (ok, response.text)


def test_a_job_key_with_a_newline_is_logged_on_one_line(engine, caplog):
    jobs.register("test.security.fails", lambda ctx: (_ for _ in ()).throw(jobs.Permanent("no")))
    with write_session() as session:
        jobs.enqueue(session, "test.security.fails", "order-1\nFORGED job 99 done")

    with caplog.at_level(logging.INFO):
        jobs.run_due(kinds=["test.security.fails"])

    mine = [r for r in caplog.records if "order-1" in r.getMessage()]
    assert len(mine) == 1
    assert "\n" not in mine[0].getMessage()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://app:s3cretpw@db/lesplanner",
        "postgresql+psycopg://app@db/lesplanner?password=s3cretpw",
        "postgresql+psycopg://app@db/lesplanner?sslpassword=s3cretpw",
    ],
)
def test_the_database_password_is_scrubbed_in_every_form_the_url_can_carry_it(tmp_path, url):
    """Issue 12, item 8: scrub() did not know the database password at all."""
    from core.config import Settings, scrub

    settings = Settings(_env_file=None, database_url=url)

    assert "s3cretpw" not in scrub(f"connection to db failed: password s3cretpw rejected ({url})", settings)
