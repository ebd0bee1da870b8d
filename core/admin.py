"""Writes made from the console: profiles, segment mapping, contact overrides, whitelists, users,
time off. Each one checks the actor's role itself and leaves an AuditLog row.

The role check happens here and not only in the page: a page hides what a role may not use,
but these functions are the last line, so a tutor cannot change a profile or another tutor's
calendar whatever the UI does. The actor is re-read inside the write transaction, so an account
deactivated a second ago can no longer act.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from core import clock, users
from core.audit import audit, current_actor
from core.booking import slots_for_profile, tutors_for_profile
from core.db import read_session, write_session
from core.errors import (
    InvalidProfile,
    NotFound,
    PermissionDenied,
    ValidationFailed,
)
from core.models import (
    ROLES,
    WHITELISTS,
    BusyBlock,
    PlanningProfile,
    SegmentProfile,
    Tutor,
    User,
    WhitelistEntry,
)
from core.profiles import EDITABLE_FIELDS, get_profile, profile_values, validate_profile
from core.segments import add_to_whitelist, normalise_identifier, validate_segment
from core.slots import Slot, require_aware

MAX_IMPORT_ROWS = 10_000
BUSY_BLOCK_MAX = timedelta(days=62)  # longer time off is almost always a typo in the year


# --- actors and audit --------------------------------------------------------------------------


_actor = current_actor  # short names used throughout this module


def _audit(session: Session, actor: User, action: str, entity: str, entity_id: Any,
           before: dict[str, Any] | None = None, after: dict[str, Any] | None = None) -> None:
    audit(session, actor, action, entity, entity_id, before, after)


def _own_tutor(session: Session, actor: User, tutor: Tutor) -> bool:
    return bool(tutor.email and tutor.email.strip().lower() == actor.email.strip().lower())


# --- planning profiles -------------------------------------------------------------------------


def _merged_profile_values(session: Session, name: str, values: dict[str, Any]) -> dict[str, Any]:
    current = session.get(PlanningProfile, name)
    if current is None:
        raise NotFound(f"Unknown planning profile '{name}'.")
    merged = profile_values(current)
    merged.update({k: v for k, v in values.items() if k in EDITABLE_FIELDS})
    merged["name"] = name
    return validate_profile(merged)


def update_profile(actor: User, name: str, values: dict[str, Any]) -> PlanningProfile:
    """Change a profile's fields (validated; InvalidProfile names the field)."""
    with write_session() as session:
        who = _actor(session, actor, "admin")
        cleaned = _merged_profile_values(session, name, values)
        profile = session.get(PlanningProfile, name)
        if profile.active and not cleaned.get("active", True):
            used_by = session.exec(select(SegmentProfile.segment).where(SegmentProfile.profile_name == name)).all()
            if used_by:
                raise InvalidProfile(
                    "active", f"segment {', '.join(used_by)} still uses this profile; map it to another one first"
                )
        before = profile_values(profile)
        for key in EDITABLE_FIELDS:
            if key in cleaned:
                setattr(profile, key, cleaned[key])
        profile.updated_at = clock.now()
        session.add(profile)
        after = profile_values(profile)
        changed = {k for k in after if after[k] != before[k]}
        _audit(session, who, "profile.update", "PlanningProfile", name,
               {k: before[k] for k in changed}, {k: after[k] for k in changed})
    return profile


def preview_profile(name: str, values: dict[str, Any], now: datetime | None = None,
                    limit: int | None = None) -> list[Slot]:
    """The slots the edited (unsaved) profile would offer now, against current busy time.
    Raises InvalidProfile for bad values and CalendarUnavailable when busy time is unknown."""
    now = now or clock.now()
    with read_session() as session:
        cleaned = _merged_profile_values(session, name, values)
        draft = PlanningProfile(**cleaned)  # never added to the session: a what-if
        tutors = tutors_for_profile(session, name)
        return slots_for_profile(session, draft, now, limit=limit, tutors=tutors)


def set_segment_profile(actor: User, segment: str, profile_name: str) -> None:
    with write_session() as session:
        who = _actor(session, actor, "admin")
        segment = validate_segment(segment)
        if segment is None:
            raise ValidationFailed("Choose a segment.")
        get_profile(session, profile_name)  # must exist and be active
        row = session.get(SegmentProfile, segment)
        before = {"profile_name": row.profile_name} if row else None
        if row is None:
            row = SegmentProfile(segment=segment, profile_name=profile_name)
        row.profile_name = profile_name
        session.add(row)
        _audit(session, who, "segment_profile.update", "SegmentProfile", segment, before,
               {"profile_name": profile_name})


# --- whitelists --------------------------------------------------------------------------------


def _check_list(list_name: str) -> None:
    if list_name not in WHITELISTS:
        raise ValidationFailed(f"Unknown list '{list_name}'; use one of: {', '.join(WHITELISTS)}.")


def whitelist_add(actor: User, list_name: str, identifier: str, note: str | None = None) -> WhitelistEntry | None:
    """Add one identifier; None when it was already on the list."""
    _check_list(list_name)
    with write_session() as session:
        who = _actor(session, actor, "admin")
        entry = add_to_whitelist(session, list_name, identifier, note=note or None, added_by=who.email)
        if entry is not None:
            _audit(session, who, "whitelist.add", "WhitelistEntry", f"{list_name}:{entry.identifier}",
                   None, {"list": list_name, "identifier": entry.identifier, "note": entry.note})
    return entry


def whitelist_remove(actor: User, entry_id: int) -> None:
    with write_session() as session:
        who = _actor(session, actor, "admin")
        entry = session.get(WhitelistEntry, entry_id)
        if entry is None:
            raise NotFound("That whitelist entry no longer exists.")
        _audit(session, who, "whitelist.remove", "WhitelistEntry", f"{entry.list}:{entry.identifier}",
               {"list": entry.list, "identifier": entry.identifier, "note": entry.note}, None)
        session.delete(entry)


# Header → the kind of identifier that column must hold (None: any kind).
_IDENTIFIER_HEADERS = {
    **dict.fromkeys(("phone", "telefoon", "telefoonnummer", "tel", "mobiel", "mobile", "nummer", "number",
                     "phone_number"), "phone"),
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


def _decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    for encoding in ("utf-8-sig", "cp1252"):  # Excel on Windows saves CSV as cp1252
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _read_rows(text: str) -> list[list[str]]:
    sample = text[:4096]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    return list(csv.reader(io.StringIO(text), dialect))


def parse_whitelist_csv(data: bytes | str, list_name: str) -> ImportPreview:
    """Read a spreadsheet export (CSV with `,`, `;` or TAB) of phone numbers, e-mail addresses or
    contact ids. A header row naming the column (phone, telefoon, email, ...) is optional; without
    one the first column is used and any kind of identifier is accepted. Under a phone or e-mail
    header every row must be one. Nothing is written."""
    _check_list(list_name)
    rows = _read_rows(_decode(data))
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
        note = row[note_column].strip() if note_column is not None and note_column < len(row) else None
        try:
            kind, identifier = normalise_identifier(raw)
        except ValidationFailed as exc:
            preview.invalid.append({"row": number, "raw": raw, "error": exc.message})
            continue
        if expected is not None and kind != expected:
            # A typo in a phone column must not silently become a contact id.
            preview.invalid.append({"row": number, "raw": raw,
                                    "error": f"'{raw}' is not a valid {'phone number' if expected == 'phone' else 'e-mail address'}"})
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
            chunk = list(identifiers[i:i + 500])
            found.update(session.exec(
                select(WhitelistEntry.identifier)
                .where(WhitelistEntry.list == list_name, col(WhitelistEntry.identifier).in_(chunk))
            ).all())
    return found


def import_whitelist(actor: User, list_name: str, records: Iterable[dict[str, Any]],
                     note: str | None = None) -> int:
    """Add the preview's valid rows in one transaction; returns how many were new."""
    _check_list(list_name)
    added: list[str] = []
    with write_session() as session:
        who = _actor(session, actor, "admin")
        for record in records:
            entry = add_to_whitelist(session, list_name, record["identifier"],
                                     note=record.get("note") or note or None, added_by=who.email)
            if entry is not None:
                added.append(entry.identifier)
        _audit(session, who, "whitelist.import", "WhitelistEntry", list_name, None,
               {"list": list_name, "added": len(added), "first": added[:20]})
    return len(added)


# --- users -------------------------------------------------------------------------------------


def create_user(actor: User, email: str, role: str, name: str = "") -> tuple[User, str]:
    """A new account with a random password, returned once to show to the admin."""
    with write_session() as session:
        who = _actor(session, actor, "admin")
        return users.create_user(session, email, role, name=name, actor=who.email)


def _active_admins(session: Session) -> int:
    return session.exec(select(func.count()).select_from(User)
                        .where(User.role == "admin", User.active == True)).one()  # noqa: E712


def set_user_active(actor: User, user_id: int, active: bool) -> User:
    with write_session() as session:
        who = _actor(session, actor, "admin")
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("That account does not exist.")
        if not active and user.id == who.id:
            raise ValidationFailed("You cannot deactivate your own account.")
        if not active and user.role == "admin" and user.active and _active_admins(session) <= 1:
            raise ValidationFailed("This is the last active admin; create another admin first.")
        before = {"active": user.active}
        if user.active != active:
            users.end_sessions(user)
        user.active = active
        session.add(user)
        _audit(session, who, "user.activate" if active else "user.deactivate", "User", user.email,
               before, {"active": active})
    return user


def set_user_role(actor: User, user_id: int, role: str) -> User:
    if role not in ROLES:
        raise ValidationFailed(f"Unknown role '{role}'; use one of: {', '.join(ROLES)}.")
    with write_session() as session:
        who = _actor(session, actor, "admin")
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("That account does not exist.")
        if user.role == "admin" and role != "admin" and user.active and _active_admins(session) <= 1:
            raise ValidationFailed("This is the last active admin; create another admin first.")
        before = {"role": user.role}
        if user.role != role:
            users.end_sessions(user)
        user.role = role
        session.add(user)
        _audit(session, who, "user.role", "User", user.email, before, {"role": role})
    return user


def reset_password(actor: User, user_id: int) -> str:
    """A new random password for the account, returned once."""
    with write_session() as session:
        who = _actor(session, actor, "admin")
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("That account does not exist.")
        return users.set_password(session, user, None, actor=who.email)


# --- time off (local calendar backend) ---------------------------------------------------------


def add_busy_block(actor: User, tutor_id: int, start: datetime, end: datetime, reason: str = "") -> BusyBlock:
    """Time off for a tutor: admins for anyone, tutors for themselves."""
    start = require_aware(start, "start").astimezone(UTC)
    end = require_aware(end, "end").astimezone(UTC)
    if end <= start:
        raise ValidationFailed("The end of the time off must be after its start.")
    if end - start > BUSY_BLOCK_MAX:
        raise ValidationFailed("Time off longer than 62 days: split it up (or check the year).")
    with write_session() as session:
        who = _actor(session, actor, "admin", "tutor")
        tutor = session.get(Tutor, tutor_id)
        if tutor is None:
            raise NotFound("That tutor does not exist.")
        if who.role != "admin" and not _own_tutor(session, who, tutor):
            raise PermissionDenied("You can only enter time off in your own calendar.")
        block = BusyBlock(tutor_id=tutor_id, start=start, end=end, reason=(reason or "").strip()[:200] or None,
                          created_by=who.email)
        session.add(block)
        session.flush()
        _audit(session, who, "busy_block.add", "BusyBlock", block.id, None,
               {"tutor_id": tutor_id, "start": start, "end": end, "reason": block.reason})
    return block


def remove_busy_block(actor: User, block_id: int) -> None:
    with write_session() as session:
        who = _actor(session, actor, "admin", "tutor")
        block = session.get(BusyBlock, block_id)
        if block is None:
            raise NotFound("That time off no longer exists.")
        tutor = session.get(Tutor, block.tutor_id)
        if who.role != "admin" and not (tutor and _own_tutor(session, who, tutor)):
            raise PermissionDenied("You can only remove time off from your own calendar.")
        _audit(session, who, "busy_block.remove", "BusyBlock", block.id,
               {"tutor_id": block.tutor_id, "start": block.start, "end": block.end, "reason": block.reason}, None)
        session.delete(block)
