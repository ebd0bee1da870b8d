"""Cancelling returns a credit (issue 15) and staff choose what a cancel does (issue 14).

- The customer, over HTTP: a lesson paid by credit, cancelled on time, always returns the credit
  (never a Stripe refund: there is no payment); under the profile policy `credit`, an on-time
  cancel of a paid lesson gives +1 credit instead of a refund. The consequence says `credit`,
  in the dry run too.
- Staff on the Lessen page: refund / credit / none, by default what the policy says (within the
  notice: none), audited with the choice."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from sqlmodel import select

from core import clock, credits, worker
from core.db import read_session, write_session
from core.errors import ValidationFailed
from core.lesson_changes import cancel_lesson
from core.models import AuditLog, Contact, CreditEntry, Job, Payment, PlanningProfile, User
from tests.conftest import AMS
from tests.support.api import booking, messages, outside, paid, signed_delivery  # noqa: F401

pytest_plugins = ["tests.support.api", "tests.fakes.google_fixtures"]


def give_credit(contact_id: str = "contact-1", n: int = 1) -> None:
    with write_session() as session:
        if session.get(Contact, contact_id) is None:
            session.add(Contact(id=contact_id))
            session.flush()
        session.add(CreditEntry(contact_id=contact_id, minutes=60, delta=n, kind="grant", reason="test"))


def balance(contact_id: str = "contact-1") -> int:
    with read_session() as session:
        return credits.balance(session, contact_id, 60)


def refund_jobs() -> list[Job]:
    with read_session() as session:
        return list(session.exec(select(Job).where(Job.kind == "stripe.refund")).all())


def credit_policy() -> None:
    with write_session() as session:
        for profile in session.exec(select(PlanningProfile)).all():
            profile.on_time_cancel = "credit"
            session.add(profile)


def admin() -> User:
    with write_session() as session:
        row = session.exec(select(User).where(User.email == "admin@lesplanner.test")).first()
        if row is None:
            row = User(email="admin@lesplanner.test", role="admin")
            session.add(row)
            session.flush()
        return row


@pytest.fixture
def by_credit(client, tutor, monday_morning, outside) -> dict[str, Any]:  # noqa: F811
    give_credit()
    response = client.post("/api/v1/bookings", json=booking())
    assert response.status_code == 201 and response.json()["status"] == "confirmed"
    assert response.json()["payment_url"] is None
    worker.drain()
    return response.json()


def test_a_lesson_paid_by_credit_cancelled_on_time_returns_the_credit(client, by_credit, fake_stripe):
    listed = client.get("/api/v1/conversations/conv-1/lessons").json()["lessons"][0]
    assert listed["cancel_now"]["consequence"] == "credit"
    dry = client.post(
        f"/api/v1/lessons/{by_credit['id']}/cancel", json={"conversation_id": "conv-1", "dry_run": True}
    ).json()
    assert dry["consequence"] == {"kind": "credit", "amount": None, "currency": None, "minutes": 60}
    assert balance() == 0

    done = client.post(f"/api/v1/lessons/{by_credit['id']}/cancel", json={"conversation_id": "conv-1"})

    assert done.status_code == 200 and done.json()["consequence"]["kind"] == "credit"
    assert balance() == 1
    assert refund_jobs() == [] and fake_stripe.refunds == {}
    assert messages().count("lesson_cancelled_credit") == 1
    again = client.post(f"/api/v1/lessons/{by_credit['id']}/cancel", json={"conversation_id": "conv-1"})
    assert again.json()["consequence"]["kind"] == "credit"
    assert balance() == 1


def test_under_the_credit_policy_a_paid_lesson_cancelled_on_time_gives_a_credit_not_a_refund(
    client,
    paid,  # noqa: F811
    fake_stripe,
):
    credit_policy()
    dry = client.post(
        f"/api/v1/lessons/{paid['id']}/cancel", json={"conversation_id": "conv-1", "dry_run": True}
    ).json()
    assert dry["consequence"]["kind"] == "credit"

    done = client.post(f"/api/v1/lessons/{paid['id']}/cancel", json={"conversation_id": "conv-1"})

    assert done.json()["consequence"]["kind"] == "credit"
    worker.drain()
    assert fake_stripe.refunds == {} and refund_jobs() == []
    assert balance() == 1
    with read_session() as session:
        [entry] = [e for e in credits.entries(session, "contact-1") if e.kind == "return"]
    assert entry.payment_id is not None  # the money it came from


# --- staff ---------------------------------------------------------------------------------------


def test_staff_default_is_the_policy_and_they_may_choose_credit_or_none(client, paid):  # noqa: F811
    who = admin()
    with pytest.raises(ValidationFailed):
        cancel_lesson(paid["id"], who, "ziek", consequence="bogus")

    cancel_lesson(paid["id"], who, "tutor ziek", consequence="credit")

    assert balance() == 1 and refund_jobs() == []
    with read_session() as session:
        log = session.exec(select(AuditLog).where(AuditLog.action == "lesson.cancel")).one()
    assert log.after["consequence"] == "credit"


def test_staff_default_refunds_under_the_refund_policy(client, paid):  # noqa: F811
    cancel_lesson(paid["id"], admin(), "tutor ziek")

    [job] = refund_jobs()
    assert job.payload["amount"] == 4500
    assert balance() == 0
    assert messages().count("lesson_cancelled_refund") == 1


def test_the_refund_of_a_customers_cancel_is_announced_once_with_the_cancel(
    client,
    paid,  # noqa: F811
    fake_stripe,
    signed_delivery,  # noqa: F811
):
    """The cancel told the customer the money comes back; Stripe's charge.refunded for that
    refund marks the payment refunded and sends no second message."""
    done = client.post(f"/api/v1/lessons/{paid['id']}/cancel", json={"conversation_id": "conv-1"})
    assert done.json()["consequence"]["kind"] == "refund"
    worker.drain()

    [refunded] = [e for e in fake_stripe.events if e["type"] == "charge.refunded"]
    signed_delivery(refunded)

    with read_session() as session:
        assert session.exec(select(Payment)).one().status == "refunded"
    assert messages().count("lesson_cancelled_refund") == 1
    assert "refund_issued" not in messages()


def test_staff_within_the_notice_default_to_nothing_but_may_refund(client, paid):  # noqa: F811
    clock.set_now(datetime(2026, 12, 1, 9, 0, tzinfo=AMS))  # an hour before the lesson
    cancel_lesson(paid["id"], admin(), "te laat")
    assert refund_jobs() == [] and balance() == 0
    with read_session() as session:
        log = session.exec(select(AuditLog).where(AuditLog.action == "lesson.cancel")).one()
    assert log.after["consequence"] == "none"


def test_staff_refund_within_the_notice(client, paid):  # noqa: F811
    clock.set_now(datetime(2026, 12, 1, 9, 0, tzinfo=AMS))
    cancel_lesson(paid["id"], admin(), "coulance", consequence="refund")
    assert [j.payload["amount"] for j in refund_jobs()] == [4500]


def test_staff_cannot_refund_a_lesson_paid_by_credit(client, by_credit):
    with pytest.raises(ValidationFailed, match="credit"):
        cancel_lesson(by_credit["id"], admin(), "x", consequence="refund")
    cancel_lesson(by_credit["id"], admin(), "x")  # the default gives the credit back
    assert balance() == 1
