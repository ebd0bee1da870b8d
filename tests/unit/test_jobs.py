"""Durable jobs (core/jobs.py): written with the state change, run after commit, once per key,
one worker at a time, retried with capped backoff until the outside service heals."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from core import clock, jobs
from core.config import set_settings
from core.db import read_session, write_session
from core.errors import CalendarUnavailable, ValidationFailed
from core.models import Job, JobStatus
from tests.conftest import AMS, make_settings

T0 = datetime(2026, 11, 30, 8, 0, tzinfo=AMS)
calls: list[str] = []
behaviour: dict[str, list] = {}


def _run(ctx: jobs.JobContext) -> str:
    calls.append(ctx.key)
    plan = behaviour.get(ctx.key) or []
    step = plan.pop(0) if plan else "ok"
    if isinstance(step, Exception):
        raise step
    if callable(step):
        return step(ctx)
    return step


failed_hook: list[str] = []
jobs.register("test.effect", _run, lambda session, job, error: failed_hook.append(f"{job.key}: {error}"))


@pytest.fixture(autouse=True)
def world(engine):
    calls.clear()
    behaviour.clear()
    failed_hook.clear()
    clock.set_now(T0)


def _enqueue(key: str, subject: str | None = None, **kw) -> None:
    with write_session() as session:
        jobs.enqueue(session, "test.effect", key, {"n": 1}, subject=subject, **kw)


def _job(key: str) -> Job:
    with read_session() as session:
        return session.exec(select(Job).where(Job.key == key)).one()


def _advance(seconds: float) -> None:
    clock.set_now(clock.now() + timedelta(seconds=seconds))


def test_a_job_is_stored_once_per_key_and_runs_once():
    _enqueue("k1")
    _enqueue("k1")
    assert jobs.run_due(kinds=["test.effect"]).done == 1
    assert jobs.run_due(kinds=["test.effect"]).claimed == 0
    assert calls == ["k1"]
    assert _job("k1").status == JobStatus.DONE


def test_a_job_written_in_a_rolled_back_transaction_never_runs():
    with pytest.raises(RuntimeError), write_session() as session:
        jobs.enqueue(session, "test.effect", "k-rolled-back")
        raise RuntimeError("the state change failed")
    assert jobs.run_due(kinds=["test.effect"]).claimed == 0
    assert calls == []


def test_rearm_runs_a_finished_job_again_but_leaves_a_pending_one_alone():
    _enqueue("k1")
    jobs.run_due(kinds=["test.effect"])
    _enqueue("k1", rearm=True)
    _enqueue("k1", rearm=True)  # still pending: not a second run
    jobs.run_due(kinds=["test.effect"])
    assert calls == ["k1", "k1"]


@pytest.mark.parametrize("outcome", ["ok", ValidationFailed("refused")])
def test_a_job_asked_for_again_while_it_runs_runs_once_more_after_it(outcome):
    """The run may have read the state before the caller changed it (a lesson cancelled while
    its event was being made), so it runs again — done or failed — and only once more."""
    _enqueue("k1")

    def asked_again_meanwhile(ctx):
        _enqueue("k1", rearm=True)
        _enqueue("k1", rearm=True)  # twice while running: still one more run
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    behaviour["k1"] = [asked_again_meanwhile]
    jobs.run_due(kinds=["test.effect"])
    assert (_job("k1").status, failed_hook) == (JobStatus.PENDING, [])  # not failed: it runs again
    jobs.run_due(kinds=["test.effect"])
    assert calls == ["k1", "k1"]
    assert (_job("k1").status, _job("k1").rearmed, _job("k1").attempts) == (JobStatus.DONE, False, 1)


def test_a_transient_failure_is_retried_after_a_backoff_and_then_succeeds():
    behaviour["k1"] = [CalendarUnavailable("Google answered 503")]
    _enqueue("k1")
    report = jobs.run_due(kinds=["test.effect"])
    assert report.retried == 1
    job = _job("k1")
    assert job.status == JobStatus.PENDING and "503" in job.last_error
    assert job.run_after == T0 + jobs.backoff(1)
    assert jobs.run_due(kinds=["test.effect"]).claimed == 0  # not due yet
    _advance(jobs.backoff(1).total_seconds())
    assert jobs.run_due(kinds=["test.effect"]).done == 1
    assert _job("k1").last_error is None


@pytest.mark.parametrize(
    ("attempts", "retry_after", "seconds"),
    [
        (1, None, 2),
        (2, None, 4),
        (5, None, 32),
        (6, None, 60),
        (30, None, 60),
        (1, 10.0, 10),
        (1, 3600.0, 60),
    ],
)
def test_backoff_doubles_honours_retry_after_and_is_capped_at_a_minute(attempts, retry_after, seconds):
    assert jobs.backoff(attempts, retry_after) == timedelta(seconds=seconds)


def test_the_backoff_cap_is_a_setting(tmp_path, engine):
    set_settings(make_settings(tmp_path, job_max_backoff_seconds=10))
    assert jobs.backoff(20) == timedelta(seconds=10)


def test_a_healed_service_is_used_within_a_minute_however_long_it_was_down():
    down_until = T0 + timedelta(hours=3)

    def flaky(ctx):
        if clock.now() < down_until:
            raise jobs.Retry("down")
        return "ok"

    behaviour["k1"] = [flaky] * 10_000
    _enqueue("k1")
    while _job("k1").status != JobStatus.DONE:
        job = _job("k1")
        clock.set_now(max(clock.now(), job.run_after))
        jobs.run_due(kinds=["test.effect"])
    assert _job("k1").done_at - down_until <= timedelta(seconds=60)


def test_a_permanent_refusal_fails_the_job_with_its_reason_and_staff_can_retry_it():
    behaviour["k1"] = [ValidationFailed("the calendar refused the event")]
    _enqueue("k1")
    assert jobs.run_due(kinds=["test.effect"]).failed == 1
    job = _job("k1")
    assert job.status == JobStatus.FAILED and "refused" in job.last_error
    assert failed_hook == ["k1: the calendar refused the event"]
    jobs.retry(job.id)
    assert jobs.run_due(kinds=["test.effect"]).done == 1


def test_a_bug_in_a_handler_is_retried_a_few_times_then_fails_without_killing_the_worker():
    behaviour["k1"] = [KeyError("boom")] * jobs.MAX_UNEXPECTED_ATTEMPTS
    _enqueue("k1")
    for _ in range(jobs.MAX_UNEXPECTED_ATTEMPTS):
        jobs.run_due(kinds=["test.effect"])
        _advance(120)
    job = _job("k1")
    assert job.status == JobStatus.FAILED and "KeyError" in job.last_error


def test_two_workers_never_hold_one_job():
    _enqueue("k1")
    first = jobs.claim("worker-a", kinds=["test.effect"])
    second = jobs.claim("worker-b", kinds=["test.effect"])
    assert [c.key for c in first] == ["k1"] and second == []


def test_a_dead_workers_job_is_taken_over_after_its_lease_and_the_slow_worker_stops_before_calling_out():
    _enqueue("k1")
    [slow] = jobs.claim("worker-a", kinds=["test.effect"])
    _advance(jobs.LEASE.total_seconds() + 1)  # worker-a stalls past its lease
    [fresh] = jobs.claim("worker-b", kinds=["test.effect"])
    assert fresh.attempts == 2
    with pytest.raises(jobs.LeaseLost):
        slow.renew()  # what a handler calls right before its outside call
    assert jobs.run_job(slow) is None  # it stops and records nothing
    assert calls == []
    assert jobs.run_job(fresh) == JobStatus.DONE
    assert calls == ["k1"]


def test_only_the_lease_holder_records_an_outcome():
    _enqueue("k1")

    def stall(ctx):
        _advance(jobs.LEASE.total_seconds() + 1)
        [taken] = jobs.claim("worker-b", kinds=["test.effect"])
        assert jobs.run_job(taken) == JobStatus.DONE
        return "late result"

    behaviour["k1"] = [stall]
    [ctx] = jobs.claim("worker-a", kinds=["test.effect"])
    assert jobs.run_job(ctx) is None
    job = _job("k1")
    assert job.status == JobStatus.DONE and job.result == "ok" and job.attempts == 2


def test_jobs_of_one_subject_run_one_at_a_time():
    _enqueue("a", subject="lesson-1")
    _enqueue("b", subject="lesson-1")
    _enqueue("c", subject="lesson-2")
    first = jobs.claim("worker-a", kinds=["test.effect"])
    assert sorted(c.key for c in first) == ["a", "c"]
    assert jobs.claim("worker-b", kinds=["test.effect"]) == []  # b waits for a
    for ctx in first:
        jobs.run_job(ctx)
    assert [c.key for c in jobs.claim("worker-b", kinds=["test.effect"])] == ["b"]


def test_fencing_is_by_attempt_not_only_by_worker_name():
    """A worker that lost its job and claims it again under the same name (a restarted process
    with the same host, pid and thread) holds the new attempt, not the old one: the old
    attempt's renew and outcome are refused."""
    _enqueue("k1")
    [old] = jobs.claim("worker-a", kinds=["test.effect"])
    _advance(jobs.LEASE.total_seconds() + 1)
    [new] = jobs.claim("worker-a", kinds=["test.effect"])
    assert (old.attempts, new.attempts) == (1, 2)

    with pytest.raises(jobs.LeaseLost):
        old.renew()
    assert jobs._finish(old, JobStatus.DONE, result="stale") is False
    assert _job("k1").status == JobStatus.RUNNING
    assert jobs.run_job(new) == JobStatus.DONE


def test_a_worker_whose_lease_ran_out_but_was_not_taken_over_may_go_on():
    """The lease is a claim against other workers, not a deadline: as long as nobody took the
    job over, renewing extends it and the worker's result counts."""
    _enqueue("k1")
    [ctx] = jobs.claim("worker-a", kinds=["test.effect"])
    _advance(jobs.LEASE.total_seconds() + 1)
    ctx.renew()
    assert jobs.claim("worker-b", kinds=["test.effect"]) == []  # renewed: not up for grabs
    assert jobs.run_job(ctx) == JobStatus.DONE
