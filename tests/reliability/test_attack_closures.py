"""Attack: the school-holiday CSV import (core/closures.py parse_closures_csv). A hostile or odd
file must end as a preview with invalid rows or a ValidationFailed the console shows, never an
exception the page does not catch (app_pages/closures.py catches LesplannerError only), and
never a value one of the two databases refuses."""

from __future__ import annotations

import pytest

from core.closures import parse_closures_csv
from core.errors import ValidationFailed

HEADER = b"naam,regio,van,tot\n"


def _parse_or_refuse(data: bytes):
    try:
        return parse_closures_csv(data)
    except ValidationFailed:
        return None


def test_a_cell_larger_than_the_csv_modules_field_limit_is_refused_not_a_crash(engine):
    data = HEADER + b'"' + b"x" * 200_000 + b'",noord,2027-02-20,2027-02-28\n'
    _parse_or_refuse(data)  # raises _csv.Error today: the console page shows a traceback


def test_a_file_with_old_mac_line_endings_is_read_or_refused_not_a_crash(engine):
    data = b"naam,regio,van,tot\rvoorjaar,noord,2027-02-20,2027-02-28\r"
    _parse_or_refuse(data)  # _csv.Error "new-line character seen in unquoted field"


@pytest.mark.parametrize("bad", ["\x00", "\x1b[2J"])
def test_control_characters_never_reach_a_closure_name(engine, bad):
    """PostgreSQL refuses NUL in text (import_closures would fail with a database error there,
    while SQLite stores it); control characters have no place in a name shown on the grid."""
    data = HEADER + f"voorjaar{bad},noord,2027-02-20,2027-02-28\n".encode()
    preview = _parse_or_refuse(data)
    assert preview is None or all(bad not in r["name"] for r in preview.valid)
