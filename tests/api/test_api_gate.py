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

from core.config import Settings, set_settings
from receiver.main import create_app
from receiver.ratelimit import RateLimiter, retry_after_seconds
from tests.conftest import make_settings
from tests.support.api import TOKEN

pytest_plugins = ["tests.support.api"]

BIG_BOOKING = {
    "conversation_id": "c1",
    "contact_id": "p1",
    "start": "2026-12-01T10:00:00+01:00",
    "end": "2026-12-01T11:00:00+01:00",
    "description": "x" * (200 * 1024),
}


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
def test_an_unauthenticated_large_body_is_401_before_anything_is_read_or_parsed(
    api_settings, json_parses, authorization
):
    spy = BodySpy(create_app(start_worker=False))
    client = TestClient(spy)
    headers = {"Authorization": authorization} if authorization else {}
    body = json.dumps(BIG_BOOKING).encode()
    assert 190 * 1024 < len(body) < 256 * 1024  # large, but under the body limit

    response = client.post(
        "/api/v1/bookings", content=body, headers={**headers, "Content-Type": "application/json"}
    )

    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert response.json() == {
        "detail": "Missing or wrong bot API token: send 'Authorization: Bearer <BOT_API_TOKEN>'."
    }
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

    response = TestClient(spy).post(
        "/api/v1/bookings", json=BIG_BOOKING, headers={"Authorization": "Bearer x"}
    )

    assert response.status_code == 503
    assert response.json() == {"detail": "Bot API is not configured: set BOT_API_TOKEN"}
    assert spy.bytes_read == 0 and json_parses == []


def test_with_the_right_token_the_body_is_read_and_validated(api_settings, json_parses):
    client = TestClient(create_app(start_worker=False), headers={"Authorization": f"Bearer {TOKEN}"})

    response = client.post(
        "/api/v1/bookings", content=b'{"conversation_id": 5}', headers={"Content-Type": "application/json"}
    )

    assert response.status_code == 422
    assert json_parses == [1]


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/slots/",
        "/api/v1",
        "/api/v1/",
        "/api/v1/no-such-route",
        "/api/v1/conversations/c1/messages/1/ack/",
    ],
)
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

    assert (
        client.post(
            "/api/v1/bookings", content=b"{not json", headers={"Content-Type": "application/json"}
        ).status_code
        == 401
    )
    assert json_parses == []
    assert (
        client.get("/api/v1/contacts/p1/segment", headers={"Authorization": f"Bearer {TOKEN}"}).status_code
        == 404
    )


# --- item 9b: rate limits ---------------------------------------------------------------------------

SEGMENT = "/api/v1/contacts/p1/segment"  # 404 for the unknown contact: cheap, and never a 429 itself
RIGHT = {"Authorization": f"Bearer {TOKEN}"}
WRONG = {"Authorization": "Bearer guess"}


class FakeMonotonic:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def ticks() -> FakeMonotonic:
    return FakeMonotonic()


@pytest.fixture
def limited(tmp_path, engine, ticks):
    """Settings with small limits (5 per token, 3 per address a minute) and a factory of clients,
    one per client address, on one app whose rate limits run on `ticks`."""
    set_settings(
        make_settings(tmp_path, bot_api_token=TOKEN, bot_rate_limit_per_token=5, bot_rate_limit_per_address=3)
    )
    app = create_app(start_worker=False, rate_clock=ticks)

    def client_from(address: str) -> TestClient:
        return TestClient(app, client=(address, 40000))

    return client_from


def statuses(client: TestClient, times: int, headers: dict[str, str], path: str = SEGMENT) -> list[int]:
    return [client.get(path, headers=headers).status_code for _ in range(times)]


def test_the_request_over_the_token_limit_is_429_with_retry_after(limited):
    bot = limited("10.0.0.1")

    assert statuses(bot, 5, RIGHT) == [404] * 5
    response = bot.get(SEGMENT, headers=RIGHT)

    assert response.status_code == 429
    assert response.headers["retry-after"] == "12"  # 5 a minute: the next one is free in 12 s
    assert response.json() == {
        "detail": "Too many bot API requests with this token (at most 5 a minute); try again in 12 seconds."
    }


def test_the_token_limit_holds_for_the_token_from_every_address(limited):
    assert statuses(limited("10.0.0.1"), 5, RIGHT) == [404] * 5

    assert limited("10.0.0.2").get(SEGMENT, headers=RIGHT).status_code == 429


def test_another_token_is_not_held_by_the_used_up_one(limited, tmp_path):
    bot = limited("10.0.0.1")
    assert statuses(bot, 6, RIGHT)[-1] == 429

    set_settings(
        make_settings(
            tmp_path,
            bot_api_token="a-rotated-token",
            bot_rate_limit_per_token=5,
            bot_rate_limit_per_address=3,
        )
    )

    assert bot.get(SEGMENT, headers={"Authorization": "Bearer a-rotated-token"}).status_code == 404


def test_after_the_window_the_token_may_make_requests_again(limited, ticks):
    bot = limited("10.0.0.1")
    assert statuses(bot, 6, RIGHT)[-1] == 429

    ticks.now += 12  # what Retry-After said: one request again
    assert statuses(bot, 2, RIGHT) == [404, 429]
    ticks.now += 60  # a whole minute: the whole allowance again
    assert statuses(bot, 6, RIGHT) == [404] * 5 + [429]


def test_requests_without_the_token_count_against_their_address_and_slow_guessing(limited):
    stranger = limited("203.0.113.9")

    assert statuses(stranger, 3, WRONG) + statuses(stranger, 1, {}) == [401, 401, 401, 429]
    blocked = stranger.get(SEGMENT, headers=RIGHT)  # even a right guess is not tried any more

    assert blocked.status_code == 429
    assert blocked.headers["retry-after"] == "20"
    assert blocked.json() == {
        "detail": "Too many bot API requests without a valid token from this address "
        "(at most 3 a minute); try again in 20 seconds."
    }


def test_an_address_over_its_limit_does_not_hold_back_another(limited):
    assert statuses(limited("203.0.113.9"), 4, WRONG)[-1] == 429

    other = limited("10.0.0.1")
    assert other.get(SEGMENT, headers=WRONG).status_code == 401
    assert other.get(SEGMENT, headers=RIGHT).status_code == 404


def test_after_retry_after_the_address_may_try_again(limited, ticks):
    stranger = limited("203.0.113.9")
    assert statuses(stranger, 4, WRONG)[-1] == 429

    ticks.now += 19
    assert stranger.get(SEGMENT, headers=RIGHT).status_code == 429
    ticks.now += 1
    assert stranger.get(SEGMENT, headers=RIGHT).status_code == 404


def test_requests_with_the_token_do_not_use_up_the_address_limit(limited):
    assert statuses(limited("10.0.0.1"), 5, RIGHT) == [404] * 5  # more than the address' 3

    assert limited("10.0.0.1").get(SEGMENT, headers=WRONG).status_code == 401


def test_while_no_token_is_configured_requests_count_against_the_address(tmp_path, engine, ticks):
    set_settings(make_settings(tmp_path, bot_rate_limit_per_address=2))
    client = TestClient(create_app(start_worker=False, rate_clock=ticks))

    assert statuses(client, 3, RIGHT) == [503, 503, 429]


def test_a_refused_address_is_answered_before_its_body_is_read(limited, json_parses):
    stranger = limited("203.0.113.9")
    statuses(stranger, 3, WRONG)

    response = stranger.post(
        "/api/v1/bookings", content=b"{not json", headers={**RIGHT, "Content-Type": "application/json"}
    )

    assert response.status_code == 429
    assert json_parses == []


def test_public_routes_are_not_rate_limited(limited):
    client = limited("203.0.113.9")

    assert statuses(client, 10, {}, path="/healthz") == [200] * 10


def test_zero_switches_a_limit_off(tmp_path, engine, ticks):
    set_settings(
        make_settings(tmp_path, bot_api_token=TOKEN, bot_rate_limit_per_token=0, bot_rate_limit_per_address=0)
    )
    client = TestClient(create_app(start_worker=False, rate_clock=ticks))

    assert set(statuses(client, 30, WRONG)) == {401}
    assert set(statuses(client, 30, RIGHT)) == {404}


def test_the_defaults_are_real_limits():
    settings = Settings(_env_file=None)

    assert settings.bot_rate_limit_per_token == 600
    assert settings.bot_rate_limit_per_address == 60


def test_the_openapi_document_lists_429_on_every_bot_route(api_settings):
    spec = TestClient(create_app(start_worker=False)).get("/openapi.json").json()

    bot_operations = [
        (path, op) for path, ops in spec["paths"].items() if path.startswith("/api/v1") for op in ops.values()
    ]
    assert bot_operations
    for path, op in bot_operations:
        assert "429" in op["responses"], path
        assert "Retry-After" in op["responses"]["429"].get("headers", {}), path


# --- the limiter on its own -------------------------------------------------------------------------


def test_the_limiter_forgets_buckets_that_are_full_again(ticks):
    limiter = RateLimiter(now=ticks)
    for n in range(100):
        limiter.take(("address", f"198.51.100.{n}"), 3)

    ticks.now += 60
    limiter.take(("address", "198.51.100.200"), 3)

    assert len(limiter) == 1


def test_the_limiter_keeps_at_most_max_keys_dropping_the_least_recently_used(ticks):
    limiter = RateLimiter(now=ticks, max_keys=10)
    for n in range(50):
        limiter.take("busy", 1)  # used up at once, and used again and again
        limiter.take(n, 1)

    assert len(limiter) == 10
    assert limiter.take("busy", 1) is not None  # still remembered, still over its limit


def test_an_uneven_limit_rounds_retry_after_up(ticks):
    limiter = RateLimiter(now=ticks)

    assert [limiter.take("k", 7) for _ in range(7)] == [None] * 7
    wait = limiter.take("k", 7)

    assert wait == pytest.approx(60 / 7) and retry_after_seconds(wait) == 9
    ticks.now += 60 / 7
    assert limiter.take("k", 7) is None
