"""Specs of the console's read queries (core.lesson_queries, core.payments.queries,
core.contact_queries, core.availability): local-date filters, a tutor's own lessons only,
pagination, totals per local day and week, and the lists finance watches."""

from __future__ import annotations

from dataclasses import fields
from datetime import date, datetime, timedelta

import pytest

from core import availability, availability_queries, contact_queries, lesson_queries, paging, system_reports
from core.db import read_session, write_session
from core.lesson_queries import LessonFilter
from core.models import Contact, Conversation, Lesson, Payment, Tutor
from core.payments import queries as payment_queries
from core.payments.queries import PaymentFilter, StatusTotal
from tests.conftest import AMS
from tests.support.console import (  # noqa: F401 - fast_passwords is a fixture
    OTHER_TUTOR,
    TUTOR,
    build_console_data,
    fast_passwords,
)

pytestmark = pytest.mark.usefixtures("fast_passwords")


@pytest.fixture
def world(engine, frozen_now):
    frozen_now(2026, 11, 30, 8, 0)
    return build_console_data(engine)


def _lessons(f: LessonFilter, **kw) -> paging.PageResult:
    with read_session() as s:
        return lesson_queries.lessons_page(s, f, AMS, **kw)


def test_date_filters_are_local_days(engine):
    with write_session(engine) as s:
        s.add(Tutor(name="T", calendar_id="t"))
        s.add(Contact(id="c"))
        s.flush()
        s.add(Conversation(id="v", contact_id="c"))
        s.flush()
        # 00:30 in Amsterdam on 2 December is still 1 December in UTC.
        for start in (datetime(2026, 12, 2, 0, 30, tzinfo=AMS), datetime(2026, 12, 1, 23, 30, tzinfo=AMS)):
            s.add(
                Lesson(
                    conversation_id="v",
                    contact_id="c",
                    tutor_id=1,
                    profile_name="new",
                    start=start,
                    end=start + timedelta(hours=1),
                    status="confirmed",
                )
            )
    page = _lessons(LessonFilter(date_from=date(2026, 12, 2), date_to=date(2026, 12, 2)))
    assert [r.start.astimezone(AMS).hour for r in page.rows] == [0]


def test_a_tutor_sees_only_their_own_lessons(world):
    own = _lessons(LessonFilter(own_email=TUTOR.upper()))
    assert own.total == 4 and {r.tutor_name for r in own.rows} == {"Anna de Vries"}
    other = _lessons(LessonFilter(own_email=OTHER_TUTOR))
    assert {r.tutor_name for r in other.rows} == {"Bram Jansen"}
    assert _lessons(LessonFilter(own_email="nobody@example.nl")).total == 0


def test_lessons_carry_their_newest_payment_and_filter_by_status_profile_and_contact(world):
    page = _lessons(LessonFilter(statuses=("confirmed",)))
    assert page.total == 2
    paid = next(r for r in page.rows if r.id == world["confirmed"])
    assert (paid.payment_status, paid.amount) == ("paid", 4500)
    assert _lessons(LessonFilter(query="sanne")).total == 2
    assert _lessons(LessonFilter(query="%")).total == 0  # LIKE wildcards are literal
    assert _lessons(LessonFilter(profile="premium")).total == 0


def test_pages_count_everything_and_a_page_past_the_end_becomes_the_last(world):
    first = _lessons(LessonFilter(), page=1, page_size=2)
    assert (first.total, first.pages, len(first.rows)) == (5, 3, 2)
    beyond = _lessons(LessonFilter(), page=99, page_size=2)
    assert beyond.page == 3 and len(beyond.rows) == 1
    starts = [r.start for r in _lessons(LessonFilter(), page_size=50).rows]
    assert starts == sorted(starts)


@pytest.mark.parametrize(
    "f",
    [
        LessonFilter(),
        LessonFilter(statuses=("confirmed", "held")),
        LessonFilter(tutor_id=1),
        LessonFilter(own_email=TUTOR),
        LessonFilter(query="sanne"),
        LessonFilter(query="example"),
        LessonFilter(profile="new"),
        LessonFilter(date_from=date(2026, 11, 30), date_to=date(2026, 12, 31)),
    ],
    ids=repr,
)
def test_a_lesson_page_counts_exactly_the_lessons_it_can_list(world, f):
    """The count of a lessons page (read without the tutor and contact joins unless a text search
    needs the contact) equals the lessons the pages list."""
    first = _lessons(f, page_size=500)
    assert first.total == len(first.rows)
    with write_session() as s:  # a contact without a name or e-mail is still counted
        s.add(Contact(id="c-bare"))
        s.flush()
        s.add(Conversation(id="v-bare", contact_id="c-bare"))
        s.flush()
        some = first.rows[0] if first.rows else None
        if some is not None:
            s.add(
                Lesson(
                    conversation_id="v-bare",
                    contact_id="c-bare",
                    tutor_id=some.tutor_id,
                    profile_name=some.profile_name,
                    start=some.start,
                    end=some.end,
                    status=some.status,
                )
            )
    again = _lessons(f, page_size=500)
    assert again.total == len(again.rows)


def test_payment_totals_group_by_local_day_and_iso_week(engine):
    with write_session(engine) as s:
        for i, (when, status, amount) in enumerate(
            [
                (datetime(2026, 12, 1, 23, 30, tzinfo=AMS), "paid", 4500),  # 22:30 UTC, still 1 Dec locally
                (datetime(2026, 12, 2, 0, 30, tzinfo=AMS), "paid", 4500),  # 23:30 UTC on 1 Dec, 2 Dec locally
                (datetime(2026, 12, 2, 9, 0, tzinfo=AMS), "expired", 3500),
                (datetime(2026, 12, 7, 9, 0, tzinfo=AMS), "paid", 6750),  # the next week
            ]
        ):
            s.add(
                Payment(
                    checkout_session_id=f"cs_{i}",
                    order_id=f"o{i}",
                    minutes=60,
                    price_id="p",
                    amount=amount,
                    currency="eur",
                    status=status,
                    created_at=when,
                )
            )
    f = PaymentFilter(date_from=date(2026, 11, 30), date_to=date(2026, 12, 13))
    with read_session() as s:
        days = payment_queries.payment_totals(s, f, AMS, "day")
        weeks = payment_queries.payment_totals(s, f, AMS, "week")
        counts = payment_queries.payment_status_counts(s, PaymentFilter(statuses=("paid",)), AMS)
    assert [(d.period, d.status, d.amount) for d in days] == [
        (date(2026, 12, 1), "paid", 4500),
        (date(2026, 12, 2), "expired", 3500),
        (date(2026, 12, 2), "paid", 4500),
        (date(2026, 12, 7), "paid", 6750),
    ]
    assert [(w.period, w.status, w.count) for w in weeks] == [
        (date(2026, 11, 30), "expired", 1),
        (date(2026, 11, 30), "paid", 2),
        (date(2026, 12, 7), "paid", 1),
    ]
    assert counts == {"paid": StatusTotal(count=3, amount=15750)}


def test_a_payment_text_search_finds_any_part_of_the_ids_in_any_case(engine):
    """The search box matches a substring of the session, order, payment intent or contact id,
    case-insensitively, with LIKE wildcards taken literally, in the counts, totals and pages."""
    with write_session(engine) as s:
        s.add(Contact(id="Contact-XY"))
        s.flush()
        for i, (session_id, order_id, intent_id, contact_id) in enumerate(
            [
                ("cs_live_AbC123", "order-1", "pi_1", None),
                ("cs_live_2", "ORDER-77_x", None, None),
                ("cs_live_3", "order-3", "pi_ZZtop", None),
                ("cs_live_4", "order-4", None, "Contact-XY"),
                ("cs_live_5", "order%5", None, None),
            ]
        ):
            s.add(
                Payment(
                    checkout_session_id=session_id,
                    order_id=order_id,
                    payment_intent_id=intent_id,
                    contact_id=contact_id,
                    minutes=60,
                    price_id="p",
                    amount=1000 * (i + 1),
                    currency="eur",
                    status="paid",
                    created_at=datetime(2026, 12, 2, 9, 0, tzinfo=AMS),
                )
            )

    def found(query: str) -> list[str]:
        f = PaymentFilter(date(2026, 12, 1), date(2026, 12, 3), (), query)
        with read_session() as s:
            page = payment_queries.payments_page(s, f, AMS)
            counts = payment_queries.payment_status_counts(s, f, AMS)
            totals = payment_queries.payment_totals(s, f, AMS)
        assert page.total == len(page.rows) == sum(c.count for c in counts.values())
        assert sum(t.count for t in totals) == page.total
        return sorted(r.checkout_session_id for r in page.rows)

    assert found("abc1") == ["cs_live_AbC123"]  # the middle of a session id, other case
    assert found("  77_X ") == ["cs_live_2"]  # order id, trimmed, upper case typed
    assert found("zztop") == ["cs_live_3"]  # payment intent id
    assert found("tact-x") == ["cs_live_4"]  # contact id
    assert found("order%") == ["cs_live_5"]  # % is literal
    assert found("_x") == ["cs_live_2"]  # _ is literal
    assert found("CS_LIVE") == ["cs_live_2", "cs_live_3", "cs_live_4", "cs_live_5", "cs_live_AbC123"]
    assert found("nothing") == []


@pytest.mark.sqlite_only
def test_a_payment_text_search_reads_the_ids_from_an_index_not_every_row_of_the_period(engine):
    """A month holds ~41,000 payments at 500,000 a year; reading each row to look at its ids took
    ~0.3 s per read, three reads per page (docs/PERFORMANCE.md). The ids are in ix_payment_search
    after created_at, so SQLite can match them in the index and read only the matching rows.
    SQLite without statistics prefers the narrower ix_payment_created_at, hence INDEXED BY."""
    from sqlalchemy import event

    statements: list[tuple[str, tuple]] = []

    def remember(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    f = PaymentFilter(date(2026, 12, 1), date(2026, 12, 31), (), "order-12")
    event.listen(engine, "before_cursor_execute", remember)
    try:
        with read_session(engine) as s:
            payment_queries.payment_status_counts(s, f, AMS)
            payment_queries.payment_totals(s, f, AMS)
            payment_queries.payments_page(s, f, AMS)
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    searches = [(sql, params) for sql, params in statements if "LIKE" in sql]
    assert len(searches) == 4  # counts, totals, the page's count and its rows
    with engine.connect() as conn:
        for sql, params in searches:
            plan = " / ".join(row[3] for row in conn.exec_driver_sql("EXPLAIN QUERY PLAN " + sql, params))
            assert "INDEX ix_payment_search" in plan, plan


def test_finance_lists_holds_expiring_reschedules_and_failed_events(world):
    now = datetime(2026, 11, 30, 8, 0, tzinfo=AMS)
    with read_session() as s:
        holds = lesson_queries.holds_expiring(s, now, timedelta(minutes=30))
        none_yet = lesson_queries.holds_expiring(s, now, timedelta(minutes=5))
        cases = lesson_queries.needs_reschedule(s)
        failed = payment_queries.failed_events(s)
    assert [h.id for h in holds] == [world["held"]] and none_yet == []
    assert [c.id for c in cases] == [world["moved"]] and cases[0].payment_status == "paid"
    assert failed[0].id == "evt_failed_1" and "payload" not in {f.name for f in fields(failed[0])}


def test_a_paid_lesson_that_was_cancelled_is_listed_for_a_refund(world):
    from core.lesson_changes import cancel_lesson

    with read_session() as s:
        assert payment_queries.paid_but_cancelled(s) == []
    cancel_lesson(world["confirmed"], actor=None, reason="ziek")
    with read_session() as s:
        listed = payment_queries.paid_but_cancelled(s)
    assert [(r.lesson_id, r.checkout_session_id) for r in listed] == [(world["confirmed"], "cs_test_paid_1")]


def test_refund_cases_are_the_newest_changed_lessons_of_both_statuses_with_a_paid_payment(engine):
    """paid_but_cancelled reads the cancelled and the expired lessons newest change first and
    stops at `limit`: the two statuses interleave by updated_at, a lesson without a paid payment
    is skipped however new, a lesson with two paid payments is listed twice (payment id order),
    and a confirmed lesson never shows."""
    base = datetime(2026, 11, 1, 9, 0, tzinfo=AMS)
    with write_session(engine) as s:
        s.add(Tutor(name="T", calendar_id="t"))
        s.add(Contact(id="c", name="Sanne"))
        s.flush()
        s.add(Conversation(id="v", contact_id="c"))
        s.flush()
        # (lesson status, hours after base it was last changed, statuses of its payments)
        plan = [
            ("cancelled", 1, ["paid"]),
            ("expired", 2, ["paid"]),
            ("cancelled", 3, ["expired"]),  # no paid payment: skipped
            ("confirmed", 4, ["paid"]),  # not gone: skipped
            ("expired", 5, ["paid", "paid"]),  # listed twice
            ("cancelled", 6, ["refunded"]),  # refunded already: skipped
            ("cancelled", 7, ["paid"]),
            ("expired", 8, []),
        ]
        ids = []
        for i, (status, hours, pays) in enumerate(plan):
            changed = base + timedelta(hours=hours)
            lesson = Lesson(
                conversation_id="v",
                contact_id="c",
                tutor_id=1,
                profile_name="new",
                start=base + timedelta(days=i),
                end=base + timedelta(days=i, hours=1),
                status=status,
                updated_at=changed,
            )
            s.add(lesson)
            s.flush()
            ids.append(lesson.id)
            for j, pay in enumerate(pays):
                s.add(
                    Payment(
                        checkout_session_id=f"cs_{i}_{j}",
                        order_id=f"o{i}_{j}",
                        minutes=60,
                        price_id="p",
                        amount=4500,
                        currency="eur",
                        status=pay,
                        lesson_id=lesson.id,
                    )
                )
    with read_session() as s:
        every = payment_queries.paid_but_cancelled(s)
        first3 = payment_queries.paid_but_cancelled(s, limit=3)
    listed = [(r.lesson_id, r.checkout_session_id, r.lesson_status) for r in every]
    assert listed == [
        (ids[6], "cs_6_0", "cancelled"),
        (ids[4], "cs_4_0", "expired"),
        (ids[4], "cs_4_1", "expired"),
        (ids[1], "cs_1_0", "expired"),
        (ids[0], "cs_0_0", "cancelled"),
    ]
    assert [(r.lesson_id, r.checkout_session_id) for r in first3] == [x[:2] for x in listed[:3]]
    assert every[0].contact_name == "Sanne" and every[0].amount == 4500


def test_contacts_are_found_by_a_phone_number_in_any_dutch_notation(world):
    with read_session() as s:
        assert [c.id for c in contact_queries.search_contacts(s, "06 1234 5678").rows] == ["c-1"]
        assert contact_queries.search_contacts(s, "").total == 4
        detail = contact_queries.contact_detail(s, "c-4")
    assert detail.segment == "weekend" and "whitelist" in detail.segment_reason
    assert detail.profile == "weekend"


def test_the_database_url_is_shown_without_its_password():
    shown = system_reports.safe_database_url("postgresql://app:s3cret@db:5432/lesplanner")
    assert "s3cret" not in shown and "db:5432/lesplanner" in shown


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://app@db:5432/lesplanner?password=s3cretpw&sslmode=require",
        "postgresql+psycopg://app@db:5432/lesplanner?sslmode=require&sslpassword=s3cretpw",
        "postgresql+psycopg://app:s3cretpw@db:5432/lesplanner?sslmode=require&passwd=s3cretpw",
    ],
)
def test_a_password_in_the_query_string_is_not_shown_either(url):
    """Issue 12, item 8: libpq also takes the password (and the client key's) as query
    parameters; the Integrations page showed them."""
    shown = system_reports.safe_database_url(url)
    assert "s3cretpw" not in shown
    assert "db:5432/lesplanner" in shown and "sslmode=require" in shown


def test_week_view_lists_the_tutors_lessons_free_slots_and_time_off(world):
    monday = date(2026, 11, 30)
    with read_session() as s:
        items = availability.week_items(s, world["anna"], monday, AMS)
        calendar = availability_queries.week_calendar(
            s, "existing", world["anna"], monday, AMS, datetime(2026, 11, 30, 8, 0, tzinfo=AMS)
        )
    assert {lesson.status for lesson in items.lessons} == {"confirmed", "held", "needs_reschedule"}
    assert [b.reason for b in items.busy_blocks] == ["tandarts"]
    thursday_10 = datetime(2026, 12, 3, 10, tzinfo=AMS)
    assert all(not (s <= thursday_10 < e) for s, e in calendar.free)  # the dentist
    assert any(s <= thursday_10 < e for s, e in calendar.busy)
    assert all(s.astimezone(AMS).date() >= monday for s, _ in calendar.free)


def test_the_contact_list_shows_the_segment_the_bot_detects_now(engine):
    from core.contact_queries import search_contacts
    from core.models import Contact
    from core.segments import add_to_whitelist

    with write_session(engine) as s:
        s.add(Contact(id="k-new", name="Nieuw"))
        s.add(Contact(id="k-paid", name="Betaald", attributes={"has_paid_lesson": True}))
        s.add(Contact(id="k-weekend", name="Weekend", phone="+31612345678"))
        s.flush()
        add_to_whitelist(s, "weekend", "06 12345678")

    with read_session(engine) as s:
        rows = {r.id: r.segment for r in search_contacts(s, "").rows}

    assert rows == {"k-new": "new", "k-paid": "existing", "k-weekend": "weekend"}
