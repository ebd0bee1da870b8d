"""The whole lesson lifecycle explored by Hypothesis: bookings, payments (instant and delayed),
expiries, cancels, moves, repeated webhooks, the clock, and Google, Stripe and Chatwoot failing
in every way the fakes can (5xx, 429, a dropped connection after the work was done) at any
moment. Hypothesis picks the sequences; after every step the invariants must hold, and once the
services heal every job must finish and the outside world must match the database.

Everything goes through the real receiver (in process), the real client libraries and the HTTP
fakes. The runs are bounded (LIFECYCLE_EXAMPLES, default 20) so `make test` stays fast; raise it
locally to explore longer.
"""

from __future__ import annotations

import itertools
import os
import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlmodel import select

from core import clock, lessons, worker
from core.calendars import event_id_for_lesson, set_backend
from core.calendars.google import GoogleCalendarBackend
from core.config import set_settings
from core.db import read_session, reset_engines, write_session
from core.errors import LesplannerError
from core.lesson_changes import cancel_lesson, reschedule_lesson
from core.models import (
    BLOCKING_STATUSES,
    CANCELLED,
    CONFIRMED,
    NEEDS_RESCHEDULE,
    WAITING_FOR_PAYMENT,
    Job,
    JobStatus,
    Lesson,
    OutboxMessage,
    Payment,
    Tutor,
    User,
)
from core.payments import gateway
from receiver.main import create_app
from tests.conftest import AMS, fresh_schema, make_settings
from tests.fakes.chatwoot import FakeChatwoot
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.fakes.stripe_server import FakeStripe
from tests.procs import BOT_TOKEN, WEBHOOK_SECRET, add_prices, stripe_settings
from tests.support.rollup import assert_rollup_matches

EXAMPLES = int(os.environ.get("LIFECYCLE_EXAMPLES", "20"))
STEPS = int(os.environ.get("LIFECYCLE_STEPS", "30"))
START = datetime(2026, 11, 30, 8, 0, tzinfo=AMS)  # Monday
# Tuesday to Thursday, 10:00 to 17:00: offered by the 'new' profile from Monday 08:00 on.
SLOTS = [datetime(2026, 12, day, hour, 0, tzinfo=AMS) for day in (1, 2, 3) for hour in range(10, 18)]
RUN = itertools.count()
SETTLE_ROUNDS = 40

GOOGLE_FAULTS = ["down_500", "rate_429", "insert_answer_lost", "delete_answer_lost", "healed"]
STRIPE_FAULTS = ["down_500", "rate_429", "answer_lost", "healed"]
CHAT_FAULTS = ["down_503", "rate_429", "healed"]


def scheduled_later(job: Job) -> bool:
    """A reminder planned for later is not an unfinished job: it cannot have run yet."""
    return job.kind == "reminder" and job.status == "pending" and job.run_after > clock.now()


class Lifecycle(RuleBasedStateMachine):
    """One tutor, a few conversations, one database per example."""

    def __init__(self) -> None:
        super().__init__()
        # Fresh fakes for every example: nothing one example did (idempotency keys, sessions,
        # queued faults) can leak into the next and make a precondition flaky.
        self.google = FakeGoogleCalendar().__enter__()
        self.stripe = FakeStripe(now=lambda: clock.now().timestamp()).__enter__()
        self.chatwoot = FakeChatwoot(now=lambda: clock.now().timestamp()).__enter__()
        google, stripe_fake, chatwoot = self.google, self.stripe, self.chatwoot
        add_prices(stripe_fake)
        self.run = next(RUN)
        self.calendar = f"tutor{self.run}@lesplanner.test"
        self.tmp = Path(tempfile.mkdtemp(prefix="lifecycle-"))
        clock.set_now(START)
        self.settings = make_settings(
            self.tmp,
            bot_api_token=BOT_TOKEN,
            calendar_backend="google",
            gcal_service_account_json=google.service_account_json(),
            gcal_api_endpoint=google.api_endpoint,
            gcal_calendar_id=self.calendar,
            gcal_timeout_seconds=2.0,
            gcal_max_retries=1,
            gcal_call_budget_seconds=3.0,
            chatwoot_url=chatwoot.url + "/",
            chatwoot_account_id=chatwoot.account_id,
            chatwoot_api_token=chatwoot.token,
            **stripe_settings(stripe_fake, max_retries=1),
        )
        set_settings(self.settings)
        reset_engines()
        fresh_schema(self.settings.database_url)
        with write_session() as session:
            session.add(Tutor(name="Anna", email="anna@lesplanner.test", calendar_id=self.calendar))
            admin = User(email="admin@lesplanner.test", name="Beheerder", role="admin")
            session.add(admin)
            session.flush()
            self.admin = User(id=admin.id, email=admin.email, role="admin", active=True)
        self.backend = GoogleCalendarBackend(self.settings, retry_base_delay=0.001, record_status=False)
        set_backend(self.backend)
        self.client = TestClient(
            create_app(start_worker=False),
            raise_server_exceptions=False,
            headers={"Authorization": f"Bearer {BOT_TOKEN}"},
        )
        self.sessions: dict[int, str] = {}  # lesson id -> its (latest) checkout session id
        self.delivered: list[dict] = []  # webhook events already sent once, for repeats

    # -- the customer and the bot --------------------------------------------------------------

    def _conversation(self, n: int) -> tuple[str, str]:
        return f"{self.run}-conv-{n}", f"{self.run}-contact-{n}"

    @initialize()
    def start_clean(self) -> None:
        pass

    @rule(slot=st.sampled_from(SLOTS), who=st.integers(0, 2))
    def book(self, slot: datetime, who: int) -> None:
        conversation, contact = self._conversation(who)
        response = self.client.post(
            "/api/v1/bookings",
            json={
                "conversation_id": conversation,
                "contact_id": contact,
                "start": slot.isoformat(),
                "end": (slot + timedelta(hours=1)).isoformat(),
                "title": "Wiskunde",
            },
        )
        assert response.status_code in (200, 201, 409, 422, 503), response.text
        if response.status_code in (200, 201) and response.json()["checkout_session_id"]:
            self.sessions[response.json()["id"]] = response.json()["checkout_session_id"]

    def _open_sessions(self) -> list[tuple[int, str]]:
        return [
            (lid, sid)
            for lid, sid in sorted(self.sessions.items())
            if self.stripe.sessions[sid]["status"] == "open"
        ]

    def _unpaid_completed(self) -> list[tuple[int, str]]:
        return [
            (lid, sid)
            for lid, sid in sorted(self.sessions.items())
            if self.stripe.sessions[sid]["status"] == "complete"
            and self.stripe.sessions[sid]["payment_status"] == "unpaid"
        ]

    def _deliver(self, event: dict) -> None:
        body, header = self.stripe.signed(event, WEBHOOK_SECRET)
        response = self.client.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": header})
        # The webhook changes rows only: no outside service can make it fail.
        assert response.status_code == 200, response.text
        self.delivered.append(event)

    @precondition(lambda self: self._open_sessions())
    @rule(data=st.data(), instant=st.booleans())
    def customer_pays(self, data: st.DataObject, instant: bool) -> None:
        _, session_id = data.draw(st.sampled_from(self._open_sessions()))
        self._deliver(self.stripe.complete_session(session_id, paid=instant))

    @precondition(lambda self: self._unpaid_completed())
    @rule(data=st.data(), succeeds=st.booleans())
    def delayed_payment_settles(self, data: st.DataObject, succeeds: bool) -> None:
        _, session_id = data.draw(st.sampled_from(self._unpaid_completed()))
        event = self.stripe.async_succeed(session_id) if succeeds else self.stripe.async_fail(session_id)
        self._deliver(event)

    @precondition(lambda self: self._open_sessions())
    @rule(data=st.data())
    def stripe_expires_the_checkout(self, data: st.DataObject) -> None:
        _, session_id = data.draw(st.sampled_from(self._open_sessions()))
        self._deliver(self.stripe.expire_session(session_id))

    @precondition(lambda self: self.delivered)
    @rule(data=st.data())
    def stripe_repeats_an_event(self, data: st.DataObject) -> None:
        self._deliver(data.draw(st.sampled_from(self.delivered)))

    # -- staff ---------------------------------------------------------------------------------

    def _lesson_ids(self) -> list[int]:
        with read_session() as session:
            return list(session.exec(select(Lesson.id).order_by(Lesson.id)).all())

    @precondition(lambda self: self._lesson_ids())
    @rule(data=st.data())
    def staff_cancel(self, data: st.DataObject) -> None:
        lesson_id = data.draw(st.sampled_from(self._lesson_ids()))
        try:
            cancel_lesson(lesson_id, self.admin, "docent ziek")
        except LesplannerError:
            pass  # already over: a clear refusal, nothing changed

    @precondition(lambda self: self._lesson_ids())
    @rule(data=st.data(), slot=st.sampled_from(SLOTS))
    def staff_move(self, data: st.DataObject, slot: datetime) -> None:
        lesson_id = data.draw(st.sampled_from(self._lesson_ids()))
        try:
            reschedule_lesson(lesson_id, slot, self.admin, "ruil")
        except LesplannerError:
            pass

    # -- time and the outside world ------------------------------------------------------------

    @rule(minutes=st.sampled_from([1, 10, 31, 90, 24 * 60, 73 * 60]))
    def time_passes(self, minutes: int) -> None:
        clock.set_now(clock.now() + timedelta(minutes=minutes))

    @rule()
    def worker_round(self) -> None:
        report = worker.tick(limit=50)
        assert report is not None  # a round never crashes
        with read_session() as session:
            stale = session.exec(
                select(Lesson)
                .where(col_in(Lesson.status, WAITING_FOR_PAYMENT))
                .where(Lesson.hold_expires_at <= clock.now())
            ).all()
        assert not stale, f"holds past their expiry after a worker round: {[lesson.id for lesson in stale]}"

    @rule(fault=st.sampled_from(GOOGLE_FAULTS))
    def google_changes(self, fault: str) -> None:
        self.google.clear_faults()
        if fault == "down_500":
            self.google.fail_next(500, count=10_000)
        elif fault == "rate_429":
            self.google.fail_next(429, count=3, reason="rateLimitExceeded")
        elif fault == "insert_answer_lost":
            self.google.drop_next(1, match="events.insert", after_processing=True)
        elif fault == "delete_answer_lost":
            self.google.drop_next(1, match="events.delete", after_processing=True)

    @rule(fault=st.sampled_from(STRIPE_FAULTS))
    def stripe_changes(self, fault: str) -> None:
        self.stripe.clear_faults()
        if fault == "down_500":
            self.stripe.fail_next("500", times=10_000)
        elif fault == "rate_429":
            self.stripe.fail_next("429", times=3)
        elif fault == "answer_lost":
            self.stripe.fail_next("drop", times=1)

    @rule(fault=st.sampled_from(CHAT_FAULTS))
    def chatwoot_changes(self, fault: str) -> None:
        self.chatwoot.clear_faults()
        if fault == "down_503":
            self.chatwoot.fail_next(503, times=10_000)
        elif fault == "rate_429":
            self.chatwoot.fail_next(429, times=2, retry_after=5)

    # -- what must always hold ------------------------------------------------------------------

    @invariant()
    def no_two_lessons_share_time(self) -> None:
        now = clock.now()
        with read_session() as session:
            rows = session.exec(
                select(Lesson).where(col_in(Lesson.status, BLOCKING_STATUSES)).order_by(Lesson.start)
            ).all()
        live = [r for r in rows if lessons.blocks(r.status, r.hold_expires_at, now)]
        for a, b in itertools.pairwise(live):
            assert a.end <= b.start, f"lessons {a.id} and {b.id} overlap"

    @invariant()
    def no_money_without_a_lesson(self) -> None:
        """A paid payment belongs to a confirmed lesson, one that needs a new time, or one staff
        cancelled on purpose (finance sees it for a refund) — never to a hold that expired."""
        with read_session() as session:
            pairs = session.exec(
                select(Payment, Lesson).where(Payment.lesson_id == Lesson.id).where(Payment.status == "paid")
            ).all()
        for payment, lesson in pairs:
            assert lesson.status in (CONFIRMED, NEEDS_RESCHEDULE) or (
                lesson.status == CANCELLED and lesson.cancel_reason == "docent ziek"
            ), f"payment {payment.checkout_session_id} is paid but lesson {lesson.id} is {lesson.status}"

    @invariant()
    def no_effect_twice(self) -> None:
        events = [e for e in self.google.events(self.calendar) if e["id"].startswith("lesplanner")]
        ids = [e["id"] for e in events]
        assert len(ids) == len(set(ids))
        with read_session() as session:
            queued = session.exec(select(OutboxMessage)).all()
        for conversation in {m.conversation_id for m in queued}:
            sent = self.chatwoot.sent(conversation)
            for text in set(sent):
                assert sent.count(text) <= sum(
                    1 for m in queued if m.conversation_id == conversation and m.text == text
                ), f"sent twice: {text!r}"

    @invariant()
    def payment_rollup_matches_the_payments(self) -> None:
        """The console's daily totals (PaymentDaily) equal a recomputation from the payments."""
        assert_rollup_matches()

    # -- once everything heals ---------------------------------------------------------------------

    def teardown(self) -> None:
        try:
            self._settle_and_compare()
        finally:
            set_backend(None)
            reset_engines()
            for fake in (self.google, self.stripe, self.chatwoot):
                fake.__exit__(None, None, None)

    def _settle_and_compare(self) -> None:
        for fake in (self.google, self.stripe, self.chatwoot):
            fake.clear_faults()
        for _ in range(SETTLE_ROUNDS):
            clock.set_now(clock.now() + timedelta(seconds=61))  # the backoff never exceeds a minute
            worker.drain()
            with read_session() as session:
                open_jobs = [
                    j
                    for j in session.exec(select(Job).where(Job.status != JobStatus.DONE)).all()
                    if not scheduled_later(j)
                ]
            if not open_jobs:
                break
        assert not open_jobs, [(j.key, j.status, j.last_error) for j in open_jobs]
        with read_session() as session:
            all_lessons = session.exec(select(Lesson)).all()
            messages = session.exec(select(OutboxMessage)).all()
        for lesson in all_lessons:
            event = self.google.event(self.calendar, event_id_for_lesson(lesson.id))
            live = event is not None and event.get("status") != "cancelled"
            if lesson.status == CONFIRMED:
                assert lesson.calendar_sync == "synced", (lesson.id, lesson.calendar_sync)
                assert live, f"confirmed lesson {lesson.id} has no event"
                assert datetime.fromisoformat(event["start"]["dateTime"]) == lesson.start
            else:
                assert not live, f"lesson {lesson.id} is {lesson.status} but has a live event"
            session_id = self.sessions.get(lesson.id)
            if session_id and lesson.status not in WAITING_FOR_PAYMENT:
                assert self.stripe.sessions[session_id]["status"] != "open", (
                    f"lesson {lesson.id} is {lesson.status} but its checkout can still be paid"
                )
        for message in messages:  # every message reached Chatwoot exactly once
            assert message.status == "sent", (message.id, message.status, message.last_error)


def col_in(column: Any, values: tuple) -> Any:
    from sqlmodel import col

    return col(column).in_(list(values))


@pytest.fixture
def quick_stripe_retries(monkeypatch):
    monkeypatch.setattr(gateway, "RETRY_INITIAL_DELAY", 0.001)
    monkeypatch.setattr(gateway, "RETRY_MAX_DELAY", 0.002)


@pytest.mark.database  # each example makes its own database (tempfile, not tmp_path)
def test_the_lifecycle_holds_its_invariants_under_any_sequence_of_steps_and_faults(quick_stripe_retries):
    run_state_machine_as_test(
        Lifecycle,
        settings=settings(
            max_examples=EXAMPLES,
            stateful_step_count=STEPS,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        ),
    )
