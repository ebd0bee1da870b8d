"""The console's daily payment rollup (PaymentDaily) always equals a recomputation from the
payment table, whatever sequence of lifecycle events Stripe and staff produce: links created,
paid at once or later, failed, expired by Stripe or by us, refunded in part or in full,
disputed, events repeated, across local midnights. On SQLite and on Postgres.

The console's totals (payment_totals, payment_status_counts) read the rollup, so they must also
agree with the old per-view aggregation.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from core import clock
from core.db import get_engine, read_session, write_session
from core.models import Contact, Conversation, Lesson, Tutor
from core.payments import create_payment_link, rollup
from core.payments.links import expire_checkout_for_lesson
from core.payments.queries import PaymentFilter, payment_status_counts, payment_totals
from tests.conftest import AMS
from tests.fakes.stripe_fixtures import *  # noqa: F403
from tests.support.rollup import assert_rollup_matches, recomputed

START = datetime(2026, 11, 30, 21, 0, tzinfo=AMS)  # Monday evening: midnights come soon

OPS = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "link",
                "link",
                "pay",
                "pay_later",
                "async_ok",
                "async_fail",
                "stripe_expires",
                "we_expire",
                "refund_part",
                "refund_all",
                "dispute",
                "repeat",
                "time",
            ]
        ),
        st.integers(0, 1_000),
    ),
    min_size=1,
    max_size=25,
)


@pytest.fixture
def world(engine, frozen_now):
    frozen_now(START)
    with write_session() as session:
        tutor = Tutor(name="Anna", email="anna@lesplanner.test", calendar_id="anna-calendar")
        session.add(tutor)
        session.flush()
        return {"tutor": tutor.id, "n": 0, "sessions": [], "events": []}


def _new_link(world: dict) -> None:
    n = world["n"] = world["n"] + 1
    now = clock.now()
    with write_session() as session:
        session.add(Contact(id=f"rc-{n}", name=f"Leerling {n}"))
        session.add(Conversation(id=f"rv-{n}", contact_id=f"rc-{n}"))
        session.flush()
        lesson = Lesson(
            conversation_id=f"rv-{n}",
            contact_id=f"rc-{n}",
            tutor_id=world["tutor"],
            profile_name="existing",
            start=now + timedelta(days=3, hours=n),
            end=now + timedelta(days=3, hours=n + 1),
            title="Wiskunde",
            status="held",
            hold_expires_at=now + timedelta(hours=1),
        )
        session.add(lesson)
        session.flush()
        lesson_id = lesson.id
    payment = create_payment_link(
        "existing",
        60,
        f"rollup-order-{n}",
        f"rv-{n}",
        f"Leerling {n}",
        "bijles",
        "havo",
        "wiskunde",
        contact_id=f"rc-{n}",
        lesson_id=lesson_id,
    )
    world["sessions"].append((payment.checkout_session_id, lesson_id))


def _step(world: dict, fake, deliver, op: str, pick: int) -> None:  # noqa: ANN001, C901
    if op == "link" or not world["sessions"]:
        _new_link(world)
        return
    session_id, lesson_id = world["sessions"][pick % len(world["sessions"])]
    stripe_session = fake.sessions[session_id]
    state, paid = stripe_session["status"], stripe_session["payment_status"]
    event = None
    if op == "pay" and state == "open":
        event = fake.complete_session(session_id, paid=True)
    elif op == "pay_later" and state == "open":
        event = fake.complete_session(session_id, paid=False)
    elif op == "async_ok" and state == "complete" and paid == "unpaid":
        event = fake.async_succeed(session_id)
    elif op == "async_fail" and state == "complete" and paid == "unpaid":
        event = fake.async_fail(session_id)
    elif op == "stripe_expires" and state == "open":
        event = fake.expire_session(session_id)
    elif op == "we_expire" and state == "open":
        expire_checkout_for_lesson(lesson_id)  # the console's cancel path: our own write
    elif op in ("refund_part", "refund_all", "dispute") and state == "complete" and paid == "paid":
        intent = stripe_session["payment_intent"]
        charge = next(c for c in fake.charges.values() if c["payment_intent"] == intent)
        left = charge["amount"] - charge["amount_refunded"]
        if op == "dispute":
            event = fake.event(
                "charge.dispute.created",
                {
                    "id": f"dp_{pick}",
                    "object": "dispute",
                    "payment_intent": intent,
                    "status": "needs_response",
                    "reason": "fraudulent",
                },
            )
        elif left > 0:
            event = fake.refund(session_id, None if op == "refund_all" else max(1, left // 3))
    elif op == "repeat" and world["events"]:
        event = world["events"][pick % len(world["events"])]
    elif op == "time":
        clock.set_now(clock.now() + timedelta(minutes=pick * 3))
    if event is not None:
        deliver(event)
        world["events"].append(event)


@hypothesis_settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)
@given(ops=OPS)
def test_the_rollup_equals_a_recomputation_after_any_sequence_of_payment_events(
    world, fake_stripe, signed_delivery, ops
):
    for op, pick in ops:
        _step(world, fake_stripe, signed_delivery, op, pick)
        assert_rollup_matches()


def test_the_console_totals_read_from_the_rollup_agree_with_the_payments(world, fake_stripe, signed_delivery):
    for i, op in enumerate(["link", "link", "link", "pay", "time", "link", "pay_later", "stripe_expires"]):
        _step(world, fake_stripe, signed_delivery, op, i * 7 + 1)
    assert_rollup_matches()
    tz = AMS
    everything = PaymentFilter()
    expected = recomputed()
    with read_session() as session:
        counts = payment_status_counts(session, everything, tz)
        totals = payment_totals(session, everything, tz, "day")
    by_status: dict[str, dict[str, int]] = {}
    for (_, status, _), (count, amount) in expected.items():
        entry = by_status.setdefault(status, {"count": 0, "amount": 0})
        entry["count"] += count
        entry["amount"] += amount
    assert {status: {"count": c.count, "amount": c.amount} for status, c in counts.items()} == by_status
    assert {(t.period, t.status, t.currency): (t.count, t.amount) for t in totals} == expected


def test_a_rebuild_gives_the_same_totals(world, fake_stripe, signed_delivery):
    for i, op in enumerate(
        ["link", "link", "pay", "time", "link", "pay_later", "refund_part", "stripe_expires"]
    ):
        _step(world, fake_stripe, signed_delivery, op, i * 5 + 2)
    before = recomputed()
    with get_engine().begin() as connection:
        rollup.rebuild(connection)
    assert_rollup_matches()
    assert recomputed() == before


def test_the_rollups_are_kept_in_the_business_zone_only(settings):
    """Readers use a rollup only for the zone its days are counted in (TIMEZONE); any other zone,
    or a fixed offset without a zone name, counts the payments themselves."""
    assert rollup.kept_in(ZoneInfo(settings.timezone))
    assert not rollup.kept_in(ZoneInfo("America/New_York"))
    assert not rollup.kept_in(datetime.now().astimezone().tzinfo)  # a bare offset has no key
