"""Delivering the outbox to Chatwoot (core/chat.py) against a local fake Chatwoot server."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from core import chat, clock
from core.chat import (
    MAX_ATTEMPTS,
    ChatwootClient,
    ChatwootConfig,
    backoff,
    claim_due,
    deliver_pending,
    mark_delivered_by_bot,
    run_worker,
)
from core.config import set_settings
from core.conversations import ensure_conversation
from core.db import read_session, reset_engines, write_session
from core.errors import InvalidTransition, NotFound
from core.messages import queue_message
from core.models import IntegrationStatus, OutboxMessage
from tests.conftest import make_settings
from tests.fakes.chatwoot import FakeChatwoot


class MovableClock:
    """core.clock that starts at the real time (so the fake's timestamps agree) and moves on
    only when told."""

    def __init__(self) -> None:
        self.value = datetime.now(UTC)
        clock.set_now(lambda: self.value)

    def advance(self, **delta: float) -> None:
        self.value += timedelta(**delta)

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
    s = make_settings(tmp_path, chatwoot_url=chatwoot.url + "/", chatwoot_account_id=chatwoot.account_id,
                      chatwoot_api_token=chatwoot.token)
    set_settings(s)
    return s


def queue(conversation_id: str = "1001", key: str = "booking_confirmed", dedupe: str | None = None,
          contact_id: str = "501", **params) -> int:
    with write_session() as session:
        ensure_conversation(session, conversation_id, contact_id)
        message = queue_message(session, conversation_id, key, dedupe_key=dedupe or f"{key}:{conversation_id}:{time.monotonic_ns()}",
                                when="dinsdag 1 december om 10:00", **params)
        return message.id


def message(message_id: int) -> OutboxMessage:
    with read_session() as session:
        return session.get(OutboxMessage, message_id)


def test_a_pending_message_is_delivered_once_as_a_public_outgoing_message(chat_settings, chatwoot):
    mid = queue()

    report = deliver_pending()

    assert (report.claimed, report.sent) == (1, 1)
    assert chatwoot.sent("1001") == ["Je les is ingepland op dinsdag 1 december om 10:00. Tot dan!"]
    post = chatwoot.requests_to("POST", "/conversations/1001/messages")[0]
    assert post.path == "/api/v1/accounts/7/conversations/1001/messages"
    assert post.body == {"content": chatwoot.sent("1001")[0], "message_type": "outgoing", "private": False}
    row = message(mid)
    assert row.status == "sent" and row.sent_at is not None and row.attempts == 1
    assert deliver_pending().claimed == 0
    assert len(chatwoot.sent("1001")) == 1


def test_a_server_error_is_retried_after_a_backoff_and_then_delivered_once(chat_settings, chatwoot, moving_clock):
    mid = queue()
    chatwoot.fail_next(500)

    first = deliver_pending()

    assert (first.sent, first.retried) == (0, 1)
    row = message(mid)
    assert row.status == "pending" and row.attempts == 1 and "500" in row.last_error
    assert row.next_attempt_at == moving_clock.value + backoff(1)
    assert deliver_pending().claimed == 0  # not due yet
    moving_clock.advance(seconds=backoff(1).total_seconds())
    assert deliver_pending().sent == 1
    assert len(chatwoot.sent("1001")) == 1
    assert message(mid).status == "sent"


def test_rate_limiting_honours_retry_after_and_holds_back_the_rest_of_the_batch(chat_settings, chatwoot, moving_clock):
    ids = [queue("1001"), queue("1002"), queue("1003")]
    chatwoot.fail_next(429, retry_after=120)

    report = deliver_pending()

    assert (report.sent, report.retried) == (0, 1)
    assert len(chatwoot.requests_to("POST", "/messages")) == 1  # nothing more in this round
    rows = [message(i) for i in ids]
    assert all(r.status == "pending" for r in rows)
    assert all(r.next_attempt_at == moving_clock.value + timedelta(seconds=120) for r in rows)
    assert [r.attempts for r in rows] == [1, 0, 0]  # the held-back ones did not use an attempt
    moving_clock.advance(seconds=120)
    assert deliver_pending().sent == 3
    assert sorted(cid for cid, _ in chatwoot.all_sent()) == ["1001", "1002", "1003"]


@pytest.mark.parametrize(("attempts", "retry_after", "seconds"), [
    (1, None, 10), (2, None, 20), (3, None, 40), (8, None, 1280), (20, None, 1800),
    (1, 90, 90), (3, 5, 40), (1, 99999, 1800),
])
def test_backoff_doubles_and_respects_retry_after(attempts, retry_after, seconds):
    assert backoff(attempts, retry_after) == timedelta(seconds=seconds)


def test_a_message_fails_for_good_after_the_last_attempt(chat_settings, chatwoot, moving_clock):
    mid = queue()
    chatwoot.fail_next(503, times=MAX_ATTEMPTS)

    for _ in range(MAX_ATTEMPTS):
        deliver_pending()
        moving_clock.advance(hours=1)

    row = message(mid)
    assert row.status == "failed" and row.attempts == MAX_ATTEMPTS and "503" in row.last_error
    assert deliver_pending().claimed == 0
    assert chatwoot.sent("1001") == []


@pytest.mark.parametrize("status", [400, 404, 422])
def test_client_errors_are_not_retried(chat_settings, chatwoot, status):
    mid = queue()
    chatwoot.fail_next(status, match="/messages")

    report = deliver_pending()

    assert report.failed == 1
    row = message(mid)
    assert row.status == "failed" and row.attempts == 1 and str(status) in row.last_error


def test_a_wrong_token_fails_without_leaking_it(tmp_path, engine, chatwoot):
    set_settings(make_settings(tmp_path, chatwoot_url=chatwoot.url, chatwoot_account_id="7",
                               chatwoot_api_token="wrong-token-abcdef", bot_api_token="bot-secret-xyz"))
    mid = queue()

    deliver_pending()

    row = message(mid)
    assert row.status == "failed" and "401" in row.last_error
    assert "wrong-token-abcdef" not in row.last_error
    with read_session() as session:
        status = session.get(IntegrationStatus, "chat")
    assert status.ok is False and "401" in status.last_error


def test_a_timeout_that_reached_chatwoot_is_not_sent_a_second_time(chat_settings, chatwoot, moving_clock):
    mid = queue()
    chatwoot.slow_next(0.6, match="/messages")

    first = deliver_pending(timeout=0.2)
    assert first.retried == 1
    time.sleep(0.6)  # the slow request lands in Chatwoot after we gave up on it
    assert len(chatwoot.sent("1001")) == 1

    moving_clock.advance(seconds=backoff(1).total_seconds())
    second = deliver_pending()

    assert second.sent == 1
    assert len(chatwoot.sent("1001")) == 1
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
    assert [c.id for c in claim_due()] == [mid]  # ... and this worker dies before sending

    assert deliver_pending().claimed == 0  # the claim still stands
    moving_clock.advance(minutes=2, seconds=1)
    assert deliver_pending().sent == 1
    assert len(chatwoot.sent("1001")) == 1


def test_a_worker_that_died_after_sending_does_not_cause_a_duplicate(chat_settings, chatwoot, moving_clock):
    mid = queue()
    claimed = claim_due()
    with ChatwootClient(ChatwootConfig.from_settings(chat_settings)) as client:
        client.send_message(claimed[0].conversation_id, claimed[0].text)  # sent, then the crash

    moving_clock.advance(minutes=3)
    report = deliver_pending()

    assert report.sent == 1
    assert len(chatwoot.sent("1001")) == 1
    assert message(mid).status == "sent"


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
    with read_session() as session:
        assert {m.status for m in session.exec(select(OutboxMessage)).all()} == {"sent"}


def test_payment_attributes_are_mirrored_to_the_conversation_and_the_contact(chat_settings, chatwoot):
    with write_session() as session:
        conversation, contact = ensure_conversation(session, "1001", "501")
        # Assigned, not mutated: a row inserted in this transaction does not track mutations.
        conversation.attributes = dict(payment_completed=True, payment_intent_id="pi_123",
                                       payment_amount=4500, payment_currency="eur", internal_note="x")
        contact.attributes = dict(payment_completed=True, payment_intent_id="pi_123", payment_amount=4500,
                                  payment_currency="eur", has_paid_lesson=True)
        session.add(conversation)
        session.add(contact)
    queue("1001", "payment_success_message")
    queue("1001", "booking_confirmed")

    assert deliver_pending().sent == 2

    paid = {"payment_completed": True, "payment_intent_id": "pi_123", "payment_amount": 4500,
            "payment_currency": "eur"}
    assert chatwoot.conversation_attributes["1001"] == paid
    assert chatwoot.contact_attributes["501"] == {**paid, "has_paid_lesson": True}
    assert len(chatwoot.requests_to("POST", "/custom_attributes")) == 1  # once per conversation per round
    put = chatwoot.requests_to("PUT", "/contacts/501")[0]
    assert put.path == "/api/v1/accounts/7/contacts/501"


def test_a_contact_chatwoot_does_not_know_does_not_block_the_message(chat_settings, chatwoot):
    chatwoot.known_contacts = set()
    with write_session() as session:
        conversation, contact = ensure_conversation(session, "1001", "501")
        contact.attributes = {"payment_completed": True}
        session.add(contact)
    queue("1001")

    assert deliver_pending().sent == 1
    assert chatwoot.contact_attributes == {}


def test_without_chatwoot_messages_stay_pending_for_the_bot(settings, engine):
    mid = queue()

    report = deliver_pending()

    assert report.configured is False and "not configured" in str(report)
    assert message(mid).status == "pending" and message(mid).attempts == 0
    with read_session() as session:
        status = session.get(IntegrationStatus, "chat")
    assert status.ok is False and "CHATWOOT_URL" in status.detail


def test_the_bot_acknowledges_a_message_it_showed_itself(settings, engine):
    mid = queue("1001")

    assert mark_delivered_by_bot("1001", mid).status == "sent"
    assert mark_delivered_by_bot("1001", mid).status == "sent"  # idempotent
    with pytest.raises(NotFound):
        mark_delivered_by_bot("9999", mid)
    other = queue("1001")
    claim_due()  # a Chatwoot worker has it in hand
    with pytest.raises(InvalidTransition):
        mark_delivered_by_bot("1001", other)


def test_the_worker_delivers_releases_expired_holds_and_stops_when_told(chat_settings, chatwoot, monkeypatch):
    released = threading.Event()
    monkeypatch.setattr("core.booking.expire_holds", lambda: released.set() or 0)
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

    def broken(limit: int = 50):
        calls.append(limit)
        raise RuntimeError("database went away")

    monkeypatch.setattr(chat, "deliver_pending", broken)
    stop = threading.Event()
    thread = threading.Thread(target=run_worker, args=(stop,), kwargs={"interval": 0.01})
    thread.start()
    time.sleep(0.1)
    stop.set()
    thread.join(timeout=5)
    assert len(calls) >= 2 and not thread.is_alive()
