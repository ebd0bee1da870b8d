"""Errors → HTTP answers, in one place.

- `LesplannerError` subclasses answer the status `HTTP_STATUS` gives their class (or, through the
  MRO, the nearest parent listed there) with `{"detail": message}`;
  `SlotTaken` adds fresh `alternatives`, `Unauthorized` adds `WWW-Authenticate: Bearer`,
  `TooManyRequests` adds `Retry-After`.
- Request validation answers 422 with one human-readable sentence (plus the per-field list).
- Anything else answers 500 with a fixed sentence. The traceback is logged here, with every
  configured secret scrubbed, and never leaves the process.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from core.config import get_settings, scrub
from core.errors import (
    IntegrationUnavailable,
    InvalidTransition,
    LesplannerError,
    NotFound,
    PermissionDenied,
    SlotTaken,
    ValidationFailed,
    WebhookSignatureInvalid,
)
from core.payments import WebhookHandlingFailed
from core.slots import Slot

log = logging.getLogger("receiver")

INTERNAL_ERROR = "Internal error; it has been logged."
FASTAPI_UNPARSABLE_BODY = "There was an error parsing the body"


class Unauthorized(LesplannerError):
    """No valid bot API token; answered with `WWW-Authenticate: Bearer`."""


class BotApiNotConfigured(IntegrationUnavailable):
    pass


class TooManyRequests(LesplannerError):
    """Over a rate limit (receiver/ratelimit.py); answered with `Retry-After` in seconds."""

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class BodyTooLarge(HTTPException):
    """Raised from the body-size guard while the route reads its body. An HTTPException, because
    FastAPI turns any other exception during body parsing into a 400."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body is larger than the limit of {limit} bytes.")


# Every error family's HTTP answer, in one place: core knows nothing of HTTP. A class not listed
# answers like its nearest listed parent (MRO order); tests/project/test_architecture.py checks that
# every direct subclass of LesplannerError is listed, so a new family decides its status.
HTTP_STATUS: dict[type[LesplannerError], int] = {
    LesplannerError: 400,
    ValidationFailed: 422,
    NotFound: 404,
    SlotTaken: 409,
    InvalidTransition: 409,
    PermissionDenied: 403,
    Unauthorized: 401,
    TooManyRequests: 429,
    WebhookSignatureInvalid: 400,
    WebhookHandlingFailed: 500,
    IntegrationUnavailable: 503,
}


def status_for(exc: LesplannerError | type[LesplannerError]) -> int:
    """The HTTP status the receiver answers for this error (or error class)."""
    cls = exc if isinstance(exc, type) else type(exc)
    return next(HTTP_STATUS[c] for c in cls.__mro__ if c in HTTP_STATUS)


def slot_json(slot: Slot) -> dict[str, str]:
    tz = get_settings().tz
    return {"start": slot.start.astimezone(tz).isoformat(), "end": slot.end.astimezone(tz).isoformat()}


def error_response(exc: LesplannerError, method: str, path: str) -> JSONResponse:
    """The answer to a LesplannerError, for the exception handler and for the ASGI gate in
    front of the bot API (receiver/gate.py), which answers before any route runs."""
    body: dict[str, Any] = {"detail": exc.message}
    status = status_for(exc)
    if status >= 500 and not isinstance(exc, IntegrationUnavailable):
        # A failure inside (e.g. a webhook event that could not be handled, Stripe retries):
        # its cause is for the log, not for whoever called.
        log.warning("%s %s answered %s: %s", method, path, status, scrub(exc.message))
        body = {"detail": INTERNAL_ERROR}
    headers: dict[str, str] = {}
    if isinstance(exc, SlotTaken):
        body["alternatives"] = [slot_json(s) for s in exc.alternatives]
    if isinstance(exc, Unauthorized):
        headers["WWW-Authenticate"] = "Bearer"
    if isinstance(exc, TooManyRequests):
        headers["Retry-After"] = str(exc.retry_after)
    return JSONResponse(body, status_code=status, headers=headers)


def _lesplanner_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, LesplannerError)
    return error_response(exc, request.method, request.url.path)


def _field_name(loc: Sequence[Any], kind: str = "") -> str:
    # ("body", "contact", "email") → "contact.email"; the location kind is noise for people.
    if kind == "json_invalid":
        return "body"  # its location is a character offset, which names no field
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts)


def _sentence(error: dict[str, Any]) -> str:
    kind = error.get("type", "")
    field = _field_name(error.get("loc", ()))
    if kind == "json_invalid":
        reason = (error.get("ctx") or {}).get("error", "")
        return (
            f"The request body is not valid JSON ({reason})."
            if reason
            else "The request body is not valid JSON."
        )
    if kind == "timezone_aware":
        return (
            f"{field} has no time zone offset; send ISO 8601 with an offset, e.g. 2026-12-01T10:00:00+01:00"
        )
    if kind == "missing" and not field:
        return "A JSON request body is required."
    message = str(error.get("msg", "is invalid"))
    message = message.removeprefix("Value error, ")
    return f"{field}: {message}" if field else message


def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    sentences = [_sentence(e) for e in errors]
    detail = "; ".join(dict.fromkeys(sentences)) or "The request is invalid."
    fields = [
        {"field": _field_name(e.get("loc", ()), e.get("type", "")), "message": s}
        for e, s in zip(errors, sentences, strict=True)
    ]
    return JSONResponse({"detail": detail, "errors": fields}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 400 and exc.detail == FASTAPI_UNPARSABLE_BODY:
        # FastAPI's answer to a body it cannot even decode (not UTF-8). For the client that is
        # invalid JSON like any other, so it gets the same 422.
        return JSONResponse(
            {"detail": "The request body is not valid JSON (it is not UTF-8 text).", "errors": []},
            status_code=422,
        )
    return await http_exception_handler(request, exc)


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(LesplannerError, _lesplanner_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_middleware(CatchAllMiddleware)


class CatchAllMiddleware:
    """Turns an unhandled exception into a 500 with a fixed message and logs it scrubbed.

    Done here rather than with an `Exception` handler because Starlette re-raises after such a
    handler, and the server would then log the unscrubbed traceback itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            text = scrub("".join(traceback.format_exception(exc)))
            log.error("Unhandled error on %s %s\n%s", scope.get("method"), scope.get("path"), text)
            if started:
                return  # the status line is out; all we can do is stop
            response = JSONResponse({"detail": INTERNAL_ERROR}, status_code=500)
            await response(scope, receive, send)
