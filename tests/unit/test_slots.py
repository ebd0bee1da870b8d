"""Specification of the slot engine (core/slots.py): which start times a planning profile offers.

The reference moment for most tests is Monday 30 November 2026, 09:00 in Amsterdam (UTC+1).
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, time, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from core.errors import ValidationFailed
from core.models import PlanningProfile
from core.profiles import SEED_PROFILES, validate_profile
from core.slots import (
    Slot,
    choose_for_day,
    generate_slots,
    is_offered,
    local_wall_time,
    merge_intervals,
    require_aware,
    spread_suggestions,
    subtract_interval,
    wall_clock_grid,
    window_bounds,
)
from tests.conftest import AMS

MONDAY_9 = datetime(2026, 11, 30, 9, 0, tzinfo=AMS)
EVERYTHING = 100_000  # a `limit` that never cuts


def make_profile(base: str = "existing", **overrides) -> PlanningProfile:
    values = {**SEED_PROFILES[base], **overrides}
    return PlanningProfile(name=base, **values)


def local(dt: datetime) -> datetime:
    return dt.astimezone(AMS)


def at(y: int, m: int, d: int, hh: int = 0, mm: int = 0) -> datetime:
    return datetime(y, m, d, hh, mm, tzinfo=AMS)


def slots(profile, now=MONDAY_9, busy=(), limit=None, every=False) -> list[Slot]:
    """The suggestions, or with `every` every free slot (the console's week view)."""
    if every:
        return generate_slots(profile, now, list(busy), AMS, limit=EVERYTHING, every=True)
    return generate_slots(profile, now, list(busy), AMS, limit=limit)


def local_starts(result: list[Slot]) -> list[datetime]:
    return [local(s.start) for s in result]


# --- the seed profiles ------------------------------------------------------------------------

SEED_EXPECTATIONS = [
    # profile, first slot (local), last slot (local), weekdays seen, number of slots in the horizon
    pytest.param("new", at(2026, 12, 1, 10), at(2026, 12, 10, 19), {0, 1, 2, 3, 4}, 80, id="new"),
    pytest.param("existing", at(2026, 11, 30, 15), at(2026, 12, 14, 20), {0, 1, 2, 3, 4}, 126, id="existing"),
    pytest.param("weekend", at(2026, 12, 5, 10), at(2026, 12, 6, 17), {5, 6}, 16, id="weekend"),
    pytest.param("premium", at(2026, 11, 30, 13), at(2026, 12, 21, 20), set(range(7)), 281, id="premium"),
]


@pytest.mark.parametrize(("name", "first", "last", "weekdays", "count"), SEED_EXPECTATIONS)
def test_seed_profile_offers_its_window_lead_time_and_weekdays(name, first, last, weekdays, count):
    values = SEED_PROFILES[name]
    result = slots(make_profile(name), every=True)

    starts = local_starts(result)
    assert starts[0] == first
    assert starts[-1] == last
    assert len(result) == count
    assert {s.weekday() for s in starts} == weekdays
    for slot in result:
        start, end = slot.local(AMS)
        assert values["earliest_hour"] <= start.hour
        assert end - start == timedelta(minutes=values["duration_minutes"])
        assert (end.hour, end.minute) <= (values["latest_hour"], 0)
        assert slot.start >= MONDAY_9 + timedelta(minutes=values["min_lead_minutes"])


@pytest.mark.parametrize("name", list(SEED_PROFILES))
def test_seed_profile_suggests_its_first_max_suggestions_slots(name):
    everything = slots(make_profile(name), every=True)
    suggested = slots(make_profile(name))
    assert len(suggested) == SEED_PROFILES[name]["max_suggestions"]
    assert set(suggested) <= set(everything)
    assert suggested == sorted(suggested)


@pytest.mark.parametrize("name", list(SEED_PROFILES))
def test_seed_profiles_cap_suggestions_per_day(name):
    cap = 3 if name == "weekend" else 2  # one weekend of two days still gives six to choose from
    assert SEED_PROFILES[name]["max_per_day"] == cap
    per_day = Counter(local(s.start).date() for s in slots(make_profile(name)))
    assert max(per_day.values()) == cap
    assert len(per_day) == -(-SEED_PROFILES[name]["max_suggestions"] // cap)


def test_weekend_profile_only_offers_saturday_and_sunday():
    starts = local_starts(slots(make_profile("weekend"), every=True))
    assert starts
    assert {s.strftime("%A") for s in starts} == {"Saturday", "Sunday"}


def test_premium_lessons_last_ninety_minutes_and_end_by_22():
    result = slots(make_profile("premium"), every=True)
    assert all(s.end - s.start == timedelta(minutes=90) for s in result)
    assert max(local(s.end).time() for s in result) == time(21, 30)  # 20:00 + 90 min; 21:00 won't fit


# --- lead time and horizon ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "first"),
    [
        pytest.param(at(2026, 11, 30, 9, 0), at(2026, 11, 30, 15), id="start exactly at now+lead"),
        pytest.param(at(2026, 11, 30, 9, 1), at(2026, 11, 30, 16), id="one minute short of lead"),
    ],
)
def test_lead_time_boundary_is_inclusive(now, first):
    profile = make_profile("existing")  # lead 360 minutes
    assert local_starts(slots(profile, now=now))[0] == first
    assert is_offered(profile, now, at(2026, 11, 30, 15), AMS) == (first == at(2026, 11, 30, 15))


def test_last_local_date_of_the_horizon_is_included_and_the_day_after_is_not():
    profile = make_profile("existing", days_ahead=14)  # Monday 30 Nov + 14 days = Monday 14 Dec
    starts = local_starts(slots(profile, every=True))
    assert max(s.date() for s in starts) == date(2026, 12, 14)
    assert is_offered(profile, MONDAY_9, at(2026, 12, 14, 20), AMS)
    assert not is_offered(profile, MONDAY_9, at(2026, 12, 15, 9), AMS)


def test_days_ahead_zero_offers_only_today():
    starts = local_starts(slots(make_profile("existing", days_ahead=0), every=True))
    assert {s.date() for s in starts} == {date(2026, 11, 30)}


# --- weekdays -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exclude_weekends", "allowed_weekdays", "expected"),
    [
        pytest.param(True, None, {0, 1, 2, 3, 4}, id="exclude weekends"),
        pytest.param(False, None, set(range(7)), id="all days"),
        pytest.param(True, [0, 2], {0, 2}, id="Monday and Wednesday"),
        pytest.param(True, [5], {5}, id="allowed weekdays win over exclude_weekends"),
        pytest.param(False, [6], {6}, id="Sunday only"),
    ],
)
def test_weekday_rules(exclude_weekends, allowed_weekdays, expected):
    profile = make_profile(
        "existing", exclude_weekends=exclude_weekends, allowed_weekdays=allowed_weekdays, days_ahead=13
    )
    starts = local_starts(slots(profile, every=True))
    assert {s.weekday() for s in starts} == expected


# --- busy time, half-open intervals and buffers ------------------------------------------------

TUESDAY = date(2026, 12, 1)


def tue(hh: int, mm: int = 0) -> datetime:
    return at(2026, 12, 1, hh, mm)


def tuesday_starts(profile, busy) -> list[time]:
    return [s.time() for s in local_starts(slots(profile, busy=busy, every=True)) if s.date() == TUESDAY]


@pytest.mark.parametrize(
    ("busy", "blocked"),
    [
        pytest.param([(tue(10), tue(11))], {time(10)}, id="busy ending 11:00 leaves 11:00 free"),
        pytest.param([(tue(10), tue(11, 1))], {time(10), time(11)}, id="busy ending 11:01 blocks 11:00"),
        pytest.param([(tue(12), tue(13))], {time(12)}, id="busy starting 12:00 leaves 11:00 free"),
        pytest.param([(tue(11, 59), tue(12, 1))], {time(11), time(12)}, id="two minutes block two slots"),
        pytest.param([(tue(13, 30), tue(13, 45))], {time(13)}, id="short block inside a slot"),
        pytest.param([(tue(8), tue(22))], {time(h) for h in range(9, 21)}, id="whole day"),
    ],
)
def test_busy_time_is_half_open(busy, blocked):
    profile = make_profile("existing")
    free = set(tuesday_starts(profile, []))
    assert set(tuesday_starts(profile, busy)) == free - blocked


def test_busy_in_another_utc_offset_is_the_same_instant():
    profile = make_profile("existing")
    busy_utc = [(tue(10).astimezone(UTC), tue(11).astimezone(UTC))]
    busy_plus5 = [
        (tue(10).astimezone(timezone(timedelta(hours=5))), tue(11).astimezone(timezone(timedelta(hours=5))))
    ]
    assert tuesday_starts(profile, busy_utc) == tuesday_starts(profile, busy_plus5)
    assert time(10) not in tuesday_starts(profile, busy_utc)


@pytest.mark.parametrize(
    ("buffer", "busy", "blocked"),
    [
        pytest.param(0, [(tue(11), tue(12))], {time(11)}, id="no buffer: neighbours free"),
        pytest.param(
            15, [(tue(11), tue(12))], {time(10), time(11), time(12)}, id="buffer 15 blocks neighbours"
        ),
        pytest.param(15, [(tue(11, 15), tue(11, 45))], {time(11)}, id="buffer 15, busy with 15 min room"),
        pytest.param(15, [(tue(11, 14), tue(11, 45))], {time(10), time(11)}, id="buffer 15, 14 min room"),
        pytest.param(60, [(tue(13), tue(14))], {time(12), time(13), time(14)}, id="buffer of an hour"),
    ],
)
def test_buffer_keeps_distance_from_busy_time(buffer, busy, blocked):
    profile = make_profile("existing", buffer_minutes=buffer)
    free = set(tuesday_starts(profile, []))
    assert set(tuesday_starts(profile, busy)) == free - blocked


def test_busy_intervals_in_any_order_and_overlapping_are_handled():
    profile = make_profile("existing")
    busy = [(tue(15), tue(16)), (tue(10), tue(12)), (tue(11), tue(11, 30)), (tue(10, 30), tue(10, 45))]
    assert set(tuesday_starts(profile, [])) - set(tuesday_starts(profile, busy)) == {
        time(10),
        time(11),
        time(15),
    }


def test_an_empty_or_reversed_busy_interval_blocks_nothing():
    profile = make_profile("existing")
    busy = [(tue(10, 30), tue(10, 30)), (tue(12, 45), tue(12, 15))]
    assert tuesday_starts(profile, busy) == tuesday_starts(profile, [])


# --- caps ----------------------------------------------------------------------------------------


def test_max_per_day_caps_each_local_date_and_prefers_different_parts_of_the_day():
    profile = make_profile("existing", max_per_day=2)
    result = slots(profile)
    per_day = Counter(local(s.start).date() for s in result)
    assert set(per_day.values()) == {2}
    # Monday from 15:00 (lead time): afternoon, then evening; Tuesday: morning, then afternoon
    assert local_starts(result)[:4] == [at(2026, 11, 30, 15), at(2026, 11, 30, 17), tue(9), tue(12)]


def test_max_per_day_skips_busy_slots_before_counting():
    profile = make_profile("existing", max_per_day=2)
    starts = [s.time() for s in local_starts(slots(profile, busy=[(tue(9), tue(11))])) if s.date() == TUESDAY]
    assert starts == [time(11), time(13)]


# --- what the customer is offered: spread over days and parts of the day ----------------------

WEEK_END = at(2026, 12, 15)


def free_only(*windows: tuple[datetime, datetime]) -> list[tuple[datetime, datetime]]:
    """Busy time covering the whole horizon except `windows` (sorted, local)."""
    busy, cursor = [], MONDAY_9
    for s, e in windows:
        busy.append((cursor, s))
        cursor = e
    busy.append((cursor, WEEK_END))
    return busy


def test_six_suggestions_span_three_days_when_three_days_have_free_time():
    busy = free_only(
        (tue(9), tue(21)),
        (at(2026, 12, 2, 14), at(2026, 12, 2, 16)),
        (at(2026, 12, 3, 18), at(2026, 12, 3, 21)),
    )
    result = slots(make_profile("existing"), busy=busy)
    assert len(result) == 6
    assert len({local(s.start).date() for s in result}) >= 3


def test_premium_fifteen_suggestions_spread_over_days_and_parts_of_the_day():
    result = slots(make_profile("premium"))
    assert len(result) == 15
    days: dict[date, list[datetime]] = {}
    for start in local_starts(result):
        days.setdefault(start.date(), []).append(start)
    assert len(days) >= 8
    for starts in days.values():
        parts = {0 if s.hour < 12 else 1 if s.hour < 17 else 2 for s in starts}
        assert len(parts) == len(starts), starts


def test_same_input_gives_the_same_suggestions():
    busy = [(tue(10), tue(11)), (tue(14), tue(16)), (at(2026, 12, 2, 9), at(2026, 12, 2, 13))]
    first = slots(make_profile("premium"), busy=busy)
    again = slots(make_profile("premium"), busy=list(reversed(busy)))
    assert first == again == slots(make_profile("premium"), busy=busy)


@pytest.mark.parametrize(
    ("free", "chosen"),
    [
        pytest.param([(9, 12)], [time(9), time(11)], id="morning only: not back to back"),
        pytest.param([(9, 12), (15, 16)], [time(9), time(15)], id="morning and afternoon"),
        pytest.param([(11, 13)], [time(11), time(12)], id="only two adjacent hours: both"),
        pytest.param([(16, 19)], [time(16), time(18)], id="afternoon and evening, not back to back"),
        pytest.param([(9, 10), (10, 11), (18, 21)], [time(9), time(18)], id="morning and evening"),
    ],
)
def test_within_a_day_suggestions_are_not_adjacent_when_a_free_slot_further_away_exists(free, chosen):
    busy = free_only(*[(tue(a), tue(b)) for a, b in free])
    assert [local(s.start).time() for s in slots(make_profile("existing"), busy=busy)] == chosen


def test_the_week_view_shows_every_free_slot_whatever_max_per_day_says():
    profile = make_profile("existing", max_per_day=1)
    every = slots(profile, every=True)
    assert len([s for s in every if local(s.start).date() == TUESDAY]) == 12
    assert set(slots(profile, limit=EVERYTHING)) <= set(every)


@pytest.mark.parametrize("max_suggestions", [1, 3, 6, 15])
def test_never_more_than_max_suggestions(max_suggestions):
    profile = make_profile("premium", max_suggestions=max_suggestions)
    result = slots(profile)
    assert len(result) == max_suggestions
    assert result == slots(profile, limit=EVERYTHING)[:max_suggestions]
    assert set(result) <= set(slots(profile, every=True))


@pytest.mark.parametrize("limit", [0, -1])
def test_a_limit_of_nothing_offers_nothing(limit):
    assert slots(make_profile("premium"), limit=limit) == []


def test_limit_overrides_max_suggestions_for_the_week_view():
    assert len(slots(make_profile("existing"), limit=20)) == 20


def test_latest_hour_24_offers_a_slot_ending_at_midnight():
    profile = make_profile(
        "existing", earliest_hour=22, latest_hour=24, min_lead_minutes=0, days_ahead=1, exclude_weekends=False
    )
    result = slots(profile, every=True)
    assert [(s.local(AMS)[0].isoformat(), s.local(AMS)[1].isoformat()) for s in result] == [
        ("2026-11-30T22:00:00+01:00", "2026-11-30T23:00:00+01:00"),
        ("2026-11-30T23:00:00+01:00", "2026-12-01T00:00:00+01:00"),
        ("2026-12-01T22:00:00+01:00", "2026-12-01T23:00:00+01:00"),
        ("2026-12-01T23:00:00+01:00", "2026-12-02T00:00:00+01:00"),
    ]
    assert is_offered(profile, MONDAY_9, at(2026, 12, 1, 23), AMS)


def test_slot_step_offers_half_hours():
    profile = make_profile("existing", slot_step_minutes=30)
    assert tuesday_starts(profile, [])[:3] == [time(9), time(9, 30), time(10)]
    assert tuesday_starts(profile, [])[-1] == time(20)  # 20:30 + 60 min would pass 21:00


# --- daylight saving time in Europe/Amsterdam ------------------------------------------------

SPRING_FORWARD = [date(2026, 3, 29), date(2027, 3, 28)]
FALL_BACK = [date(2026, 10, 25), date(2027, 10, 31)]
DST_DAYS = SPRING_FORWARD + FALL_BACK


def every_day(**overrides) -> PlanningProfile:
    values = dict(exclude_weekends=False, allowed_weekdays=None, min_lead_minutes=0)
    values.update(overrides)
    return make_profile("existing", **values)


@pytest.mark.parametrize("change_day", DST_DAYS, ids=str)
def test_ten_oclock_stays_ten_oclock_across_a_dst_change(change_day):
    profile = every_day(earliest_hour=10, latest_hour=11, days_ahead=3)
    now = datetime.combine(change_day - timedelta(days=2), time(0), tzinfo=AMS)
    result = slots(profile, now=now, every=True)

    assert [local(s.start).time() for s in result] == [time(10)] * 4
    assert [local(s.start).date() for s in result] == [change_day + timedelta(days=d) for d in (-2, -1, 0, 1)]
    before, after = result[1].start.astimezone(AMS), result[2].start.astimezone(AMS)
    assert before.utcoffset() != after.utcoffset()
    # the UTC hour moves, the wall clock does not
    assert result[1].start.astimezone(UTC).hour != result[2].start.astimezone(UTC).hour


@pytest.mark.parametrize(
    ("change_day", "first_local"),
    [pytest.param(d, time(11), id=f"spring {d}") for d in SPRING_FORWARD]
    + [pytest.param(d, time(9), id=f"fall {d}") for d in FALL_BACK],
)
def test_lead_time_counts_real_minutes_across_a_dst_change(change_day, first_local):
    # Saturday 22:00 + 720 real minutes is Sunday 11:00 after spring forward, 09:00 after fall back
    profile = every_day(earliest_hour=8, latest_hour=20, min_lead_minutes=720, days_ahead=2)
    now = datetime.combine(change_day - timedelta(days=1), time(22), tzinfo=AMS)
    first = slots(profile, now=now)[0]
    assert first.start - now == timedelta(hours=12)
    assert local(first.start).date() == change_day
    assert local(first.start).time() == first_local


@pytest.mark.parametrize("change_day", SPRING_FORWARD, ids=str)
def test_nonexistent_two_oclock_is_skipped_on_spring_forward_day(change_day):
    profile = every_day(earliest_hour=0, latest_hour=6, days_ahead=0)
    now = datetime.combine(change_day, time(0), tzinfo=AMS)
    result = slots(profile, now=now, every=True)
    assert [local(s.start).strftime("%H:%M%z") for s in result] == [
        "00:00+0100",
        "01:00+0100",
        "03:00+0200",
        "04:00+0200",
        "05:00+0200",
    ]


def test_latest_hour_in_a_two_hour_dst_gap_closes_at_the_first_hour_that_exists():
    # Antarctica/Troll jumps from 01:00 +00 to 03:00 +02: neither 01:00 nor the hour after it exist.
    # The day used to have no end (None) and comparing a slot's end with it raised TypeError.
    troll = ZoneInfo("Antarctica/Troll")
    day = date(2026, 3, 29)
    profile = every_day(earliest_hour=0, latest_hour=1, days_ahead=0)
    now = datetime.combine(day, time(0), tzinfo=troll)
    result = generate_slots(profile, now, [], troll, every=True)
    assert [s.start.astimezone(troll).strftime("%H:%M%z") for s in result] == ["00:00+0000"]
    assert result[0].end.astimezone(troll).strftime("%H:%M%z") == "03:00+0200"
    assert is_offered(profile, now, result[0].start, troll)


@pytest.mark.parametrize("change_day", FALL_BACK, ids=str)
def test_ambiguous_two_oclock_is_offered_once_at_its_first_occurrence_on_fall_back_day(change_day):
    profile = every_day(earliest_hour=0, latest_hour=6, days_ahead=0)
    now = datetime.combine(change_day, time(0), tzinfo=AMS)
    result = slots(profile, now=now, every=True)
    assert [local(s.start).strftime("%H:%M%z") for s in result] == [
        "00:00+0200",
        "01:00+0200",
        "02:00+0200",
        "03:00+0100",
        "04:00+0100",
        "05:00+0100",
    ]
    second_two = datetime.combine(change_day, time(2), tzinfo=AMS).replace(fold=1)
    assert not is_offered(profile, now, second_two, AMS)
    assert is_offered(profile, now, datetime.combine(change_day, time(2), tzinfo=AMS), AMS)


@pytest.mark.parametrize(
    ("change_day", "duration", "ends"),
    [
        pytest.param(FALL_BACK[0], 60, "02:30+0200", id="fall back 60 min"),
        pytest.param(FALL_BACK[0], 90, "02:00+0100", id="fall back 90 min ends in the repeated hour"),
        pytest.param(FALL_BACK[1], 60, "02:30+0200", id="fall back 2027"),
        pytest.param(SPRING_FORWARD[0], 60, "03:30+0200", id="spring forward 60 min"),
        pytest.param(SPRING_FORWARD[1], 90, "04:00+0200", id="spring forward 2027 90 min"),
    ],
)
def test_durations_are_real_elapsed_minutes_through_the_change(change_day, duration, ends):
    profile = every_day(
        earliest_hour=1, latest_hour=6, days_ahead=0, slot_step_minutes=30, duration_minutes=duration
    )
    now = datetime.combine(change_day, time(0), tzinfo=AMS)
    result = slots(profile, now=now, every=True)
    half_past_one = next(s for s in result if local(s.start).time() == time(1, 30))
    assert half_past_one.end - half_past_one.start == timedelta(minutes=duration)
    assert local(half_past_one.end).strftime("%H:%M%z") == ends


# --- subtract_interval: busy time minus a lesson's own event -------------------------------------


@pytest.mark.parametrize(
    ("interval", "cut", "pieces"),
    [
        pytest.param((tue(10), tue(12)), (tue(13), tue(14)), [(tue(10), tue(12))], id="cut after it"),
        pytest.param((tue(10), tue(12)), (tue(8), tue(9)), [(tue(10), tue(12))], id="cut before it"),
        pytest.param((tue(10), tue(12)), (tue(12), tue(13)), [(tue(10), tue(12))], id="cut touching its end"),
        pytest.param(
            (tue(10), tue(12)), (tue(9), tue(10)), [(tue(10), tue(12))], id="cut touching its start"
        ),
        pytest.param((tue(10), tue(12)), (tue(10), tue(12)), [], id="the same interval"),
        pytest.param((tue(10), tue(12)), (tue(9), tue(13)), [], id="cut covering it"),
        pytest.param((tue(10), tue(12)), (tue(10), tue(11)), [(tue(11), tue(12))], id="cut at its start"),
        pytest.param((tue(10), tue(12)), (tue(11), tue(12)), [(tue(10), tue(11))], id="cut at its end"),
        pytest.param((tue(10), tue(12)), (tue(9), tue(11)), [(tue(11), tue(12))], id="cut over its start"),
        pytest.param(
            (tue(10), tue(12)), (tue(11, 30), tue(13)), [(tue(10), tue(11, 30))], id="cut over its end"
        ),
        pytest.param(
            (tue(10), tue(12)),
            (tue(10, 30), tue(11)),
            [(tue(10), tue(10, 30)), (tue(11), tue(12))],
            id="cut in the middle leaves two pieces",
        ),
        pytest.param((tue(10), tue(12)), (tue(11), tue(11)), [(tue(10), tue(12))], id="empty cut"),
        pytest.param((tue(10), tue(10)), (tue(9), tue(11)), [], id="empty interval"),
        pytest.param((tue(10), tue(10)), (tue(13), tue(14)), [], id="empty interval, cut elsewhere"),
    ],
)
def test_subtract_interval_leaves_the_parts_outside_the_cut(interval, cut, pieces):
    assert subtract_interval(interval, cut) == pieces


@pytest.mark.parametrize(
    ("intervals", "merged"),
    [
        pytest.param(
            [(tue(10), tue(11)), (tue(11), tue(12))], [(tue(10), tue(12))], id="touching ones merge"
        ),
        pytest.param(
            [(tue(10), tue(12)), (tue(11), tue(13))], [(tue(10), tue(13))], id="overlapping ones merge"
        ),
        pytest.param([(tue(10), tue(13)), (tue(11), tue(12))], [(tue(10), tue(13))], id="one inside another"),
        pytest.param(
            [(tue(9), tue(9)), (tue(11), tue(12)), (tue(13), tue(12))],
            [(tue(11), tue(12))],
            id="empty and reversed ones are dropped, the rest kept",
        ),
        pytest.param(
            [(tue(13), tue(14)), (tue(10), tue(11))], [(tue(10), tue(11)), (tue(13), tue(14))], id="sorted"
        ),
    ],
)
def test_merge_intervals_sorts_and_merges_busy_time(intervals, merged):
    # The calendar backends hand their busy time through this (core/calendars/base.py).
    assert merge_intervals(intervals) == merged


def test_subtract_interval_compares_instants_not_wall_clocks():
    utc = (tue(10).astimezone(UTC), tue(12).astimezone(UTC))
    assert subtract_interval(utc, (tue(10), tue(11))) == [(tue(11).astimezone(UTC), tue(12).astimezone(UTC))]


# --- window_bounds: the range busy time is fetched for --------------------------------------------
# A slot is free when [start - buffer, end + buffer) is free, so busy time that far around the
# first and the last slot has to be fetched too: the bounds reach one buffer beyond the window.


def test_window_bounds_reach_one_buffer_before_a_first_slot_at_midnight():
    profile = every_day(earliest_hour=0, latest_hour=8, min_lead_minutes=0, days_ahead=1, buffer_minutes=30)
    now = at(2026, 11, 30, 0, 0)
    first = slots(profile, now=now, every=True)[0]
    assert local(first.start) == at(2026, 11, 30, 0, 0)

    fetch_from, _ = window_bounds(profile, now, AMS)

    assert fetch_from == at(2026, 11, 29, 23, 30)


def test_window_bounds_reach_one_buffer_after_a_last_slot_ending_at_midnight():
    profile = every_day(earliest_hour=16, latest_hour=24, days_ahead=1, buffer_minutes=30)
    last = slots(profile, every=True)[-1]
    assert local(last.end) == at(2026, 12, 2, 0, 0)  # Tuesday 23:00-24:00

    _, fetch_until = window_bounds(profile, MONDAY_9, AMS)

    assert fetch_until == at(2026, 12, 2, 0, 30)


def test_window_bounds_without_a_buffer_are_the_local_days_of_the_horizon():
    profile = make_profile("existing", days_ahead=14)
    assert window_bounds(profile, MONDAY_9, AMS) == (at(2026, 11, 30), at(2026, 12, 15))


# --- naive datetimes are refused ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "busy", "field"),
    [
        pytest.param(datetime(2026, 11, 30, 9), [], "now", id="naive now"),
        pytest.param(MONDAY_9, [(datetime(2026, 12, 1, 10), tue(11))], "busy start", id="naive busy start"),
        pytest.param(MONDAY_9, [(tue(10), datetime(2026, 12, 1, 11))], "busy end", id="naive busy end"),
    ],
)
def test_naive_datetimes_are_refused(now, busy, field):
    # The message names what was naive: it ends up in an API answer or a calendar error.
    with pytest.raises(ValidationFailed, match=f"^{field} has no time zone offset"):
        generate_slots(make_profile("existing"), now, busy, AMS)


class _NoOffset(tzinfo):
    """A time zone that cannot say its offset: as good as none."""

    def utcoffset(self, dt):  # noqa: ANN001, ANN202
        return None


@pytest.mark.parametrize(
    ("value", "message"),
    [
        pytest.param("2026-12-01T10:00", "^datetime must be a date and time$", id="text"),
        pytest.param(
            datetime(2026, 12, 1, 10, tzinfo=_NoOffset()), "^datetime has no time zone offset", id="no offset"
        ),
    ],
)
def test_require_aware_refuses_anything_but_a_datetime_with_an_offset(value, message):
    with pytest.raises(ValidationFailed, match=message):
        require_aware(value)


def test_is_offered_refuses_a_naive_start():
    # The message names the field: the bot API passes it on as the 422's detail.
    with pytest.raises(ValidationFailed, match="^start has no time zone offset"):
        is_offered(make_profile("existing"), MONDAY_9, datetime(2026, 12, 1, 10), AMS)


@pytest.mark.parametrize(
    ("start", "offered"),
    [
        pytest.param(tue(10), True, id="on the grid"),
        pytest.param(tue(10, 30), False, id="off the hourly grid"),
        pytest.param(tue(8), False, id="before the window"),
        pytest.param(tue(20), True, id="last start that fits"),
        pytest.param(tue(21), False, id="would end after the window"),
        pytest.param(at(2026, 12, 5, 10), False, id="Saturday"),
        pytest.param(at(2026, 11, 30, 14), False, id="inside the lead time"),
        pytest.param(at(2026, 11, 29, 10), False, id="in the past"),
    ],
)
def test_is_offered_for_the_existing_profile(start, offered):
    assert is_offered(make_profile("existing"), MONDAY_9, start, AMS) is offered


@pytest.mark.parametrize(
    ("start", "offered"),
    [
        pytest.param(tue(20), True, id="ends at 21:30, inside the window"),
        pytest.param(tue(21), False, id="on the grid, but would end at 22:30"),
    ],
)
def test_is_offered_checks_that_a_long_lesson_ends_by_latest_hour_local_time(start, offered):
    # Premium: 90 minutes, ending by 22:00 in Amsterdam (not 22:00 UTC, an hour later).
    assert is_offered(make_profile("premium"), MONDAY_9, start, AMS) is offered


@pytest.mark.parametrize(
    ("step", "start", "offered"),
    [
        pytest.param(0, tue(10), True, id="no step: the hourly grid"),
        pytest.param(0, tue(10, 30), False, id="no step: not between the hours"),
        pytest.param(1, tue(10, 1), True, id="a one-minute step offers every minute"),
    ],
)
def test_is_offered_follows_the_same_grid_as_generate_slots(step, start, offered):
    profile = make_profile("existing", slot_step_minutes=step)
    assert is_offered(profile, MONDAY_9, start, AMS) is offered
    assert (
        Slot(start.astimezone(UTC), start.astimezone(UTC) + timedelta(hours=1)) in slots(profile, every=True)
    ) is offered


# --- properties -----------------------------------------------------------------------------------

BASE = datetime(2026, 1, 1, tzinfo=UTC)


@st.composite
def profiles(draw) -> PlanningProfile:
    earliest = draw(st.integers(0, 23))
    latest = draw(st.integers(earliest + 1, 24))
    window = (latest - earliest) * 60
    weekdays = draw(st.none() | st.lists(st.integers(0, 6), min_size=1, max_size=7))
    values = dict(
        name="prop",
        duration_minutes=draw(st.integers(15, min(window, 8 * 60))),
        earliest_hour=earliest,
        latest_hour=latest,
        min_lead_minutes=draw(st.integers(0, 3 * 24 * 60)),
        days_ahead=draw(st.integers(0, 30)),
        exclude_weekends=draw(st.booleans()),
        allowed_weekdays=weekdays,
        slot_step_minutes=draw(st.sampled_from([5, 10, 15, 20, 30, 45, 60, 90, 120])),
        max_suggestions=draw(st.integers(1, 200)),
        buffer_minutes=draw(st.integers(0, 240)),
        max_per_day=draw(st.none() | st.integers(1, 100)),
    )
    cleaned = validate_profile(values)  # within the limits an admin can save
    return PlanningProfile(**cleaned)


# Around the DST changes as well as anywhere in the year.
nows = st.one_of(
    st.datetimes(datetime(2026, 1, 1), datetime(2027, 12, 31), timezones=st.just(UTC)),
    st.builds(
        lambda day, minutes: datetime.combine(day, time(0), tzinfo=UTC) + timedelta(minutes=minutes),
        st.sampled_from(DST_DAYS),
        st.integers(-3 * 24 * 60, 24 * 60),
    ),
)
zones = st.sampled_from([UTC, AMS, timezone(timedelta(hours=-5)), timezone(timedelta(hours=9, minutes=30))])


@st.composite
def busy_lists(draw, now: datetime) -> list[tuple[datetime, datetime]]:
    items = draw(
        st.lists(st.tuples(st.integers(-24 * 60, 34 * 24 * 60), st.integers(1, 8 * 60), zones), max_size=40)
    )
    return [
        ((now + timedelta(minutes=o)).astimezone(z), (now + timedelta(minutes=o + n)).astimezone(z))
        for o, n, z in items
    ]


def oracle(profile: PlanningProfile, now: datetime, busy) -> list[Slot]:
    """A deliberately naive reference: every wall-clock candidate, checked one by one."""
    out: list[Slot] = []
    first_day = now.astimezone(AMS).date()
    for offset in range(profile.days_ahead + 1):
        day = first_day + timedelta(days=offset)
        if profile.allowed_weekdays:
            if day.weekday() not in profile.allowed_weekdays:
                continue
        elif profile.exclude_weekends and day.weekday() >= 5:
            continue
        close = datetime.combine(
            day + timedelta(days=profile.latest_hour // 24), time(profile.latest_hour % 24), tzinfo=AMS
        ).astimezone(UTC)
        free: list[Slot] = []
        for minutes in range(profile.earliest_hour * 60, profile.latest_hour * 60, profile.slot_step_minutes):
            wall = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=AMS)
            start = wall.astimezone(UTC)
            if start.astimezone(AMS).replace(tzinfo=None) != wall.replace(tzinfo=None):
                continue  # does not exist
            end = start + timedelta(minutes=profile.duration_minutes)
            if end > close or start < now + timedelta(minutes=profile.min_lead_minutes):
                continue
            pad = timedelta(minutes=profile.buffer_minutes)
            if any(b_start < end + pad and b_end > start - pad for b_start, b_end in busy):
                continue
            free.append(Slot(start, end))
        out.extend(oracle_choice(free, profile.max_per_day) if profile.max_per_day else free)
    return out[: profile.max_suggestions]


def oracle_choice(free: list[Slot], k: int) -> list[Slot]:
    """What the customer is offered of one day's free slots, naively: first the earliest slot of
    each part of the day (morning <12, afternoon 12-17, evening >=17) less than an hour away from
    none chosen, then in time order every slot less than an hour away from none, then the rest."""

    def part(slot: Slot) -> int:
        h = slot.start.astimezone(AMS).hour
        return 0 if h < 12 else 1 if h < 17 else 2

    def near(slot: Slot, chosen: list[Slot]) -> bool:
        hour = timedelta(hours=1)
        return any(slot.start < c.end + hour and c.start < slot.end + hour for c in chosen)

    chosen: list[Slot] = []
    for p in (0, 1, 2):
        for slot in free:
            if len(chosen) < k and part(slot) == p and not near(slot, chosen):
                chosen.append(slot)
                break
    for slot in free:
        if len(chosen) < k and slot not in chosen and not near(slot, chosen):
            chosen.append(slot)
    for slot in free:
        if len(chosen) < k and slot not in chosen:
            chosen.append(slot)
    return sorted(chosen)


PROPERTY_SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY_SETTINGS
@given(data=st.data(), profile=profiles(), now=nows)
def test_generated_slots_respect_every_rule(data, profile, now):
    busy = data.draw(busy_lists(now))
    result = generate_slots(profile, now, busy, AMS)

    assert len(result) <= profile.max_suggestions
    assert result == sorted(result)
    assert len({s.start for s in result}) == len(result)
    first_day = now.astimezone(AMS).date()
    pad = timedelta(minutes=profile.buffer_minutes)
    per_day: Counter = Counter()
    for slot in result:
        start, end = slot.local(AMS)
        assert slot.start.tzinfo is not None
        assert slot.end - slot.start == timedelta(minutes=profile.duration_minutes)
        assert slot.start >= now + timedelta(minutes=profile.min_lead_minutes)
        assert first_day <= start.date() <= first_day + timedelta(days=profile.days_ahead)
        if profile.allowed_weekdays:
            assert start.weekday() in profile.allowed_weekdays
        elif profile.exclude_weekends:
            assert start.weekday() < 5
        assert start.hour * 60 + start.minute >= profile.earliest_hour * 60
        assert (start.hour * 60 + start.minute - profile.earliest_hour * 60) % profile.slot_step_minutes == 0
        close_day = start.date() + timedelta(days=1 if profile.latest_hour == 24 else 0)
        close = datetime.combine(close_day, time(profile.latest_hour % 24), tzinfo=AMS)
        assert slot.end <= close
        for b_start, b_end in busy:
            assert not (b_start < slot.end + pad and b_end > slot.start - pad), (slot, b_start, b_end)
        per_day[start.date()] += 1
    if profile.max_per_day:
        assert max(per_day.values(), default=0) <= profile.max_per_day


@PROPERTY_SETTINGS
@given(data=st.data(), profile=profiles(), now=nows)
def test_generated_slots_equal_a_naive_reference(data, profile, now):
    busy = data.draw(busy_lists(now))
    assert generate_slots(profile, now, busy, AMS) == oracle(profile, now, busy)


@PROPERTY_SETTINGS
@given(data=st.data(), profile=profiles(), now=nows)
def test_busy_time_outside_window_bounds_never_changes_the_slots(data, profile, now):
    busy = data.draw(busy_lists(now))
    fetch_from, fetch_until = window_bounds(profile, now, AMS)
    fetched = [(s, e) for s, e in busy if s < fetch_until and e > fetch_from]

    assert generate_slots(profile, now, fetched, AMS) == generate_slots(profile, now, busy, AMS)
    pad = timedelta(minutes=profile.buffer_minutes)
    for slot in generate_slots(profile, now, [], AMS, every=True):
        assert fetch_from <= slot.start - pad and slot.end + pad <= fetch_until, slot


@PROPERTY_SETTINGS
@given(profile=profiles(), now=nows)
def test_every_generated_slot_is_offered_when_nothing_is_busy(profile, now):
    result = generate_slots(profile, now, [], AMS, every=True)
    assume(result)
    sample = result[:: max(1, len(result) // 40)] + result[-1:]
    assert all(is_offered(profile, now, s.start, AMS) for s in sample)
    # and a start between two grid points is not
    off_grid = result[0].start + timedelta(minutes=1)
    assert not is_offered(profile, now, off_grid, AMS)


# --- spread_suggestions: several tutors' free slots merged into one answer (core/booking.py) ------


def hourly(first: datetime, count: int) -> list[Slot]:
    return [Slot(first + timedelta(hours=i), first + timedelta(hours=i + 1)) for i in range(count)]


def test_without_a_daily_cap_the_first_slots_up_to_the_limit_are_suggested():
    free = hourly(MONDAY_9, 8) + hourly(MONDAY_9 + timedelta(days=1), 8)

    assert spread_suggestions(free, make_profile(max_per_day=None), AMS, 5) == free[:5]
    assert spread_suggestions(free, make_profile(max_per_day=0), AMS, 20) == free


def test_with_a_daily_cap_each_local_day_gets_its_own_choice_in_day_order():
    days = [hourly(MONDAY_9 + timedelta(days=d), 10) for d in range(3)]
    free = [slot for day in days for slot in day]

    chosen = spread_suggestions(free, make_profile(max_per_day=2), AMS, 100)

    assert chosen == [slot for day in days for slot in choose_for_day(day, 2, AMS)]
    assert Counter(local(s.start).date() for s in chosen) == {local(day[0].start).date(): 2 for day in days}


@pytest.mark.parametrize("limit", [1, 2, 3, 5])
def test_with_a_daily_cap_the_limit_cuts_the_answer_wherever_it_falls(limit):
    days = [hourly(MONDAY_9 + timedelta(days=d), 10) for d in range(3)]
    free = [slot for day in days for slot in day]
    every = spread_suggestions(free, make_profile(max_per_day=2), AMS, 100)

    assert spread_suggestions(free, make_profile(max_per_day=2), AMS, limit) == every[:limit]


def test_days_are_local_days_not_utc_days():
    """23:30 and 00:30 Amsterdam time are two days here, though both fall on one UTC date."""
    late = Slot(datetime(2026, 11, 30, 23, 0, tzinfo=AMS), datetime(2026, 12, 1, 0, 0, tzinfo=AMS))
    early = Slot(datetime(2026, 12, 1, 0, 30, tzinfo=AMS), datetime(2026, 12, 1, 1, 30, tzinfo=AMS))
    assert late.start.astimezone(UTC).date() == early.start.astimezone(UTC).date()

    assert spread_suggestions([late, early], make_profile(max_per_day=1), AMS, 10) == [late, early]


def monday_slots(*hours_minutes: tuple[int, int]) -> list[Slot]:
    """Hour-long slots on Monday 30 November at these local times."""
    return [
        Slot(
            datetime(2026, 11, 30, h, m, tzinfo=AMS),
            datetime(2026, 11, 30, h, m, tzinfo=AMS) + timedelta(hours=1),
        )
        for h, m in hours_minutes
    ]


def starts_of(slots: list[Slot]) -> list[tuple[int, int]]:
    return [(local(s.start).hour, local(s.start).minute) for s in slots]


def test_a_slot_at_noon_belongs_to_the_afternoon_not_the_morning():
    # Morning has nothing, so noon is the afternoon's pick and 20:00 the evening's.
    assert starts_of(choose_for_day(monday_slots((12, 0), (15, 0), (20, 0)), 2, AMS)) == [(12, 0), (20, 0)]


def test_ten_to_twelve_is_still_morning():
    # 08:00 is the morning's pick; 11:50 is morning too, so the afternoon's pick is 15:00.
    assert starts_of(choose_for_day(monday_slots((8, 0), (11, 50), (15, 0)), 2, AMS)) == [(8, 0), (15, 0)]


def test_half_past_twelve_is_afternoon():
    # 08:00 is the morning's pick and 12:30 the afternoon's (its minutes count up from 12:00).
    assert starts_of(choose_for_day(monday_slots((8, 0), (12, 30), (17, 0)), 2, AMS)) == [(8, 0), (12, 30)]


def test_a_slot_ending_an_hour_before_a_chosen_one_is_not_adjacent_to_it():
    # Chosen by part: 08:00 and 12:00. 10:00-11:00 ends exactly an hour before 12:00 and starts
    # an hour after 08:00 ended: adjacent to neither, so it comes before 14:00.
    assert starts_of(choose_for_day(monday_slots((8, 0), (10, 0), (12, 0), (14, 0)), 3, AMS)) == [
        (8, 0),
        (10, 0),
        (12, 0),
    ]


@pytest.mark.parametrize(
    ("busy", "message"),
    [
        pytest.param(
            [(datetime(2026, 12, 1, 10, tzinfo=_NoOffset()), tue(11))],
            "^busy start has no time zone offset",
            id="start",
        ),
        pytest.param(
            [(tue(10), datetime(2026, 12, 1, 11, tzinfo=_NoOffset()))],
            "^busy end has no time zone offset",
            id="end",
        ),
        pytest.param([(tue(10), "2026-12-01T11:00")], "^busy end must be a date and time$", id="end as text"),
    ],
)
def test_busy_time_in_a_zone_without_an_offset_or_as_text_is_refused_by_name(busy, message):
    with pytest.raises(ValidationFailed, match=message):
        generate_slots(make_profile("existing"), MONDAY_9, busy, AMS)


def test_every_free_slot_is_every_one_however_many_and_a_limit_still_cuts_it():
    """The console's week view: every free slot of a 14-day window is far more than 90."""
    profile = make_profile("existing", days_ahead=14)
    every = generate_slots(profile, MONDAY_9, [], AMS, every=True)

    assert len(every) > 100
    assert generate_slots(profile, MONDAY_9, [], AMS, every=True, limit=5) == every[:5]


@pytest.mark.parametrize("every", [False, True])
def test_a_limit_of_zero_offers_nothing_without_a_daily_cap_too(every):
    profile = make_profile("existing", max_per_day=None)
    assert generate_slots(profile, MONDAY_9, [], AMS, limit=0, every=every) == []


def test_is_offered_steps_over_the_hour_that_does_not_exist_in_spring():
    """28 March 2027, Amsterdam: 02:00-03:00 does not exist. A profile whose hours span it still
    offers 04:00 (the scan skips the missing 02:00 instead of comparing it)."""
    night = make_profile(
        "existing", earliest_hour=1, latest_hour=6, exclude_weekends=False, min_lead_minutes=0
    )
    now = datetime(2027, 3, 27, 12, 0, tzinfo=AMS)

    assert is_offered(night, now, datetime(2027, 3, 28, 4, 0, tzinfo=AMS), AMS) is True
    assert is_offered(night, now, datetime(2027, 3, 28, 3, 30, tzinfo=AMS), AMS) is False


# The wall-clock grid of a day, computed once per day: a day without a change of UTC offset
# is one subtraction per candidate; a day with one falls back to asking the zone for each.
def naive_grid(day: date, first: int, stop: int, step: int, tz: tzinfo) -> list[float]:
    out = []
    for minutes in range(first, stop, step):
        at = local_wall_time(day, minutes, tz)
        if at is not None:
            out.append(at.timestamp())
    return out


@settings(max_examples=300, deadline=None)
@given(
    tz=st.timezones(),
    day=st.dates(date(1970, 1, 2), date(2100, 12, 30)),
    first=st.integers(0, 24 * 60 - 1),
    length=st.integers(0, 24 * 60),
    step=st.integers(1, 240),
)
def test_the_grid_of_a_day_is_every_wall_clock_time_that_exists(tz, day, first, length, step):
    stop = min(first + length, 24 * 60)
    assert wall_clock_grid(day, first, stop, step, tz) == naive_grid(day, first, stop, step, tz)


def test_the_grid_is_right_on_every_day_around_every_offset_change_of_every_zone_in_2026_and_2027():
    """Every zone of the tz database, every day whose offset differs from the day after next's
    (so every change, also one at midnight itself or at 24:00), with a quarter-hour grid."""
    from zoneinfo import available_timezones

    checked = 0
    for key in sorted(available_timezones()):
        tz = ZoneInfo(key)
        day = date(2026, 1, 1)
        while day < date(2028, 1, 1):
            later = day + timedelta(days=2)
            if (
                datetime.combine(day, time(0), tzinfo=tz).utcoffset()
                != datetime.combine(later, time(0), tzinfo=tz).utcoffset()
            ):
                for d in (day, day + timedelta(days=1)):
                    assert wall_clock_grid(d, 0, 24 * 60, 15, tz) == naive_grid(d, 0, 24 * 60, 15, tz), (
                        key,
                        d,
                    )
                    checked += 1
            day += timedelta(days=1)
    assert checked > 500  # the changes were found (Europe alone has ~60 zones changing twice a year)


def test_a_fixed_offset_has_a_grid_too():
    tz = timezone(timedelta(hours=9, minutes=30))
    day = date(2026, 11, 30)
    assert wall_clock_grid(day, 60, 180, 60, tz) == [
        datetime(2026, 11, 30, 1, tzinfo=tz).timestamp(),
        datetime(2026, 11, 30, 2, tzinfo=tz).timestamp(),
    ]


def test_a_day_without_a_change_of_offset_asks_the_zone_for_no_single_time(monkeypatch):
    """The point of the grid: on an ordinary day each time is midnight plus its minutes; only
    the day of a change asks the zone for each time (here: 1 per quarter hour of the day)."""
    asked: list[int] = []
    real = local_wall_time

    def counting(day, minutes, tz):  # noqa: ANN001, ANN202
        asked.append(minutes)
        return real(day, minutes, tz)

    monkeypatch.setattr("core.slots.local_wall_time", counting)
    assert len(wall_clock_grid(date(2026, 12, 1), 0, 24 * 60, 15, AMS)) == 96
    # the days just before a change are ordinary too, also when it comes at midnight (Havana
    # springs from 00:00 to 01:00 on 8 March 2026)
    wall_clock_grid(SPRING_FORWARD[0] - timedelta(days=1), 0, 24 * 60, 15, AMS)
    wall_clock_grid(date(2026, 3, 7), 0, 24 * 60, 15, ZoneInfo("America/Havana"))
    assert asked == []
    assert len(wall_clock_grid(SPRING_FORWARD[0], 0, 24 * 60, 15, AMS)) == 92  # 02:00-03:00 does not exist
    assert len(asked) == 96


def test_the_grid_does_not_depend_on_the_machines_time_zone(monkeypatch):
    import time as time_module

    monkeypatch.setenv("TZ", "Asia/Kolkata")
    time_module.tzset()
    try:
        for day in (date(2026, 12, 1), SPRING_FORWARD[0], FALL_BACK[0]):
            assert wall_clock_grid(day, 0, 24 * 60, 30, AMS) == naive_grid(day, 0, 24 * 60, 30, AMS)
    finally:
        monkeypatch.undo()
        time_module.tzset()
