"""Benchmark: the slots a profile offers over 10 tutors with working hours and a year of closures.

`slots_for_profile` for the premium profile (21 days, every day) on the local calendar backend,
in-process on a temporary SQLite database: 10 tutors, each with weekly working hours (two or three
blocks a weekday, some Saturdays) and 300 short busy blocks in the window; a year of closures (the
package's Dutch public holidays, 18 imported school holidays over three regions with the profile
switched to `midden`, 10 business closures). Printed: the bot's suggestions (spread over days),
the console's full view (every free slot), and the same suggestions without hours and closures,
so the cost of issue 16's busy time shows. DESIGN sets no separate target; the bot's slots
request as a whole has p95 < 20 ms with a 20,000-event Google calendar.

Run from the repository root: `.venv/bin/python bench/bench_planning.py [runs]`.
"""

from __future__ import annotations

import random
import sys
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlmodel import SQLModel, select  # noqa: E402

from bench._stats import summarise  # noqa: E402
from core import clock  # noqa: E402
from core.booking import slots_for_profile  # noqa: E402
from core.calendars import set_backend  # noqa: E402
from core.calendars.local import LocalCalendarBackend  # noqa: E402
from core.config import Settings, get_settings, set_settings  # noqa: E402
from core.db import get_engine, read_session, reset_engines, write_session  # noqa: E402
from core.models import BusyBlock, Closure, PlanningProfile, Tutor, TutorHours  # noqa: E402
from core.profiles import seed_defaults  # noqa: E402

TUTORS = 10
BUSY_PER_TUTOR = 300
NOW = datetime(2026, 12, 14, 9, 0)  # Monday; Christmas in the horizon


def build(folder: Path) -> None:
    set_settings(
        Settings(_env_file=None, database_url=f"sqlite:///{folder}/bench.db", calendar_backend="local")
    )
    reset_engines()
    SQLModel.metadata.create_all(get_engine())
    set_backend(LocalCalendarBackend())
    tz = get_settings().tz
    now = NOW.replace(tzinfo=tz)
    clock.set_now(now)
    rng = random.Random(16)
    with write_session() as session:
        seed_defaults(session)
        premium = session.get_one(PlanningProfile, "premium")
        premium.school_holidays = "midden"
        for n in range(TUTORS):
            tutor = Tutor(name=f"Docent {n + 1}", calendar_id=f"docent{n + 1}@bench")
            session.add(tutor)
            session.flush()
            assert tutor.id is not None
            for weekday in range(6 if n % 3 == 0 else 5):
                start = rng.choice((8, 9, 10)) * 60
                blocks = [(start, start + 180), (start + 240, start + 420), (18 * 60, 21 * 60)]
                for s, e in blocks[: rng.choice((2, 3))]:
                    session.add(TutorHours(tutor_id=tutor.id, weekday=weekday, start_minute=s, end_minute=e))
            for _ in range(BUSY_PER_TUTOR):
                start = now + timedelta(minutes=15 * rng.randrange(0, 4 * 24 * 22))
                session.add(
                    BusyBlock(
                        tutor_id=tutor.id, start=start, end=start + timedelta(minutes=rng.choice((15, 30)))
                    )
                )
        year = date(2026, 12, 1)
        for region_offset, region in enumerate(("noord", "midden", "zuid")):
            for k in range(6):
                first = year + timedelta(days=60 * k + 7 * region_offset)
                session.add(
                    Closure(
                        start_date=first,
                        end_date=first + timedelta(days=8),
                        name=f"Vakantie {k + 1}",
                        source="import",
                        region=region,
                    )
                )
        for k in range(10):
            first = year + timedelta(days=35 * k + 3)
            session.add(Closure(start_date=first, end_date=first, name=f"Sluiting {k + 1}", source="admin"))


def time_runs(runs: int, fn) -> list[float]:  # noqa: ANN001
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


def main(runs: int = 100) -> int:
    with tempfile.TemporaryDirectory() as folder:
        build(Path(folder))
        with read_session() as session:
            profile = session.get_one(PlanningProfile, "premium")
            tutors = list(session.exec(select(Tutor)).all())
            hours = len(session.exec(select(TutorHours)).all())
            closures = len(session.exec(select(Closure)).all())

        def suggest(every: bool = False):  # noqa: ANN202
            with read_session() as session:
                return slots_for_profile(session, profile, tutors=tutors, every=every)

        slots, every = suggest(), suggest(every=True)
        assert len(slots) == profile.max_suggestions, slots
        print(
            f"premium profile, {TUTORS} tutors, {hours} working-hour blocks, {TUTORS * BUSY_PER_TUTOR} busy blocks, "
            f"{closures} closures + public holidays: {len(slots)} suggestions over "
            f"{len({s.start.date() for s in slots})} days, {len(every)} free slots in 21 days; {runs} runs"
        )
        for _ in range(5):
            suggest()
        summarise(
            f"slots_for_profile premium, {TUTORS} tutors with hours and a year of closures",
            time_runs(runs, suggest),
        )
        summarise(
            f"slots_for_profile premium, {TUTORS} tutors with hours and closures, full view",
            time_runs(max(20, runs // 4), lambda: suggest(every=True)),
        )
        with write_session() as session:  # the same without issue 16's busy time
            for row in session.exec(select(TutorHours)).all():
                session.delete(row)
            for row in session.exec(select(Closure)).all():
                session.delete(row)
            session.get_one(PlanningProfile, "premium").public_holidays = False
        with read_session() as session:
            profile = session.get_one(PlanningProfile, "premium")
        summarise(
            f"slots_for_profile premium, {TUTORS} tutors, no hours or closures", time_runs(runs, suggest)
        )
        reset_engines()
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 100))
