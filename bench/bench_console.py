"""Console render times on a large database (DESIGN.md, Performance: every page within 2 s with
50,000 payments and 20,000 lessons).

Builds a temporary SQLite database (bulk inserts: 50,000 payments, 20,000 lessons, 5,000
contacts, 2,000 Stripe events, 10,000 outbox messages, whitelist entries and time off), then
renders every console page with Streamlit's AppTest, signed in as an admin, and prints p50/p95
per page. "cold" clears the console's read cache before each run (the first visitor after a
write); "warm" is the next visitor within the 30 s cache.

    .venv/bin/python bench/bench_console.py [--runs 7] [--payments 50000] [--lessons 20000]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from datetime import time as dtime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import insert  # noqa: E402
from sqlmodel import SQLModel  # noqa: E402

from core import clock  # noqa: E402
from core.config import Settings, get_settings, set_settings  # noqa: E402
from core.db import get_engine, write_session  # noqa: E402
from core.models import (  # noqa: E402
    BusyBlock,
    Contact,
    Conversation,
    Lesson,
    OutboxMessage,
    Payment,
    StripeEvent,
    Tutor,
    WhitelistEntry,
)
from core.profiles import seed_defaults  # noqa: E402
from core.users import create_user  # noqa: E402

TARGET_SECONDS = 2.0
PAGES = ("lessons", "availability", "payments", "profiles", "contacts", "whitelists", "integrations", "users")


def _variants(today) -> list[tuple[str, str, dict]]:  # noqa: ANN001
    """(label, page, session state): every page with its default filters, plus the widest
    filters finance and admins use (all lessons, a year of payments per week)."""
    year = (today - timedelta(days=365), today + timedelta(days=365))
    return [
        *((page, page, {}) for page in PAGES),
        ("lessons/all", "lessons", {"lessons_range": year}),
        ("payments/year", "payments", {"pay_range": (year[0], today), "pay_period": "week"}),
    ]


STATUSES = ["confirmed"] * 6 + ["cancelled"] * 2 + ["expired", "held", "needs_reschedule"]
PAY_STATUSES = ["paid"] * 6 + ["expired"] * 2 + ["open", "failed", "refunded"]


def _chunks(rows: list[dict], size: int = 5_000):
    for i in range(0, len(rows), size):
        yield rows[i : i + size]


def build(n_payments: int, n_lessons: int, seed: int = 1) -> int:
    """Fill the configured database; returns the admin's user id."""
    rng = random.Random(seed)
    tz = get_settings().tz
    now = clock.now()
    today = now.astimezone(tz).date()
    engine = get_engine()
    SQLModel.metadata.create_all(engine)
    with write_session(engine) as s:
        seed_defaults(s)
        admin, _ = create_user(s, "admin@example.nl", "admin", password="bench-password-123")
        admin_id = admin.id
        tutors = [
            Tutor(name=f"Docent {i}", email=f"docent{i}@example.nl", calendar_id=f"cal-{i}") for i in range(5)
        ]
        s.add_all(tutors)
        s.flush()
        tutor_ids = [t.id for t in tutors]

    n_contacts = 5_000
    contacts = [
        {
            "id": f"c{i}",
            "name": f"Klant {i}",
            "email": f"klant{i}@example.nl",
            "phone": f"+316{10000000 + i}",
            "attributes": {"has_paid_lesson": i % 3 == 0},
            "created_at": now,
            "updated_at": now,
        }
        for i in range(n_contacts)
    ]
    conversations = [
        {"id": f"v{i}", "contact_id": f"c{i}", "attributes": {}, "created_at": now} for i in range(n_contacts)
    ]
    lessons = []
    for i in range(n_lessons):
        day = today + timedelta(days=rng.randint(-180, 60))
        start = datetime.combine(day, dtime(rng.randint(9, 20)), tzinfo=tz).astimezone(UTC)
        status = rng.choice(STATUSES)
        lessons.append(
            {
                "id": i + 1,
                "conversation_id": f"v{i % n_contacts}",
                "contact_id": f"c{i % n_contacts}",
                "tutor_id": rng.choice(tutor_ids),
                "profile_name": rng.choice(["new", "existing", "weekend"]),
                "start": start,
                "end": start + timedelta(hours=1),
                "title": f"Les {i}",
                "description": "",
                "status": status,
                "hold_expires_at": now + timedelta(minutes=rng.randint(-60, 60))
                if status == "held"
                else None,
                "calendar_event_id": f"lesplanner{i + 1:08d}" if status == "confirmed" else None,
                "created_at": start - timedelta(days=2),
                "updated_at": start - timedelta(days=2),
            }
        )
    payments = []
    for i in range(n_payments):
        created = now - timedelta(minutes=rng.randint(0, 365 * 24 * 60))
        status = rng.choice(PAY_STATUSES)
        payments.append(
            {
                "checkout_session_id": f"cs_bench_{i}",
                "payment_intent_id": f"pi_bench_{i}" if status == "paid" else None,
                "order_id": f"order-{i}",
                "conversation_id": f"v{i % n_contacts}",
                "contact_id": f"c{i % n_contacts}",
                "lesson_id": (i % n_lessons) + 1 if i < n_lessons * 2 else None,
                "segment": "existing",
                "minutes": 60,
                "price_id": "price_60",
                "amount": 4500,
                "currency": "eur",
                "status": status,
                "expires_at": created + timedelta(minutes=30),
                "paid_at": created if status == "paid" else None,
                "created_at": created,
                "updated_at": created,
            }
        )
    events = [
        {
            "id": f"evt_{i}",
            "type": "checkout.session.completed",
            "payload": "{}",
            "received_at": now - timedelta(minutes=i),
            "status": "failed" if i % 50 == 0 else "processed",
            "error": "boom" if i % 50 == 0 else None,
            "attempts": 1,
        }
        for i in range(2_000)
    ]
    outbox = [
        {
            "conversation_id": f"v{i % n_contacts}",
            "dedupe_key": f"k{i}",
            "key": "booking_confirmed",
            "locale": "nl",
            "text": "Je les is ingepland.",
            "status": "sent" if i % 4 else "pending",
            "attempts": 1,
            "created_at": now - timedelta(minutes=i),
        }
        for i in range(10_000)
    ]
    whitelist = [
        {
            "list": "weekend" if i % 2 else "returning_broadcast",
            "identifier": f"+316{20000000 + i}",
            "added_by": "bench",
            "added_at": now,
        }
        for i in range(2_000)
    ]
    blocks = [
        {
            "tutor_id": rng.choice(tutor_ids),
            "start": now + timedelta(hours=6 * i),
            "end": now + timedelta(hours=6 * i + 2),
            "reason": "vrij",
            "created_by": "bench",
        }
        for i in range(200)
    ]

    with write_session(engine) as s:
        for model, rows in (
            (Contact, contacts),
            (Conversation, conversations),
            (Lesson, lessons),
            (Payment, payments),
            (StripeEvent, events),
            (OutboxMessage, outbox),
            (WhitelistEntry, whitelist),
            (BusyBlock, blocks),
        ):
            for chunk in _chunks(rows):
                s.execute(insert(model), chunk)
    return admin_id


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def render_times(admin_id: int, runs: int) -> dict[str, dict[str, list[float]]]:
    from streamlit.testing.v1 import AppTest

    from ui import data

    results: dict[str, dict[str, list[float]]] = {}
    today = clock.now().astimezone(get_settings().tz).date()
    for label, page, state in _variants(today):
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=60)
        at.session_state["user_id"] = admin_id
        at.session_state["role"] = "admin"
        for key, value in state.items():
            at.session_state[key] = value
        at.run()
        at.switch_page(f"app_pages/{page}.py")
        at.run()  # imports and first render
        if at.exception or at.error:
            raise SystemExit(
                f"{page} failed: {[e.value for e in at.exception] or [e.value for e in at.error]}"
            )
        counts = [c.value for c in at.caption if " van " in c.value]
        print(f"  {label}: '{at.title[0].value}' {counts[0] if counts else ''}")
        cold, warm = [], []
        for _ in range(runs):
            data.clear()
            t0 = time.perf_counter()
            at.run()
            cold.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            at.run()
            warm.append(time.perf_counter() - t0)
        results[label] = {"cold": cold, "warm": warm}
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--payments", type=int, default=50_000)
    parser.add_argument("--lessons", type=int, default=20_000)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        set_settings(Settings(_env_file=None, database_url=f"sqlite:///{tmp}/bench.db"))
        t0 = time.perf_counter()
        admin_id = build(args.payments, args.lessons)
        print(
            f"Built {args.payments:,} payments and {args.lessons:,} lessons in {time.perf_counter() - t0:.1f} s."
        )
        results = render_times(admin_id, args.runs)

    print(f"\nConsole page renders (AppTest, admin, {args.runs} runs each; target {TARGET_SECONDS:.0f} s)")
    print(f"{'page':<15}{'cold p50':>10}{'cold p95':>10}{'warm p50':>10}{'warm p95':>10}  verdict")
    worst = 0.0
    for page, times in results.items():
        c50, c95 = statistics.median(times["cold"]), _percentile(times["cold"], 0.95)
        w50, w95 = statistics.median(times["warm"]), _percentile(times["warm"], 0.95)
        worst = max(worst, c95)
        verdict = "ok" if c95 <= TARGET_SECONDS else "TOO SLOW"
        print(f"{page:<15}{c50:>9.3f}s{c95:>9.3f}s{w50:>9.3f}s{w95:>9.3f}s  {verdict}")
    # The same figures in the line format bench/run_all.py collects.
    print()
    for page, times in results.items():
        c50, c95 = statistics.median(times["cold"]) * 1000, _percentile(times["cold"], 0.95) * 1000
        verdict = "PASS" if c95 <= TARGET_SECONDS * 1000 else "FAIL"
        print(
            f"{page}: p50 {c50:.0f} ms, p95 {c95:.0f} ms (target p95 < {TARGET_SECONDS * 1000:.0f} ms: {verdict})"
        )
    print(
        f"\nSlowest cold p95: {worst:.3f} s ({'within' if worst <= TARGET_SECONDS else 'over'} the 2 s target)."
    )
    return 0 if worst <= TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
