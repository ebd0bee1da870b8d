"""The plumbing every outside service shares (Google Calendar, Stripe, Chatwoot), written once.

- `record_health(name, ok, detail)`: the one recorder of an `IntegrationStatus` row for the
  console. Cheap and never fatal: a state that did not change (same `ok`, same error) is
  rewritten at most every `every` seconds; a change is written at once. It writes in the
  caller's transaction (`session=`, as a savepoint), in its own, or off the calling thread
  (`background=True`, for callers that may hold the SQLite write lock; `flush_health` waits).
- `scrub(text)`: the text with every configured secret masked (core.config knows them all:
  API keys, tokens, the Google key in each form, database passwords).
- The retry policy: `is_transient(status)` says which HTTP answers are worth another try,
  `retry_after(value)` reads a Retry-After header (seconds or HTTP-date), `backoff_delay`
  is exponential backoff with a cap, jitter and the service's Retry-After as a floor.
- `TransportError(permanent=...)`: a failed call, classified once as transient or permanent.

Each client keeps only what is specific to its service (its API, its error texts).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from datetime import datetime
from email.utils import parsedate_to_datetime

from sqlmodel import Session

from core import clock
from core.config import Settings, get_settings
from core.config import scrub as _scrub_configured
from core.db import get_engine, write_session
from core.status import status_row

log = logging.getLogger("lesplanner.integrations")

DETAIL_MAX = 500  # characters of detail / last_error kept in the status row
REFRESH_SECONDS = 60.0  # an unchanged state is rewritten at most this often (by default)
TRANSIENT_STATUSES = frozenset({408, 429})  # plus every 5xx


# --- secrets ------------------------------------------------------------------------------------


def scrub(text: str, settings: Settings | None = None) -> str:
    """`text` with every configured secret replaced by ***, so no log line, error or status row
    carries one. Never fails: broken settings leave the text as it is."""
    return _scrub_configured(text, settings)


# --- errors and retries ---------------------------------------------------------------------------


class TransportError(Exception):
    """A call to an outside service failed. `permanent`: retrying the same request cannot
    help (refused, bad request); otherwise it is transient (timeout, dropped connection, 429,
    5xx) and `retry_after` is the wait the service asked for, if it said."""

    def __init__(self, message: str, *, permanent: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.retry_after = None if permanent else retry_after

    @property
    def retryable(self) -> bool:
        return not self.permanent


def is_transient(status: int) -> bool:
    """Whether an HTTP answer with this status is worth another try: 408, 429 and 5xx."""
    return status in TRANSIENT_STATUSES or status >= 500


def retry_after(value: str | None) -> float | None:
    """A Retry-After header in seconds (>= 0): delta-seconds or an HTTP-date; None if absent
    or unreadable."""
    if value is None or not str(value).strip():
        return None
    value = str(value).strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when: datetime = parsedate_to_datetime(value)
        return max((when - clock.now()).total_seconds(), 0.0)
    except (TypeError, ValueError, IndexError):
        return None


def backoff_delay(
    attempt: int, *, base: float, cap: float, retry_after: float | None = None, jitter: bool = True
) -> float:
    """Seconds to wait before retry `attempt` (0-based): base * 2**attempt, capped at `cap`,
    times a jitter factor in [0.5, 1) when `jitter`; never shorter than the service's
    Retry-After, which is capped the same way."""
    delay = min(cap, base * 2 ** min(max(attempt, 0), 60))
    if jitter:
        delay *= 0.5 + random.random() / 2
    if retry_after is not None:
        delay = max(delay, min(retry_after, cap))
    return delay


# --- health for the console -----------------------------------------------------------------------

_memo: dict[tuple[str, str], tuple[tuple, float]] = {}  # (url, name) -> state written, when
_memo_lock = threading.Lock()


def _due(key: tuple[str, str], state: tuple, every: float | None) -> bool:
    with _memo_lock:
        prev = _memo.get(key)
    if prev is None or prev[0] != state:
        return True
    return every is not None and time.monotonic() - prev[1] >= every


def _remember(key: tuple[str, str], state: tuple) -> None:
    with _memo_lock:
        _memo[key] = (state, time.monotonic())


def _write(session: Session, name: str, ok: bool, detail: str, error: str | None, at: datetime) -> None:
    row = status_row(session, name)
    row.ok = ok
    row.detail = detail
    if ok:
        row.last_ok_at = at
    if error is not None:
        row.last_error = error
        row.last_error_at = at
    session.add(row)


def record_health(
    name: str,
    ok: bool,
    detail: str,
    *,
    error: str | None = None,
    session: Session | None = None,
    settings: Settings | None = None,
    every: float | None = REFRESH_SECONDS,
    force: bool = False,
    watch_detail: bool = False,
    background: bool = False,
) -> None:
    """Note an outside service's health in its IntegrationStatus row; never raises.

    `error` (scrubbed like `detail`) becomes `last_error` with its time; an `ok` state sets
    `last_ok_at`. Written when the state (ok, error; with `watch_detail` the detail too)
    changed, when `force`, or when the last write of this state is `every` seconds old (None:
    only on a change)."""
    settings = settings or get_settings()
    detail = scrub(detail, settings)[:DETAIL_MAX]
    error = scrub(error, settings)[:DETAIL_MAX] if error is not None else None
    key = (settings.database_url, name)
    state = (ok, error, detail if watch_detail else None)
    if not force and not _due(key, state, every):
        return
    at = clock.now()
    if background:
        _remember(key, state)  # queued: a burst of calls queues one write
        _writer.put(settings.database_url, (name, ok, detail, error, at))
        return
    try:
        if session is not None:
            with session.begin_nested():
                _write(session, name, ok, detail, error, at)
        else:
            with write_session(get_engine(settings.database_url)) as own:
                _write(own, name, ok, detail, error, at)
        _remember(key, state)
    except Exception as exc:  # noqa: BLE001 - status bookkeeping must never break a call
        log.warning("could not record the %s status: %s", name, type(exc).__name__)


def flush_health(timeout: float = 5.0) -> bool:
    """Wait until the queued background status writes are done (tests, shutdown)."""
    return _writer.flush(timeout)


class _BackgroundWriter:
    """One daemon thread that performs queued status writes, the newest per (url, name); it
    ends after 30 s without work and the next write starts a new one. A failed write is logged
    and forgotten."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._pending: dict[tuple[str, str], tuple] = {}
        self._writing = False
        self._thread: threading.Thread | None = None

    def put(self, url: str, item: tuple) -> None:
        with self._cond:
            self._pending[(url, item[0])] = item
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="integration-status", daemon=True)
                self._thread.start()
            self._cond.notify_all()

    def flush(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending or self._writing:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
        return True

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending:
                    if not self._cond.wait(timeout=30.0) and not self._pending:
                        self._thread = None  # idle: end; put() starts a new one
                        return
                key = next(iter(self._pending))
                item, self._writing = self._pending.pop(key), True
            try:
                with write_session(get_engine(key[0])) as session:
                    _write(session, *item)
            except Exception as exc:  # noqa: BLE001 - the status must never break a call
                log.warning("could not record the %s status: %s", item[0], type(exc).__name__)
            finally:
                with self._cond:
                    self._writing = False
                    self._cond.notify_all()


_writer = _BackgroundWriter()
