"""Demo data for the console tests (AppTest and browser): a few tutors, contacts, lessons in every
state, payments, a failed Stripe event, outbox messages, time off, whitelist entries, and one
account per role with a known password. Times are relative to now, in the business zone, so
the week view and "expiring holds" always have something to show.

Also a spec of the builder itself, so this module earns its place in tests/.
"""

from __future__ import annotations

import json
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from argon2 import PasswordHasher
from sqlalchemy.engine import Engine
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from core import clock
from core.db import read_session, write_session
from core.models import (
    BusyBlock,
    Contact,
    Conversation,
    Lesson,
    OutboxMessage,
    Payment,
    StripeEvent,
    Tutor,
    User,
    WhitelistEntry,
)
from core.users import create_user

PASSWORD = "Wachtwoord-123"
ADMIN, TUTOR, OTHER_TUTOR, FINANCE = (
    "admin@example.nl",
    "anna@example.nl",
    "bram@example.nl",
    "finance@example.nl",
)
TRICKY_NAME = "**Vet** <b>html</b> [link](http://x)"


@pytest.fixture
def fast_passwords(monkeypatch):
    """Cheap argon2 parameters for tests: the real ones take half a second per hash on this
    machine, and every test creates four accounts. Production keeps argon2's defaults."""
    from core import users

    monkeypatch.setattr(users, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


def _next_weekday(day, tz: ZoneInfo, offset: int):  # noqa: ANN001
    """The offset-th weekday (Mon-Fri) after `day`."""
    d = day
    n = 0
    while n < offset:
        d += timedelta(days=1)
        if d.weekday() < 5:
            n += 1
    return d


def build_console_data(engine: Engine, tz: ZoneInfo = ZoneInfo("Europe/Amsterdam")) -> dict:
    now = clock.now()
    today = now.astimezone(tz).date()

    def at(day, hour: int) -> datetime:
        return datetime.combine(day, time(hour), tzinfo=tz)

    ids: dict = {}
    with write_session(engine) as s:
        for email, role in ((ADMIN, "admin"), (TUTOR, "tutor"), (OTHER_TUTOR, "tutor"), (FINANCE, "finance")):
            user, _ = create_user(s, email, role, name=email.split("@")[0].capitalize(), password=PASSWORD)
            ids[email] = user.id
        anna = Tutor(name="Anna de Vries", email=TUTOR, calendar_id="anna@calendar")
        bram = Tutor(name="Bram Jansen", email=OTHER_TUTOR, calendar_id="bram@calendar")
        s.add_all([anna, bram])
        s.flush()
        ids["anna"], ids["bram"] = anna.id, bram.id
        contacts = [
            Contact(
                id="c-1",
                name="Sanne Bakker",
                email="sanne@example.nl",
                phone="+31612345678",
                attributes={"has_paid_lesson": True},
            ),
            Contact(id="c-2", name="Daan Visser", phone="+31687654321"),
            Contact(
                id="c-3",
                name=TRICKY_NAME,
                email="tricky@example.nl",
                attributes={"note": '=HYPERLINK("http://evil")'},
            ),
            Contact(
                id="c-4", name="Lotte Smit", phone="+31611112222", attributes={"weekend_whitelisted": True}
            ),
        ]
        s.add_all(contacts)
        s.flush()
        for c in contacts:
            s.add(Conversation(id=f"conv-{c.id}", contact_id=c.id))
        s.flush()

        def lesson(contact: str, tutor: Tutor, start: datetime, status: str, **kw) -> Lesson:
            row = Lesson(
                conversation_id=f"conv-{contact}",
                contact_id=contact,
                tutor_id=tutor.id,
                profile_name=kw.pop("profile", "existing"),
                start=start,
                end=start + timedelta(hours=1),
                title=f"Les {contact}",
                status=status,
                created_at=now,
                updated_at=now,
                **kw,
            )
            s.add(row)
            s.flush()
            return row

        d1, d2, d3 = (_next_weekday(today, tz, n) for n in (2, 3, 4))
        confirmed = lesson(
            "c-1",
            anna,
            at(d1, 10),
            "confirmed",
            calendar_event_id="lesplanner00000001",
            calendar_note="Embedded calendar: no e-mail invite is sent.",
        )
        held = lesson("c-2", anna, at(d2, 14), "held", hold_expires_at=now + timedelta(minutes=12))
        moved = lesson("c-3", anna, at(d3, 11), "needs_reschedule")
        other = lesson("c-4", bram, at(d1, 15), "confirmed", calendar_event_id="lesplanner00000004")
        lesson("c-1", anna, at(today - timedelta(days=3), 10), "cancelled", cancel_reason="ziek")
        ids.update(confirmed=confirmed.id, held=held.id, moved=moved.id, other=other.id)

        s.add_all(
            [
                Payment(
                    checkout_session_id="cs_test_paid_1",
                    order_id="lesson-1",
                    conversation_id="conv-c-1",
                    contact_id="c-1",
                    lesson_id=confirmed.id,
                    segment="existing",
                    minutes=60,
                    price_id="price_std_60",
                    amount=4500,
                    currency="eur",
                    status="paid",
                    paid_at=now - timedelta(hours=2),
                    created_at=now - timedelta(hours=2),
                ),
                Payment(
                    checkout_session_id="cs_test_open_2",
                    order_id="lesson-2",
                    conversation_id="conv-c-2",
                    contact_id="c-2",
                    lesson_id=held.id,
                    segment="new",
                    minutes=60,
                    price_id="price_std_60",
                    amount=4500,
                    currency="eur",
                    status="open",
                    expires_at=now + timedelta(minutes=12),
                    created_at=now - timedelta(minutes=18),
                ),
                Payment(
                    checkout_session_id="cs_test_paid_3",
                    order_id="lesson-3",
                    conversation_id="conv-c-3",
                    contact_id="c-3",
                    lesson_id=moved.id,
                    segment="existing",
                    minutes=60,
                    price_id="price_std_60",
                    amount=4500,
                    currency="eur",
                    status="paid",
                    paid_at=now - timedelta(days=1),
                    created_at=now - timedelta(days=1),
                ),
                Payment(
                    checkout_session_id="cs_test_expired_4",
                    order_id="lesson-x",
                    conversation_id="conv-c-4",
                    contact_id="c-4",
                    segment="weekend",
                    minutes=60,
                    price_id="price_wk_60",
                    amount=3500,
                    currency="eur",
                    status="expired",
                    created_at=now - timedelta(days=8),
                ),
            ]
        )
        # A payment for the held lesson whose handling failed once: a retry confirms the lesson.
        event = {
            "id": "evt_failed_1",
            "object": "event",
            "type": "checkout.session.completed",
            "data": {
                "object": {
                    "id": "cs_test_open_2",
                    "object": "checkout.session",
                    "payment_status": "paid",
                    "status": "complete",
                    "client_reference_id": "lesson-2",
                    "amount_total": 4500,
                    "currency": "eur",
                    "payment_intent": "pi_test_2",
                    "metadata": {"order_id": "lesson-2", "conversation_id": "conv-c-2"},
                }
            },
        }
        s.add(
            StripeEvent(
                id="evt_failed_1",
                type="checkout.session.completed",
                payload=json.dumps(event),
                received_at=now - timedelta(minutes=5),
                status="failed",
                error="lesson not found",
                attempts=2,
            )
        )
        s.add(
            OutboxMessage(
                conversation_id="conv-c-1",
                dedupe_key="booking_confirmed:1",
                key="booking_confirmed",
                text="Je les is ingepland.",
                created_at=now,
            )
        )
        s.add(
            BusyBlock(tutor_id=anna.id, start=at(d2, 9), end=at(d2, 12), reason="tandarts", created_by=ADMIN)
        )
        s.add(
            WhitelistEntry(
                list="weekend", identifier="+31611112222", note="seed", added_by=ADMIN, added_at=now
            )
        )
    return ids


def test_builder_creates_one_account_per_role_and_lessons_in_every_active_state(engine, fast_passwords):
    build_console_data(engine)
    with write_session(engine) as s:
        roles = sorted(u.role for u in s.exec(select(User)).all())
        statuses = {lesson.status for lesson in s.exec(select(Lesson)).all()}
    assert roles == ["admin", "finance", "tutor", "tutor"]
    assert {"confirmed", "held", "needs_reschedule", "cancelled"} <= statuses


ROOT = Path(__file__).resolve().parents[2]


def _users() -> dict[str, User]:
    with read_session() as s:
        return {u.email: u for u in s.exec(select(User)).all()}


def app(script: str = "app.py") -> AppTest:
    return AppTest.from_file(str(ROOT / script), default_timeout=30)


def as_user(email: str, script: str = "app.py") -> AppTest:
    """An app whose session is signed in as `email` (the sign-in form has its own tests)."""
    at = app(script)
    user = _users()[email]
    at.session_state["user_id"] = user.id
    at.session_state["role"] = user.role
    at.session_state["session_version"] = user.session_version
    at.session_state["last_seen"] = clock.now()
    return at.run()


def sign_in(at: AppTest, email: str, password: str) -> AppTest:
    at.text_input(key="signin_email").set_value(email)
    at.text_input(key="signin_password").set_value(password)
    next(b for b in at.button if b.label == "Inloggen").click()
    return at.run()


@pytest.fixture
def world(engine, frozen_now):
    frozen_now(2026, 11, 30, 8, 0)  # Monday morning
    return build_console_data(engine)


def page(email: str, name: str):
    at = as_user(email)
    return at.switch_page(f"app_pages/{name}.py").run()


def ok(at) -> None:
    assert not at.exception, at.exception
    assert not [e.value for e in at.error], [e.value for e in at.error]


def click(at, label: str):
    next(b for b in at.button if b.label == label).click()
    return at.run()


def click_key(at, key: str):
    next(b for b in at.button if b.key == key).click()
    return at.run()


def lesson(lesson_id: int) -> Lesson:
    with read_session() as s:
        return s.get(Lesson, lesson_id)


def table_text(at) -> str:
    return "\n".join(df.value.to_string() for df in at.dataframe)
