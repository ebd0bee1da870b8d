"""The Google Calendar backend, end to end: the real google-api-python-client and google-auth
against the local fake in tests/fakes/google_calendar.py (no mocks of our own code)."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlmodel import Session

from core.calendars import CalendarBackend, EventRequest, get_backend
from core.calendars.google import GoogleCalendarBackend
from core.calendars.google_support import FREEBUSY_CHUNK
from core.errors import CalendarUnavailable, ValidationFailed
from core.models import IntegrationStatus
from receiver.errors import status_for
from tests.conftest import AMS

pytest_plugins = ["tests.fakes.google_fixtures"]

TUTOR = "tutor@lesplanner.test"
OTHER = "second.tutor@lesplanner.test"


def ams(*args: int) -> datetime:
    return datetime(*args, tzinfo=AMS)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def lesson(
    lesson_id: int = 42,
    start: datetime | None = None,
    minutes: int = 60,
    email: str | None = None,
    calendar_id: str = TUTOR,
) -> EventRequest:
    start = start or ams(2026, 6, 1, 10)
    return EventRequest(
        lesson_id=lesson_id,
        calendar_id=calendar_id,
        start=start,
        end=start + timedelta(minutes=minutes),
        summary="Les wiskunde",
        description="Booked via Lesplanner",
        timezone="Europe/Amsterdam",
        attendee_email=email,
        attendee_name="Klant" if email else None,
    )


# -- busy -------------------------------------------------------------------------------------


def test_busy_returns_the_calendars_busy_time_as_aware_utc(google_backend, fake_google):
    fake_google.add_event(TUTOR, ams(2026, 6, 1, 10), ams(2026, 6, 1, 11))

    busy = google_backend.busy([TUTOR], ams(2026, 6, 1, 0), ams(2026, 6, 2, 0))

    assert busy == {TUTOR: [(utc(2026, 6, 1, 8), utc(2026, 6, 1, 9))]}
    assert all(s.utcoffset() == timedelta(0) for s, _ in busy[TUTOR])
    assert isinstance(google_backend, CalendarBackend)


def test_free_events_do_not_block_and_overlapping_busy_events_merge(google_backend, fake_google):
    fake_google.add_event(TUTOR, ams(2026, 6, 1, 9), ams(2026, 6, 1, 10, 30))
    fake_google.add_event(TUTOR, ams(2026, 6, 1, 10), ams(2026, 6, 1, 11))
    fake_google.add_event(TUTOR, ams(2026, 6, 1, 14), ams(2026, 6, 1, 15), transparent=True)

    busy = google_backend.busy([TUTOR], ams(2026, 6, 1, 0), ams(2026, 6, 2, 0))

    assert busy[TUTOR] == [(utc(2026, 6, 1, 7), utc(2026, 6, 1, 9))]


def test_an_all_day_busy_event_blocks_the_whole_local_day(google_backend, fake_google):
    fake_google.add_event(TUTOR, date(2026, 3, 30), date(2026, 3, 31), all_day=True)
    fake_google.add_event(TUTOR, date(2026, 4, 2), date(2026, 4, 3), all_day=True, transparent=True)

    busy = google_backend.busy([TUTOR], ams(2026, 3, 28, 0), ams(2026, 4, 4, 0))

    # Midnight to midnight in Amsterdam (summer time since 29 March), the free one ignored.
    assert busy[TUTOR] == [(utc(2026, 3, 29, 22), utc(2026, 3, 30, 22))]


def test_a_long_range_is_asked_in_chunks_google_accepts_and_merged(google_backend, fake_google):
    start = utc(2026, 1, 1)
    boundary = start + FREEBUSY_CHUNK
    fake_google.add_event(TUTOR, utc(2026, 1, 5, 9), utc(2026, 1, 5, 10))
    fake_google.add_event(TUTOR, boundary - timedelta(hours=1), boundary + timedelta(hours=1))
    fake_google.add_event(TUTOR, utc(2026, 7, 1, 9), utc(2026, 7, 1, 10))

    busy = google_backend.busy([TUTOR], start, start + timedelta(days=200))

    assert busy[TUTOR] == [
        (utc(2026, 1, 5, 9), utc(2026, 1, 5, 10)),
        (boundary - timedelta(hours=1), boundary + timedelta(hours=1)),  # one, not two halves
        (utc(2026, 7, 1, 9), utc(2026, 7, 1, 10)),
    ]
    queries = fake_google.calls("freebusy.query")
    assert len(queries) == 4
    assert all(q.status == 200 for q in queries)


def test_google_refuses_one_query_for_a_too_long_range(google_backend, fake_google, monkeypatch):
    # Why busy() chunks: without it the fake, like Google, refuses the range.
    monkeypatch.setattr("core.calendars.google_support.FREEBUSY_CHUNK", timedelta(days=200))

    with pytest.raises(CalendarUnavailable) as caught:
        google_backend.busy([TUTOR], utc(2026, 1, 1), utc(2026, 7, 1))

    assert "The requested time range is too long." in caught.value.message


def test_more_than_fifty_calendars_are_asked_in_batches(google_backend, fake_google):
    calendars = [f"tutor{i:03d}@lesplanner.test" for i in range(120)]
    for i, cid in enumerate(calendars):
        fake_google.add_event(
            cid, utc(2026, 6, 1, 8) + timedelta(minutes=i), utc(2026, 6, 1, 9) + timedelta(minutes=i)
        )

    busy = google_backend.busy(calendars, utc(2026, 6, 1), utc(2026, 6, 2))

    assert set(busy) == set(calendars)
    assert busy[calendars[119]] == [(utc(2026, 6, 1, 9, 59), utc(2026, 6, 1, 10, 59))]
    sizes = [len(q.body["items"]) for q in fake_google.calls("freebusy.query")]
    assert sizes == [50, 50, 20]


def test_a_calendar_google_cannot_read_is_not_free(google_backend, fake_google):
    fake_google.set_missing_calendar("gone@lesplanner.test")

    with pytest.raises(CalendarUnavailable) as caught:
        google_backend.busy([TUTOR, "gone@lesplanner.test"], utc(2026, 6, 1), utc(2026, 6, 2))

    message = caught.value.message
    assert "gone@lesplanner.test" in message and "notFound" in message
    assert "lesplanner@lesplanner-test.iam.gserviceaccount.com" in message  # share with whom
    assert "Make changes to events" in message


def test_an_empty_range_or_no_calendars_costs_no_request(google_backend, fake_google):
    assert google_backend.busy([], utc(2026, 6, 1), utc(2026, 6, 2)) == {}
    assert google_backend.busy([TUTOR], utc(2026, 6, 2), utc(2026, 6, 1)) == {TUTOR: []}
    assert fake_google.calls("freebusy.query") == []


def test_naive_datetimes_are_refused(google_backend):
    with pytest.raises(ValidationFailed):
        google_backend.busy([TUTOR], datetime(2026, 6, 1), datetime(2026, 6, 2))


def test_repeated_calendar_ids_are_asked_once(google_backend, fake_google):
    google_backend.busy([TUTOR, TUTOR, OTHER], utc(2026, 6, 1), utc(2026, 6, 2))

    (query,) = fake_google.calls("freebusy.query")
    assert [item["id"] for item in query.body["items"]] == [TUTOR, OTHER]


def test_primary_without_delegation_is_refused_not_silently_free(google_backend, fake_google):
    with pytest.raises(CalendarUnavailable) as caught:
        google_backend.busy(["primary"], utc(2026, 6, 1), utc(2026, 6, 2))
    assert "GCAL_CALENDAR_ID" in caught.value.message

    with pytest.raises(CalendarUnavailable):
        google_backend.create_event(lesson(calendar_id="primary"))
    assert fake_google.requests == []


def test_with_delegation_primary_is_the_delegated_users_calendar(engine, fake_google, make_google_backend):
    fake_google.add_event(TUTOR, utc(2026, 6, 1, 8), utc(2026, 6, 1, 9))
    backend = make_google_backend(gcal_delegated_user=TUTOR)

    busy = backend.busy(["primary"], utc(2026, 6, 1), utc(2026, 6, 2))

    assert busy == {"primary": [(utc(2026, 6, 1, 8), utc(2026, 6, 1, 9))]}


def test_busy_is_safe_from_many_threads(google_backend, fake_google):
    fake_google.add_event(TUTOR, utc(2026, 6, 1, 8), utc(2026, 6, 1, 9))
    expected = {TUTOR: [(utc(2026, 6, 1, 8), utc(2026, 6, 1, 9))]}
    results, errors = [], []

    def worker() -> None:
        try:
            for _ in range(5):
                results.append(google_backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2)))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert results == [expected] * 40


# -- events -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("day", "offset"),
    [(date(2026, 10, 26), "+01:00"), (date(2026, 3, 30), "+02:00")],
    ids=["day after autumn change", "day after spring change"],
)
def test_a_10_oclock_lesson_is_stored_at_10_local_with_the_right_offset(
    google_backend, fake_google, day, offset
):
    start = ams(day.year, day.month, day.day, 10)

    created = google_backend.create_event(lesson(start=start))

    event = fake_google.event(TUTOR, created.event_id)
    assert event["start"] == {
        "dateTime": f"{day.isoformat()}T10:00:00{offset}",
        "timeZone": "Europe/Amsterdam",
    }
    assert event["end"]["dateTime"] == f"{day.isoformat()}T11:00:00{offset}"
    busy = google_backend.busy([TUTOR], start - timedelta(hours=3), start + timedelta(hours=3))
    assert busy[TUTOR] == [(start.astimezone(UTC), start.astimezone(UTC) + timedelta(hours=1))]


def test_the_event_carries_the_lesson_id_and_text(google_backend, fake_google):
    created = google_backend.create_event(lesson(lesson_id=7))

    assert created.event_id == "lesplanner00000007"
    assert created.invite_sent is None and created.note is None
    assert created.html_link
    event = fake_google.event(TUTOR, "lesplanner00000007")
    assert event["summary"] == "Les wiskunde"
    assert event["description"] == "Booked via Lesplanner"
    assert event["extendedProperties"] == {"private": {"lesplanner_lesson_id": "7"}}
    (insert,) = fake_google.calls("events.insert")
    assert insert.query["sendUpdates"] == "all"


def test_with_delegation_the_customer_is_invited(engine, fake_google, make_google_backend):
    backend = make_google_backend(gcal_delegated_user="tutor@lesplanner.test")

    created = backend.create_event(lesson(email="klant@example.com"))

    assert created.invite_sent is True and created.note is None
    assert fake_google.invitations == [(TUTOR, created.event_id, "klant@example.com")]


def test_when_google_refuses_the_invite_the_lesson_is_booked_without_guest(google_backend, fake_google):
    created = google_backend.create_event(lesson(email="klant@example.com"))

    assert created.invite_sent is False
    assert "Google refused to invite the customer" in created.note
    assert "GCAL_DELEGATED_USER" in created.note
    (event,) = fake_google.events(TUTOR)
    assert "attendees" not in event
    assert fake_google.invitations == []


def test_a_lost_insert_response_does_not_make_a_second_event(engine, fake_google, make_google_backend):
    backend = make_google_backend(gcal_delegated_user="tutor@lesplanner.test")
    # Google stores the event, then the connection dies twice (httplib2 silently resends once).
    fake_google.drop_next(2, match="events.insert")

    created = backend.create_event(lesson(email="klant@example.com"))

    assert created.event_id == "lesplanner00000042"
    assert created.invite_sent is True  # the surviving event has the guest
    assert len(fake_google.events(TUTOR)) == 1
    statuses = [r.status for r in fake_google.calls("events.insert")]
    assert statuses == [200, 409, 409]
    assert len(fake_google.calls("events.get")) == 1


def test_an_insert_that_times_out_after_google_stored_it_is_not_repeated(
    engine, fake_google, make_google_backend
):
    backend = make_google_backend(gcal_timeout_seconds=0.3)
    fake_google.slow_next(1.0, match="events.insert")

    created = backend.create_event(lesson())

    assert created.event_id == "lesplanner00000042"
    assert len(fake_google.events(TUTOR)) == 1
    assert [r.status for r in fake_google.calls("events.insert")] == [200, 409]


def test_creating_the_same_lesson_event_twice_is_idempotent(google_backend, fake_google):
    first = google_backend.create_event(lesson())
    second = google_backend.create_event(lesson())

    assert first.event_id == second.event_id
    assert len(fake_google.events(TUTOR)) == 1
    assert [r.operation for r in fake_google.requests if r.operation.startswith("events")] == [
        "events.insert",
        "events.insert",
        "events.get",
    ]


def test_a_moved_lesson_moves_its_event(google_backend, fake_google):
    google_backend.create_event(lesson(start=ams(2026, 6, 1, 10)))

    google_backend.create_event(lesson(start=ams(2026, 6, 1, 14)))

    (event,) = fake_google.events(TUTOR)
    assert event["start"]["dateTime"] == "2026-06-01T14:00:00+02:00"


def test_a_lesson_confirmed_again_after_its_event_was_deleted_gets_it_back(google_backend, fake_google):
    created = google_backend.create_event(lesson())
    google_backend.delete_event(TUTOR, created.event_id)

    again = google_backend.create_event(lesson())

    assert again.event_id == created.event_id
    (event,) = fake_google.events(TUTOR)
    assert event["status"] == "confirmed"


def test_delete_tells_the_guests_and_gone_is_success(google_backend, fake_google):
    created = google_backend.create_event(lesson())

    google_backend.delete_event(TUTOR, created.event_id)
    google_backend.delete_event(TUTOR, created.event_id)  # 410 deleted
    google_backend.delete_event(TUTOR, "lesplanner99999999")  # 404 never existed

    assert fake_google.events(TUTOR) == []
    assert [r.status for r in fake_google.calls("events.delete")] == [204, 410, 404]
    assert fake_google.calls("events.delete")[0].query["sendUpdates"] == "all"


def test_writing_to_a_read_only_calendar_says_what_to_share(google_backend, fake_google):
    fake_google.add_calendar(TUTOR, access_role="reader")

    with pytest.raises(CalendarUnavailable) as caught:
        google_backend.create_event(lesson())

    assert "Make changes to events" in caught.value.message
    assert TUTOR in caught.value.message


# -- faults -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "reason"),
    [
        (429, None),
        (500, None),
        (502, None),
        (503, None),
        (504, None),
        (403, "rateLimitExceeded"),
        (403, "userRateLimitExceeded"),
    ],
)
def test_transient_errors_are_retried_until_google_answers(google_backend, fake_google, status, reason):
    fake_google.add_event(TUTOR, utc(2026, 6, 1, 8), utc(2026, 6, 1, 9))
    fake_google.fail_next(status, 2, reason)

    busy = google_backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2))

    assert busy[TUTOR] == [(utc(2026, 6, 1, 8), utc(2026, 6, 1, 9))]
    assert [r.status for r in fake_google.calls("freebusy.query")] == [status, status, 200]


def test_a_dropped_connection_and_a_timeout_are_retried(engine, fake_google, make_google_backend):
    backend = make_google_backend(gcal_timeout_seconds=0.3)
    backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2))  # sign in first
    fake_google.drop_next(2, after_processing=False)
    fake_google.slow_next(1.0)

    assert backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2)) == {TUTOR: []}
    assert len(fake_google.calls("freebusy.query")) == 5


def test_google_down_for_good_is_a_clear_503_after_bounded_retries(google_backend, fake_google):
    fake_google.fail_next(503, 100)

    with pytest.raises(CalendarUnavailable) as caught:
        google_backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2))

    assert "Google Calendar is not answering (HTTP 503" in caught.value.message
    assert status_for(caught.value) == 503
    assert len(fake_google.calls("freebusy.query")) == 4  # 1 + GCAL_MAX_RETRIES (3)


def test_retries_back_off_exponentially_with_jitter(engine, fake_google, make_google_backend):
    slept: list[float] = []
    backend = make_google_backend(gcal_max_retries=4, retry_base_delay=0.1, sleep=slept.append)
    fake_google.fail_next(500, 100)

    with pytest.raises(CalendarUnavailable):
        backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2))

    assert len(slept) == 4
    for attempt, delay in enumerate(slept):
        ceiling = min(2.0, 0.1 * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling


@pytest.mark.parametrize("reason", ["quotaExceeded", "dailyLimitExceeded"])
def test_an_exhausted_quota_is_not_retried(google_backend, fake_google, reason):
    fake_google.fail_next(403, 100, reason)

    with pytest.raises(CalendarUnavailable) as caught:
        google_backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2))

    assert "usage limits" in caught.value.message and reason in caught.value.message
    assert len(fake_google.calls("freebusy.query")) == 1


def test_a_rejected_access_token_is_a_credentials_error(google_backend, fake_google):
    fake_google.fail_next(401, 100)

    with pytest.raises(CalendarUnavailable) as caught:
        google_backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2))

    assert "refused the credentials" in caught.value.message
    # google-auth refreshes the token and tries again (twice), then we stop: no backoff loop.
    assert len(fake_google.calls("freebusy.query")) == 3


def test_an_expired_token_is_renewed_transparently(google_backend, fake_google):
    google_backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2))
    fake_google.invalidate_tokens()

    google_backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2))

    assert len(fake_google.calls("token")) == 2


# -- credentials ------------------------------------------------------------------------------


def test_a_revoked_key_is_a_clear_error_without_the_key(engine, fake_google, make_google_backend):
    info = fake_google.service_account_info(registered=False, key_slot=1)
    backend = make_google_backend(gcal_service_account_json=json.dumps(info))

    with pytest.raises(CalendarUnavailable) as caught:
        backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2))

    message = caught.value.message
    assert message.startswith("Google Calendar refused the credentials")
    assert "invalid_grant" in message and "new JSON key" in message
    assert info["private_key"] not in message and "PRIVATE KEY" not in message
    assert fake_google.calls("freebusy.query") == []


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "set GCAL_SERVICE_ACCOUNT_JSON"),
        ("/nonexistent/sa.json", "names a file that does not exist"),
        ("{not json", "is not valid JSON"),
        ('{"type": "authorized_user", "client_id": "x"}', "is not a service-account key"),
        ('{"type": "service_account", "client_email": "a@b"}', "lacks private_key, token_uri"),
    ],
    ids=["unset", "missing file", "not json", "wrong type", "incomplete"],
)
def test_unusable_credentials_say_what_to_set(engine, fake_google, make_google_backend, value, expected):
    backend = make_google_backend(gcal_service_account_json=value)

    with pytest.raises(CalendarUnavailable) as caught:
        backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2))

    assert expected in caught.value.message
    if value and len(value) > 12:
        assert value not in caught.value.message


def test_a_broken_private_key_is_reported_without_showing_it(engine, fake_google, make_google_backend):
    info = fake_google.service_account_info()
    info["private_key"] = "-----BEGIN PRIVATE KEY-----\nAAAAsecretish\n-----END PRIVATE KEY-----\n"
    backend = make_google_backend(gcal_service_account_json=json.dumps(info))

    with pytest.raises(CalendarUnavailable) as caught:
        backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2))

    assert "private_key" in caught.value.message and "secretish" not in caught.value.message


def test_the_key_may_be_a_file_path(tmp_path, engine, fake_google, make_google_backend):
    key_file = tmp_path / "service-account.json"
    key_file.write_text(fake_google.service_account_json())
    backend = make_google_backend(gcal_service_account_json=str(key_file))

    assert backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2)) == {TUTOR: []}


def test_delegation_not_authorised_in_workspace_says_where_to_fix_it(
    engine, fake_google, make_google_backend
):
    fake_google.delegation_enabled = False
    backend = make_google_backend(gcal_delegated_user="tutor@lesplanner.test")

    with pytest.raises(CalendarUnavailable) as caught:
        backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2))

    assert "unauthorized_client" in caught.value.message
    assert "Domain-wide delegation" in caught.value.message and "client id" in caught.value.message


def test_the_configured_backend_is_google(google_settings):
    assert isinstance(get_backend(google_settings), GoogleCalendarBackend)


# -- check ------------------------------------------------------------------------------------


def test_check_finds_a_calendar_not_shared_with_the_service_account(google_backend, fake_google):
    fake_google.set_missing_calendar(OTHER)
    fake_google.add_calendar("readonly@lesplanner.test", access_role="reader")

    checks = {c.subject: c for c in google_backend.check([TUTOR, OTHER, "readonly@lesplanner.test"])}

    assert checks["credentials"].ok
    assert checks[TUTOR].ok
    unshared = checks[OTHER]
    assert not unshared.ok
    assert "lesplanner@lesplanner-test.iam.gserviceaccount.com" in unshared.fix
    assert "Make changes to events" in unshared.fix
    read_only = checks["readonly@lesplanner.test"]
    assert not read_only.ok and "'reader'" in read_only.detail
    assert "Make changes to events" in read_only.fix


def test_check_explains_that_primary_is_not_the_tutors_calendar(google_backend):
    (_, primary) = google_backend.check(["primary"])

    assert not primary.ok
    assert "service account's own calendar" in primary.detail
    assert "GCAL_CALENDAR_ID" in primary.fix


def test_check_reports_bad_credentials_first(engine, fake_google, make_google_backend):
    info = fake_google.service_account_info(registered=False, key_slot=1)
    backend = make_google_backend(gcal_service_account_json=json.dumps(info))

    checks = backend.check([TUTOR])

    assert [(c.subject, c.ok) for c in checks] == [("credentials", False)]
    assert "invalid_grant" in checks[0].detail


def test_check_calendar_report_covers_active_tutors_and_the_default(
    engine, fake_google, make_google_settings
):
    from core.calendars.google_check import check_calendar_report
    from core.models import Tutor

    with Session(engine) as session:
        session.add(Tutor(name="Anna", calendar_id=OTHER))
        session.add(Tutor(name="Oud", calendar_id="old@lesplanner.test", active=False))
        session.commit()
    fake_google.set_missing_calendar(OTHER)
    settings = make_google_settings()

    ok, text = check_calendar_report(settings)

    assert not ok
    assert f"ok    {TUTOR} [GCAL_CALENDAR_ID]" in text
    assert f"FAIL  {OTHER} [tutor Anna]" in text
    assert "old@lesplanner.test" not in text
    assert "1 problem(s) found." in text


# -- integration status -----------------------------------------------------------------------


def test_the_integration_status_follows_googles_health(google_backend, fake_google, engine):
    fake_google.fail_next(503, 100)
    with pytest.raises(CalendarUnavailable):
        google_backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2))
    assert google_backend.flush_status()
    with Session(engine) as session:
        row = session.get(IntegrationStatus, "google")
        assert row.ok is False and "HTTP 503" in row.last_error and row.last_error_at

    fake_google.clear_faults()
    google_backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2))
    assert google_backend.flush_status()
    with Session(engine) as session:
        row = session.get(IntegrationStatus, "google")
        assert row.ok is True and row.last_ok_at and "HTTP 503" in row.last_error


def test_an_unchanged_ok_status_is_not_rewritten_on_every_call(google_backend, engine):
    google_backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2))
    google_backend.flush_status()
    with Session(engine) as session:
        first = session.get(IntegrationStatus, "google").last_ok_at

    google_backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2))
    google_backend.flush_status()

    with Session(engine) as session:
        assert session.get(IntegrationStatus, "google").last_ok_at == first


def test_a_failing_status_write_never_breaks_the_call(tmp_path, make_google_backend):
    # No tables in this database: the status write fails, the answer still arrives.
    backend = make_google_backend(database_url=f"sqlite:///{tmp_path}/empty.db")

    assert backend.busy([TUTOR], utc(2026, 6, 1), utc(2026, 6, 2)) == {TUTOR: []}
    assert backend.flush_status()
