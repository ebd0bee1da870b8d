"""Delivering the outbox to Chatwoot: the `chat.send` job (core/chat.py) on the durable jobs
(core/jobs.py), run against a local fake Chatwoot server."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from core import chat, clock, jobs
from core.chat import ChatwootClient, ChatwootConfig, backoff, deliver_pending, mark_delivered_by_bot
from core.config import get_settings, set_settings
from core.conversations import ensure_conversation
from core.db import read_session, reset_engines, write_session
from core.errors import InvalidTransition, NotFound
from core.messages import queue_message
from core.models import Contact, Conversation, IntegrationStatus, Job, JobStatus, OutboxMessage
from core.worker import run_worker
from tests.conftest import make_settings
from tests.fakes.chatwoot import FakeChatwoot

CHAT = ["chat.send"]
CONFIRMED = "Je les is ingepland op di 1 dec om 10:00. Tot dan!"


class MovableClock:
    """core.clock that starts at the real time (so the fake's timestamps agree) and moves on
    only when told."""

    def __init__(self) -> None:
        self.value = datetime.now(UTC)
        clock.set_now(lambda: self.value)

    def advance(self, **delta: float) -> None:
        self.value += timedelta(**delta)

    def past_the_lease(self) -> None:
        self.value += jobs.LEASE + timedelta(seconds=1)

    def timestamp(self) -> float:
        return self.value.timestamp()


@pytest.fixture
def moving_clock() -> MovableClock:
    return MovableClock()


@pytest.fixture
def chatwoot(moving_clock):
    with FakeChatwoot(now=moving_clock.timestamp) as fake:
        yield fake


@pytest.fixture
def chat_settings(tmp_path, engine, chatwoot):
    s = make_settings(
        tmp_path,
        chatwoot_url=chatwoot.url + "/",
        chatwoot_account_id=chatwoot.account_id,
        chatwoot_api_token=chatwoot.token,
    )
    set_settings(s)
    return s


def stored_before_the_id_rule(session, conversation_id: str, contact_id: str) -> Contact:  # noqa: ANN001
    """The conversation and contact as rows, the way any id was stored before the receiver and
    core checked ids (ensure_conversation now refuses unsafe ones): the worker must cope."""
    contact = session.get(Contact, contact_id) or Contact(id=contact_id)
    session.add(contact)
    if session.get(Conversation, conversation_id) is None:
        session.add(Conversation(id=conversation_id, contact_id=contact_id))
    session.flush()
    return contact


def queue(
    conversation_id: str = "1001",
    key: str = "booking_confirmed",
    dedupe: str | None = None,
    contact_id: str = "501",
    **params,
) -> int:
    with write_session() as session:
        stored_before_the_id_rule(session, conversation_id, contact_id)
        message = queue_message(
            session,
            conversation_id,
            key,
            dedupe_key=dedupe or f"{key}:{conversation_id}:{time.monotonic_ns()}",
            when="di 1 dec om 10:00",
            **params,
        )
        return message.id


def message(message_id: int) -> OutboxMessage:
    with read_session() as session:
        return session.get(OutboxMessage, message_id)


def job_of(message_id: int) -> Job:
    with read_session() as session:
        return session.exec(select(Job).where(Job.key == f"chat.send:{message_id}")).one()


def snapshot(message_id: int) -> tuple[dict, dict]:
    """Everything recorded about a message and its job."""
    return message(message_id).model_dump(), job_of(message_id).model_dump()


def give_conversation_attributes(conversation_id: str = "1001", contact_id: str = "501") -> None:
    with write_session() as session:
        conversation, _ = ensure_conversation(session, conversation_id, contact_id)
        conversation.attributes = {"payment_completed": True}
        session.add(conversation)


# --- delivering ---------------------------------------------------------------------------------


def test_queueing_a_message_writes_its_chat_send_job(settings, engine):
    mid = queue("1001")

    job = job_of(mid)
    assert (job.kind, job.subject, job.payload, job.status) == (
        "chat.send",
        "chat:1001",
        {"message_id": mid},
        "pending",
    )


def test_a_pending_message_is_delivered_once_as_a_public_outgoing_message(chat_settings, chatwoot):
    mid = queue()

    report = deliver_pending()

    assert (report.claimed, report.sent) == (1, 1)
    assert chatwoot.sent("1001") == [CONFIRMED]
    post = chatwoot.requests_to("POST", "/conversations/1001/messages")[0]
    assert post.path == "/api/v1/accounts/7/conversations/1001/messages"
    assert post.body == {"content": CONFIRMED, "message_type": "outgoing", "private": False}
    row = message(mid)
    assert row.status == "sent" and row.sent_at is not None and row.attempts == 1
    assert job_of(mid).status == JobStatus.DONE
    assert deliver_pending().claimed == 0
    assert len(chatwoot.sent("1001")) == 1
    assert chatwoot.requests_to("GET") == []  # a first attempt does not read back


def test_a_server_error_is_retried_after_a_backoff_and_then_delivered_once(
    chat_settings, chatwoot, moving_clock
):
    mid = queue()
    chatwoot.fail_next(500)

    first = deliver_pending()

    assert (first.sent, first.retried) == (0, 1)
    row = message(mid)
    assert row.status == "pending" and row.attempts == 1 and "500" in row.last_error
    job = job_of(mid)
    assert job.status == JobStatus.PENDING and job.run_after == moving_clock.value + backoff(1)
    assert deliver_pending().claimed == 0  # not due yet
    moving_clock.advance(seconds=backoff(1).total_seconds())
    assert deliver_pending().sent == 1
    assert len(chatwoot.sent("1001")) == 1
    row = message(mid)
    assert row.status == "sent" and row.attempts == 2 and row.last_error is None


def test_rate_limiting_honours_retry_after(chat_settings, chatwoot, moving_clock):
    mid = queue("1001")
    chatwoot.fail_next(429, retry_after=30)

    report = deliver_pending()

    assert (report.sent, report.retried) == (0, 1)
    assert job_of(mid).run_after == moving_clock.value + timedelta(seconds=30)  # not the 2 s backoff
    moving_clock.advance(seconds=29)
    assert deliver_pending().claimed == 0
    moving_clock.advance(seconds=1)
    assert deliver_pending().sent == 1
    assert chatwoot.sent("1001") == [CONFIRMED]


@pytest.mark.parametrize(
    ("attempts", "retry_after", "seconds"),
    [
        (1, None, 2),
        (2, None, 4),
        (3, None, 8),
        (5, None, 32),
        (6, None, 60),
        (20, None, 60),
        (1, 30, 30),
        (3, 5, 8),
        (1, 99999, 60),
        (1000, None, 60),
        (1100, None, 60),
    ],
)
def test_backoff_doubles_and_is_capped_at_a_minute(attempts, retry_after, seconds):
    assert get_settings().job_max_backoff_seconds == 60
    assert backoff(attempts, retry_after) == timedelta(seconds=seconds)


def test_while_chatwoot_is_down_a_message_is_retried_with_capped_backoff_and_sent_once_it_heals(
    chat_settings, chatwoot, moving_clock
):
    mid = queue()
    cap = timedelta(seconds=get_settings().job_max_backoff_seconds)
    chatwoot.fail_next(503, times=20)  # every request of 20 attempts (one each: the send or the read-back)

    waits = []
    for attempt in range(1, 21):
        report = deliver_pending()
        assert (report.claimed, report.retried, report.failed) == (1, 1, 0), attempt
        job = job_of(mid)
        assert job.status == JobStatus.PENDING and job.attempts == attempt
        waits.append(job.run_after - moving_clock.value)
        moving_clock.value = job.run_after

    assert waits == [backoff(n) for n in range(1, 21)]
    assert waits[:5] == [timedelta(seconds=s) for s in (2, 4, 8, 16, 32)] and set(waits[5:]) == {cap}
    row = message(mid)
    assert row.status == "pending" and row.attempts == 20 and "503" in row.last_error  # never given up
    assert chatwoot.sent("1001") == []

    # Chatwoot heals right after the 20th failure: the message goes out within the cap, once.
    job = job_of(mid)
    assert job.run_after - moving_clock.value <= cap
    moving_clock.advance(seconds=cap.total_seconds())
    assert deliver_pending().sent == 1
    assert deliver_pending().claimed == 0
    assert chatwoot.sent("1001") == [CONFIRMED]
    assert message(mid).status == "sent" and job_of(mid).status == JobStatus.DONE


def test_a_very_long_outage_still_records_the_retry(chat_settings, chatwoot, moving_clock):
    mid = queue()
    with write_session() as session:
        job = session.exec(select(Job).where(Job.key == f"chat.send:{mid}")).one()
        job.attempts = 1100  # about 18 hours of 60 s retries
        session.add(job)
    chatwoot.fail_next(503, times=2)

    report = deliver_pending()

    assert report.retried == 1
    assert job_of(mid).run_after == moving_clock.value + timedelta(seconds=60)


@pytest.mark.parametrize("status", [400, 404, 422])
def test_client_errors_are_not_retried(chat_settings, chatwoot, moving_clock, status):
    mid = queue()
    chatwoot.fail_next(status, match="/messages")

    report = deliver_pending()

    assert report.failed == 1
    row = message(mid)
    assert row.status == "failed" and row.attempts == 1 and str(status) in row.last_error
    job = job_of(mid)
    assert job.status == JobStatus.FAILED and str(status) in job.last_error
    moving_clock.advance(hours=1)
    assert deliver_pending().claimed == 0
    assert len(chatwoot.requests_to("POST", "/messages")) == 1


def test_a_wrong_token_fails_without_leaking_it(tmp_path, engine, chatwoot):
    set_settings(
        make_settings(
            tmp_path,
            chatwoot_url=chatwoot.url,
            chatwoot_account_id="7",
            chatwoot_api_token="wrong-token-abcdef",
            bot_api_token="bot-secret-xyz",
        )
    )
    mid = queue()

    deliver_pending()

    row = message(mid)
    assert row.status == "failed" and "401" in row.last_error
    assert "wrong-token-abcdef" not in row.last_error
    assert "wrong-token-abcdef" not in job_of(mid).last_error
    with read_session() as session:
        status = session.get(IntegrationStatus, "chat")
    assert status.ok is False and "401" in status.last_error
    assert "wrong-token-abcdef" not in status.last_error


def test_a_timeout_that_reached_chatwoot_is_not_sent_a_second_time(chat_settings, chatwoot, moving_clock):
    mid = queue()
    chatwoot.slow_next(0.6, match="/messages")

    first = deliver_pending(timeout=0.2)
    assert first.retried == 1 and "in time" in message(mid).last_error
    time.sleep(0.6)  # the slow request lands in Chatwoot after we gave up on it
    assert len(chatwoot.sent("1001")) == 1

    moving_clock.advance(seconds=backoff(1).total_seconds())
    second = deliver_pending()

    assert second.sent == 1
    assert len(chatwoot.sent("1001")) == 1
    assert len(chatwoot.requests_to("GET", "/conversations/1001/messages")) == 1  # the read-back
    assert message(mid).status == "sent"


def test_messages_are_not_sent_again_after_a_restart(chat_settings, chatwoot):
    queue("1001")
    queue("1002")
    assert deliver_pending().sent == 2

    reset_engines()  # a new process: fresh engine, same database
    again = deliver_pending()

    assert again.claimed == 0
    assert len(chatwoot.all_sent()) == 2


def test_a_dead_workers_claim_is_taken_over_after_the_lease(chat_settings, chatwoot, moving_clock):
    mid = queue()
    assert [c.key for c in jobs.claim("worker-a", kinds=CHAT)] == [f"chat.send:{mid}"]  # ... and it dies

    assert deliver_pending().claimed == 0  # the lease still stands
    moving_clock.advance(seconds=jobs.LEASE.total_seconds() - 1)
    assert deliver_pending().claimed == 0
    moving_clock.advance(seconds=2)
    assert deliver_pending().sent == 1
    assert len(chatwoot.sent("1001")) == 1
    assert message(mid).attempts == 2


def test_a_worker_that_died_after_sending_does_not_cause_a_duplicate(chat_settings, chatwoot, moving_clock):
    mid = queue()
    [ctx] = jobs.claim("worker-a", kinds=CHAT)
    with ChatwootClient(ChatwootConfig.from_settings(chat_settings)) as client:
        client.send_message("1001", message(ctx.payload["message_id"]).text)  # sent, then the crash

    moving_clock.past_the_lease()
    report = deliver_pending()

    assert report.sent == 1
    assert len(chatwoot.sent("1001")) == 1
    assert message(mid).status == "sent"
    assert "not sent again" in job_of(mid).result


def test_the_same_text_sent_long_ago_is_not_mistaken_for_this_message(chat_settings, chatwoot, moving_clock):
    first = queue("1001", "payment_success_message")
    deliver_pending()
    moving_clock.advance(days=7)
    second = queue("1001", "payment_success_message")  # a second lesson paid, same text
    chatwoot.fail_next(500, match="/messages")
    deliver_pending()
    moving_clock.advance(minutes=1)

    deliver_pending()

    assert message(first).status == message(second).status == "sent"
    assert len(chatwoot.sent("1001")) == 2


def test_two_workers_at_once_never_send_one_message_twice(chat_settings, chatwoot):
    for i in range(30):
        queue(f"{2000 + i}")
    barrier = threading.Barrier(2)

    def worker() -> None:
        barrier.wait()
        deliver_pending(limit=7)
        deliver_pending(limit=7)
        deliver_pending(limit=50)

    threads = [threading.Thread(target=worker) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    sent = chatwoot.all_sent()
    assert len(sent) == 30 and len(set(sent)) == 30
    assert len(chatwoot.requests_to("POST", "/messages")) == 30
    with read_session() as session:
        assert {m.status for m in session.exec(select(OutboxMessage)).all()} == {"sent"}


def test_messages_of_one_conversation_go_out_one_at_a_time_in_order(chat_settings, chatwoot):
    queue("1001", "payment_success_message")
    queue("1001", "booking_confirmed")

    assert deliver_pending().sent == 1  # one job per conversation (subject) at a time
    assert deliver_pending().sent == 1

    assert chatwoot.sent("1001")[1] == CONFIRMED and chatwoot.sent("1001")[0].startswith("Bedankt")


# --- issue 11 item 5: two chat workers and a slow Chatwoot ------------------------------------------


@pytest.mark.parametrize("b_finished_first", [True, False])
def test_a_worker_whose_lease_ran_out_does_not_send_what_the_next_worker_took_over(
    chat_settings, chatwoot, moving_clock, b_finished_first
):
    """Worker A claims the message, Chatwoot is slow, A's lease runs out, worker B takes the
    message over and sends it; A, carrying on with its stale claim, must not send it too."""
    mid = queue()
    [ctx_a] = jobs.claim("worker-a", kinds=CHAT)
    moving_clock.past_the_lease()
    [ctx_b] = jobs.claim("worker-b", kinds=CHAT)
    assert ctx_b.key == ctx_a.key and (ctx_a.attempts, ctx_b.attempts) == (1, 2)

    if b_finished_first:
        assert jobs.run_job(ctx_b) == JobStatus.DONE
        before = snapshot(mid)
        a_report = jobs.RunReport(claimed=1)
        assert jobs.run_job(ctx_a, a_report) is None  # A carries on with its stale claim
        assert snapshot(mid) == before  # ... and records nothing
        assert (a_report.lost, a_report.done, a_report.retried, a_report.failed) == (1, 0, 0, 0)
    else:
        before = snapshot(mid)
        assert jobs.run_job(ctx_a) is None  # B holds the job but is not done yet
        assert snapshot(mid) == before
        assert chatwoot.requests == []
        assert jobs.run_job(ctx_b) == JobStatus.DONE

    assert chatwoot.sent("1001") == [CONFIRMED]
    assert len(chatwoot.requests_to("POST", "/messages")) == 1
    row, job = snapshot(mid)
    assert row["status"] == "sent" and row["attempts"] == 2
    assert job["status"] == JobStatus.DONE and job["attempts"] == 2 and job["result"] == "sent"
    moving_clock.past_the_lease()
    assert deliver_pending().claimed == 0


def _take_over_during(
    chatwoot: FakeChatwoot, moving_clock: MovableClock, handler: str, method: str, answer: tuple | None = None
) -> list:
    """Make the fake Chatwoot slow inside one request of worker A: while that request hangs, A's
    lease runs out and worker B claims the message and runs it to the end. Then A's request is
    answered (normally, or with `answer`). Returns B's outcomes."""
    original = getattr(chatwoot, handler)
    fired = threading.Event()
    outcomes: list = []

    def slow(method_: str, ident: str, body):
        if method_ == method and not fired.is_set():
            fired.set()  # B's own requests go through normally
            moving_clock.past_the_lease()
            claimed = jobs.claim("worker-b", kinds=CHAT)
            outcomes.append([(ctx.attempts, jobs.run_job(ctx)) for ctx in claimed])
            if answer is not None:
                return answer
        return original(method_, ident, body)

    setattr(chatwoot, handler, slow)  # an instance attribute: the fake's `handle` looks it up per request
    return outcomes


@pytest.mark.parametrize("where", ["the attributes call", "the read-back"])
def test_a_worker_that_is_slowed_down_inside_its_run_stops_before_sending(
    chat_settings, chatwoot, moving_clock, where
):
    mid = queue()
    if where == "the attributes call":
        give_conversation_attributes()
        outcomes = _take_over_during(chatwoot, moving_clock, "_conversation_attributes", "POST")
        a_attempt = 1
    else:  # a read-back happens on a repeated attempt: let the first one fail
        chatwoot.fail_next(500)
        deliver_pending()
        moving_clock.advance(seconds=backoff(1).total_seconds())
        outcomes = _take_over_during(chatwoot, moving_clock, "_messages", "GET")
        a_attempt = 2
    [ctx_a] = jobs.claim("worker-a", kinds=CHAT)
    assert ctx_a.attempts == a_attempt

    a_report = jobs.RunReport(claimed=1)
    assert jobs.run_job(ctx_a, a_report) is None

    assert outcomes == [[(a_attempt + 1, JobStatus.DONE)]]  # B took it over and sent it
    assert a_report.lost == 1
    assert chatwoot.sent("1001") == [CONFIRMED]
    assert [r.status for r in chatwoot.requests_to("POST", "/messages")] == [500] * (a_attempt - 1) + [200]
    row, job = snapshot(mid)
    assert row["status"] == "sent" and row["attempts"] == a_attempt + 1  # B's record, not A's
    assert job["status"] == JobStatus.DONE and job["attempts"] == a_attempt + 1


@pytest.mark.parametrize(
    ("answer", "a_would_record"),
    [
        ((504, {}, {"error": "gateway timeout"}), "pending"),
        ((404, {}, {"error": "Resource could not be found"}), "failed"),
    ],
)
def test_a_late_error_of_a_worker_that_lost_its_lease_does_not_undo_the_delivery(
    chat_settings, chatwoot, moving_clock, answer, a_would_record
):
    """A checked its lease and sent, but its request hung (a paused process, a stuck proxy) past
    the lease; B took over and delivered; then A's request fails. A must not mark the message
    `pending` (the bot would show it again) or `failed`: its outcome no longer counts."""
    mid = queue()
    outcomes = _take_over_during(chatwoot, moving_clock, "_messages", "POST", answer=answer)
    [ctx_a] = jobs.claim("worker-a", kinds=CHAT)

    assert jobs.run_job(ctx_a) is None

    assert outcomes == [[(2, JobStatus.DONE)]]
    assert chatwoot.sent("1001") == [CONFIRMED]
    row, job = snapshot(mid)
    assert row["status"] == "sent", f"worker A's late error turned the sent message {a_would_record}"
    assert row["last_error"] is None and row["attempts"] == 2
    assert job["status"] == JobStatus.DONE


# --- attributes -----------------------------------------------------------------------------------


def test_payment_attributes_are_mirrored_to_the_conversation_and_the_contact(chat_settings, chatwoot):
    with write_session() as session:
        conversation, contact = ensure_conversation(session, "1001", "501")
        # Assigned, not mutated: a row inserted in this transaction does not track mutations.
        conversation.attributes = dict(
            payment_completed=True,
            payment_intent_id="pi_123",
            payment_amount=4500,
            payment_currency="eur",
            internal_note="x",
        )
        contact.attributes = dict(
            payment_completed=True,
            payment_intent_id="pi_123",
            payment_amount=4500,
            payment_currency="eur",
            has_paid_lesson=True,
        )
        session.add(conversation)
        session.add(contact)
    queue("1001", "payment_success_message")

    assert deliver_pending().sent == 1

    paid = {
        "payment_completed": True,
        "payment_intent_id": "pi_123",
        "payment_amount": 4500,
        "payment_currency": "eur",
    }
    assert chatwoot.conversation_attributes["1001"] == paid
    assert chatwoot.contact_attributes["501"] == {**paid, "has_paid_lesson": True}
    put = chatwoot.requests_to("PUT", "/contacts/501")[0]
    assert put.path == "/api/v1/accounts/7/contacts/501"
    order = [(r.method, r.path.rsplit("/", 1)[-1]) for r in chatwoot.requests]
    assert order.index(("POST", "messages")) == len(order) - 1  # attributes arrive before the message


def test_a_contact_chatwoot_does_not_know_does_not_block_the_message(chat_settings, chatwoot):
    chatwoot.known_contacts = set()
    with write_session() as session:
        conversation, contact = ensure_conversation(session, "1001", "501")
        contact.attributes = {"payment_completed": True}
        session.add(contact)
    queue("1001")

    assert deliver_pending().sent == 1
    assert chatwoot.contact_attributes == {}
    assert chatwoot.sent("1001") == [CONFIRMED]


@pytest.mark.parametrize("contact_id", ["..", ".", "a/../../x"])
def test_a_stored_contact_id_that_is_a_path_reaches_no_other_chatwoot_endpoint(
    chat_settings, chatwoot, contact_id
):
    # A row stored before the receiver checked ids: the worker must not PUT to another path.
    with write_session() as session:
        contact = stored_before_the_id_rule(session, "1001", contact_id)
        contact.attributes = {"payment_completed": True}
        session.add(contact)
    queue("1001", contact_id=contact_id)

    assert deliver_pending().sent == 1

    assert chatwoot.requests_to("PUT") == []
    assert all(r.path.startswith("/api/v1/accounts/7/conversations/1001/") for r in chatwoot.requests)
    assert chatwoot.sent("1001") == [CONFIRMED]


@pytest.mark.parametrize("conversation_id", ["..", "."])
def test_a_stored_conversation_id_that_is_a_path_fails_cleanly_without_a_request(
    chat_settings, chatwoot, conversation_id
):
    message_id = queue(conversation_id)

    report = deliver_pending()

    assert report.failed == 1 and report.sent == 0
    assert chatwoot.requests == []
    assert message(message_id).status == "failed"


# --- without Chatwoot, and the bot's side -----------------------------------------------------------


def test_without_chatwoot_messages_stay_pending_for_the_bot(settings, engine):
    mid = queue()

    report = deliver_pending()

    assert report.configured is False and "not configured" in str(report)
    assert message(mid).status == "pending" and message(mid).attempts == 0
    with read_session() as session:
        status = session.get(IntegrationStatus, "chat")
    assert status.ok is False and "CHATWOOT_URL" in status.detail

    jobs.run_until_idle(kinds=CHAT)  # the background worker runs every kind, chat.send too

    assert message(mid).status == "pending" and message(mid).attempts == 0
    assert [m.id for m in chat.conversation_messages("1001")] == [mid]


def test_the_bot_acknowledges_a_message_it_showed_itself(chat_settings, chatwoot, moving_clock):
    mid = queue("1001")

    assert mark_delivered_by_bot("1001", mid).status == "sent"
    assert mark_delivered_by_bot("1001", mid).status == "sent"  # idempotent
    with pytest.raises(NotFound):
        mark_delivered_by_bot("9999", mid)
    assert deliver_pending().sent == 1  # its job finds it delivered ...
    assert chatwoot.requests == []  # ... and leaves Chatwoot alone

    other = queue("1002")
    jobs.claim("worker-a", kinds=CHAT)  # a Chatwoot worker has it in hand
    with pytest.raises(InvalidTransition):
        mark_delivered_by_bot("1002", other)
    moving_clock.past_the_lease()  # that worker died
    assert mark_delivered_by_bot("1002", other).status == "sent"
    deliver_pending()
    assert chatwoot.all_sent() == []


# --- the worker ---------------------------------------------------------------------------------


def test_the_worker_delivers_releases_expired_holds_and_stops_when_told(chat_settings, chatwoot, monkeypatch):
    released = threading.Event()
    monkeypatch.setattr("core.lessons.expire_holds", lambda: released.set() or 0)
    queue("1001")
    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(stop,), kwargs={"interval": 0.05})
    thread.start()
    try:
        deadline = time.monotonic() + 5
        while not chatwoot.sent("1001") and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        stop.set()
        thread.join(timeout=5)

    assert not thread.is_alive()
    assert len(chatwoot.sent("1001")) == 1
    assert released.is_set()
    with read_session() as session:
        assert session.get(IntegrationStatus, "chat").ok is True


def test_the_worker_survives_a_failing_round(chat_settings, monkeypatch):
    calls = []

    def broken(*args, **kwargs):
        calls.append(args)
        raise RuntimeError("database went away")

    monkeypatch.setattr("core.lessons.expire_holds", broken)
    monkeypatch.setattr("core.jobs.run_due", broken)
    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(stop,), kwargs={"interval": 0.01})
    thread.start()
    try:  # two rounds, each failing twice, on however loaded a machine
        deadline = time.monotonic() + 10
        while len(calls) < 4 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        stop.set()
        thread.join(timeout=5)
    assert len(calls) >= 4 and not thread.is_alive()
