"""Prepaid lesson credits (issue 15): the ledger. A contact's balance per lesson length is the sum
of its entries and never goes below 0 — not with two bookings at once either (both databases);
one "use" per lesson; admins grant and correct with a reason, audited."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from core import credits
from core.db import read_session, write_session
from core.errors import PermissionDenied, ValidationFailed
from core.models import AuditLog, Contact, Conversation, CreditEntry, Lesson, Tutor, User
from tests.conftest import AMS

TUE_10 = datetime(2026, 12, 1, 10, 0, tzinfo=AMS)


@pytest.fixture
def world(engine, frozen_now):
    frozen_now(datetime(2026, 11, 30, 9, 0, tzinfo=AMS))
    with write_session() as session:
        session.add(Contact(id="contact-1", name="Sanne"))
        session.flush()
        session.add(Conversation(id="conv-1", contact_id="contact-1"))
        session.add(Tutor(name="Anna", email="anna@lesplanner.test", calendar_id="anna-calendar"))
        session.add(User(email="admin@lesplanner.test", role="admin"))
        session.add(User(email="finance@lesplanner.test", role="finance"))
    return engine


def user(role: str) -> User:
    with read_session() as session:
        return session.exec(select(User).where(User.role == role)).one()


def make_lesson(hour: int = 10) -> int:
    start = TUE_10.replace(hour=hour)
    with write_session() as session:
        lesson = Lesson(
            conversation_id="conv-1",
            contact_id="contact-1",
            tutor_id=1,
            profile_name="new",
            start=start,
            end=start + timedelta(hours=1),
            status="confirmed",
        )
        session.add(lesson)
        session.flush()
        return lesson.id  # type: ignore[return-value]


def balance(minutes: int = 60) -> int:
    with read_session() as session:
        return credits.balance(session, "contact-1", minutes)


def test_an_admin_grants_credits_per_lesson_length_with_a_reason_audited(world):
    credits.grant(user("admin"), "contact-1", 60, 3, "goodwill after a missed lesson")

    assert balance(60) == 3 and balance(90) == 0
    with read_session() as session:
        [entry] = credits.entries(session, "contact-1")
        log = session.exec(select(AuditLog).where(AuditLog.action == "credit.grant")).one()
    assert (entry.delta, entry.minutes, entry.reason, entry.actor) == (
        3,
        60,
        "goodwill after a missed lesson",
        "admin@lesplanner.test",
    )
    assert log.after["delta"] == 3 and log.after["balance"] == 3


def test_a_correction_may_not_take_the_balance_below_zero_and_needs_a_reason(world):
    credits.grant(user("admin"), "contact-1", 60, 1, "gift")
    with pytest.raises(ValidationFailed, match="below 0"):
        credits.grant(user("admin"), "contact-1", 60, -2, "typo")
    with pytest.raises(ValidationFailed, match="reason"):
        credits.grant(user("admin"), "contact-1", 60, 1, "  ")
    with pytest.raises(ValidationFailed):
        credits.grant(user("admin"), "contact-1", 45, 1, "odd length")
    with pytest.raises(ValidationFailed):
        credits.grant(user("admin"), "contact-1", 60, 0, "nothing")
    credits.grant(user("admin"), "contact-1", 60, -1, "typo")
    assert balance() == 0


def test_only_admins_grant(world):
    with pytest.raises(PermissionDenied):
        credits.grant(user("finance"), "contact-1", 60, 1, "gift")
    assert balance() == 0


def test_using_a_credit_takes_one_once_per_lesson_and_never_below_zero(world):
    credits.grant(user("admin"), "contact-1", 60, 1, "gift")
    first, second = make_lesson(10), make_lesson(11)
    with write_session() as session:
        contact = session.get_one(Contact, "contact-1")
        assert credits.use_credit(session, contact, 60, session.get_one(Lesson, first)) is not None
        # the same lesson again: still one use
        assert credits.use_credit(session, contact, 60, session.get_one(Lesson, first)) is not None
    assert balance() == 0
    with write_session() as session:
        contact = session.get_one(Contact, "contact-1")
        assert credits.use_credit(session, contact, 60, session.get_one(Lesson, second)) is None
    assert balance() == 0
    with read_session() as session:
        assert credits.paid_by_credit(session, first) and not credits.paid_by_credit(session, second)


def test_two_concurrent_uses_of_one_credit_give_exactly_one(world):
    credits.grant(user("admin"), "contact-1", 60, 1, "gift")
    lesson_ids = [make_lesson(10), make_lesson(11), make_lesson(12), make_lesson(13)]
    barrier = threading.Barrier(len(lesson_ids))
    results: dict[int, object] = {}

    def use(lesson_id: int) -> None:
        barrier.wait()
        try:
            with write_session() as session:
                contact = session.get_one(Contact, "contact-1")
                lesson = session.get_one(Lesson, lesson_id)
                results[lesson_id] = credits.use_credit(session, contact, 60, lesson) is not None
        except Exception as exc:  # noqa: BLE001 - reported below
            results[lesson_id] = repr(exc)

    threads = [threading.Thread(target=use, args=(lid,)) for lid in lesson_ids]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert sorted(map(str, results.values())) == ["False", "False", "False", "True"], results
    assert balance() == 0
    with read_session() as session:
        assert len(session.exec(select(CreditEntry)).all()) == 2  # the grant and one use


def test_returning_a_credit_is_once_per_lesson(world):
    credits.grant(user("admin"), "contact-1", 60, 1, "gift")
    lesson_id = make_lesson()
    with write_session() as session:
        lesson = session.get_one(Lesson, lesson_id)
        credits.use_credit(session, session.get_one(Contact, "contact-1"), 60, lesson)
        assert credits.return_credit(session, lesson, "cancelled on time") is not None
        assert credits.return_credit(session, lesson, "cancelled on time") is None
    assert balance() == 1
