"""BusyIndex (issue 17, the engine at the limit): busy time validated, merged and sorted once, so
each candidate slot is a bisect. Whatever the form busy time is given in — a list, an index, an
index with a layer added — the engine offers exactly the same slots."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ValidationFailed
from core.models import PlanningProfile
from core.profiles import SEED_PROFILES
from core.slots import BusyIndex, generate_slots
from tests.conftest import AMS

NOW = datetime(2026, 11, 30, 7, 0, tzinfo=UTC)
PROFILE = PlanningProfile(**{**SEED_PROFILES["premium"], "max_per_day": None})


def _intervals(draw_list):
    return [(NOW + timedelta(minutes=a), NOW + timedelta(minutes=a + b)) for a, b in draw_list]


spans = st.lists(st.tuples(st.integers(-600, 22 * 24 * 60), st.integers(0, 300)), max_size=80)


@settings(max_examples=150, deadline=None)
@given(spans, spans, st.sampled_from([None, 2]))
def test_a_list_an_index_and_a_layered_index_give_the_same_slots(first, second, per_day):
    profile = PlanningProfile(**{**SEED_PROFILES["premium"], "max_per_day": per_day})
    a, b = _intervals(first), _intervals(second)
    expected = generate_slots(profile, NOW, a + b, AMS, every=True)
    assert generate_slots(profile, NOW, BusyIndex(a + b), AMS, every=True) == expected
    assert generate_slots(profile, NOW, BusyIndex(a).plus(b), AMS, every=True) == expected
    assert generate_slots(profile, NOW, BusyIndex(a).plus(b), AMS) == generate_slots(profile, NOW, a + b, AMS)


def test_an_index_lists_its_busy_time_merged_across_layers():
    t = NOW
    index = BusyIndex([(t, t + timedelta(hours=1)), (t + timedelta(hours=3), t + timedelta(hours=4))]).plus(
        [(t + timedelta(minutes=30), t + timedelta(hours=2))]
    )
    assert list(index) == [(t, t + timedelta(hours=2)), (t + timedelta(hours=3), t + timedelta(hours=4))]
    assert len(BusyIndex([])) == 0 and not BusyIndex([(t, t)])  # empty intervals are dropped


def test_naive_busy_time_is_refused_when_the_index_is_built():
    with pytest.raises(ValidationFailed):
        BusyIndex([(datetime(2026, 12, 1, 10), datetime(2026, 12, 1, 11))])
    with pytest.raises(ValidationFailed):
        BusyIndex([]).plus([(NOW, datetime(2026, 12, 1, 11))])
    with pytest.raises(ValidationFailed):
        BusyIndex([("10:00", "11:00")])  # type: ignore[list-item]


def test_touching_busy_time_is_one_interval():
    t = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
    index = BusyIndex([(t, t + timedelta(hours=1)), (t + timedelta(hours=1), t + timedelta(hours=2))])

    assert list(index) == [(t, t + timedelta(hours=2))]
