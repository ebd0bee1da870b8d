"""The Google calls of the calendar mirror (core/calendars/mirror.py): incremental sync of a
calendar's events and push-notification channels. A mixin of GoogleCalendarBackend, so every call
goes through the same timeout, retry and error translation (`_call`, `_tracked`).

- `list_changes`: `events.list` with the stored `syncToken` (every event changed since, deleted
  ones included), or without one every event ending after `time_min`; all pages. Google answers
  410 Gone when a token is no longer valid: `SyncTokenExpired`, and the caller lists in full.
- `watch` / `stop_channel`: `events.watch` opens a channel that POSTs to our receiver when the
  calendar's events change (Google requires an HTTPS address); `channels.stop` closes one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

from core.calendars.google_support import EventChanges, SyncTokenExpired, _ApiError, _rfc3339, busy_interval
from core.errors import CalendarUnavailable


class GoogleSyncCalls:
    _call: Callable[[Callable[[Any], Any]], Any]
    _tracked: Callable[..., AbstractContextManager[None]]
    _ensure_service: Callable[[], Any]
    _refuse_bare_primary: Callable[[list[str]], None]

    def list_changes(self, calendar_id: str, sync_token: str | None, time_min: datetime) -> EventChanges:
        """One sync of a calendar's mirror; raises SyncTokenExpired on Google's 410."""
        items: list[dict] = []
        params: dict[str, Any] = {"calendarId": calendar_id, "singleEvents": True, "maxResults": 2500}
        if sync_token:
            params["syncToken"] = sync_token  # Google refuses it together with timeMin
        else:
            params["timeMin"] = _rfc3339(time_min)
        with self._tracked(calendar_id):
            self._ensure_service()
            self._refuse_bare_primary([calendar_id])
            for answer in self._pages(params):
                items.extend(answer.get("items") or [])
                if not answer.get("nextPageToken"):
                    return EventChanges(items, answer.get("nextSyncToken"), answer.get("timeZone"))
        raise AssertionError("unreachable: the last page returns")

    def _pages(self, params: dict[str, Any]) -> Iterator[dict]:
        while True:
            page = dict(params)
            try:
                answer = self._call(lambda s: s.events().list(**page))  # noqa: B023 - called at once
            except _ApiError as err:
                if err.status == 410:
                    raise SyncTokenExpired(params["calendarId"]) from None
                raise
            yield answer
            if not answer.get("nextPageToken"):
                return
            params["pageToken"] = answer["nextPageToken"]

    def busy_without(
        self, calendar_id: str, start: datetime, end: datetime, event_id: str
    ) -> list[tuple[datetime, datetime]]:
        """Busy time of the calendar's events in [start, end) except the event `event_id` (a
        lesson's own, when it moves within its old time: merged free/busy cannot tell it from an
        event lying inside it)."""
        params: dict[str, Any] = {
            "calendarId": calendar_id,
            "singleEvents": True,
            "maxResults": 2500,
            "timeMin": _rfc3339(start),
            "timeMax": _rfc3339(end),
        }
        found: list[tuple[datetime, datetime]] = []
        with self._tracked(calendar_id):
            self._ensure_service()
            self._refuse_bare_primary([calendar_id])
            for answer in self._pages(params):
                for item in answer.get("items") or []:
                    interval = (
                        None if item.get("id") == event_id else busy_interval(item, answer.get("timeZone"))
                    )
                    if interval is not None:
                        found.append(interval)
        return found

    def watch(
        self, calendar_id: str, channel_id: str, token: str, address: str, ttl_seconds: int
    ) -> tuple[str, datetime]:
        """Open a push channel on the calendar's events: (Google's resource id, expiry)."""
        body = {
            "id": channel_id,
            "type": "web_hook",
            "address": address,
            "token": token,
            "params": {"ttl": str(ttl_seconds)},
        }
        with self._tracked(calendar_id):
            answer = self._call(lambda s: s.events().watch(calendarId=calendar_id, body=body))
        expires = datetime.fromtimestamp(int(answer["expiration"]) / 1000, tz=UTC)
        return str(answer["resourceId"]), expires

    def stop_channel(self, channel_id: str, resource_id: str) -> None:
        """Close a push channel; one Google no longer knows is closed already."""
        try:
            with self._tracked():
                self._call(lambda s: s.channels().stop(body={"id": channel_id, "resourceId": resource_id}))
        except CalendarUnavailable:  # best effort: an unstopped channel expires by itself
            return
