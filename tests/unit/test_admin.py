"""Specs of the console's writes (core.profiles, core.whitelists, core.users, core.availability, and
rescheduling in core.booking): each checks the actor's role itself, validates, and leaves an audit
trail; rescheduling moves the same lesson (same payment, same calendar event) and never
double-books."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import select

from core import availability, booking, contacts, lesson_changes, profiles, whitelists, worker
from core.calendars import event_id_for_lesson, set_backend
from core.calendars.local import LocalCalendarBackend
from core.csv_export import safe_cell, to_csv
from core.db import read_session, write_session
from core.errors import (
    InvalidProfile,
    InvalidTransition,
    PermissionDenied,
    SlotNotOffered,
    SlotTaken,
    ValidationFailed,
)
from core.models import (
    AuditLog,
    BusyBlock,
    Contact,
    Lesson,
    OutboxMessage,
    Payment,
    PlanningProfile,
    SegmentProfile,
    Tutor,
    User,
    WhitelistEntry,
)
from core.users import add_user, authenticate, find_user, reset_password, set_user_active, set_user_role
from tests.conftest import AMS
from tests.support.console import (  # noqa: F401 - fast_passwords is a fixture
    ADMIN,
    FINANCE,
    OTHER_TUTOR,
    PASSWORD,
    TUTOR,
    build_console_data,
    fast_passwords,
)

pytestmark = pytest.mark.usefixtures("fast_passwords")


@pytest.fixture
def world(engine, frozen_now):
    frozen_now(2026, 11, 30, 8, 0)  # Monday morning
    ids = build_console_data(engine)
    with read_session(engine) as s:
        users = {u.email: u for u in s.exec(select(User)).all()}
    return ids, users


def _audit(action: str) -> list[AuditLog]:
    with read_session() as s:
        return list(s.exec(select(AuditLog).where(AuditLog.action == action)).all())


# --- profiles ----------------------------------------------------------------------------------


def test_an_invalid_profile_edit_names_the_field_and_changes_nothing(world):
    _, users = world
    with pytest.raises(InvalidProfile) as err:
        profiles.update_profile(users[ADMIN], "existing", {"earliest_hour": 20, "latest_hour": 10})
    assert err.value.field == "earliest_hour"
    with read_session() as s:
        assert s.get(PlanningProfile, "existing").earliest_hour == 9


def test_a_profile_edit_is_saved_with_before_and_after_in_the_audit_log(world):
    _, users = world
    profiles.update_profile(users[ADMIN], "existing", {"max_suggestions": 9, "earliest_hour": 8})
    with read_session() as s:
        assert s.get(PlanningProfile, "existing").max_suggestions == 9
    [entry] = _audit("profile.update")
    assert entry.actor == ADMIN
    assert entry.before == {"max_suggestions": 6, "earliest_hour": 9}
    assert entry.after == {"max_suggestions": 9, "earliest_hour": 8}


@pytest.mark.parametrize("who", [TUTOR, FINANCE])
def test_only_admins_may_change_profiles(world, who):
    _, users = world
    with pytest.raises(PermissionDenied):
        profiles.update_profile(users[who], "existing", {"max_suggestions": 9})


def test_a_deactivated_admin_can_no_longer_act_even_with_a_user_object_in_hand(world):
    _, users = world
    second, _ = add_user(users[ADMIN], "second@example.nl", "admin")
    set_user_active(users[ADMIN], second.id, False)
    with pytest.raises(PermissionDenied):
        profiles.update_profile(second, "existing", {"max_suggestions": 9})


def test_a_profile_still_mapped_to_a_segment_cannot_be_deactivated(world):
    _, users = world
    with pytest.raises(InvalidProfile) as err:
        profiles.update_profile(users[ADMIN], "weekend", {"active": False})
    assert err.value.field == "active"


def test_preview_shows_the_edited_profiles_slots_without_saving(world):
    _, users = world
    slots = booking.preview_profile(
        "existing", {"earliest_hour": 16, "latest_hour": 18, "max_suggestions": 50}
    )
    assert slots and all(s.start.astimezone(AMS).hour in (16, 17) for s in slots)
    with read_session() as s:
        assert s.get(PlanningProfile, "existing").earliest_hour == 9


def test_preview_leaves_out_busy_time(world):
    ids, _ = world
    slots = booking.preview_profile("existing", {"max_suggestions": 200, "max_per_day": None})
    thursday_morning = datetime(2026, 12, 3, 10, tzinfo=AMS)  # Anna's dentist 9-12, Bram free
    assert any(s.start == thursday_morning for s in slots)  # Bram can still teach
    only_anna = booking.preview_profile("existing", {"max_suggestions": 200, "max_per_day": None})
    assert only_anna == slots


def test_segment_mapping_and_contact_overrides_are_saved_and_audited(world):
    _, users = world
    profiles.set_segment_profile(users[ADMIN], "new", "premium")
    contacts.set_contact_overrides(users[ADMIN], "c-2", "weekend", "premium")
    with read_session() as s:
        assert s.get(SegmentProfile, "new").profile_name == "premium"
        contact = s.get(Contact, "c-2")
        assert (contact.segment_override, contact.profile_override) == ("weekend", "premium")
    assert _audit("segment_profile.update") and _audit("contact.overrides")
    with pytest.raises(ValidationFailed):
        contacts.set_contact_overrides(users[ADMIN], "c-2", "vip", None)


# --- whitelists --------------------------------------------------------------------------------


def test_whitelist_add_normalises_and_ignores_a_repeat(world):
    _, users = world
    entry = whitelists.whitelist_add(users[ADMIN], "weekend", "06 8765 4321", "via telefoon")
    assert entry.identifier == "+31687654321"
    assert whitelists.whitelist_add(users[ADMIN], "weekend", "+31 6 87654321") is None
    whitelists.whitelist_remove(users[ADMIN], entry.id)
    with read_session() as s:
        assert s.get(WhitelistEntry, entry.id) is None
    assert [a.action for a in _audit("whitelist.add")] == ["whitelist.add"]
    assert _audit("whitelist.remove")


def test_csv_import_previews_valid_duplicate_and_invalid_rows_then_adds_only_new_ones(world):
    _, users = world
    sheet = (
        "Naam;Telefoon\n"
        "Piet;06-12345678\n"
        "Klaas;0611112222\n"  # already on the weekend list (seeded)
        "Truus;+31 6 12345678\n"  # the same number as row 2
        "Fout;12ab\n"
        "Leeg;\n"
        "Zoë;0687654321\n"
    ).encode("cp1252")
    preview = whitelists.parse_whitelist_csv(sheet, "weekend")
    assert [r["identifier"] for r in preview.valid] == ["+31612345678", "+31687654321"]
    assert {d["row"] for d in preview.duplicates} == {3, 4}
    assert {r["row"] for r in preview.invalid} == {5, 6}
    assert all(r["error"] for r in preview.invalid)
    assert preview.valid[0]["note"] == "Piet" and preview.valid[1]["note"] == "Zoë"
    added = whitelists.import_whitelist(users[ADMIN], "weekend", preview.valid)
    assert added == 2
    with read_session() as s:
        listed = set(s.exec(select(WhitelistEntry.identifier).where(WhitelistEntry.list == "weekend")).all())
    assert {"+31612345678", "+31687654321", "+31611112222"} == listed


def test_csv_import_without_header_reads_the_first_column_and_any_identifier(world):
    preview = whitelists.parse_whitelist_csv(
        "0612345678,x\nJan@Example.NL,y\n4711,z\n", "returning_broadcast"
    )
    assert [(r["kind"], r["identifier"]) for r in preview.valid] == [
        ("phone", "+31612345678"),
        ("email", "jan@example.nl"),
        ("contact_id", "4711"),
    ]


def test_only_admins_may_change_whitelists(world):
    _, users = world
    with pytest.raises(PermissionDenied):
        whitelists.whitelist_add(users[TUTOR], "weekend", "0612345678")


# --- users -------------------------------------------------------------------------------------


def test_created_and_reset_passwords_work_once_shown(world, engine):
    _, users = world
    created, password = add_user(users[ADMIN], "nieuw@example.nl", "finance", "Nieuw")
    new_password = reset_password(users[ADMIN], created.id)
    assert new_password != password
    from core.db import write_session

    with write_session(engine) as s:
        assert authenticate(s, "nieuw@example.nl", password) is None
        assert authenticate(s, "nieuw@example.nl", new_password) is not None


def test_an_admin_cannot_lock_out_the_last_admin(world):
    _, users = world
    with pytest.raises(ValidationFailed):
        set_user_active(users[ADMIN], users[ADMIN].id, False)
    with pytest.raises(ValidationFailed):
        set_user_role(users[ADMIN], users[ADMIN].id, "tutor")


def test_deactivated_accounts_cannot_sign_in(world, engine):
    _, users = world
    set_user_active(users[ADMIN], users[FINANCE].id, False)
    from core.db import write_session

    with write_session(engine) as s:
        assert authenticate(s, FINANCE, PASSWORD) is None
        assert find_user(s, FINANCE).active is False


# --- time off ----------------------------------------------------------------------------------


def test_a_tutor_enters_time_off_in_their_own_calendar_only(world):
    ids, users = world
    start = datetime(2026, 12, 7, 9, tzinfo=AMS)
    block = availability.add_busy_block(
        users[TUTOR], ids["anna"], start, start + timedelta(hours=3), "cursus"
    )
    with pytest.raises(PermissionDenied):
        availability.add_busy_block(users[OTHER_TUTOR], ids["anna"], start, start + timedelta(hours=1))
    with pytest.raises(PermissionDenied):
        availability.remove_busy_block(users[OTHER_TUTOR], block.id)
    with pytest.raises(PermissionDenied):
        availability.add_busy_block(users[FINANCE], ids["anna"], start, start + timedelta(hours=1))
    availability.remove_busy_block(users[TUTOR], block.id)
    with read_session() as s:
        assert s.get(BusyBlock, block.id) is None


def test_time_off_must_end_after_it_starts(world):
    ids, users = world
    start = datetime(2026, 12, 7, 9, tzinfo=AMS)
    with pytest.raises(ValidationFailed):
        availability.add_busy_block(users[ADMIN], ids["anna"], start, start)


# --- rescheduling ------------------------------------------------------------------------------


class RecordingCalendar(LocalCalendarBackend):
    """The embedded calendar, remembering the events the calendar jobs made and deleted:
    {(calendar id, event id): (start, end)}."""

    def __init__(self) -> None:
        self.events: dict[tuple[str, str], tuple[datetime, datetime]] = {}

    def create_event(self, request):  # noqa: ANN001, ANN201
        self.events[(request.calendar_id, request.event_id)] = (request.start, request.end)
        return super().create_event(request)

    def delete_event(self, calendar_id, event_id):  # noqa: ANN001, ANN201
        self.events.pop((calendar_id, event_id), None)
        return super().delete_event(calendar_id, event_id)


@pytest.fixture
def calendar(world) -> RecordingCalendar:
    backend = RecordingCalendar()
    set_backend(backend)
    return backend


def _lessons_of(conversation_id: str) -> list[Lesson]:
    with read_session() as s:
        return list(
            s.exec(select(Lesson).where(Lesson.conversation_id == conversation_id).order_by(Lesson.id)).all()
        )


def _messages(key: str, conversation_id: str | None = None) -> list[OutboxMessage]:
    stmt = select(OutboxMessage).where(OutboxMessage.key == key)
    if conversation_id is not None:
        stmt = stmt.where(OutboxMessage.conversation_id == conversation_id)
    with read_session() as s:
        return list(s.exec(stmt.order_by(OutboxMessage.id)).all())


def _moved_in_the_calendar(lesson_id: int, calendar: RecordingCalendar, start: datetime) -> None:
    """Before the worker ran, the move waits for its calendar job; after it, the lesson's one
    event (its own deterministic id) is at the new time and it is synced."""
    with read_session() as s:
        assert s.get(Lesson, lesson_id).calendar_sync == "pending"
    worker.drain()
    with read_session() as s:
        lesson = s.get(Lesson, lesson_id)
        tutor_calendar = s.get(Tutor, lesson.tutor_id).calendar_id
    assert lesson.calendar_sync == "synced"
    assert lesson.calendar_event_id == event_id_for_lesson(lesson_id)
    assert calendar.events == {
        (tutor_calendar, event_id_for_lesson(lesson_id)): (start, start + timedelta(hours=1))
    }


def test_rescheduling_a_confirmed_lesson_keeps_its_payment_and_tells_the_customer(world, calendar):
    ids, users = world
    new_start = datetime(2026, 12, 2, 11, tzinfo=AMS)
    lessons_before = _lessons_of("conv-c-1")

    moved = lesson_changes.reschedule_lesson(ids["confirmed"], new_start, users[ADMIN], "docent ziek")

    assert moved.id == ids["confirmed"]
    with read_session() as s:
        lesson = s.get(Lesson, ids["confirmed"])
        payment = s.exec(select(Payment).where(Payment.checkout_session_id == "cs_test_paid_1")).one()
    assert lesson.status == "confirmed"
    assert (lesson.start, lesson.end) == (new_start, new_start + timedelta(hours=1))
    assert payment.lesson_id == lesson.id and payment.status == "paid"
    assert [row.id for row in _lessons_of("conv-c-1")] == [row.id for row in lessons_before]  # no new lesson
    [message] = _messages("lesson_rescheduled")
    assert message.conversation_id == "conv-c-1"
    assert message.text == "Je les is verplaatst naar wo 2 dec om 11:00."
    assert message.dedupe_key == f"lesson_moved:{lesson.id}:{int(new_start.timestamp())}"
    assert not _messages("lesson_cancelled")
    [entry] = _audit("lesson.reschedule")
    assert entry.actor == ADMIN and entry.entity_id == str(lesson.id)
    assert entry.before["status"] == "confirmed"
    assert datetime.fromisoformat(entry.before["start"]) == datetime(2026, 12, 2, 10, tzinfo=AMS)
    assert entry.after["status"] == "confirmed" and entry.after["reason"] == "docent ziek"
    assert datetime.fromisoformat(entry.after["start"]) == new_start
    _moved_in_the_calendar(lesson.id, calendar, new_start)


def test_a_paid_lesson_that_lost_its_slot_is_rescheduled_and_confirmed(world, calendar):
    ids, users = world
    new_start = datetime(2026, 12, 4, 13, tzinfo=AMS)

    rebooked = lesson_changes.reschedule_lesson(ids["moved"], new_start, users[ADMIN])

    assert rebooked.id == ids["moved"]
    with read_session() as s:
        lesson = s.get(Lesson, ids["moved"])
        payment = s.exec(select(Payment).where(Payment.checkout_session_id == "cs_test_paid_3")).one()
    assert lesson.status == "confirmed" and lesson.start == new_start
    assert payment.lesson_id == lesson.id and payment.status == "paid"
    assert len(_lessons_of("conv-c-3")) == 1
    [message] = _messages("booking_confirmed", "conv-c-3")
    assert message.dedupe_key == f"lesson_moved:{lesson.id}:{int(new_start.timestamp())}"
    assert _audit("lesson.reschedule")[0].before["status"] == "needs_reschedule"
    _moved_in_the_calendar(lesson.id, calendar, new_start)


def test_rescheduling_into_a_taken_or_busy_slot_is_refused(world):
    ids, users = world
    with pytest.raises(SlotTaken):  # Anna's held lesson (hold still running)
        lesson_changes.reschedule_lesson(
            ids["confirmed"], datetime(2026, 12, 3, 14, tzinfo=AMS), users[ADMIN]
        )
    with pytest.raises(SlotTaken):  # Anna's time off
        lesson_changes.reschedule_lesson(
            ids["confirmed"], datetime(2026, 12, 3, 10, tzinfo=AMS), users[ADMIN]
        )
    with pytest.raises(SlotNotOffered):  # 07:00 is before the profile's window
        lesson_changes.reschedule_lesson(ids["confirmed"], datetime(2026, 12, 2, 7, tzinfo=AMS), users[ADMIN])
    with read_session() as s:
        lesson = s.get(Lesson, ids["confirmed"])
    assert lesson.status == "confirmed" and lesson.start == datetime(2026, 12, 2, 10, tzinfo=AMS)
    assert not _messages("lesson_rescheduled") and not _audit("lesson.reschedule")


def test_nobody_reschedules_a_lesson_they_do_not_manage(world):
    ids, users = world
    when = datetime(2026, 12, 2, 16, tzinfo=AMS)
    for who in (OTHER_TUTOR, FINANCE):
        with pytest.raises(PermissionDenied):
            lesson_changes.reschedule_lesson(ids["confirmed"], when, users[who])
    with read_session() as s:
        assert s.get(Lesson, ids["confirmed"]).start == datetime(2026, 12, 2, 10, tzinfo=AMS)
    moved = lesson_changes.reschedule_lesson(ids["confirmed"], when, users[TUTOR])
    assert moved.id == ids["confirmed"] and moved.status == "confirmed" and moved.start == when


def test_a_held_lesson_is_not_rescheduled_while_its_checkout_is_open(world):
    ids, users = world
    with pytest.raises(InvalidTransition):
        lesson_changes.reschedule_lesson(ids["held"], datetime(2026, 12, 4, 16, tzinfo=AMS), users[ADMIN])
    with read_session() as s:
        lesson = s.get(Lesson, ids["held"])
    assert lesson.status == "held" and lesson.start == datetime(2026, 12, 3, 14, tzinfo=AMS)


def test_reschedule_options_leave_out_the_current_time_and_busy_time(world):
    ids, users = world
    options = lesson_changes.reschedule_options(ids["confirmed"], users[ADMIN], limit=200)
    starts = {o.start for o in options}
    assert datetime(2026, 12, 2, 10, tzinfo=AMS) not in starts
    assert datetime(2026, 12, 3, 10, tzinfo=AMS) not in starts  # time off
    assert datetime(2026, 12, 3, 14, tzinfo=AMS) not in starts  # Anna's held lesson
    assert datetime(2026, 12, 2, 11, tzinfo=AMS) in starts
    with pytest.raises(PermissionDenied):
        lesson_changes.reschedule_options(ids["confirmed"], users[OTHER_TUTOR])


# --- rescheduling next to busy time around the lesson's own old time ------------------------------
# The confirmed lesson is Wednesday 2 December 10:00-11:00 with Anna; the 'existing' profile is
# set to offer every half hour, so a move can overlap the lesson's own old time.


def wed(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 2, hour, minute, tzinfo=AMS)


def half_hourly() -> None:
    with write_session() as s:
        s.get(PlanningProfile, "existing").slot_step_minutes = 30


def test_reschedule_options_offer_a_move_by_half_an_hour_into_the_lessons_own_time(world):
    ids, users = world
    half_hourly()

    starts = {o.start for o in lesson_changes.reschedule_options(ids["confirmed"], users[ADMIN], limit=200)}

    assert {wed(9, 30), wed(10, 30)} <= starts  # its own old time does not block the move
    assert wed(10) not in starts
    moved = lesson_changes.reschedule_lesson(ids["confirmed"], wed(10, 30), users[ADMIN])
    assert moved.start == wed(10, 30)


def set_buffer(minutes: int) -> None:
    with write_session() as s:
        s.get(PlanningProfile, "existing").buffer_minutes = minutes


@pytest.mark.parametrize(
    ("off_from", "off_until"),
    [
        pytest.param(wed(10), wed(10, 30), id="inside the lesson's old time"),
        pytest.param(wed(10), wed(12), id="over the lesson's old time and beyond"),
    ],
)
def test_time_off_over_the_lessons_old_time_still_blocks_a_move_onto_it(world, off_from, off_until):
    """In the embedded calendar busy time is only time off: the lesson itself is not in it, so
    none of that time off may be taken for the lesson's own event (e.g. the tutor is ill)."""
    ids, users = world
    half_hourly()
    availability.add_busy_block(users[ADMIN], ids["anna"], off_from, off_until, "ziek")

    with pytest.raises(SlotTaken):
        lesson_changes.reschedule_lesson(ids["confirmed"], wed(9, 30), users[ADMIN])

    with read_session() as s:
        lesson = s.get(Lesson, ids["confirmed"])
    assert lesson.status == "confirmed" and lesson.start == wed(10)


class MergingCalendar(RecordingCalendar):
    """A calendar that holds the lessons' own events and answers busy time merged and whole,
    whatever range is asked: the lesson's event (10:00-11:00) and Anna's meeting right after it
    (11:00-12:00) come back as one busy period, 10:00-12:00."""

    name = "merging"
    busy_includes_lesson_events = True

    def busy(self, calendar_ids, start, end):  # noqa: ANN001, ANN201
        return {cid: [(wed(10), wed(12))] for cid in calendar_ids}


@pytest.mark.parametrize(
    ("buffer", "new_start"),
    [
        pytest.param(0, wed(9, 30), id="half an hour earlier, into its own old time"),
        pytest.param(30, wed(9), id="an hour earlier, the buffer reaching into its own old time"),
    ],
)
def test_a_move_overlapping_only_its_own_old_event_is_allowed_although_busy_time_is_merged(
    world, buffer, new_start
):
    ids, users = world
    half_hourly()
    set_buffer(buffer)
    merging = MergingCalendar()
    set_backend(merging)

    moved = lesson_changes.reschedule_lesson(ids["confirmed"], new_start, users[ADMIN], "eerder")

    assert moved.id == ids["confirmed"]
    assert moved.status == "confirmed" and moved.start == new_start
    with read_session() as s:
        lesson = s.get(Lesson, ids["confirmed"])
    assert lesson.status == "confirmed" and lesson.start == new_start
    assert len(_messages("lesson_rescheduled")) == 1
    _moved_in_the_calendar(lesson.id, merging, new_start)


@pytest.mark.parametrize(
    ("buffer", "new_start"),
    [
        pytest.param(0, wed(10, 30), id="half an hour later, overlapping the meeting"),
        pytest.param(0, wed(11), id="onto the meeting"),
        pytest.param(45, wed(9, 30), id="half an hour earlier, the buffer reaching the meeting"),
    ],
)
def test_a_move_overlapping_the_merged_neighbouring_event_is_still_refused(world, buffer, new_start):
    ids, users = world
    half_hourly()
    set_buffer(buffer)
    set_backend(MergingCalendar())

    with pytest.raises(SlotTaken, match="busy in Anna"):
        lesson_changes.reschedule_lesson(ids["confirmed"], new_start, users[ADMIN], "later")

    with read_session() as s:
        lesson = s.get(Lesson, ids["confirmed"])
    assert lesson.status == "confirmed" and lesson.start == wed(10)
    assert lesson.calendar_sync is None  # no calendar job was asked for
    assert not _messages("lesson_rescheduled")


# --- CSV export --------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["=SUM(A1)", "+31612345678", "-2", "@cmd", "\tx", "\rx"])
def test_csv_cells_that_a_spreadsheet_would_run_are_quoted(text):
    assert safe_cell(text) == "'" + text


def test_csv_keeps_numbers_and_writes_local_times():
    data = to_csv(
        [{"n": -5, "name": '=HYPERLINK("x")', "at": datetime(2026, 12, 1, 9, tzinfo=ZoneInfo("UTC"))}],
        ["n", "name", "at"],
        tz=AMS,
    ).decode("utf-8-sig")
    assert data.splitlines()[1] == '-5,"\'=HYPERLINK(""x"")",2026-12-01 10:00'
