"""Benchmark: GoogleCalendarBackend.busy() over the premium window against a full calendar.

The local fake Google Calendar (tests/fakes/google_calendar.py) holds 2,000 busy events for one
tutor across the premium profile's 21 days; we time `busy()` for that range end to end (real
client library, HTTP, JSON, parsing, merging) and print p50/p95. DESIGN.md's target for the
whole `GET /api/v1/slots` request is p95 < 150 ms, so this part must stay well below it.

Run from the repository root: `.venv/bin/python bench/bench_google.py [runs]`.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlmodel import SQLModel  # noqa: E402

import core.models  # noqa: E402, F401  (registers the tables)
from core.calendars.google import GoogleCalendarBackend  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db import get_engine  # noqa: E402
from tests.fakes.google_calendar import FakeGoogleCalendar  # noqa: E402

CALENDAR = "tutor@lesplanner.test"
EVENTS = 2000
DAYS = 21  # the premium profile's days_ahead
TARGET_P95_MS = 150


def main(runs: int = 50) -> int:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    end = start + timedelta(days=DAYS + 1)
    with FakeGoogleCalendar() as fake, tempfile.TemporaryDirectory() as tmp:
        # 2,000 separate 10-minute events every 15 minutes: nothing merges, so Google answers
        # 2,000 busy periods (the worst case for the answer's size).
        step = (end - start) / EVENTS
        for i in range(EVENTS):
            s = start + step * i
            fake.add_event(CALENDAR, s, s + timedelta(minutes=10))

        database_url = f"sqlite:///{tmp}/bench.db"
        SQLModel.metadata.create_all(get_engine(database_url))  # for the status row
        settings = Settings(
            _env_file=None,
            database_url=database_url,
            calendar_backend="google",
            gcal_service_account_json=fake.service_account_json(),
            gcal_api_endpoint=fake.api_endpoint,
        )
        backend = GoogleCalendarBackend(settings)

        t0 = time.perf_counter()
        first = backend.busy([CALENDAR], start, end)  # signs in and builds the client
        cold_ms = (time.perf_counter() - t0) * 1000
        assert len(first[CALENDAR]) == EVENTS, len(first[CALENDAR])

        timings = []
        for _ in range(runs):
            t0 = time.perf_counter()
            busy = backend.busy([CALENDAR], start, end)
            timings.append((time.perf_counter() - t0) * 1000)
            assert len(busy[CALENDAR]) == EVENTS
        backend.flush_status()

    timings.sort()
    p50 = statistics.median(timings)
    p95 = timings[max(0, int(round(0.95 * len(timings))) - 1)]
    print(
        f"google busy() {EVENTS} events: p50 {p50:.1f} ms p95 {p95:.1f} ms "
        f"(target p95 < {TARGET_P95_MS} ms end to end; first call incl. sign-in {cold_ms:.0f} ms, "
        f"{runs} runs)"
    )
    return 0 if p95 < TARGET_P95_MS else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 50))
