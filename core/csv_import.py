"""Reading a spreadsheet export someone uploads in the console (whitelists, school holidays).

One reader for every import, so each odd file is handled once: the encoding Excel chose (UTF-8
with or without BOM, or cp1252 on Windows), the delimiter (`,`, `;` or TAB, sniffed), old Mac
line ends (a bare CR), and what the csv module refuses (a cell over its field limit): that is a
ValidationFailed with a message the page shows, never an exception it does not catch. Free text
from a file passes `clean_text` before it is stored: PostgreSQL refuses NUL in text, and control
characters have no place in a note shown on a grid.
"""

from __future__ import annotations

import csv
import io
import unicodedata
from typing import Any

from core.errors import ValidationFailed


def decode(data: bytes | str) -> str:
    if isinstance(data, str):
        return data
    for encoding in ("utf-8-sig", "cp1252"):  # Excel on Windows saves CSV as cp1252
        try:
            return data.decode(encoding)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def read_rows(data: bytes | str) -> list[list[str]]:
    """The file's rows as lists of cells; ValidationFailed when it cannot be read as CSV."""
    text = decode(data)
    try:
        dialect: Any = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    try:  # newline=None: old Mac files end lines with a bare CR
        return list(csv.reader(io.StringIO(text, newline=None), dialect))
    except csv.Error as exc:  # e.g. a cell over the csv module's field limit
        raise ValidationFailed(f"The file could not be read as CSV: {exc}.") from None


def clean_text(value: str | None, max_length: int) -> str | None:
    """Free text for storing: control characters removed, cut to `max_length`, None when empty."""
    if value is None:
        return None
    kept = "".join(ch for ch in value if unicodedata.category(ch) != "Cc").strip()
    return kept[:max_length] or None
