"""The console's side of weekly series (issue 15): Lessen shows a series lesson as one of its
series ("reeks 2/3") and the lesson's detail lists the whole series with its one payment;
Betalingen says a series payment covers "3 lessen (reeks)"."""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from core.db import write_session
from core.models import Lesson, LessonSeries, Payment
from tests.conftest import AMS
from tests.support.console import ADMIN, FINANCE, fast_passwords, ok, page, table_text  # noqa: F401 - a fixture

pytest_plugins = ["tests.support.console"]
pytestmark = pytest.mark.usefixtures("fast_passwords")


@pytest.fixture
def series(world) -> dict:
    first = datetime.combine(datetime(2026, 12, 3).date(), time(17), tzinfo=AMS)  # Thursday
    with write_session() as s:
        row = LessonSeries(
            conversation_id="conv-c-2",
            contact_id="c-2",
            profile_name="existing",
            start=first,
            weeks=3,
            lessons=3,
        )
        s.add(row)
        s.flush()
        ids = []
        for n in range(3):
            lesson = Lesson(
                conversation_id="conv-c-2",
                contact_id="c-2",
                tutor_id=world["anna"],
                profile_name="existing",
                start=first + timedelta(weeks=n),
                end=first + timedelta(weeks=n, hours=1),
                title="Les c-2",
                status="confirmed",
                series_id=row.id,
            )
            s.add(lesson)
            s.flush()
            ids.append(lesson.id)
        s.add(
            Payment(
                checkout_session_id="cs_test_series_1",
                order_id=f"series-{row.id}",
                conversation_id="conv-c-2",
                contact_id="c-2",
                series_id=row.id,
                kind="series",
                quantity=3,
                minutes=60,
                price_id="price_std_60",
                amount=13500,
                currency="eur",
                status="paid",
            )
        )
        return {"id": row.id, "lessons": ids}


def test_lessen_labels_each_lesson_of_a_series_and_the_detail_lists_the_series(series):
    at = page(ADMIN, "lessons")
    ok(at)
    text = table_text(at)
    assert "reeks 1/3" in text and "reeks 2/3" in text and "reeks 3/3" in text

    at.selectbox(key="lessons_pick").set_value(series["lessons"][1]).run()
    ok(at)
    [expander] = [e for e in at.expander if "Reeks" in e.label]
    assert f"#{series['id']}" in expander.label and "3 lessen" in expander.label
    assert "cs_test_series_1" in table_text(at)  # the series' one payment is this lesson's too


def test_betalingen_says_a_series_payment_covers_its_lessons(series):
    at = page(FINANCE, "payments")
    ok(at)
    assert "3 lessen (reeks)" in table_text(at)
