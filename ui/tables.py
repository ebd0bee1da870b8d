"""Typed rows (the frozen dataclasses core's console reads return) as the plain cells a table shows.

`widgets.table` takes dataclass rows as they are; a page that formats some cells first (a date, an
amount) writes `row_dict(row, created_at=fmt.fmt_dt(row.created_at))`: every field by name, with the
formatted cells replaced or added. Shallow, unlike `dataclasses.asdict`: a field holding a
dataclass or a list stays as it is.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields, is_dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from _typeshed import DataclassInstance


def row_dict(row: DataclassInstance, **cells: object) -> dict[str, Any]:
    """`row`'s fields by name, then `cells` (formatted values, extra columns) over them."""
    return {f.name: getattr(row, f.name) for f in fields(row)} | cells


def as_cells(row: DataclassInstance | Mapping[str, Any]) -> Mapping[str, Any]:
    """A dataclass row as a dict; a dict (a row a page built) as it is."""
    if is_dataclass(row) and not isinstance(row, type):
        return row_dict(row)
    assert isinstance(row, Mapping), type(row)
    return row
