"""Small reusable console widgets: a pager, a date-range picker, a CSV download and a table.

Tables always go through st.dataframe, which shows cell values as plain text, so names and
descriptions typed by customers can never render as HTML or markdown.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Literal

import pandas as pd
import streamlit as st

from core import exports
from core.db import get_engine, read_session
from core.models import User
from core.paging import PageResult
from ui import data
from ui.errors import show_flash
from ui.i18n import tr
from ui.tables import as_cells

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

ROW_PX = 35  # st.dataframe's row (and header) height


def title(text: str) -> None:
    """The page title, then the message of the action that caused this rerun (if any)."""
    st.title(text)
    show_flash()


def pager(key: str, result: PageResult[Any]) -> None:
    """'1–50 of 20,000' and a page number; the page is read from st.session_state[key]
    by the caller before querying, so the control is drawn after the table."""
    if result.total == 0:
        return
    first = (result.page - 1) * result.page_size + 1
    last = min(result.total, result.page * result.page_size)
    if st.session_state.get(key, 1) != result.page:
        st.session_state[key] = result.page  # the query clamped it (fewer pages after a filter)
    left, right = st.columns([4, 1], vertical_alignment="center")
    left.caption(tr("rows_of", first=first, last=last, total=f"{result.total:,}".replace(",", ".")))
    if result.pages > 1:
        right.number_input(
            tr("page_n"), min_value=1, max_value=result.pages, step=1, key=key, label_visibility="collapsed"
        )


def page_number(key: str) -> int:
    value = st.session_state.get(key, 1)
    try:
        return max(1, int(value))
    except (TypeError, ValueError):
        return 1


def reset_page(key: str) -> Callable[[], None]:
    """A callback for filter widgets: a new filter starts at page 1."""

    def _reset() -> None:
        st.session_state[key] = 1

    return _reset


def date_range(
    key: str, default_from: date, default_to: date, on_change: Callable | None = None, container: Any = st
) -> tuple[date | None, date | None]:
    value = container.date_input(
        tr("date_range"), value=(default_from, default_to), key=key, format="DD-MM-YYYY", on_change=on_change
    )
    if isinstance(value, tuple | list):
        if len(value) == 2:
            return value[0], value[1]
        if len(value) == 1:  # the user picked the first day and not yet the second
            return value[0], value[0]
        return None, None
    return value, value


def table(
    rows: Sequence[DataclassInstance | Mapping[str, Any]] | pd.DataFrame,
    columns: Mapping[str, str],
    column_config: Mapping[str, Any] | None = None,
    height: int | Literal["stretch", "content", "auto"] | None = None,
    key: str | None = None,
    max_rows: int = 20,
) -> None:
    """Rows (typed rows from core, or dicts a page built) as a dataframe with translated headers;
    `columns` maps field names to header labels. Up to `max_rows` rows are shown without an inner
    scrollbar."""
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame([as_cells(r) for r in rows])
    frame = frame.reindex(columns=list(columns))
    for name in frame.columns:
        # Missing text shows as an empty cell, not as "None".
        if not (pd.api.types.is_numeric_dtype(frame[name]) or pd.api.types.is_bool_dtype(frame[name])):
            frame[name] = frame[name].astype(object).where(frame[name].notna(), "")
    frame = frame.rename(columns=dict(columns))
    config = {columns.get(k, k): v for k, v in (column_config or {}).items()}
    if height is None:
        height = (min(len(frame), max_rows) + 1) * ROW_PX + 3
    st.dataframe(frame, hide_index=True, width="stretch", height=height, column_config=config, key=key)


def csv_download(
    user: User,
    label: str,
    report: Callable[..., list[dict[str, Any]]],
    args: Sequence[Any],
    columns: Sequence[str],
    headers: Sequence[str] | None,
    file_name: str,
    key: str,
) -> None:
    """A download button that builds the CSV of `report(session, *args)` (an export in core.exports) only when
    clicked, so large exports stay off the render path. The click is served outside the script
    run, so everything it needs (database URL, zone, headers, the user as drawn) is captured now;
    core.exports checks the user's role again at the click and refuses a stale one (the browser
    then shows that the file could not be made)."""
    url, zone = data.db_url(), data.tz()
    columns, headers = list(columns), list(headers) if headers else None

    def _build() -> bytes:
        with read_session(get_engine(url)) as session:
            return exports.export_csv(session, user, report, args, columns, headers, zone)

    st.download_button(
        label,
        data=_build,
        file_name=file_name,
        mime="text/csv",
        key=key,
        icon=":material/download:",
        on_click="ignore",
    )


def default_range(days_back: int, days_ahead: int) -> tuple[date, date]:
    today = data.now_minute().astimezone(data.tz()).date()
    return today - timedelta(days=days_back), today + timedelta(days=days_ahead)


def import_summary(preview: Any) -> None:
    """What a CSV import would do (new, already there or twice, invalid) and whether the file was
    cut at the row limit: the same words for every import with a preview (whitelists, closures)."""
    st.markdown(
        tr(
            "wl.import.summary",
            valid=len(preview.valid),
            dupes=len(preview.duplicates),
            invalid=len(preview.invalid),
        )
    )
    if preview.truncated:
        st.warning(
            tr("wl.import.truncated", n=len(preview.valid) + len(preview.duplicates) + len(preview.invalid))
        )
