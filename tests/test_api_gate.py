"""The gate in front of the bot API (issue 12, item 9): who may talk to /api/v1, and how often.

- A missing or wrong token is answered with 401 before the body is read, let alone parsed: a
  large or broken body from a stranger costs the receiver nothing and never turns into a 422.
- Rate limits per token and per client address answer 429 with `Retry-After`; requests
  without a valid token count against their address, so guessing the token is slow.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.config import set_settings
from receiver.main import create_app
from tests.conftest import make_settings
from tests.test_api_support import TOKEN

pytest_plugins = ["tests.test_api_support"]

BIG_BOOKING = {"conversation_id": "c1", "contact_id": "p1", "start": "2026-12-01T10:00:00+01:00",
               "end": "2026-12-01T11:00:00+01:00", "description": "x" * (200 * 1024)}


class BodySpy:
    """Wraps an ASGI app and counts the request body bytes the app pulled from the server."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.bytes_read = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def spying_receive() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.bytes_read += len(message.get("body", b""))
            return message

        await self.app(scope, spying_receive, send)


@pytest.fixture
def json_parses(monkeypatch) -> list[int]:
    """Every call of Starlette's `Request.json` (how FastAPI parses a JSON body) is recorded."""
    calls: list[int] = []
    original = Request.json

    async def spy(self: Request) -> Any:
        calls.append(1)
        return await original(self)

    monkeypatch.setattr(Request, "json", spy)
    return calls


# --- item 9a: authentication before parsing -------------------------------------------------------


@pytest.mark.parametrize("authorization", [None, "Bearer wrong-token"])
def test_an_unauthenticated_large_body_is_401_before_anything_is_read_or_parsed(api_settings, json_parses,
                                                                              authorization):
    spy = BodySpy(create_app(start_worker=False))
    client = TestClient(spy)
    headers = {"Authorization": authorization} if authorization else {}
    body = json.dumps(BIG_BOOKING).encode()
    assert 190 * 1024 < len(body) < 256 * 1024  # large, but under the body limit

    response = client.post("/api/v1/bookings", content=body, headers={**headers, "Content-Type": "application/json"})

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {"detail": "Missing or wrong bot API token: send 'Authorization: Bearer <BOT_API_TOKEN>'."}
    assert spy.bytes_read == 0
    assert json_parses == []


@pytest.mark.parametrize("body", [b"{not json", b'{"conversation_id": 5}', b"\xff\xfe"])
def test_an_unauthenticated_invalid_body_is_401_not_422(api_settings, json_parses, body):
    client = TestClient(create_app(start_worker=False))

    response = client.post("/api/v1/bookings", content=body, headers={"Content-Type": "application/json"})

    assert response.status_code == 401, response.text
    assert json_parses == []


def test_without_a_configured_token_a_large_body_is_503_unread(tmp_path, engine, json_parses):
    set_settings(make_settings(tmp_path))
    spy = BodySpy(create_app(start_worker=False))

    response = TestClient(spy).post("/api/v1/bookings", json=BIG_BOOKING, headers={"Authorization": "Bearer x"})

    assert response.status_code == 503
    assert response.json() == {"detail": "Bot API is not configured: set BOT_API_TOKEN"}
    assert spy.bytes_read == 0 and json_parses == []


def test_with_the_right_token_the_body_is_read_and_validated(api_settings, json_parses):
    client = TestClient(create_app(start_worker=False), headers={"Authorization": f"Bearer {TOKEN}"})

    response = client.post("/api/v1/bookings", content=b'{"conversation_id": 5}',
                           headers={"Content-Type": "application/json"})

    assert response.status_code == 422
    assert json_parses == [1]


@pytest.mark.parametrize("path", ["/api/v1/slots/", "/api/v1", "/api/v1/", "/api/v1/no-such-route",
                                  "/api/v1/conversations/c1/messages/1/ack/"])
def test_every_spelling_under_the_bot_prefix_is_gated(api_settings, path):
    client = TestClient(create_app(start_worker=False), follow_redirects=False)

    response = client.post(path, json={})

    assert response.status_code == 401, (path, response.status_code)


def test_behind_a_mount_point_the_bot_api_is_gated_too(api_settings, json_parses):
    app = create_app(start_worker=False)

    async def mounted(scope: Scope, receive: Receive, send: Send) -> None:
        # What `uvicorn --root-path /lesplanner` hands the app: the full path and the mount point.
        await app({**scope, "root_path": "/lesplanner", "path": "/lesplanner" + scope["path"]}, receive, send)

    client = TestClient(mounted)

    assert client.post("/api/v1/bookings", content=b"{not json",
                       headers={"Content-Type": "application/json"}).status_code == 401
    assert json_parses == []
    assert client.get("/api/v1/contacts/p1/segment", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 404
