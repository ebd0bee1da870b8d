"""Refunds finance starts from the console (issue 14): full or partial, with a reason, as
`stripe.refund` jobs against the Stripe fake; the payment follows Stripe's `charge.refunded`
(partially_refunded with the amount, then refunded). Only finance and admins, with a reason, and
never more than what is left (counting refunds asked for but not yet answered)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from core import worker
from core.booking import book_slot
from core.db import read_session, write_session
from core.errors import PermissionDenied, ValidationFailed
from core.models import AuditLog, Lesson, Payment, Tutor, User
from core.payments.refunds import refund_payment
from tests.conftest import AMS
from tests.fakes.stripe_fixtures import *  # noqa: F403

TUE_10 = datetime(2026, 12, 1, 10, 0, tzinfo=AMS)


@pytest.fixture
def paid(engine, frozen_now, fake_stripe, signed_delivery) -> int:  # noqa: F811
    frozen_now(datetime(2026, 11, 30, 9, 0, tzinfo=AMS))
    with write_session() as session:
        session.add(Tutor(name="Anna", email="anna@lesplanner.test", calendar_id="anna-calendar"))
        session.add(User(email="finance@lesplanner.test", role="finance"))
        session.add(User(email="tutor@lesplanner.test", role="tutor"))
    result = book_slot("conv-1", TUE_10, TUE_10 + timedelta(hours=1), "Wiskunde", contact_id="contact-1")
    signed_delivery(fake_stripe.complete_session(result.payment.checkout_session_id))
    worker.drain()
    return result.payment.id


def user(role: str) -> User:
    with read_session() as session:
        return session.exec(select(User).where(User.role == role)).one()


def payment(payment_id: int) -> Payment:
    with read_session() as session:
        return session.get(Payment, payment_id)


def deliver_refund_events(fake_stripe, signed_delivery) -> None:  # noqa: F811
    for event in [e for e in fake_stripe.events if e["type"] == "charge.refunded"]:
        signed_delivery(event)


def test_finance_refunds_half_then_the_rest(paid, fake_stripe, signed_delivery):  # noqa: F811
    refund_payment(user("finance"), paid, 2250, "les half gegeven")
    worker.drain()
    deliver_refund_events(fake_stripe, signed_delivery)

    half = payment(paid)
    assert (half.status, half.refunded_amount) == ("partially_refunded", 2250)
    assert [r["amount"] for r in fake_stripe.refunds.values()] == [2250]

    refund_payment(user("finance"), paid, 2250, "toch helemaal")
    worker.drain()
    deliver_refund_events(fake_stripe, signed_delivery)

    full = payment(paid)
    assert (full.status, full.refunded_amount) == ("refunded", 4500)
    with read_session() as session:
        logs = session.exec(select(AuditLog).where(AuditLog.action == "payment.refund")).all()
    assert [entry.after["amount"] for entry in logs] == [2250, 2250]


def test_a_refund_never_exceeds_what_is_left_and_needs_a_reason(paid):
    with pytest.raises(ValidationFailed):
        refund_payment(user("finance"), paid, 4501, "te veel")
    with pytest.raises(ValidationFailed):
        refund_payment(user("finance"), paid, 0, "niets")
    with pytest.raises(ValidationFailed):
        refund_payment(user("finance"), paid, 1000, "  ")
    refund_payment(user("finance"), paid, 4000, "bijna alles")
    with pytest.raises(ValidationFailed):  # 500 left, even before Stripe answered
        refund_payment(user("finance"), paid, 1000, "nog meer")


def test_only_finance_and_admins_refund(paid, fake_stripe):
    with pytest.raises(PermissionDenied):
        refund_payment(user("tutor"), paid, 1000, "mag niet")
    worker.drain()
    assert fake_stripe.refunds == {}


def test_a_full_refund_of_a_lesson_still_to_come_cancels_it_and_frees_the_slot(
    paid, fake_stripe, signed_delivery
):  # noqa: F811
    refund_payment(user("finance"), paid, 4500, "dubbel betaald")
    worker.drain()
    deliver_refund_events(fake_stripe, signed_delivery)

    with read_session() as session:
        lesson = session.get(Lesson, payment(paid).lesson_id)
        assert (lesson.status, lesson.cancel_reason) == ("cancelled", "payment refunded in full")


# --- disputes (DESIGN: charge.dispute.* → disputed and a finance alert; the lesson stays) --------


def dispute(fake_stripe, paid_id: int, status: str = "needs_response") -> dict:  # noqa: F811
    with read_session() as session:
        intent = session.get(Payment, paid_id).payment_intent_id
    return {
        "id": "dp_test_1",
        "object": "dispute",
        "amount": 4500,
        "currency": "eur",
        "charge": "ch_test_1",
        "payment_intent": intent,
        "reason": "fraudulent",
        "status": status,
        "evidence_details": {"due_by": int(datetime(2026, 12, 10, 23, 59, tzinfo=AMS).timestamp())},
    }


def test_a_dispute_marks_the_payment_and_tells_finance_when_evidence_is_due(
    paid, fake_stripe, signed_delivery
):  # noqa: F811
    signed_delivery(fake_stripe.event("charge.dispute.created", dispute(fake_stripe, paid)))

    disputed = payment(paid)
    assert (disputed.status, disputed.dispute_status) == ("disputed", "needs_response")
    assert disputed.dispute_due_by == datetime(2026, 12, 10, 23, 59, tzinfo=AMS)
    with read_session() as session:
        alert = session.exec(select(AuditLog).where(AuditLog.action == "finance.alert")).one()
        lesson = session.get(Lesson, disputed.lesson_id)
    assert "dispute" in alert.after["why"] and lesson.status == "confirmed"  # the lesson stays

    signed_delivery(
        fake_stripe.event("charge.dispute.updated", dispute(fake_stripe, paid, status="under_review"))
    )
    assert payment(paid).dispute_status == "under_review"

    signed_delivery(fake_stripe.event("charge.dispute.closed", dispute(fake_stripe, paid, status="won")))
    closed = payment(paid)
    assert (closed.status, closed.dispute_status) == ("disputed", "won")
    from core.payments.queries import open_disputes

    with read_session() as session:
        rows = open_disputes(session)
    assert [(r.payment_id, r.dispute_status) for r in rows] == [(paid, "won")]
