"""Google Calendar plumbing without the API client: time formatting and parsing, error details
of an HttpError, and the background recorder of the calendar's health for the console."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from googleapiclient.errors import HttpError

from core import clock
from core.calendars.base import EventRequest
from core.db import get_engine, write_session
from core.errors import CalendarUnavailable, ValidationFailed
from core.status import status_row

SCOPE = "https://www.googleapis.com/auth/calendar"
log = logging.getLogger("core.calendars.google")  # the same logger as the backend

STATUS_NAME = "google"
STATUS_REFRESH_SECONDS = 60.0  # an unchanged state is written at most this often
# FreeBusy refuses long ranges ("The requested time range is too long."); 60 days stays clear.
FREEBUSY_CHUNK = timedelta(days=60)


class _ApiError(Exception):
    """A non-retryable answer from Google that the calling operation may want to handle
    (409 duplicate, 404/410 on delete, 403 forbiddenForServiceAccounts, ...)."""

    def __init__(self, status: int, reason: str | None, message: str) -> None:
        super().__init__(f"HTTP {status} {reason or ''}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class _StatusRecorder:
    """Keeps IntegrationStatus("google") current without slowing or blocking calendar calls:
    a write is queued only when the state (ok / error text) changes or the last write is older
    than STATUS_REFRESH_SECONDS, and a single background thread performs it. A failed write is
    logged and forgotten."""

    def __init__(self, database_url: str) -> None:
        self._url = database_url
        self._cond = threading.Condition()
        self._pending: tuple[bool, str | None, datetime] | None = None
        self._writing = False
        self._last: tuple[bool, str | None] | None = None
        self._last_at = 0.0
        self._thread: threading.Thread | None = None

    def record(self, ok: bool, error: str | None) -> None:
        state = (ok, error)
        now = time.monotonic()
        with self._cond:
            if state == self._last and now - self._last_at < STATUS_REFRESH_SECONDS:
                return
            self._last, self._last_at = state, now
            self._pending = (ok, error, clock.now())
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="gcal-status", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending is not None or self._writing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None:
                    if not self._cond.wait(timeout=30.0) and self._pending is None:
                        self._thread = None  # idle: end; record() starts a new one
                        return
                item, self._pending, self._writing = self._pending, None, True
            try:
                self._write(*item)
            except Exception as exc:  # noqa: BLE001 - the status must never break a call
                log.warning("could not record the Google Calendar status: %s", type(exc).__name__)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()

    def _write(self, ok: bool, error: str | None, at: datetime) -> None:
        with write_session(get_engine(self._url)) as session:
            row = status_row(session, STATUS_NAME)
            row.ok = ok
            if ok:
                row.last_ok_at = at
                row.detail = "Google Calendar answered."
            else:
                row.last_error = error
                row.last_error_at = at
                row.detail = error
            session.add(row)


# --------------------------------------------------------------------------------------------
# check-calendar


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed(f"{name} must be a timezone-aware datetime")


def _chunks(start: datetime, end: datetime) -> Iterator[tuple[datetime, datetime]]:
    cursor = start
    while cursor < end:
        upto = min(end, cursor + FREEBUSY_CHUNK)
        yield cursor, upto
        cursor = upto


def _rfc3339(value: datetime) -> str:
    value = value.astimezone(UTC)
    if value.microsecond:
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_time(value: str) -> datetime:
    parsed = datetime.fromisoformat(value)
    if parsed.tzinfo is None:  # FreeBusy always sends an offset; never guess
        raise CalendarUnavailable(f"Google Calendar sent a time without offset: {value!r}")
    return parsed.astimezone(UTC)


def _event_instant(when: dict) -> datetime | None:
    if when.get("dateTime"):
        try:
            parsed = datetime.fromisoformat(when["dateTime"])
        except ValueError:
            return None
        if parsed.tzinfo is None and when.get("timeZone"):
            parsed = parsed.replace(tzinfo=ZoneInfo(when["timeZone"]))
        return parsed.astimezone(UTC) if parsed.tzinfo else None
    return None


def _same_times(event: dict, request: EventRequest) -> bool:
    return (_event_instant(event.get("start") or {}) == request.start.astimezone(UTC)
            and _event_instant(event.get("end") or {}) == request.end.astimezone(UTC))


def _error_details(err: HttpError) -> tuple[str | None, str]:
    """(reason, message) from Google's error JSON; HTML error pages give (None, status text)."""
    try:
        data = json.loads(err.content.decode("utf-8"))
        error = data["error"]
        items = error.get("errors") or []
        reason = items[0].get("reason") if items else None
        if reason is None:
            reason = error.get("status")
        return reason, str(error.get("message") or reason or err.resp.reason or "")
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return None, str(getattr(err.resp, "reason", "") or f"HTTP {err.resp.status}")


def _retry_after(err: HttpError) -> float | None:
    value = err.resp.get("retry-after") if hasattr(err.resp, "get") else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None



def refresh_message(err: Exception, scrub: Callable[[str], str], client_email: str | None,
                    client_id: str | None, delegated_user: str | None) -> str:
    """A sentence for people about credentials Google refused while fetching a token."""
    data = err.args[1] if len(err.args) > 1 and isinstance(err.args[1], dict) else {}
    code = str(data.get("error", ""))
    said = scrub(str(err.args[0]) if err.args else type(err).__name__).rstrip(". ")
    who = client_email or "the service account"
    text = f"Google Calendar refused the credentials: {said}."
    if code == "unauthorized_client" and delegated_user:
        text += (f" GCAL_DELEGATED_USER is set to {delegated_user}, but "
                 "domain-wide delegation is not authorised: in the Google Workspace admin "
                 "console (Security > API controls > Domain-wide delegation) add client id "
                 f"{client_id or '(client_id in the key)'} with scope {SCOPE}, or "
                 "unset GCAL_DELEGATED_USER.")
    elif code == "invalid_grant":
        text += (f" The key in GCAL_SERVICE_ACCOUNT_JSON is not (or no longer) valid for "
                 f"{who}: create a new JSON key for it in the Google Cloud console, set it, "
                 "and check this machine's clock.")
    else:
        text += (" Check GCAL_SERVICE_ACCOUNT_JSON (a current key of the service account) "
                 "and GCAL_DELEGATED_USER.")
    return text
