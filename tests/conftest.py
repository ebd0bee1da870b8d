"""Shared fixtures: a fresh SQLite database per test, a controllable clock, clean globals."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlmodel import SQLModel

from core import clock
from core.calendars import set_backend
from core.config import Settings, set_settings
from core.db import get_engine, reset_engines, write_session
from core.profiles import seed_defaults

AMS = ZoneInfo("Europe/Amsterdam")


def make_settings(tmp_path, **overrides) -> Settings:
    values = dict(database_url=f"sqlite:///{tmp_path}/test.db")
    values.update(overrides)
    return Settings(_env_file=None, **values)


@pytest.fixture
def settings(tmp_path):
    s = make_settings(tmp_path)
    set_settings(s)
    yield s
    set_settings(None)


@pytest.fixture
def engine(settings):
    """A fresh database with every table and the seed profiles."""
    reset_engines()
    eng = get_engine()
    SQLModel.metadata.create_all(eng)
    with write_session(eng) as session:
        seed_defaults(session)
    yield eng
    reset_engines()


@pytest.fixture(autouse=True)
def _clean_globals():
    yield
    clock.set_now(None)
    set_backend(None)
    set_settings(None)


@pytest.fixture
def frozen_now():
    """Freeze the clock: `frozen_now(datetime)` or `frozen_now(2026, 12, 1, 9, 0)` in Amsterdam."""

    def freeze(*args) -> datetime:
        value = args[0] if len(args) == 1 and isinstance(args[0], datetime) else datetime(*args, tzinfo=AMS)
        clock.set_now(value)
        return value

    return freeze
