"""Hand-written mutants of the rules that guard money and time (`make mutate-quick`); mutmut's
broad sweep over slots, lessons and webhooks is `make mutate` (scripts/mutation.py).

Each mutant is a small, deliberate break of one rule in core (a boundary flipped, a guard
dropped, an effect not written). The mutant is applied to the working tree, the tests that
specify that rule run (stopping at the first failure), and the file is restored. A mutant the
tests do not notice *survives*: that is a missing test. The list starts with the breakages that
once left every test green (issue 11) and grows with every rule we add.

    python scripts/mutate.py            # every mutant
    python scripts/mutate.py hold       # only mutants whose name contains "hold"

Exit code 0 when every mutant was killed.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

LIFECYCLE = ["tests/unit/test_lifecycle.py", "tests/unit/test_webhooks.py", "tests/unit/test_jobs.py"]


@dataclass(frozen=True)
class Mutant:
    name: str
    path: str
    find: str
    replace: str
    tests: tuple[str, ...]


MUTANTS = [
    # -- issue 11's list: each of these once left every test green ------------------------------
    Mutant(
        "hold expiry < in expire_holds",
        "core/lessons.py",
        "col(Lesson.hold_expires_at) <= now",
        "col(Lesson.hold_expires_at) < now",
        ("tests/unit/test_lifecycle.py",),
    ),
    Mutant(
        "hold expiry < in lesson_busy",
        "core/lessons.py",
        "hold_until is not None and hold_until <= now",
        "hold_until is not None and hold_until < now",
        ("tests/unit/test_lifecycle.py", "tests/unit/test_booking.py"),
    ),
    Mutant(
        "abandon_hold does nothing",
        "core/booking.py",
        """        if lesson is not None and lesson.status == HELD:
            lessons.cancel(session, lesson, f"booking failed: {why}", notify=False)""",
        """        pass""",
        ("tests/reliability/test_faults.py", "tests/unit/test_booking.py"),
    ),
    Mutant(
        "a paid lesson that lost its slot is not moved",
        "core/booking.py",
        "moved = _movable_paid_lesson(session, conversation.id, profile, segment)",
        "moved = None",
        ("tests/unit/test_lifecycle.py",),
    ),
    Mutant(
        "paid-confirm guard removed",
        "core/lessons.py",
        """    if lesson.status in (CONFIRMED, NEEDS_RESCHEDULE):
        return lesson.status
    if lesson.status in WAITING_FOR_PAYMENT:""",
        """    if lesson.status in WAITING_FOR_PAYMENT:""",
        LIFECYCLE,
    ),
    Mutant(
        "chat records an attempt without holding the job",
        "core/chat.py",
        "        ctx.hold(session)  # also locks",
        "        pass  # also locks",
        ("tests/unit/test_chat.py",),
    ),
    Mutant(
        "chat sends again without reading back",
        "core/chat.py",
        "            if ctx.attempts > 1:\n",
        "            if False:\n",
        ("tests/unit/test_chat.py", "tests/unit/test_lifecycle.py"),
    ),
    # -- jobs: leases, fencing, backoff ---------------------------------------------------------------
    Mutant(
        "a worker whose job was taken over still holds it",
        "core/jobs.py",
        "            .where(col(Job.id) == self.id, col(Job.lease_owner) == self.owner,\n"
        "                   col(Job.attempts) == self.attempts, col(Job.status) == JobStatus.RUNNING)",
        "            .where(col(Job.id) == self.id)",
        ("tests/unit/test_jobs.py", "tests/unit/test_chat.py"),
    ),
    Mutant(
        "holding a job is checked by worker name only",
        "core/jobs.py",
        "                   col(Job.attempts) == self.attempts, col(Job.status) == JobStatus.RUNNING)",
        "                   col(Job.status) == JobStatus.RUNNING)",
        ("tests/unit/test_jobs.py",),
    ),
    Mutant(
        "backoff not capped",
        "core/jobs.py",
        "2 ** min(max(attempts - 1, 0), 30), cap)",
        "2 ** min(max(attempts - 1, 0), 30), cap * 100)",
        ("tests/unit/test_jobs.py",),
    ),
    Mutant(
        "jobs of one subject run at once",
        "core/jobs.py",
        "                busy_subjects.add(job.subject)\n",
        "",
        ("tests/unit/test_jobs.py",),
    ),
    Mutant(
        "a job is stored twice per key",
        "core/jobs.py",
        'on_conflict_do_nothing(index_elements=["key"])',
        'on_conflict_do_nothing(index_elements=["id"])',
        ("tests/unit/test_jobs.py",),
    ),
    # -- money first ------------------------------------------------------------------------------------
    Mutant(
        "the webhook does not confirm the lesson",
        "core/payments/webhooks.py",
        "        lessons.paid(session, lesson)\n",
        "",
        ("tests/unit/test_webhooks.py",),
    ),
    Mutant(
        "delayed payment keeps the checkout's short hold",
        "core/lessons.py",
        "timedelta(hours=get_settings().async_payment_hold_hours)",
        "timedelta(minutes=get_settings().checkout_expires_minutes)",
        ("tests/unit/test_webhooks.py",),
    ),
    Mutant(
        "the calendar check after payment never finds a conflict",
        "core/lessons.py",
        "        if _overlaps(busy, request.start, request.end):",
        "        if False:",
        ("tests/unit/test_webhooks.py", "tests/unit/test_google_booking.py"),
    ),
    Mutant(
        "a cancel leaves the calendar event",
        "core/lessons.py",
        """        _calendar_job(session, lesson, "calendar.delete")""",
        """        pass""",
        (
            "tests/unit/test_lifecycle.py",
            "tests/unit/test_google_booking.py",
            "tests/reliability/test_reliability_booking.py",
        ),
    ),
    Mutant(
        "an expired hold leaves its checkout open",
        "core/lessons.py",
        """    if event == "hold_expired":
        _expire_checkout(session, lesson)""",
        """    pass""",
        ("tests/unit/test_lifecycle.py", "tests/reliability/test_lifecycle_stateful.py"),
    ),
    Mutant(
        "a cancelled hold leaves its checkout open",
        "core/lessons.py",
        """    if before in WAITING_FOR_PAYMENT:
        _expire_checkout(session, lesson)""",
        """    pass""",
        ("tests/unit/test_cancel_hold.py",),
    ),
    Mutant(
        "a cancelled lesson paid later is revived",
        "core/lessons.py",
        """    if lesson.status == CANCELLED:
        slot_lost(""",
        """    if False:
        slot_lost(""",
        ("tests/unit/test_cancel_hold.py", "tests/reliability/test_reliability_booking.py"),
    ),
    Mutant(
        "paid late is confirmed although another lesson has the slot",
        "core/lessons.py",
        "    if slot_free_in_database(session, lesson, now):",
        "    if True:",
        ("tests/unit/test_webhooks.py",),
    ),
    Mutant(
        "a paid lesson is rebooked at another length",
        "core/booking.py",
        "        if lesson.end - lesson.start != timedelta(minutes=profile.duration_minutes):\n            continue\n",
        "",
        ("tests/unit/test_lifecycle.py",),
    ),
    Mutant(
        "order ids are not scoped to their conversation",
        "core/payments/links.py",
        "if any(p.conversation_id != conversation_id for p in payments):",
        "if False:",
        ("tests/api/test_api_resources.py",),
    ),
    Mutant(
        "the bot may use booking's order ids",
        "core/payments/links.py",
        "if not internal and order_id.lower().startswith(BOOKING_ORDER_PREFIX):",
        "if False:",
        ("tests/api/test_api_resources.py",),
    ),
    # -- time -------------------------------------------------------------------------------------------
    Mutant(
        "window_bounds ignores the buffer",
        "core/slots.py",
        "time(0), tzinfo=tz).astimezone(UTC) - buffer",
        "time(0), tzinfo=tz).astimezone(UTC)",
        ("tests/unit/test_slots.py", "tests/unit/test_booking.py"),
    ),
    Mutant(
        "reschedule does not cut its own event out of merged busy time",
        "core/booking.py",
        "pieces = subtract_interval(interval, own) if own is not None else [interval]",
        "pieces = [interval]",
        ("tests/unit/test_admin.py", "tests/unit/test_google_booking.py"),
    ),
]


def run(mutant: Mutant) -> tuple[bool, float]:
    path = ROOT / mutant.path
    original = path.read_text()
    count = original.count(mutant.find)
    if count != 1:
        raise SystemExit(f"mutant {mutant.name!r}: the code to change occurs {count} times in {mutant.path}")
    started = time.monotonic()
    try:
        path.write_text(original.replace(mutant.find, mutant.replace))
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "pytest",
                "-x",
                "-q",
                "-p",
                "no:cacheprovider",
                "-p",
                "no:randomly",
                *mutant.tests,
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        path.write_text(original)
    if result.returncode not in (0, 1):  # 1: tests failed; anything else: pytest itself could not run
        raise SystemExit(
            f"mutant {mutant.name!r}: pytest did not run (exit {result.returncode}):\n"
            f"{result.stdout[-2000:]}{result.stderr[-2000:]}"
        )
    return result.returncode == 1, time.monotonic() - started


def main(argv: list[str]) -> int:
    chosen = [m for m in MUTANTS if not argv or any(a.lower() in m.name.lower() for a in argv)]
    survived = []
    for mutant in chosen:
        killed, seconds = run(mutant)
        print(
            f"{'killed  ' if killed else 'SURVIVED'} {seconds:6.1f}s  {mutant.name}  ({mutant.path})",
            flush=True,
        )
        if not killed:
            survived.append(mutant)
    print(f"\n{len(chosen) - len(survived)} of {len(chosen)} mutants killed.")
    for mutant in survived:
        print(f"  missing test: {mutant.name} ({mutant.path}); tests run: {', '.join(mutant.tests)}")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
