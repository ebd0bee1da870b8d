"""Signing in to the console: password guesses counted in the database, single sign-on claims
checked (sso_user), and whether an open console session is still valid (session_problem). No
Streamlit here; ui/auth.py asks these functions and shows the answer.

Password guesses (docs/DECISIONS.md, "Console sign-in"):
- Five failures for one account from one client address within 15 minutes block that address
  for that account until the oldest of them is 15 minutes old. Other addresses are not blocked,
  so nobody can lock an account out by guessing wrong on purpose.
- From 20 failures for one account within 15 minutes (all addresses together) every further
  check waits until 5 seconds after the previous one, at most 5 seconds: it slows a guessing
  botnet down but never keeps the right password out for longer than that.
- A guess is reserved (a SignInAttempt row, committed) before its password is checked, under a
  per-account lock, so parallel guesses cannot all pass the count first. A success deletes the
  rows of its account and address; a crash leaves its row standing, as a failure.
"""

from __future__ import annotations

import hashlib
import ipaddress
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import delete, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from core import clock, users
from core.config import Settings
from core.db import read_session, write_session
from core.errors import SsoRefused
from core.models import SignInAttempt, User

MAX_FAILURES = 5  # per account and client address within FAILURE_WINDOW
FAILURE_WINDOW = timedelta(minutes=15)
SLOW_AFTER = 20  # failures per account, all addresses, within FAILURE_WINDOW
SLOW_DELAY = timedelta(seconds=5)
UNKNOWN_ADDRESS = "unknown"
_LOCK_CLASS = 0x5167_4E31  # the first key of Postgres advisory locks taken here ("Lesplanner sign-in")


@dataclass(frozen=True)
class SignInRefused:
    """Why a sign-in did not happen: "wrong" (password, account or not active; never which)
    or "throttled" (too many failures from this address; try again at `until`)."""

    reason: str
    until: datetime | None = None


def account_key(email: str) -> str:
    """What the counters store for an e-mail as typed: a digest, so text typed by mistake in
    the e-mail field (a password, say) is never written down."""
    normal = (email or "").strip().lower()
    return hashlib.sha256(normal.encode("utf-8")).hexdigest()


def address_key(address: str | None) -> str:
    """The counter key of a client address: the IPv4 address, or the /64 network of an IPv6
    address (one subscriber usually owns a whole /64); "unknown" when there is none."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return UNKNOWN_ADDRESS
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _lock_account(session: Session, account: str) -> None:
    """Serialise the reservations of one account. SQLite's write_session already holds the
    database's write lock (BEGIN IMMEDIATE); Postgres takes a transaction-scoped advisory lock
    on the account's digest (released at commit)."""
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(bytes.fromhex(account[:8]), "big", signed=True)
        session.execute(text("SELECT pg_advisory_xact_lock(:c, :k)"), {"c": _LOCK_CLASS, "k": key})


def _reserve(engine: Engine, account: str, address: str, now: datetime) -> float | SignInRefused:
    """Count and reserve one guess in its own committed transaction: the seconds to wait before
    checking the password, or a refusal (then nothing is recorded)."""
    since = now - FAILURE_WINDOW
    with write_session(engine) as session:
        _lock_account(session, account)
        session.exec(delete(SignInAttempt).where(col(SignInAttempt.at) < since))
        recent = session.exec(
            select(SignInAttempt.address, SignInAttempt.at).where(
                SignInAttempt.account == account, SignInAttempt.at >= since
            )
        ).all()
        here = sorted(at for where, at in recent if where == address)
        if len(here) >= MAX_FAILURES:
            return SignInRefused("throttled", until=here[len(here) - MAX_FAILURES] + FAILURE_WINDOW)
        wait = 0.0
        if len(recent) >= SLOW_AFTER:
            since_last = (max(at for _, at in recent) + SLOW_DELAY - now).total_seconds()
            wait = min(max(since_last, 0.0), SLOW_DELAY.total_seconds())
        session.add(SignInAttempt(account=account, address=address, at=now + timedelta(seconds=wait)))
    return wait


def sign_in(
    engine: Engine,
    email: str,
    password: str,
    address: str | None,
    now: datetime | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> User | SignInRefused:
    """The active user with this e-mail and password, or why not. `address` is the client's
    address as the console sees it (None when unknown). The password is checked outside any
    transaction, so a slow argon2 check holds no database lock."""
    now = now or clock.now()
    account, where = account_key(email), address_key(address)
    reserved = _reserve(engine, account, where, now)
    if isinstance(reserved, SignInRefused):
        return reserved
    if reserved > 0:
        sleep(reserved)
    with read_session(engine) as session:
        user = users.find_user(session, email)
    stored = user.password_hash if user is not None else None
    if not users.verify_password(stored, password) or user is None or not user.active:
        return SignInRefused("wrong")
    with write_session(engine) as session:
        fresh = session.get(User, user.id)
        if fresh is None or not fresh.active or fresh.password_hash != stored:
            return SignInRefused("wrong")  # reset or deactivated while we were checking
        users.record_sign_in(session, fresh, password)
        session.exec(
            delete(SignInAttempt).where(
                col(SignInAttempt.account) == account, col(SignInAttempt.address) == where
            )
        )
    return fresh


# --- open console sessions -------------------------------------------------------------------------


def session_problem(
    user: User | None, version: int | None, last_seen: datetime | None, now: datetime, idle: timedelta
) -> str | None:
    """Why a console session signed in as `user` must end now, or None while it is valid:
    "ended" when the account is gone or inactive, or its password, role or activation changed
    since the session signed in (its remembered `version` differs); "idle" when the session's
    last click (`last_seen`) is more than `idle` ago."""
    if user is None or not user.active or version is None or version != user.session_version:
        return "ended"
    if last_seen is None or now - last_seen > idle:
        return "idle"
    return None


# --- single sign-on --------------------------------------------------------------------------------

GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")


def _listed(raw: str) -> list[str]:
    return [v.strip().lower().rstrip("/") for v in (raw or "").split(",") if v.strip()]


def _verified(value: Any) -> bool:
    """OIDC says boolean; some providers send the string "true"."""
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def sso_user(
    session: Session, claims: Mapping[str, Any], settings: Settings, now: datetime | None = None
) -> User:
    """The active account for an identity provider's ID token claims (st.user), or SsoRefused.

    - `email_verified` must be true: an address the provider did not verify proves nothing.
    - SSO_ALLOWED_ISSUER (when set): `iss` must be one of them (a trailing / is ignored).
    - SSO_ALLOWED_DOMAIN (when set): the e-mail's domain must be one of them (exactly: no
      subdomains); Google's hosted-domain claim `hd` must match too when present, and must be
      present when the issuer is Google (a consumer Google account may carry any address).
    - `iat` (when the provider signed the user in) must be within CONSOLE_IDLE_TIMEOUT_HOURS: a
      new console session is not opened from an old sign-in at the provider, so a reload cannot
      step around the idle timeout.
    """
    now = now or clock.now()
    email = str(claims.get("email") or "").strip().lower()
    if not email or not _verified(claims.get("email_verified")):
        raise SsoRefused(
            "unverified",
            f"The identity provider has not verified the e-mail address {email or '?'}.",
            email=email,
        )
    issuer = str(claims.get("iss") or "")
    issuers = _listed(settings.sso_allowed_issuer)
    if issuers and issuer.strip().lower().rstrip("/") not in issuers:
        raise SsoRefused(
            "issuer",
            f"Sign-ins from the identity provider {issuer or '?'} are not accepted.",
            issuer=issuer or "?",
        )
    domains = _listed(settings.sso_allowed_domain)
    if domains:
        domain = email.rpartition("@")[2]
        hosted = str(claims.get("hd") or "").strip().lower()
        google = issuer.strip().lower().rstrip("/") in GOOGLE_ISSUERS
        if domain not in domains or (hosted and hosted not in domains) or (google and not hosted):
            raise SsoRefused(
                "domain",
                f"Only accounts of {', '.join(domains)} may sign in with single sign-on.",
                domain=", ".join(domains),
            )
    max_age = timedelta(hours=settings.console_idle_timeout_hours)
    issued = claims.get("iat")
    if not isinstance(issued, int | float) or now - datetime.fromtimestamp(issued, UTC) > max_age:
        raise SsoRefused("stale", "The sign-in at the identity provider is too old; sign in there again.")
    user = users.find_user(session, email)
    if user is None or not user.active:
        raise SsoRefused("no_account", f"There is no active Lesplanner account for {email}.", email=email)
    return user
