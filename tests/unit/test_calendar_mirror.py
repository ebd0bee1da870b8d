"""The local mirror of the tutors' Google calendars (issue 17): slots come from it while it is
fresh, changes in Google reach it within one sync, a 410 resyncs, and a stale mirror never
answers: then Google is asked live, and if Google is down that is a 503, never stale slots.
Bookings always ask Google for the exact interval, whatever the mirror says."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from sqlmodel import select

from core import booking, clock, worker
from core.calendars import mirror
from core.config import get_settings, set_settings
from core.db import read_session, write_session
from core.errors import CalendarUnavailable, SlotTaken
from core.models import CalendarMirror, Contact, Job, MirroredEvent, PlanningProfile, Tutor
from tests.conftest import AMS

pytest_plugins = ["tests.fakes.google_fixtures"]

ANNA = "tutor@lesplanner.test"


@pytest.fixture
def world(engine, google_backend, fake_google, frozen_now):
    """Monday 30 Nov 2026 22:00; Anna teaches from her Google calendar; 'existing' confirms
    without payment, at most six suggestions, no cap per day, so the first slots are Tuesday
    09:00, 10:00, ..."""
    frozen_now(2026, 11, 30, 22, 0)
    with write_session() as s:
        s.add(Tutor(name="Anna", email="anna@lesplanner.test", calendar_id=ANNA))
        profile = s.get(PlanningProfile, "existing")
        profile.requires_payment = False
        profile.max_per_day = None
        s.add(Contact(id="c1", name="Sanne", attributes={"has_paid_lesson": True}))
    return fake_google


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, day, hour, minute, tzinfo=AMS)


def starts() -> list[datetime]:
    return [s.start for s in booking.suggest_slots("conv1", contact_id="c1").slots]


def freebusy_calls(fake) -> int:
    return len(fake.calls("freebusy.query"))


def test_slots_come_from_a_fresh_mirror_without_asking_google(world):
    world.add_event(ANNA, local(1, 9), local(1, 10))
    mirror.sync_calendar(ANNA)
    before = freebusy_calls(world)
    for _ in range(5):
        assert local(1, 9) not in starts() and local(1, 10) in starts()
    assert freebusy_calls(world) == before  # five answers, no Google call


def test_changes_in_google_reach_the_slots_within_one_sync(world):
    moved = world.add_event(ANNA, local(1, 9), local(1, 10))
    freed = world.add_event(ANNA, local(1, 11), local(1, 12))
    made_free = world.add_event(ANNA, local(1, 13), local(1, 14))
    mirror.sync_calendar(ANNA)
    assert {local(1, 9), local(1, 11), local(1, 13)}.isdisjoint(starts())

    world.move_event(ANNA, moved, local(1, 10), local(1, 11))  # dragged an hour later
    world.cancel_event(ANNA, freed)  # deleted
    world.set_transparency(ANNA, made_free, True)  # marked "Free"
    added = world.add_event(ANNA, local(1, 15), local(1, 16))  # a new appointment
    result = mirror.sync_calendar(ANNA)
    assert not result.full and result.changed == 4  # incremental: only the four changes came back

    before = freebusy_calls(world)
    offered = starts()
    assert freebusy_calls(world) == before  # the mirror answered
    assert local(1, 9) in offered and local(1, 10) not in offered
    assert local(1, 11) in offered and local(1, 13) in offered
    assert local(1, 15) not in offered
    with read_session() as s:
        kept = {e.event_id for e in s.exec(select(MirroredEvent)).all()}
    assert kept == {moved, added}


def test_an_all_day_event_blocks_the_whole_local_day(world):
    world.add_event(ANNA, datetime(2026, 12, 1).date(), datetime(2026, 12, 2).date(), all_day=True)
    mirror.sync_calendar(ANNA)
    before = freebusy_calls(world)
    assert all(s.astimezone(AMS).date() != datetime(2026, 12, 1).date() for s in starts())
    assert freebusy_calls(world) == before


def test_a_410_means_a_full_resync_and_the_mirror_is_right_again(world):
    gone = world.add_event(ANNA, local(1, 9), local(1, 10))
    mirror.sync_calendar(ANNA)
    world.cancel_event(ANNA, gone)
    kept = world.add_event(ANNA, local(1, 12), local(1, 13))
    world.invalidate_sync_tokens(ANNA)

    result = mirror.sync_calendar(ANNA)
    assert result.full
    with read_session() as s:
        assert {e.event_id for e in s.exec(select(MirroredEvent)).all()} == {kept}
    before = freebusy_calls(world)
    assert local(1, 9) in starts() and local(1, 12) not in starts()
    assert freebusy_calls(world) == before


def test_a_stale_mirror_is_not_used_google_is_asked_live(world, frozen_now):
    mirror.sync_calendar(ANNA)
    world.add_event(ANNA, local(1, 9), local(1, 10))  # not synced yet
    frozen_now(clock.now() + timedelta(seconds=61))  # older than GCAL_MIRROR_MAX_AGE_SECONDS
    before = freebusy_calls(world)
    assert local(1, 9) not in starts()
    assert freebusy_calls(world) == before + 1


def test_a_stale_mirror_with_google_down_is_an_error_never_stale_slots(world, frozen_now):
    mirror.sync_calendar(ANNA)
    frozen_now(clock.now() + timedelta(minutes=5))
    world.fail_next(503, count=50)
    with pytest.raises(CalendarUnavailable):
        booking.suggest_slots("conv1", contact_id="c1")


def test_a_calendar_never_synced_is_read_live(world):
    world.add_event(ANNA, local(1, 9), local(1, 10))
    before = freebusy_calls(world)
    assert local(1, 9) not in starts()
    assert freebusy_calls(world) == before + 1


def test_a_booking_asks_google_for_the_exact_interval_even_with_a_fresh_mirror(world):
    mirror.sync_calendar(ANNA)
    offered = booking.suggest_slots("conv1", contact_id="c1").slots
    world.add_event(ANNA, offered[0].start, offered[0].end)  # taken in Google after the sync
    with pytest.raises(SlotTaken):
        booking.book_slot("conv1", offered[0].start, offered[0].end, "Wiskunde")


def test_a_failed_sync_keeps_the_mirror_and_says_why(world, frozen_now):
    world.add_event(ANNA, local(1, 9), local(1, 10))
    mirror.sync_calendar(ANNA)
    world.fail_next(403, reason="quotaExceeded", count=5)
    with pytest.raises(CalendarUnavailable):
        mirror.sync_calendar(ANNA)
    with read_session() as s:
        row = s.get(CalendarMirror, ANNA)
        assert row.last_error and "usage limits" in row.last_error
        assert s.exec(select(MirroredEvent)).one().calendar_id == ANNA


def test_the_worker_polls_each_tutor_calendar_as_a_job(world, frozen_now):
    mirror.schedule_syncs(force=True)
    with read_session() as s:
        keys = [j.key for j in s.exec(select(Job).where(Job.kind == "calendar.sync")).all()]
    assert keys == [f"calendar.sync:{ANNA}"]
    world.add_event(ANNA, local(1, 9), local(1, 10))
    worker.drain()
    with read_session() as s:
        assert s.get(CalendarMirror, ANNA).synced_at == clock.now()
    before = freebusy_calls(world)
    assert local(1, 9) not in starts()
    assert freebusy_calls(world) == before

    # Within GCAL_SYNC_SECONDS nothing new is planned; after it, the same job runs again.
    mirror.schedule_syncs(force=True)
    with read_session() as s:
        assert s.exec(select(Job).where(Job.kind == "calendar.sync")).one().status == "done"
    frozen_now(clock.now() + timedelta(seconds=31))
    mirror.schedule_syncs(force=True)
    with read_session() as s:
        assert s.exec(select(Job).where(Job.kind == "calendar.sync")).one().status == "pending"


def test_the_integrations_page_lists_each_calendars_sync_state_and_age(world, frozen_now):
    with write_session() as s:
        s.add(Tutor(name="Bram", email="bram@lesplanner.test", calendar_id="bram@lesplanner.test"))
    world.add_event(ANNA, local(1, 9), local(1, 10))
    mirror.sync_calendar(ANNA)
    frozen_now(clock.now() + timedelta(seconds=20))
    with read_session() as s:
        states = {r.calendar_id: r for r in mirror.mirror_states(s, clock.now())}
    anna, bram = states[ANNA], states["bram@lesplanner.test"]
    assert (anna.state, anna.age_seconds, anna.events) == ("fresh", 20, 1)
    assert (bram.state, bram.age_seconds) == ("never", None)
    frozen_now(clock.now() + timedelta(seconds=60))
    world.fail_next(503, count=50)
    with pytest.raises(CalendarUnavailable):
        mirror.sync_calendar(ANNA)
    with read_session() as s:
        anna = next(r for r in mirror.mirror_states(s, clock.now()) if r.calendar_id == ANNA)
    assert anna.state == "stale" and anna.age_seconds == 80 and "not answering" in anna.last_error


# --- push notifications (events.watch → POST /webhooks/google) ----------------------------------

PUBLIC = "https://lesplanner.example"


@pytest.fixture
def pushed(world):
    set_settings(get_settings().model_copy(update={"gcal_public_webhook_url": PUBLIC}))
    mirror.sync_calendar(ANNA)
    with read_session() as s:
        row = s.get(CalendarMirror, ANNA)
    return row


def notify(client, row, state: str = "exists", token: str | None = None, channel: str | None = None):
    return client.post(
        "/webhooks/google",
        headers={
            "X-Goog-Channel-ID": channel or row.channel_id,
            "X-Goog-Channel-Token": token if token is not None else row.channel_token,
            "X-Goog-Resource-ID": row.channel_resource_id,
            "X-Goog-Resource-State": state,
            "X-Goog-Message-Number": "2",
        },
    )


@pytest.fixture
def client(pushed):
    from fastapi.testclient import TestClient

    from receiver.main import create_app

    return TestClient(create_app(start_worker=False))


def sync_jobs() -> list[Job]:
    with read_session() as s:
        return list(s.exec(select(Job).where(Job.kind == "calendar.sync")).all())


def test_a_sync_opens_one_push_channel_to_the_receiver_with_a_secret_token(world, pushed):
    channel = world.channels[pushed.channel_id]
    assert channel.address == f"{PUBLIC}/webhooks/google" and channel.calendar_id == ANNA
    assert pushed.channel_token and channel.token == pushed.channel_token and len(pushed.channel_token) >= 32
    mirror.sync_calendar(ANNA)
    assert len(world.channels) == 1  # still open: not opened again


def test_a_channel_about_to_expire_is_replaced_and_the_old_one_stopped(world, pushed, frozen_now):
    frozen_now(pushed.channel_expires_at - timedelta(minutes=30))
    mirror.sync_calendar(ANNA)
    with read_session() as s:
        row = s.get(CalendarMirror, ANNA)
    assert row.channel_id != pushed.channel_id and not world.channels[row.channel_id].stopped
    assert world.channels[pushed.channel_id].stopped


def test_a_notification_plans_a_sync_and_the_mirror_is_not_trusted_until_it_ran(
    world, client, pushed, frozen_now
):
    frozen_now(clock.now() + timedelta(seconds=5))
    world.add_event(ANNA, local(1, 9), local(1, 10))
    answer = notify(client, pushed)
    assert answer.status_code == 200, answer.text
    assert [(j.key, j.status) for j in sync_jobs()] == [(f"calendar.sync:{ANNA}", "pending")]
    before = freebusy_calls(world)
    assert local(1, 9) not in starts()  # Google said something changed: asked live meanwhile
    assert freebusy_calls(world) == before + 1
    worker.drain()
    before = freebusy_calls(world)
    assert local(1, 9) not in starts()
    assert freebusy_calls(world) == before  # synced: the mirror answers again


def test_with_an_open_channel_a_quiet_mirror_stays_trusted_past_its_max_age(world, pushed, frozen_now):
    frozen_now(clock.now() + timedelta(minutes=10))  # no notification: nothing changed in Google
    before = freebusy_calls(world)
    starts()
    assert freebusy_calls(world) == before


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"channel": "forged-channel"}, 404),  # a channel we never opened
        ({"token": "not-the-token"}, 404),  # our channel id with the wrong token
        ({"token": ""}, 404),
    ],
)
def test_a_forged_or_unknown_notification_is_refused_and_changes_nothing(client, pushed, change, status):
    answer = notify(client, pushed, **change)
    assert answer.status_code == status and "detail" in answer.json()
    assert sync_jobs() == []
    with read_session() as s:
        assert s.get(CalendarMirror, ANNA).notified_at is None


def test_the_first_sync_message_of_a_channel_changes_nothing(client, pushed):
    assert notify(client, pushed, state="sync").status_code == 200
    assert sync_jobs() == []


def test_a_notification_without_google_headers_is_a_400(client):
    answer = client.post("/webhooks/google")
    assert answer.status_code == 400 and "X-Goog-Channel-ID" in answer.json()["detail"]
