"""Insights (issue 16): the funnel offered → booked → paid → attended, by week and segment, with
cancellation and no-show rates, revenue and the time from offer to booking — checked against a
hand-built data set whose every number is worked out below, and the offers the bot API records.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlmodel import select

from core import insights
from core.db import write_session
from core.models import Contact, Conversation, Lesson, Payment, SlotOffer, Tutor
from tests.conftest import AMS

pytest_plugins = ["tests.support.api"]

WEEK1 = date(2026, 11, 2)  # a Monday
WEEK2 = date(2026, 11, 9)


def at(day: int, hour: int, minute: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, tzinfo=AMS)


@pytest.fixture
def data(engine):
    """Seven conversations, each a line of the funnel (see the module's expectations)."""
    with write_session(engine) as s:
        tutor = Tutor(name="T", calendar_id="primary")
        s.add(tutor)
        s.flush()

        def conversation(cid: str) -> None:
            s.add(Contact(id=f"c-{cid}", name=cid))
            s.flush()
            s.add(Conversation(id=cid, contact_id=f"c-{cid}"))
            s.flush()

        def offer(cid: str, when: datetime, segment: str, slots: int = 6) -> None:
            s.add(
                SlotOffer(
                    conversation_id=cid,
                    contact_id=f"c-{cid}",
                    profile_name="new",
                    segment=segment,
                    slots=slots,
                    offered_at=when,
                )
            )

        def lesson(
            cid: str, created: datetime, start: datetime, status: str, outcome: str | None = None
        ) -> int:
            row = Lesson(
                conversation_id=cid,
                contact_id=f"c-{cid}",
                tutor_id=tutor.id,
                profile_name="new",
                start=start,
                end=start + timedelta(hours=1),
                status=status,
                outcome=outcome,
                created_at=created,
            )
            s.add(row)
            s.flush()
            return row.id

        def payment(
            cid: str, lesson_id: int, amount: int, status: str, paid: datetime | None, refunded: int = 0
        ) -> None:
            s.add(
                Payment(
                    checkout_session_id=f"cs_{cid}_{lesson_id}",
                    order_id=f"lesson-{lesson_id}",
                    conversation_id=cid,
                    contact_id=f"c-{cid}",
                    lesson_id=lesson_id,
                    minutes=60,
                    price_id="price_x",
                    amount=amount,
                    currency="eur",
                    status=status,
                    paid_at=paid,
                    refunded_amount=refunded,
                    created_at=paid or start_of_period,
                )
            )

        start_of_period = at(2, 0)
        for cid in "ABCDEFG":
            conversation(cid)
        # A (new): offered Mon 2 Nov 10:00 and again Tue; booked 30 min after the first offer, paid,
        # attended; a second lesson on 9 Nov, paid 45, 15 refunded, attended.
        offer("A", at(2, 10), "new")
        offer("A", at(3, 9), "new")
        a1 = lesson("A", at(2, 10, 30), at(5, 16), "confirmed", "attended")
        payment("A", a1, 4500, "paid", at(2, 10, 40))
        a2 = lesson("A", at(9, 12), at(12, 17), "confirmed", "attended")
        payment("A", a2, 4500, "partially_refunded", at(9, 12, 5), refunded=1500)
        # B (new): offered Tue 3 Nov 9:00, booked two hours later, never paid.
        offer("B", at(3, 9), "new")
        b = lesson("B", at(3, 11), at(6, 10), "expired")
        payment("B", b, 4500, "expired", None)
        # C (existing): offered Wed 4 Nov, never booked.
        offer("C", at(4, 15), "existing")
        # D (existing): offered Tue 10 Nov, booked an hour later, paid 60, did not show.
        offer("D", at(10, 8), "existing")
        d = lesson("D", at(10, 9), at(12, 18), "confirmed", "no_show")
        payment("D", d, 6000, "paid", at(10, 9, 10))
        # E (weekend): offered Wed 11 Nov, booked 10 min later, paid, then refunded in full and cancelled.
        offer("E", at(11, 20), "weekend")
        e = lesson("E", at(11, 20, 10), at(14, 11), "cancelled")
        payment("E", e, 4500, "refunded", at(11, 20, 15), refunded=4500)
        # F: asked, but there was nothing to offer (0 slots): not "offered".
        offer("F", at(11, 9), "new", slots=0)
        # G: first offered before the period; its booking in the period belongs to no cohort here.
        offer("G", at(20, 9, month=10), "new")
        lesson("G", at(3, 9), at(20, 9), "held")
    return engine


def _period(engine, **kw):
    from core.db import read_session

    with read_session(engine) as s:
        return insights.insights(s, insights.InsightsFilter(WEEK1, WEEK2 + timedelta(days=6), **kw), AMS)


def test_the_funnel_by_week_counts_conversations_from_their_first_offer(data):
    result = _period(data)
    weeks = {(r.week, r.offered, r.booked, r.paid, r.attended) for r in result.weeks}
    assert weeks == {(WEEK1, 3, 2, 1, 1), (WEEK2, 2, 2, 2, 0)}
    t = result.totals
    assert (t.offered, t.booked, t.paid, t.attended) == (5, 4, 3, 1)
    assert t.booked_rate == pytest.approx(0.8)
    assert t.paid_rate == pytest.approx(0.6)
    assert t.attended_rate == pytest.approx(0.2)


def test_the_funnel_by_segment(data):
    result = _period(data)
    by_segment = {r.segment: (r.offered, r.booked, r.paid, r.attended) for r in result.segments}
    assert by_segment == {"new": (2, 2, 1, 1), "existing": (2, 1, 1, 0), "weekend": (1, 1, 1, 0)}


def test_a_segment_filter_narrows_everything_to_it(data):
    result = _period(data, segment="existing")
    assert {(r.week, r.offered, r.booked, r.paid) for r in result.weeks} == {
        (WEEK1, 1, 0, 0),
        (WEEK2, 1, 1, 1),
    }
    assert result.revenue == 6000
    assert result.no_show_rate == pytest.approx(1.0)


def test_rates_revenue_and_time_to_book(data):
    result = _period(data)
    # Lessons starting in the period: A1, A2, D confirmed; E cancelled; B expired (never confirmed).
    assert (result.lessons_confirmed, result.lessons_cancelled) == (3, 1)
    assert result.cancellation_rate == pytest.approx(0.25)
    # Marked: A1, A2 attended; D no-show.
    assert result.no_show_rate == pytest.approx(1 / 3)
    # Paid in the period 4500 + 4500 + 6000 + 4500 = 19500; refunded 1500 + 4500.
    assert (result.paid_total, result.refunded_total, result.revenue) == (19500, 6000, 13500)
    assert {(r.week, r.revenue) for r in result.weeks} == {(WEEK1, 4500), (WEEK2, 9000)}
    # First booking after the first offer: A 30, B 120, D 60, E 10 minutes → median 45.
    assert result.median_minutes_to_book == pytest.approx(45)


def test_an_empty_period_has_zeros_and_no_rates(engine):
    result = _period(engine)
    assert result.weeks == [] and result.segments == []
    assert result.totals.offered == 0 and result.totals.booked_rate is None
    assert result.cancellation_rate is None and result.no_show_rate is None
    assert result.median_minutes_to_book is None and result.revenue == 0


def test_the_export_has_a_row_per_week_and_segment(data):
    from core.db import read_session

    with read_session(data) as s:
        rows = insights.insights_export(s, insights.InsightsFilter(WEEK1, WEEK2 + timedelta(days=6)), AMS)
    assert {(r["week"], r["segment"], r["offered"], r["booked"], r["paid"], r["attended"]) for r in rows} == {
        (WEEK1, "new", 2, 2, 1, 1),
        (WEEK1, "existing", 1, 0, 0, 0),
        (WEEK2, "existing", 1, 1, 1, 0),
        (WEEK2, "weekend", 1, 1, 1, 0),
    }


def test_the_bot_asking_for_slots_records_one_offer(client, tutor, monday_morning):
    r = client.get("/api/v1/slots", params={"conversation_id": "conv-1", "contact_id": "ct-1"})
    assert r.status_code == 200, r.text
    assert r.json()["slots"]
    with write_session() as s:
        offers = s.exec(select(SlotOffer)).all()
    assert [(o.conversation_id, o.contact_id, o.profile_name, o.segment, o.slots) for o in offers] == [
        ("conv-1", "ct-1", "new", "new", len(r.json()["slots"]))
    ]
    assert offers[0].offered_at == monday_morning


def test_a_slot_request_that_fails_records_no_offer(client, tutor, monday_morning):
    r = client.get(
        "/api/v1/slots", params={"conversation_id": "conv-1", "contact_id": "ct-1", "profile": "nope"}
    )
    assert r.status_code in (404, 422), r.text
    with write_session() as s:
        assert s.exec(select(SlotOffer)).all() == []


def test_revenue_goes_to_the_local_week_it_was_paid_in(engine):
    """Revenue per week follows the local date of paid_at (Monday 00:00 Amsterdam, not UTC, even
    across the end of summer time), subtracts refunds, counts a payment without an amount as 0,
    and a week with only such payments still gets a row; the period's bounds are local too."""
    from core.db import read_session

    paid = [
        (datetime(2026, 10, 18, 23, 30, tzinfo=AMS), 1000, 0),  # Sunday night: before the period
        (datetime(2026, 10, 19, 0, 30, tzinfo=AMS), 2000, 500),  # Monday 00:30 local = Sunday UTC
        (datetime(2026, 10, 25, 23, 59, tzinfo=AMS), 3000, 0),  # Sunday, summer time ended that day
        (datetime(2026, 10, 26, 0, 0, tzinfo=AMS), 4000, 4000),  # the next Monday, fully refunded
        (datetime(2026, 11, 2, 0, 1, tzinfo=AMS), None, 0),  # no amount: a row with revenue 0
        (datetime(2026, 11, 15, 23, 59, tzinfo=AMS), 5000, 0),  # the last minute of the period
        (datetime(2026, 11, 16, 0, 0, tzinfo=AMS), 6000, 0),  # after the period
    ]
    with write_session(engine) as s:
        for i, (when, amount, refunded) in enumerate(paid):
            s.add(
                Payment(
                    checkout_session_id=f"cs_{i}",
                    order_id=f"o{i}",
                    minutes=60,
                    price_id="p",
                    amount=amount,
                    refunded_amount=refunded,
                    currency="eur",
                    status="paid",
                    paid_at=when,
                )
            )
    with read_session(engine) as s:
        result = insights.insights(s, insights.InsightsFilter(date(2026, 10, 19), date(2026, 11, 15)), AMS)
    assert [(r.week, r.revenue) for r in result.weeks] == [
        (date(2026, 10, 19), 4500),
        (date(2026, 10, 26), 0),
        (date(2026, 11, 2), 0),
        (date(2026, 11, 9), 5000),
    ]
    assert (result.paid_total, result.refunded_total) == (14000, 4500)


def test_revenue_without_a_segment_is_read_from_the_paid_rollup(engine):
    """A year of revenue must not add up every payment per view (DESIGN: pages within 1 s at
    500,000 payments): without a segment it is read from PaymentPaidDaily, which every payment
    write keeps. A row written around the ORM (a bulk load) is therefore only counted after a
    rebuild; with a segment chosen, the payments themselves are read."""
    from sqlalchemy import insert

    from core.db import get_engine, read_session
    from core.payments import rollup

    when = datetime(2026, 11, 4, 12, 0, tzinfo=AMS)
    with write_session(engine) as s:
        s.add(Contact(id="c-X", name="X"))
        s.flush()
        s.add(Conversation(id="X", contact_id="c-X"))
        s.flush()
        s.add(
            SlotOffer(
                conversation_id="X",
                contact_id="c-X",
                profile_name="new",
                segment="new",
                slots=3,
                offered_at=when,
            )
        )
    row = {
        "checkout_session_id": "cs_bulk",
        "order_id": "bulk",
        "conversation_id": "X",
        "minutes": 60,
        "price_id": "p",
        "amount": 4500,
        "refunded_amount": 1000,
        "currency": "eur",
        "status": "partially_refunded",
        "paid_at": when,
        "created_at": when,
        "updated_at": when,
    }
    with get_engine().begin() as connection:
        connection.execute(insert(Payment), [row])
    period = insights.InsightsFilter(WEEK1, WEEK2)

    def revenue(f: insights.InsightsFilter) -> tuple[int, int]:
        with read_session(engine) as s:
            result = insights.insights(s, f, AMS)
        return result.paid_total, result.refunded_total

    assert revenue(period) == (0, 0)  # not in the rollup yet
    assert revenue(insights.InsightsFilter(WEEK1, WEEK2, segment="new")) == (4500, 1000)
    with get_engine().begin() as connection:
        rollup.rebuild(connection)
    assert revenue(period) == (4500, 1000)
