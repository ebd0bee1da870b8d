"""The Insights page (admin, finance) through AppTest: the funnel's numbers beside its chart, the
rates, an empty state that says what to do, and no page for tutors."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import clock
from core.db import write_session
from core.models import SlotOffer
from tests.support.console import (  # noqa: F401 - fast_passwords is a fixture
    ADMIN,
    FINANCE,
    as_user,
    build_console_data,
    fast_passwords,
)

pytestmark = pytest.mark.usefixtures("fast_passwords")


@pytest.fixture
def world(engine, frozen_now):
    frozen_now(2026, 11, 30, 8, 0)  # Monday morning
    ids = build_console_data(engine)
    now = clock.now()
    with write_session(engine) as s:
        for contact, segment in (
            ("c-1", "existing"),
            ("c-2", "new"),
            ("c-3", "existing"),
            ("c-4", "weekend"),
        ):
            s.add(
                SlotOffer(
                    conversation_id=f"conv-{contact}",
                    contact_id=contact,
                    profile_name="existing",
                    segment=segment,
                    slots=6,
                    offered_at=now - timedelta(hours=3),
                )
            )
    return ids


def page(email: str):
    return as_user(email).switch_page("app_pages/insights.py").run()


def ok(at) -> None:
    assert not at.exception, at.exception
    assert not [e.value for e in at.error], [e.value for e in at.error]


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def test_finance_sees_the_funnel_with_its_numbers_and_a_chart(world):
    at = page(FINANCE)
    ok(at)
    shown = metrics(at)
    # Four conversations offered three hours ago; each has a lesson created since (now).
    assert shown["Aangeboden"] == "4"
    assert shown["Geboekt"] == "4"
    # c-1 paid, c-3 paid (needs a new time), c-4 confirmed (no payment needed); c-2 still holds.
    assert shown["Betaald"] == "3"
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
    table = "\n".join(df.value.to_string() for df in at.dataframe)
    assert "existing" in table and "weekend" in table


def test_a_segment_filter_narrows_the_funnel(world):
    at = page(ADMIN)
    at.selectbox(key="ins_segment").set_value("existing").run()
    ok(at)
    assert metrics(at)["Aangeboden"] == "2"


def test_an_empty_period_says_where_the_numbers_come_from(engine, frozen_now):
    frozen_now(2026, 11, 30, 8, 0)
    build_console_data(engine)
    at = page(ADMIN)
    ok(at)
    assert any("bot" in i.value and "aanbiedt" in i.value for i in at.info), [i.value for i in at.info]
