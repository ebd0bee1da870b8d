"""Google's push notifications for real (issue 17): a receiver process opens a watch channel on
the fake Google, the fake POSTs to the receiver's /webhooks/google when the tutor changes an
event, and the receiver's worker syncs the mirror — with polling far too slow to be the reason."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
from sqlmodel import Session, select

from core.db import get_engine
from core.models import CalendarMirror, MirroredEvent
from tests.conftest import test_database_url as database_url
from tests.fakes.google_calendar import FakeGoogleCalendar
from tests.procs import ReceiverProcess, free_port, prepare_database, receiver_env

ANNA = "tutor@lesplanner.test"


def wait_for(condition, timeout: float = 20.0):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)


def test_a_change_in_google_reaches_the_mirror_through_a_push_notification(tmp_path):
    url = database_url(tmp_path)
    prepare_database(url, tutor_calendar=ANNA)
    engine = get_engine(url)

    def mirrored() -> set[str]:
        with Session(engine) as s:
            return {e.event_id for e in s.exec(select(MirroredEvent)).all()}

    def mirror_row() -> CalendarMirror | None:
        with Session(engine) as s:
            return s.get(CalendarMirror, ANNA)

    with FakeGoogleCalendar() as google:
        port = free_port()
        env = receiver_env(
            url,
            calendar_backend="google",
            gcal_service_account_json=google.service_account_json(),
            gcal_api_endpoint=google.api_endpoint,
            gcal_calendar_id=ANNA,
            gcal_public_webhook_url=f"http://127.0.0.1:{port}",
            gcal_sync_seconds=600,  # polling would take ten minutes (and 100 with a channel open)
            lesplanner_worker=1,
        )
        with ReceiverProcess(env, port=port, workdir=tmp_path / "r") as receiver:
            # The worker's first round syncs the calendar and opens the channel; Google (the fake)
            # then says "sync" to the receiver, which answers 200.
            row = wait_for(lambda: (r := mirror_row()) is not None and r.channel_id and r)
            assert row, receiver.output()[-3000:]
            notes = google.wait_for_notifications(1)
            assert [(n.state, n.status) for n in notes] == [("sync", 200)], receiver.output()[-3000:]

            start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=2)
            event_id = google.add_event(ANNA, start, start + timedelta(hours=1))
            notes = google.wait_for_notifications(2)
            assert [(n.state, n.status) for n in notes][1] == ("exists", 200)
            assert wait_for(lambda: event_id in mirrored(), timeout=15), receiver.output()[-3000:]

            # Somebody who is not Google: refused, nothing planned.
            forged = httpx.post(
                f"{receiver.url}/webhooks/google",
                headers={
                    "X-Goog-Channel-ID": row.channel_id,
                    "X-Goog-Channel-Token": "guessed",
                    "X-Goog-Resource-State": "exists",
                },
            )
            assert forged.status_code == 404
            assert mirror_row().notified_at is not None  # only the real notification set it
