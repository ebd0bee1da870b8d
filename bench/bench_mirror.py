"""Benchmark: the bot's slots from the calendar mirror at 20,000 Google events (issue 17).

One tutor's Google calendar (the local fake) holds 20,000 busy events over the premium profile's
21 days. After one full sync, `slots_for_profile` (busy time + the slot engine, what
GET /api/v1/slots does without the receiver's own HTTP) is timed in steady state: the worker's
polling sync runs every GCAL_SYNC_SECONDS of wall time alongside (incremental: a few changed
events), and every Google call the fake sees during the run is counted.

Targets (DESIGN / issue 17): p95 < 20 ms, and at most 1 Google call per 100 slot requests in
steady state. Also printed: the full sync of 20,000 events and one incremental sync.

Run from the repository root: `.venv/bin/python bench/bench_mirror.py [requests]`.
"""

from __future__ import annotations

import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _stats import summarise  # noqa: E402
from run_all import record_result  # noqa: E402
from sqlmodel import SQLModel, select  # noqa: E402

import core.models  # noqa: E402, F401  (registers the tables)
from core import clock  # noqa: E402
from core.booking import slots_for_profile  # noqa: E402
from core.calendars import mirror, set_backend  # noqa: E402
from core.calendars.google import GoogleCalendarBackend  # noqa: E402
from core.config import Settings, set_settings  # noqa: E402
from core.db import get_engine, read_session, write_session  # noqa: E402
from core.models import PlanningProfile, Tutor  # noqa: E402
from core.profiles import seed_defaults  # noqa: E402
from tests.fakes.google_calendar import FakeGoogleCalendar  # noqa: E402

CALENDAR = "tutor@lesplanner.test"
EVENTS = 20_000
DAYS = 21
TARGET_P95_MS = 20
TARGET_CALLS_PER_100 = 1.0
SYNC_SECONDS = 30


def main(requests: int = 300) -> int:
    start = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    with FakeGoogleCalendar() as fake, tempfile.TemporaryDirectory() as tmp:
        # 20,000 separate events, packed into each day's mornings (7-12) and evenings (17-23):
        # nothing merges, and the afternoons stay free for the premium profile's 90 minutes.
        per_day = EVENTS // (DAYS + 1) + 1
        made = 0
        for day in range(DAYS + 1):
            midnight = start.replace(hour=0) + timedelta(days=day)
            windows = [(midnight + timedelta(hours=7), 5 * 3600), (midnight + timedelta(hours=17), 6 * 3600)]
            gap = sum(w for _, w in windows) / per_day
            for i in range(per_day):
                if made == EVENTS:
                    break
                offset = i * gap
                base, width = windows[0] if offset < windows[0][1] else (windows[1][0], windows[1][1])
                at = base + timedelta(seconds=offset if base == windows[0][0] else offset - windows[0][1])
                fake.add_event(CALENDAR, at, at + timedelta(seconds=gap * 0.8))
                made += 1
        settings = Settings(
            _env_file=None,
            database_url=f"sqlite:///{tmp}/bench.db",
            calendar_backend="google",
            gcal_service_account_json=fake.service_account_json(),
            gcal_api_endpoint=fake.api_endpoint,
            gcal_sync_seconds=SYNC_SECONDS,
        )
        set_settings(settings)
        engine = get_engine()
        SQLModel.metadata.create_all(engine)
        with write_session() as s:
            seed_defaults(s)
            s.add(Tutor(name="Anna", email="anna@lesplanner.test", calendar_id=CALENDAR))
        backend = GoogleCalendarBackend(settings)
        set_backend(backend)

        t0 = time.perf_counter()
        full = mirror.sync_calendar(CALENDAR)
        full_ms = (time.perf_counter() - t0) * 1000
        print(f"mirror full sync: {full.events} busy events in {full_ms:.0f} ms")
        fake.add_event(CALENDAR, start + timedelta(days=3, minutes=7), start + timedelta(days=3, minutes=50))
        t0 = time.perf_counter()
        mirror.sync_calendar(CALENDAR)
        print(f"mirror incremental sync (1 change): {(time.perf_counter() - t0) * 1000:.1f} ms")

        with read_session() as s:
            profile = s.get(PlanningProfile, "premium")
            tutors = list(s.exec(select(Tutor)).all())

        before = len(fake.requests)
        samples = []
        last_sync = time.monotonic()
        syncs = 0
        for _ in range(requests):
            if time.monotonic() - last_sync >= SYNC_SECONDS:  # the worker's poll, in steady state
                mirror.sync_calendar(CALENDAR)
                last_sync, syncs = time.monotonic(), syncs + 1
            t0 = time.perf_counter()
            with read_session() as s:
                slots = slots_for_profile(s, profile, clock.now(), tutors=tutors)
            samples.append(time.perf_counter() - t0)
            assert slots, "the premium profile has free time between the events"
        calls = len(fake.requests) - before
        backend.flush_status()

    result = summarise(f"slots via the mirror, {EVENTS:,} Google events", samples, TARGET_P95_MS)
    per_100 = calls / requests * 100
    calls_ok = per_100 <= TARGET_CALLS_PER_100
    print(
        f"mirror google calls: {calls} for {requests} slot requests ({syncs} polling syncs) = "
        f"{per_100:.2f} per 100 requests (target: <= {TARGET_CALLS_PER_100:g} per 100: "
        f"{'PASS' if calls_ok else 'FAIL'})"
    )
    record_result(
        f"slots via mirror ({EVENTS:,} Google events)",
        p50_ms=result["p50_ms"],
        p95_ms=result["p95_ms"],
        target=f"p95 < {TARGET_P95_MS} ms",
        passed=result["passed"],
    )
    record_result(
        "Google calls per 100 slot requests",
        throughput=per_100,
        unit="calls/100",
        target=f"<= {TARGET_CALLS_PER_100:g}",
        passed=calls_ok,
    )
    return 0 if result["passed"] and calls_ok else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 300))
