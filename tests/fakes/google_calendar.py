"""A local Google Calendar v3 server for tests and benchmarks.

`FakeGoogleCalendar` is a real HTTP server (ThreadingHTTPServer on 127.0.0.1, a free port) that
answers the requests google-api-python-client and google-auth make, so tests run the production
code path end to end; only `GCAL_API_ENDPOINT` and the service-account JSON's `token_uri` point
here. It mimics Google's documented behaviour:

- an OAuth 2.0 token endpoint for the JWT-bearer grant: the assertion must be an RS256 JWT signed
  by a key this fake issued (`service_account_info()`), else `invalid_grant`; a `sub` claim
  (domain-wide delegation) is refused with `unauthorized_client` unless delegation is enabled;
- `freeBusy`: merged busy periods in UTC, transparent ("Free") and cancelled events ignored,
  all-day events busy from midnight to midnight in the calendar's own time zone, per-calendar
  `errors` inside a 200 answer (`notFound` for an unshared calendar, `tooManyCalendarsRequested`
  beyond 50 items), 400 `timeRangeEmpty` and a refusal of over-long ranges;
- events insert/get/list/update/delete with Google's rules: ids are 5-1024 base32hex characters,
  an existing id is 409 `duplicate` (also after deletion: deleting only cancels), `get` still
  returns a deleted event (status "cancelled"), deleting it again is 410 `deleted`, never-existing
  ids are 404 `notFound`, attendees from a service account without delegation are 403
  `forbiddenForServiceAccounts`, writing with read access is 403 `requiredAccessLevel`;
- calendars.get, calendarList get/list and the `primary` alias (the caller's own calendar);
- switchable faults on the next N requests: any HTTP status with Google's error JSON (429, 500,
  503, 403 rateLimitExceeded/quotaExceeded, 401 ...), slow answers, and connections dropped
  after the request was processed (a lost response).

Error bodies follow https://developers.google.com/workspace/calendar/api/guides/errors:
`{"error": {"errors": [{"domain", "reason", "message"}], "code", "message"}}`.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from http.server import BaseHTTPRequestHandler
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.fakes._server import LocalHTTPServer

CALENDAR_SCOPE = "https://www.googleapis.com/auth/calendar"
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
DEFAULT_CLIENT_EMAIL = "lesplanner@lesplanner-test.iam.gserviceaccount.com"
FREEBUSY_MAX_ITEMS = 50  # Google: calendarExpansionMax "Maximum value is 50"
EVENT_ID_RE = re.compile(r"^[a-v0-9]{5,1024}$")  # base32hex, as the Events reference says
ACCESS_RANK = {"freeBusyReader": 1, "reader": 2, "writer": 3, "owner": 4}

# Google's documented error bodies, by (status, reason): (domain, message).
_ERRORS: dict[tuple[int, str], tuple[str, str]] = {
    (400, "timeRangeEmpty"): ("calendar", "The specified time range is empty."),
    (400, "timeRangeTooLong"): ("calendar", "The requested time range is too long."),
    (400, "invalid"): ("global", "Invalid Value"),
    (400, "required"): ("global", "Required"),
    (400, "badRequest"): ("global", "Bad Request"),
    (401, "authError"): ("global", "Invalid Credentials"),
    (403, "userRateLimitExceeded"): ("usageLimits", "User Rate Limit Exceeded"),
    (403, "rateLimitExceeded"): ("usageLimits", "Rate Limit Exceeded"),
    (403, "quotaExceeded"): ("usageLimits", "Calendar usage limits exceeded."),
    (403, "dailyLimitExceeded"): ("usageLimits", "Daily Limit Exceeded"),
    (403, "forbiddenForServiceAccounts"): (
        "calendar",
        "Service accounts cannot invite attendees without Domain-Wide Delegation of Authority.",
    ),
    (403, "requiredAccessLevel"): ("calendar", "You need to have writer access to this calendar."),
    (404, "notFound"): ("global", "Not Found"),
    (409, "duplicate"): ("global", "The requested identifier already exists."),
    (410, "deleted"): ("global", "Resource has been deleted"),
    (410, "fullSyncRequired"): ("calendar", "Sync token is no longer valid, a full sync is required."),
    (400, "syncTokenWithRequestRestrictions"): (
        "calendar",
        "Sync token cannot be used with other request restrictions.",
    ),
    (429, "rateLimitExceeded"): ("usageLimits", "Rate Limit Exceeded"),
    (500, "backendError"): ("global", "Backend Error"),
    (503, "backendError"): ("global", "The service is currently unavailable."),
}
_SYNC_RESTRICTIONS = (
    "iCalUID",
    "orderBy",
    "privateExtendedProperty",
    "q",
    "sharedExtendedProperty",
    "timeMin",
    "timeMax",
    "updatedMin",
)
_DEFAULT_REASON = {
    400: "badRequest",
    401: "authError",
    403: "rateLimitExceeded",
    404: "notFound",
    409: "duplicate",
    410: "deleted",
    429: "rateLimitExceeded",
    500: "backendError",
    503: "backendError",
}


class ApiError(Exception):
    """Raised inside the fake to answer with Google's error JSON."""

    def __init__(
        self, status: int, reason: str | None = None, message: str | None = None, **location: str
    ) -> None:
        reason = reason or _DEFAULT_REASON.get(status, "backendError")
        domain, default_message = _ERRORS.get((status, reason), ("global", reason))
        self.status = status
        self.reason = reason
        self.domain = domain
        self.message = message or default_message
        self.location = location
        super().__init__(f"{status} {reason}: {self.message}")

    def body(self) -> dict[str, Any]:
        item: dict[str, Any] = {"domain": self.domain, "reason": self.reason, "message": self.message}
        if self.location:
            item.update(self.location)
        return {"error": {"errors": [item], "code": self.status, "message": self.message}}


@dataclass
class RecordedRequest:
    """One request as the fake saw it (for assertions on what the client sent)."""

    method: str
    path: str
    operation: str
    query: dict[str, str]
    body: Any
    status: int = 0
    fault: str | None = None


@dataclass
class _Fault:
    kind: str  # "status" | "slow" | "drop"
    count: int
    status: int = 0
    reason: str | None = None
    seconds: float = 0.0
    after_processing: bool = True
    match: str | None = None  # operation name ("events.insert") or None for every API call


@dataclass
class _Calendar:
    id: str
    time_zone: str
    summary: str
    access_role: str | None  # role every caller has; None = not shared (invisible)
    in_calendar_list: bool = False
    events: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Incremental sync: every change stamps the event with the next `seq`; a sync token names the
    # (epoch, seq) it was issued at. Invalidating tokens starts a new epoch (→ 410 on old ones).
    seq: int = 0
    epoch: int = 1

    def touch(self, event: dict[str, Any]) -> None:
        self.seq += 1
        event["_seq"] = self.seq


@dataclass
class Channel:
    """An events.watch channel: Google POSTs to `address` when the calendar's events change."""

    id: str
    calendar_id: str
    resource_id: str
    address: str
    token: str | None
    expiration_ms: int
    message_number: int = 0
    stopped: bool = False


@dataclass
class Notification:
    channel_id: str
    state: str  # "sync" (the channel was made) or "exists" (something changed)
    status: int | None  # what the receiver answered; None when it could not be reached


@dataclass
class _Token:
    client_email: str
    subject: str | None
    expires_at: float

    @property
    def identity(self) -> str:
        return self.subject or self.client_email


# --------------------------------------------------------------------------------------------
# Service-account keys


@lru_cache(maxsize=8)
def _rsa_key(slot: int) -> rsa.RSAPrivateKey:
    # Generating a 2048-bit key takes ~50-100 ms; tests reuse a few per process.
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_service_account_info(
    token_uri: str, client_email: str = DEFAULT_CLIENT_EMAIL, key: rsa.RSAPrivateKey | None = None
) -> dict[str, str]:
    """A service-account key file's content, shaped like the JSON the Cloud console downloads."""
    key = key or _rsa_key(0)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    project = client_email.split("@", 1)[-1].split(".", 1)[0]
    return {
        "type": "service_account",
        "project_id": project,
        "private_key_id": _key_id(key),
        "private_key": pem,
        "client_email": client_email,
        "client_id": "10" + str(abs(hash(client_email)) % 10**19).rjust(19, "0"),
        "auth_uri": "https://accounts.google.com/o/oauth2/auth",
        "token_uri": token_uri,
        "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
        "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/"
        + urllib.parse.quote(client_email),
        "universe_domain": "googleapis.com",
    }


def _key_id(key: rsa.RSAPrivateKey) -> str:
    der = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA1())
    digest.update(der)
    return digest.finalize().hex()


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


# --------------------------------------------------------------------------------------------
# Time helpers (RFC 3339 as the Calendar API speaks it)


def _parse_rfc3339(value: str) -> datetime:
    parsed = datetime.fromisoformat(value.replace("z", "Z"))
    if parsed.tzinfo is None:
        raise ValueError("no offset")
    return parsed


def _utc_z(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


# --------------------------------------------------------------------------------------------
# The server


class FakeGoogleCalendar(LocalHTTPServer):
    """Google Calendar v3 + OAuth token endpoint on a local port. Use as a context manager."""

    def __init__(
        self,
        *,
        default_time_zone: str = "Europe/Amsterdam",
        max_freebusy_days: int = 90,
        attendees_need_delegation: bool = True,
        delegation_enabled: bool = True,
        auto_create_calendars: bool = True,
        verify_jwt: bool = True,
        allow_http_webhooks: bool = True,
    ) -> None:
        self.default_time_zone = default_time_zone
        # cal.com observed "The requested time range is too long." beyond 90 days; clients
        # should stay well below it.
        self.max_freebusy_days = max_freebusy_days
        # Google refuses attendees from a service account unless it acts for a user (DWD).
        self.attendees_need_delegation = attendees_need_delegation
        # Whether the Workspace admin authorised this client for domain-wide delegation.
        self.delegation_enabled = delegation_enabled
        # Convenience for tests: a calendar id seen for the first time exists and is shared
        # with the service account as "writer" (the set-up the docs ask tutors to do).
        self.auto_create_calendars = auto_create_calendars
        self.verify_jwt = verify_jwt

        self.requests: list[RecordedRequest] = []
        self.invitations: list[tuple[str, str, str]] = []  # (calendar id, event id, email)
        self._lock = threading.RLock()
        self._calendars: dict[str, _Calendar] = {}
        self._missing: set[str] = set()
        self._faults: list[_Fault] = []
        self._tokens: dict[str, _Token] = {}
        self._public_keys: dict[str, Any] = {}  # client_email -> RSA public key
        # Push notifications (events.watch): open channels, and every delivery made to them.
        self.allow_http_webhooks = allow_http_webhooks
        self.channels: dict[str, Channel] = {}
        self.notifications: list[Notification] = []

    # -- lifecycle ----------------------------------------------------------------------------

    def start(self) -> FakeGoogleCalendar:
        fake = self

        class Handler(_Handler):
            pass

        Handler.fake = fake
        self._serve(Handler, "fake-google-calendar")
        return self

    @property
    def api_endpoint(self) -> str:
        return f"{self.url}/calendar/v3/"

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    # -- credentials --------------------------------------------------------------------------

    def service_account_info(
        self, client_email: str = DEFAULT_CLIENT_EMAIL, *, registered: bool = True, key_slot: int = 0
    ) -> dict[str, str]:
        """A service-account JSON whose token_uri is this fake.

        registered=False gives a well-formed key this fake does not know (a deleted key): the
        token endpoint answers invalid_grant, as Google does."""
        key = _rsa_key(key_slot)
        if registered:
            with self._lock:
                self._public_keys[client_email] = key.public_key()
        return make_service_account_info(self.token_uri, client_email, key)

    def service_account_json(self, client_email: str = DEFAULT_CLIENT_EMAIL, **kw: Any) -> str:
        return json.dumps(self.service_account_info(client_email, **kw))

    def invalidate_tokens(self) -> None:
        """Forget every issued access token (the next API call gets 401 and must refresh)."""
        with self._lock:
            self._tokens.clear()

    # -- calendars and events -----------------------------------------------------------------

    def add_calendar(
        self,
        calendar_id: str,
        *,
        time_zone: str | None = None,
        access_role: str | None = "writer",
        summary: str | None = None,
        in_calendar_list: bool = False,
    ) -> None:
        with self._lock:
            self._missing.discard(calendar_id)
            cal = self._calendars.get(calendar_id)
            if cal is None:
                self._calendars[calendar_id] = _Calendar(
                    calendar_id,
                    time_zone or self.default_time_zone,
                    summary or calendar_id,
                    access_role,
                    in_calendar_list,
                )
            else:
                cal.time_zone = time_zone or cal.time_zone
                cal.access_role = access_role
                cal.summary = summary or cal.summary
                cal.in_calendar_list = in_calendar_list

    def set_missing_calendar(self, calendar_id: str) -> None:
        """This calendar does not exist or is not shared with the service account."""
        with self._lock:
            self._missing.add(calendar_id)
            self._calendars.pop(calendar_id, None)

    def set_access_role(self, calendar_id: str, role: str | None) -> None:
        with self._lock:
            self._calendar_for_setup(calendar_id).access_role = role

    def add_event(
        self,
        calendar_id: str,
        start: datetime | date,
        end: datetime | date,
        *,
        transparent: bool = False,
        all_day: bool = False,
        summary: str = "Busy",
        event_id: str | None = None,
    ) -> str:
        """Put an event in a calendar as if the tutor made it in Google Calendar."""
        if all_day:
            s = start.date() if isinstance(start, datetime) else start
            e = end.date() if isinstance(end, datetime) else end
            start_obj: dict[str, str] = {"date": s.isoformat()}
            end_obj: dict[str, str] = {"date": e.isoformat()}
        else:
            if not isinstance(start, datetime) or start.tzinfo is None:
                raise ValueError("add_event needs aware datetimes (or all_day=True with dates)")
            assert isinstance(end, datetime)
            start_obj = {"dateTime": start.isoformat()}
            end_obj = {"dateTime": end.isoformat()}
        body: dict[str, Any] = {
            "id": event_id or secrets.token_hex(13),
            "summary": summary,
            "start": start_obj,
            "end": end_obj,
        }
        if transparent:
            body["transparency"] = "transparent"
        with self._lock:
            cal = self._calendar_for_setup(calendar_id)
            event = self._build_event(cal, body, organizer=calendar_id)
            self._touch(cal, event)
            cal.events[event["id"]] = event
        return event["id"]

    def move_event(self, calendar_id: str, event_id: str, start: datetime, end: datetime) -> None:
        """The tutor drags an event to another time in Google Calendar."""
        with self._lock:
            cal = self._calendar_for_setup(calendar_id)
            old = cal.events[event_id]
            body = {k: v for k, v in _public(old).items() if k not in ("start", "end")}
            body.update(start={"dateTime": start.isoformat()}, end={"dateTime": end.isoformat()})
            event = self._build_event(cal, body, organizer=old.get("organizer", {}).get("email", calendar_id))
            event["status"], event["created"] = old["status"], old["created"]
            event["sequence"] = old["sequence"] + 1
            self._touch(cal, event)
            cal.events[event_id] = event

    def cancel_event(self, calendar_id: str, event_id: str) -> None:
        """The tutor deletes an event (Google keeps it as cancelled)."""
        with self._lock:
            cal = self._calendar_for_setup(calendar_id)
            cal.events[event_id]["status"] = "cancelled"
            self._touch(cal, cal.events[event_id])

    def set_transparency(self, calendar_id: str, event_id: str, transparent: bool) -> None:
        """The tutor switches an event between "Busy" and "Free"."""
        with self._lock:
            cal = self._calendar_for_setup(calendar_id)
            event = cal.events[event_id]
            if transparent:
                event["transparency"] = "transparent"
            else:
                event.pop("transparency", None)
            self._touch(cal, event)

    def invalidate_sync_tokens(self, calendar_id: str) -> None:
        """Google may invalidate sync tokens at any time: the next incremental list is 410."""
        with self._lock:
            self._calendar_for_setup(calendar_id).epoch += 1

    def events(self, calendar_id: str, *, include_cancelled: bool = False) -> list[dict[str, Any]]:
        with self._lock:
            cal = self._calendars.get(calendar_id)
            if cal is None:
                return []
            return [
                _public(e) for e in cal.events.values() if include_cancelled or e["status"] != "cancelled"
            ]

    def event(self, calendar_id: str, event_id: str) -> dict[str, Any] | None:
        with self._lock:
            cal = self._calendars.get(calendar_id)
            event = cal.events.get(event_id) if cal else None
            return _public(event) if event else None

    # -- faults -------------------------------------------------------------------------------

    def fail_next(
        self, status: int, count: int = 1, reason: str | None = None, *, match: str | None = None
    ) -> None:
        """The next `count` API requests (optionally only `match`, e.g. "events.insert") answer
        `status` with Google's error JSON; 502/504 answer an HTML page like Google's front end."""
        with self._lock:
            self._faults.append(_Fault("status", count, status=status, reason=reason, match=match))

    def slow_next(self, seconds: float, count: int = 1, *, match: str | None = None) -> None:
        """Process the next requests normally but wait `seconds` before answering."""
        with self._lock:
            self._faults.append(_Fault("slow", count, seconds=seconds, match=match))

    def drop_next(self, count: int = 1, *, match: str | None = None, after_processing: bool = True) -> None:
        """Close the connection without an answer; by default after doing the work (a lost
        response: the event exists but the client never heard so)."""
        with self._lock:
            self._faults.append(_Fault("drop", count, after_processing=after_processing, match=match))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def calls(self, operation: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.operation == operation]

    # -- internals: request handling ----------------------------------------------------------

    def _take_fault(self, operation: str) -> _Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.match is None or fault.match == operation:
                    fault.count -= 1
                    if fault.count <= 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def _calendar_for_setup(self, calendar_id: str) -> _Calendar:
        cal = self._calendars.get(calendar_id)
        if cal is None:
            self._missing.discard(calendar_id)
            cal = self._calendars[calendar_id] = _Calendar(
                calendar_id, self.default_time_zone, calendar_id, "writer"
            )
        return cal

    def _resolve(self, calendar_id: str, token: _Token) -> str:
        return token.identity if calendar_id == "primary" else calendar_id

    def _calendar(
        self,
        calendar_id: str,
        token: _Token,
        need: str | None = "reader",
    ) -> _Calendar:
        """The calendar as this caller may see it; 404 when it is missing or not shared."""
        cid = self._resolve(calendar_id, token)
        cal = self._calendars.get(cid)
        if cal is None and cid not in self._missing:
            if cid == token.identity:  # everyone has a primary calendar of their own
                cal = self._calendars[cid] = _Calendar(cid, "UTC", cid, "owner", True)
            elif self.auto_create_calendars:
                cal = self._calendars[cid] = _Calendar(cid, self.default_time_zone, cid, "writer")
        if cal is None:
            raise ApiError(404, "notFound")
        role = "owner" if cid == token.identity else cal.access_role
        if role is None:
            raise ApiError(404, "notFound")
        if need and ACCESS_RANK[role] < ACCESS_RANK[need]:
            if need == "writer" and ACCESS_RANK[role] >= ACCESS_RANK["reader"]:
                raise ApiError(403, "requiredAccessLevel")
            raise ApiError(404, "notFound")
        return cal

    def _role(self, cal: _Calendar, token: _Token) -> str:
        return "owner" if cal.id == token.identity else (cal.access_role or "none")

    def dispatch(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: bytes
    ) -> tuple[int, Any, str]:
        """Answer one request: (status, JSON-able body or bytes, operation name)."""
        if path == "/token" and method == "POST":
            return (*self._token_endpoint(body), "token")
        prefix = "/calendar/v3/"
        if not path.startswith(prefix):
            return 404, {"error": {"code": 404, "message": "Not Found"}}, "unknown"
        parts = [urllib.parse.unquote(p) for p in path[len(prefix) :].split("/")]
        operation, args = _route(method, parts)
        if operation is None:
            return 404, ApiError(404, "notFound").body(), "unknown"
        return (*self._api(operation, args, query, headers, body), operation)

    def _api(
        self, operation: str, args: list[str], query: dict[str, str], headers: Any, raw: bytes
    ) -> tuple[int, Any]:
        token = self._authenticate(headers)
        if token is None:
            return 401, ApiError(401, "authError", location="Authorization", locationType="header").body()
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            return 400, ApiError(400, "parseError", "Parse Error").body()
        handler = getattr(self, "_op_" + operation.replace(".", "_"))
        try:
            with self._lock:
                return handler(token, args, query, payload)
        except ApiError as err:
            return err.status, err.body()

    def _authenticate(self, headers: Any) -> _Token | None:
        auth = headers.get("Authorization") or ""
        if not auth.startswith("Bearer "):
            return None
        with self._lock:
            token = self._tokens.get(auth[len("Bearer ") :].strip())
        if token is None or token.expires_at < time.time():
            return None
        return token

    # -- token endpoint -----------------------------------------------------------------------

    def _token_endpoint(self, raw: bytes) -> tuple[int, Any]:
        form = dict(urllib.parse.parse_qsl(raw.decode()))
        if form.get("grant_type") != "urn:ietf:params:oauth:grant-type:jwt-bearer":
            return 400, {
                "error": "unsupported_grant_type",
                "error_description": "Invalid grant_type: " + form.get("grant_type", ""),
            }
        try:
            header_b64, payload_b64, sig_b64 = form.get("assertion", "").split(".")
            header = json.loads(_b64url_decode(header_b64))
            claims = json.loads(_b64url_decode(payload_b64))
        except ValueError:
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT format."}
        issuer = claims.get("iss", "")
        with self._lock:
            public_key = self._public_keys.get(issuer)
        if self.verify_jwt:
            if public_key is None:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "Invalid grant: account not found",
                }
            if header.get("alg") != "RS256":
                return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            try:
                public_key.verify(
                    _b64url_decode(sig_b64),
                    f"{header_b64}.{payload_b64}".encode(),
                    padding.PKCS1v15(),
                    hashes.SHA256(),
                )
            except InvalidSignature:
                return 400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
            now = time.time()
            # google-auth always addresses Google's endpoint, whatever token_uri says.
            if claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, self.token_uri):
                return 400, {"error": "invalid_grant", "error_description": "Invalid JWT: aud."}
            if not (claims.get("iat", 0) - 300 <= now <= claims.get("exp", 0) + 300):
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "Invalid JWT: Token must be a short-lived "
                    "token (60 minutes) and in a reasonable timeframe. Check your iat "
                    "and exp values in the JWT claim.",
                }
            if CALENDAR_SCOPE not in str(claims.get("scope", "")).split():
                return 400, {
                    "error": "invalid_scope",
                    "error_description": "Invalid OAuth scope or ID token audience provided.",
                }
        subject = claims.get("sub") or None
        if subject == issuer:
            subject = None
        if subject and not self.delegation_enabled:
            return 401, {
                "error": "unauthorized_client",
                "error_description": "Client is unauthorized to retrieve access tokens "
                "using this method, or client not authorized for any of the scopes "
                "requested.",
            }
        access_token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self._tokens[access_token] = _Token(issuer, subject, time.time() + 3599)
        return 200, {"access_token": access_token, "expires_in": 3599, "token_type": "Bearer"}

    # -- API operations (called under self._lock) ---------------------------------------------

    def _op_freebusy_query(
        self, token: _Token, args: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        body = body or {}
        try:
            time_min = _parse_rfc3339(body["timeMin"])
        except (KeyError, ValueError):
            raise ApiError(400, "required", "Missing timeMin parameter.") from None
        try:
            time_max = _parse_rfc3339(body["timeMax"])
        except (KeyError, ValueError):
            raise ApiError(400, "required", "Missing timeMax parameter.") from None
        if time_max <= time_min:
            raise ApiError(400, "timeRangeEmpty", location="timeMax", locationType="parameter")
        if time_max - time_min > timedelta(days=self.max_freebusy_days):
            raise ApiError(400, "timeRangeTooLong")
        zone = ZoneInfo(body.get("timeZone") or "UTC")
        calendars: dict[str, Any] = {}
        for index, item in enumerate(body.get("items") or []):
            cid = item.get("id", "")
            if index >= FREEBUSY_MAX_ITEMS:
                calendars[cid] = {
                    "errors": [{"domain": "calendar", "reason": "tooManyCalendarsRequested"}],
                    "busy": [],
                }
                continue
            try:
                cal = self._calendar(cid, token, need="freeBusyReader")
            except ApiError:
                calendars[cid] = {"errors": [{"domain": "global", "reason": "notFound"}], "busy": []}
                continue
            intervals = []
            for event in cal.events.values():
                if event["status"] == "cancelled" or event.get("transparency") == "transparent":
                    continue
                start, end = event["_start_utc"], event["_end_utc"]
                if end > time_min and start < time_max:
                    intervals.append((max(start, time_min), min(end, time_max)))
            intervals.sort()
            merged: list[list[datetime]] = []
            for start, end in intervals:
                if merged and start <= merged[-1][1]:
                    merged[-1][1] = max(merged[-1][1], end)
                else:
                    merged.append([start, end])
            calendars[cid] = {
                "busy": [{"start": _fmt_in(s, zone), "end": _fmt_in(e, zone)} for s, e in merged]
            }
        return 200, {
            "kind": "calendar#freeBusy",
            "timeMin": _utc_z(time_min),
            "timeMax": _utc_z(time_max),
            "calendars": calendars,
        }

    def _op_calendars_get(
        self, token: _Token, args: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        cal = self._calendar(args[0], token)
        return 200, {
            "kind": "calendar#calendar",
            "etag": '"' + secrets.token_hex(8) + '"',
            "id": cal.id,
            "summary": cal.summary,
            "timeZone": cal.time_zone,
        }

    def _op_calendarList_get(
        self, token: _Token, args: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        cid = self._resolve(args[0], token)
        cal = self._calendar(cid, token, need="freeBusyReader")
        if not (cal.in_calendar_list or cal.id == token.identity):
            raise ApiError(404, "notFound")
        return 200, self._list_entry(cal, token)

    def _op_calendarList_list(
        self, token: _Token, args: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        self._calendar("primary", token, need=None)  # make sure the own calendar exists
        items = [
            self._list_entry(c, token)
            for c in self._calendars.values()
            if c.id == token.identity or (c.in_calendar_list and c.access_role)
        ]
        return 200, {"kind": "calendar#calendarList", "etag": '"p33k"', "items": items}

    def _list_entry(self, cal: _Calendar, token: _Token) -> dict[str, Any]:
        entry = {
            "kind": "calendar#calendarListEntry",
            "id": cal.id,
            "summary": cal.summary,
            "timeZone": cal.time_zone,
            "accessRole": self._role(cal, token),
        }
        if cal.id == token.identity:
            entry["primary"] = True
        return entry

    def _op_events_list(
        self, token: _Token, args: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        cal = self._calendar(args[0], token, need="freeBusyReader")
        role = self._role(cal, token)
        sync_token = query.get("syncToken")
        since: int | None = None
        if sync_token is not None:
            # "Sync tokens aren't compatible with most filters"; deleted events always come back.
            if any(k in query for k in _SYNC_RESTRICTIONS) or query.get("showDeleted") == "false":
                raise ApiError(400, "syncTokenWithRequestRestrictions", location="syncToken")
            since = self._parse_sync_token(cal, sync_token)
        show_deleted = query.get("showDeleted") == "true" or since is not None
        time_min = _parse_rfc3339(query["timeMin"]) if "timeMin" in query else None
        time_max = _parse_rfc3339(query["timeMax"]) if "timeMax" in query else None
        prop = query.get("privateExtendedProperty")
        items = []
        for event in sorted(cal.events.values(), key=lambda e: e["_start_utc"]):
            if since is not None and event.get("_seq", 0) <= since:
                continue
            if event["status"] == "cancelled" and not show_deleted:
                continue
            if time_min and event["_end_utc"] <= time_min:
                continue
            if time_max and event["_start_utc"] >= time_max:
                continue
            if prop:
                key, _, value = prop.partition("=")
                private = event.get("extendedProperties", {}).get("private", {})
                if private.get(key) != value:
                    continue
            public = _public(event)
            if role == "freeBusyReader":  # only times, no details
                public = {k: public[k] for k in ("kind", "etag", "id", "status", "start", "end")}
            items.append(public)
        max_results = int(query.get("maxResults", 250))
        offset = int(query.get("pageToken", "0") or 0)
        page = items[offset : offset + max_results]
        answer: dict[str, Any] = {
            "kind": "calendar#events",
            "etag": '"p3"',
            "summary": cal.summary,
            "updated": _now_rfc3339(),
            "timeZone": cal.time_zone,
            "accessRole": role,
            "defaultReminders": [],
            "items": page,
        }
        if offset + max_results < len(items):
            answer["nextPageToken"] = str(offset + max_results)
        elif not prop:  # only the last page has one, and filtered lists cannot sync
            answer["nextSyncToken"] = self._sync_token(cal)
        return 200, answer

    @staticmethod
    def _sync_token(cal: _Calendar) -> str:
        return base64.urlsafe_b64encode(f"{cal.id}|{cal.epoch}|{cal.seq}".encode()).decode()

    @staticmethod
    def _parse_sync_token(cal: _Calendar, token: str) -> int:
        try:
            cal_id, epoch, seq = base64.urlsafe_b64decode(token.encode()).decode().rsplit("|", 2)
            if cal_id != cal.id:
                raise ValueError(cal_id)
            if int(epoch) != cal.epoch:
                raise ApiError(410, "fullSyncRequired")
            return int(seq)
        except (ValueError, UnicodeDecodeError) as err:
            raise ApiError(400, "invalid", "Invalid sync token value.", location="syncToken") from err

    def _op_events_get(
        self, token: _Token, args: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        cal = self._calendar(args[0], token)
        event = cal.events.get(args[1])
        if event is None:
            raise ApiError(404, "notFound")
        # "The get method always returns them" (deleted events, status "cancelled").
        return 200, _public(event)

    def _op_events_insert(
        self, token: _Token, args: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        cal = self._calendar(args[0], token, need="writer")
        body = dict(body or {})
        event_id = body.get("id")
        if event_id is not None and not EVENT_ID_RE.match(event_id):
            raise ApiError(400, "invalid", "Invalid resource id value.")
        self._check_attendees(token, body)
        event = self._build_event(cal, body, organizer=cal.id)
        if event["id"] in cal.events:  # deleted events keep their id: still a duplicate
            raise ApiError(409, "duplicate")
        self._touch(cal, event)
        cal.events[event["id"]] = event
        self._invite(cal, event, query)
        return 200, _public(event)

    def _op_events_update(
        self, token: _Token, args: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        cal = self._calendar(args[0], token, need="writer")
        old = cal.events.get(args[1])
        if old is None:
            raise ApiError(404, "notFound")
        body = dict(body or {}, id=args[1])
        self._check_attendees(token, body)
        event = self._build_event(cal, body, organizer=cal.id)
        # Updating a cancelled event with status "confirmed" restores it (undelete).
        event["status"] = body.get("status", "confirmed")
        event["created"] = old["created"]
        event["sequence"] = old["sequence"] + 1
        self._touch(cal, event)
        cal.events[event["id"]] = event
        self._invite(cal, event, query)
        return 200, _public(event)

    def _op_events_delete(
        self, token: _Token, args: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        cal = self._calendar(args[0], token, need="writer")
        event = cal.events.get(args[1])
        if event is None:
            raise ApiError(404, "notFound")
        if event["status"] == "cancelled":
            raise ApiError(410, "deleted")
        event["status"] = "cancelled"  # Google keeps deleted events (and their ids)
        event["updated"] = _now_rfc3339()
        self._touch(cal, event)
        return 204, b""

    def _op_events_watch(
        self, token: _Token, args: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        cal = self._calendar(args[0], token, need="reader")
        body = dict(body or {})
        address, channel_id = str(body.get("address") or ""), str(body.get("id") or "")
        if not channel_id or body.get("type") not in ("web_hook", "webhook"):
            raise ApiError(400, "required", "Required: id and type web_hook.")
        if not address.startswith("https://") and not (
            self.allow_http_webhooks and address.startswith("http://")
        ):
            raise ApiError(400, "push.webhookUrlNotHttps", "WebHook callback must be HTTPS: " + address)
        if channel_id in self.channels:
            raise ApiError(400, "channelIdNotUnique", "Channel id not unique")
        ttl = int((body.get("params") or {}).get("ttl", 604800))
        channel = Channel(
            id=channel_id,
            calendar_id=cal.id,
            resource_id=secrets.token_hex(12),
            address=address,
            token=body.get("token"),
            expiration_ms=int((time.time() + ttl) * 1000),
        )
        self.channels[channel_id] = channel
        self._deliver(channel, "sync")
        answer = {
            "kind": "api#channel",
            "id": channel.id,
            "resourceId": channel.resource_id,
            "resourceUri": f"{self.api_endpoint}calendars/{cal.id}/events",
            "expiration": str(channel.expiration_ms),
        }
        if channel.token is not None:
            answer["token"] = channel.token
        return 200, answer

    def _op_channels_stop(
        self, token: _Token, args: list[str], query: dict[str, str], body: Any
    ) -> tuple[int, Any]:
        body = dict(body or {})
        channel = self.channels.get(str(body.get("id")))
        if channel is None or channel.resource_id != body.get("resourceId"):
            raise ApiError(404, "notFound", "Channel not found")
        channel.stopped = True
        return 204, b""

    def _touch(self, cal: _Calendar, event: dict[str, Any]) -> None:
        cal.touch(event)
        for channel in self.channels.values():
            if (
                channel.calendar_id == cal.id
                and not channel.stopped
                and channel.expiration_ms > time.time() * 1000
            ):
                self._deliver(channel, "exists")

    def _deliver(self, channel: Channel, state: str) -> None:
        """POST a notification as Google does (headers only, no body), off the request thread."""
        channel.message_number += 1
        headers = {
            "X-Goog-Channel-ID": channel.id,
            "X-Goog-Channel-Expiration": time.strftime(
                "%a, %d %b %Y %H:%M:%S GMT", time.gmtime(channel.expiration_ms / 1000)
            ),
            "X-Goog-Resource-ID": channel.resource_id,
            "X-Goog-Resource-URI": f"{self.api_endpoint}calendars/{channel.calendar_id}/events",
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": str(channel.message_number),
            "Content-Length": "0",
        }
        if channel.token is not None:
            headers["X-Goog-Channel-Token"] = channel.token

        def post() -> None:
            request = urllib.request.Request(channel.address, data=b"", headers=headers, method="POST")
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310 - the test's own URL
                    status: int | None = answer.status
            except urllib.error.HTTPError as err:
                status = err.code
            except OSError:
                status = None
            with self._lock:
                self.notifications.append(Notification(channel.id, state, status))

        threading.Thread(target=post, name="fake-google-push", daemon=True).start()

    def wait_for_notifications(self, count: int, timeout: float = 10.0) -> list[Notification]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.notifications) >= count:
                    return list(self.notifications)
            time.sleep(0.02)
        with self._lock:
            return list(self.notifications)

    def _check_attendees(self, token: _Token, body: dict[str, Any]) -> None:
        if body.get("attendees") and self.attendees_need_delegation and token.subject is None:
            raise ApiError(403, "forbiddenForServiceAccounts")

    def _invite(self, cal: _Calendar, event: dict[str, Any], query: dict[str, str]) -> None:
        if query.get("sendUpdates", "false") in ("all", "externalOnly"):
            for attendee in event.get("attendees", []):
                self.invitations.append((cal.id, event["id"], attendee["email"]))

    def _build_event(self, cal: _Calendar, body: dict[str, Any], organizer: str) -> dict[str, Any]:
        """Validate an event body like Google does and store it with its UTC instants."""
        start_utc, start_obj = self._when(cal, body.get("start"), "start")
        end_utc, end_obj = self._when(cal, body.get("end"), "end")
        if end_utc < start_utc:
            raise ApiError(400, "timeRangeEmpty", location="end.dateTime", locationType="parameter")
        event_id = body.get("id") or secrets.token_hex(13)
        now = _now_rfc3339()
        event: dict[str, Any] = {
            "kind": "calendar#event",
            "etag": '"' + str(time.time_ns()) + '"',
            "id": event_id,
            "status": "confirmed",
            "htmlLink": "https://www.google.com/calendar/event?eid="
            + base64.urlsafe_b64encode(f"{event_id} {cal.id}".encode()).decode().rstrip("="),
            "created": now,
            "updated": now,
            "summary": body.get("summary", ""),
            "creator": {"email": organizer, "self": True},
            "organizer": {"email": organizer, "self": True},
            "start": start_obj,
            "end": end_obj,
            "iCalUID": f"{event_id}@google.com",
            "sequence": 0,
            "reminders": {"useDefault": True},
            "eventType": "default",
            "_start_utc": start_utc,
            "_end_utc": end_utc,
        }
        for key in ("description", "location", "transparency", "visibility", "extendedProperties"):
            if key in body:
                event[key] = body[key]
        if body.get("attendees"):
            event["attendees"] = [
                {
                    k: v
                    for k, v in {
                        "email": a.get("email"),
                        "displayName": a.get("displayName"),
                        "responseStatus": "needsAction",
                    }.items()
                    if v
                }
                for a in body["attendees"]
            ]
        return event

    def _when(self, cal: _Calendar, value: Any, which: str) -> tuple[datetime, dict[str, str]]:
        if not isinstance(value, dict) or not (value.get("dateTime") or value.get("date")):
            raise ApiError(400, "required", f"Missing {which} time.")
        if value.get("date"):
            try:
                day = date.fromisoformat(value["date"])
            except ValueError:
                raise ApiError(400, "invalid", f"Invalid {which} time.") from None
            # All-day events span midnight to midnight in the calendar's own zone.
            zone = ZoneInfo(cal.time_zone)
            return datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC), {
                "date": day.isoformat()
            }
        tz_name = value.get("timeZone")
        zone = None
        if tz_name:
            try:
                zone = ZoneInfo(tz_name)
            except (ZoneInfoNotFoundError, ValueError):
                raise ApiError(400, "invalid", f"Invalid time zone definition for {which} time.") from None
        try:
            parsed = datetime.fromisoformat(value["dateTime"])
        except ValueError:
            raise ApiError(400, "invalid", f"Invalid {which} time.") from None
        if parsed.tzinfo is None:
            if zone is None:
                raise ApiError(400, "required", f"Missing time zone definition for {which} time.")
            parsed = parsed.replace(tzinfo=zone)
        shown = parsed.astimezone(zone) if zone else parsed
        obj = {"dateTime": shown.isoformat()}
        if tz_name:
            obj["timeZone"] = tz_name
        return parsed.astimezone(UTC), obj


def _fmt_in(value: datetime, zone: ZoneInfo) -> str:
    if zone.key == "UTC":
        return _utc_z(value)
    return value.astimezone(zone).isoformat()


def _public(event: dict[str, Any]) -> dict[str, Any]:
    """An event as the API shows it (without the fake's bookkeeping fields)."""
    return json.loads(json.dumps({k: v for k, v in event.items() if not k.startswith("_")}))


def _route(method: str, parts: list[str]) -> tuple[str | None, list[str]]:
    match (method, parts):
        case ("POST", ["freeBusy"]):
            return "freebusy.query", []
        case ("GET", ["calendars", cid]):
            return "calendars.get", [cid]
        case ("GET", ["users", "me", "calendarList"]):
            return "calendarList.list", []
        case ("GET", ["users", "me", "calendarList", cid]):
            return "calendarList.get", [cid]
        case ("GET", ["calendars", cid, "events"]):
            return "events.list", [cid]
        case ("POST", ["calendars", cid, "events"]):
            return "events.insert", [cid]
        case ("GET", ["calendars", cid, "events", eid]):
            return "events.get", [cid, eid]
        case ("PUT", ["calendars", cid, "events", eid]):
            return "events.update", [cid, eid]
        case ("DELETE", ["calendars", cid, "events", eid]):
            return "events.delete", [cid, eid]
        case ("POST", ["calendars", cid, "events", "watch"]):
            return "events.watch", [cid]
        case ("POST", ["channels", "stop"]):
            return "channels.stop", []
    return None, []


_HTML_ERRORS = {
    502: "<!DOCTYPE html><html lang=en><title>Error 502 (Server Error)!!1</title>"
    "<p><b>502.</b> <ins>That's an error.</ins><p>The server encountered a temporary error "
    "and could not complete your request.<p>Please try again in 30 seconds.</html>",
    504: "<!DOCTYPE html><html lang=en><title>Error 504 (Gateway Timeout)!!1</title>"
    "<p><b>504.</b> <ins>That's an error.</ins></html>",
}


class _Handler(BaseHTTPRequestHandler):
    """Thin HTTP adapter: parse, let the fake answer, apply the fault, write."""

    fake: FakeGoogleCalendar
    protocol_version = "HTTP/1.1"  # keep-alive, like Google's front end
    timeout = 10  # idle keep-alive connections end instead of holding a thread forever

    def setup(self) -> None:
        super().setup()
        # Headers and body leave in separate writes; without NODELAY, Nagle + the client's
        # delayed ACK add ~40 ms to every answer, latency Google does not have.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return None

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve(self.headers.get("X-HTTP-Method-Override") or "POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def do_PATCH(self) -> None:  # noqa: N802
        self._serve("PATCH")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        fake = self.fake
        parsed = urllib.parse.urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        query = dict(urllib.parse.parse_qsl(parsed.query))
        if method == "GET" and raw and not query:  # a long GET sent as POST + override
            query = dict(urllib.parse.parse_qsl(raw.decode()))
            raw = b""
        operation = _operation_name(method, parsed.path)
        try:
            logged_body: Any = json.loads(raw) if raw and operation != "token" else None
        except ValueError:
            logged_body = raw
        record = RecordedRequest(method, parsed.path, operation, query, logged_body)
        with fake._lock:
            fake.requests.append(record)

        fault = fake._take_fault(operation) if operation != "token" else None
        if fault and fault.kind == "status":
            record.status, record.fault = fault.status, f"status {fault.status}"
            if fault.status in _HTML_ERRORS:
                self._write(fault.status, _HTML_ERRORS[fault.status].encode(), "text/html")
            else:
                self._write_json(fault.status, ApiError(fault.status, fault.reason).body())
            return
        if fault and fault.kind == "drop" and not fault.after_processing:
            record.fault = "dropped before processing"
            self._drop()
            return

        status, body, _ = fake.dispatch(method, parsed.path, query, self.headers, raw)
        record.status = status

        if fault and fault.kind == "drop":
            record.fault = "dropped after processing"
            self._drop()
            return
        if fault and fault.kind == "slow":
            record.fault = f"slow {fault.seconds}s"
            time.sleep(fault.seconds)
        if isinstance(body, bytes):
            self._write(status, body, "application/json; charset=UTF-8")
        else:
            self._write_json(status, body)

    def _write_json(self, status: int, body: Any) -> None:
        self._write(status, json.dumps(body).encode(), "application/json; charset=UTF-8")

    def _write(self, status: int, payload: bytes, content_type: str) -> None:
        try:
            self.send_response(status)
            if status != 204:
                self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(payload) if status != 204 else 0))
            self.end_headers()
            if status != 204:
                self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout)
            self.close_connection = True

    def _drop(self) -> None:
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def _operation_name(method: str, path: str) -> str:
    if path == "/token":
        return "token"
    prefix = "/calendar/v3/"
    if not path.startswith(prefix):
        return "unknown"
    parts = [urllib.parse.unquote(p) for p in path[len(prefix) :].split("/")]
    return _route(method, parts)[0] or "unknown"
