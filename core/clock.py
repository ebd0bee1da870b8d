"""The current time, in one place, so tests can move it.

Always aware and in UTC; convert to the business zone only for display or wall-clock rules.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

_now: Callable[[], datetime] | None = None


def now() -> datetime:
    value = _now() if _now is not None else datetime.now(UTC)
    return value.astimezone(UTC)


def set_now(fn: Callable[[], datetime] | datetime | None) -> None:
    """Freeze (a datetime), drive (a callable) or release (None) the clock."""
    global _now
    if isinstance(fn, datetime):
        if fn.tzinfo is None:
            raise ValueError("the frozen time must be timezone-aware")
        frozen = fn
        _now = lambda: frozen  # noqa: E731
    else:
        _now = fn
