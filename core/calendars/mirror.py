"""A local mirror of the tutors' Google calendars, so slot answers need no Google call.

Each tutor calendar's busy events are kept in `MirroredEvent`, brought up to date by Google's
incremental sync (`events.list` with the stored `syncToken`; a 410 means the token expired and the
calendar is listed in full again). The worker syncs every calendar every `GCAL_SYNC_SECONDS` as a
`calendar.sync` job (one key per calendar, so two workers never sync one calendar at once).

The rules that keep it honest:
- Slots (`calendar_busy`) read the mirror only for calendars synced within
  `GCAL_MIRROR_MAX_AGE_SECONDS`; any other calendar is asked live (FreeBusy), and if Google cannot
  answer that is `CalendarUnavailable` (the API's 503) — never slots from a stale mirror.
- A booking never uses the mirror: `book_slot` asks Google for the exact interval.
- A failed sync changes no mirrored event; it records why on the calendar's `CalendarMirror` row,
  and the mirror simply ages until it is no longer used.
- Free ("transparent"), cancelled and declined events are not busy, as in FreeBusy; all-day events
  block their days in the calendar's own time zone.
"""

from __future__ import annotations

import hmac
import logging
import secrets
import threading
import time as _time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, insert
from sqlmodel import Session, col, select

from core import clock, jobs
from core.calendars import get_backend
from core.calendars.base import Busy
from core.calendars.google_support import EventChanges, SyncTokenExpired, busy_interval
from core.config import get_settings, scrub
from core.db import read_session, write_session
from core.errors import CalendarUnavailable, NotFound
from core.models import CalendarMirror, MirroredEvent, Tutor
from core.slots import BusyIndex

log = logging.getLogger("lesplanner.mirror")

SYNC_JOB = "calendar.sync"
FULL_SYNC_HISTORY = timedelta(days=1)  # a full sync lists events ending after now - this
SCHEDULE_EVERY_SECONDS = 5.0  # how often a worker looks for calendars due a sync
# Push channels (events.watch): opened for a week, replaced an hour before they expire. With an
# open channel, Google tells us about changes, so polling slows to PUSH_POLL_FACTOR x
# GCAL_SYNC_SECONDS and a mirror without news stays trusted for PUSH_TRUST_FACTOR x that.
CHANNEL_TTL_SECONDS = 7 * 24 * 3600
CHANNEL_RENEW_BEFORE = timedelta(hours=1)
PUSH_POLL_FACTOR = 10
PUSH_TRUST_FACTOR = 3
WEBHOOK_PATH = "/webhooks/google"
_last_schedule = 0.0


@dataclass(frozen=True)
class SyncResult:
    calendar_id: str
    full: bool
    changed: int
    events: int


def enabled() -> bool:
    """Whether slots may come from the mirror: a backend that can sync, and a max age > 0."""
    return get_settings().gcal_mirror_max_age_seconds > 0 and hasattr(get_backend(), "list_changes")


# --- reading ----------------------------------------------------------------------------------


def fresh_calendars(session: Session, calendar_ids: Sequence[str], now: datetime) -> dict[str, int]:
    """The calendars whose mirror may answer for them, with their mirror version."""
    if not calendar_ids or not enabled():
        return {}
    rows = session.exec(
        select(CalendarMirror).where(col(CalendarMirror.calendar_id).in_(list(calendar_ids)))
    ).all()
    return {r.calendar_id: r.version for r in rows if _is_fresh(r, now)}


def _is_fresh(row: CalendarMirror, now: datetime) -> bool:
    """No news from Google since the last sync, and young enough: GCAL_MIRROR_MAX_AGE_SECONDS, or
    with an open push channel a longer safety bound (in case a channel goes silent)."""
    settings = get_settings()
    if row.synced_at is None:
        return False
    if row.notified_at is not None and row.notified_at > row.synced_at:
        return False  # Google said something changed since: not until the next sync
    age = (now - row.synced_at).total_seconds()
    if age <= settings.gcal_mirror_max_age_seconds:
        return True
    pushed = row.channel_expires_at is not None and row.channel_expires_at > now
    trust = PUSH_POLL_FACTOR * PUSH_TRUST_FACTOR * settings.gcal_sync_seconds
    return pushed and age <= trust


# Per process: each calendar's busy time as a BusyIndex (validated, merged, sorted once) per mirror
# version. Reading 20,000 rows per slot request would cost half a second; a sync that changes
# something bumps the version, and the next request builds the index again.
_cache: dict[str, tuple[tuple[str, int], BusyIndex]] = {}
_cache_lock = threading.Lock()


def mirrored_busy(session: Session, versions: dict[str, int]) -> dict[str, BusyIndex]:
    """The busy time of each calendar (id → mirror version) as the engine's index."""
    url = str(session.get_bind().engine.url)
    answer: dict[str, BusyIndex] = {}
    for calendar_id, version in versions.items():
        with _cache_lock:
            cached = _cache.get(calendar_id)
        if cached is None or cached[0] != (url, version):
            rows = session.exec(
                select(MirroredEvent.start, MirroredEvent.end).where(
                    col(MirroredEvent.calendar_id) == calendar_id
                )
            ).all()
            cached = ((url, version), BusyIndex(rows))
            with _cache_lock:
                _cache[calendar_id] = cached
        answer[calendar_id] = cached[1]
    return answer


def calendar_busy(
    session: Session, calendar_ids: Sequence[str], start: datetime, end: datetime, now: datetime | None = None
) -> dict[str, Busy | BusyIndex]:
    """Busy time per calendar for slot suggestions: the mirror where it is fresh, Google live for
    the rest (CalendarUnavailable when Google cannot answer)."""
    now = now or clock.now()
    ids = list(dict.fromkeys(calendar_ids))
    fresh = fresh_calendars(session, ids, now)
    stale = [cid for cid in ids if cid not in fresh]
    answer: dict[str, Busy | BusyIndex] = dict(get_backend().busy(stale, start, end)) if stale else {}
    if fresh:
        answer.update(mirrored_busy(session, fresh))
    return answer


# --- syncing ----------------------------------------------------------------------------------


def sync_calendar(calendar_id: str) -> SyncResult:
    """Bring one calendar's mirror up to date with Google (incremental when a token is stored,
    in full otherwise or after a 410). Raises CalendarUnavailable, after recording it."""
    backend = get_backend()
    if not hasattr(backend, "list_changes"):
        raise CalendarUnavailable("The calendar backend keeps no mirror (only Google Calendar does).")
    with read_session() as session:
        row = session.get(CalendarMirror, calendar_id)
        token = row.sync_token if row else None
    started = clock.now()
    full = token is None
    try:
        try:
            changes: EventChanges = backend.list_changes(calendar_id, token, started - FULL_SYNC_HISTORY)
        except SyncTokenExpired:
            log.info("Calendar %s: sync token expired (410), listing it in full again", calendar_id)
            full = True
            changes = backend.list_changes(calendar_id, None, started - FULL_SYNC_HISTORY)
    except CalendarUnavailable as exc:
        with write_session() as session:
            row = session.get(CalendarMirror, calendar_id) or CalendarMirror(calendar_id=calendar_id)
            row.last_error, row.last_error_at = scrub(exc.message)[:2000], clock.now()
            session.add(row)
        raise
    with write_session() as session:
        if full:
            session.execute(delete(MirroredEvent).where(col(MirroredEvent.calendar_id) == calendar_id))
        _apply(session, calendar_id, changes, full)
        row = session.get(CalendarMirror, calendar_id) or CalendarMirror(calendar_id=calendar_id)
        if full or changes.items:
            row.version = (row.version or 0) + 1
        row.sync_token = changes.next_sync_token
        row.synced_at = started  # what Google said as of this moment
        row.full_sync_at = started if full else row.full_sync_at
        row.last_error = None
        session.add(row)
        session.flush()
        row.events = session.exec(
            select(func.count())
            .select_from(MirroredEvent)
            .where(col(MirroredEvent.calendar_id) == calendar_id)
        ).one()
        result = SyncResult(calendar_id, full, len(changes.items), row.events)
    if get_settings().gcal_public_webhook_url:
        _ensure_channel(calendar_id)
    return result


def _ensure_channel(calendar_id: str) -> None:
    """Keep one open push channel per calendar: open it, or replace it before it expires.
    A failure leaves polling in charge (logged, never raised: the sync itself succeeded)."""
    settings = get_settings()
    now = clock.now()
    with read_session() as session:
        row = session.get(CalendarMirror, calendar_id)
        if row is None or (
            row.channel_expires_at is not None and row.channel_expires_at - now > CHANNEL_RENEW_BEFORE
        ):
            return
        old = (row.channel_id, row.channel_resource_id)
    channel_id, token = secrets.token_hex(16), secrets.token_urlsafe(32)
    address = str(settings.gcal_public_webhook_url).rstrip("/") + WEBHOOK_PATH
    backend: Any = get_backend()
    # Stored before Google is asked: Google's first message may arrive before watch() returns.
    with write_session() as session:
        row = session.get(CalendarMirror, calendar_id) or CalendarMirror(calendar_id=calendar_id)
        row.channel_id, row.channel_token = channel_id, token
        row.channel_resource_id = row.channel_expires_at = None
        session.add(row)
    try:
        resource_id, expires = backend.watch(calendar_id, channel_id, token, address, CHANNEL_TTL_SECONDS)
    except CalendarUnavailable as exc:
        log.warning("Calendar %s: no push channel (%s); polling continues", calendar_id, scrub(exc.message))
        return
    with write_session() as session:
        row = session.get(CalendarMirror, calendar_id) or CalendarMirror(calendar_id=calendar_id)
        if row.channel_id == channel_id:
            row.channel_resource_id = resource_id
            row.channel_expires_at = min(expires, now + timedelta(seconds=CHANNEL_TTL_SECONDS))
            session.add(row)
    if old[0] and old[1]:
        backend.stop_channel(old[0], old[1])


def handle_notification(channel_id: str, token: str, state: str) -> str:
    """A push notification from Google: plan a sync of that calendar (the answer must be fast;
    the sync runs as a job). An unknown channel or a wrong token is NotFound and changes nothing."""
    with read_session() as session:
        row = session.exec(select(CalendarMirror).where(col(CalendarMirror.channel_id) == channel_id)).first()
        known = row is not None and bool(row.channel_token) and bool(token)
        if not known or row is None or not hmac.compare_digest(str(row.channel_token), token):
            raise NotFound("No such notification channel.")
        calendar_id = row.calendar_id
    if state == "sync":  # the channel was just opened: nothing changed
        return "channel open"
    now = clock.now()
    with write_session() as session:
        row = session.get(CalendarMirror, calendar_id)
        if row is not None:
            row.notified_at = now
            session.add(row)
        jobs.enqueue(session, SYNC_JOB, f"{SYNC_JOB}:{calendar_id}", {"calendar_id": calendar_id}, rearm=True)
    return "sync planned"


def _apply(session: Session, calendar_id: str, changes: EventChanges, full: bool) -> None:
    if full:  # the table was emptied for this calendar: one bulk insert
        rows: dict[str, dict[str, Any]] = {}
        for item in changes.items:
            interval = busy_interval(item, changes.time_zone) if item.get("id") else None
            if interval is None:
                rows.pop(item.get("id") or "", None)
            else:
                rows[item["id"]] = {
                    "calendar_id": calendar_id,
                    "event_id": item["id"],
                    "start": interval[0],
                    "end": interval[1],
                }
        if rows:
            session.execute(insert(MirroredEvent), list(rows.values()))
        return
    existing = (
        {}
        if full
        else {
            e.event_id: e
            for e in session.exec(
                select(MirroredEvent).where(
                    col(MirroredEvent.calendar_id) == calendar_id,
                    col(MirroredEvent.event_id).in_([i.get("id") for i in changes.items if i.get("id")]),
                )
            ).all()
        }
    )
    for item in changes.items:
        event_id = item.get("id")
        if not event_id:
            continue
        interval = busy_interval(item, changes.time_zone)
        row = existing.pop(event_id, None)
        if interval is None:
            if row is not None:
                session.delete(row)
        elif row is None:
            session.add(
                MirroredEvent(calendar_id=calendar_id, event_id=event_id, start=interval[0], end=interval[1])
            )
        else:
            row.start, row.end = interval
            session.add(row)


def schedule_syncs(force: bool = False) -> int:
    """Plan a `calendar.sync` job for every active tutor calendar not synced within
    GCAL_SYNC_SECONDS (the worker calls this each round; it looks at most every few seconds)."""
    global _last_schedule
    if not force and _time.monotonic() - _last_schedule < SCHEDULE_EVERY_SECONDS:
        return 0
    _last_schedule = _time.monotonic()
    if not enabled():
        return 0
    now = clock.now()
    every = get_settings().gcal_sync_seconds
    with read_session() as session:
        calendars = set(session.exec(select(Tutor.calendar_id).where(col(Tutor.active))).all())
        rows = {r.calendar_id: r for r in session.exec(select(CalendarMirror)).all()}
    due = sorted(cid for cid in calendars if _sync_due(rows.get(cid), now, every))
    if due:
        with write_session() as session:
            for calendar_id in due:
                jobs.enqueue(
                    session, SYNC_JOB, f"{SYNC_JOB}:{calendar_id}", {"calendar_id": calendar_id}, rearm=True
                )
    return len(due)


def _sync_due(row: CalendarMirror | None, now: datetime, every: int) -> bool:
    if row is None or row.synced_at is None:
        return True
    if row.notified_at is not None and row.notified_at > row.synced_at:
        return True
    pushed = row.channel_expires_at is not None and row.channel_expires_at > now + CHANNEL_RENEW_BEFORE
    return (now - row.synced_at).total_seconds() >= every * (PUSH_POLL_FACTOR if pushed else 1)


def sync_job(ctx: jobs.JobContext) -> str:
    result = sync_calendar(ctx.payload["calendar_id"])
    kind = "full" if result.full else "incremental"
    return f"{kind} sync: {result.changed} changes, {result.events} busy events"


jobs.register(SYNC_JOB, sync_job)


@dataclass(frozen=True)
class MirrorState:
    """One line of the Integrations page: how old a tutor calendar's mirror is."""

    calendar_id: str
    state: str  # fresh (slots come from it) | stale (Google is asked live) | never (not synced yet)
    age_seconds: int | None
    events: int
    full_sync_at: datetime | None
    last_error: str | None
    last_error_at: datetime | None


def mirror_states(session: Session, now: datetime) -> list[MirrorState]:
    """Every active tutor calendar's mirror, for the console."""
    max_age = get_settings().gcal_mirror_max_age_seconds
    calendars = sorted(set(session.exec(select(Tutor.calendar_id).where(col(Tutor.active))).all()))
    rows = {r.calendar_id: r for r in session.exec(select(CalendarMirror)).all()}
    states = []
    for calendar_id in calendars:
        row = rows.get(calendar_id)
        synced = row.synced_at if row else None
        age = None if synced is None else int((now - synced).total_seconds())
        state = "never" if age is None else ("fresh" if age <= max_age else "stale")
        states.append(
            MirrorState(
                calendar_id,
                state,
                age,
                row.events if row else 0,
                row.full_sync_at if row else None,
                row.last_error if row else None,
                row.last_error_at if row else None,
            )
        )
    return states
