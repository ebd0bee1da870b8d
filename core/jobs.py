"""Durable jobs: every effect outside the database (calendar events, chat messages, Stripe
expiries and refunds) is a Job row written in the same transaction as the state change that
asks for it, and carried out after commit by a worker.

Why: a payment must never be rolled back because Google is down, and a message must never go
out for a change that was rolled back. So the transaction only writes rows; the outside call
happens later, is retried until the service heals, and is idempotent by the job's `key`.

Guarantees:
- `enqueue` inserts once per key (insert-or-nothing, safe across processes); `rearm=True`
  re-arms a finished job of that key (for effects that converge on the current state, like
  "make the calendar match lesson 42").
- A worker *claims* a due job with a lease (`lease_owner`, `lease_until`). Jobs with the same
  `subject` never run at once, so two calendar jobs of one lesson cannot interleave.
- Right before each outside call the handler calls `ctx.renew()`: it succeeds only while this
  attempt still holds the job, and extends the lease. A worker whose lease ran out and whose job
  another worker took over (it was slow, or paused) therefore stops before calling out, and its
  result is never recorded: outcomes are written only by the holder (fencing on owner + attempt
  number, so a restarted worker with the same name is no exception).
- Transient failures (the service is down, rate limits, timeouts) are retried with exponential
  backoff capped at `JOB_MAX_BACKOFF_SECONDS` (60 s), so a healed service is used within a
  minute, for as long as it takes. A permanent refusal marks the job `failed` with its reason;
  staff see it on the Integrations page and can retry it.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import CursorResult, Table, and_, func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from core import clock, integrations
from core.config import get_settings, scrub
from core.db import is_sqlite, read_session, write_session
from core.errors import IntegrationUnavailable, LesplannerError, NotFound
from core.models import Job, JobStatus

log = logging.getLogger("lesplanner.jobs")

LEASE = timedelta(minutes=5)  # longer than any one outside call may take (timeouts + retries)
BACKOFF_BASE_SECONDS = 2.0
MAX_UNEXPECTED_ATTEMPTS = 5  # a bug (not an outage) stops retrying after this many attempts


class Retry(Exception):
    """A transient failure: try again later (after `retry_after` seconds if the service said)."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Permanent(Exception):
    """The outside service refused for good; retrying the same request cannot help."""


class LeaseLost(Exception):
    """Another worker owns this job now (our lease ran out): stop, record nothing."""


@dataclass
class JobContext:
    """What a handler gets: the job's data and the lease to check before calling out."""

    id: int
    kind: str
    key: str
    payload: dict[str, Any]
    attempts: int
    owner: str

    def renew(self) -> None:
        """Check that this attempt still holds the job, and extend its lease; raises LeaseLost
        when another worker took it over. Call it right before every outside call. A lease that
        ran out but was not taken over is simply extended: the claim and this check are both
        write transactions, so exactly one of them wins."""
        with write_session() as session:
            self.hold(session, lease_until=clock.now() + LEASE)

    def save(self, **progress: Any) -> None:
        """Remember progress in the job's payload (only while we hold the job), so a retry
        after a crash knows what the earlier attempt already did."""
        self.payload = {**self.payload, **progress}
        with write_session() as session:
            self.hold(session, payload=self.payload)

    def hold(self, session: Session, **values: Any) -> None:
        """In the caller's transaction: make sure this attempt still holds the job (and lock its
        row until commit), so what the caller writes next is written by the holder only; raises
        LeaseLost otherwise. Fencing is by owner *and* attempt number, so a restarted worker
        with the same name is no exception."""
        changed = cast(
            "CursorResult[Any]",
            session.execute(
                update(Job)
                .where(
                    col(Job.id) == self.id,
                    col(Job.lease_owner) == self.owner,
                    col(Job.attempts) == self.attempts,
                    col(Job.status) == JobStatus.RUNNING,
                )
                .values(updated_at=clock.now(), **values)
            ),
        ).rowcount
        if changed != 1:
            raise LeaseLost(f"job {self.id} ({self.key}) is no longer ours")


Handler = Callable[[JobContext], str | None]
FailureHook = Callable[[Session, Job, str], None]


@dataclass(frozen=True)
class JobKind:
    run: Handler
    on_failed: FailureHook | None = None  # in the fenced transaction that marks the job failed


_KINDS: dict[str, JobKind] = {}


def register(kind: str, run: Handler, on_failed: FailureHook | None = None) -> None:
    """Make `kind` runnable. Each domain module registers the kinds it owns."""
    _KINDS[kind] = JobKind(run, on_failed)


def registered_kinds() -> list[str]:
    return sorted(_KINDS)


# --- writing jobs -----------------------------------------------------------------------------


def enqueue(
    session: Session,
    kind: str,
    key: str,
    payload: dict[str, Any] | None = None,
    *,
    subject: str | None = None,
    run_after: datetime | None = None,
    rearm: bool = False,
) -> None:
    """Ask for `kind` to run after the caller's transaction commits; once per `key`.

    With `rearm`, a job of this key that already finished (done or failed) runs again; a
    pending one is left as it is (it will see the newest state when it runs), and a running one
    runs once more after this run (it may have read the state before the caller changed it)."""
    now = clock.now()
    values = dict(
        kind=kind,
        key=key,
        subject=subject,
        payload=payload or {},
        status=JobStatus.PENDING,
        run_after=run_after or now,
        attempts=0,
        created_at=now,
        updated_at=now,
    )
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    table: Table = Job.__table__  # type: ignore[attr-defined]  # SQLModel's metaclass sets it
    session.execute(dialect.insert(table).values(**values).on_conflict_do_nothing(index_elements=["key"]))
    if rearm:
        # The running one first: should it finish between the two statements, the second
        # re-arms it as finished (on PostgreSQL each UPDATE waits for the row and re-checks).
        session.execute(
            update(Job).where(col(Job.key) == key, col(Job.status) == JobStatus.RUNNING).values(rearmed=True)
        )
        session.execute(
            update(Job)
            .where(col(Job.key) == key, col(Job.status).in_((JobStatus.DONE, JobStatus.FAILED)))
            .values(
                status=JobStatus.PENDING,
                run_after=run_after or now,
                attempts=0,
                payload=payload or {},
                last_error=None,
                lease_owner=None,
                lease_until=None,
                updated_at=now,
            )
        )


def cancel_pending(session: Session, key: str) -> None:
    """Drop a job that has not started (e.g. a reminder for a lesson that was cancelled)."""
    session.execute(
        update(Job)
        .where(col(Job.key) == key, col(Job.status) == JobStatus.PENDING)
        .values(status=JobStatus.DONE, result="no longer needed", done_at=clock.now(), updated_at=clock.now())
    )


# --- running jobs -----------------------------------------------------------------------------


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{uuid.uuid4().hex[:6]}"


def _due(now: datetime) -> Any:
    return or_(
        and_(col(Job.status) == JobStatus.PENDING, col(Job.run_after) <= now),
        and_(col(Job.status) == JobStatus.RUNNING, col(Job.lease_until) <= now),  # a dead worker's
    )


def claim(
    owner: str, limit: int = 10, now: datetime | None = None, kinds: list[str] | None = None
) -> list[JobContext]:
    """Lease up to `limit` due jobs to `owner`; at most one per subject, none whose subject
    already has a job running under a live lease."""
    now = now or clock.now()
    kinds = kinds if kinds is not None else registered_kinds()
    with read_session() as session:  # the common case, nothing due, takes no write lock
        if session.exec(select(Job.id).where(_due(now), col(Job.kind).in_(kinds)).limit(1)).first() is None:
            return []
    claimed: list[JobContext] = []
    with write_session() as session:
        busy_subjects = set(
            session.exec(
                select(Job.subject).where(
                    col(Job.status) == JobStatus.RUNNING,
                    col(Job.lease_until) > now,
                    col(Job.subject).is_not(None),
                )
            ).all()
        )
        stmt = (
            select(Job)
            .where(_due(now), col(Job.kind).in_(kinds))
            .order_by(col(Job.run_after), col(Job.id))
            .limit(limit * 4)
        )
        if not is_sqlite(session.get_bind()):
            stmt = stmt.with_for_update(skip_locked=True)
        for job in session.exec(stmt).all():
            if len(claimed) >= limit:
                break
            if job.subject is not None:
                if job.subject in busy_subjects:
                    continue
                busy_subjects.add(job.subject)
            job.status = JobStatus.RUNNING
            job.attempts += 1
            job.lease_owner = owner
            job.lease_until = now + LEASE
            job.updated_at = now
            session.add(job)
            assert job.id is not None  # a row read from the table has its id
            claimed.append(
                JobContext(job.id, job.kind, job.key, dict(job.payload or {}), job.attempts, owner)
            )
    return claimed


def backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    """Wait before the next attempt: 2 s, 4 s, 8 s, ... capped at JOB_MAX_BACKOFF_SECONDS, and
    never shorter than the service's Retry-After (which is capped the same way)."""
    cap = max(1.0, float(get_settings().job_max_backoff_seconds))
    return timedelta(
        seconds=integrations.backoff_delay(
            attempts - 1, base=BACKOFF_BASE_SECONDS, cap=cap, retry_after=retry_after, jitter=False
        )
    )


def _finish(
    ctx: JobContext,
    status: JobStatus,
    *,
    result: str | None = None,
    error: str | None = None,
    run_after: datetime | None = None,
) -> bool:
    """Record an outcome, only if we still hold the job (fencing). Returns whether we did."""
    now = clock.now()
    with write_session() as session:
        try:
            ctx.hold(session)
        except LeaseLost:
            return False
        job = session.get_one(Job, ctx.id)  # hold() just found it (and locked it)
        if job.rearmed and status in (JobStatus.DONE, JobStatus.FAILED):
            # Asked for again while it ran: run once more, from the state as it is now.
            status, run_after, job.attempts, job.rearmed = JobStatus.PENDING, None, 0, False
            result = f"{result or error or 'done'}; asked for again meanwhile"
        job.status = status
        job.updated_at = now
        job.lease_owner = None
        job.lease_until = None
        if result is not None:
            job.result = result[:1000]
        job.last_error = error[:1000] if error else (None if status == JobStatus.DONE else job.last_error)
        if status == JobStatus.DONE:
            job.done_at = now
        if status == JobStatus.PENDING:
            job.run_after = run_after or now
        session.add(job)
        if status == JobStatus.FAILED:
            kind = _KINDS.get(job.kind)
            if kind is not None and kind.on_failed is not None:
                kind.on_failed(session, job, error or "")
    return True


@dataclass
class RunReport:
    claimed: int = 0
    done: int = 0
    retried: int = 0
    failed: int = 0
    lost: int = 0
    errors: list[str] = field(default_factory=list)
    outcomes: list[tuple[str, str]] = field(default_factory=list)  # (key, done|retry|failed|lost)

    def __str__(self) -> str:
        if not self.claimed:
            return "nothing due"
        return f"{self.done} done, {self.retried} to retry, {self.failed} failed" + (
            f", {self.lost} taken over" if self.lost else ""
        )


def _error_text(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    return scrub(f"{text}")[:1000]


_OUTCOME_WORDS: dict[JobStatus | None, str] = {
    JobStatus.DONE: "done",
    JobStatus.PENDING: "retry",
    JobStatus.FAILED: "failed",
}


def run_job(ctx: JobContext, report: RunReport | None = None) -> JobStatus | None:
    """Run one claimed job and record its outcome. Never raises (except KeyboardInterrupt)."""
    report = report if report is not None else RunReport(claimed=1)
    outcome = _run_job(ctx, report)
    report.outcomes.append((ctx.key, _OUTCOME_WORDS.get(outcome, "lost")))
    return outcome


def _run_job(ctx: JobContext, report: RunReport) -> JobStatus | None:
    kind = _KINDS.get(ctx.kind)
    try:
        if kind is None:
            raise Permanent(f"no handler for job kind {ctx.kind!r}")
        ctx.renew()
        result = kind.run(ctx)
    except LeaseLost:
        report.lost += 1
        return None
    except (Retry, IntegrationUnavailable) as exc:
        error = _error_text(exc)
        wait = backoff(
            ctx.attempts,
            getattr(exc, "retry_after", None) or (getattr(exc, "extra", {}) or {}).get("retry_after"),
        )
        if _finish(ctx, JobStatus.PENDING, error=error, run_after=clock.now() + wait):
            report.retried += 1
            report.errors.append(f"{ctx.key}: {error}")
            log.warning(
                "job %s (%r) attempt %s failed, retrying in %ss: %s",
                ctx.id,
                ctx.key,
                ctx.attempts,
                int(wait.total_seconds()),
                error,
            )
            return JobStatus.PENDING
        report.lost += 1
        return None
    except (Permanent, LesplannerError) as exc:
        return _fail(ctx, report, _error_text(exc))
    except Exception as exc:  # noqa: BLE001 - a bug must not kill the worker or lose the job
        error = f"{type(exc).__name__}: {_error_text(exc)}"
        log.exception("job %s (%r) crashed", ctx.id, ctx.key)
        if ctx.attempts >= MAX_UNEXPECTED_ATTEMPTS:
            return _fail(ctx, report, error)
        if _finish(ctx, JobStatus.PENDING, error=error, run_after=clock.now() + backoff(ctx.attempts)):
            report.retried += 1
            report.errors.append(f"{ctx.key}: {error}")
            return JobStatus.PENDING
        report.lost += 1
        return None
    if _finish(ctx, JobStatus.DONE, result=result or "done"):
        report.done += 1
        return JobStatus.DONE
    report.lost += 1
    return None


def _fail(ctx: JobContext, report: RunReport, error: str) -> JobStatus | None:
    if _finish(ctx, JobStatus.FAILED, error=error):
        report.failed += 1
        report.errors.append(f"{ctx.key}: {error}")
        log.error("job %s (%r) failed: %s", ctx.id, ctx.key, error)
        return JobStatus.FAILED
    report.lost += 1
    return None


def run_due(
    owner: str | None = None, limit: int = 10, now: datetime | None = None, kinds: list[str] | None = None
) -> RunReport:
    """Claim and run the due jobs (one batch)."""
    owner = owner or worker_name()
    claimed = claim(owner, limit, now, kinds)
    report = RunReport(claimed=len(claimed))
    for ctx in claimed:
        run_job(ctx, report)
    return report


def run_until_idle(max_rounds: int = 50, kinds: list[str] | None = None) -> RunReport:
    """Run rounds until nothing is due now (tests, the CLI); a failing job waits for its backoff."""
    total = RunReport()
    for _ in range(max_rounds):
        report = run_due(kinds=kinds)
        if not report.claimed:
            break
        for name in ("claimed", "done", "retried", "failed", "lost"):
            setattr(total, name, getattr(total, name) + getattr(report, name))
        total.errors += report.errors
        total.outcomes += report.outcomes
    return total


# --- for people -------------------------------------------------------------------------------


def retry(job_id: int) -> Job:
    """Staff: run a failed (or waiting) job again now."""
    with write_session() as session:
        job = session.get(Job, job_id)
        if job is None:
            raise NotFound(f"Job {job_id} does not exist.")
        if job.status in (JobStatus.PENDING, JobStatus.FAILED):
            # attempts keep counting: a handler that checks whether an earlier attempt got
            # through (chat's read-back) must still do so after a retry by hand
            job.status = JobStatus.PENDING
            job.run_after = clock.now()
            job.updated_at = clock.now()
            session.add(job)
        return job


def is_running(session: Session, key: str) -> bool:
    """Is the job with `key` in a worker's hands right now (a live lease)?"""
    return (
        session.exec(
            select(Job.id).where(
                col(Job.key) == key, col(Job.status) == JobStatus.RUNNING, col(Job.lease_until) > clock.now()
            )
        ).first()
        is not None
    )


def counts(session: Session) -> dict[str, int]:
    rows = session.exec(select(Job.status, func.count()).group_by(Job.status)).all()
    return {str(status): n for status, n in rows}


def open_jobs(session: Session, limit: int = 200) -> list[Job]:
    """Jobs that are not done: failed first, then the longest waiting."""
    failed = session.exec(
        select(Job).where(Job.status == JobStatus.FAILED).order_by(col(Job.updated_at).desc()).limit(limit)
    ).all()
    waiting = session.exec(
        select(Job)
        .where(col(Job.status).in_((JobStatus.PENDING, JobStatus.RUNNING)))
        .order_by(col(Job.run_after), col(Job.id))
        .limit(limit)
    ).all()
    return list(failed) + list(waiting)
