"""The receiver's FastAPI app: `create_app()` and the module-level `app` for uvicorn.

Wiring only: error mapping (receiver/errors.py); the gate in front of the bot API
(receiver/gate.py: rate limits and the token, checked before any body is read); the request-body
limit; the routers; the API docs (off with API_DOCS_ENABLED=false, read when the app is made);
and the background worker thread (core/worker.py: expired holds and jobs) started with the app
unless LESPLANNER_WORKER=0. The app assumes a migrated database (`python -m core.cli migrate`);
it creates no tables itself.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.config import get_settings
from core.worker import run_worker
from receiver.errors import BodyTooLarge, install_error_handlers
from receiver.gate import BotApiGate
from receiver.ratelimit import RateLimiter
from receiver.routes import api_router, public_router

log = logging.getLogger("receiver")

DESCRIPTION = """
The back office's HTTP side: Stripe webhooks and the chatbot's API.

**Bot flow**: `GET /api/v1/contacts/{id}/segment` → `GET /api/v1/slots` → `POST /api/v1/bookings`
(a held lesson comes with a Stripe `payment_url`) → the customer pays → Stripe calls
`/webhooks/stripe` → the lesson is confirmed and the confirmation waits in
`GET /api/v1/conversations/{id}/messages` (or is delivered to Chatwoot).

Every bot route needs `Authorization: Bearer <BOT_API_TOKEN>`; without it the answer is 401
before the body is looked at. Too many requests (per token, and per address for requests
without a valid token) are 429 with `Retry-After` in seconds. Datetimes are ISO 8601 with an
offset; naive datetimes are rejected. Errors are `{"detail": "..."}`.
"""


class BodySizeLimitMiddleware:
    """413 for bodies over `max_body_bytes`: by Content-Length up front, and by counting what
    arrives, because a chunked body has no Content-Length to trust."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = get_settings().max_body_bytes
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            too_large = BodyTooLarge(limit)
            await JSONResponse({"detail": too_large.detail}, status_code=413)(scope, receive, send)
            return
        seen = 0

        async def counting_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, counting_receive, send)


def worker_enabled() -> bool:
    return os.environ.get("LESPLANNER_WORKER", "1").strip().lower() not in ("0", "false", "no", "off")


def create_app(
    *, start_worker: bool | None = None, rate_clock: Callable[[], float] = time.monotonic
) -> FastAPI:
    """The receiver app. `start_worker` defaults to the LESPLANNER_WORKER environment switch;
    `rate_clock` is the monotonic clock of the bot API's rate limits (tests move their own)."""
    run_it = worker_enabled() if start_worker is None else start_worker

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        stop = threading.Event()
        thread = None
        if run_it:
            thread = threading.Thread(target=run_worker, args=(stop,), name="lesplanner-worker", daemon=True)
            thread.start()
        try:
            yield
        finally:
            stop.set()
            if thread is not None:
                thread.join(timeout=15)

    docs = get_settings().api_docs_enabled  # off: /docs, /redoc and /openapi.json are 404
    app = FastAPI(
        title="Lesplanner receiver",
        version="1.0.0",
        description=DESCRIPTION,
        docs_url="/docs" if docs else None,
        redoc_url="/redoc" if docs else None,
        openapi_url="/openapi.json" if docs else None,
        lifespan=lifespan,
    )
    app.add_middleware(BodySizeLimitMiddleware)
    app.state.rate_limiter = RateLimiter(now=rate_clock)  # this app's buckets, per process
    app.add_middleware(
        BotApiGate, limiter=app.state.rate_limiter
    )  # outside the body limit: a stranger gets 401, never 413
    install_error_handlers(app)  # its catch-all middleware is added last, so it is outermost
    app.include_router(public_router)
    app.include_router(api_router)
    return app


app = create_app()
