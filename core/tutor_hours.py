"""A tutor's weekly working hours, edited by admins for anyone and by tutors for themselves
("09:00-12:00, 13:00-17:00" per day). core/availability.py turns the time outside them into busy time.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from sqlmodel import Session

from core.audit import audit
from core.availability import tutor_hours
from core.db import write_session
from core.errors import ValidationFailed
from core.models import (
    TutorHours,
    User,
)
from core.tutors import managed_tutor


def _check_hours(blocks: Iterable[tuple[int, int, int]]) -> list[tuple[int, int, int]]:
    cleaned = []
    for weekday, start, end in blocks:
        if isinstance(weekday, bool) or not isinstance(weekday, int) or not 0 <= weekday <= 6:
            raise ValidationFailed("A weekday is 0 (Monday) to 6 (Sunday).")
        if not (isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= 24 * 60):
            raise ValidationFailed(
                "Working hours run from a time to a later time on the same day (at most 24:00)."
            )
        cleaned.append((weekday, start, end))
    cleaned.sort()
    for (d1, _s1, e1), (d2, s2, _e2) in zip(cleaned, cleaned[1:], strict=False):
        if d1 == d2 and s2 < e1:
            raise ValidationFailed("Two blocks of working hours on one day overlap; join them into one.")
    return cleaned


def set_tutor_hours(actor: User, tutor_id: int, blocks: Iterable[tuple[int, int, int]]) -> list[TutorHours]:
    """Replace a tutor's weekly working hours by `blocks` of (weekday, start minute, end minute),
    local wall-clock time; none = the profile's window. Admins for anyone, tutors for themselves."""
    cleaned = _check_hours(blocks)
    with write_session() as session:
        who, tutor = managed_tutor(session, actor, tutor_id, "You can only set your own working hours.")
        old = tutor_hours(session, tutor_id)
        before = [[h.weekday, h.start_minute, h.end_minute] for h in old]
        for h in old:
            session.delete(h)
        session.flush()
        rows = [TutorHours(tutor_id=tutor_id, weekday=d, start_minute=s, end_minute=e) for d, s, e in cleaned]
        session.add_all(rows)
        audit(
            session,
            who,
            "tutor.hours",
            "Tutor",
            tutor_id,
            {"hours": before},
            {"hours": [list(b) for b in cleaned]},
        )
    return rows


_TIME = r"(\d{1,2})(?:[:.](\d{2}))?"


def parse_hours_text(text: str) -> list[tuple[int, int]]:
    """'9:00-12:00, 13-17' → [(540, 720), (780, 1020)]; empty → none. For the console's fields."""
    blocks = []
    for part in re.split(r"[,;]", text or ""):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(_TIME + r"\s*(?:-|–|tot)\s*" + _TIME, part)
        if not m:
            raise ValidationFailed(f"'{part}' is not a time range; write e.g. 09:00-12:00.")
        start = int(m[1]) * 60 + int(m[2] or 0)
        end = int(m[3]) * 60 + int(m[4] or 0)
        if int(m[2] or 0) >= 60 or int(m[4] or 0) >= 60 or not 0 <= start < end <= 24 * 60:
            raise ValidationFailed(f"'{part}' does not run from a time to a later time on the same day.")
        blocks.append((start, end))
    return blocks


def hours_text(blocks: Iterable[tuple[int, int]]) -> str:
    """[(540, 720)] → '09:00-12:00' (24:00 stays 24:00)."""
    return ", ".join(f"{s // 60:02d}:{s % 60:02d}-{e // 60:02d}:{e % 60:02d}" for s, e in blocks)


def set_tutor_week(actor: User, tutor_id: int, texts: dict[int, str]) -> list[TutorHours]:
    """The console's form: one text per weekday (0 = Monday), e.g. '09:00-12:00, 13:00-17:00'."""
    blocks = []
    for weekday, text in sorted(texts.items()):
        try:
            blocks += [(weekday, s, e) for s, e in parse_hours_text(text)]
        except ValidationFailed as exc:
            raise ValidationFailed(f"{WEEKDAYS_EN[weekday]}: {exc.message}") from None
    return set_tutor_hours(actor, tutor_id, blocks)


WEEKDAYS_EN = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def tutor_week(session: Session, tutor_id: int) -> dict[int, str]:
    """The console's view of a tutor's hours: weekday (0 = Monday) → '09:00-12:00, 13:00-17:00'."""
    rows = tutor_hours(session, tutor_id)
    return {d: hours_text((h.start_minute, h.end_minute) for h in rows if h.weekday == d) for d in range(7)}
