"""Calendar backends behind one protocol; `get_backend()` picks the configured one."""

from __future__ import annotations

from core.calendars.base import (
    CalendarBackend,
    CalendarCheck,
    CreatedEvent,
    EventRequest,
    event_id_for_lesson,
)
from core.calendars.google import GoogleCalendarBackend
from core.calendars.local import LocalCalendarBackend
from core.config import Settings, get_settings

__all__ = [
    "CalendarBackend",
    "CalendarCheck",
    "CreatedEvent",
    "EventRequest",
    "event_id_for_lesson",
    "get_backend",
    "set_backend",
]

_override: CalendarBackend | None = None
_cache: dict[tuple, CalendarBackend] = {}


def get_backend(settings: Settings | None = None) -> CalendarBackend:
    if _override is not None:
        return _override
    settings = settings or get_settings()
    key = (settings.calendar_backend, id(settings))
    backend = _cache.get(key)
    if backend is None:
        if settings.calendar_backend == "google":
            backend = GoogleCalendarBackend(settings)
        else:
            backend = LocalCalendarBackend()
        _cache.clear()
        _cache[key] = backend
    return backend


def set_backend(backend: CalendarBackend | None) -> None:
    """Install a backend for this process (tests); None goes back to settings."""
    global _override
    _override = backend
    _cache.clear()
