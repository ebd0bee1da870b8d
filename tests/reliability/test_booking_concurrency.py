"""Specification: two requests for one slot can never both win — not across threads, not across
processes (the console and the receiver share one database).

Every contender books Tuesday 1 December 2026 10:00 for its own conversation at the same moment;
exactly one gets the lesson, everyone else hears SlotTaken, and the database holds one lesson.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import col, select

from core.booking import book_slot, suggest_slots
from core.db import read_session, write_session
from core.errors import SlotTaken
from core.models import BLOCKING_STATUSES, Lesson, PlanningProfile, Tutor
from tests.conftest import AMS

NOW = datetime(2026, 11, 30, 9, 0, tzinfo=AMS)
SLOT = datetime(2026, 12, 1, 10, 0, tzinfo=AMS)
REPO_ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def world(engine, frozen_now):
    frozen_now(NOW)
    with write_session() as session:
        for profile in session.exec(select(PlanningProfile)):
            profile.requires_payment = False
        session.add(Tutor(name="Anna", email="anna@lesplanner.test", calendar_id="anna-calendar"))
    return engine


def contend(conversation_ids: list[str]) -> dict[str, str]:
    """Book SLOT for every conversation at once, one thread each; outcome per conversation."""
    barrier = threading.Barrier(len(conversation_ids))
    outcomes: dict[str, str] = {}

    def run(conversation_id: str) -> None:
        barrier.wait()
        try:
            result = book_slot(
                conversation_id,
                SLOT,
                SLOT + timedelta(hours=1),
                "Les",
                "",
                contact_id=f"contact-{conversation_id}",
            )
            outcomes[conversation_id] = "booked" if result.created else "repeat"
        except SlotTaken:
            outcomes[conversation_id] = "taken"
        except Exception as exc:  # noqa: BLE001 - reported, and fails the test below
            outcomes[conversation_id] = f"error: {exc!r}"

    threads = [threading.Thread(target=run, args=(cid,)) for cid in conversation_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return outcomes


def blocking_lessons() -> list[Lesson]:
    with read_session() as session:
        return list(session.exec(select(Lesson).where(col(Lesson.status).in_(BLOCKING_STATUSES))).all())


def assert_no_overlaps(lessons: list[Lesson]) -> None:
    for i, a in enumerate(lessons):
        for b in lessons[i + 1 :]:
            if a.tutor_id == b.tutor_id:
                assert not (a.start < b.end and b.start < a.end), (a, b)


def test_twenty_threads_booking_one_slot_give_exactly_one_lesson():
    outcomes = contend([f"thread-{n}" for n in range(20)])

    assert sorted(outcomes.values()) == ["booked"] + ["taken"] * 19, outcomes
    lessons = blocking_lessons()
    assert len(lessons) == 1
    winner = next(cid for cid, outcome in outcomes.items() if outcome == "booked")
    assert lessons[0].conversation_id == winner
    assert lessons[0].start == SLOT


CHILD = textwrap.dedent(
    """
    import json, sys, threading, time
    from datetime import datetime, timedelta

    from core import clock
    from core.config import Settings, set_settings

    database_url, now, slot, go_file, prefix, threads = sys.argv[1:7]
    set_settings(Settings(_env_file=None, database_url=database_url))
    clock.set_now(datetime.fromisoformat(now))

    from core.booking import book_slot, suggest_slots
    from core.db import get_engine
    from core.errors import SlotTaken

    start = datetime.fromisoformat(slot)
    get_engine().connect().close()  # open the database before the starting signal
    barrier = threading.Barrier(int(threads))
    outcomes = {}

    def run(n):
        conversation_id = f"{prefix}-{n}"
        barrier.wait()
        try:
            result = book_slot(conversation_id, start, start + timedelta(hours=1), "Les", "",
                               contact_id=f"contact-{conversation_id}")
            outcomes[conversation_id] = "booked" if result.created else "repeat"
        except SlotTaken:
            outcomes[conversation_id] = "taken"
        except Exception as exc:
            outcomes[conversation_id] = f"error: {exc!r}"

    print("ready", flush=True)
    deadline = time.monotonic() + 30
    import os
    while not os.path.exists(go_file) and time.monotonic() < deadline:
        time.sleep(0.002)
    workers = [threading.Thread(target=run, args=(n,)) for n in range(int(threads))]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    print(json.dumps(outcomes), flush=True)
    """
)


def test_two_processes_with_threads_booking_one_slot_give_exactly_one_lesson(settings, tmp_path):
    go_file = tmp_path / "go"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    children = [
        subprocess.Popen(
            [
                sys.executable,
                "-c",
                CHILD,
                settings.database_url,
                NOW.isoformat(),
                SLOT.isoformat(),
                str(go_file),
                f"process-{p}",
                "6",
            ],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for p in range(2)
    ]
    try:
        for child in children:  # both have imported everything and opened the database
            assert child.stdout.readline().strip() == "ready", child.stderr.read()
        go_file.touch()
        outcomes: dict[str, str] = {}
        for child in children:
            out, err = child.communicate(timeout=60)
            assert child.returncode == 0, err
            outcomes.update(json.loads(out.strip().splitlines()[-1]))
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()

    assert len(outcomes) == 12
    assert sorted(outcomes.values()) == ["booked"] + ["taken"] * 11, outcomes
    lessons = blocking_lessons()
    assert len(lessons) == 1
    assert_no_overlaps(lessons)
    with read_session() as session:
        every_lesson = session.exec(select(Lesson)).all()
    assert_no_overlaps([lesson for lesson in every_lesson if lesson.status in BLOCKING_STATUSES])


def test_twenty_concurrent_slot_requests_all_get_the_same_answer_quickly():
    # Regression: each request held a pooled connection while the embedded calendar asked for
    # a second one, so 15+ concurrent requests stalled until the pool timed out (30 s).
    book_slot("first", SLOT, SLOT + timedelta(hours=1), contact_id="contact-first")
    barrier = threading.Barrier(20)
    answers: list[object] = []

    def run(n: int) -> None:
        barrier.wait()
        try:
            answers.append(tuple(s.start for s in suggest_slots(f"conv-{n}", contact_id=f"c-{n}").slots))
        except Exception as exc:  # noqa: BLE001
            answers.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(20)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert time.monotonic() - started < 10
    assert len(answers) == 20 and len(set(answers)) == 1, answers
    assert SLOT not in answers[0] and len(answers[0]) == 6


def test_contenders_for_different_slots_all_win():
    barrier = threading.Barrier(8)
    results: list[object] = []

    def run(n: int) -> None:
        start = SLOT + timedelta(hours=n)  # 10:00 .. 17:00
        barrier.wait()
        try:
            results.append(
                book_slot(
                    f"conv-{n}", start, start + timedelta(hours=1), contact_id=f"contact-{n}"
                ).lesson.status
            )
        except Exception as exc:  # noqa: BLE001
            results.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert results == ["confirmed"] * 8
    assert len(blocking_lessons()) == 8
    assert_no_overlaps(blocking_lessons())
    assert time.monotonic() - started < 20
