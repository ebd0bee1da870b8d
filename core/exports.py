"""CSV exports of the console, with the role checked when the file is built.

The console builds an export when its download button is clicked, which can be long after the
page was drawn. So the actor is re-read here, at that moment: still active, still a role that may
have this export, still the same session (a password reset, role change or deactivation since the
page was drawn bumps the account's session_version), and a tutor only gets their own lessons.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import Session

from core.audit import current_actor
from core.csv_export import to_csv
from core.errors import PermissionDenied
from core.insights import insights_export
from core.lesson_queries import lessons_export
from core.models import User
from core.payments.queries import payments_export
from core.whitelists import whitelist_export

# Which roles may build which export (the pages that offer them: Lessen, Betalingen, Whitelists, Inzichten).
EXPORT_ROLES: dict[Callable[..., list[dict[str, Any]]], tuple[str, ...]] = {
    lessons_export: ("tutor", "admin", "finance"),
    payments_export: ("finance", "admin"),
    whitelist_export: ("admin",),
    insights_export: ("admin", "finance"),
}


def export_csv(
    session: Session,
    actor: User,
    report: Callable[..., list[dict[str, Any]]],
    args: Sequence[Any],
    columns: Sequence[str],
    headers: Sequence[str] | None,
    tz: ZoneInfo,
) -> bytes:
    """`report(session, *args)` (one of EXPORT_ROLES) as CSV bytes, if `actor` may have it now; else
    PermissionDenied. `actor` is the user as the page saw them when it was drawn."""
    roles = EXPORT_ROLES.get(report)
    if roles is None:
        name = getattr(report, "__qualname__", report)
        raise PermissionDenied(f"There is no export called '{name}'.")
    who = current_actor(session, actor, *roles)
    if who.session_version != actor.session_version:
        raise PermissionDenied("Your console session has ended; sign in again to export.")
    if report is lessons_export and who.role == "tutor":
        lesson_filter = args[0] if args else None
        own = getattr(lesson_filter, "own_email", None)
        if own is None or own.strip().lower() != who.email.strip().lower():
            raise PermissionDenied("A tutor can only export their own lessons.")
    rows = report(session, *args)
    return to_csv(rows, columns, headers, tz=tz)
