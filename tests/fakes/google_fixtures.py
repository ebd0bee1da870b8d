"""Pytest fixtures for the Google Calendar fake, for any test that needs the Google backend.

Use them from a test module with `pytest_plugins = ["tests.fakes.google_fixtures"]`:

- `fake_google`: a running `FakeGoogleCalendar`;
- `make_google_settings(**overrides)`: Settings with CALENDAR_BACKEND=google pointed at the fake,
  on the same database file as the `engine` fixture;
- `google_settings`: those settings, installed with set_settings on the test's fresh database;
- `make_google_backend(**overrides, retry_base_delay=..., sleep=...)`: a backend on fresh
  settings with tiny retry delays; its status writes are flushed before the test ends;
- `google_backend`: the backend on `google_settings`, installed with set_backend so core code
  (booking, slots) uses it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from core.calendars import set_backend
from core.calendars.google import GoogleCalendarBackend
from core.config import Settings, set_settings
from tests.conftest import make_settings
from tests.fakes.google_calendar import FakeGoogleCalendar

FAST_RETRY = 0.001  # seconds; the backoff schedule itself is tested with a recording sleep


@pytest.fixture
def fake_google() -> Iterator[FakeGoogleCalendar]:
    with FakeGoogleCalendar() as fake:
        yield fake


@pytest.fixture
def make_google_settings(tmp_path: Any, fake_google: FakeGoogleCalendar) -> Callable[..., Settings]:
    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = dict(
            calendar_backend="google",
            gcal_service_account_json=fake_google.service_account_json(),
            gcal_api_endpoint=fake_google.api_endpoint,
            gcal_calendar_id="tutor@lesplanner.test",
            gcal_timeout_seconds=2.0,
            gcal_max_retries=3,
        )
        values.update(overrides)
        return make_settings(tmp_path, **values)

    return make


@pytest.fixture
def google_settings(engine: Any, make_google_settings: Callable[..., Settings]) -> Settings:
    settings = make_google_settings()
    set_settings(settings)
    return settings


@pytest.fixture
def make_google_backend(
    make_google_settings: Callable[..., Settings],
) -> Iterator[Callable[..., GoogleCalendarBackend]]:
    made: list[GoogleCalendarBackend] = []

    def make(
        settings: Settings | None = None,
        *,
        retry_base_delay: float = FAST_RETRY,
        sleep: Callable[[float], None] | None = None,
        **overrides: Any,
    ) -> GoogleCalendarBackend:
        kwargs: dict[str, Any] = {"retry_base_delay": retry_base_delay}
        if sleep is not None:
            kwargs["sleep"] = sleep
        backend = GoogleCalendarBackend(settings or make_google_settings(**overrides), **kwargs)
        made.append(backend)
        return backend

    yield make
    for backend in made:  # no status write may outlive the test's database
        backend.flush_status()


@pytest.fixture
def google_backend(
    google_settings: Settings, make_google_backend: Callable[..., GoogleCalendarBackend]
) -> GoogleCalendarBackend:
    backend = make_google_backend(google_settings)
    set_backend(backend)
    return backend
