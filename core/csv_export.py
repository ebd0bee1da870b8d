"""CSV export for the console, safe to open in a spreadsheet.

A text cell that starts with `=`, `+`, `-`, `@`, a TAB or a CR is treated as a formula by Excel,
LibreOffice and Google Sheets, so a contact named `=HYPERLINK(...)` could run something on the
machine of whoever opens the export (CSV/formula injection, see OWASP). Such cells get a leading
single quote, which spreadsheets show as text. Numbers we produce ourselves are left as numbers.

Datetimes are written in the business zone as `YYYY-MM-DD HH:MM`, which every spreadsheet reads.
The file is UTF-8 with a BOM so Excel shows names like "Zoë" correctly.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any, tz: ZoneInfo | None = None) -> Any:
    """One cell as the spreadsheet should see it: numbers stay numbers, text that could be read
    as a formula gets a leading quote, datetimes are local and readable."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is not None and tz is not None:
            value = value.astimezone(tz)
        return value.strftime("%Y-%m-%d %H:%M")
    if isinstance(value, date):
        return value.isoformat()
    text = str(value)
    if text.startswith(FORMULA_PREFIXES):
        return "'" + text
    return text


def to_csv(
    rows: Iterable[Mapping[str, Any]],
    columns: Sequence[str],
    headers: Sequence[str] | None = None,
    tz: ZoneInfo | None = None,
) -> bytes:
    """Rows (mappings) as CSV bytes with the given columns in order; headers default to columns.
    Header labels go through the same guard: they may come from translations."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([safe_cell(h) for h in (headers or columns)])
    for row in rows:
        writer.writerow([safe_cell(row.get(c), tz) for c in columns])
    return buffer.getvalue().encode("utf-8-sig")
