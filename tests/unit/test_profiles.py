"""Specification of planning profiles (core/profiles.py): validation that names the wrong field,
the seed defaults, looking profiles up, and which profile a segment gets."""

from __future__ import annotations

import pytest
from sqlmodel import select

from core.db import read_session, write_session
from core.errors import InvalidProfile, UnknownProfile
from core.models import PlanningProfile, SegmentProfile
from core.profiles import (
    SEED_PROFILES,
    SEED_SEGMENT_PROFILES,
    get_profile,
    list_profiles,
    profile_for_segment,
    seed_defaults,
    validate_profile,
)

VALID = {"name": "evening", **SEED_PROFILES["existing"]}


# --- validation --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        pytest.param({"earliest_hour": 21, "latest_hour": 21}, "earliest_hour", id="earliest == latest"),
        pytest.param({"earliest_hour": 22, "latest_hour": 21}, "earliest_hour", id="earliest > latest"),
        pytest.param({"latest_hour": 25}, "latest_hour", id="latest after 24"),
        pytest.param({"latest_hour": 0, "earliest_hour": 0}, "latest_hour", id="latest 0"),
        pytest.param({"earliest_hour": -1}, "earliest_hour", id="negative earliest"),
        pytest.param({"earliest_hour": 24, "latest_hour": 24}, "earliest_hour", id="earliest 24"),
        pytest.param(
            {"earliest_hour": 10, "latest_hour": 11, "duration_minutes": 90},
            "duration_minutes",
            id="lesson longer than the window",
        ),
        pytest.param({"duration_minutes": 10}, "duration_minutes", id="duration too short"),
        pytest.param({"duration_minutes": 0}, "duration_minutes", id="duration zero"),
        pytest.param({"duration_minutes": 60.0}, "duration_minutes", id="duration float"),
        pytest.param({"duration_minutes": "60"}, "duration_minutes", id="duration text"),
        pytest.param({"duration_minutes": True}, "duration_minutes", id="duration bool"),
        pytest.param({"duration_minutes": None}, "duration_minutes", id="duration missing"),
        pytest.param({"allowed_weekdays": [7]}, "allowed_weekdays", id="weekday 7"),
        pytest.param({"allowed_weekdays": [-1, 2]}, "allowed_weekdays", id="weekday -1"),
        pytest.param({"allowed_weekdays": []}, "allowed_weekdays", id="empty weekdays"),
        pytest.param({"allowed_weekdays": "1,2"}, "allowed_weekdays", id="weekdays as text"),
        pytest.param({"allowed_weekdays": [1.5]}, "allowed_weekdays", id="weekday float"),
        pytest.param({"allowed_weekdays": [True]}, "allowed_weekdays", id="weekday bool"),
        pytest.param({"min_lead_minutes": -1}, "min_lead_minutes", id="negative lead"),
        pytest.param({"min_lead_minutes": 12.5}, "min_lead_minutes", id="fractional lead"),
        pytest.param({"days_ahead": -1}, "days_ahead", id="negative days ahead"),
        pytest.param({"days_ahead": 367}, "days_ahead", id="more than a year ahead"),
        pytest.param({"days_ahead": "10"}, "days_ahead", id="days ahead as text"),
        pytest.param({"slot_step_minutes": 0}, "slot_step_minutes", id="step zero"),
        pytest.param({"max_suggestions": 0}, "max_suggestions", id="no suggestions"),
        pytest.param({"buffer_minutes": -5}, "buffer_minutes", id="negative buffer"),
        pytest.param({"max_per_day": 0}, "max_per_day", id="max per day zero"),
        pytest.param({"exclude_weekends": "yes"}, "exclude_weekends", id="exclude_weekends text"),
        pytest.param({"requires_payment": 1}, "requires_payment", id="requires_payment int"),
        pytest.param({"active": None}, "active", id="active None"),
        pytest.param({"name": "bad name!"}, "name", id="name with spaces"),
        pytest.param({"name": ""}, "name", id="empty name"),
        pytest.param({"name": "x" * 41}, "name", id="name too long"),
        pytest.param({"reminder_hours": [0]}, "reminder_hours", id="reminder at the start"),
        pytest.param({"reminder_hours": [24, 24 * 15]}, "reminder_hours", id="reminder over two weeks ahead"),
        pytest.param({"reminder_hours": [1, 2, 3, 4]}, "reminder_hours", id="four reminders"),
        pytest.param({"reminder_hours": "24"}, "reminder_hours", id="reminder hours as text"),
        pytest.param({"public_holidays": "yes"}, "public_holidays", id="public holidays text"),
        pytest.param({"school_holidays": "oost"}, "school_holidays", id="unknown school region"),
    ],
)
def test_invalid_profile_is_refused_naming_the_field(overrides, field):
    with pytest.raises(InvalidProfile) as caught:
        validate_profile({**VALID, **overrides})
    assert caught.value.field == field
    assert str(caught.value).startswith(f"{field}:")


def test_duration_that_does_not_fit_says_which_window():
    with pytest.raises(InvalidProfile, match="90-minute lesson does not fit the 10:00-11:00 window"):
        validate_profile({**VALID, "earliest_hour": 10, "latest_hour": 11, "duration_minutes": 90})


@pytest.mark.parametrize(
    "overrides",
    [
        pytest.param({}, id="the existing seed"),
        pytest.param({"earliest_hour": 0, "latest_hour": 24}, id="whole day"),
        pytest.param({"earliest_hour": 10, "latest_hour": 11, "duration_minutes": 60}, id="exact fit"),
        pytest.param({"min_lead_minutes": 0, "days_ahead": 0}, id="today, no lead"),
        pytest.param({"max_per_day": None}, id="no daily cap"),
        pytest.param({"max_per_day": 3, "buffer_minutes": 15, "slot_step_minutes": 30}, id="all knobs"),
        pytest.param({"reminder_hours": [2, 48]}, id="two reminders"),
        pytest.param({"reminder_hours": []}, id="no reminders"),
        pytest.param({"public_holidays": False, "school_holidays": "zuid"}, id="school holidays, not public"),
    ],
)
def test_valid_profiles_pass(overrides):
    cleaned = validate_profile({**VALID, **overrides})
    assert {k: cleaned[k] for k in overrides} == overrides


def test_validation_fills_defaults_and_tidies_weekdays():
    values = {k: v for k, v in VALID.items() if k != "max_suggestions"}
    cleaned = validate_profile({**values, "allowed_weekdays": [6, 5, 5]})
    assert cleaned["allowed_weekdays"] == [5, 6]
    assert cleaned["slot_step_minutes"] == 60
    assert cleaned["max_suggestions"] == 6
    assert cleaned["buffer_minutes"] == 0


@pytest.mark.parametrize("name", list(SEED_PROFILES))
def test_every_seed_profile_is_valid(name):
    validate_profile({"name": name, **SEED_PROFILES[name]})


# --- the seed defaults ------------------------------------------------------------------------

SEED_TABLE = [
    # name, duration, earliest, latest, lead, days ahead, exclude weekends, weekdays, suggestions
    ("new", 60, 10, 20, 720, 10, True, None, 6),
    ("existing", 60, 9, 21, 360, 14, True, None, 6),
    ("weekend", 60, 10, 18, 180, 7, False, [5, 6], 6),
    ("premium", 90, 8, 22, 240, 21, False, None, 15),
]


@pytest.mark.parametrize(
    ("name", "duration", "earliest", "latest", "lead", "days", "no_weekends", "weekdays", "suggestions"),
    SEED_TABLE,
)
def test_seed_defaults_are_the_seeds_profiles(
    engine, name, duration, earliest, latest, lead, days, no_weekends, weekdays, suggestions
):
    with read_session() as session:
        p = get_profile(session, name)
    assert (
        p.duration_minutes,
        p.earliest_hour,
        p.latest_hour,
        p.min_lead_minutes,
        p.days_ahead,
        p.exclude_weekends,
        p.allowed_weekdays,
        p.max_suggestions,
    ) == (duration, earliest, latest, lead, days, no_weekends, weekdays, suggestions)
    # two a day spread the six suggestions over days; a weekend has two days, so three a day
    assert (p.slot_step_minutes, p.buffer_minutes, p.max_per_day, p.requires_payment, p.active) == (
        60,
        0,
        3 if name == "weekend" else 2,
        True,
        True,
    )


def test_seed_maps_each_segment_to_its_profile(engine):
    with read_session() as session:
        mapping = {row.segment: row.profile_name for row in session.exec(select(SegmentProfile))}
    assert mapping == {
        "new": "new",
        "existing": "existing",
        "weekend": "weekend",
        "returning_broadcast": "existing",
    }
    assert mapping == SEED_SEGMENT_PROFILES


def test_seeding_again_never_overwrites_an_admins_edit(engine):
    with write_session() as session:
        profile = session.get(PlanningProfile, "existing")
        profile.earliest_hour = 8
        profile.max_suggestions = 10
        session.get(SegmentProfile, "returning_broadcast").profile_name = "premium"
    with write_session() as session:
        seed_defaults(session)
    with read_session() as session:
        assert session.get(PlanningProfile, "existing").earliest_hour == 8
        assert session.get(PlanningProfile, "existing").max_suggestions == 10
        assert profile_for_segment(session, "returning_broadcast") == "premium"


def test_seeding_restores_a_deleted_default_and_nothing_more(engine):
    with write_session() as session:
        session.delete(session.get(SegmentProfile, "weekend"))
    with write_session() as session:
        session.delete(session.get(PlanningProfile, "weekend"))
    with write_session() as session:
        seed_defaults(session)
        seed_defaults(session)
    with read_session() as session:
        assert [p.name for p in list_profiles(session)] == ["existing", "new", "premium", "weekend"]
        assert profile_for_segment(session, "weekend") == "weekend"


# --- looking profiles up ----------------------------------------------------------------------


def test_unknown_profile_is_refused_listing_the_known_ones(engine):
    with read_session() as session, pytest.raises(UnknownProfile) as caught:
        get_profile(session, "vip")
    assert "'vip'" in caught.value.message
    assert caught.value.message.endswith("Known profiles: existing, new, premium, weekend.")


def test_inactive_profile_is_refused_and_not_listed_as_known(engine):
    with write_session() as session:
        session.get(PlanningProfile, "weekend").active = False
    with read_session() as session:
        with pytest.raises(UnknownProfile) as caught:
            get_profile(session, "weekend")
        assert caught.value.message.endswith("Known profiles: existing, new, premium.")
        assert [p.name for p in list_profiles(session)] == ["existing", "new", "premium"]
        assert [p.name for p in list_profiles(session, include_inactive=True)] == [
            "existing",
            "new",
            "premium",
            "weekend",
        ]


# --- segment → profile ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("segment", "profile"),
    [("new", "new"), ("existing", "existing"), ("weekend", "weekend"), ("returning_broadcast", "existing")],
)
def test_segment_gets_its_mapped_profile(engine, segment, profile):
    with read_session() as session:
        assert profile_for_segment(session, segment) == profile


def test_admin_can_send_returning_broadcast_to_another_profile(engine):
    with write_session() as session:
        session.get(SegmentProfile, "returning_broadcast").profile_name = "premium"
    with read_session() as session:
        assert profile_for_segment(session, "returning_broadcast") == "premium"
        assert profile_for_segment(session, "existing") == "existing"


def test_segment_without_a_mapping_row_falls_back_to_the_seed(engine):
    with write_session() as session:
        session.delete(session.get(SegmentProfile, "returning_broadcast"))
    with read_session() as session:
        assert profile_for_segment(session, "returning_broadcast") == "existing"
        assert profile_for_segment(session, "something_else") == "new"
