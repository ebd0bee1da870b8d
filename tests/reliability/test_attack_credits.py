"""Attack: prepaid credits and money. Each test states a money rule that should hold and
currently does not (hostile review of issue 15)."""

from __future__ import annotations

from sqlmodel import select

from core import credits, lessons
from core.db import read_session, write_session
from core.models import Lesson, Payment, PlanningProfile
from tests.support.api import (
    booking,
    signed_delivery,  # noqa: F401
)

pytest_plugins = ["tests.support.api"]


def balance(minutes: int = 60) -> int:
    with read_session() as session:
        return credits.balance(session, "contact-1", minutes)


def test_a_lesson_booked_with_a_refunded_bundle_gives_no_credit_back_when_cancelled(
    client,
    bundle,
    fake_stripe,
    signed_delivery,  # noqa: F811
):
    """Bundle paid (5), one lesson booked with a credit, the bundle refunded in full (money back,
    the 4 unused taken back, the booked lesson stays as DECISIONS says). Cancelling that lesson
    must not turn it into a fresh credit: the customer has their money back already."""
    signed_delivery(fake_stripe.complete_session(bundle["checkout_session_id"]))
    booked = client.post("/api/v1/bookings", json=booking())
    assert booked.status_code == 201 and booked.json()["status"] == "confirmed"
    lesson_id = booked.json()["id"]
    signed_delivery(fake_stripe.refund(bundle["checkout_session_id"]))
    assert balance() == 0

    cancelled = client.post(f"/api/v1/lessons/{lesson_id}/cancel", json={"conversation_id": "conv-1"})
    assert cancelled.status_code == 200, cancelled.text
    assert balance() == 0, "refunded money came back as a prepaid credit: paid out twice"


def test_a_credit_given_for_a_cancelled_paid_lesson_is_not_also_refunded(
    client,
    tutor,
    monday_morning,
    stripe_api,
    fake_stripe,
    signed_delivery,  # noqa: F811
):
    """Under `on_time_cancel = credit` a paid lesson cancelled on time becomes a credit. When the
    lesson's payment is then refunded in full (Stripe dashboard, or Betalingen), the credit the
    customer got for that same money must be taken back (or the refund refused)."""
    with write_session() as session:
        session.get_one(PlanningProfile, "new").on_time_cancel = "credit"
    held = client.post("/api/v1/bookings", json=booking()).json()
    signed_delivery(fake_stripe.complete_session(held["checkout_session_id"]))
    cancelled = client.post(f"/api/v1/lessons/{held['id']}/cancel", json={"conversation_id": "conv-1"})
    assert cancelled.status_code == 200, cancelled.text
    assert balance() == 1

    signed_delivery(fake_stripe.refund(held["checkout_session_id"]))
    with read_session() as session:
        assert session.exec(select(Payment)).one().status == "refunded"
    assert balance() == 0, "the customer kept the credit and got the money back"


def test_a_credit_paid_lesson_that_lost_its_slot_is_rebooked_without_a_second_credit(
    client,
    bundle,
    fake_stripe,
    signed_delivery,  # noqa: F811
):
    """A credit-paid lesson whose slot is lost (the tutor's calendar has an event there) goes to
    needs_reschedule and the customer is asked to pick a new time. Picking it must move that
    lesson (as for a money-paid lesson, booking._movable_paid_lesson), not spend a second credit
    and leave the first lesson hanging."""
    signed_delivery(fake_stripe.complete_session(bundle["checkout_session_id"]))
    first = client.post("/api/v1/bookings", json=booking()).json()
    assert balance() == 4
    with write_session() as session:
        lesson = session.get_one(Lesson, first["id"])
        lessons.slot_lost(session, lesson, "the tutor's calendar has another event at that time")

    again = client.post("/api/v1/bookings", json=booking("2026-12-01T14:00:00+01:00"))
    assert again.status_code == 201, again.text
    assert again.json()["id"] == first["id"], "a new lesson was made for the rebooking"
    assert balance() == 4, "the rebooking spent a second credit"


def test_a_disputed_bundle_alerts_finance(
    client,
    bundle,
    fake_stripe,
    signed_delivery,  # noqa: F811
):
    """DESIGN: `charge.dispute.created` → `disputed` and a finance alert, also for a bundle, which
    has no lesson to name (the alert names the payment)."""
    from core.models import AuditLog

    signed_delivery(fake_stripe.complete_session(bundle["checkout_session_id"]))
    with read_session() as session:
        intent = session.exec(select(Payment)).one().payment_intent_id
    assert intent and balance() == 5
    dispute = {
        "id": "dp_attack_1",
        "object": "dispute",
        "payment_intent": intent,
        "status": "needs_response",
        "reason": "fraudulent",
        "amount": 20000,
    }
    event = {
        "id": "evt_attack_dispute",
        "object": "event",
        "type": "charge.dispute.created",
        "created": 1764576000,
        "data": {"object": dispute},
    }
    fake_stripe.events.append(event)
    signed_delivery(event)

    with read_session() as session:
        assert session.exec(select(Payment)).one().status == "disputed"
        alerts = session.exec(select(AuditLog).where(AuditLog.action == "finance.alert")).all()
    assert alerts, "a disputed bundle raises no finance alert"


def _dispute_event(intent: str, status: str, kind: str, number: int) -> dict:
    dispute = {
        "id": "dp_attack_2",
        "object": "dispute",
        "payment_intent": intent,
        "status": status,
        "reason": "fraudulent",
        "amount": 20000,
    }
    return {
        "id": f"evt_attack_dispute_{number}",
        "object": "event",
        "type": kind,
        "created": 1764576000 + number,
        "data": {"object": dispute},
    }


def test_a_lost_dispute_of_a_bundle_takes_back_its_unused_credits(
    client,
    bundle,
    fake_stripe,
    signed_delivery,  # noqa: F811
):
    """A lost dispute gives the customer's bank the money back, like a full refund: the bundle's
    unused credits go (never below 0), the lesson already booked with one stays, and cancelling
    it later returns no credit. A won dispute changes nothing."""
    signed_delivery(fake_stripe.complete_session(bundle["checkout_session_id"]))
    booked = client.post("/api/v1/bookings", json=booking())
    assert booked.status_code == 201 and booked.json()["status"] == "confirmed"
    with read_session() as session:
        intent = session.exec(select(Payment)).one().payment_intent_id
    assert intent and balance() == 4
    for number, (kind, status) in enumerate(
        [("charge.dispute.created", "needs_response"), ("charge.dispute.closed", "lost")]
    ):
        event = _dispute_event(intent, status, kind, number)
        fake_stripe.events.append(event)
        signed_delivery(event)
        if status == "needs_response":
            assert balance() == 4  # an open dispute may still be won
    assert balance() == 0, "the bank gave the money back and the customer kept 4 credits"
    with read_session() as session:
        assert session.exec(select(Payment)).one().dispute_status == "lost"

    cancelled = client.post(
        f"/api/v1/lessons/{booked.json()['id']}/cancel", json={"conversation_id": "conv-1"}
    )
    assert cancelled.status_code == 200, cancelled.text
    assert balance() == 0, "the lost money came back as a prepaid credit"


def test_a_won_dispute_of_a_bundle_keeps_its_credits(
    client,
    bundle,
    fake_stripe,
    signed_delivery,  # noqa: F811
):
    signed_delivery(fake_stripe.complete_session(bundle["checkout_session_id"]))
    with read_session() as session:
        intent = session.exec(select(Payment)).one().payment_intent_id
    event = _dispute_event(intent, "won", "charge.dispute.closed", 5)
    fake_stripe.events.append(event)
    signed_delivery(event)
    assert balance() == 5


def test_a_refund_after_the_credit_was_spent_alerts_finance(
    client,
    tutor,
    monday_morning,
    stripe_api,
    fake_stripe,
    signed_delivery,  # noqa: F811
):
    """As above, but the customer already booked another lesson with that credit: nothing can be
    taken back, so finance must at least be told the customer has both."""
    from core.models import AuditLog

    with write_session() as session:
        session.get_one(PlanningProfile, "new").on_time_cancel = "credit"
    held = client.post("/api/v1/bookings", json=booking()).json()
    signed_delivery(fake_stripe.complete_session(held["checkout_session_id"]))
    client.post(f"/api/v1/lessons/{held['id']}/cancel", json={"conversation_id": "conv-1"})
    again = client.post("/api/v1/bookings", json=booking("2026-12-01T14:00:00+01:00"))
    assert again.status_code == 201 and again.json()["status"] == "confirmed"
    assert balance() == 0

    signed_delivery(fake_stripe.refund(held["checkout_session_id"]))
    with read_session() as session:
        alerts = session.exec(select(AuditLog).where(AuditLog.action == "finance.alert")).all()
    assert [(a.entity_id, a.after["why"]) for a in alerts] == [
        (str(held["id"]), "refunded in full; the credit its cancel gave is already used")
    ]


def test_a_partly_refunded_lesson_does_not_become_a_whole_credit(
    client,
    tutor,
    monday_morning,
    stripe_api,
    fake_stripe,
    signed_delivery,  # noqa: F811
):
    """Finance refunded half of a paid lesson (goodwill). Cancelled on time under `on_time_cancel
    = credit`, the customer gets a whole prepaid lesson for half its price; under `refund` the
    same cancel refunds only what is left (left_to_refund). The credit ignores the refund."""
    with write_session() as session:
        session.get_one(PlanningProfile, "new").on_time_cancel = "credit"
    held = client.post("/api/v1/bookings", json=booking()).json()
    signed_delivery(fake_stripe.complete_session(held["checkout_session_id"]))
    with read_session() as session:
        amount = session.exec(select(Payment)).one().amount
    signed_delivery(fake_stripe.refund(held["checkout_session_id"], amount // 2))
    with read_session() as session:
        assert session.exec(select(Payment)).one().status == "partially_refunded"

    cancelled = client.post(f"/api/v1/lessons/{held['id']}/cancel", json={"conversation_id": "conv-1"})
    assert cancelled.status_code == 200, cancelled.text
    consequence = cancelled.json()
    assert balance() == 0 or "refund" in str(consequence), f"a whole credit for half a payment: {consequence}"
