"""The background worker: releases expired holds and carries out due jobs (calendar events,
chat messages, Stripe expiries), round after round.

The receiver starts one in a thread (unless LESPLANNER_WORKER=0); `python -m core.worker` runs
one on its own. Several may run at once, in one process or many: jobs are leased (core/jobs.py).
"""

from __future__ import annotations

import logging
import signal
import threading

# Importing the domain modules registers the job kinds they own.
import core.calendars.mirror
import core.chat
import core.lessons
import core.payments  # noqa: F401 - registers stripe.* job kinds
from core import jobs
from core.config import scrub

log = logging.getLogger("lesplanner.worker")


def tick(limit: int = 20, owner: str | None = None) -> jobs.RunReport | None:
    """One round: release expired holds, make sure confirmed lessons have their calendar job,
    run the due jobs. Never raises."""
    try:
        core.lessons.expire_holds()
    except Exception as exc:  # noqa: BLE001 - the worker must outlive a bad round
        log.error("Releasing expired holds failed: %s", scrub(repr(exc)))
    try:
        core.lessons.ensure_calendar_jobs()
    except Exception as exc:  # noqa: BLE001
        log.error("Checking calendar jobs failed: %s", scrub(repr(exc)))
    try:
        core.calendars.mirror.schedule_syncs()
    except Exception as exc:  # noqa: BLE001
        log.error("Planning calendar syncs failed: %s", scrub(repr(exc)))
    try:
        report = jobs.run_due(owner, limit=limit)
        core.chat.record_delivery(report)
        return report
    except Exception as exc:  # noqa: BLE001
        log.error("Running jobs failed: %s", scrub(repr(exc)))
        return None


def drain(max_rounds: int = 50) -> jobs.RunReport:
    """Run everything due now until nothing is (tests and the CLI)."""
    core.lessons.expire_holds()
    core.lessons.ensure_calendar_jobs()
    return jobs.run_until_idle(max_rounds)


def run_worker(stop_event: threading.Event, interval: float = 1.0, limit: int = 20) -> None:
    """Loop until `stop_event` is set. A full batch is followed at once by the next one."""
    owner = jobs.worker_name()
    log.info("Worker %s started (job kinds: %s)", owner, ", ".join(jobs.registered_kinds()))
    while not stop_event.is_set():
        report = tick(limit, owner)
        if report is not None and report.claimed >= limit and not report.errors:
            continue
        stop_event.wait(interval)
    log.info("Worker %s stopped", owner)


def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    run_worker(stop)


if __name__ == "__main__":
    main()
