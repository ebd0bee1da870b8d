"""Benchmark: Stripe webhooks handled concurrently on SQLite, each exactly once.

1,000 signed events (900 distinct, 10% repeats shuffled in among them) go to
`core.payments.handle_webhook` from a pool of worker threads, on a fresh SQLite database in a
temporary directory. The distinct events are 600 paid Checkout Sessions (each confirms a held
lesson through core.booking), 200 expired ones (each releases its hold) and 100 of a type
Lesplanner ignores. The sessions are real ones made by `create_payment_link` in the fake Stripe
(tests/fakes/stripe_server.py); only the handling is timed.

Prints throughput and p50/p95 latency per event, then verifies that every event is stored once,
every payment and lesson reached the right state and every customer message was queued once.
Exits 1 when a check fails or throughput is under the target (200 events/s, DESIGN.md).

    .venv/bin/python bench/bench_webhooks.py [--events 1000] [--workers 8]
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlmodel import SQLModel, func, select  # noqa: E402

from bench._stats import summarise  # noqa: E402
from core import payments  # noqa: E402
from core.config import Settings, set_settings  # noqa: E402
from core.db import get_engine, read_session, write_session  # noqa: E402
from core.models import (  # noqa: E402
    Contact,
    Conversation,
    Job,
    Lesson,
    OutboxMessage,
    Payment,
    StripeEvent,
    Tutor,
)
from core.profiles import seed_defaults  # noqa: E402
from tests.fakes.stripe_server import FakeStripe  # noqa: E402

TARGET_EVENTS_PER_SECOND = 200
SECRET = "whsec_bench_0123456789abcdef"


def setup(fake: FakeStripe, paid: int, expired: int) -> tuple[list[str], list[str]]:
    """Held lessons with open Checkout Sessions; returns (session ids to pay, to expire)."""
    now = datetime.now(UTC)
    total = paid + expired
    tutors = 10
    with write_session() as session:
        seed_defaults(session)
        tutor_ids = []
        for t in range(tutors):
            tutor = Tutor(name=f"Tutor {t}", calendar_id=f"tutor-{t}")
            session.add(tutor)
            session.flush()
            tutor_ids.append(tutor.id)
        lesson_ids = []
        for i in range(total):
            contact, conversation = f"contact-{i}", f"conv-{i}"
            session.add(Contact(id=contact, name=f"Leerling {i}"))
            session.add(Conversation(id=conversation, contact_id=contact))
            start = (now + timedelta(days=2, hours=i // tutors)).replace(minute=0, second=0, microsecond=0)
            lesson = Lesson(
                conversation_id=conversation,
                contact_id=contact,
                tutor_id=tutor_ids[i % tutors],
                profile_name="existing",
                start=start,
                end=start + timedelta(hours=1),
                title=f"Les {i}",
                status="held",
                hold_expires_at=now + timedelta(hours=1),
            )
            session.add(lesson)
            session.flush()
            lesson_ids.append(lesson.id)
    session_ids = []
    for i, lesson_id in enumerate(lesson_ids):
        payment = payments.create_payment_link(
            "existing",
            60,
            f"lesson-{lesson_id}",
            f"conv-{i}",
            f"Leerling {i}",
            "bijles",
            "havo",
            "wiskunde",
            contact_id=f"contact-{i}",
            lesson_id=lesson_id,
            internal=True,  # booking's own order ids (lesson-<id>), as core.booking makes them
        )
        session_ids.append(payment.checkout_session_id)
    return session_ids[:paid], session_ids[paid:]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1000, help="deliveries in total (default 1000)")
    parser.add_argument("--workers", type=int, default=8, help="concurrent senders (default 8)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    rng = random.Random(args.seed)

    repeats = args.events // 10
    distinct = args.events - repeats
    paid, expired = round(distinct * 2 / 3), round(distinct * 2 / 9)
    other = distinct - paid - expired

    with tempfile.TemporaryDirectory(prefix="lesplanner-bench-") as tmp, FakeStripe() as fake:
        fake.add_price("price_standard_60", 4500)
        set_settings(
            Settings(
                _env_file=None,
                database_url=f"sqlite:///{tmp}/bench.db",
                stripe_api_key=fake.api_key,
                stripe_api_base=fake.url,
                stripe_webhook_secret=SECRET,
                standard_price_id_60="price_standard_60",
                checkout_success_url="https://lesplanner.test/ok",
                checkout_cancel_url="https://lesplanner.test/cancel",
            )
        )
        SQLModel.metadata.create_all(get_engine())

        t0 = time.perf_counter()
        to_pay, to_expire = setup(fake, paid, expired)
        events = [fake.complete_session(s) for s in to_pay] + [fake.expire_session(s) for s in to_expire]
        events += [
            fake.event("payment_intent.created", {"id": f"pi_bench_{i}", "object": "payment_intent"})
            for i in range(other)
        ]
        deliveries = events + rng.sample(events, repeats)
        rng.shuffle(deliveries)
        signed = [fake.signed(e, SECRET) for e in deliveries]
        print(
            f"setup: {len(to_pay) + len(to_expire)} held lessons with Checkout Sessions, "
            f"{len(signed)} signed deliveries in {time.perf_counter() - t0:.1f}s"
        )

        def deliver(item: tuple[bytes, str]) -> tuple[str, float]:
            started = time.perf_counter()
            result = payments.handle_webhook(*item)
            return result.status, time.perf_counter() - started

        load_before = os.getloadavg()[0]
        t0, cpu0 = time.perf_counter(), time.process_time()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            outcomes = list(pool.map(deliver, signed))
        elapsed, cpu = time.perf_counter() - t0, time.process_time() - cpu0

        rate = len(outcomes) / elapsed
        statuses = Counter(status for status, _ in outcomes)
        print(
            f"handled {len(outcomes)} events with {args.workers} workers in {elapsed:.2f}s: "
            f"{rate:.0f} events/s (target {TARGET_EVENTS_PER_SECOND}); "
            f"{cpu / len(outcomes) * 1000:.1f} ms CPU per event; "
            f"machine load average {load_before:.1f} on {os.cpu_count()} cores"
        )
        summarise("latency per event", [latency for _, latency in outcomes])
        print(f"answers: {dict(statuses)}")

        with read_session() as session:
            stored = Counter(
                dict(
                    session.exec(select(StripeEvent.status, func.count()).group_by(StripeEvent.status)).all()
                )
            )
            attempts = session.exec(select(func.max(StripeEvent.attempts))).one()
            pay = Counter(
                dict(session.exec(select(Payment.status, func.count()).group_by(Payment.status)).all())
            )
            lessons = Counter(
                dict(session.exec(select(Lesson.status, func.count()).group_by(Lesson.status)).all())
            )
            outbox = Counter(
                dict(session.exec(select(OutboxMessage.key, func.count()).group_by(OutboxMessage.key)).all())
            )
            jobs = Counter(dict(session.exec(select(Job.kind, func.count()).group_by(Job.kind)).all()))

    checks = [
        ("every distinct event stored once", sum(stored.values()) == distinct),
        ("stored as processed / ignored", stored == Counter(processed=paid + expired, ignored=other)),
        ("each handled exactly once (attempts = 1)", attempts == 1),
        ("every repeat answered as a duplicate", statuses["duplicate"] == repeats),
        ("payments paid / expired", pay == Counter(paid=paid, expired=expired)),
        ("lessons confirmed / expired", lessons == Counter(confirmed=paid, expired=expired)),
        ("one payment_success_message per payment", outbox["payment_success_message"] == paid),
        ("one calendar.create job per lesson (it sends booking_confirmed)", jobs["calendar.create"] == paid),
        ("one hold_expired per expired hold", outbox["hold_expired"] == expired),
        (f"throughput >= {TARGET_EVENTS_PER_SECOND} events/s", rate >= TARGET_EVENTS_PER_SECOND),
    ]
    for name, ok in checks:
        print(f"[{'ok' if ok else 'FAIL'}] {name}")
    if not all(ok for _, ok in checks):
        print(f"stored {dict(stored)}, payments {dict(pay)}, lessons {dict(lessons)}, outbox {dict(outbox)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
