"""Reminders (issue 14, DESIGN → Reminders): one `reminder` job per confirmed lesson and
`reminder_hours` entry; at send time the job reads the lesson again, so a moved lesson is reminded
at its new time only and a cancelled one not at all. With CHATWOOT_REMINDER_TEMPLATE set the
reminder goes out as that WhatsApp template (Chatwoot's `template_params`), else as text."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from core import clock, worker
from core.booking import book_slot
from core.calendars import set_backend
from core.calendars.local import LocalCalendarBackend
from core.config import set_settings
from core.db import read_session, write_session
from core.lesson_changes import cancel_lesson, reschedule_lesson
from core.models import Contact, OutboxMessage, PlanningProfile, Tutor, User
from tests.conftest import AMS, make_settings
from tests.fakes.chatwoot import FakeChatwoot

MONDAY_0800 = datetime(2026, 11, 30, 8, 0, tzinfo=AMS)
WEDNESDAY_10 = datetime(2026, 12, 2, 10, 0, tzinfo=AMS)


@pytest.fixture
def world(engine):
    clock.set_now(MONDAY_0800)
    set_backend(LocalCalendarBackend())
    with write_session() as session:
        session.add(Tutor(name="Anna", email="anna@lesplanner.test", calendar_id="anna"))
        session.add(Contact(id="c-1", name="Sanne"))
        session.add(User(email="admin@lesplanner.test", role="admin"))
        for profile in session.exec(select(PlanningProfile)).all():
            profile.requires_payment = False


def book(start: datetime, profile: str | None = None) -> int:
    return book_slot(
        "conv-1", start, start + timedelta(hours=1), "Wiskunde", contact_id="c-1", profile_name=profile
    ).lesson.id


def at(moment: datetime) -> None:
    clock.set_now(moment)
    worker.drain()


def reminders() -> list[str]:
    with read_session() as session:
        rows = session.exec(
            select(OutboxMessage).where(OutboxMessage.key == "lesson_reminder").order_by(OutboxMessage.id)
        ).all()
    return [m.text for m in rows]


def admin() -> User:
    with read_session() as session:
        return session.exec(select(User)).one()


def test_a_confirmed_lesson_is_reminded_once_a_day_before(world):
    book(WEDNESDAY_10)
    at(MONDAY_0800)
    at(WEDNESDAY_10 - timedelta(hours=24, minutes=1))
    assert reminders() == []

    at(WEDNESDAY_10 - timedelta(hours=24))
    at(WEDNESDAY_10 - timedelta(hours=23))

    assert reminders() == ["Herinnering: je hebt les met Anna op wo 2 dec om 10:00. Tot dan!"]


def test_a_moved_lesson_is_reminded_at_its_new_time_only(world):
    lesson_id = book(WEDNESDAY_10)
    thursday_11 = datetime(2026, 12, 3, 11, 0, tzinfo=AMS)
    reschedule_lesson(lesson_id, thursday_11, admin())

    at(WEDNESDAY_10 - timedelta(hours=24))
    assert reminders() == []
    at(thursday_11 - timedelta(hours=24))

    assert reminders() == ["Herinnering: je hebt les met Anna op do 3 dec om 11:00. Tot dan!"]


def test_a_cancelled_lesson_gets_no_reminder(world):
    lesson_id = book(WEDNESDAY_10)
    cancel_lesson(lesson_id, actor=None, reason="ziek")

    at(WEDNESDAY_10 - timedelta(hours=24))

    assert reminders() == []


def test_a_lesson_booked_inside_the_reminder_time_gets_none(world):
    book(datetime(2026, 11, 30, 15, 0, tzinfo=AMS), profile="existing")  # 7 hours ahead

    at(datetime(2026, 11, 30, 14, 0, tzinfo=AMS))

    assert reminders() == []


def test_the_reminder_hours_are_the_profiles(world):
    with write_session() as session:
        session.get(PlanningProfile, "new").reminder_hours = [48, 2]
    book(WEDNESDAY_10)

    at(WEDNESDAY_10 - timedelta(hours=48))
    at(WEDNESDAY_10 - timedelta(hours=24))
    assert len(reminders()) == 1
    at(WEDNESDAY_10 - timedelta(hours=2))

    assert len(reminders()) == 2


@pytest.fixture
def chatwoot():
    with FakeChatwoot(now=lambda: clock.now().timestamp()) as fake:
        yield fake


def with_chatwoot(tmp_path, chatwoot, **extra) -> None:
    set_settings(
        make_settings(
            tmp_path,
            chatwoot_url=chatwoot.url + "/",
            chatwoot_account_id=chatwoot.account_id,
            chatwoot_api_token=chatwoot.token,
            **extra,
        )
    )


def test_the_reminder_goes_out_as_the_whatsapp_template_when_one_is_configured(world, tmp_path, chatwoot):
    with_chatwoot(
        tmp_path,
        chatwoot,
        chatwoot_reminder_template="les_herinnering",
        chatwoot_reminder_template_language="nl",
    )
    book(WEDNESDAY_10)

    at(WEDNESDAY_10 - timedelta(hours=24))

    template = chatwoot.templates("conv-1")
    assert template == [
        {
            "name": "les_herinnering",
            "category": "UTILITY",
            "language": "nl",
            "processed_params": {"1": "Sanne", "2": "wo 2 dec om 10:00", "3": "Anna"},
        }
    ]


def test_without_a_template_the_reminder_is_plain_text(world, tmp_path, chatwoot):
    with_chatwoot(tmp_path, chatwoot)
    book(WEDNESDAY_10)

    at(WEDNESDAY_10 - timedelta(hours=24))

    assert chatwoot.templates("conv-1") == []
    assert "Herinnering: je hebt les met Anna op wo 2 dec om 10:00. Tot dan!" in chatwoot.sent("conv-1")
