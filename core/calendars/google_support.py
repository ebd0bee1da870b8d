"""Google Calendar helpers without the API client: time formatting and parsing, and the
error details of an HttpError. The plumbing all services share is in core/integrations.py."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from google.oauth2 import service_account
from googleapiclient.errors import HttpError

from core.calendars.base import EventRequest
from core.config import Settings
from core.errors import CalendarUnavailable, ValidationFailed

SCOPE = "https://www.googleapis.com/auth/calendar"
log = logging.getLogger("core.calendars.google")  # the same logger as the backend

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
    return _event_instant(event.get("start") or {}) == request.start.astimezone(UTC) and _event_instant(
        event.get("end") or {}
    ) == request.end.astimezone(UTC)


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


def refresh_message(
    err: Exception,
    scrub: Callable[[str], str],
    client_email: str | None,
    client_id: str | None,
    delegated_user: str | None,
) -> str:
    """A sentence for people about credentials Google refused while fetching a token."""
    data = err.args[1] if len(err.args) > 1 and isinstance(err.args[1], dict) else {}
    code = str(data.get("error", ""))
    said = scrub(str(err.args[0]) if err.args else type(err).__name__).rstrip(". ")
    who = client_email or "the service account"
    text = f"Google Calendar refused the credentials: {said}."
    if code == "unauthorized_client" and delegated_user:
        text += (
            f" GCAL_DELEGATED_USER is set to {delegated_user}, but "
            "domain-wide delegation is not authorised: in the Google Workspace admin "
            "console (Security > API controls > Domain-wide delegation) add client id "
            f"{client_id or '(client_id in the key)'} with scope {SCOPE}, or "
            "unset GCAL_DELEGATED_USER."
        )
    elif code == "invalid_grant":
        text += (
            f" The key in GCAL_SERVICE_ACCOUNT_JSON is not (or no longer) valid for "
            f"{who}: create a new JSON key for it in the Google Cloud console, set it, "
            "and check this machine's clock."
        )
    else:
        text += (
            " Check GCAL_SERVICE_ACCOUNT_JSON (a current key of the service account) and GCAL_DELEGATED_USER."
        )
    return text


def load_credentials(settings: Settings) -> tuple[service_account.Credentials, str, str]:
    """The service account's credentials from GCAL_SERVICE_ACCOUNT_JSON (a path or the JSON text),
    with its client e-mail and id; every way the key can be wrong is a CalendarUnavailable that
    says how to fix it."""
    raw = settings.secret("gcal_service_account_json")
    if not raw:
        raise CalendarUnavailable(
            "Google Calendar is not configured: set GCAL_SERVICE_ACCOUNT_JSON to the path of "
            "the service account's JSON key file, or to the JSON text itself "
            "(see docs/GOOGLE_CALENDAR.md)."
        )
    if raw.lstrip().startswith("{"):
        text, source = raw, "The JSON text in GCAL_SERVICE_ACCOUNT_JSON"
    else:
        source = "The file named in GCAL_SERVICE_ACCOUNT_JSON"
        try:
            text = Path(raw).expanduser().read_text(encoding="utf-8")
        except FileNotFoundError:
            raise CalendarUnavailable(
                "GCAL_SERVICE_ACCOUNT_JSON names a file that does not exist. Set it to the "
                "path of the service account's JSON key (readable by this process) or to "
                "the JSON text itself."
            ) from None
        except (OSError, UnicodeDecodeError) as err:
            kind = type(err).__name__
            raise CalendarUnavailable(
                f"The file named in GCAL_SERVICE_ACCOUNT_JSON cannot be read ({kind}); make "
                "it readable by this process or put the JSON text in the setting."
            ) from None
    try:
        info = json.loads(text)
    except ValueError:
        raise CalendarUnavailable(
            f"{source} is not valid JSON. Download a new JSON key for the service account "
            "(Google Cloud console > IAM > Service accounts > Keys) and use it unchanged."
        ) from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise CalendarUnavailable(
            f'{source} is not a service-account key (its "type" must be '
            '"service_account"; OAuth client files and API keys do not work here).'
        )
    missing = [k for k in ("client_email", "private_key", "token_uri") if not info.get(k)]
    if missing:
        raise CalendarUnavailable(
            f"{source} lacks {', '.join(missing)}; download a complete JSON key for the service account."
        )
    client_email = str(info["client_email"])
    client_id = str(info.get("client_id") or "")
    try:
        credentials = service_account.Credentials.from_service_account_info(info, scopes=[SCOPE])
    except (ValueError, TypeError, IndexError):
        raise CalendarUnavailable(
            f"The private_key of the service account {client_email} cannot be read; "
            "download a new JSON key and set GCAL_SERVICE_ACCOUNT_JSON to it."
        ) from None
    delegated = (settings.gcal_delegated_user or "").strip()
    if delegated:
        credentials = credentials.with_subject(delegated)
    return credentials, client_email, client_id


class SyncTokenExpired(Exception):
    """Google answered 410 Gone to an incremental list: the sync token is no longer valid and
    the calendar must be listed in full again."""


@dataclass(frozen=True)
class EventChanges:
    """One sync's answer: the events (changed since the token, or all), the token for the next
    sync, and the calendar's time zone (for all-day events)."""

    items: list[dict]
    next_sync_token: str | None
    time_zone: str | None


def busy_interval(event: dict, calendar_zone: str | None) -> tuple[datetime, datetime] | None:
    """The UTC interval an event blocks, as FreeBusy would count it; None when it blocks nothing
    (cancelled, marked "Free", declined by the calendar's owner) or has no usable times.
    An all-day event blocks from midnight to midnight in the calendar's own time zone."""
    if event.get("status") == "cancelled" or event.get("transparency") == "transparent":
        return None
    if any(a.get("self") and a.get("responseStatus") == "declined" for a in event.get("attendees") or []):
        return None
    start, end = event.get("start") or {}, event.get("end") or {}
    if start.get("date") and end.get("date"):
        zone = ZoneInfo(calendar_zone or "UTC")
        lo = datetime.combine(date.fromisoformat(start["date"]), time(0), tzinfo=zone).astimezone(UTC)
        hi = datetime.combine(date.fromisoformat(end["date"]), time(0), tzinfo=zone).astimezone(UTC)
    else:
        lo, hi = _event_instant(start), _event_instant(end)  # type: ignore[assignment]
    if lo is None or hi is None or hi <= lo:
        return None
    return lo, hi
