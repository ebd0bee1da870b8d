"""Who may do what, and the record of what they did: the acting user as stored now (active,
with the right role), and AuditLog rows (before/after) for every change staff make."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from core import clock
from core.db import read_session
from core.errors import PermissionDenied
from core.models import AuditLog, User
from core.paging import DEFAULT_PAGE_SIZE, PageResult, clamp_page, page_bounds, row_from


def current_actor(session: Session, actor: User | None, *roles: str) -> User:
    """The actor as stored now (active, with one of `roles`), else PermissionDenied."""
    if actor is None or actor.id is None:
        raise PermissionDenied("Sign in first.")
    fresh = session.get(User, actor.id)
    if fresh is None or not fresh.active:
        raise PermissionDenied("This account is not active.")
    if roles and fresh.role not in roles:
        raise PermissionDenied(f"This needs the role {' or '.join(roles)}; you are {fresh.role}.")
    return fresh


def require_role(actor: User | None, *roles: str) -> User:
    """Check in its own read: for callers that only read but must still be refused."""
    with read_session() as session:
        return current_actor(session, actor, *roles)


def audit(
    session: Session,
    actor: User | str,
    action: str,
    entity: str,
    entity_id: Any,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
) -> None:
    """Record a change in the caller's transaction (so it is logged exactly when it happens)."""
    who = actor if isinstance(actor, str) else actor.email
    session.add(
        AuditLog(
            actor=who,
            action=action,
            entity=entity,
            entity_id=None if entity_id is None else str(entity_id),
            before=jsonable(before),
            after=jsonable(after),
            at=clock.now(),
        )
    )


def jsonable(values: dict[str, Any] | None) -> dict[str, Any] | None:
    if values is None:
        return None
    return {k: v.isoformat() if isinstance(v, datetime | date) else v for k, v in values.items()}


@dataclass(frozen=True, slots=True)
class AuditRow:
    id: int
    actor: str
    action: str  # e.g. profile.update, whitelist.add, lesson.cancel
    entity: str
    entity_id: str | None
    before: dict[str, object] | None  # the changed values, as stored (JSON)
    after: dict[str, object] | None
    at: datetime


def audit_page(
    session: Session, entity: str | None = None, page: int = 1, page_size: int = DEFAULT_PAGE_SIZE
) -> PageResult[AuditRow]:
    page, page_size = page_bounds(page, page_size)
    where = [col(AuditLog.entity) == entity] if entity else []
    total = session.exec(select(func.count(col(AuditLog.id))).where(*where)).one()
    page = clamp_page(page, page_size, total)
    rows = session.exec(
        select(AuditLog)
        .where(*where)
        .order_by(col(AuditLog.at).desc(), col(AuditLog.id).desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return PageResult([row_from(AuditRow, r) for r in rows], total, page, page_size)
