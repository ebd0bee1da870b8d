"""Attack: the insights funnel (core/insights.py). A conversation's cohort is the week of its
first offer (tests/unit/test_insights.py: "G: first offered before the period; its booking in the
period belongs to no cohort here"), so it must not depend on which period the report covers."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from core import insights
from core.db import read_session, write_session
from core.models import Contact, Conversation, Lesson, SlotOffer, Tutor
from tests.conftest import AMS

WEEK1 = date(2026, 11, 2)  # a Monday
WEEK2 = date(2026, 11, 9)


def at(month: int, day: int, hour: int) -> datetime:
    return datetime(2026, month, day, hour, tzinfo=AMS)


@pytest.fixture
def offered_twice(engine):
    """H: first offered in October, offered again on Tue 3 Nov and booked an hour later."""
    with write_session(engine) as s:
        tutor = Tutor(name="T", calendar_id="primary")
        s.add(tutor)
        s.add(Contact(id="c-H", name="H"))
        s.flush()
        s.add(Conversation(id="H", contact_id="c-H"))
        s.flush()
        for when in (at(10, 20, 9), at(11, 3, 9)):
            s.add(
                SlotOffer(
                    conversation_id="H",
                    contact_id="c-H",
                    profile_name="new",
                    segment="new",
                    slots=6,
                    offered_at=when,
                )
            )
        s.add(
            Lesson(
                conversation_id="H",
                contact_id="c-H",
                tutor_id=tutor.id,
                profile_name="new",
                start=at(11, 5, 16),
                end=at(11, 5, 17),
                status="confirmed",
                created_at=at(11, 3, 10),
            )
        )
    return engine


def report(engine, first: date, last: date) -> insights.Insights:
    with read_session(engine) as s:
        return insights.insights(s, insights.InsightsFilter(first, last), AMS)


def test_a_conversation_first_offered_before_the_period_is_in_no_cohort_of_it(offered_twice):
    november = report(offered_twice, WEEK1, WEEK2 + timedelta(days=6))
    assert november.totals.offered == 0, (
        "H is counted as a new November cohort (its first offer was in October)"
    )


def test_monthly_reports_add_up_to_the_report_of_both_months(offered_twice):
    october = report(offered_twice, date(2026, 10, 1), date(2026, 10, 31))
    november = report(offered_twice, date(2026, 11, 1), date(2026, 11, 30))
    both = report(offered_twice, date(2026, 10, 1), date(2026, 11, 30))
    assert october.totals.offered + november.totals.offered == both.totals.offered
    assert october.totals.booked + november.totals.booked == both.totals.booked
