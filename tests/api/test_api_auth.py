"""Every bot route sits behind the bearer token; the public routes do not."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from core.config import set_settings
from receiver.main import create_app
from tests.conftest import make_settings
from tests.support.api import TOKEN

pytest_plugins = ["tests.support.api"]

BOT_ROUTES = [
    ("GET", "/api/v1/slots?conversation_id=c1&contact_id=p1", None),
    (
        "POST",
        "/api/v1/bookings",
        {
            "conversation_id": "c1",
            "contact_id": "p1",
            "start": "2026-12-01T10:00:00+01:00",
            "end": "2026-12-01T11:00:00+01:00",
        },
    ),
    (
        "POST",
        "/api/v1/payment-links",
        {"segment": "new", "minutes": 60, "order_id": "o1", "conversation_id": "c1"},
    ),
    ("GET", "/api/v1/contacts/p1/segment", None),
    ("GET", "/api/v1/conversations/c1/messages", None),
    ("POST", "/api/v1/conversations/c1/messages/1/ack", None),
]


def call(client: TestClient, method: str, path: str, body, headers: dict[str, str]):
    return client.request(method, path, json=body, headers=headers)


@pytest.mark.parametrize(("method", "path", "body"), BOT_ROUTES)
@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer ", f"Bearer {TOKEN}x", f"bearer  {TOKEN[:-1]}"],
)
def test_a_missing_or_wrong_token_is_refused_with_401(api_settings, method, path, body, authorization):
    client = TestClient(create_app(start_worker=False))
    headers = {"Authorization": authorization} if authorization is not None else {}

    response = call(client, method, path, body, headers)

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["detail"]


@pytest.mark.parametrize(("method", "path", "body"), BOT_ROUTES)
def test_without_a_configured_token_the_bot_api_is_closed_with_503(tmp_path, engine, method, path, body):
    set_settings(make_settings(tmp_path))  # no BOT_API_TOKEN
    client = TestClient(create_app(start_worker=False))

    response = call(client, method, path, body, {"Authorization": "Bearer anything"})

    assert response.status_code == 503
    assert response.json() == {"detail": "Bot API is not configured: set BOT_API_TOKEN"}


@pytest.mark.parametrize(("method", "path", "body"), BOT_ROUTES)
def test_the_right_token_reaches_the_route(client, tutor, method, path, body):
    response = call(client, method, path, body, {})

    assert response.status_code != 401, response.text
    assert "BOT_API_TOKEN" not in response.text  # whatever the route says, it is not about auth


def test_a_blank_configured_token_counts_as_not_configured(tmp_path, engine):
    set_settings(make_settings(tmp_path, bot_api_token="   "))
    client = TestClient(create_app(start_worker=False))

    assert (
        client.get("/api/v1/contacts/p1/segment", headers={"Authorization": "Bearer    "}).status_code == 503
    )


@pytest.mark.parametrize("path", ["/healthz", "/docs", "/openapi.json"])
def test_health_and_docs_need_no_token(api_settings, path):
    assert TestClient(create_app(start_worker=False)).get(path).status_code == 200
