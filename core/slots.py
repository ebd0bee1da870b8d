"""The slot engine: which lesson start times a planning profile offers. Pure, no I/O.

Candidates are built as local wall-clock times per local date and only then converted to UTC,
so a 10:00 lesson is 10:00 on both sides of a DST change. A wall-clock time that does not exist
(spring forward) is skipped; an ambiguous one (fall back) takes its first occurrence (fold=0).
Lead time, durations and buffers are real elapsed minutes, computed in UTC.

Busy time is validated, sorted and merged once into a `BusyIndex` (POSIX seconds), and each
candidate is checked with a bisect: O(busy log busy) to build, O(candidates log busy) to answer.
Callers that ask often (the calendar mirror) build the index once per calendar version and pass
it in, so a request costs only the candidates.

What the customer is offered is a choice, not six hours of one afternoon: with `max_per_day`
each local date gives its `max_per_day` free slots chosen by `choose_for_day` (different parts of
the day, not back to back), so suggestions spread over days. The console's week view asks for
`every` free slot instead; booking accepts any free slot the profile allows (`is_offered`).
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right, insort
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from core.errors import ValidationFailed


class SlotProfile(Protocol):
    duration_minutes: int
    earliest_hour: int
    latest_hour: int
    min_lead_minutes: int
    days_ahead: int
    exclude_weekends: bool
    allowed_weekdays: list[int] | None
    slot_step_minutes: int
    max_suggestions: int
    buffer_minutes: int
    max_per_day: int | None


@dataclass(frozen=True, order=True)
class Slot:
    start: datetime  # aware, UTC
    end: datetime  # aware, UTC

    def local(self, tz: ZoneInfo) -> tuple[datetime, datetime]:
        return self.start.astimezone(tz), self.end.astimezone(tz)


# Parts of the day (local minutes after midnight) a day's suggestions are spread over.
PARTS_OF_DAY = ((0, 12 * 60), (12 * 60, 17 * 60), (17 * 60, 48 * 60))  # morning, afternoon, evening
# Two suggestions of one day less than this apart are "adjacent" (back to back, or overlapping).
ADJACENT_GAP = timedelta(hours=1)


def require_aware(value: datetime, name: str = "datetime") -> datetime:
    if not isinstance(value, datetime):
        raise ValidationFailed(f"{name} must be a date and time")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValidationFailed(
            f"{name} has no time zone offset; send ISO 8601 with an offset, e.g. 2026-12-01T10:00:00+01:00"
        )
    return value


def local_wall_time(day: date, minutes: int, tz: ZoneInfo) -> datetime | None:
    """The UTC instant of `minutes` after local midnight on `day`, or None if that wall-clock
    time does not exist (DST gap). 24:00 means midnight at the end of the day."""
    if minutes >= 24 * 60:
        day = day + timedelta(days=minutes // (24 * 60))
        minutes %= 24 * 60
    local = datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=tz)  # fold=0: first
    utc = local.astimezone(UTC)
    if utc.astimezone(tz).replace(tzinfo=None) != local.replace(tzinfo=None):
        return None  # skipped by spring forward
    return utc


def wall_clock_grid(day: date, first: int, stop: int, step: int, tz: ZoneInfo) -> list[float]:
    """The POSIX seconds of the wall-clock times `first`, `first + step`, ... before `stop`
    (minutes after local midnight, at most 24:00) on `day` that exist, as `local_wall_time`
    gives them, computed once per day instead of asking the zone for each time.

    A day whose local midnight and next midnight have the same UTC offset has no change in
    between: no change in the tz database is undone within two days (tests/unit/test_slots.py
    checks every zone's changes), so each time is midnight plus its minutes. On the day of a
    change (or a midnight that does not exist) each time is asked of the zone."""
    midnight = datetime.combine(day, time(0), tzinfo=tz)
    offset = midnight.utcoffset()
    if offset is None or offset != datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz).utcoffset():
        return [
            at.timestamp()
            for minutes in range(first, stop, step)
            if (at := local_wall_time(day, minutes, tz)) is not None
        ]
    base = midnight.replace(tzinfo=UTC).timestamp() - offset.total_seconds()
    return [base + 60 * minutes for minutes in range(first, stop, step)]


def _window_end(day: date, latest_hour: int, tz: ZoneInfo) -> datetime:
    """The UTC instant `latest_hour` closes `day`. When that hour falls in a DST gap, the first
    whole hour after it that exists closes it: the hour after it where the gap is an hour long
    (Europe), later where it is longer (Antarctica/Troll jumps two hours)."""
    for hour in range(latest_hour, latest_hour + 24):
        end = local_wall_time(day, hour * 60, tz)
        if end is not None:
            return end
    raise AssertionError(f"no wall-clock hour exists after {latest_hour}:00 on {day} in {tz}")


def allowed_weekday(profile: SlotProfile, day: date) -> bool:
    if profile.allowed_weekdays:
        return day.weekday() in profile.allowed_weekdays
    if profile.exclude_weekends:
        return day.weekday() < 5
    return True


def merge_intervals(intervals: Iterable[tuple[datetime, datetime]]) -> list[tuple[datetime, datetime]]:
    """Sort and merge overlapping or touching intervals; empty ones are dropped."""
    merged: list[tuple[datetime, datetime]] = []
    for s, e in sorted(intervals):
        if e <= s:
            continue
        if merged and s <= merged[-1][1]:
            if e > merged[-1][1]:
                merged[-1] = (merged[-1][0], e)
        else:
            merged.append((s, e))
    return merged


def subtract_interval(
    interval: tuple[datetime, datetime], cut: tuple[datetime, datetime]
) -> list[tuple[datetime, datetime]]:
    """The parts of half-open `interval` outside half-open `cut`: none, one or two non-empty
    pieces, in order. An empty cut leaves the interval whole; an empty interval has no parts."""
    start, end = interval
    if end <= start:
        return []
    cut_start, cut_end = cut
    if cut_end <= cut_start or cut_end <= start or cut_start >= end:
        return [interval]
    pieces = []
    if start < cut_start:
        pieces.append((start, cut_start))
    if cut_end < end:
        pieces.append((cut_end, end))
    return pieces


def _layer(busy: Iterable[tuple[datetime, datetime]]) -> tuple[list[float], list[float]]:
    """Busy time as merged, sorted (starts, ends) in POSIX seconds; naive times are refused,
    naming which end of an interval was naive."""
    pairs: list[tuple[float, float]] = []
    for start, end in busy:
        if not isinstance(start, datetime) or start.tzinfo is None or start.utcoffset() is None:
            require_aware(start, "busy start")
            raise ValidationFailed("busy start must be a date and time with a time zone offset")
        if not isinstance(end, datetime) or end.tzinfo is None or end.utcoffset() is None:
            require_aware(end, "busy end")
            raise ValidationFailed("busy end must be a date and time with a time zone offset")
        pairs.append((start.timestamp(), end.timestamp()))
    return _merge_seconds(pairs)


def _merge_seconds(pairs: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    pairs.sort()
    starts: list[float] = []
    ends: list[float] = []
    for lo, hi in pairs:
        if hi <= lo:
            continue
        if ends and lo <= ends[-1]:
            if hi > ends[-1]:
                ends[-1] = hi
        else:
            starts.append(lo)
            ends.append(hi)
    return starts, ends


class BusyIndex:
    """Busy time ready for the engine: validated, merged and sorted once, in POSIX seconds, so
    whether a candidate overlaps it is one bisect — O(log busy) per candidate, not a pass over the
    whole list per request. Build one per calendar version and reuse it (the calendar mirror does);
    `plus(...)` adds a few intervals (lessons, closures) as another layer without copying.
    Iterating gives the merged busy time as aware UTC pairs."""

    __slots__ = ("layers",)

    def __init__(self, busy: Iterable[tuple[datetime, datetime]] = ()) -> None:
        self.layers: list[tuple[list[float], list[float]]] = [_layer(busy)]

    def plus(self, busy: Iterable[tuple[datetime, datetime]]) -> BusyIndex:
        extra = _layer(busy)
        joined = BusyIndex.__new__(BusyIndex)
        joined.layers = [*self.layers, extra] if extra[0] else list(self.layers)
        return joined

    def overlaps(self, lo: float, hi: float) -> bool:
        """Whether [lo, hi) (POSIX seconds) meets any busy interval."""
        for starts, ends in self.layers:
            j = bisect_right(ends, lo)  # the first interval ending after lo
            if j < len(starts) and starts[j] < hi:
                return True
        return False

    def __iter__(self) -> Iterator[tuple[datetime, datetime]]:
        starts, ends = _merge_seconds([pair for layer in self.layers for pair in zip(*layer, strict=True)])
        for lo, hi in zip(starts, ends, strict=True):
            yield datetime.fromtimestamp(lo, UTC), datetime.fromtimestamp(hi, UTC)

    def __len__(self) -> int:
        return sum(len(starts) for starts, _ in self.layers)


def window_bounds(profile: SlotProfile, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The UTC range of busy time that can decide which slots this profile offers at `now`:
    the local days of its horizon, widened by `buffer_minutes` on both sides, because a slot is
    free only when [start - buffer, end + buffer) is (a 00:00 slot's buffer reaches into the day
    before, a slot ending at 24:00 into the day after)."""
    first_day = now.astimezone(tz).date()
    last_day = first_day + timedelta(days=profile.days_ahead)
    buffer = timedelta(minutes=profile.buffer_minutes or 0)
    start = datetime.combine(first_day, time(0), tzinfo=tz).astimezone(UTC) - buffer
    end = datetime.combine(last_day + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC) + buffer
    return start, end


def choose_for_day(free: list[Slot], k: int, tz: ZoneInfo) -> list[Slot]:
    """Which `k` of one local date's free slots (sorted, all one duration) are suggested: first
    the earliest slot of each part of the day (morning, afternoon, evening) that is not adjacent
    to one already chosen, then in time order each slot adjacent to none chosen, and only then
    adjacent ones. Deterministic: the same free slots give the same choice. Sorted by start."""
    if len(free) <= k:
        return list(free)
    chosen: list[Slot] = []  # sorted by start

    def adjacent(slot: Slot) -> bool:
        i = bisect_left(chosen, slot)
        if i < len(chosen) and chosen[i].start < slot.end + ADJACENT_GAP:
            return True
        return i > 0 and slot.start < chosen[i - 1].end + ADJACENT_GAP

    def take(slot: Slot) -> bool:
        insort(chosen, slot)
        return len(chosen) >= k

    for lo, hi in PARTS_OF_DAY:
        for slot in free:
            local = slot.start.astimezone(tz)
            minutes = local.hour * 60 + local.minute
            if lo <= minutes < hi and not adjacent(slot):
                if take(slot):
                    return chosen
                break
    for slot in free:
        if not adjacent(slot) and take(slot):
            return chosen
    taken = set(chosen)
    for slot in free:
        if slot not in taken and take(slot):
            return chosen
    return chosen


def spread_suggestions(free: Iterable[Slot], profile: SlotProfile, tz: ZoneInfo, limit: int) -> list[Slot]:
    """The suggestions among `free` (sorted by start): per local date `choose_for_day` when the
    profile has a `max_per_day`, then the first `limit`."""
    if not profile.max_per_day:
        return list(free)[:limit]
    out: list[Slot] = []
    day_slots: list[Slot] = []
    current: date | None = None
    for slot in free:
        day = slot.start.astimezone(tz).date()
        if day != current:
            out.extend(choose_for_day(day_slots, profile.max_per_day, tz))
            if len(out) >= limit:
                return out[:limit]
            day_slots, current = [], day
        day_slots.append(slot)
    out.extend(choose_for_day(day_slots, profile.max_per_day, tz))
    return out[:limit]


def generate_slots(
    profile: SlotProfile,
    now: datetime,
    busy: Iterable[tuple[datetime, datetime]] | BusyIndex,
    tz: ZoneInfo,
    *,
    limit: int | None = None,
    every: bool = False,
) -> list[Slot]:
    """The slots `profile` suggests at `now` around `busy`, ordered by start: at most
    `max_per_day` a date (spread by `choose_for_day`), then the first `max_suggestions` (or
    `limit` when given). With `every`, every free slot instead (the console's week view), cut
    only by `limit`."""
    now = require_aware(now, "now").astimezone(UTC)
    if every:
        max_count = 10**9 if limit is None else limit
    else:
        max_count = profile.max_suggestions if limit is None else limit
    if max_count <= 0:
        return []
    per_day_cap = None if every else profile.max_per_day
    duration = timedelta(minutes=profile.duration_minutes)
    buffer = timedelta(minutes=profile.buffer_minutes or 0)
    duration_s = duration.total_seconds()
    step = max(int(profile.slot_step_minutes or 60), 1)
    not_before_s = (now + timedelta(minutes=profile.min_lead_minutes)).timestamp()
    index = busy if isinstance(busy, BusyIndex) else BusyIndex(busy)
    overlaps = index.overlaps
    buffer_s = buffer.total_seconds()
    slots: list[Slot] = []
    first_day = now.astimezone(tz).date()
    day_start_minutes = profile.earliest_hour * 60
    day_end_minutes = profile.latest_hour * 60

    for offset in range(profile.days_ahead + 1):
        day = first_day + timedelta(days=offset)
        if not allowed_weekday(profile, day):
            continue
        window_end_s = _window_end(day, profile.latest_hour, tz).timestamp()
        day_free: list[Slot] = []
        for start_s in wall_clock_grid(day, day_start_minutes, day_end_minutes, step, tz):
            if start_s + duration_s > window_end_s:
                break
            if start_s < not_before_s:
                continue
            if overlaps(start_s - buffer_s, start_s + duration_s + buffer_s):
                continue
            start = datetime.fromtimestamp(start_s, UTC)
            if per_day_cap:
                day_free.append(Slot(start, start + duration))
                continue
            slots.append(Slot(start, start + duration))
            if len(slots) >= max_count:
                return slots
        if per_day_cap and day_free:
            slots.extend(choose_for_day(day_free, per_day_cap, tz))
            if len(slots) >= max_count:
                return slots[:max_count]
    return slots


def is_offered(profile: SlotProfile, now: datetime, start: datetime, tz: ZoneInfo) -> bool:
    """Whether `start` is a start time this profile allows at `now`, ignoring busy time and the
    max_suggestions cut (a customer may book any allowed slot, not only the first six)."""
    start = require_aware(start, "start").astimezone(UTC)
    if start < now + timedelta(minutes=profile.min_lead_minutes):
        return False
    day = start.astimezone(tz).date()
    first_day = now.astimezone(tz).date()
    if not first_day <= day <= first_day + timedelta(days=profile.days_ahead):
        return False
    if not allowed_weekday(profile, day):
        return False
    window_end = _window_end(day, profile.latest_hour, tz)
    step = max(int(profile.slot_step_minutes or 60), 1)
    grid = wall_clock_grid(day, profile.earliest_hour * 60, profile.latest_hour * 60, step, tz)
    return start.timestamp() in grid and start + timedelta(minutes=profile.duration_minutes) <= window_end
