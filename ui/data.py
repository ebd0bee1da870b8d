"""Cached access to the database for the console.

The engine is a `st.cache_resource` (one per database URL per process). Reads go through
`read(function, ...)`, which runs a core read function (`function(session, *args, **kwargs)`,
e.g. `core.payments.queries.payments_page`) in a read session and caches the result for 30 s
with `st.cache_data`, keyed by the function's module and qualified name, the database URL and
every argument (filters, page, time zone), so two reads or two filter settings never share an
answer and tests with their own database never see each other's rows. Every write in the console
calls `clear()` afterwards, so the page that follows shows the change at once instead of up to
30 s later.

`read` is typed after the function it runs: `data.read(payments_page, ...)` is a
`PageResult[PaymentRow]` to the type checker, and its arguments are checked against the function's.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, Concatenate, ParamSpec, TypeVar
from zoneinfo import ZoneInfo

import streamlit as st
from sqlalchemy.engine import Engine
from sqlmodel import Session

from core import clock, lesson_changes
from core.config import get_settings
from core.db import get_engine, read_session
from core.models import Lesson

READ_TTL_SECONDS = 30

P = ParamSpec("P")
T = TypeVar("T")


@st.cache_resource(show_spinner=False)
def _engine(url: str) -> Engine:
    return get_engine(url)


def db_url() -> str:
    return get_settings().database_url


def engine() -> Engine:
    return _engine(db_url())


def tz() -> ZoneInfo:
    return get_settings().tz


def now_minute() -> datetime:
    """Now, cut to the minute: time-dependent reads stay cacheable within a minute."""
    return clock.now().replace(second=0, microsecond=0)


def function_key(function: Callable[..., Any]) -> str:
    """`module:qualname` of a read function: the part of the cache key that names the read (the
    function object itself is not hashed; two functions never share a key)."""
    return f"{function.__module__}:{function.__qualname__}"


@st.cache_data(ttl=READ_TTL_SECONDS, show_spinner=False, max_entries=500)
def _read(url: str, key: str, args: tuple, kwargs: tuple, _function: Callable[..., Any]) -> Any:
    # `_function` is left out of the cache key by Streamlit (leading underscore); `key` names it.
    with read_session(_engine(url)) as session:
        return _function(session, *args, **dict(kwargs))


def read(function: Callable[Concatenate[Session, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
    """`function(session, *args, **kwargs)` in a read session, cached 30 s."""
    result: T = _read(db_url(), function_key(function), args, tuple(sorted(kwargs.items())), function)
    return result


def clear() -> None:
    """Forget every cached read; call after each write."""
    _read.clear()


def can_manage_lesson(user: Any, lesson_id: int) -> bool:
    """core's own rule (admins all, tutors their own, finance none), for showing the buttons;
    core checks it again when the button is pressed."""
    with read_session(engine()) as session:
        lesson = session.get(Lesson, lesson_id)
        return lesson is not None and lesson_changes.can_manage_lesson(session, user, lesson)
