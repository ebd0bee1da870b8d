"""Planning that matches real life (issue 16): closures (public holidays from the `holidays`
package, imported school holidays, business closures) and tutors' working hours become busy time
in core/availability.py, so they are never offered and never bookable."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest
from sqlmodel import select

from core import availability, closures, tutor_hours
from core.availability_queries import week_calendar
from core.booking import book_slot, slots_for_profile
from core.db import read_session, write_session
from core.errors import PermissionDenied, SlotNotOffered, ValidationFailed
from core.lesson_changes import reschedule_lesson
from core.models import AuditLog, Closure, PlanningProfile, Tutor, User
from tests.conftest import AMS


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=AMS)


@pytest.fixture(autouse=True)
def world(engine, frozen_now):
    frozen_now(2026, 12, 20, 9, 0)  # Sunday before Christmas
    with write_session() as session:
        for profile in session.exec(select(PlanningProfile)):
            profile.requires_payment = False
        session.add(Tutor(name="Anna", email="anna@lesplanner.test", calendar_id="anna-cal"))
        session.add(Tutor(name="Bram", email="bram@lesplanner.test", calendar_id="bram-cal"))
        session.add(User(email="admin@lesplanner.test", name="Admin", role="admin", password_hash="x"))
        session.add(User(email="anna@lesplanner.test", name="Anna", role="tutor", password_hash="x"))
        session.add(User(email="bram@lesplanner.test", name="Bram", role="tutor", password_hash="x"))
    return engine


def user(email: str) -> User:
    with read_session() as session:
        return session.exec(select(User).where(User.email == email)).one()


def tutor_id(name: str) -> int:
    with read_session() as session:
        found = session.exec(select(Tutor).where(Tutor.name == name)).one()
        assert found.id is not None
        return found.id


def every_free(profile_name: str, **changes) -> list[datetime]:
    with write_session() as session:
        profile = session.get_one(PlanningProfile, profile_name)
        for field, value in changes.items():
            setattr(profile, field, value)
    with read_session() as session:
        profile = session.get_one(PlanningProfile, profile_name)
        return [s.start.astimezone(AMS) for s in slots_for_profile(session, profile, every=True)]


def days(starts: list[datetime]) -> set[date]:
    return {s.date() for s in starts}


def book(start: datetime, minutes: int = 90, conversation: str = "conv-1"):
    return book_slot(
        conversation,
        start,
        start + timedelta(minutes=minutes),
        "Wiskunde",
        contact_id="c-1",
        profile_name="premium",
    )


# --- public holidays ---------------------------------------------------------------------------


def test_christmas_and_new_year_are_never_offered_in_the_default_setup():
    free = days(every_free("premium"))  # premium: every day, 21 days ahead: until 10 January
    assert {date(2026, 12, 24), date(2026, 12, 27), date(2027, 1, 2)} <= free
    assert not free & {date(2026, 12, 25), date(2026, 12, 26), date(2027, 1, 1)}


def test_kings_day_is_never_offered_in_the_default_setup(frozen_now):
    frozen_now(2027, 4, 20, 9, 0)
    free = days(every_free("existing"))
    assert {date(2027, 4, 26), date(2027, 4, 28)} <= free
    assert date(2027, 4, 27) not in free


def test_a_public_holiday_is_never_bookable():
    with pytest.raises(SlotNotOffered, match="Eerste kerstdag|Christmas"):
        book(at(2026, 12, 25, 10))
    assert book(at(2026, 12, 24, 10)).created


def test_a_profile_may_switch_public_holidays_off():
    assert date(2026, 12, 25) in days(every_free("premium", public_holidays=False))


def test_an_admin_may_mark_a_public_holiday_as_not_applying():
    closures.set_public_holiday(user("admin@lesplanner.test"), date(2026, 12, 26), applies=False)
    free = days(every_free("premium"))
    assert date(2026, 12, 26) in free and date(2026, 12, 25) not in free
    closures.set_public_holiday(user("admin@lesplanner.test"), date(2026, 12, 26), applies=True)
    assert date(2026, 12, 26) not in days(every_free("premium"))


def test_no_holidays_country_means_no_public_holidays(settings):
    settings.holidays_country = ""
    assert date(2026, 12, 25) in days(every_free("premium"))


# --- school holidays: imported, per region, switched on per profile -------------------------------

SCHOOL_CSV = (
    "naam;regio;van;tot\n"
    "Voorjaarsvakantie;noord;2027-02-20;2027-02-28\n"
    "Kerstvakantie;midden;19-12-2026;03-01-2027\n"
    "Krokus;oost;2027-02-13;2027-02-21\n"
    "Kapot;zuid;2027-02-30;2027-03-01\n"
)


def test_a_school_holiday_import_previews_then_blocks_its_dates_only_for_profiles_that_switched_it_on():
    preview = closures.parse_closures_csv(SCHOOL_CSV.encode())
    assert [(r["name"], r["region"], r["start_date"], r["end_date"]) for r in preview.valid] == [
        ("Voorjaarsvakantie", "noord", date(2027, 2, 20), date(2027, 2, 28)),
        ("Kerstvakantie", "midden", date(2026, 12, 19), date(2027, 1, 3)),
    ]
    assert [r["row"] for r in preview.invalid] == [4, 5]
    with read_session() as session:
        assert session.exec(select(Closure)).all() == []  # a preview writes nothing

    assert closures.import_closures(user("admin@lesplanner.test"), preview.valid) == 2
    assert closures.import_closures(user("admin@lesplanner.test"), preview.valid) == 0  # again: none new

    on = days(every_free("premium", school_holidays="midden"))
    assert not on & {date(2026, 12, 21), date(2026, 12, 28), date(2027, 1, 3)}
    off = days(every_free("premium", school_holidays=None))
    assert {date(2026, 12, 21), date(2026, 12, 28), date(2027, 1, 3)} <= off
    other_region = days(every_free("premium", school_holidays="zuid"))
    assert date(2026, 12, 21) in other_region


def test_school_holidays_are_editable_and_can_be_switched_off():
    admin = user("admin@lesplanner.test")
    preview = closures.parse_closures_csv(SCHOOL_CSV.encode())
    closures.import_closures(admin, preview.valid)
    with read_session() as session:
        christmas = session.exec(select(Closure).where(Closure.name == "Kerstvakantie")).one()
    closures.update_closure(admin, christmas.id, end_date=date(2026, 12, 27))
    free = days(every_free("premium", school_holidays="midden"))
    assert date(2026, 12, 23) not in free and date(2026, 12, 28) in free
    closures.update_closure(admin, christmas.id, active=False)
    assert date(2026, 12, 23) in days(every_free("premium"))


# --- business closures ---------------------------------------------------------------------------


def test_a_business_closure_blocks_every_profile_and_refuses_a_booking_with_its_name():
    admin = user("admin@lesplanner.test")
    closures.add_closure(admin, date(2026, 12, 29), date(2026, 12, 30), "Teamuitje")
    for name in ("premium", "existing"):
        assert not days(every_free(name)) & {date(2026, 12, 29), date(2026, 12, 30)}
    with pytest.raises(SlotNotOffered, match="Teamuitje"):
        book(at(2026, 12, 30, 20))
    with read_session() as session:
        assert [a.action for a in session.exec(select(AuditLog))] == ["closure.add"]


def test_only_admins_enter_closures_and_bad_ranges_are_refused():
    with pytest.raises(PermissionDenied):
        closures.add_closure(user("anna@lesplanner.test"), date(2026, 12, 29), date(2026, 12, 29), "Vrij")
    with pytest.raises(ValidationFailed):
        closures.add_closure(
            user("admin@lesplanner.test"), date(2026, 12, 30), date(2026, 12, 29), "Omgekeerd"
        )
    with pytest.raises(ValidationFailed):
        closures.add_closure(user("admin@lesplanner.test"), date(2026, 12, 29), date(2026, 12, 29), " ")


def test_a_lesson_cannot_be_moved_onto_a_closure():
    lesson = book(at(2026, 12, 24, 10)).lesson
    with pytest.raises(SlotNotOffered):
        reschedule_lesson(lesson.id, at(2026, 12, 25, 10), user("admin@lesplanner.test"))


# --- tutors' working hours ---------------------------------------------------------------------


def only_anna(profile_name: str = "premium") -> None:
    with write_session() as session:
        session.get_one(Tutor, tutor_id("Bram")).active = False


def test_a_tutor_with_only_tuesday_evening_is_offered_only_then_across_dst(frozen_now):
    frozen_now(2027, 3, 20, 9, 0)  # Saturday; summer time starts Sunday 28 March
    only_anna()
    tutor_hours.set_tutor_hours(user("admin@lesplanner.test"), tutor_id("Anna"), [(1, 18 * 60, 21 * 60)])
    free = every_free("premium")  # 90-minute lessons, hourly: 18:00 and 19:00
    assert free
    assert {(s.weekday(), s.hour, s.minute) for s in free} == {(1, 18, 0), (1, 19, 0)}
    assert days(free) == {date(2027, 3, 23), date(2027, 3, 30), date(2027, 4, 6)}  # both sides of DST
    with pytest.raises(SlotNotOffered):
        book(at(2027, 3, 24, 18))
    with pytest.raises(SlotNotOffered):
        book(at(2027, 3, 23, 20))  # 20:00-21:30 runs past her hours
    assert book(at(2027, 3, 30, 19)).lesson.tutor_id == tutor_id("Anna")


def test_no_hours_means_the_profile_window_and_another_tutor_fills_the_gap():
    tutor_hours.set_tutor_hours(user("admin@lesplanner.test"), tutor_id("Anna"), [(1, 18 * 60, 21 * 60)])
    free = every_free("premium")
    assert at(2026, 12, 21, 10) in free  # Bram has no hours set: the whole window
    lesson = book(at(2026, 12, 21, 10)).lesson
    assert lesson.tutor_id == tutor_id("Bram")


def test_tutor_hours_ignore_the_buffer_but_lessons_do_not():
    only_anna()
    tutor_hours.set_tutor_hours(user("admin@lesplanner.test"), tutor_id("Anna"), [(1, 18 * 60, 21 * 60)])
    free = every_free("premium", buffer_minutes=15)
    assert at(2026, 12, 22, 18) in free  # the buffer is room between lessons, not before work


def test_tutors_set_their_own_hours_only_and_hours_are_validated():
    anna, bram = tutor_id("Anna"), tutor_id("Bram")
    tutor_hours.set_tutor_hours(
        user("anna@lesplanner.test"), anna, [(0, 9 * 60, 12 * 60), (0, 13 * 60, 17 * 60)]
    )
    with read_session() as session:
        assert [
            (h.weekday, h.start_minute, h.end_minute) for h in availability.tutor_hours(session, anna)
        ] == [
            (0, 540, 720),
            (0, 780, 1020),
        ]
    with pytest.raises(PermissionDenied):
        tutor_hours.set_tutor_hours(user("anna@lesplanner.test"), bram, [(0, 540, 720)])
    for bad in ([(7, 540, 720)], [(0, 720, 540)], [(0, 540, 1500)], [(0, 540, 720), (0, 700, 800)]):
        with pytest.raises(ValidationFailed):
            tutor_hours.set_tutor_hours(user("admin@lesplanner.test"), anna, bad)
    tutor_hours.set_tutor_hours(user("admin@lesplanner.test"), anna, [])  # back to the window
    with read_session() as session:
        assert availability.tutor_hours(session, anna) == []


def test_the_consoles_hours_text_is_parsed_per_weekday():
    assert tutor_hours.parse_hours_text("9:00-12:00, 13-17") == [(540, 720), (780, 1020)]
    assert tutor_hours.parse_hours_text(" ") == []
    assert tutor_hours.hours_text([(540, 720), (1080, 1440)]) == "09:00-12:00, 18:00-24:00"
    for bad in ("9-", "12:00-09:00", "9:75-10:00", "25-26"):
        with pytest.raises(ValidationFailed):
            tutor_hours.parse_hours_text(bad)
    anna = tutor_id("Anna")
    tutor_hours.set_tutor_week(user("anna@lesplanner.test"), anna, {1: "18:00-21:00", 3: ""})
    with read_session() as session:
        assert [
            (h.weekday, h.start_minute, h.end_minute) for h in availability.tutor_hours(session, anna)
        ] == [(1, 1080, 1260)]
    with pytest.raises(ValidationFailed, match="Wednesday"):
        tutor_hours.set_tutor_week(user("anna@lesplanner.test"), anna, {2: "avond"})


def test_the_week_view_names_closures_and_shows_the_hours_outside_work():
    anna = tutor_id("Anna")
    tutor_hours.set_tutor_hours(user("admin@lesplanner.test"), anna, [(1, 18 * 60, 21 * 60)])
    with read_session() as session:
        week = week_calendar(session, "premium", anna, date(2026, 12, 21), AMS, at(2026, 12, 20, 9))
    assert [(c.name, c.start, c.end) for c in week.closures] == [
        ("Eerste kerstdag", at(2026, 12, 25), at(2026, 12, 26)),
        ("Tweede kerstdag", at(2026, 12, 26), at(2026, 12, 27)),
    ]
    assert (at(2026, 12, 22, 0), at(2026, 12, 22, 18)) in week.off_hours
    assert {s.astimezone(AMS).hour for s, _ in week.free} == {18, 19}
