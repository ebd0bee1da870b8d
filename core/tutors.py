"""Tutors as the console lists them, and whether a console account is a given tutor (a tutor may
only act on their own calendar: same e-mail address)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func
from sqlmodel import Session, col, select

from core.audit import current_actor
from core.errors import NotFound, PermissionDenied
from core.models import Tutor, User
from core.paging import row_from


@dataclass(frozen=True, slots=True)
class TutorRow:
    id: int
    name: str
    email: str | None
    calendar_id: str
    profiles: list[str] | None  # the profiles the tutor teaches; None or empty: every profile
    active: bool


def list_tutors(
    session: Session, *, email: str | None = None, include_inactive: bool = False
) -> list[TutorRow]:
    """Tutors, or only those whose e-mail is `email` (a tutor's own calendar)."""
    stmt = select(Tutor).order_by(col(Tutor.name), col(Tutor.id))
    if not include_inactive:
        stmt = stmt.where(Tutor.active == True)  # noqa: E712
    if email is not None:
        stmt = stmt.where(func.lower(col(Tutor.email)) == email.strip().lower())
    return [row_from(TutorRow, t) for t in session.exec(stmt).all()]


def tutor_ids_for_email(session: Session, email: str) -> list[int]:
    ids = session.exec(
        select(col(Tutor.id)).where(func.lower(col(Tutor.email)) == email.strip().lower())
    ).all()
    return [tid for tid in ids if tid is not None]  # a primary key is never NULL


def is_own_tutor(actor: User, tutor: Tutor) -> bool:
    """Whether `tutor` is the account's own calendar (same e-mail, case-insensitive)."""
    return bool(tutor.email and tutor.email.strip().lower() == actor.email.strip().lower())


def managed_tutor(session: Session, actor: User, tutor_id: int, refusal: str) -> tuple[User, Tutor]:
    """The acting account (re-read: admin or tutor) and the tutor it may change: admins any,
    tutors only their own (else PermissionDenied with `refusal`)."""
    who = current_actor(session, actor, "admin", "tutor")
    tutor = session.get(Tutor, tutor_id)
    if tutor is None:
        raise NotFound("That tutor does not exist.")
    if who.role != "admin" and not is_own_tutor(who, tutor):
        raise PermissionDenied(refusal)
    return who, tutor
