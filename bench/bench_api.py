"""Benchmark: the receiver's bot API over real HTTP, and the one-slot booking race.

1. Latency. A uvicorn process serves a fresh SQLite database (migrated with
   `python -m core.cli migrate`, local calendar, three tutors with 300 time-off blocks, profiles
   confirming without payment). We time ~200 `GET /api/v1/slots` (each for a conversation seen
   for the first time, so it includes registering it) and ~200 `POST /api/v1/bookings` on
   distinct free slots for distinct conversations, one request at a time, and print p50/p95
   against DESIGN.md's targets (slots p95 < 150 ms, bookings p95 < 200 ms).
2. The race. Two uvicorn processes share another SQLite file with one tutor; 50 concurrent
   booking requests for the same slot, half to each process: exactly one 201, 49 × 409, and no
   two held/confirmed lessons overlap in the database.

Exits 1 when a target is missed or the race goes wrong.

    .venv/bin/python bench/bench_api.py [--requests 200]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from threading import Barrier

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlmodel import select  # noqa: E402

from bench._stats import summarise  # noqa: E402
from core import clock  # noqa: E402
from core.config import Settings, get_settings, set_settings  # noqa: E402
from core.db import read_session, reset_engines, write_session  # noqa: E402
from core.models import BLOCKING_STATUSES, BusyBlock, Lesson, PlanningProfile, Tutor  # noqa: E402
from core.slots import generate_slots, window_bounds  # noqa: E402
from tests.procs import free_port  # noqa: E402

TOKEN = "bench-bot-token-0123456789"
SLOTS_TARGET_MS = 150
BOOKINGS_TARGET_MS = 200
PROFILE = "existing"  # 09:00-21:00 on weekdays, 14 days ahead, hourly


def environment(database_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    keep = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("STRIPE_", "GCAL_", "CHATWOOT_", "CALENDAR_", "DATABASE_", "BOT_"))
    }
    # The rate limits are off: the benchmark is one client sending hundreds of requests a minute.
    return {
        **keep,
        "DATABASE_URL": database_url,
        "CALENDAR_BACKEND": "local",
        "BOT_API_TOKEN": TOKEN,
        "BOT_RATE_LIMIT_PER_TOKEN": "0",
        "BOT_RATE_LIMIT_PER_ADDRESS": "0",
        "TIMEZONE": "Europe/Amsterdam",
        **(extra or {}),
    }


def prepare_database(folder: Path, tutors: int, busy_blocks: int) -> str:
    """Migrate a fresh database the operator's way, then add tutors and time off in-process."""
    url = f"sqlite:///{folder}/lesplanner.db"
    subprocess.run(
        [sys.executable, "-m", "core.cli", "migrate"],
        cwd=ROOT,
        env=environment(url),
        check=True,
        capture_output=True,
    )
    set_settings(Settings(_env_file=None, database_url=url))
    reset_engines()
    rng = random.Random(7)
    now = clock.now()
    with write_session() as session:
        for profile in session.exec(select(PlanningProfile)).all():
            profile.requires_payment = False
            session.add(profile)
        existing = session.exec(select(Tutor)).all()
        for n in range(len(existing), tutors):
            session.add(Tutor(name=f"Docent {n + 1}", calendar_id=f"docent{n + 1}@lesplanner.test"))
        session.flush()
        tutor_ids = [t.id for t in session.exec(select(Tutor)).all()]
        for _ in range(busy_blocks):
            start = now + timedelta(hours=rng.randrange(24, 24 * 20))
            start = start.replace(minute=rng.choice((0, 30)), second=0, microsecond=0)
            session.add(
                BusyBlock(
                    tutor_id=rng.choice(tutor_ids),
                    start=start,
                    end=start + timedelta(minutes=rng.choice((30, 60, 90))),
                    reason="bench",
                )
            )
    return url


def bookable_starts(count: int) -> list[tuple[str, str]]:
    """(start, end) pairs, each start repeated once per tutor free then, so every booking can win."""
    tz = get_settings().tz
    now = clock.now() + timedelta(minutes=5)  # the requests come a little later
    with read_session() as session:
        profile = session.get(PlanningProfile, PROFILE)
        tutors = session.exec(select(Tutor)).all()
        lo, hi = window_bounds(profile, now, tz)
        capacity: Counter = Counter()
        for tutor in tutors:
            busy = [
                (b.start, b.end)
                for b in session.exec(
                    select(BusyBlock).where(
                        BusyBlock.tutor_id == tutor.id, BusyBlock.end > lo, BusyBlock.start < hi
                    )
                )
            ]
            for slot in generate_slots(profile, now, busy, tz, every=True):
                capacity[(slot.start, slot.end)] += 1
    pairs = [
        (s.astimezone(tz).isoformat(), e.astimezone(tz).isoformat())
        for (s, e), n in sorted(capacity.items())
        for _ in range(n)
    ]
    return pairs[:count]


class Receiver:
    """A uvicorn process serving the receiver on a free port."""

    def __init__(self, database_url: str, log: Path, extra_env: dict[str, str] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._log = log.open("w")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "uvicorn",
                "receiver.main:app",
                "--host",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--log-level",
                "warning",
            ],
            cwd=ROOT,
            env=environment(database_url, extra_env),
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the receiver did not start; see {log}")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        self._log.close()


def client(base_url: str) -> httpx.Client:
    return httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)


def latency(folder: Path, requests: int) -> list[dict]:
    url = prepare_database(folder, tutors=3, busy_blocks=300)
    starts = bookable_starts(requests)
    receiver = Receiver(url, folder / "receiver.log")
    try:
        with client(receiver.url) as http:
            for i in range(10):  # warm up connections, imports and caches
                http.get("/api/v1/slots", params={"conversation_id": f"warm-{i}", "contact_id": f"warm-{i}"})
            slot_times = []
            for i in range(requests):
                t0 = time.perf_counter()
                response = http.get(
                    "/api/v1/slots",
                    params={"conversation_id": f"conv-{i}", "contact_id": f"contact-{i}", "profile": PROFILE},
                )
                slot_times.append(time.perf_counter() - t0)
                assert response.status_code == 200 and response.json()["slots"], response.text
            booking_times, statuses = [], Counter()
            for i, (start, end) in enumerate(starts):
                t0 = time.perf_counter()
                response = http.post(
                    "/api/v1/bookings",
                    json={
                        "conversation_id": f"conv-{i}",
                        "contact_id": f"contact-{i}",
                        "start": start,
                        "end": end,
                        "title": "Bijles",
                        "profile": PROFILE,
                    },
                )
                booking_times.append(time.perf_counter() - t0)
                statuses[response.status_code] += 1
    finally:
        receiver.stop()
    print(f"  bookings answered: {dict(statuses)} on {len(starts)} distinct free (slot, tutor) places")
    return [
        summarise(f"GET /api/v1/slots ({requests} requests)", slot_times, SLOTS_TARGET_MS),
        summarise(f"POST /api/v1/bookings ({len(starts)} requests)", booking_times, BOOKINGS_TARGET_MS)
        | {"passed_all": statuses == Counter({201: len(starts)})},
    ]


def google_slots(folder: Path, requests: int, tutors: int = 10, events_per_tutor: int = 200) -> dict:
    """GET /api/v1/slots end to end with the Google backend: the fake answers 2,000 busy
    intervals (10 tutors × 200 events of 30-90 minutes in their 08:00-22:00 days) over the
    premium profile's 21 days, in one FreeBusy call per request."""
    from tests.fakes.google_calendar import FakeGoogleCalendar

    url = prepare_database(folder, tutors=tutors, busy_blocks=0)
    rng = random.Random(11)
    tz = get_settings().tz
    with FakeGoogleCalendar() as fake:
        with write_session() as session:
            for tutor in session.exec(select(Tutor)).all():
                tutor.calendar_id = f"docent{tutor.id}@lesplanner.test"
                session.add(tutor)
                today = clock.now().astimezone(tz).replace(hour=0, minute=0, second=0, microsecond=0)
                for _ in range(events_per_tutor):
                    day = today + timedelta(days=rng.randrange(0, 22))
                    start = day.replace(hour=rng.randrange(8, 21), minute=rng.choice((0, 30)))
                    fake.add_event(
                        tutor.calendar_id, start, start + timedelta(minutes=rng.choice((30, 60, 90)))
                    )
        receiver = Receiver(
            url,
            folder / "receiver.log",
            {
                "CALENDAR_BACKEND": "google",
                "GCAL_SERVICE_ACCOUNT_JSON": fake.service_account_json(),
                "GCAL_API_ENDPOINT": fake.api_endpoint,
            },
        )
        try:
            with client(receiver.url) as http:
                busy_seen = 0
                for i in range(5):  # sign-in, discovery and connections warm up
                    r = http.get(
                        "/api/v1/slots",
                        params={
                            "conversation_id": f"gwarm-{i}",
                            "contact_id": f"gwarm-{i}",
                            "profile": "premium",
                        },
                    )
                    assert r.status_code == 200, r.text
                times = []
                for i in range(requests):
                    t0 = time.perf_counter()
                    r = http.get(
                        "/api/v1/slots",
                        params={
                            "conversation_id": f"gconv-{i}",
                            "contact_id": f"gcontact-{i}",
                            "profile": "premium",
                        },
                    )
                    times.append(time.perf_counter() - t0)
                    assert r.status_code == 200 and r.json()["slots"], r.text
                busy_seen = sum(len(fake.events(f"docent{t}@lesplanner.test")) for t in range(1, tutors + 1))
        finally:
            receiver.stop()
    return summarise(
        f"GET /api/v1/slots, Google backend, {busy_seen} busy events ({requests} requests)",
        times,
        SLOTS_TARGET_MS,
    )


def race(folder: Path, contenders: int = 50) -> bool:
    url = prepare_database(folder, tutors=1, busy_blocks=0)
    receivers = [Receiver(url, folder / f"receiver-{n}.log") for n in (1, 2)]
    try:
        with client(receivers[0].url) as http:
            slot = http.get(
                "/api/v1/slots",
                params={"conversation_id": "probe", "contact_id": "probe", "profile": PROFILE},
            ).json()["slots"][0]
        barrier = Barrier(contenders)

        def book(i: int) -> int:
            with client(receivers[i % 2].url) as http:
                http.get("/healthz")  # connect before the start signal
                barrier.wait()
                return http.post(
                    "/api/v1/bookings",
                    json={
                        "conversation_id": f"race-{i}",
                        "contact_id": f"racer-{i}",
                        "start": slot["start"],
                        "end": slot["end"],
                        "title": "Race",
                        "profile": PROFILE,
                    },
                ).status_code

        t0 = time.perf_counter()
        with ThreadPoolExecutor(contenders) as pool:
            codes = Counter(pool.map(book, range(contenders)))
        elapsed = time.perf_counter() - t0
    finally:
        for receiver in receivers:
            receiver.stop()
    with read_session() as session:
        lessons = session.exec(
            select(Lesson).where(Lesson.status.in_(BLOCKING_STATUSES)).order_by(Lesson.tutor_id, Lesson.start)
        ).all()
    overlaps = sum(
        1 for a, b in zip(lessons, lessons[1:], strict=False) if a.tutor_id == b.tutor_id and b.start < a.end
    )
    ok = codes == Counter({201: 1, 409: contenders - 1}) and overlaps == 0 and len(lessons) == 1
    print(
        f"race: {contenders} concurrent bookings of {slot['start']} via 2 processes in {elapsed * 1000:.0f} ms: "
        f"{dict(sorted(codes.items()))}, {len(lessons)} lesson(s), {overlaps} overlap(s) "
        f"(target: one 201, {contenders - 1} × 409, no overlap: {'PASS' if ok else 'FAIL'})"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lesplanner-bench-api-") as tmp:
        (Path(tmp) / "latency").mkdir()
        (Path(tmp) / "race").mkdir()
        (Path(tmp) / "google").mkdir()
        results = latency(Path(tmp) / "latency", args.requests)
        reset_engines()
        results.append(google_slots(Path(tmp) / "google", max(20, args.requests // 2)))
        reset_engines()
        race_ok = race(Path(tmp) / "race")
        reset_engines()
    passed = all(r["passed"] and r.get("passed_all", True) for r in results) and race_ok
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
