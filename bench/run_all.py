"""Run every benchmark (bench/bench_*.py) and print one table of DESIGN.md's targets.

Each script runs as its own process (a fresh interpreter, its own temporary database) with a
generous timeout; its output is shown as it comes. The figures are collected from what the
scripts print — the `_stats.summarise` lines (`name: p50 X ms, p95 Y ms (target p95 < T ms:
PASS)`), throughput lines (`215 events/s (target 200)`), verdict lines (`(target: ...: PASS)`)
and `[ok]` / `[FAIL]` checks — or, when a script writes them, from JSON rows: run_all sets
`BENCH_RESULTS` to a file, and `record_result(...)` below appends one JSON object per line to
it (name, p50_ms, p95_ms, throughput, unit, target, passed). Then one table:

    benchmark | p50 | p95 | throughput | target | result

Exit status 1 when any figure misses its target, a check fails, or a script fails or times out.

    .venv/bin/python bench/run_all.py [--timeout 900] [--only slots webhooks]
    .venv/bin/python bench/run_all.py --scaling   # how slots and webhooks scale as data grows

`--scaling` measures (in this process) generate_slots for the premium profile around 500, 5,000
and 50,000 busy intervals; Google busy() + generate_slots — GET /api/v1/slots without the
receiver's own HTTP — for 200, 2,000 and 20,000 Google events; and the webhook throughput for
1,000 deliveries into a database already holding 0, 10,000 and 100,000 handled events; and
(as a subprocess) the console pages with 50,000 / 500,000 payments and 20,000 / 200,000 lessons.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
DEFAULT_TIMEOUT = 900.0  # seconds per script; the slowest takes well under a minute here


# --- rows -----------------------------------------------------------------------------------------


@dataclass
class Row:
    benchmark: str
    p50_ms: float | None = None
    p95_ms: float | None = None
    throughput: float | None = None
    unit: str = ""
    target: str = ""
    passed: bool | None = None  # None: informational (no target)

    @property
    def result(self) -> str:
        return {True: "PASS", False: "FAIL", None: "-"}[self.passed]


def record_result(
    name: str,
    *,
    p50_ms: float | None = None,
    p95_ms: float | None = None,
    throughput: float | None = None,
    unit: str = "",
    target: str = "",
    passed: bool | None = None,
) -> None:
    """For benchmark scripts: append one result row as JSON to $BENCH_RESULTS (a no-op when
    the variable is not set, e.g. when a script runs on its own)."""
    path = os.environ.get("BENCH_RESULTS")
    if not path:
        return
    row = {
        "name": name,
        "p50_ms": p50_ms,
        "p95_ms": p95_ms,
        "throughput": throughput,
        "unit": unit,
        "target": target,
        "passed": passed,
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")


NUMBER = r"(\d[\d,]*(?:\.\d+)?)"
LATENCY = re.compile(rf"^(?P<name>.+?):?\s+p50\s+{NUMBER}\s*ms,?\s+p95\s+{NUMBER}\s*ms(?P<rest>.*)$")
P95_TARGET = re.compile(rf"target p95 < {NUMBER} ms")
THROUGHPUT = re.compile(rf"{NUMBER}\s+(?P<unit>[A-Za-z]+/s)(?:\s*\(target\s+(?:>=\s*)?{NUMBER}\))?")
VERDICT = re.compile(r"^(?P<name>[^:]+):.*\(target:?\s*(?P<target>.*?):\s*(?P<verdict>PASS|FAIL)\)\s*$")
CHECK = re.compile(r"^\s*\[(?P<state>ok|FAIL)\]\s+(?P<what>.+)$")


def _num(text: str) -> float:
    return float(text.replace(",", ""))


def parse_output(stem: str, text: str) -> list[Row]:
    """The result rows a benchmark printed (see the module docstring for the shapes)."""
    rows: list[Row] = []
    checks: list[tuple[bool, str]] = []
    for line in text.splitlines():
        line = line.strip()
        if found := CHECK.match(line):
            checks.append((found["state"] == "ok", found["what"]))
            continue
        if found := LATENCY.match(line):
            p50, p95 = _num(found[2]), _num(found[3])
            rest = found["rest"]
            target = P95_TARGET.search(rest)
            passed: bool | None = None
            if "PASS" in rest or "FAIL" in rest:
                passed = "PASS" in rest and "FAIL" not in rest
            elif target:
                passed = p95 < _num(target[1])
            rows.append(
                Row(
                    f"{stem}: {found['name'].strip()}",
                    p50,
                    p95,
                    target=f"p95 < {target[1]} ms" if target else "",
                    passed=passed,
                )
            )
            continue
        if found := THROUGHPUT.search(line):
            rate, unit, goal = _num(found[1]), found["unit"], found[3]
            name = line.split(":", 1)[0] if ":" in line[: found.start()] else line[: found.start()]
            name = re.sub(r"\s+in\s+[\d.]+\s*s$", "", name.strip())  # the run's duration is no name
            rows.append(
                Row(
                    f"{stem}: {name.strip() or unit}",
                    throughput=rate,
                    unit=unit,
                    target=f">= {goal} {unit}" if goal else "",
                    passed=(rate >= _num(goal)) if goal else None,
                )
            )
            continue
        if found := VERDICT.match(line):
            rows.append(
                Row(
                    f"{stem}: {found['name'].strip()}",
                    target=found["target"].strip(),
                    passed=found["verdict"] == "PASS",
                )
            )
    rows = _merge_latency_into_throughput(rows)
    if checks:
        ok = sum(1 for good, _ in checks if good)
        failed = [what for good, what in checks if not good]
        rows.append(
            Row(
                f"{stem}: {ok}/{len(checks)} checks" + (f" (failed: {'; '.join(failed)})" if failed else ""),
                target="all checks ok",
                passed=not failed,
            )
        )
    return rows


def _merge_latency_into_throughput(rows: list[Row]) -> list[Row]:
    """One throughput line and one untargeted latency line of a script describe one run: show
    them as one row (e.g. webhooks: 215 events/s with p50/p95 per event)."""
    rates = [r for r in rows if r.throughput is not None and r.p50_ms is None]
    latencies = [r for r in rows if r.p50_ms is not None and r.throughput is None and not r.target]
    if len(rates) == 1 and len(latencies) == 1:
        rate, latency = rates[0], latencies[0]
        rate.p50_ms, rate.p95_ms = latency.p50_ms, latency.p95_ms
        rows = [r for r in rows if r is not latency]
    return rows


def rows_from_json(path: Path) -> list[Row]:
    rows = []
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                data = json.loads(line)
                rows.append(
                    Row(
                        data["name"],
                        data.get("p50_ms"),
                        data.get("p95_ms"),
                        data.get("throughput"),
                        data.get("unit") or "",
                        data.get("target") or "",
                        data.get("passed"),
                    )
                )
    return rows


# --- running the scripts --------------------------------------------------------------------------


@dataclass
class Run:
    script: Path
    returncode: int | None  # None: timed out
    seconds: float
    output: str
    rows: list[Row]


def run_script(script: Path, timeout: float, extra_args: list[str] | None = None) -> Run:
    stem = script.stem.removeprefix("bench_")
    print(f"== {script.relative_to(ROOT)}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-results-") as tmp:
        results = Path(tmp) / "rows.jsonl"
        env = {**os.environ, "BENCH_RESULTS": str(results), "PYTHONUNBUFFERED": "1"}
        started = time.monotonic()
        process = subprocess.Popen(
            [sys.executable, str(script), *(extra_args or [])],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            bufsize=1,
        )
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        lines = []
        try:
            assert process.stdout is not None
            for line in process.stdout:
                lines.append(line)
                print("   " + line, end="", flush=True)
            process.wait()
        finally:
            timer.cancel()
        seconds = time.monotonic() - started
        timed_out = seconds >= timeout and process.returncode != 0
        output = "".join(lines)
        rows = rows_from_json(results) or parse_output(stem, output)
    returncode = None if timed_out else process.returncode
    if returncode != 0:
        why = f"timed out after {timeout:.0f} s" if returncode is None else f"exit status {returncode}"
        if not rows or all(r.passed is not False for r in rows):
            rows.append(Row(f"{stem}: script {why}", target="runs to the end", passed=False))
    elif not rows:
        rows.append(Row(f"{stem}: ran (no figures printed)", passed=None))
    print(f"   ({seconds:.1f} s)", flush=True)
    return Run(script, returncode, seconds, output, rows)


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return ""
    return f"{value:,.{digits}f}"


def table(rows: list[Row]) -> str:
    """A Markdown table, readable in a terminal as it is."""
    header = ["benchmark", "p50 (ms)", "p95 (ms)", "throughput", "target", "result"]
    body = [
        [
            r.benchmark,
            _fmt(r.p50_ms, 2),
            _fmt(r.p95_ms, 2),
            f"{_fmt(r.throughput, 0)} {r.unit}".strip(),
            r.target,
            r.result,
        ]
        for r in rows
    ]
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]

    def fmt(cells: list[str]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    return "\n".join([fmt(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(fmt, body)])


def machine() -> str:
    cores = os.cpu_count()
    try:
        pages, size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
        memory = f"{pages * size / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        memory = "? GiB"
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return (
        f"{cores} cores, {memory}, Python {sys.version.split()[0]}, SQLite WAL; "
        f"load average {load:.1f} at the end"
    )


def main_benchmarks(args: argparse.Namespace) -> int:
    scripts = sorted(BENCH.glob("bench_*.py"))
    if args.only:
        scripts = [s for s in scripts if s.stem.removeprefix("bench_") in args.only or s.stem in args.only]
    if not scripts:
        print("no benchmark scripts matched", file=sys.stderr)
        return 2
    runs = [run_script(script, args.timeout) for script in scripts]
    rows = [row for run in runs for row in run.rows]
    print()
    print(table(rows))
    print()
    print(f"{len(runs)} scripts in {sum(r.seconds for r in runs):.0f} s on {machine()}")
    failed = any(row.passed is False for row in rows) or any(run.returncode != 0 for run in runs)
    print("RESULT: " + ("FAIL" if failed else "PASS"))
    return 1 if failed else 0


# --- scaling --------------------------------------------------------------------------------------


def _percentiles(samples: list[float]) -> tuple[float, float]:
    sys.path.insert(0, str(ROOT))
    from bench._stats import percentile

    return percentile(samples, 50) * 1000, percentile(samples, 95) * 1000


def _time(fn: Any, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return samples


def scaling_slots(rows: list[Row]) -> None:
    """generate_slots (premium, 21 days) around 500 / 5,000 / 50,000 busy intervals, built the
    way bench_slots.py builds its 5,000 (short intervals, two free gaps a day)."""
    import random
    from datetime import datetime
    from zoneinfo import ZoneInfo

    sys.path.insert(0, str(ROOT))
    import bench.bench_slots as bench_slots
    from core.models import PlanningProfile
    from core.profiles import SEED_PROFILES
    from core.slots import generate_slots

    tz = ZoneInfo("Europe/Amsterdam")
    profile = PlanningProfile(name="premium", **SEED_PROFILES["premium"])
    now = datetime(2026, 11, 30, 9, 0, tzinfo=tz)
    for busy_count, runs in ((500, 200), (5_000, 200), (50_000, 40)):
        bench_slots.BUSY_INTERVALS = busy_count
        busy = bench_slots.full_calendar(profile, now, random.Random(20261201))
        for _ in range(5):
            generate_slots(profile, now, busy, tz)
        p50, p95 = _percentiles(_time(lambda b=busy: generate_slots(profile, now, b, tz), runs))
        rows.append(
            Row(
                f"generate_slots premium, {busy_count:,} busy",
                p50,
                p95,
                target="p95 < 10 ms" if busy_count == 5_000 else "",
                passed=p95 < 10 if busy_count == 5_000 else None,
            )
        )
        print(f"   generate_slots, {busy_count:,} busy: p50 {p50:.2f} ms, p95 {p95:.2f} ms", flush=True)


def scaling_google(rows: list[Row]) -> None:
    """Google busy() through the real client against the fake, plus generate_slots on the
    answer: GET /api/v1/slots without the receiver's own HTTP and database work."""
    from datetime import UTC, datetime, timedelta

    sys.path.insert(0, str(ROOT))
    from sqlmodel import SQLModel

    import core.models  # noqa: F401
    from core.calendars.google import GoogleCalendarBackend
    from core.config import Settings
    from core.db import get_engine
    from core.models import PlanningProfile
    from core.profiles import SEED_PROFILES
    from core.slots import generate_slots, window_bounds
    from tests.fakes.google_calendar import FakeGoogleCalendar

    profile = PlanningProfile(name="premium", **SEED_PROFILES["premium"])
    calendar = "tutor@lesplanner.test"
    for events, runs in ((200, 50), (2_000, 50), (20_000, 15)):
        with FakeGoogleCalendar() as fake, tempfile.TemporaryDirectory() as tmp:
            now = datetime.now(UTC)
            settings = Settings(
                _env_file=None,
                database_url=f"sqlite:///{tmp}/scaling.db",
                calendar_backend="google",
                gcal_service_account_json=fake.service_account_json(),
                gcal_api_endpoint=fake.api_endpoint,
                gcal_timeout_seconds=30,
            )
            SQLModel.metadata.create_all(get_engine(settings.database_url))
            start, end = window_bounds(profile, now, settings.tz)
            step = (end - start) / events  # separate one-minute events: nothing merges
            for i in range(events):
                s = start + step * i
                fake.add_event(calendar, s, s + timedelta(minutes=1))
            backend = GoogleCalendarBackend(settings)
            backend.busy([calendar], start, end)  # sign in, build the client

            def request(
                b: GoogleCalendarBackend = backend,
                s: Any = start,
                e: Any = end,
                tz: Any = settings.tz,
                n: Any = now,
            ) -> None:
                busy = b.busy([calendar], s, e)[calendar]
                generate_slots(profile, n, busy, tz)

            p50, p95 = _percentiles(_time(request, runs))
            backend.flush_status()
        target = "p95 < 150 ms (whole request)" if events == 2_000 else ""
        rows.append(
            Row(
                f"Google busy() + generate_slots, {events:,} events",
                p50,
                p95,
                target=target,
                passed=(p95 < 150) if target else None,
            )
        )
        print(
            f"   Google busy() + generate_slots, {events:,} events: p50 {p50:.1f} ms, p95 {p95:.1f} ms",
            flush=True,
        )


def scaling_webhooks(rows: list[Row]) -> None:
    """1,000 deliveries (bench_webhooks.py's mix: 2/3 paid, 2/9 expired, 1/9 ignored, 10%
    repeats) into a database that already holds 0 / 10,000 / 100,000 handled events with their
    paid payments, conversations, contacts and messages."""
    import random
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, datetime, timedelta

    sys.path.insert(0, str(ROOT))
    from sqlalchemy import insert
    from sqlmodel import SQLModel

    import bench.bench_webhooks as bench_webhooks
    from core import payments
    from core.config import Settings, set_settings
    from core.db import get_engine, reset_engines
    from core.models import Contact, Conversation, OutboxMessage, Payment, StripeEvent
    from tests.fakes.stripe_server import FakeStripe

    for history in (0, 10_000, 100_000):
        with tempfile.TemporaryDirectory(prefix="lesplanner-scaling-") as tmp, FakeStripe() as fake:
            fake.add_price("price_standard_60", 4500)
            reset_engines()
            set_settings(
                Settings(
                    _env_file=None,
                    database_url=f"sqlite:///{tmp}/bench.db",
                    stripe_api_key=fake.api_key,
                    stripe_api_base=fake.url,
                    stripe_webhook_secret=bench_webhooks.SECRET,
                    standard_price_id_60="price_standard_60",
                    checkout_success_url="https://lesplanner.test/ok",
                    checkout_cancel_url="https://lesplanner.test/cancel",
                )
            )
            engine = get_engine()
            SQLModel.metadata.create_all(engine)
            _prefill(
                engine,
                history,
                insert,
                Contact,
                Conversation,
                Payment,
                StripeEvent,
                OutboxMessage,
                datetime.now(UTC) - timedelta(days=30),
            )
            rng = random.Random(7)
            paid, expired, other, repeats = 600, 200, 100, 100
            to_pay, to_expire = bench_webhooks.setup(fake, paid, expired)
            events = [fake.complete_session(s) for s in to_pay] + [fake.expire_session(s) for s in to_expire]
            events += [
                fake.event("payment_intent.created", {"id": f"pi_scale_{i}", "object": "payment_intent"})
                for i in range(other)
            ]
            deliveries = events + rng.sample(events, repeats)
            rng.shuffle(deliveries)
            signed = [fake.signed(e, bench_webhooks.SECRET) for e in deliveries]

            def deliver(item: tuple[bytes, str]) -> tuple[str, float]:
                t0 = time.perf_counter()
                status = payments.handle_webhook(*item).status
                return status, time.perf_counter() - t0

            t0 = time.perf_counter()
            with ThreadPoolExecutor(8) as pool:
                outcomes = list(pool.map(deliver, signed))
            elapsed = time.perf_counter() - t0
            statuses = Counter(s for s, _ in outcomes)
            assert statuses == Counter(processed=paid + expired, ignored=other, duplicate=repeats), statuses
            p50, p95 = _percentiles([latency for _, latency in outcomes])
            rate = len(outcomes) / elapsed
            set_settings(None)
            reset_engines()
        rows.append(
            Row(
                f"webhooks, 1,000 into {history:,} handled",
                p50,
                p95,
                rate,
                "events/s",
                target=">= 200 events/s",
                passed=rate >= 200,
            )
        )
        print(
            f"   webhooks into {history:,} handled events: {rate:.0f} events/s, p50 {p50:.1f} ms, "
            f"p95 {p95:.1f} ms",
            flush=True,
        )


def _prefill(engine, count, insert, Contact, Conversation, Payment, StripeEvent, OutboxMessage, when):  # noqa: ANN001, N803
    """`count` handled Checkout Sessions of the past: contact, conversation, paid payment,
    processed event and sent message each, inserted in bulk."""
    if not count:
        return
    batch = 5_000
    payload = json.dumps({"id": "evt_old", "type": "checkout.session.completed", "data": {"object": {}}})
    with engine.begin() as connection:
        for first in range(0, count, batch):
            ids = range(first, min(count, first + batch))
            connection.execute(
                insert(Contact),
                [
                    {
                        "id": f"old-contact-{i}",
                        "name": f"Oud {i}",
                        "attributes": {},
                        "created_at": when,
                        "updated_at": when,
                    }
                    for i in ids
                ],
            )
            connection.execute(
                insert(Conversation),
                [
                    {
                        "id": f"old-conv-{i}",
                        "contact_id": f"old-contact-{i}",
                        "attributes": {},
                        "created_at": when,
                    }
                    for i in ids
                ],
            )
            connection.execute(
                insert(Payment),
                [
                    {
                        "checkout_session_id": f"cs_old_{i}",
                        "order_id": f"old-order-{i}",
                        "conversation_id": f"old-conv-{i}",
                        "contact_id": f"old-contact-{i}",
                        "segment": "existing",
                        "minutes": 60,
                        "price_id": "price_standard_60",
                        "amount": 4500,
                        "currency": "eur",
                        "status": "paid",
                        "created_at": when,
                        "updated_at": when,
                        "paid_at": when,
                    }
                    for i in ids
                ],
            )
            connection.execute(
                insert(StripeEvent),
                [
                    {
                        "id": f"evt_old_{i}",
                        "type": "checkout.session.completed",
                        "payload": payload,
                        "received_at": when,
                        "processed_at": when,
                        "status": "processed",
                        "attempts": 1,
                    }
                    for i in ids
                ],
            )
            connection.execute(
                insert(OutboxMessage),
                [
                    {
                        "conversation_id": f"old-conv-{i}",
                        "dedupe_key": f"payment_success:cs_old_{i}",
                        "locale": "nl",
                        "key": "payment_success_message",
                        "text": "Bedankt voor je betaling!",
                        "status": "sent",
                        "attempts": 1,
                        "created_at": when,
                        "sent_at": when,
                    }
                    for i in ids
                ],
            )


def scaling_console(rows: list[Row], timeout: float) -> None:
    """bench_console.py at its size (50,000 payments, 20,000 lessons) and at 10x."""
    script = BENCH / "bench_console.py"
    if not script.exists():
        return
    for factor in (1, 10):
        run = run_script(
            script,
            timeout,
            ["--runs", "3", "--payments", str(50_000 * factor), "--lessons", str(20_000 * factor)],
        )
        for row in run.rows:
            row.benchmark = row.benchmark.replace("console:", f"console {factor}x:", 1)
        rows.extend(run.rows)


def main_scaling(args: argparse.Namespace) -> int:
    rows: list[Row] = []
    sections = [
        ("slots", "generate_slots", lambda: scaling_slots(rows)),
        ("google", "Google busy() + generate_slots", lambda: scaling_google(rows)),
        ("webhooks", "webhooks", lambda: scaling_webhooks(rows)),
        (
            "console",
            "console pages (50,000 payments / 20,000 lessons, then 10x)",
            lambda: scaling_console(rows, args.timeout),
        ),
    ]
    for key, title, measure in sections:
        if not args.only or key in args.only:
            print(f"== scaling: {title}", flush=True)
            measure()
    print()
    print(table(rows))
    print()
    print(f"on {machine()}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds per script")
    parser.add_argument(
        "--only",
        nargs="*",
        help="run only these (e.g. slots webhooks; with --scaling: slots google webhooks console)",
    )
    parser.add_argument("--scaling", action="store_true", help="measure how slots and webhooks scale instead")
    args = parser.parse_args()
    return main_scaling(args) if args.scaling else main_benchmarks(args)


if __name__ == "__main__":
    sys.exit(main())
