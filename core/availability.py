"""Availability: everything that is not the calendar, turned into busy intervals for the slot
engine (which stays pure), and its console edits.

- Time off (BusyBlock rows of the local calendar backend): admins for anyone, tutors for
  themselves.
- Tutors' working hours (TutorHours): local wall-clock blocks per weekday; the time outside them
  is busy. A tutor without rows works the profile's whole window.
- Closures (Closure): public holidays from the `holidays` package (HOLIDAYS_COUNTRY, on per
  profile by default; an admin may mark one as not applying), school holidays imported per region
  (a profile switches one region on) and business closures entered by admins. A closure is busy
  from local midnight to local midnight for every tutor: never offered, never bookable.

`planning_busy` is what booking adds to the calendar's busy time; `refuse_closed` is the booking
and moving check. The week view that needs booking's slots is core/availability_queries.py.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

import holidays
from sqlmodel import Session, col, select

from core.audit import audit, current_actor
from core.config import get_settings
from core.db import read_session, write_session
from core.errors import NotFound, PermissionDenied, SlotNotOffered, ValidationFailed
from core.models import (
    BLOCKING_STATUSES,
    NEEDS_RESCHEDULE,
    SCHOOL_REGIONS,
    BusyBlock,
    Closure,
    Contact,
    Lesson,
    PlanningProfile,
    Tutor,
    TutorHours,
    User,
    stored_id,
)
from core.paging import local_bounds
from core.slots import require_aware
from core.tutors import is_own_tutor

Interval = tuple[datetime, datetime]

BUSY_BLOCK_MAX = timedelta(days=62)  # longer time off is almost always a typo in the year


def add_busy_block(actor: User, tutor_id: int, start: datetime, end: datetime, reason: str = "") -> BusyBlock:
    """Time off for a tutor: admins for anyone, tutors for themselves."""
    start = require_aware(start, "start").astimezone(UTC)
    end = require_aware(end, "end").astimezone(UTC)
    if end <= start:
        raise ValidationFailed("The end of the time off must be after its start.")
    if end - start > BUSY_BLOCK_MAX:
        raise ValidationFailed("Time off longer than 62 days: split it up (or check the year).")
    with write_session() as session:
        who = current_actor(session, actor, "admin", "tutor")
        tutor = session.get(Tutor, tutor_id)
        if tutor is None:
            raise NotFound("That tutor does not exist.")
        if who.role != "admin" and not is_own_tutor(who, tutor):
            raise PermissionDenied("You can only enter time off in your own calendar.")
        block = BusyBlock(
            tutor_id=tutor_id,
            start=start,
            end=end,
            reason=(reason or "").strip()[:200] or None,
            created_by=who.email,
        )
        session.add(block)
        session.flush()
        audit(
            session,
            who,
            "busy_block.add",
            "BusyBlock",
            block.id,
            None,
            {"tutor_id": tutor_id, "start": start, "end": end, "reason": block.reason},
        )
    return block


def remove_busy_block(actor: User, block_id: int) -> None:
    with write_session() as session:
        who = current_actor(session, actor, "admin", "tutor")
        block = session.get(BusyBlock, block_id)
        if block is None:
            raise NotFound("That time off no longer exists.")
        tutor = session.get(Tutor, block.tutor_id)
        if who.role != "admin" and not (tutor and is_own_tutor(who, tutor)):
            raise PermissionDenied("You can only remove time off from your own calendar.")
        audit(
            session,
            who,
            "busy_block.remove",
            "BusyBlock",
            block.id,
            {"tutor_id": block.tutor_id, "start": block.start, "end": block.end, "reason": block.reason},
            None,
        )
        session.delete(block)


# --- reads ------------------------------------------------------------------------------------


def week_bounds(week_start: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """UTC [start, end) of the local week starting `week_start`."""
    lo, hi = local_bounds(week_start, week_start + timedelta(days=6), tz)
    assert lo is not None and hi is not None  # both dates are given, so neither end is open
    return lo, hi


def week_items(session: Session, tutor_id: int, week_start: date, tz: ZoneInfo) -> dict[str, Any]:
    """Lessons and time off (BusyBlock rows) of one tutor in the local week starting `week_start`."""
    lo, hi = week_bounds(week_start, tz)
    lessons = session.execute(
        # sqlmodel's select() is typed for at most four columns
        select(
            Lesson.id,
            Lesson.start,
            Lesson.end,
            Lesson.status,  # type: ignore[call-overload]
            Lesson.title,
            Lesson.profile_name,
            col(Contact.name).label("contact_name"),
        )
        .join(Contact, col(Contact.id) == col(Lesson.contact_id), isouter=True)
        .where(Lesson.tutor_id == tutor_id, col(Lesson.start) < hi, col(Lesson.end) > lo)
        .where(col(Lesson.status).in_((*BLOCKING_STATUSES, NEEDS_RESCHEDULE)))
        .order_by(col(Lesson.start))
    ).all()
    blocks = session.exec(
        select(BusyBlock)
        .where(BusyBlock.tutor_id == tutor_id, col(BusyBlock.start) < hi, col(BusyBlock.end) > lo)
        .order_by(col(BusyBlock.start))
    ).all()
    return {
        "start": lo,
        "end": hi,
        "lessons": [dict(r._mapping) for r in lessons],
        "busy_blocks": [b.model_dump() for b in blocks],
    }


def future_busy_blocks(
    session: Session, tutor_id: int, now: datetime, limit: int = 200
) -> list[dict[str, Any]]:
    rows = session.exec(
        select(BusyBlock)
        .where(BusyBlock.tutor_id == tutor_id, col(BusyBlock.end) > now)
        .order_by(col(BusyBlock.start))
        .limit(limit)
    ).all()
    return [b.model_dump() for b in rows]


# --- closures and working hours as busy time ----------------------------------------------------


@dataclass(frozen=True)
class ClosedDays:
    start_date: date
    end_date: date  # inclusive
    name: str
    source: str  # holidays | import | admin
    region: str | None = None


def midnight(day: date, tz: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC)


def _wall(day: date, minutes: int, tz: ZoneInfo) -> datetime:
    """The UTC instant of local wall-clock `minutes` after midnight of `day` (24:00 = the next
    midnight). A time in a spring-forward gap takes the offset before it (fold=0), which puts it
    after the gap: fine for the edges of busy time."""
    if minutes >= 24 * 60:
        return midnight(day + timedelta(days=1), tz)
    return datetime.combine(day, time(minutes // 60, minutes % 60), tzinfo=tz).astimezone(UTC)


@lru_cache(maxsize=64)
def _holidays_of(country: str, year: int) -> tuple[tuple[date, str], ...]:
    found = holidays.country_holidays(country, years=year, language="nl" if country == "NL" else None)
    return tuple(sorted(found.items()))


def public_holidays(first: date, last: date, country: str | None = None) -> list[tuple[date, str]]:
    """The public holidays of HOLIDAYS_COUNTRY (or `country`) from `first` through `last`."""
    country = get_settings().holidays_country if country is None else country
    if not country:
        return []
    return [
        (d, n)
        for year in range(first.year, last.year + 1)
        for d, n in _holidays_of(country, year)
        if first <= d <= last
    ]


def _closure_rows(session: Session, first: date, last: date) -> list[Closure]:
    return list(
        session.exec(
            select(Closure)
            .where(col(Closure.start_date) <= last, col(Closure.end_date) >= first)
            .order_by(col(Closure.start_date), col(Closure.id))
        ).all()
    )


def closures_for(session: Session, profile: PlanningProfile, first: date, last: date) -> list[ClosedDays]:
    """The closures that apply to `profile` on the local dates `first` through `last`."""
    rows = _closure_rows(session, first, last)
    out: list[ClosedDays] = []
    if profile.public_holidays:
        off = {r.start_date for r in rows if r.source == "holidays" and not r.active}
        out += [ClosedDays(d, d, n, "holidays") for d, n in public_holidays(first, last) if d not in off]
    for r in rows:
        if not r.active or r.source == "holidays":
            continue
        if r.source == "import" and not (
            profile.school_holidays and r.region in (None, profile.school_holidays)
        ):
            continue
        out.append(ClosedDays(r.start_date, r.end_date, r.name, r.source, r.region))
    return sorted(out, key=lambda c: (c.start_date, c.end_date, c.name))


def _hours_by_tutor(
    session: Session, tutor_ids: Sequence[int]
) -> dict[int, dict[int, list[tuple[int, int]]]]:
    rows = session.exec(
        select(TutorHours)
        .where(col(TutorHours.tutor_id).in_(list(tutor_ids)))
        .order_by(col(TutorHours.weekday), col(TutorHours.start_minute))
    ).all()
    out: dict[int, dict[int, list[tuple[int, int]]]] = {}
    for h in rows:
        out.setdefault(h.tutor_id, {}).setdefault(h.weekday, []).append((h.start_minute, h.end_minute))
    return out


def outside_hours(
    week: dict[int, list[tuple[int, int]]], start: datetime, end: datetime, tz: ZoneInfo
) -> list[Interval]:
    """The time in [start, end) outside the weekly blocks `week` (weekday -> sorted blocks)."""
    busy: list[Interval] = []
    day = start.astimezone(tz).date() - timedelta(days=1)
    last = end.astimezone(tz).date() + timedelta(days=1)
    while day <= last:
        cursor = 0
        for block_start, block_end in week.get(day.weekday(), []):
            if block_start > cursor:
                busy.append((_wall(day, cursor, tz), _wall(day, block_start, tz)))
            cursor = max(cursor, block_end)
        if cursor < 24 * 60:
            busy.append((_wall(day, cursor, tz), _wall(day, 24 * 60, tz)))
        day += timedelta(days=1)
    return [(s, e) for s, e in busy if s < end and e > start]


def _shrink(intervals: Iterable[Interval], buffer: timedelta) -> list[Interval]:
    """Busy time the engine's buffer must not widen: the engine keeps [start - buffer, end +
    buffer) clear, so an interval shrunk by the buffer on both sides blocks exactly the slots that
    overlap the interval itself. One too short to shrink stays whole (blocks a little more)."""
    if not buffer:
        return list(intervals)
    return [(s + buffer, e - buffer) if e - s > 2 * buffer else (s, e) for s, e in intervals]


def planning_busy(
    session: Session,
    profile: PlanningProfile,
    tutors: Sequence[Tutor],
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
) -> dict[int, list[Interval]]:
    """Busy time per tutor id in [start, end) that is not the calendar: the profile's closures
    (everyone) and the time outside each tutor's working hours. Shrunk by the profile's buffer:
    the buffer is room between lessons, not before a working day or a holiday."""
    first, last = start.astimezone(tz).date(), end.astimezone(tz).date()
    closed = [
        (midnight(c.start_date, tz), midnight(c.end_date + timedelta(days=1), tz))
        for c in closures_for(session, profile, first, last)
    ]
    hours = _hours_by_tutor(session, [stored_id(t) for t in tutors])
    buffer = timedelta(minutes=profile.buffer_minutes or 0)
    out: dict[int, list[Interval]] = {}
    for tutor in tutors:
        week = hours.get(stored_id(tutor))
        outside = outside_hours(week, start, end, tz) if week else []
        out[stored_id(tutor)] = _shrink(closed + outside, buffer)
    return out


def refuse_closed(
    session: Session,
    profile: PlanningProfile,
    tutors: Sequence[Tutor],
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    when: str,
) -> list[Tutor]:
    """The tutors who work all of [start, end); SlotNotOffered when a closure covers it (with the
    closure's name) or nobody works then. Like a time outside the profile's window, a closure is
    not offered, so it is not bookable either (422, not 409: no other tutor can take it)."""
    first, last = start.astimezone(tz).date(), (end - timedelta(microseconds=1)).astimezone(tz).date()
    for closure in closures_for(session, profile, first, last):
        raise SlotNotOffered(f"{when} falls in a closure ({closure.name}): no lessons are given then.")
    hours = _hours_by_tutor(session, [stored_id(t) for t in tutors])
    working = [
        t
        for t in tutors
        if stored_id(t) not in hours or not outside_hours(hours[stored_id(t)], start, end, tz)
    ]
    if not working:
        raise SlotNotOffered(f"{when} is outside the working hours of every tutor of this profile.")
    return working


# --- closures: edits -----------------------------------------------------------------------------

CLOSURE_MAX_DAYS = 120  # a closure longer than this is almost always a typo in the year


def _check_range(start_date: date, end_date: date, name: str) -> str:
    if not isinstance(start_date, date) or not isinstance(end_date, date):
        raise ValidationFailed("Give a first and a last date.")
    if end_date < start_date:
        raise ValidationFailed("The last day must be on or after the first day.")
    if (end_date - start_date).days >= CLOSURE_MAX_DAYS:
        raise ValidationFailed(f"A closure of more than {CLOSURE_MAX_DAYS} days: check the year.")
    name = (name or "").strip()
    if not name:
        raise ValidationFailed("Give the closure a name (it is shown on the availability grid).")
    return name[:120]


def _check_region(region: str | None) -> str | None:
    region = (region or "").strip().lower() or None
    if region is not None and region not in SCHOOL_REGIONS:
        raise ValidationFailed(f"Region must be one of {', '.join(SCHOOL_REGIONS)}, or empty for all.")
    return region


def _closure_dict(c: Closure) -> dict[str, Any]:
    return {
        "start_date": c.start_date,
        "end_date": c.end_date,
        "name": c.name,
        "source": c.source,
        "region": c.region,
        "active": c.active,
    }


def add_closure(
    actor: User,
    start_date: date,
    end_date: date,
    name: str,
    region: str | None = None,
    *,
    source: str = "admin",
) -> Closure:
    """A business closure (admins), or one school holiday entered by hand (`source="import"`)."""
    name = _check_range(start_date, end_date, name)
    if source not in ("admin", "import"):
        raise ValidationFailed("A closure is a business closure or a school holiday.")
    region = _check_region(region) if source == "import" else None
    with write_session() as session:
        who = current_actor(session, actor, "admin")
        closure = Closure(
            start_date=start_date,
            end_date=end_date,
            name=name,
            source=source,
            region=region,
            created_by=who.email,
        )
        session.add(closure)
        session.flush()
        audit(session, who, "closure.add", "Closure", closure.id, None, _closure_dict(closure))
    return closure


def update_closure(actor: User, closure_id: int, **changes: Any) -> Closure:
    """Edit a school holiday or business closure: dates, name, region, active."""
    allowed = {"start_date", "end_date", "name", "region", "active"}
    if set(changes) - allowed:
        raise ValidationFailed(f"Only {', '.join(sorted(allowed))} can be changed.")
    with write_session() as session:
        who = current_actor(session, actor, "admin")
        closure = session.get(Closure, closure_id)
        if closure is None or closure.source == "holidays":
            raise NotFound("That closure does not exist.")
        before = _closure_dict(closure)
        start_date = changes.get("start_date", closure.start_date)
        end_date = changes.get("end_date", closure.end_date)
        closure.name = _check_range(start_date, end_date, changes.get("name", closure.name))
        closure.start_date, closure.end_date = start_date, end_date
        if "region" in changes and closure.source == "import":
            closure.region = _check_region(changes["region"])
        if "active" in changes:
            closure.active = bool(changes["active"])
        audit(session, who, "closure.update", "Closure", closure.id, before, _closure_dict(closure))
    return closure


def remove_closure(actor: User, closure_id: int) -> None:
    with write_session() as session:
        who = current_actor(session, actor, "admin")
        closure = session.get(Closure, closure_id)
        if closure is None or closure.source == "holidays":
            raise NotFound("That closure does not exist.")
        audit(session, who, "closure.remove", "Closure", closure.id, _closure_dict(closure), None)
        session.delete(closure)


def set_public_holiday(actor: User, day: date, *, applies: bool) -> None:
    """Whether the package's public holiday on `day` applies (lessons given anyway when not)."""
    names = dict(public_holidays(day, day))
    if day not in names:
        raise NotFound(f"{day:%d-%m-%Y} is not a public holiday.")
    with write_session() as session:
        who = current_actor(session, actor, "admin")
        row = session.exec(
            select(Closure).where(Closure.source == "holidays", Closure.start_date == day)
        ).first()
        before = None if row is None else {"applies": row.active}
        if row is None:
            row = Closure(
                start_date=day, end_date=day, name=names[day], source="holidays", created_by=who.email
            )
            session.add(row)
        row.active = applies
        session.flush()
        audit(
            session,
            who,
            "closure.public_holiday",
            "Closure",
            row.id,
            before,
            {"date": day, "name": names[day], "applies": applies},
        )


# --- school holidays: CSV import with a preview ---------------------------------------------------

MAX_CLOSURE_ROWS = 500
_HEADERS = {
    "name": {"naam", "name", "vakantie", "omschrijving"},
    "region": {"regio", "region"},
    "start_date": {"van", "vanaf", "start", "begin", "start_date", "eerste dag"},
    "end_date": {"tot", "tot en met", "t/m", "einde", "end", "end_date", "laatste dag"},
}
_ALL_REGIONS = {"", "alle", "all", "heel nederland", "nederland", "landelijk"}


@dataclass
class ClosurePreview:
    valid: list[dict[str, Any]] = field(default_factory=list)  # row, name, region, start_date, end_date
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[dict[str, Any]] = field(default_factory=list)  # row, raw, error
    truncated: bool = False


def _parse_date(raw: str) -> date:
    raw = raw.strip()
    try:
        if re.fullmatch(r"\d{4}-\d{1,2}-\d{1,2}", raw):
            return date.fromisoformat("-".join(p.zfill(2) for p in raw.split("-")))
        m = re.fullmatch(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4})", raw)
        if m:
            return date(int(m[3]), int(m[2]), int(m[1]))
    except ValueError:
        pass
    raise ValidationFailed(f"'{raw}' is not a date (use 2027-02-20 or 20-02-2027)")


def parse_closures_csv(data: bytes | str) -> ClosurePreview:
    """Read school holidays from a spreadsheet export (`,`, `;` or TAB): a header row naming the
    columns naam, regio, van, tot (or name, region, start, end); region noord, midden or zuid, or
    empty for all regions; dates as 2027-02-20 or 20-02-2027, both days included. Nothing is
    written: the console shows this preview, then `import_closures` adds the valid rows."""
    text = data if isinstance(data, str) else _decode(data)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    rows = list(csv.reader(io.StringIO(text), dialect))
    preview = ClosurePreview()
    if not rows:
        return preview
    header = [c.strip().lower() for c in rows[0]]
    columns = {
        key: next((i for i, h in enumerate(header) if h in names), None) for key, names in _HEADERS.items()
    }
    missing = [k for k in ("name", "start_date", "end_date") if columns[k] is None]
    if missing:
        raise ValidationFailed("The file needs a header row with the columns naam, regio, van, tot.")
    seen: set[tuple[Any, ...]] = set()
    existing = _existing_imports()
    for number, row in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in row):
            continue
        if len(preview.valid) + len(preview.invalid) + len(preview.duplicates) >= MAX_CLOSURE_ROWS:
            preview.truncated = True
            break

        def cell(key: str, row: list[str] = row) -> str:
            i = columns[key]
            return row[i].strip() if i is not None and i < len(row) else ""

        raw = "; ".join(c.strip() for c in row)
        try:
            region_raw = cell("region").lower()
            region = None if region_raw in _ALL_REGIONS else _check_region(region_raw)
            start_date, end_date = _parse_date(cell("start_date")), _parse_date(cell("end_date"))
            name = _check_range(start_date, end_date, cell("name"))
        except ValidationFailed as exc:
            preview.invalid.append({"row": number, "raw": raw, "error": exc.message})
            continue
        record = {
            "row": number,
            "name": name,
            "region": region,
            "start_date": start_date,
            "end_date": end_date,
        }
        key = (name, region, start_date, end_date)
        if key in seen or key in existing:
            why = "repeated in the file" if key in seen else "already imported"
            preview.duplicates.append({**record, "why": why})
            continue
        seen.add(key)
        preview.valid.append(record)
    return preview


def _decode(data: bytes) -> str:
    for encoding in ("utf-8-sig", "cp1252"):  # Excel on Windows saves CSV as cp1252
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _existing_imports() -> set[tuple[Any, ...]]:
    with read_session() as session:
        rows = session.exec(select(Closure).where(Closure.source == "import")).all()
        return {(r.name, r.region, r.start_date, r.end_date) for r in rows}


def import_closures(actor: User, records: Iterable[dict[str, Any]]) -> int:
    """Add the preview's valid school holidays in one transaction; returns how many were new."""
    added = 0
    with write_session() as session:
        who = current_actor(session, actor, "admin")
        existing = {
            (r.name, r.region, r.start_date, r.end_date)
            for r in session.exec(select(Closure).where(Closure.source == "import")).all()
        }
        for record in records:
            name = _check_range(record["start_date"], record["end_date"], record["name"])
            region = _check_region(record.get("region"))
            key = (name, region, record["start_date"], record["end_date"])
            if key in existing:
                continue
            existing.add(key)
            session.add(
                Closure(
                    start_date=record["start_date"],
                    end_date=record["end_date"],
                    name=name,
                    source="import",
                    region=region,
                    created_by=who.email,
                )
            )
            added += 1
        audit(session, who, "closure.import", "Closure", "school", None, {"added": added})
    return added


def closure_list(session: Session, first: date, last: date) -> list[dict[str, Any]]:
    """Every closure from `first` through `last` for the console: the public holidays (with
    whether they apply), school holidays and business closures (with their ids, editable)."""
    rows = _closure_rows(session, first, last)
    off = {r.start_date for r in rows if r.source == "holidays" and not r.active}
    out: list[dict[str, Any]] = [
        {
            "id": None,
            "start_date": d,
            "end_date": d,
            "name": n,
            "source": "holidays",
            "region": None,
            "active": d not in off,
        }
        for d, n in public_holidays(first, last)
    ]
    out += [{"id": r.id, **_closure_dict(r)} for r in rows if r.source != "holidays"]
    return sorted(out, key=lambda c: (c["start_date"], c["end_date"], c["name"]))


# --- tutors' working hours ---------------------------------------------------------------------


def tutor_hours(session: Session, tutor_id: int) -> list[TutorHours]:
    return list(
        session.exec(
            select(TutorHours)
            .where(TutorHours.tutor_id == tutor_id)
            .order_by(col(TutorHours.weekday), col(TutorHours.start_minute))
        ).all()
    )


def _check_hours(blocks: Iterable[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    cleaned = []
    for weekday, start, end in blocks:
        if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
            raise ValidationFailed("A weekday is 0 (Monday) to 6 (Sunday).")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= 24 * 60):
            raise ValidationFailed(
                "Working hours run from a time to a later time on the same day (at most 24:00)."
            )
        cleaned.append((weekday, start, end))
    cleaned.sort()
    for (d1, _s1, e1), (d2, s2, _e2) in zip(cleaned, cleaned[1:], strict=False):
        if d1 == d2 and s2 < e1:
            raise ValidationFailed("Two blocks of working hours on one day overlap; join them into one.")
    return cleaned


def set_tutor_hours(actor: User, tutor_id: int, blocks: Iterable[tuple[int, int, int]]) -> list[TutorHours]:
    """Replace a tutor's weekly working hours by `blocks` of (weekday, start minute, end minute),
    local wall-clock time; none = the profile's window. Admins for anyone, tutors for themselves."""
    cleaned = _check_hours(blocks)
    with write_session() as session:
        who = current_actor(session, actor, "admin", "tutor")
        tutor = session.get(Tutor, tutor_id)
        if tutor is None:
            raise NotFound("That tutor does not exist.")
        if who.role != "admin" and not is_own_tutor(who, tutor):
            raise PermissionDenied("You can only set your own working hours.")
        old = tutor_hours(session, tutor_id)
        before = [[h.weekday, h.start_minute, h.end_minute] for h in old]
        for h in old:
            session.delete(h)
        session.flush()
        rows = [TutorHours(tutor_id=tutor_id, weekday=d, start_minute=s, end_minute=e) for d, s, e in cleaned]
        session.add_all(rows)
        audit(
            session,
            who,
            "tutor.hours",
            "Tutor",
            tutor_id,
            {"hours": before},
            {"hours": [list(b) for b in cleaned]},
        )
    return rows


_TIME = r"(\d{1,2})(?:[:.](\d{2}))?"


def parse_hours_text(text: str) -> list[tuple[int, int]]:
    """'9:00-12:00, 13-17' → [(540, 720), (780, 1020)]; empty → none. For the console's fields."""
    blocks = []
    for part in re.split(r"[,;]", text or ""):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(_TIME + r"\s*(?:-|–|tot)\s*" + _TIME, part)
        if not m:
            raise ValidationFailed(f"'{part}' is not a time range; write e.g. 09:00-12:00.")
        start = int(m[1]) * 60 + int(m[2] or 0)
        end = int(m[3]) * 60 + int(m[4] or 0)
        if int(m[2] or 0) >= 60 or int(m[4] or 0) >= 60 or not 0 <= start < end <= 24 * 60:
            raise ValidationFailed(f"'{part}' does not run from a time to a later time on the same day.")
        blocks.append((start, end))
    return blocks


def hours_text(blocks: Iterable[tuple[int, int]]) -> str:
    """[(540, 720)] → '09:00-12:00' (24:00 stays 24:00)."""
    return ", ".join(f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in blocks)


def set_tutor_week(actor: User, tutor_id: int, texts: dict[int, str]) -> list[TutorHours]:
    """The console's form: one text per weekday (0 = Monday), e.g. '09:00-12:00, 13:00-17:00'."""
    blocks = []
    for weekday, text in sorted(texts.items()):
        try:
            blocks += [(weekday, s, e) for s, e in parse_hours_text(text)]
        except ValidationFailed as exc:
            raise ValidationFailed(f"{WEEKDAYS_EN[weekday]}: {exc.message}") from None
    return set_tutor_hours(actor, tutor_id, blocks)


WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def tutor_week(session: Session, tutor_id: int) -> dict[int, str]:
    """The console's view of a tutor's hours: weekday (0 = Monday) → '09:00-12:00, 13:00-17:00'."""
    rows = tutor_hours(session, tutor_id)
    return {d: hours_text((h.start_minute, h.end_minute) for h in rows if h.weekday == d) for d in range(7)}
