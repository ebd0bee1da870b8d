"""A booking by a contact with a prepaid credit of the lesson's length is confirmed at once with
that credit, without a Checkout (issue 15); two bookings at once by a contact with one credit:
exactly one uses it, the other gets a payment link (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from core import credits, worker
from core.booking import book_slot
from core.db import read_session, write_session
from core.models import Contact, CreditEntry, Job, Lesson, OutboxMessage, Payment, Tutor
from tests.conftest import AMS
from tests.fakes.stripe_fixtures import *  # noqa: F403

TUE_10 = datetime(2026, 12, 1, 10, 0, tzinfo=AMS)


@pytest.fixture
def world(engine, frozen_now):
    frozen_now(datetime(2026, 11, 30, 9, 0, tzinfo=AMS))
    with write_session() as session:
        session.add(Tutor(name="Anna", email="anna@lesplanner.test", calendar_id="anna-calendar"))
    return engine


def give_credit(contact_id: str = "contact-1", minutes: int = 60, n: int = 1) -> None:
    with write_session() as session:
        if session.get(Contact, contact_id) is None:
            session.add(Contact(id=contact_id))
            session.flush()
        session.add(CreditEntry(contact_id=contact_id, minutes=minutes, delta=n, kind="grant", reason="test"))


def balance(contact_id: str = "contact-1", minutes: int = 60) -> int:
    with read_session() as session:
        return credits.balance(session, contact_id, minutes)


def test_a_contact_with_a_credit_is_confirmed_at_once_without_checkout(world, fake_stripe):
    give_credit()

    result = book_slot("conv-1", TUE_10, TUE_10 + timedelta(hours=1), "Wiskunde", contact_id="contact-1")

    assert result.lesson.status == "confirmed" and result.payment is None
    assert fake_stripe.sessions == {}
    assert balance() == 0
    with read_session() as session:
        assert credits.paid_by_credit(session, result.lesson.id)
        kinds = {j.kind for j in session.exec(select(Job)).all()}
        keys = [m.key for m in session.exec(select(OutboxMessage)).all()]
    assert "calendar.create" in kinds
    assert keys == ["booking_confirmed"]
    worker.drain()
    with read_session() as session:
        assert session.get_one(Lesson, result.lesson.id).calendar_sync == "synced"


def test_a_credit_of_another_length_does_not_pay(world, fake_stripe):
    give_credit(minutes=90)

    result = book_slot("conv-1", TUE_10, TUE_10 + timedelta(hours=1), "Wiskunde", contact_id="contact-1")

    assert result.lesson.status == "held" and result.payment is not None
    assert balance(minutes=90) == 1


def test_two_bookings_at_once_with_one_credit_use_it_once_and_the_other_pays(world, fake_stripe):
    give_credit()
    barrier = threading.Barrier(2)
    outcomes: dict[int, str] = {}

    def book(hour: int) -> None:
        start = TUE_10.replace(hour=hour)
        barrier.wait()
        try:
            result = book_slot("conv-1", start, start + timedelta(hours=1), "Les", contact_id="contact-1")
            outcomes[hour] = f"{result.lesson.status}:{'link' if result.payment_url else 'nolink'}"
        except Exception as exc:  # noqa: BLE001 - reported below
            outcomes[hour] = repr(exc)

    threads = [threading.Thread(target=book, args=(h,)) for h in (10, 11)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)

    assert sorted(outcomes.values()) == ["confirmed:nolink", "held:link"], outcomes
    assert balance() == 0
    with read_session() as session:
        uses = session.exec(select(CreditEntry).where(CreditEntry.kind == "use")).all()
        assert len(uses) == 1
        assert len(session.exec(select(Payment)).all()) == 1
