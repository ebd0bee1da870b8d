"""The console's cached reads (ui/data.py) take the read function itself, and cache by the
function's module and qualified name, the database URL and every argument."""

from __future__ import annotations

import pickle
from datetime import UTC, datetime

from sqlmodel import Session

from core.db import read_session
from core.paging import PageResult
from core.payments.queries import FailedEvent
from core.profiles import profile_rows
from ui import data
from ui.tables import as_cells, row_dict

calls: list[tuple[str, tuple, dict]] = []


def first(session: Session, *args: object, **kwargs: object) -> str:
    calls.append(("first", args, kwargs))
    return "first"


def second(session: Session, *args: object, **kwargs: object) -> str:
    calls.append(("second", args, kwargs))
    return "second"


def test_the_key_names_the_function_by_module_and_qualified_name():
    assert data.function_key(profile_rows) == "core.profiles:profile_rows"
    assert data.function_key(first) != data.function_key(second)


def test_two_functions_with_the_same_arguments_never_share_an_answer(engine):
    data.clear()
    calls.clear()
    assert data.read(first, 1, page=2) == "first"
    assert data.read(second, 1, page=2) == "second"
    assert data.read(first, 1, page=2) == "first"  # cached
    assert [c[0] for c in calls] == ["first", "second"]
    data.read(first, 1, page=3)  # another argument, another answer
    assert calls[-1] == ("first", (1,), {"page": 3})
    data.clear()
    data.read(first, 1, page=2)  # a write clears every cached read
    assert len(calls) == 4


def test_a_read_runs_the_core_function_in_a_session(engine):
    data.clear()
    with read_session(engine) as session:
        direct = profile_rows(session)
    assert direct  # the seed profiles
    assert data.read(profile_rows) == direct


def test_typed_rows_become_table_cells_and_survive_the_cache(engine):
    when = datetime(2026, 12, 1, 9, tzinfo=UTC)
    event = FailedEvent(id="evt_1", type="charge.refunded", received_at=when, attempts=2, error=None)
    assert row_dict(event, received_at="01-12 10:00", extra=1) == {
        "id": "evt_1",
        "type": "charge.refunded",
        "received_at": "01-12 10:00",
        "attempts": 2,
        "error": None,
        "extra": 1,
    }
    assert as_cells(event) == row_dict(event) and as_cells({"a": 1}) == {"a": 1}
    page = PageResult([event], total=1, page=1, page_size=50)
    assert pickle.loads(pickle.dumps(page)) == page  # st.cache_data pickles what a read returns
