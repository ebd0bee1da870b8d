"""Whitelists as staff edit them in the console: add or remove one identifier, import a spreadsheet
export (preview first, then add the valid rows in one transaction), and the pages and exports of a
list. Each write checks the actor (admin) and leaves an AuditLog row. What a whitelist means for a
contact's segment, and how identifiers are normalised, is in core/segments.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func
from sqlmodel import Session, col, select

from core.audit import audit, current_actor
from core.csv_import import clean_text, read_rows
from core.db import read_session, write_session
from core.errors import NotFound, ValidationFailed
from core.models import WHITELISTS, User, WhitelistEntry
from core.paging import (
    DEFAULT_PAGE_SIZE,
    EXPORT_LIMIT,
    PageResult,
    clamp_page,
    like_pattern,
    page_bounds,
    row_from,
)
from core.segments import NOTE_LENGTH, add_to_whitelist, normalise_identifier

MAX_IMPORT_ROWS = 10_000


def _check_list(list_name: str) -> None:
    if list_name not in WHITELISTS:
        raise ValidationFailed(f"Unknown list '{list_name}'; use one of: {', '.join(WHITELISTS)}.")


def whitelist_add(
    actor: User, list_name: str, identifier: str, note: str | None = None
) -> WhitelistEntry | None:
    """Add one identifier; None when it was already on the list."""
    _check_list(list_name)
    with write_session() as session:
        who = current_actor(session, actor, "admin")
        entry = add_to_whitelist(session, list_name, identifier, note=note or None, added_by=who.email)
        if entry is not None:
            audit(
                session,
                who,
                "whitelist.add",
                "WhitelistEntry",
                f"{list_name}:{entry.identifier}",
                None,
                {"list": list_name, "identifier": entry.identifier, "note": entry.note},
            )
    return entry


def whitelist_remove(actor: User, entry_id: int) -> None:
    with write_session() as session:
        who = current_actor(session, actor, "admin")
        entry = session.get(WhitelistEntry, entry_id)
        if entry is None:
            raise NotFound("That whitelist entry no longer exists.")
        audit(
            session,
            who,
            "whitelist.remove",
            "WhitelistEntry",
            f"{entry.list}:{entry.identifier}",
            {"list": entry.list, "identifier": entry.identifier, "note": entry.note},
            None,
        )
        session.delete(entry)


# Header → the kind of identifier that column must hold (None: any kind).
_IDENTIFIER_HEADERS = {
    **dict.fromkeys(
        (
            "phone",
            "telefoon",
            "telefoonnummer",
            "tel",
            "mobiel",
            "mobile",
            "nummer",
            "number",
            "phone_number",
        ),
        "phone",
    ),
    **dict.fromkeys(("email", "e-mail", "mail", "emailadres", "e-mailadres"), "email"),
    **dict.fromkeys(("identifier", "contact_id", "contact", "kenmerk"), None),
}
_NOTE_HEADERS = {"note", "notitie", "opmerking", "naam", "name"}


@dataclass
class ImportPreview:
    """What an import would do: rows to add, rows already present, rows that are invalid."""

    valid: list[dict[str, Any]] = field(default_factory=list)  # row, raw, identifier, kind, note
    duplicates: list[dict[str, Any]] = field(default_factory=list)  # already listed or repeated
    invalid: list[dict[str, Any]] = field(default_factory=list)  # row, raw, error
    truncated: bool = False

    @property
    def identifiers(self) -> list[str]:
        return [r["identifier"] for r in self.valid]


def parse_whitelist_csv(data: bytes | str, list_name: str) -> ImportPreview:
    """Read a spreadsheet export (CSV with `,`, `;` or TAB) of phone numbers, e-mail addresses or
    contact ids. A header row naming the column (phone, telefoon, email, ...) is optional; without
    one the first column is used and any kind of identifier is accepted. Under a phone or e-mail
    header every row must be one. Nothing is written."""
    _check_list(list_name)
    rows = read_rows(data)
    preview = ImportPreview()
    column, note_column, first, expected = 0, None, 0, None
    if rows:
        header = [c.strip().lower() for c in rows[0]]
        hits = [i for i, h in enumerate(header) if h in _IDENTIFIER_HEADERS]
        if hits:
            column, first = hits[0], 1
            expected = _IDENTIFIER_HEADERS[header[column]]
            notes = [i for i, h in enumerate(header) if h in _NOTE_HEADERS]
            note_column = notes[0] if notes else None
    seen: set[str] = set()
    for number, row in enumerate(rows[first:], start=first + 1):
        if not any(c.strip() for c in row):
            continue
        if len(preview.valid) + len(preview.invalid) + len(preview.duplicates) >= MAX_IMPORT_ROWS:
            preview.truncated = True
            break
        raw = row[column].strip() if column < len(row) else ""
        note = (
            clean_text(row[note_column], NOTE_LENGTH)
            if note_column is not None and note_column < len(row)
            else None
        )
        try:
            kind, identifier = normalise_identifier(raw)
        except ValidationFailed as exc:
            preview.invalid.append({"row": number, "raw": raw, "error": exc.message})
            continue
        if expected is not None and kind != expected:
            # A typo in a phone column must not silently become a contact id.
            preview.invalid.append(
                {
                    "row": number,
                    "raw": raw,
                    "error": f"'{raw}' is not a valid {'phone number' if expected == 'phone' else 'e-mail address'}",
                }
            )
            continue
        record = {"row": number, "raw": raw, "identifier": identifier, "kind": kind, "note": note or None}
        if identifier in seen:
            preview.duplicates.append({**record, "why": "repeated in the file"})
            continue
        seen.add(identifier)
        preview.valid.append(record)
    if preview.valid:
        existing = _existing_identifiers(list_name, [r["identifier"] for r in preview.valid])
        keep = []
        for record in preview.valid:
            if record["identifier"] in existing:
                preview.duplicates.append({**record, "why": "already on the list"})
            else:
                keep.append(record)
        preview.valid = keep
    return preview


def _existing_identifiers(list_name: str, identifiers: Sequence[str]) -> set[str]:
    found: set[str] = set()
    with read_session() as session:
        for i in range(0, len(identifiers), 500):  # stay below SQLite's bound-parameter limit
            chunk = list(identifiers[i : i + 500])
            found.update(
                session.exec(
                    select(WhitelistEntry.identifier).where(
                        WhitelistEntry.list == list_name, col(WhitelistEntry.identifier).in_(chunk)
                    )
                ).all()
            )
    return found


def import_whitelist(
    actor: User, list_name: str, records: Iterable[dict[str, Any]], note: str | None = None
) -> int:
    """Add the preview's valid rows in one transaction; returns how many were new."""
    _check_list(list_name)
    added: list[str] = []
    with write_session() as session:
        who = current_actor(session, actor, "admin")
        for record in records:
            entry = add_to_whitelist(
                session,
                list_name,
                record["identifier"],
                note=record.get("note") or note or None,
                added_by=who.email,
            )
            if entry is not None:
                added.append(entry.identifier)
        audit(
            session,
            who,
            "whitelist.import",
            "WhitelistEntry",
            list_name,
            None,
            {"list": list_name, "added": len(added), "first": added[:20]},
        )
    return len(added)


# --- reads ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class WhitelistRow:
    id: int
    list: str  # the list's name: weekend | existing | ...
    identifier: str
    note: str | None
    added_by: str | None
    added_at: datetime


def whitelist_page(
    session: Session, list_name: str, query: str = "", page: int = 1, page_size: int = DEFAULT_PAGE_SIZE
) -> PageResult[WhitelistRow]:
    page, page_size = page_bounds(page, page_size)
    where: list[ColumnElement[bool]] = [col(WhitelistEntry.list) == list_name]
    if query and query.strip():
        where.append(func.lower(col(WhitelistEntry.identifier)).like(like_pattern(query), escape="\\"))
    total = session.exec(select(func.count(col(WhitelistEntry.id))).where(*where)).one()
    page = clamp_page(page, page_size, total)
    rows = session.exec(
        select(WhitelistEntry)
        .where(*where)
        .order_by(col(WhitelistEntry.added_at).desc(), col(WhitelistEntry.id).desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return PageResult([row_from(WhitelistRow, r) for r in rows], total, page, page_size)


def whitelist_export(session: Session, list_name: str) -> list[dict[str, Any]]:
    rows = session.exec(
        select(WhitelistEntry)
        .where(WhitelistEntry.list == list_name)
        .order_by(col(WhitelistEntry.identifier))
        .limit(EXPORT_LIMIT)
    ).all()
    return [r.model_dump() for r in rows]
