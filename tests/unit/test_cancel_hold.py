"""Cancelling a lesson that is still waiting for payment closes its Stripe Checkout Session, so
the customer can no longer pay for a lesson that is gone. The cancel never depends on Stripe:
if Stripe is down, or the customer already paid, the webhook decides what happens next."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from core import worker
from core.booking import book_slot
from core.db import read_session, write_session
from core.lesson_changes import cancel_lesson
from core.models import CANCELLED, HELD, NEEDS_RESCHEDULE, Job, Lesson, OutboxMessage, Payment, Tutor
from tests.conftest import AMS
from tests.fakes.stripe_fixtures import *  # noqa: F403

TUE_10 = datetime(2026, 12, 1, 10, 0, tzinfo=AMS)


@pytest.fixture
def held(engine, frozen_now, fake_stripe) -> tuple[int, str]:
    frozen_now(datetime(2026, 11, 30, 9, 0, tzinfo=AMS))
    with write_session() as session:
        session.add(Tutor(name="Anna", email="anna@lesplanner.test", calendar_id="anna-calendar"))
    result = book_slot("conv-1", TUE_10, TUE_10 + timedelta(hours=1), "Wiskunde", contact_id="contact-1")
    assert result.lesson.status == HELD
    return result.lesson.id, result.payment.checkout_session_id


def state(lesson_id: int, session_id: str) -> tuple[str, str, list[str]]:
    with read_session() as session:
        lesson = session.get(Lesson, lesson_id)
        payment = session.exec(select(Payment).where(Payment.checkout_session_id == session_id)).one()
        keys = [m.key for m in session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all()]
    return lesson.status, payment.status, keys


def test_cancelling_a_held_lesson_closes_its_checkout_so_nobody_can_pay_for_it(
    held, fake_stripe, signed_delivery
):
    lesson_id, session_id = held

    cancel_lesson(lesson_id, actor=None, reason="klant belde af")
    assert state(lesson_id, session_id) == (CANCELLED, "open", ["lesson_cancelled"])  # at once
    worker.drain()  # after commit, a job closes the checkout

    assert fake_stripe.sessions[session_id]["status"] == "expired"
    assert fake_stripe.sessions[session_id]["url"] is None
    assert state(lesson_id, session_id) == (CANCELLED, "expired", ["lesson_cancelled"])
    # Stripe's own expired event arrives later and changes nothing (no second message).
    expired_event = next(e for e in reversed(fake_stripe.events) if e["type"] == "checkout.session.expired")
    signed_delivery(expired_event)
    assert state(lesson_id, session_id) == (CANCELLED, "expired", ["lesson_cancelled"])


def test_a_cancel_stands_when_stripe_is_down_and_a_late_payment_needs_a_new_time(
    held, fake_stripe, signed_delivery
):
    lesson_id, session_id = held
    fake_stripe.fail_next("503", times=10)

    cancel_lesson(lesson_id, actor=None, reason="klant belde af")
    worker.drain()  # the checkout job fails and waits for a retry; the cancel stands

    assert state(lesson_id, session_id) == (CANCELLED, "open", ["lesson_cancelled"])
    with read_session() as session:
        job = session.exec(select(Job).where(Job.kind == "stripe.expire_checkout")).one()
    assert job.status == "pending" and job.last_error
    fake_stripe.clear_faults()
    signed_delivery(fake_stripe.complete_session(session_id))
    lesson_status, payment_status, keys = state(lesson_id, session_id)
    assert (lesson_status, payment_status) == (NEEDS_RESCHEDULE, "paid")
    assert keys[-1] == "paid_after_cancel"


def test_a_session_the_customer_completed_just_before_the_cancel_is_left_to_its_webhook(
    held, fake_stripe, signed_delivery
):
    lesson_id, session_id = held
    completed = fake_stripe.complete_session(session_id)

    cancel_lesson(lesson_id, actor=None, reason="klant belde af")
    worker.drain()

    assert fake_stripe.sessions[session_id]["status"] == "complete"
    assert state(lesson_id, session_id)[:2] == (CANCELLED, "open")
    signed_delivery(completed)
    assert state(lesson_id, session_id)[:2] == (NEEDS_RESCHEDULE, "paid")
