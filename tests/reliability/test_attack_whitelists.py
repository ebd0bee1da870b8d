"""Attack: the whitelist CSV import (core/whitelists.py parse_whitelist_csv), like the closures
import: a hostile or odd spreadsheet export ends as a preview with invalid rows or a
ValidationFailed the console shows, never an exception the page does not catch, and never a value
one of the two databases refuses."""

from __future__ import annotations

import pytest
from sqlmodel import select

from core import whitelists
from core.db import read_session, write_session
from core.errors import ValidationFailed
from core.models import User, WhitelistEntry

HEADER = b"telefoon,naam\n"


@pytest.fixture
def admin(engine) -> User:
    with write_session() as session:
        user = User(email="admin@example.nl", name="Beheer", role="admin")
        session.add(user)
        session.flush()
        return User(id=user.id, email=user.email, role="admin", active=True)


def test_a_cell_larger_than_the_csv_modules_field_limit_is_refused_with_a_message(admin):
    data = HEADER + b'"' + b"9" * 200_000 + b'",Piet\n'
    with pytest.raises(ValidationFailed, match="could not be read as CSV"):
        whitelists.parse_whitelist_csv(data, "weekend")


def test_a_file_with_old_mac_line_endings_is_read(admin):
    data = b"telefoon,naam\r+31612345678,Piet\r0687654321,Zo\xc3\xab\r"
    preview = whitelists.parse_whitelist_csv(data, "weekend")
    assert [r["identifier"] for r in preview.valid] == ["+31612345678", "+31687654321"]
    assert [r["note"] for r in preview.valid] == ["Piet", "Zoë"]


@pytest.mark.parametrize("bad", ["\x00", "\x1b[2J"])
def test_control_characters_never_reach_a_stored_note(admin, bad):
    """PostgreSQL refuses NUL in text: the import would fail there with a database error."""
    data = HEADER + f"+31612345678,Piet{bad}\n".encode()
    preview = whitelists.parse_whitelist_csv(data, "weekend")
    assert whitelists.import_whitelist(admin, "weekend", preview.valid) == 1
    with read_session() as session:
        [entry] = session.exec(select(WhitelistEntry)).all()
    assert entry.note is not None and bad not in entry.note and entry.note.startswith("Piet")


def test_an_over_long_note_is_cut_to_what_the_column_holds(admin):
    data = HEADER + b"+31612345678," + b"n" * 5000 + b"\n"
    preview = whitelists.parse_whitelist_csv(data, "weekend")
    assert whitelists.import_whitelist(admin, "weekend", preview.valid) == 1
    with read_session() as session:
        [entry] = session.exec(select(WhitelistEntry)).all()
    assert entry.note is not None and 0 < len(entry.note) <= 500
