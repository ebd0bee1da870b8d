"""`check-calendar`: the Google set-up diagnosed for people (credentials, each tutor's calendar)."""

from __future__ import annotations

from sqlmodel import select

from core.calendars.google import GoogleCalendarBackend
from core.config import Settings
from core.db import get_engine, read_session
from core.models import Tutor


def check_calendar_report(settings: Settings) -> tuple[bool, str]:
    """The text `python -m core.cli check-calendar` prints, and whether all is well.

    Checks the credentials and every active tutor's calendar plus GCAL_CALENDAR_ID."""
    labels: dict[str, list[str]] = {settings.gcal_calendar_id: ["GCAL_CALENDAR_ID"]}
    lines: list[str] = []
    try:
        with read_session(get_engine(settings.database_url)) as session:
            tutors = session.exec(select(Tutor).where(Tutor.active == True)).all()  # noqa: E712
        for tutor in tutors:
            labels.setdefault(tutor.calendar_id, []).append(f"tutor {tutor.name}")
    except Exception as exc:  # noqa: BLE001 - still check GCAL_CALENDAR_ID without the database
        lines.append(
            f"  note  could not read the tutors from the database ({type(exc).__name__}); "
            "checking GCAL_CALENDAR_ID only"
        )

    backend = GoogleCalendarBackend(settings, record_status=False)
    checks = backend.check(list(labels))
    ok = all(c.ok for c in checks)
    header = "Google Calendar check"
    if settings.calendar_backend != "google":
        header += " (note: CALENDAR_BACKEND is 'local', so Lesplanner does not use Google yet)"
    out = [header, *lines]
    for c in checks:
        label = f" [{', '.join(labels[c.subject])}]" if c.subject in labels else ""
        out.append(f"  {'ok  ' if c.ok else 'FAIL'}  {c.subject}{label}: {c.detail}")
        if c.fix and not c.ok:
            out.append(f"        fix: {c.fix}")
    failed = sum(1 for c in checks if not c.ok)
    out.append("All good." if ok else f"{failed} problem(s) found.")
    return ok, "\n".join(out)


# --------------------------------------------------------------------------------------------
# helpers
