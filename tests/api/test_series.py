"""Weekly series (issue 15, the last part): POST /api/v1/series, over HTTP against the Stripe and
Google fakes. A series is 2-12 weeks on the same weekday and local time; a dry run tells per
week whether it is free (or taken, with alternatives); the chosen weeks are claimed in one
transaction (all or nothing) and paid with one Checkout Session whose quantity is the number of
lessons. Paid → every lesson confirmed with its calendar event; expired → every hold released;
each lesson is cancelled (or moved) on its own, an on-time cancel refunding its share."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from sqlmodel import func, select

from core import clock, jobs, worker
from core.calendars import get_backend, set_backend
from core.db import read_session, write_session
from core.models import (
    BusyBlock,
    Closure,
    Contact,
    Conversation,
    Job,
    Lesson,
    LessonSeries,
    OutboxMessage,
    Payment,
    PlanningProfile,
    SlotOffer,
    TutorHours,
)
from tests.conftest import AMS
from tests.support.api import ANNA, messages

pytest_plugins = ["tests.support.api", "tests.fakes.google_fixtures"]

FIRST = datetime(2026, 12, 1, 16, 0, tzinfo=AMS)  # Tuesday; "new" offers it on Monday 30 Nov
WEEK = timedelta(days=7)


def series(weeks: int = 6, start: datetime = FIRST, **extra: Any) -> dict[str, Any]:
    return {
        "conversation_id": "conv-1",
        "contact_id": "contact-1",
        "start": start.isoformat(),
        "end": (start + timedelta(hours=1)).isoformat(),
        "weeks": weeks,
        **extra,
    }


def week(n: int, first: datetime = FIRST) -> datetime:
    """Week n (1 = the first) at the same local wall-clock time."""
    local = first.astimezone(AMS)
    return datetime.combine(local.date() + (n - 1) * WEEK, local.time(), tzinfo=AMS)


def take(start: datetime, tutor_id: int, conversation: str = "conv-other") -> int:
    """Another customer's confirmed lesson at `start` (the slot is taken)."""
    with write_session() as session:
        if session.get(Contact, "contact-other") is None:
            session.add(Contact(id="contact-other", name="Ander"))
            session.flush()
            session.add(Conversation(id=conversation, contact_id="contact-other"))
            session.flush()
        lesson = Lesson(
            conversation_id=conversation,
            contact_id="contact-other",
            tutor_id=tutor_id,
            profile_name="new",
            start=start,
            end=start + timedelta(hours=1),
            status="confirmed",
        )
        session.add(lesson)
        session.flush()
        return lesson.id


def counts() -> dict[str, int]:
    with read_session() as session:
        return {
            model.__name__: session.exec(select(func.count()).select_from(model)).one()
            for model in (Lesson, LessonSeries, Payment, Conversation, SlotOffer)
        }


def rows() -> list[Lesson]:
    with read_session() as session:
        return list(
            session.exec(select(Lesson).where(Lesson.conversation_id == "conv-1").order_by(Lesson.start))
        )


@pytest.fixture
def held(client, tutor, monday_morning, outside) -> dict[str, Any]:
    """Weeks 1, 2, 4, 5 and 6 of six booked (week 3 is someone else's), waiting for payment."""
    take(week(3), tutor)
    response = client.post("/api/v1/series", json=series(skip=[3]))
    assert response.status_code == 201, response.text
    return response.json()


@pytest.fixture
def paid(held, fake_stripe, signed_delivery) -> dict[str, Any]:
    signed_delivery(fake_stripe.complete_session(held["checkout_session_id"]))
    worker.drain()
    return held


# --- dry run ------------------------------------------------------------------------------------


def test_a_dry_run_names_the_taken_week_with_alternatives_and_stores_nothing(client, tutor, monday_morning):
    take(week(3), tutor)
    before = counts()

    response = client.post("/api/v1/series", json=series(dry_run=True))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["dry_run"] is True and body["series_id"] is None and body["payment_url"] is None
    assert [w["week"] for w in body["weeks"]] == [1, 2, 3, 4, 5, 6]
    assert [w["status"] for w in body["weeks"]] == ["free", "free", "taken", "free", "free", "free"]
    assert [w["start"] for w in body["weeks"]] == [week(n).isoformat() for n in range(1, 7)]
    third = body["weeks"][2]
    assert third["alternatives"], "a taken week comes with other times"
    assert week(3).isoformat() not in [a["start"] for a in third["alternatives"]]
    for alternative in third["alternatives"]:  # around that week, not next to today
        assert abs(datetime.fromisoformat(alternative["start"]) - week(3)) <= timedelta(days=7)
    assert all(w["alternatives"] == [] for w in body["weeks"] if w["status"] == "free")
    assert {w["tutor"] for w in body["weeks"] if w["status"] == "free"} == {"Anna"}
    assert counts() == before


def test_closures_tutor_time_off_and_working_hours_block_weeks_like_bookings(client, tutor, monday_morning):
    with write_session() as session:
        session.add(
            Closure(
                start_date=date(2026, 12, 22), end_date=date(2026, 12, 22), name="Studiedag", source="admin"
            )
        )
        session.add(BusyBlock(tutor_id=tutor, start=week(2), end=week(2) + timedelta(minutes=30)))  # time off
    body = client.post("/api/v1/series", json=series(weeks=5, dry_run=True)).json()
    assert [w["status"] for w in body["weeks"]] == ["free", "taken", "free", "taken", "free"]
    assert "Studiedag" in body["weeks"][3]["reason"]

    # Working hours are weekly, so they decide the first week already: not offered → 422, as a
    # booking of that start would be.
    with write_session() as session:
        session.add(TutorHours(tutor_id=tutor, weekday=1, start_minute=9 * 60, end_minute=15 * 60))
    response = client.post("/api/v1/series", json=series(weeks=2, dry_run=True))
    assert response.status_code == 422
    assert "working hours" in response.json()["detail"]


def test_a_series_crossing_the_end_of_summer_time_keeps_its_local_time(client, tutor, frozen_now):
    frozen_now(2026, 10, 19, 8, 0)
    first = datetime(2026, 10, 20, 16, 0, tzinfo=AMS)  # +02:00; clocks go back on Sunday 25 Oct

    body = client.post("/api/v1/series", json=series(weeks=3, start=first, dry_run=True)).json()

    assert [w["start"] for w in body["weeks"]] == [
        "2026-10-20T16:00:00+02:00",
        "2026-10-27T16:00:00+01:00",
        "2026-11-03T16:00:00+01:00",
    ]
    assert [w["status"] for w in body["weeks"]] == ["free"] * 3


def test_a_series_crossing_the_start_of_summer_time_keeps_its_local_time(
    client, tutor, frozen_now, fake_stripe, stripe_settings
):
    frozen_now(2027, 3, 22, 8, 0)
    first = datetime(2027, 3, 23, 16, 0, tzinfo=AMS)  # +01:00; clocks go forward on Sunday 28 Mar

    response = client.post("/api/v1/series", json=series(weeks=3, start=first))

    assert response.status_code == 201, response.text
    assert [lesson["start"] for lesson in response.json()["lessons"]] == [
        "2027-03-23T16:00:00+01:00",
        "2027-03-30T16:00:00+02:00",
        "2027-04-06T16:00:00+02:00",
    ]
    assert [(r.end - r.start) for r in rows()] == [timedelta(hours=1)] * 3


# --- bad input ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"weeks": 1}, "weeks"),
        ({"weeks": 13}, "weeks"),
        ({"end": "2026-12-01T15:00:00+01:00"}, "end"),
        ({"profile": "nope"}, "Unknown planning profile"),
        ({"start": "2026-12-01T07:00:00+01:00", "end": "2026-12-01T08:00:00+01:00"}, "not a time"),
        ({"start": "2026-12-05T16:00:00+01:00", "end": "2026-12-05T17:00:00+01:00"}, "not a time"),
        ({"end": "2026-12-01T18:00:00+01:00"}, "60 minutes"),
        ({"skip": [1, 2, 3, 4, 5]}, "at least 2"),
        ({"skip": [7]}, "skip"),
    ],
)
@pytest.mark.parametrize("dry_run", [True, False])
def test_bad_input_is_a_422_with_a_sentence_and_writes_nothing(
    client, tutor, monday_morning, stripe_settings, change, words, dry_run
):
    response = client.post("/api/v1/series", json={**series(dry_run=dry_run), **change})

    assert response.status_code == 422, response.text
    assert words in response.json()["detail"]
    assert counts() == dict.fromkeys(counts(), 0)


# --- booking ------------------------------------------------------------------------------------


def test_the_chosen_weeks_are_held_with_one_checkout_session_for_all_lessons(held, tutor, fake_stripe):
    [request] = fake_stripe.requests_to("POST", "/v1/checkout/sessions")
    assert request.params["line_items"] == [{"price": "price_std_60", "quantity": "5"}]
    session = fake_stripe.sessions[held["checkout_session_id"]]
    assert session["amount_total"] == 5 * 4500
    assert session["metadata"]["kind"] == "series" and session["metadata"]["lessons"] == "5"
    assert held["payment_url"].startswith("https://checkout.stripe.com/")
    assert (held["amount"], held["currency"]) == (22500, "eur")

    assert [w["status"] for w in held["weeks"]] == [
        "booked",
        "booked",
        "skipped",
        "booked",
        "booked",
        "booked",
    ]
    assert [lesson["start"] for lesson in held["lessons"]] == [week(n).isoformat() for n in (1, 2, 4, 5, 6)]
    assert {lesson["status"] for lesson in held["lessons"]} == {"held"}
    lessons = rows()
    assert len(lessons) == 5 and {r.series_id for r in lessons} == {held["series_id"]}
    with read_session() as s:
        payment = s.exec(select(Payment)).one()
    assert (payment.kind, payment.quantity, payment.amount, payment.series_id, payment.lesson_id) == (
        "series",
        5,
        22500,
        held["series_id"],
        None,
    )
    assert {r.hold_expires_at for r in lessons} == {payment.expires_at}


def test_asking_again_answers_200_with_the_same_series_and_link(client, held, fake_stripe):
    again = client.post("/api/v1/series", json=series(skip=[3]))

    assert again.status_code == 200
    assert again.json()["series_id"] == held["series_id"]
    assert again.json()["checkout_session_id"] == held["checkout_session_id"]
    assert len(fake_stripe.requests_to("POST", "/v1/checkout/sessions")) == 1
    assert len(rows()) == 5


def test_asking_for_a_taken_week_is_a_409_naming_it_and_nothing_is_held(
    client, tutor, monday_morning, outside
):
    take(week(3), tutor)
    before = counts()

    response = client.post("/api/v1/series", json=series())

    assert response.status_code == 409
    assert "week 3" in response.json()["detail"]
    assert response.json()["alternatives"]
    assert counts() == before


def test_a_week_taken_between_the_dry_run_and_the_claim_books_nothing(client, tutor, monday_morning, outside):
    assert client.post("/api/v1/series", json=series(dry_run=True)).json()["weeks"][3]["status"] == "free"
    before = counts()
    backend = get_backend()

    class Racing:
        """The calendar answers; meanwhile another customer claims week 4 in the database."""

        def __getattr__(self, name: str) -> Any:
            return getattr(backend, name)

        def busy(self, *args: Any, **kwargs: Any) -> Any:
            answer = backend.busy(*args, **kwargs)
            if not rows_of_other():
                take(week(4), tutor)
            return answer

    set_backend(Racing())  # type: ignore[arg-type]
    response = client.post("/api/v1/series", json=series())

    assert response.status_code == 409, response.text
    assert "week 4" in response.json()["detail"]
    # only the other customer's lesson (and conversation) were added
    assert counts() == {**before, "Lesson": before["Lesson"] + 1, "Conversation": before["Conversation"] + 1}
    assert rows() == []


def rows_of_other() -> list[Lesson]:
    with read_session() as session:
        return list(session.exec(select(Lesson).where(Lesson.conversation_id == "conv-other")))


def test_paid_confirms_every_lesson_and_the_jobs_make_their_calendar_events(
    paid, client, outside, signed_delivery, fake_stripe
):
    lessons = client.get("/api/v1/conversations/conv-1/lessons").json()["lessons"]
    assert [(lesson["status"], lesson["payment_status"]) for lesson in lessons] == [("confirmed", "paid")] * 5
    starts = sorted(datetime.fromisoformat(e["start"]["dateTime"]) for e in outside.events(ANNA))
    assert starts == [week(n) for n in (1, 2, 4, 5, 6)]
    assert {r.calendar_sync for r in rows()} == {"synced"}
    assert messages() == ["series_payment_success", "series_confirmed"]  # one message per event

    signed_delivery(next(e for e in fake_stripe.events if e["type"] == "checkout.session.completed"))
    worker.drain()
    assert len(outside.events(ANNA)) == 5  # a repeated event changes nothing


def test_a_delayed_payment_keeps_every_week_claimed_until_the_money_is_in(held, fake_stripe, signed_delivery):
    signed_delivery(fake_stripe.complete_session(held["checkout_session_id"], paid=False))
    assert {r.status for r in rows()} == {"awaiting_payment"}
    signed_delivery(fake_stripe.async_succeed(held["checkout_session_id"]))
    assert {r.status for r in rows()} == {"confirmed"}


def test_an_expired_checkout_releases_every_week(held, client, fake_stripe, signed_delivery, outside):
    signed_delivery(fake_stripe.expire_session(held["checkout_session_id"]))
    worker.drain()

    assert {r.status for r in rows()} == {"expired"}
    assert outside.events(ANNA) == []
    again = client.post(
        "/api/v1/series", json={**series(skip=[3]), "conversation_id": "conv-2", "contact_id": "contact-2"}
    )
    assert again.status_code == 201, again.text  # the weeks are free again


def test_an_expired_checkout_releases_the_weeks_after_one_cancelled_first(
    held, client, fake_stripe, signed_delivery
):
    """The customer cancelled week 1 while paying was still open; the checkout then expires:
    every other week is released too (the first lesson no longer waiting stops nothing)."""
    first = rows()[0]
    cancelled = client.post(f"/api/v1/lessons/{first.id}/cancel", json={"conversation_id": "conv-1"})
    assert cancelled.status_code == 200, cancelled.text

    signed_delivery(fake_stripe.expire_session(held["checkout_session_id"]))

    assert [r.status for r in rows()] == ["cancelled", "expired", "expired", "expired", "expired"]


def test_holds_that_run_out_release_every_week_and_close_the_checkout(held, fake_stripe):
    clock.set_now(clock.now() + timedelta(hours=2))
    worker.drain()

    assert {r.status for r in rows()} == {"expired"}
    assert fake_stripe.sessions[held["checkout_session_id"]]["status"] == "expired"


# --- each lesson on its own -------------------------------------------------------------------


def test_an_on_time_cancel_of_one_lesson_refunds_its_share_and_the_others_stay(
    paid, client, fake_stripe, signed_delivery, outside
):
    first, *others = client.get("/api/v1/conversations/conv-1/lessons").json()["lessons"]
    assert first["cancel_now"]["consequence"] == "refund" and first["cancel_now"]["amount"] == 4500

    dry = client.post(
        f"/api/v1/lessons/{first['id']}/cancel", json={"conversation_id": "conv-1", "dry_run": True}
    )
    assert dry.json()["consequence"]["amount"] == 4500
    response = client.post(f"/api/v1/lessons/{first['id']}/cancel", json={"conversation_id": "conv-1"})
    assert response.status_code == 200, response.text
    assert response.json()["consequence"] == {
        "kind": "refund",
        "amount": 4500,
        "currency": "eur",
        "minutes": None,
    }
    worker.drain()

    assert [r["amount"] for r in fake_stripe.refunds.values()] == [4500]
    signed_delivery(next(e for e in reversed(fake_stripe.events) if e["type"] == "charge.refunded"))
    with read_session() as s:
        payment = s.exec(select(Payment)).one()
    assert (payment.status, payment.refunded_amount) == ("partially_refunded", 4500)
    statuses = {r.id: r.status for r in rows()}
    assert statuses[first["id"]] == "cancelled"
    assert [statuses[o["id"]] for o in others] == ["confirmed"] * 4
    assert len(outside.events(ANNA)) == 4

    second = others[0]
    client.post(f"/api/v1/lessons/{second['id']}/cancel", json={"conversation_id": "conv-1"})
    worker.drain()
    assert sorted(r["amount"] for r in fake_stripe.refunds.values()) == [4500, 4500]


def move(client, lesson_id: int, new_start: datetime) -> None:  # noqa: ANN001
    """The customer moves one lesson of the series to `new_start` (an hour)."""
    response = client.post(
        f"/api/v1/lessons/{lesson_id}/reschedule",
        json={
            "conversation_id": "conv-1",
            "start": new_start.isoformat(),
            "end": (new_start + timedelta(hours=1)).isoformat(),
        },
    )
    assert response.status_code == 200, response.text


def test_a_series_lesson_moves_on_its_own(paid, client, outside):
    lessons = client.get("/api/v1/conversations/conv-1/lessons").json()["lessons"]
    target = lessons[0]
    new_start = datetime(2026, 12, 2, 16, 0, tzinfo=AMS)
    move(client, target["id"], new_start)
    moved = {r.id: r for r in rows()}
    assert moved[target["id"]].start == new_start and moved[target["id"]].series_id == paid["series_id"]
    assert [moved[o["id"]].start for o in lessons[1:]] == [week(n) for n in (2, 4, 5, 6)]


def test_asking_again_after_a_move_shows_the_moved_lesson_in_its_week(paid, client, outside):
    """Week 1's lesson moved to Wednesday: a repeat of the series request still answers with
    week 1 booked (at its new time), not "skipped" — the bot would tell the customer that week
    has no lesson."""
    target = client.get("/api/v1/conversations/conv-1/lessons").json()["lessons"][0]
    new_start = datetime(2026, 12, 2, 16, 0, tzinfo=AMS)
    move(client, target["id"], new_start)

    again = client.post("/api/v1/series", json=series(skip=[3]))

    assert again.status_code == 200, again.text
    weeks = again.json()["weeks"]
    assert [w["status"] for w in weeks] == ["booked", "booked", "skipped", "booked", "booked", "booked"]
    assert weeks[0]["lesson_id"] == target["id"]
    assert datetime.fromisoformat(weeks[0]["start"]) == new_start


def test_another_conversation_can_neither_see_nor_cancel_the_lessons(paid, client):
    assert client.get("/api/v1/conversations/conv-2/lessons").json()["lessons"] == []
    lesson = rows()[0]
    response = client.post(f"/api/v1/lessons/{lesson.id}/cancel", json={"conversation_id": "conv-2"})
    assert response.status_code == 404
    assert {r.status for r in rows()} == {"confirmed"}


def test_a_full_refund_of_the_series_payment_cancels_the_lessons_still_to_come(
    paid, fake_stripe, signed_delivery, outside
):
    signed_delivery(fake_stripe.refund(paid["checkout_session_id"]))
    worker.drain()

    assert {r.status for r in rows()} == {"cancelled"}
    assert outside.events(ANNA) == []
    assert messages().count("refund_issued") == 1


def test_a_full_refund_takes_back_the_credits_its_cancelled_lessons_gave(
    paid, client, fake_stripe, signed_delivery
):
    """Under `on_time_cancel = credit` two lessons of a paid series are cancelled on time and
    each becomes a credit. When the series payment is then refunded in full, the money of those
    two lessons comes back too: both credits are taken back (the customer keeps neither)."""
    with write_session() as session:
        session.get_one(PlanningProfile, "new").on_time_cancel = "credit"
    first, second, *_ = client.get("/api/v1/conversations/conv-1/lessons").json()["lessons"]
    for lesson in (first, second):
        response = client.post(f"/api/v1/lessons/{lesson['id']}/cancel", json={"conversation_id": "conv-1"})
        assert response.status_code == 200 and response.json()["consequence"]["kind"] == "credit"
    assert credit_balance() == 2

    signed_delivery(fake_stripe.refund(paid["checkout_session_id"]))
    worker.drain()

    assert {r.status for r in rows()} == {"cancelled"}
    assert credit_balance() == 0, "the customer kept credits for money that came back"


def credit_balance() -> int:
    from core.credits import balance

    with read_session() as session:
        return balance(session, "contact-1", 60)


def test_without_payment_the_series_is_confirmed_at_once(client, tutor, monday_morning, no_payment):
    response = client.post("/api/v1/series", json=series(weeks=3))

    assert response.status_code == 201, response.text
    assert response.json()["payment_url"] is None
    assert {lesson["status"] for lesson in response.json()["lessons"]} == {"confirmed"}
    with read_session() as s:
        assert s.exec(select(func.count()).select_from(Payment)).one() == 0
        assert s.get(PlanningProfile, "new").requires_payment is False


def test_a_series_payment_whose_row_was_lost_is_rebuilt_from_its_metadata(held, fake_stripe, signed_delivery):
    with write_session() as session:  # the answer to the create call never got stored
        session.delete(session.exec(select(Payment)).one())

    signed_delivery(fake_stripe.complete_session(held["checkout_session_id"]))

    with read_session() as session:
        payment = session.exec(select(Payment)).one()
    assert (payment.kind, payment.quantity, payment.series_id, payment.status) == (
        "series",
        5,
        held["series_id"],
        "paid",
    )
    assert {r.status for r in rows()} == {"confirmed"}


@pytest.mark.parametrize(
    "metadata",
    [
        pytest.param({"series_id": "999"}, id="a series we do not know"),
        pytest.param({"kind": "lesson"}, id="not said to be a series"),
        pytest.param({"lessons": "vijf"}, id="no number of lessons"),
    ],
)
def test_a_lost_series_payment_whose_metadata_does_not_hold_up_is_rebuilt_as_one_payment(
    held, fake_stripe, signed_delivery, metadata
):
    """Only metadata naming a series we know, as a series, with its number of lessons makes a
    series payment; otherwise the payment is recorded alone (finance sees it), never with a
    series id that points nowhere."""
    with write_session() as session:
        session.delete(session.exec(select(Payment)).one())
    event = fake_stripe.complete_session(held["checkout_session_id"])
    event["data"]["object"]["metadata"].update(metadata)

    signed_delivery(event)

    with read_session() as session:
        payment = session.exec(select(Payment)).one()
    assert (payment.kind, payment.quantity, payment.series_id, payment.status) == ("lesson", 1, None, "paid")


# --- what the customer is told: one message per event for the whole series ------------------------

DATES = "di 1 dec, di 8 dec, di 22 dec, di 29 dec en di 5 jan, steeds om 16:00"


def outbox() -> list[tuple[str, str]]:
    with read_session() as session:
        found = session.exec(
            select(OutboxMessage).where(OutboxMessage.conversation_id == "conv-1").order_by(OutboxMessage.id)
        ).all()
    return [(m.key or "", m.text) for m in found]


def test_a_paid_series_is_confirmed_in_one_message_listing_every_date(paid, fake_stripe, signed_delivery):
    assert outbox() == [
        (
            "series_payment_success",
            "Bedankt voor je betaling, we hebben hem ontvangen! Je krijgt zo de bevestiging van je lessen.",
        ),
        ("series_confirmed", f"Je reeks van 5 lessen is ingepland: {DATES}. Tot dan!"),
    ]
    before = outbox()

    signed_delivery(next(e for e in fake_stripe.events if e["type"] == "checkout.session.completed"))
    worker.drain()
    with write_session() as session:  # every calendar job runs once more, as a second worker would
        for lesson in rows():
            job = session.exec(select(Job).where(Job.key == f"calendar:lesson-{lesson.id}")).one()
            assert job.payload["verify_slot"] is True
            jobs.enqueue(session, job.kind, job.key, job.payload, subject=job.subject, rearm=True)
    worker.drain()

    assert outbox() == before


@pytest.mark.parametrize("lost", [4, 6])  # week 6's job runs last: its loss completes the series
def test_a_week_taken_in_the_calendar_before_its_job_ran_is_left_out_of_the_summary(
    held, fake_stripe, signed_delivery, outside, lost
):
    outside.add_event(ANNA, week(lost), week(lost) + timedelta(hours=1), summary="Tandarts")

    signed_delivery(fake_stripe.complete_session(held["checkout_session_id"]))
    worker.drain()

    status = {r.start: r.status for r in rows()}
    assert status[week(lost)] == "needs_reschedule"
    assert [s for start, s in status.items() if start != week(lost)] == ["confirmed"] * 4
    assert [key for key, _ in outbox()] == ["series_payment_success", "slot_lost", "series_confirmed"]
    lost_date, kept = {
        4: ("di 22 dec", "di 1 dec, di 8 dec, di 29 dec en di 5 jan"),
        6: ("di 5 jan", "di 1 dec, di 8 dec, di 22 dec en di 29 dec"),
    }[lost]
    assert f"{lost_date} om 16:00" in outbox()[1][1]
    assert outbox()[2][1] == f"Je reeks van 4 lessen is ingepland: {kept}, steeds om 16:00. Tot dan!"


def test_the_summary_waits_for_a_lesson_whose_calendar_was_down(held, fake_stripe, signed_delivery, outside):
    outside.fail_next(503, count=2, match="events.insert")  # the first lesson's event: retried later

    signed_delivery(fake_stripe.complete_session(held["checkout_session_id"]))
    worker.drain()
    assert [r.calendar_sync for r in rows()] == ["pending"] + ["synced"] * 4
    assert messages() == ["series_payment_success"]  # not yet: one lesson is still to be made

    clock.set_now(clock.now() + timedelta(hours=1))
    worker.drain()
    assert {r.calendar_sync for r in rows()} == {"synced"}
    assert outbox()[1] == ("series_confirmed", f"Je reeks van 5 lessen is ingepland: {DATES}. Tot dan!")


def test_a_delayed_series_payment_is_one_processing_message(held, fake_stripe, signed_delivery):
    completed = fake_stripe.complete_session(held["checkout_session_id"], paid=False)
    signed_delivery(completed)
    signed_delivery(completed)
    worker.drain()

    assert outbox() == [
        (
            "series_payment_processing",
            f"Bedankt! Je betaling voor je reeks van 5 lessen ({DATES}) wordt nog verwerkt. We houden "
            "de tijdstippen voor je vast en laten het je weten zodra het geld binnen is.",
        )
    ]

    signed_delivery(fake_stripe.async_succeed(held["checkout_session_id"]))
    worker.drain()
    assert messages() == ["series_payment_processing", "series_payment_success", "series_confirmed"]


def test_an_expired_series_checkout_is_one_message(held, fake_stripe, signed_delivery):
    expired = fake_stripe.expire_session(held["checkout_session_id"])
    signed_delivery(expired)
    signed_delivery(expired)
    worker.drain()

    assert outbox() == [
        (
            "series_hold_expired",
            f"De betaaltermijn voor je reeks van 5 lessen ({DATES}) is verlopen, dus de tijdstippen "
            "zijn weer vrijgegeven. Laat het weten als je nieuwe momenten wilt kiezen.",
        )
    ]


def test_holds_that_run_out_are_one_message_too(held, fake_stripe):
    clock.set_now(clock.now() + timedelta(hours=2))
    worker.drain()
    worker.drain()

    assert messages() == ["series_hold_expired"]


def test_a_failed_series_payment_is_one_message(held, fake_stripe, signed_delivery):
    signed_delivery(fake_stripe.complete_session(held["checkout_session_id"], paid=False))
    signed_delivery(fake_stripe.async_fail(held["checkout_session_id"]))
    worker.drain()

    assert {r.status for r in rows()} == {"cancelled"}
    assert messages() == ["series_payment_processing", "series_payment_failed"]
    assert f"({DATES}) is niet gelukt" in outbox()[1][1]


def test_a_series_without_payment_is_confirmed_in_one_message(client, tutor, monday_morning, no_payment):
    assert client.post("/api/v1/series", json=series(weeks=3)).status_code == 201
    worker.drain()

    assert outbox() == [
        (
            "series_confirmed",
            "Je reeks van 3 lessen is ingepland: di 1 dec, di 8 dec en di 15 dec, steeds om 16:00. Tot dan!",
        )
    ]
