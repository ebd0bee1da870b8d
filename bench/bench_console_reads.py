"""Benchmark: the console's reads at 500,000 payments and 200,000 lessons (DESIGN.md: pages
within 1 s), on SQLite and on PostgreSQL.

Bulk-loads the data (bench_console.build: multi-row INSERTs in chunks of 5,000, no ORM objects;
plus 50,000 slot offers for Insights), rebuilds the daily payment rollup once (bulk inserts
bypass its upkeep), then times every read function the payments, lessons and insights pages call
(`data.read(...)` in app_pages/) with their default filters and the widest ones (a year), cold
for the console (its read cache is not involved: the functions are called directly). Prints
p50/p95 per read and per page (the page's reads in sequence); a page's p95 must stay under
1,000 ms. PostgreSQL is started like the tests start it (tests/pg.py).

    .venv/bin/python bench/bench_console_reads.py [--payments 500000] [--lessons 200000]
        [--db sqlite postgres] [--runs 7]      (default: SQLite only)
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402

from bench._stats import percentile  # noqa: E402
from bench.bench_console import build  # noqa: E402
from bench.run_all import record_result  # noqa: E402
from core import clock  # noqa: E402
from core.config import Settings, get_settings, set_settings  # noqa: E402
from core.db import get_engine, read_session, reset_engines  # noqa: E402
from core.insights import InsightsFilter, insights  # noqa: E402
from core.lesson_queries import (  # noqa: E402
    LessonFilter,
    holds_expiring,
    lessons_page,
    needs_reschedule,
    unmarked_lessons,
)
from core.models import SlotOffer  # noqa: E402
from core.payments import rollup  # noqa: E402
from core.payments.queries import (  # noqa: E402
    PaymentFilter,
    failed_events,
    open_disputes,
    paid_but_cancelled,
    payment_status_counts,
    payment_totals,
    payments_page,
)

TARGET_MS = 1000.0


def add_offers(count: int) -> None:
    rng = random.Random(3)
    now = clock.now()
    rows = [
        {
            "conversation_id": f"v{i % 5000}",
            "contact_id": f"c{i % 5000}",
            "profile_name": "existing",
            "segment": rng.choice(["new", "existing", "weekend"]),
            "slots": 6,
            "offered_at": now - timedelta(minutes=rng.randint(0, 180 * 24 * 60)),
        }
        for i in range(count)
    ]
    with get_engine().begin() as conn:
        for first in range(0, count, 5000):
            conn.execute(insert(SlotOffer), rows[first : first + 5000])


def reads() -> dict[str, list[tuple[str, Callable[[Any], Any]]]]:
    """The reads of each page as the page makes them (default filters), plus the widest views."""
    tz = get_settings().tz
    now = clock.now()
    today = now.astimezone(tz).date()
    month = PaymentFilter(today - timedelta(days=30), today)
    year = PaymentFilter(today - timedelta(days=365), today)
    lessons_default = LessonFilter(today - timedelta(days=7), today + timedelta(days=30))
    lessons_year = LessonFilter(today - timedelta(days=365), today + timedelta(days=365))
    minute = now.replace(second=0, microsecond=0)
    return {
        "payments": [
            ("status cards", lambda s: payment_status_counts(s, month, tz)),
            ("chart (per day)", lambda s: payment_totals(s, month, tz, "day")),
            ("table, page 1", lambda s: payments_page(s, month, tz, page=1)),
            ("holds expiring", lambda s: holds_expiring(s, now, timedelta(minutes=30))),
            ("needs reschedule", needs_reschedule),
            ("disputes", open_disputes),
            ("paid but cancelled", paid_but_cancelled),
            ("failed events", failed_events),
        ],
        "payments/year": [
            ("status cards", lambda s: payment_status_counts(s, year, tz)),
            ("chart (per week)", lambda s: payment_totals(s, year, tz, "week")),
            ("table, page 1", lambda s: payments_page(s, year, tz, page=1)),
            ("table, page 200", lambda s: payments_page(s, year, tz, page=200)),
        ],
        "payments/paid": [
            (
                "status cards",
                lambda s: payment_status_counts(s, PaymentFilter(month.date_from, today, ("paid",)), tz),
            ),
            (
                "table, page 1",
                lambda s: payments_page(s, PaymentFilter(month.date_from, today, ("paid",)), tz),
            ),
        ],
        "payments/search": [  # a text search cannot use the rollup
            (
                "status cards",
                lambda s: payment_status_counts(s, PaymentFilter(month.date_from, today, (), "order-12"), tz),
            ),
            (
                "chart (per day)",
                lambda s: payment_totals(s, PaymentFilter(month.date_from, today, (), "order-12"), tz),
            ),
            (
                "table, page 1",
                lambda s: payments_page(s, PaymentFilter(month.date_from, today, (), "order-12"), tz),
            ),
        ],
        "lessons": [
            ("table, page 1", lambda s: lessons_page(s, lessons_default, tz, page=1)),
            ("unmarked", lambda s: unmarked_lessons(s, minute)),
        ],
        "lessons/all": [
            ("table, page 1", lambda s: lessons_page(s, lessons_year, tz, page=1)),
            ("table, page 100", lambda s: lessons_page(s, lessons_year, tz, page=100)),
        ],
        "insights": [
            ("12 weeks", lambda s: insights(s, InsightsFilter(today - timedelta(days=83), today), tz)),
        ],
        "insights/year": [
            ("a year", lambda s: insights(s, InsightsFilter(today - timedelta(days=365), today), tz)),
        ],
    }


def measure(db: str, runs: int) -> bool:
    ok = True
    pages = reads()
    for page, calls in pages.items():
        page_times: list[float] = []
        per_read: dict[str, list[float]] = {name: [] for name, _ in calls}
        for run in range(runs + 1):
            started = time.perf_counter()
            for name, call in calls:
                t0 = time.perf_counter()
                with read_session() as session:
                    call(session)
                if run:  # the first run warms the database's page cache and the statement caches
                    per_read[name].append(time.perf_counter() - t0)
            if run:
                page_times.append(time.perf_counter() - started)
        for name, samples in per_read.items():
            print(
                f"   {db} {page} / {name}: p50 {percentile(samples, 50) * 1000:.1f} ms, "
                f"p95 {percentile(samples, 95) * 1000:.1f} ms"
            )
        p50, p95 = percentile(page_times, 50) * 1000, percentile(page_times, 95) * 1000
        passed = p95 < TARGET_MS
        ok &= passed
        print(
            f"{db} {page}, all reads: p50 {p50:.1f} ms, p95 {p95:.1f} ms (target p95 < {TARGET_MS:.0f} ms: {'PASS' if passed else 'FAIL'})"
        )
        record_result(
            f"console reads ({db}): {page}",
            p50_ms=p50,
            p95_ms=p95,
            target=f"p95 < {TARGET_MS:.0f} ms",
            passed=passed,
        )
    return ok


def run_on(db: str, url: str, n_payments: int, n_lessons: int, runs: int) -> bool:
    set_settings(Settings(_env_file=None, database_url=url))
    reset_engines()
    t0 = time.perf_counter()
    build(n_payments, n_lessons)
    add_offers(50_000)
    loaded = time.perf_counter() - t0
    t0 = time.perf_counter()
    with get_engine().begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("ANALYZE")
        rows = rollup.rebuild(conn)
    print(
        f"{db}: loaded {n_payments:,} payments, {n_lessons:,} lessons, 50,000 slot offers in {loaded:.1f} s; "
        f"rollup rebuilt ({rows:,} rows) in {time.perf_counter() - t0:.1f} s; load average {os.getloadavg()[0]:.1f}"
    )
    try:
        return measure(db, runs)
    finally:
        reset_engines()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--payments", type=int, default=500_000)
    parser.add_argument("--lessons", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=7)
    # Postgres on request: loading 700,000 rows twice does not fit run_all's 900 s on a busy machine.
    parser.add_argument("--db", nargs="+", default=["sqlite"], choices=["sqlite", "postgres"])
    args = parser.parse_args()
    clock.set_now(clock.now().astimezone(UTC))
    ok = True
    if "sqlite" in args.db:
        with tempfile.TemporaryDirectory(prefix="lesplanner-console-") as tmp:
            ok &= run_on("sqlite", f"sqlite:///{tmp}/bench.db", args.payments, args.lessons, args.runs)
    if "postgres" in args.db:
        from tests.pg import PostgresServer, create_database

        server = PostgresServer()
        try:
            url = create_database(server.start())
            ok &= run_on("postgres", url, args.payments, args.lessons, args.runs)
        finally:
            server.stop()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
