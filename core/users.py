"""Console accounts: argon2-hashed local passwords, roles, and the first admin.

There is no default password anywhere: the first admin gets a random one that is shown once
(`make run` on an empty database, or `python -m core.cli create-user`).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func
from sqlmodel import Session, select

from core import clock
from core.audit import audit, current_actor
from core.db import write_session
from core.errors import NotFound, ValidationFailed
from core.models import ROLES, AuditLog, User
from core.paging import row_from

_hasher = PasswordHasher()
MIN_PASSWORD_LENGTH = 10
# Verifying against this keeps unknown e-mails as slow as wrong passwords (no user enumeration).
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(f"A password needs at least {MIN_PASSWORD_LENGTH} characters.")
    return _hasher.hash(password)


def generate_password() -> str:
    return secrets.token_urlsafe(12)


def _normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    if "@" not in email or " " in email:
        raise ValidationFailed(f"'{email}' is not a valid e-mail address.")
    return email


def create_user(
    session: Session,
    email: str,
    role: str,
    name: str = "",
    password: str | None = None,
    actor: str = "system",
) -> tuple[User, str]:
    """Create an account; returns (user, password). A password is generated when none is given."""
    email = _normalise_email(email)
    if role not in ROLES:
        raise ValidationFailed(f"Unknown role '{role}'; use one of: {', '.join(ROLES)}.")
    if session.exec(select(User).where(User.email == email)).first() is not None:
        raise ValidationFailed(f"An account for {email} already exists.")
    password = password or generate_password()
    user = User(
        email=email,
        name=name or email.split("@")[0],
        role=role,
        password_hash=hash_password(password),
        created_at=clock.now(),
    )
    session.add(user)
    session.flush()
    session.add(
        AuditLog(
            actor=actor,
            action="user.create",
            entity="User",
            entity_id=email,
            after={"role": role},
            at=clock.now(),
        )
    )
    return user, password


def verify_password(stored: str | None, password: str) -> bool:
    """Whether `password` matches the stored argon2 hash. Without a hash (an unknown e-mail, an
    account without a password) a dummy hash is checked, so both cost the same."""
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password or "") and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def record_sign_in(session: Session, user: User, password: str) -> None:
    """After a successful check: upgrade an outdated hash and remember when."""
    if user.password_hash and _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = _hasher.hash(password)
    user.last_login_at = clock.now()
    session.add(user)


def authenticate(session: Session, email: str, password: str) -> User | None:
    """The active user with this e-mail and password, else None (same cost either way).
    No throttling: the console signs in through core.signin.sign_in, which counts failures."""
    user = find_user(session, email)
    if not verify_password(user.password_hash if user is not None else None, password):
        return None
    if user is None or not user.active:
        return None
    record_sign_in(session, user, password)
    return user


def set_password(session: Session, user: User, password: str | None = None, actor: str = "system") -> str:
    password = password or generate_password()
    user.password_hash = hash_password(password)
    end_sessions(user)
    session.add(user)
    session.add(
        AuditLog(
            actor=actor, action="user.reset_password", entity="User", entity_id=user.email, at=clock.now()
        )
    )
    return password


def end_sessions(user: User) -> None:
    """Make every open console session of this account end at its next click (ui/auth.py
    compares the version it signed in with)."""
    user.session_version = (user.session_version or 0) + 1


def user_count(session: Session, role: str | None = None) -> int:
    stmt = select(func.count()).select_from(User).where(User.active == True)  # noqa: E712
    if role:
        stmt = stmt.where(User.role == role)
    return session.exec(stmt).one()


def find_user(session: Session, email: str) -> User | None:
    try:
        email = _normalise_email(email)
    except ValidationFailed:
        return None
    return session.exec(select(User).where(User.email == email)).first()


# --- console writes (admins; each audited) and reads ------------------------------------------


def add_user(actor: User, email: str, role: str, name: str = "") -> tuple[User, str]:
    """A new account with a random password, returned once to show to the admin."""
    with write_session() as session:
        who = current_actor(session, actor, "admin")
        return create_user(session, email, role, name=name, actor=who.email)


def _active_admins(session: Session) -> int:
    return session.exec(
        select(func.count()).select_from(User).where(User.role == "admin", User.active == True)  # noqa: E712
    ).one()


def set_user_active(actor: User, user_id: int, active: bool) -> User:
    with write_session() as session:
        who = current_actor(session, actor, "admin")
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("That account does not exist.")
        if not active and user.id == who.id:
            raise ValidationFailed("You cannot deactivate your own account.")
        if not active and user.role == "admin" and user.active and _active_admins(session) <= 1:
            raise ValidationFailed("This is the last active admin; create another admin first.")
        before = {"active": user.active}
        if user.active != active:
            end_sessions(user)
        user.active = active
        session.add(user)
        audit(
            session,
            who,
            "user.activate" if active else "user.deactivate",
            "User",
            user.email,
            before,
            {"active": active},
        )
    return user


def set_user_role(actor: User, user_id: int, role: str) -> User:
    if role not in ROLES:
        raise ValidationFailed(f"Unknown role '{role}'; use one of: {', '.join(ROLES)}.")
    with write_session() as session:
        who = current_actor(session, actor, "admin")
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("That account does not exist.")
        if user.role == "admin" and role != "admin" and user.active and _active_admins(session) <= 1:
            raise ValidationFailed("This is the last active admin; create another admin first.")
        before = {"role": user.role}
        if user.role != role:
            end_sessions(user)
        user.role = role
        session.add(user)
        audit(session, who, "user.role", "User", user.email, before, {"role": role})
    return user


def reset_password(actor: User, user_id: int) -> str:
    """A new random password for the account, returned once."""
    with write_session() as session:
        who = current_actor(session, actor, "admin")
        user = session.get(User, user_id)
        if user is None:
            raise NotFound("That account does not exist.")
        return set_password(session, user, None, actor=who.email)


@dataclass(frozen=True, slots=True)
class UserRow:
    """A staff account as the console lists it (never its password hash)."""

    id: int
    email: str
    name: str
    role: str
    active: bool
    created_at: datetime
    last_login_at: datetime | None
    session_version: int


def list_users(session: Session) -> list[UserRow]:
    rows = session.exec(select(User).order_by(User.email)).all()
    return [row_from(UserRow, u) for u in rows]
