"""Closures an admin keeps: business closures, imported school holidays (CSV with a preview, like the
whitelists) and which public holidays apply. core/availability.py turns them into busy time.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from sqlmodel import Session, select

from core.audit import audit, current_actor
from core.availability import closure_rows, public_holidays
from core.csv_import import read_rows
from core.db import read_session, write_session
from core.errors import NotFound, ValidationFailed
from core.models import (
    SCHOOL_REGIONS,
    Closure,
    User,
)
from core.paging import row_from

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
    if any(unicodedata.category(ch) == "Cc" for ch in name):  # PostgreSQL refuses NUL in text
        raise ValidationFailed("A closure's name may not contain control characters.")
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
    rows = read_rows(data)
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


@dataclass(frozen=True, slots=True)
class ClosureRow:
    id: int | None  # None for a public holiday (computed, not stored unless switched off)
    start_date: date
    end_date: date  # inclusive
    name: str
    source: str  # holidays | import | admin
    region: str | None
    active: bool  # whether it applies


def closure_list(session: Session, first: date, last: date) -> list[ClosureRow]:
    """Every closure from `first` through `last` for the console: the public holidays (with
    whether they apply), school holidays and business closures (with their ids, editable)."""
    rows = closure_rows(session, first, last)
    off = {r.start_date for r in rows if r.source == "holidays" and not r.active}
    out = [
        ClosureRow(
            id=None, start_date=d, end_date=d, name=n, source="holidays", region=None, active=d not in off
        )
        for d, n in public_holidays(first, last)
    ]
    out += [row_from(ClosureRow, r) for r in rows if r.source != "holidays"]
    return sorted(out, key=lambda c: (c.start_date, c.end_date, c.name))
