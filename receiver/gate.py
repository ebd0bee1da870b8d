"""The gate in front of the bot API: a pure ASGI middleware for every path under /api/v1.

It checks the bearer token (receiver.deps.check_bot_token, the one comparison) before the app
runs, so a request without the right token is answered 401 (or 503 when no token is configured)
without its body ever being read: FastAPI reads and parses a route's JSON body before or
alongside its dependencies, so a dependency alone would let a stranger's body be parsed and
turn a broken one into a 422.

The gate matches the path the router matches (`scope["path"]` without the `root_path`), so no
spelling of a bot route reaches the app past it.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

from core.config import get_settings
from core.errors import LesplannerError
from receiver.deps import check_bot_token
from receiver.errors import error_response

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
    return path[len(root):] if path[len(root)] == "/" else path


def is_bot_api(path: str) -> bool:
    return path == BOT_API_PREFIX or path.startswith(BOT_API_PREFIX + "/")


class BotApiGate:
    """401/503 for /api/v1 requests without the configured bearer token, before the app runs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_bot_api(route_path(scope)):
            await self.app(scope, receive, send)
            return
        try:
            check_bot_token(get_settings(), Headers(scope=scope).get("authorization"))
        except LesplannerError as refused:
            response = error_response(refused, scope.get("method", ""), scope.get("path", ""))
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
