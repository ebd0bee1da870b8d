"""Benchmark: Stripe webhooks on PostgreSQL through several receiver processes, each exactly once.

Starts a throwaway PostgreSQL server the way the tests do (tests/pg.py: initdb into a temporary
folder, a free loopback port, fsync off), migrates it with Alembic (`core.cli.migrate`), seeds
held lessons with open payments (bulk inserts) and starts `--receivers` real receivers
(`uvicorn receiver.main:app`, one process each, the job worker off). Then it sends `--events`
signed `checkout.session.completed` deliveries (10% of them repeats of an earlier event id,
shuffled in) over HTTP/1.1 keep-alive connections spread over the receivers, from an asyncio
client in this process, each body signed with the webhook secret exactly as Stripe signs it.

Prints throughput and p50/p95 latency per delivery (client side, HTTP included), then verifies
exactly-once: one StripeEvent per id (attempts 1), each payment paid once, each lesson
confirmed once, one customer message and one calendar job per lesson, and the daily rollups (by
day created and by day paid) equal to a recomputation. `--profile` also times the signature
check and JSON parsing alone and profiles the handling in this process (cProfile, SQL statements
per event).

    .venv/bin/python bench/bench_webhooks_pg.py [--events 4000] [--receivers 4] [--connections 32]
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import cProfile
import io
import json
import logging
import os
import pstats
import random
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event as sa_event  # noqa: E402
from sqlalchemy import insert  # noqa: E402
from sqlmodel import func, select  # noqa: E402

from bench._stats import percentile, summarise  # noqa: E402
from bench.run_all import record_result  # noqa: E402
from core import cli  # noqa: E402
from core.config import Settings, set_settings  # noqa: E402
from core.db import get_engine, read_session, reset_engines  # noqa: E402
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
from core.payments import handle_webhook, rollup, verify_webhook  # noqa: E402
from tests.fakes.stripe_server import FakeStripe  # noqa: E402
from tests.pg import PostgresServer, create_database  # noqa: E402
from tests.procs import ReceiverProcess, receiver_env  # noqa: E402
from tests.support.rollup import recomputed, recomputed_paid, rolled_up, rolled_up_paid  # noqa: E402

TARGET_EVENTS_PER_SECOND = 1000
SECRET = "whsec_bench_pg_0123456789abcdef"


def template_event() -> dict:
    """A real-shaped checkout.session.completed (paid) from the fake Stripe, to clone."""
    with FakeStripe() as fake:
        fake.add_price("price_standard_60", 4500)
        session = fake._create_session(  # noqa: SLF001 - the fake's own builder, no HTTP needed
            {
                "mode": "payment",
                "line_items": [{"price": "price_standard_60", "quantity": "1"}],
                "success_url": "https://lesplanner.test/ok",
                "cancel_url": "https://lesplanner.test/cancel",
                "metadata": {"order_id": "x", "conversation_id": "x", "lesson_id": "1", "minutes": "60"},
            }
        )
        return fake.complete_session(session["id"])


def seed(count: int, tutors: int) -> list[dict]:
    """`count` held lessons (spread over `tutors` tutors, an hour apart) each with an open
    payment; bulk inserts. Returns the checkout.session.completed events that pay them."""
    now = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
    engine = get_engine()
    with engine.begin() as conn:
        conn.execute(
            insert(Tutor),
            [
                {"id": 1000 + t, "name": f"Tutor {t}", "calendar_id": f"tutor-{t}", "active": True}
                for t in range(tutors)
            ],
        )
        for first in range(0, count, 5000):
            ids = range(first, min(count, first + 5000))
            conn.execute(
                insert(Contact),
                [
                    {
                        "id": f"c{i}",
                        "name": f"Leerling {i}",
                        "attributes": {},
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                insert(Conversation),
                [{"id": f"v{i}", "contact_id": f"c{i}", "attributes": {}, "created_at": now} for i in ids],
            )
            conn.execute(
                insert(Lesson),
                [
                    {
                        "id": i + 1,
                        "conversation_id": f"v{i}",
                        "contact_id": f"c{i}",
                        "tutor_id": 1000 + i % tutors,
                        "profile_name": "existing",
                        "start": now + timedelta(days=2, hours=i // tutors),
                        "end": now + timedelta(days=2, hours=i // tutors + 1),
                        "title": f"Les {i}",
                        "description": "",
                        "status": "held",
                        "hold_expires_at": now + timedelta(hours=2),
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
            conn.execute(
                insert(Payment),
                [
                    {
                        "checkout_session_id": f"cs_test_bench{i:07d}",
                        "order_id": f"lesson-{i + 1}",
                        "conversation_id": f"v{i}",
                        "contact_id": f"c{i}",
                        "lesson_id": i + 1,
                        "segment": "existing",
                        "minutes": 60,
                        "price_id": "price_standard_60",
                        "amount": 4500,
                        "currency": "eur",
                        "status": "open",
                        "expires_at": now + timedelta(hours=2),
                        "created_at": now,
                        "updated_at": now,
                    }
                    for i in ids
                ],
            )
        conn.exec_driver_sql(
            "SELECT setval(pg_get_serial_sequence('lesson', 'id'), (SELECT max(id) FROM lesson))"
        )
        rollup.rebuild(conn)
    template = template_event()
    events = []
    for i in range(count):
        event = copy.deepcopy(template)
        event["id"] = f"evt_bench{i:07d}"
        obj = event["data"]["object"]
        obj["id"] = f"cs_test_bench{i:07d}"
        obj["payment_intent"] = f"pi_bench{i:07d}"
        obj["metadata"] = {
            "order_id": f"lesson-{i + 1}",
            "conversation_id": f"v{i}",
            "contact_id": f"c{i}",
            "lesson_id": str(i + 1),
            "minutes": "60",
            "segment": "existing",
        }
        obj["invoice"] = None
        events.append(event)
    return events


async def send_all(
    bodies: list[tuple[bytes, str]], ports: list[int], connections: int
) -> tuple[list[tuple[int, str, float]], float]:
    """Deliver every (body, signature) over `connections` keep-alive connections spread over the
    receivers; returns (status, answer, seconds) per delivery and the wall time."""
    queue = list(reversed(bodies))
    results: list[tuple[int, str, float]] = []

    async def worker(port: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while queue:
                body, header = queue.pop()
                request = (
                    f"POST /webhooks/stripe HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                    f"Content-Type: application/json\r\nStripe-Signature: {header}\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                ).encode() + body
                started = time.perf_counter()
                writer.write(request)
                status_line = await reader.readline()
                length = 0
                while (line := await reader.readline()) not in (b"\r\n", b""):
                    name, _, value = line.decode().partition(":")
                    if name.lower() == "content-length":
                        length = int(value)
                answer = await reader.readexactly(length)
                elapsed = time.perf_counter() - started
                status = int(status_line.split()[1])
                results.append(
                    (status, json.loads(answer).get("status", "") if status == 200 else "", elapsed)
                )
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker(ports[i % len(ports)]) for i in range(connections)))
    return results, time.perf_counter() - started


TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str]:
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()  # fields from the 3rd (state) on


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads)."""
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / TICK


def postgres_cpu_seconds(server: PostgresServer) -> float:
    """CPU of the whole PostgreSQL server: the postmaster, its reaped children (backends that
    ended) and the children still running."""
    postmaster = int((server.dir / "data" / "postmaster.pid").read_text().split()[0])
    fields = _stat(postmaster)
    total = sum(int(f) for f in fields[11:15]) / TICK
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                child = _stat(int(entry.name))
            except (FileNotFoundError, ProcessLookupError, ValueError):
                continue
            if int(child[1]) == postmaster:
                total += (int(child[11]) + int(child[12])) / TICK
    return total


def profile_in_process(events: list[dict], runs: int) -> None:
    """Where the time of one delivery goes, in this process: the signature check and JSON
    parsing alone, then handle_webhook under cProfile with SQL statements counted."""
    signed = [FakeStripe.signed(e, SECRET) for e in events[:runs]]
    t0 = time.perf_counter()
    for body, header in signed:
        verify_webhook(body, header)
    verify_ms = (time.perf_counter() - t0) / len(signed) * 1000
    statements = [0]

    def count(*_args: object) -> None:
        statements[0] += 1

    engine = get_engine()
    sa_event.listen(engine, "before_cursor_execute", count)
    profiler = cProfile.Profile()
    t0 = time.perf_counter()
    profiler.enable()
    for body, header in signed:
        handle_webhook(body, header)
    profiler.disable()
    handle_ms = (time.perf_counter() - t0) / len(signed) * 1000
    sa_event.remove(engine, "before_cursor_execute", count)
    print(
        f"in process, one at a time ({len(signed)} events): signature check + JSON {verify_ms:.3f} ms, "
        f"whole handling {handle_ms:.2f} ms per event (profiled), "
        f"{statements[0] / len(signed):.1f} SQL statements per event"
    )
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(25)
    print("\n".join(line for line in out.getvalue().splitlines()[:60] if line.strip()))


def main() -> int:  # noqa: C901, PLR0915
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=4000, help="deliveries in total (default 4000)")
    parser.add_argument("--receivers", type=int, default=4)
    parser.add_argument("--connections", type=int, default=32, help="concurrent senders (default 32)")
    parser.add_argument("--tutors", type=int, default=200)
    parser.add_argument("--profile", type=int, default=0, help="also profile N events in this process")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    rng = random.Random(args.seed)
    repeats = args.events // 10
    distinct = args.events - repeats

    server = PostgresServer()
    receivers: list[ReceiverProcess] = []
    try:
        t0 = time.perf_counter()
        url = create_database(server.start())
        set_settings(Settings(_env_file=None, database_url=url, stripe_webhook_secret=SECRET))
        reset_engines()
        cli.migrate()
        events = seed(distinct + args.profile, args.tutors)
        profile_events, events = events[distinct:], events[:distinct]
        deliveries = events + rng.sample(events, repeats)
        rng.shuffle(deliveries)
        print(
            f"setup: PostgreSQL {server.bin.parent.name} on port {server.port}, migrated, "
            f"{distinct} held lessons with open payments over {args.tutors} tutors in {time.perf_counter() - t0:.1f} s"
        )
        env = receiver_env(url, stripe_webhook_secret=SECRET, lesplanner_worker=0)
        for _ in range(args.receivers):
            receivers.append(ReceiverProcess(env).start())
        ports = [r.port for r in receivers]
        # warm each receiver (imports, connection pool) with events Lesplanner ignores
        warm = [
            FakeStripe.signed(
                {"id": f"evt_warm_{i}", "type": "payment_intent.created", "data": {"object": {}}}, SECRET
            )
            for i in range(20 * args.receivers)
        ]
        asyncio.run(send_all(warm, ports, args.receivers * 4))

        signed = [FakeStripe.signed(e, SECRET) for e in deliveries]
        load_before = os.getloadavg()[0]
        assert all(r.process is not None for r in receivers)
        pids = [r.process.pid for r in receivers if r.process is not None]
        cpu0 = [sum(cpu_seconds(pid) for pid in pids), postgres_cpu_seconds(server), time.process_time()]
        results, elapsed = asyncio.run(send_all(signed, ports, args.connections))
        cpu1 = [sum(cpu_seconds(pid) for pid in pids), postgres_cpu_seconds(server), time.process_time()]
        load_after = os.getloadavg()[0]
        per_event = [(b - a) / len(signed) * 1000 for a, b in zip(cpu0, cpu1, strict=True)]
        rate = len(results) / elapsed
        answers = Counter((status, answer) for status, answer, _ in results)
        passed = rate >= TARGET_EVENTS_PER_SECOND
        print(
            f"handled {len(results)} events through {args.receivers} receivers, {args.connections} connections "
            f"in {elapsed:.2f} s: {rate:.0f} events/s (target {TARGET_EVENTS_PER_SECOND}); "
            f"load average {load_before:.1f} before, {load_after:.1f} after, on {os.cpu_count()} cores"
        )
        latency = summarise("latency per delivery", [s for _, _, s in results])
        print(
            f"CPU per delivery: receivers {per_event[0]:.2f} ms, PostgreSQL {per_event[1]:.2f} ms, "
            f"client {per_event[2]:.2f} ms; total {sum(per_event):.2f} ms, so {os.cpu_count()} cores "
            f"allow at most ~{(os.cpu_count() or 1) * 1000 / sum(per_event):.0f} events/s"
        )
        print(f"answers: {dict(answers)}")
        record_result(
            f"webhooks on Postgres, {args.receivers} receivers, {len(results)} deliveries (10% repeats)",
            p50_ms=latency["p50_ms"],
            p95_ms=latency["p95_ms"],
            throughput=rate,
            unit="events/s",
            target=f">= {TARGET_EVENTS_PER_SECOND} events/s",
            passed=passed,
        )

        with read_session() as session:
            stored = Counter(
                dict(
                    session.exec(
                        select(StripeEvent.status, func.count())
                        .where(StripeEvent.type == "checkout.session.completed")
                        .group_by(StripeEvent.status)
                    ).all()
                )
            )
            attempts = session.exec(select(func.max(StripeEvent.attempts))).one()
            pay = Counter(
                dict(session.exec(select(Payment.status, func.count()).group_by(Payment.status)).all())
            )
            paid_twice = session.exec(
                select(func.count())
                .select_from(Payment)
                .where(Payment.status == "paid", Payment.paid_at.is_(None))  # type: ignore[union-attr]
            ).one()
            lessons = Counter(
                dict(session.exec(select(Lesson.status, func.count()).group_by(Lesson.status)).all())
            )
            outbox = Counter(
                dict(session.exec(select(OutboxMessage.key, func.count()).group_by(OutboxMessage.key)).all())
            )
            jobs = Counter(dict(session.exec(select(Job.kind, func.count()).group_by(Job.kind)).all()))
            job_keys = session.exec(select(func.count(func.distinct(Job.key)))).one()
            job_total = session.exec(select(func.count()).select_from(Job)).one()
        rollup_ok = recomputed() == rolled_up() and recomputed_paid() == rolled_up_paid()
        checks = [
            ("every distinct event stored once, processed", stored == Counter(processed=distinct)),
            ("each handled exactly once (attempts = 1)", attempts == 1),
            ("every repeat answered as a duplicate", answers[(200, "duplicate")] == repeats),
            (
                "every delivery answered 200",
                sum(n for (status, _), n in answers.items() if status == 200) == len(results),
            ),
            ("payments paid once each", pay["paid"] == distinct and paid_twice == 0),
            ("lessons confirmed once each", lessons["confirmed"] == distinct),
            ("one payment_success_message per payment", outbox["payment_success_message"] == distinct),
            ("one calendar.create job per lesson", jobs["calendar.create"] == distinct),
            ("no job twice (distinct keys)", job_keys == job_total),
            ("daily rollups (created, paid) equal the payments", rollup_ok),
        ]
        for name, ok in checks:
            print(f"[{'ok' if ok else 'FAIL'}] {name}")
        if not all(ok for _, ok in checks):
            print(
                f"stored {dict(stored)}, payments {dict(pay)}, lessons {dict(lessons)}, outbox {dict(outbox)}, jobs {dict(jobs)}"
            )
        print(f"jobs queued: {dict(jobs)}; p99 {percentile([s for _, _, s in results], 99) * 1000:.1f} ms")
        if args.profile:
            for r in receivers:
                r.stop()
            receivers = []
            profile_in_process(profile_events, args.profile)
        return 0 if all(ok for _, ok in checks) else 1
    finally:
        for r in receivers:
            r.stop()
        reset_engines()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
