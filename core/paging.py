"""Paging and filter helpers shared by the console's reads (the `*_queries` modules and the reads
in the domain modules): pages clamped in SQL, local dates turned into UTC bounds, LIKE patterns.

Results are frozen dataclasses defined next to their read function (module-level, so they pickle
and the console can cache them with st.cache_data): a page is a `PageResult[Row]`, so the type
checker knows the fields of its rows. Dates in filters are local dates in the business zone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Generic, TypeVar
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

DEFAULT_PAGE_SIZE = 50
EXPORT_LIMIT = 100_000  # a CSV larger than this is a job for the database, not the console


RowT = TypeVar("RowT")
_D = TypeVar("_D", bound="DataclassInstance")


@dataclass(frozen=True, slots=True)
class PageResult(Generic[RowT]):
    rows: list[RowT]
    total: int
    page: int
    page_size: int

    @property
    def pages(self) -> int:
        return max(1, math.ceil(self.total / self.page_size)) if self.page_size else 1


def row_from(row_type: type[_D], source: object) -> _D:
    """A `row_type` with each of its fields read from the attribute of that name on `source` (a
    database row): a column renamed in the model fails here, a column added is not shown until the
    row names it."""
    return row_type(**{f.name: getattr(source, f.name) for f in fields(row_type)})


def page_bounds(page: int, page_size: int) -> tuple[int, int]:
    page = max(1, int(page))
    page_size = max(1, min(int(page_size), 500))
    return page, page_size


def clamp_page(page: int, page_size: int, total: int) -> int:
    """A page past the end (the filter shrank the result) becomes the last page."""
    return min(page, max(1, math.ceil(total / page_size)))


def local_bounds(
    date_from: date | None, date_to: date | None, tz: ZoneInfo
) -> tuple[datetime | None, datetime | None]:
    """UTC [start, end) for local dates from..to inclusive; None where open."""
    lo = datetime.combine(date_from, time(0), tzinfo=tz).astimezone(UTC) if date_from else None
    hi = (
        datetime.combine(date_to + timedelta(days=1), time(0), tzinfo=tz).astimezone(UTC) if date_to else None
    )
    return lo, hi


def week_monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def like_pattern(query: str) -> str:
    escaped = query.strip().lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
