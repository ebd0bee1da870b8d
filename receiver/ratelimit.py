"""In-process rate limits: a token bucket per key (a token, a client address).

A bucket holds up to `per_minute` requests and refills at `per_minute` a minute, so a key may
send a burst of `per_minute` requests and then one every 60/`per_minute` seconds; a whole
minute of silence gives it the whole allowance back. Each bucket is one number, the moment it
will be full again (the "theoretical arrival time" of GCRA, the usual way to run a token bucket
without counters that drift): a request may go when that moment is less than a window minus
one interval away, and moves it one interval on. A bucket that is full carries no information
and is dropped, and at most `max_keys` are kept (the least recently used go first), so a flood
from many addresses cannot grow the memory without bound; a forgotten key simply starts over
with a full bucket.

The buckets live in this process. A receiver runs as one or a few processes, and the limits are
a guard against a runaway bot, a leaked token and token guessing, not an exact quota: with N
processes a key can make at most N times the limit. A shared store (Redis, or a row per key in
the database, which on SQLite would serialise every bot request behind a write) would make the
limit exact at the price of a round trip per request and another service to run.

The clock is monotonic (not core.clock, which tests freeze and which follows the wall clock);
tests pass their own.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

WINDOW_SECONDS = 60.0
SLACK_SECONDS = 1e-6  # an interval like 60/7 s added up seven times is not exactly 60 s


class RateLimiter:
    """Token buckets per key. A limit of 0 (or less) means no limit."""

    def __init__(self, now: Callable[[], float] = time.monotonic, max_keys: int = 50_000) -> None:
        self._now = now
        self._max_keys = max_keys
        self._full_at: OrderedDict[Hashable, float] = OrderedDict()  # least recently used first
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._full_at)

    def wait(self, key: Hashable, per_minute: int) -> float | None:
        """Seconds until `key` may make a request, or None when it may now. Takes nothing."""
        if per_minute <= 0:
            return None
        with self._lock:
            now = self._now()
            wait = self._wait(self._full_at.get(key, now), now, per_minute)
            return wait if wait > SLACK_SECONDS else None

    def take(self, key: Hashable, per_minute: int) -> float | None:
        """Count one request of `key`: None when it was within the limit, else the seconds until
        the next one would be (and nothing is counted)."""
        if per_minute <= 0:
            return None
        with self._lock:
            now = self._now()
            self._forget_full(now)
            full_at = max(self._full_at.pop(key, now), now)
            wait = self._wait(full_at, now, per_minute)
            refused = wait > SLACK_SECONDS
            self._full_at[key] = full_at if refused else full_at + WINDOW_SECONDS / per_minute
            while len(self._full_at) > self._max_keys:
                self._full_at.popitem(last=False)
            return wait if refused else None

    @staticmethod
    def _wait(full_at: float, now: float, per_minute: int) -> float:
        # Room for one more request while the bucket is full again within a window minus one interval.
        interval = WINDOW_SECONDS / per_minute
        return full_at - (WINDOW_SECONDS - interval) - now

    def _forget_full(self, now: float) -> None:
        # Least recently used first; stopping at the first that is not full yet only delays the rest.
        while self._full_at:
            key, full_at = next(iter(self._full_at.items()))
            if full_at > now:
                break
            del self._full_at[key]


def retry_after_seconds(wait: float) -> int:
    """A `Retry-After` value: whole seconds, rounded up, at least 1."""
    return max(1, math.ceil(wait - SLACK_SECONDS))
