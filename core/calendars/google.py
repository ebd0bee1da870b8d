"""Google Calendar backend: tutors' busy time from FreeBusy, lesson events through the Events API.

It talks to Google only through google-api-python-client and google-auth with a service
account (`GCAL_SERVICE_ACCOUNT_JSON`, optionally acting for `GCAL_DELEGATED_USER` through
domain-wide delegation), so tests point the same code at a local fake via `GCAL_API_ENDPOINT`
and the key's `token_uri`.

What it guarantees:
- `busy()` never answers "free" when it does not know: a calendar FreeBusy reports with errors
  (not shared, not found, ...) raises `CalendarUnavailable` naming that calendar.
- `create_event()` is idempotent on the lesson id (deterministic event id; a retry after a lost
  response meets 409 and adopts the event that exists).
- Every call has a timeout; 408, 429, 5xx, rate-limit 403s, timeouts and dropped connections are
  retried with exponential backoff and jitter (`GCAL_MAX_RETRIES`; the policy is
  core/integrations.py's), then `CalendarUnavailable`.
  Refused credentials and exhausted quotas are not retried. Messages say what to fix and never
  contain the key.
- The integration's health is written to `IntegrationStatus("google")` off the calling thread,
  so a booking transaction that holds the SQLite write lock can never wait on it.
"""

from __future__ import annotations

import http.client
import logging
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import google_auth_httplib2
import httplib2
from google.auth import exceptions as auth_exceptions
from google.oauth2 import service_account
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from core import clock, integrations
from core.calendars.base import Busy, CalendarCheck, CreatedEvent, EventRequest, merge_intervals
from core.calendars.google_support import (
    _ApiError,
    _chunks,
    _error_details,
    _parse_time,
    _require_aware,
    _rfc3339,
    _same_times,
    load_credentials,
    refresh_message,
)
from core.calendars.google_sync import GoogleSyncCalls
from core.config import Settings
from core.errors import CalendarUnavailable, ValidationFailed

log = logging.getLogger(__name__)

LESSON_PROPERTY = "lesplanner_lesson_id"  # extendedProperties.private key on our events
FREEBUSY_MAX_ITEMS = 50  # FreeBusy answers at most 50 calendars per query

# Retries: delay before retry n (0-based) is RETRY_BASE_DELAY * 2**n, times a jitter factor in
# [0.5, 1), capped at RETRY_MAX_DELAY. With 4 retries that is at most ~3.75 s of waiting, small
# enough for a chatbot request. Read at call time so tests can shrink them.
RETRY_BASE_DELAY = 0.25
RETRY_MAX_DELAY = 2.0
RETRYABLE_403_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
QUOTA_REASONS = frozenset({"quotaExceeded", "dailyLimitExceeded"})

_DOCS_HINT = "See docs/GOOGLE_CALENDAR.md, 'Connect Google Calendar'."


class GoogleCalendarBackend(GoogleSyncCalls):
    """The `CalendarBackend` for Google Calendar (the mirror's sync calls are in google_sync.py). One instance per process is enough: the
    discovery-built service is shared, each thread gets its own HTTP connection (httplib2 is
    not thread-safe)."""

    name = "google"
    busy_includes_lesson_events = True  # a confirmed lesson's event is busy in free/busy

    def __init__(
        self,
        settings: Settings,
        *,
        retry_base_delay: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
        record_status: bool = True,
    ) -> None:
        self._settings = settings
        self._timeout = float(settings.gcal_timeout_seconds)
        self._max_retries = max(0, int(settings.gcal_max_retries))
        self._budget = float(settings.gcal_call_budget_seconds)
        self._retry_base_delay = retry_base_delay
        self._sleep = sleep
        self._lock = threading.Lock()
        self._local = threading.local()
        self._service: Any = None
        self._credentials: service_account.Credentials | None = None
        self._client_email: str | None = None
        self._client_id: str | None = None
        self._record_status = record_status

    # -- the protocol -------------------------------------------------------------------------

    def busy(self, calendar_ids: Sequence[str], start: datetime, end: datetime) -> dict[str, Busy]:
        """Busy intervals per calendar id in [start, end), merged, sorted, aware UTC."""
        _require_aware(start, "start")
        _require_aware(end, "end")
        ids = list(dict.fromkeys(calendar_ids))  # one query item per calendar, order kept
        collected: dict[str, list[tuple[datetime, datetime]]] = {cid: [] for cid in ids}
        if not ids or end <= start:
            return {cid: [] for cid in ids}
        with self._tracked():
            self._ensure_service()  # missing credentials are the first thing to fix
            self._refuse_bare_primary(ids)
            for chunk_start, chunk_end in _chunks(start.astimezone(UTC), end.astimezone(UTC)):
                for group_start in range(0, len(ids), FREEBUSY_MAX_ITEMS):
                    group = ids[group_start : group_start + FREEBUSY_MAX_ITEMS]
                    answer = self._freebusy(group, chunk_start, chunk_end)
                    for cid in group:
                        collected[cid].extend(self._busy_of(answer, cid))
        return {cid: merge_intervals(intervals) for cid, intervals in collected.items()}

    def create_event(self, request: EventRequest) -> CreatedEvent:
        """Create the lesson's event (idempotent on the lesson id) and invite the customer."""
        _require_aware(request.start, "start")
        _require_aware(request.end, "end")
        if request.end <= request.start:
            raise ValidationFailed("A calendar event must end after it starts.")
        ZoneInfo(request.timezone)  # an unknown zone is a programming error, fail before Google
        with self._tracked(request.calendar_id):
            self._ensure_service()
            self._refuse_bare_primary([request.calendar_id])
            try:
                return self._write_event(request, "insert")
            except _ApiError as err:
                if err.status != 409:
                    raise
            # The id exists: an earlier attempt got through but its answer was lost, or the
            # lesson's event was made (and maybe deleted) before. Adopt it, fixing it if needed.
            return self._adopt_existing(request)

    def delete_event(self, calendar_id: str, event_id: str) -> None:
        """Delete the event and tell attendees; an event that is already gone is success."""
        with self._tracked(calendar_id):
            try:
                self._call(
                    lambda s: s.events().delete(calendarId=calendar_id, eventId=event_id, sendUpdates="all")
                )
            except _ApiError as err:
                if err.status not in (404, 410):  # 410 deleted before, 404 never existed
                    raise

    def check(self, calendar_ids: Sequence[str]) -> list[CalendarCheck]:
        """Diagnose the credentials, then each calendar: visible to the service account and
        writable? Never raises for a problem it can describe."""
        results: list[CalendarCheck] = []
        try:
            self._ensure_service()
            self._fetch_token()
        except CalendarUnavailable as exc:
            results.append(CalendarCheck("credentials", False, exc.message, fix=_DOCS_HINT))
            return results
        who = self._client_email or "the service account"
        delegated = self._settings.gcal_delegated_user
        detail = f"Service account {who} signed in to Google"
        if delegated:
            detail += f" acting for {delegated} (domain-wide delegation)"
        results.append(
            CalendarCheck("credentials", True, detail + ".", extra={"client_email": self._client_email})
        )
        for cid in dict.fromkeys(calendar_ids):
            results.append(self._check_calendar(cid))
        return results

    # -- events -------------------------------------------------------------------------------

    def _event_body(self, request: EventRequest, *, with_attendee: bool) -> dict[str, Any]:
        zone = ZoneInfo(request.timezone)
        # Local wall-clock time with its offset *and* the zone name: the offset pins the exact
        # instant (also in the repeated fall-back hour); the zone is the one Google shows the
        # event in and keeps when the tutor edits it.
        body: dict[str, Any] = {
            "id": request.event_id,
            "summary": request.summary,
            "description": request.description,
            "start": {"dateTime": request.start.astimezone(zone).isoformat(), "timeZone": request.timezone},
            "end": {"dateTime": request.end.astimezone(zone).isoformat(), "timeZone": request.timezone},
            "extendedProperties": {"private": {LESSON_PROPERTY: str(request.lesson_id)}},
        }
        if with_attendee and request.attendee_email:
            attendee = {"email": request.attendee_email}
            if request.attendee_name:
                attendee["displayName"] = request.attendee_name
            body["attendees"] = [attendee]
        return body

    def _send_event(self, request: EventRequest, method: str, *, with_attendee: bool) -> dict:
        body = self._event_body(request, with_attendee=with_attendee)
        if method == "insert":
            return self._call(
                lambda s: s.events().insert(calendarId=request.calendar_id, body=body, sendUpdates="all")
            )
        body["status"] = "confirmed"  # also restores an event that was deleted (cancelled)
        return self._call(
            lambda s: s.events().update(
                calendarId=request.calendar_id, eventId=request.event_id, body=body, sendUpdates="all"
            )
        )

    def _write_event(self, request: EventRequest, method: str) -> CreatedEvent:
        """Insert or update the event; without the attendee when Google refuses invites."""
        want_invite = bool(request.attendee_email)
        try:
            event = self._send_event(request, method, with_attendee=want_invite)
        except _ApiError as err:
            if not (want_invite and err.status == 403 and err.reason == "forbiddenForServiceAccounts"):
                raise
            # The lesson matters more than the e-mail: book it, and say why no invite went out.
            event = self._send_event(request, method, with_attendee=False)
            return CreatedEvent(
                event_id=event.get("id", request.event_id),
                invite_sent=False,
                note=(
                    "Google refused to invite the customer: " + err.message + " A service "
                    "account can only send invitations with domain-wide delegation: enable it "
                    "and set GCAL_DELEGATED_USER (see docs/GOOGLE_CALENDAR.md)."
                ),
                html_link=event.get("htmlLink"),
            )
        return self._created(event, request)

    def _adopt_existing(self, request: EventRequest) -> CreatedEvent:
        try:
            existing = self._call(
                lambda s: s.events().get(calendarId=request.calendar_id, eventId=request.event_id)
            )
        except _ApiError as err:
            raise CalendarUnavailable(
                f"Google Calendar says event {request.event_id} already exists in calendar "
                f"{request.calendar_id!r} but cannot show it (HTTP {err.status}: {err.message})."
            ) from None
        # Google keeps deleted events (status "cancelled") and their ids; a lesson that is
        # confirmed again, or moved, gets its event restored and updated instead.
        if existing.get("status") == "cancelled" or not _same_times(existing, request):
            return self._write_event(request, "update")
        return self._created(existing, request)

    def _created(self, event: dict, request: EventRequest) -> CreatedEvent:
        invite_sent: bool | None = None
        note = None
        if request.attendee_email:
            emails = {str(a.get("email", "")).lower() for a in event.get("attendees", [])}
            invite_sent = request.attendee_email.lower() in emails
            if not invite_sent:
                note = "The calendar event has no guest, so Google sent the customer no invitation."
        return CreatedEvent(
            event_id=event.get("id", request.event_id),
            invite_sent=invite_sent,
            note=note,
            html_link=event.get("htmlLink"),
        )

    # -- free/busy ----------------------------------------------------------------------------

    def _freebusy(self, calendar_ids: list[str], start: datetime, end: datetime) -> dict:
        body = {
            "timeMin": _rfc3339(start),
            "timeMax": _rfc3339(end),
            "timeZone": "UTC",
            "items": [{"id": cid} for cid in calendar_ids],
        }
        return self._call(lambda s: s.freebusy().query(body=body))

    def _busy_of(self, answer: dict, calendar_id: str) -> Iterator[tuple[datetime, datetime]]:
        calendars = answer.get("calendars") or {}
        info = calendars.get(calendar_id)
        if info is None:  # be lenient about the case of e-mail-like ids in the answer's keys
            folded = calendar_id.casefold()
            info = next((v for k, v in calendars.items() if k.casefold() == folded), None)
        if info is None:
            raise CalendarUnavailable(
                f"Google Calendar gave no free/busy answer for calendar {calendar_id!r}; its busy "
                "time is unknown, so no slots are offered for it."
            )
        errors = info.get("errors") or []
        if errors:
            reasons = ", ".join(sorted({str(e.get("reason", "unknown")) for e in errors}))
            raise CalendarUnavailable(
                f"Google Calendar cannot read calendar {calendar_id!r} ({reasons}), so its busy "
                f"time is unknown. {self._reason_fix(reasons, calendar_id)}",
                calendar_id=calendar_id,
                reasons=reasons,
            )
        for period in info.get("busy") or []:
            yield _parse_time(period["start"]), _parse_time(period["end"])

    def _refuse_bare_primary(self, calendar_ids: Sequence[str]) -> None:
        """'primary' without delegation is the service account's own calendar: no tutor sees
        it and it is always free. Answering from it would offer slots the tutor cannot teach
        (GCAL_CALENDAR_ID defaults to 'primary'), so this is a configuration error."""
        if "primary" in calendar_ids and not self._settings.gcal_delegated_user:
            raise CalendarUnavailable(
                "The calendar id is 'primary', which for a service account is its own calendar, "
                "not the tutor's: set GCAL_CALENDAR_ID (and each tutor's calendar id) to the "
                "tutor's Calendar ID, often their e-mail address, and share that calendar with "
                "the service account; or set GCAL_DELEGATED_USER to act as the tutor. (To use "
                "the service account's own calendar on purpose, use its e-mail address as id.) "
                "See docs/GOOGLE_CALENDAR.md."
            )

    def _reason_fix(self, reasons: str, calendar_id: str) -> str:
        if "notFound" in reasons:
            return self._share_fix(calendar_id)
        if "internalError" in reasons or "backendError" in reasons:
            return "Google had an internal error; try again in a few minutes."
        return "Check the calendar id in the console (tutors) or GCAL_CALENDAR_ID."

    def _share_fix(self, calendar_id: str) -> str:
        who = self._client_email or "the service account's e-mail (client_email in its key)"
        text = (
            f"Check the calendar id, and share that calendar with {who} with the permission "
            "'Make changes to events' (Google Calendar > Settings > the calendar > Share "
            "with specific people)."
        )
        if calendar_id == "primary" and not self._settings.gcal_delegated_user:
            text += (
                " Note: 'primary' is the service account's own empty calendar, not the "
                "tutor's; use the tutor's calendar id (often their e-mail address)."
            )
        return text

    # -- diagnostics --------------------------------------------------------------------------

    def _check_calendar(self, calendar_id: str) -> CalendarCheck:
        try:
            listing = self._call(
                lambda s: s.events().list(
                    calendarId=calendar_id, maxResults=1, singleEvents=True, timeMin=_rfc3339(clock.now())
                )
            )
        except _ApiError as err:
            if err.status == 404:
                return CalendarCheck(
                    calendar_id,
                    False,
                    f"Not visible to the service account {self._client_email} (not shared, or "
                    "the id is wrong).",
                    fix=self._share_fix(calendar_id),
                )
            return CalendarCheck(
                calendar_id,
                False,
                f"Google answered HTTP {err.status} ({err.reason}): {err.message}",
                fix=self._share_fix(calendar_id),
            )
        except CalendarUnavailable as exc:
            return CalendarCheck(calendar_id, False, exc.message, fix=_DOCS_HINT)
        role = listing.get("accessRole", "unknown")
        zone = listing.get("timeZone")
        extra = {"access_role": role, "time_zone": zone, "summary": listing.get("summary")}
        if calendar_id == "primary" and not self._settings.gcal_delegated_user:
            return CalendarCheck(
                calendar_id,
                False,
                f"'primary' is the service account's own calendar ({self._client_email}), not a "
                "tutor's: nobody sees its events and the tutor's own appointments are not read.",
                fix=(
                    "Set GCAL_CALENDAR_ID (and each tutor's calendar id in the console) to the "
                    "tutor's calendar id, often their e-mail address, and share that calendar "
                    f"with {self._client_email} ('Make changes to events'); or set "
                    "GCAL_DELEGATED_USER to act as the tutor (Google Workspace)."
                ),
                extra=extra,
            )
        if role not in ("writer", "owner"):
            return CalendarCheck(
                calendar_id,
                False,
                f"Shared with the service account as '{role}': busy time can be read, but lesson "
                "events cannot be created.",
                fix=(f"Change the sharing for {self._client_email} to 'Make changes to events'."),
                extra=extra,
            )
        where = f" ({listing.get('summary')}, {zone})" if zone else ""
        return CalendarCheck(
            calendar_id, True, f"Readable and writable by the service account{where}.", extra=extra
        )

    def _fetch_token(self) -> None:
        """Get an access token now, so check() can tell a bad key from a bad calendar."""
        creds = self._credentials
        assert creds is not None
        http = self._http()
        last = "no answer"
        for attempt in range(self._max_retries + 1):
            try:
                creds.refresh(google_auth_httplib2.Request(http.http))
                return
            except auth_exceptions.RefreshError as err:
                if not getattr(err, "retryable", False):
                    raise CalendarUnavailable(self._refresh_message(err)) from None
                last = "the token endpoint answered with an error"
            except auth_exceptions.TransportError:
                last = "could not reach the token endpoint"
            if attempt < self._max_retries:
                self._sleep(self._backoff(attempt, None))
        raise CalendarUnavailable(f"Google sign-in is not answering ({last}); try again later.")

    # -- transport ----------------------------------------------------------------------------

    def _ensure_service(self) -> Any:
        with self._lock:
            if self._service is None:
                credentials = self._load_credentials()
                # Static discovery: the Calendar v3 document ships with the library, so building
                # costs no request. The service object is shared; requests run on per-thread
                # http objects passed to execute().
                self._service = build(
                    "calendar",
                    "v3",
                    credentials=credentials,
                    cache_discovery=False,
                    static_discovery=True,
                    client_options={"api_endpoint": self._settings.gcal_api_endpoint},
                )
                self._credentials = credentials
            return self._service

    def _http(self) -> google_auth_httplib2.AuthorizedHttp:
        http = getattr(self._local, "http", None)
        if http is None:
            http = google_auth_httplib2.AuthorizedHttp(
                self._credentials, http=httplib2.Http(timeout=self._timeout)
            )
            self._local.http = http
        return http

    def _call(self, make_request: Callable[[Any], Any]) -> Any:
        """Execute one API request with timeout, retries and error translation.

        Returns the decoded answer. Raises CalendarUnavailable for refused credentials, quota
        and exhausted retries, and _ApiError for other refusals the caller may handle."""
        service = self._ensure_service()
        attempts = self._max_retries + 1
        last = "no answer"
        # One overall budget, so a struggling Google can never hold a caller (and the database
        # write lock some callers hold) longer than GCAL_CALL_BUDGET_SECONDS.
        deadline = time.monotonic() + self._budget
        for attempt in range(attempts):
            retry_after: float | None = None
            try:
                # A fresh HttpRequest per attempt: execute() mutates its headers.
                return make_request(service).execute(http=self._http(), num_retries=0)
            except HttpError as err:
                status = int(err.resp.status)
                reason, message = _error_details(err)
                if status == 401:
                    raise CalendarUnavailable(
                        f"Google Calendar refused the credentials (HTTP 401: {message}). Check "
                        "that GCAL_SERVICE_ACCOUNT_JSON holds a current key of the service "
                        "account and that the Google Calendar API is enabled in its project."
                    ) from None
                if status == 403 and reason in QUOTA_REASONS:
                    raise CalendarUnavailable(
                        f"Google Calendar usage limits are exhausted ({reason}: {message}). "
                        "Google refuses further requests for now, so this is not retried; wait, "
                        "or check the Calendar API quotas in the Google Cloud console."
                    ) from None
                if integrations.is_transient(status) or (status == 403 and reason in RETRYABLE_403_REASONS):
                    last = f"HTTP {status}" + (f" {reason}" if reason else "")
                    retry_after = integrations.retry_after(
                        err.resp.get("retry-after") if hasattr(err.resp, "get") else None
                    )
                else:
                    raise _ApiError(status, reason, message) from None
            except auth_exceptions.RefreshError as err:
                if not getattr(err, "retryable", False):
                    raise CalendarUnavailable(self._refresh_message(err)) from None
                last = "the sign-in (token) endpoint failed"
            except auth_exceptions.TransportError:
                last = "the sign-in (token) endpoint could not be reached"
            except TimeoutError:
                last = f"no answer within {self._timeout:g} s"
            except (OSError, http.client.HTTPException, httplib2.HttpLib2Error) as err:
                last = f"connection failed: {type(err).__name__}"
            if attempt + 1 < attempts:
                delay = self._backoff(attempt, retry_after)
                if time.monotonic() + delay + min(self._timeout, 1.0) > deadline:
                    attempts = attempt + 1
                    break
                log.info(
                    "Google Calendar: %s; retry %d of %d in %.2f s", last, attempt + 1, attempts - 1, delay
                )
                self._sleep(delay)
        log.warning("Google Calendar: giving up after %d attempts (%s)", attempts, last)
        raise CalendarUnavailable(
            f"Google Calendar is not answering ({last}) after {attempts} attempts; the calendar "
            "could not be read or changed. Try again in a few minutes."
        )

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        base = RETRY_BASE_DELAY if self._retry_base_delay is None else self._retry_base_delay
        return integrations.backoff_delay(attempt, base=base, cap=RETRY_MAX_DELAY, retry_after=retry_after)

    # -- credentials --------------------------------------------------------------------------

    def _load_credentials(self) -> service_account.Credentials:
        credentials, self._client_email, self._client_id = load_credentials(self._settings)
        return credentials

    def _refresh_message(self, err: auth_exceptions.RefreshError) -> str:
        return refresh_message(
            err, self._scrub, self._client_email, self._client_id, self._settings.gcal_delegated_user
        )

    def _scrub(self, text: str) -> str:
        return integrations.scrub(text, self._settings)

    # -- integration status -------------------------------------------------------------------

    @contextmanager
    def _tracked(self, calendar_id: str | None = None) -> Iterator[None]:
        """Turn stray refusals into CalendarUnavailable and record the integration's health."""
        try:
            yield
        except CalendarUnavailable as exc:
            self._record(False, exc.message)
            raise
        except _ApiError as err:
            unavailable = CalendarUnavailable(self._describe(err, calendar_id))
            self._record(False, unavailable.message)
            raise unavailable from None
        self._record(True)

    def _describe(self, err: _ApiError, calendar_id: str | None) -> str:
        where = f"calendar {calendar_id!r}" if calendar_id else "the calendar"
        if err.status == 404:
            return (
                f"Google Calendar cannot find {where} (HTTP 404 {err.reason}). "
                f"{self._share_fix(calendar_id or '')}"
            )
        if err.status == 403 and err.reason == "requiredAccessLevel":
            return (
                f"The service account {self._client_email} may only read {where} "
                f"({err.message}) Share it with {self._client_email} with the permission "
                "'Make changes to events'."
            )
        return (
            f"Google Calendar refused the request for {where} "
            f"(HTTP {err.status} {err.reason}: {err.message})."
        )

    def _record(self, ok: bool, error: str | None = None) -> None:
        """Off the calling thread: a caller may hold the SQLite write lock."""
        if self._record_status:
            error = None if ok else (error or "")
            integrations.record_health(
                "google",
                ok,
                error or "Google Calendar answered.",
                error=error,
                settings=self._settings,
                background=True,
            )

    def flush_status(self, timeout: float = 5.0) -> bool:
        """Wait until the integration status is written (tests, shutdown)."""
        return integrations.flush_health(timeout) if self._record_status else True
