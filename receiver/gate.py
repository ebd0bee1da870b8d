"""The gate in front of the bot API: a pure ASGI middleware for every path under /api/v1.

It decides before the app runs, so a refused request's body is never read, let alone parsed
(FastAPI reads and parses a route's JSON body before or alongside its dependencies, so a
dependency alone would parse a stranger's body and turn a broken one into a 422):

1. An address over its limit of requests without a valid token → 429, without even comparing
   the token, so guessing it is slow (`BOT_RATE_LIMIT_PER_ADDRESS` a minute).
2. The bearer token (receiver.deps.check_bot_token, the one comparison): none configured → 503,
   missing or wrong → 401; either counts against the address.
3. The token over its limit → 429 (`BOT_RATE_LIMIT_PER_TOKEN` a minute).

Limits are read from the settings on every request; the buckets are this process's
(receiver/ratelimit.py). The gate matches the path the router matches (`scope["path"]` without
the `root_path`), so no spelling of a bot route reaches the app past it.
"""

from __future__ import annotations

import hashlib

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from core.config import get_settings
from core.errors import LesplannerError
from receiver.deps import check_bot_token
from receiver.errors import TooManyRequests, error_response
from receiver.ratelimit import RateLimiter, retry_after_seconds

BOT_API_PREFIX = "/api/v1"


def route_path(scope: Scope) -> str:
    """The path as Starlette's router matches it (its `get_route_path`, which is private):
    without the mount point (`root_path`) in front."""
    path: str = scope.get("path", "")
    root: str = scope.get("root_path", "")
    if not root or not path.startswith(root):
        return path
    if path == root:
        return ""
    return path[len(root) :] if path[len(root)] == "/" else path


def is_bot_api(path: str) -> bool:
    return path == BOT_API_PREFIX or path.startswith(BOT_API_PREFIX + "/")


def client_address(scope: Scope) -> str:
    """The client's address as the server reports it (behind a proxy: what uvicorn took from
    X-Forwarded-For for a trusted proxy, see `--forwarded-allow-ips`)."""
    client = scope.get("client")
    return str(client[0]) if client else "unknown"


def _too_many(what: str, per_minute: int, wait: float) -> TooManyRequests:
    seconds = retry_after_seconds(wait)
    unit = "second" if seconds == 1 else "seconds"
    return TooManyRequests(
        f"Too many bot API requests {what} (at most {per_minute} a minute); try again in {seconds} {unit}.",
        retry_after=seconds,
    )


class BotApiGate:
    """Rate limits and the bearer token for /api/v1, before the app runs."""

    def __init__(self, app: ASGIApp, limiter: RateLimiter | None = None) -> None:
        self.app = app
        self.limiter = limiter if limiter is not None else RateLimiter()  # an empty one is falsy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_bot_api(route_path(scope)):
            await self.app(scope, receive, send)
            return
        try:
            self._admit(scope)
        except LesplannerError as refused:
            response = error_response(refused, scope.get("method", ""), scope.get("path", ""))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def _admit(self, scope: Scope) -> None:
        """Returns when the request may go on; raises the refusal otherwise."""
        settings = get_settings()
        per_address, per_token = settings.bot_rate_limit_per_address, settings.bot_rate_limit_per_token
        address = ("address", client_address(scope))
        wait = self.limiter.wait(address, per_address)
        if wait is not None:
            raise _too_many("without a valid token from this address", per_address, wait)
        try:
            token = check_bot_token(settings, Headers(scope=scope).get("authorization"))
        except LesplannerError:
            self.limiter.take(address, per_address)
            raise
        # Keyed by a digest: the limiter's table need not hold the secret itself.
        wait = self.limiter.take(("token", hashlib.sha256(token.encode()).hexdigest()), per_token)
        if wait is not None:
            raise _too_many("with this token", per_token, wait)
