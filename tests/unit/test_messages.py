"""Specification of customer messages (core/messages.py): the nl/en catalog, Dutch dates, and the
outbox that stores each message once per dedupe key."""

from __future__ import annotations

import string
import threading
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from core.config import Settings, set_settings
from core.db import read_session, write_session
from core.messages import CATALOG, LOCALES, format_when, pending_messages, queue_message, t
from core.models import Contact, Conversation, OutboxMessage
from tests.conftest import AMS

PARAMS = {
    "when": "dinsdag 1 december om 10:00",
    "until": "09:30",
    "url": "https://checkout.stripe.test/c/pay/cs_test_1",
    "amount": "€ 45,00",
    "tutor": "Anna",
    "alternatives": "woensdag 2 december om 11:00",
    "lessons": "5",
    "minutes": "60",
    "dates": "ma 7 dec en ma 14 dec, steeds om 16:00",
}


def placeholders(template: str) -> set[str]:
    return {field for _, field, _, _ in string.Formatter().parse(template) if field}


# --- the catalog --------------------------------------------------------------------------------


@pytest.mark.parametrize("locale", LOCALES)
@pytest.mark.parametrize("key", sorted(CATALOG))
def test_every_message_exists_in_dutch_and_english_with_its_details_filled_in(key, locale):
    template = CATALOG[key][locale]
    text = t(key, locale, **PARAMS)
    assert text.strip()
    assert "{" not in text and "}" not in text
    for name in placeholders(template):
        assert name in PARAMS, f"{key} uses an unknown placeholder {name}"
        assert PARAMS[name] in text


@pytest.mark.parametrize("key", sorted(CATALOG))
def test_dutch_and_english_say_it_with_the_same_details(key):
    assert CATALOG[key]["nl"] != CATALOG[key]["en"]
    assert placeholders(CATALOG[key]["nl"]) == placeholders(CATALOG[key]["en"])


def test_the_default_locale_is_dutch():
    assert t("booking_confirmed", when=PARAMS["when"]) == (
        "Je les is ingepland op dinsdag 1 december om 10:00. Tot dan!"
    )
    assert t("booking_confirmed", "en", when="Tuesday 1 December at 10:00") == (
        "Your lesson is booked for Tuesday 1 December at 10:00. See you then!"
    )


def test_an_unknown_locale_falls_back_to_dutch():
    assert t("lesson_cancelled", "de", **PARAMS) == t("lesson_cancelled", "nl", **PARAMS)


def test_short_dates_and_money_read_naturally_in_dutch_and_english():
    from datetime import datetime

    from core.messages import format_money, format_short

    monday = datetime(2026, 12, 7, 16, 0, tzinfo=ZoneInfo("Europe/Amsterdam"))
    assert format_short(monday) == "ma 7 dec om 16:00"
    assert format_short(monday, "en") == "Mon 7 Dec at 16:00"
    assert format_money(4500) == "€ 45,00" and format_money(123456) == "€ 1.234,56"
    assert format_money(4500, "eur", "en") == "€45.00"


def test_a_series_lists_its_dates_and_says_the_time_once_when_they_share_it():
    from datetime import datetime

    from core.messages import format_dates

    tz = ZoneInfo("Europe/Amsterdam")
    mondays = [datetime(2026, 12, d, 16, 0, tzinfo=tz) for d in (7, 14, 21, 28)]
    mondays.append(datetime(2027, 1, 4, 16, 0, tzinfo=tz))
    assert format_dates(mondays) == "ma 7 dec, ma 14 dec, ma 21 dec, ma 28 dec en ma 4 jan, steeds om 16:00"
    assert format_dates(mondays[:2], "en") == "Mon 7 Dec and Mon 14 Dec, each at 16:00"
    moved = [mondays[0], datetime(2026, 12, 15, 17, 30, tzinfo=tz), mondays[2]]
    assert format_dates(moved) == "ma 7 dec om 16:00, di 15 dec om 17:30 en ma 21 dec om 16:00"
    assert format_dates(moved, "en") == "Mon 7 Dec at 16:00, Tue 15 Dec at 17:30 and Mon 21 Dec at 16:00"
    assert format_dates(mondays[:1]) == "ma 7 dec om 16:00"


def test_an_unknown_key_is_an_error():
    with pytest.raises(KeyError, match="no_such_message"):
        t("no_such_message")


# --- dates the Dutch way ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("moment", "dutch"),
    [
        pytest.param(datetime(2026, 12, 1, 9, 0, tzinfo=UTC), "dinsdag 1 december om 10:00", id="winter"),
        pytest.param(datetime(2026, 7, 15, 8, 0, tzinfo=UTC), "woensdag 15 juli om 10:00", id="summer"),
        pytest.param(datetime(2027, 1, 3, 8, 5, tzinfo=UTC), "zondag 3 januari om 09:05", id="morning"),
        pytest.param(
            datetime(2026, 3, 29, 23, 30, tzinfo=UTC), "maandag 30 maart om 01:30", id="after midnight local"
        ),
        pytest.param(
            datetime(2026, 10, 25, 0, 30, tzinfo=UTC),
            "zondag 25 oktober om 02:30",
            id="first 02:30 of fall back",
        ),
        pytest.param(datetime(2026, 5, 2, 18, 0, tzinfo=AMS), "zaterdag 2 mei om 18:00", id="local input"),
    ],
)
def test_format_when_in_dutch(settings, moment, dutch):
    assert format_when(moment) == dutch
    assert format_when(moment, "nl", AMS) == dutch


def test_format_when_in_english(settings):
    assert format_when(datetime(2026, 12, 1, 9, 0, tzinfo=UTC), "en") == "Tuesday 1 December at 10:00"


def test_format_when_uses_the_business_time_zone(tmp_path):
    set_settings(
        Settings(_env_file=None, database_url=f"sqlite:///{tmp_path}/x.db", timezone="Europe/London")
    )
    assert format_when(datetime(2026, 12, 1, 9, 0, tzinfo=UTC)) == "dinsdag 1 december om 09:00"


# --- the outbox -----------------------------------------------------------------------------------


@pytest.fixture
def conversation(engine) -> str:
    with write_session() as session:
        session.add(Contact(id="contact-1"))
        session.flush()
        session.add(Conversation(id="conv-1", contact_id="contact-1"))
    return "conv-1"


def outbox() -> list[OutboxMessage]:
    with read_session() as session:
        return list(session.exec(select(OutboxMessage).order_by(OutboxMessage.id)).all())


def test_queueing_the_same_dedupe_key_twice_stores_one_message(conversation):
    with write_session() as session:
        first = queue_message(session, conversation, "booking_confirmed", "booking_confirmed:1", **PARAMS)
    with write_session() as session:
        second = queue_message(session, conversation, "booking_confirmed", "booking_confirmed:1", **PARAMS)
    assert first is not None and second is None
    rows = outbox()
    assert len(rows) == 1
    assert (rows[0].key, rows[0].status, rows[0].locale) == ("booking_confirmed", "pending", "nl")
    assert rows[0].text == "Je les is ingepland op dinsdag 1 december om 10:00. Tot dan!"


def test_the_same_key_twice_in_one_transaction_stores_one_message(conversation):
    with write_session() as session:
        queue_message(session, conversation, "hold_expired", "hold_released:7", **PARAMS)
        assert queue_message(session, conversation, "hold_expired", "hold_released:7", **PARAMS) is None
    assert len(outbox()) == 1


def test_different_dedupe_keys_are_different_messages(conversation):
    with write_session() as session:
        queue_message(session, conversation, "booking_confirmed", "booking_confirmed:1", **PARAMS)
        queue_message(session, conversation, "booking_confirmed", "booking_confirmed:2", **PARAMS)
        queue_message(session, conversation, "lesson_cancelled", "lesson_cancelled:1", "en", **PARAMS)
    assert [(m.key, m.locale) for m in outbox()] == [
        ("booking_confirmed", "nl"),
        ("booking_confirmed", "nl"),
        ("lesson_cancelled", "en"),
    ]
    assert outbox()[2].text == "Your lesson on dinsdag 1 december om 10:00 has been cancelled."


def test_a_rolled_back_transaction_queues_nothing(conversation):
    with pytest.raises(RuntimeError), write_session() as session:
        queue_message(session, conversation, "booking_confirmed", "booking_confirmed:1", **PARAMS)
        raise RuntimeError("the booking failed after all")
    assert outbox() == []
    with write_session() as session:  # and the key is free for the retry
        assert queue_message(session, conversation, "booking_confirmed", "booking_confirmed:1", **PARAMS)


def test_concurrent_queueing_of_one_key_stores_one_message(conversation):
    barrier = threading.Barrier(10)
    results: list[object] = []

    def run() -> None:
        barrier.wait()
        try:
            with write_session() as session:
                results.append(
                    queue_message(
                        session, conversation, "payment_success_message", "payment_success:cs_test_1"
                    )
                    is not None
                )
        except Exception as exc:  # noqa: BLE001
            results.append(exc)

    threads = [threading.Thread(target=run) for _ in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results, key=str) == [False] * 9 + [True], results
    assert len(outbox()) == 1


def test_pending_messages_are_the_conversations_unsent_ones_in_order(conversation):
    with write_session() as session:
        session.add(Contact(id="contact-2"))
        session.flush()
        session.add(Conversation(id="conv-2", contact_id="contact-2"))
        session.flush()
        queue_message(session, conversation, "booking_confirmed", "a", **PARAMS)
        queue_message(session, conversation, "lesson_cancelled", "b", **PARAMS)
        queue_message(session, "conv-2", "booking_confirmed", "c", **PARAMS)
    with write_session() as session:
        sent = session.exec(select(OutboxMessage).where(OutboxMessage.dedupe_key == "a")).one()
        sent.status = "sent"
    with read_session() as session:
        assert [m.dedupe_key for m in pending_messages(session, conversation)] == ["b"]
        assert [m.dedupe_key for m in pending_messages(session, conversation, status=None)] == ["a", "b"]
