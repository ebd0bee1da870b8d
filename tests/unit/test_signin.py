"""Console sign-in in core (issue 12, items 2-5), without Streamlit: the failure counters live in
the database, per (account, client address) with a slower back-off per account; a guess is
reserved before its password is checked, so parallel guesses cannot slip past the limit."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from alembic.config import Config
from argon2 import PasswordHasher
from sqlalchemy import inspect, text
from sqlmodel import func, select

from core import cli, signin, users
from core.config import get_settings, set_settings
from core.db import get_engine, reset_engines, write_session
from core.errors import SsoRefused
from core.models import SignInAttempt, User
from tests.conftest import make_settings

EMAIL = "beheer@example.nl"
PASSWORD = "Wachtwoord-123"
A, B = "203.0.113.7", "198.51.100.20"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


class CountingHasher(PasswordHasher):
    """Cheap argon2 that counts (and slows down) every password check, to see races."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(time_cost=1, memory_cost=1024, parallelism=1)
        self.delay = delay
        self.calls = 0
        self._lock = threading.Lock()

    def verify(self, hash: str, password: str) -> bool:  # noqa: A002 - argon2's own name
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        return super().verify(hash, password)


@pytest.fixture
def hasher(monkeypatch) -> CountingHasher:
    h = CountingHasher()
    monkeypatch.setattr(users, "_hasher", h)
    return h


@pytest.fixture
def account(engine, hasher) -> User:
    with write_session(engine) as s:
        user, _ = users.create_user(s, EMAIL, "admin", password=PASSWORD)
    return user


def attempt(
    engine,
    password: str,
    address: str | None,
    now: datetime,
    email: str = EMAIL,
    sleeps: list[float] | None = None,
):
    return signin.sign_in(
        engine, email, password, address, now=now, sleep=(sleeps.append if sleeps is not None else _no_sleep)
    )


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"unexpected back-off of {seconds} s")


def rows(engine) -> int:
    with write_session(engine) as s:
        return s.exec(select(func.count()).select_from(SignInAttempt)).one()


# --- item 3: the limit cannot be raced ------------------------------------------------------------


def test_parallel_guesses_after_four_failures_reach_the_password_check_at_most_once(engine, account, hasher):
    now = datetime.now(UTC)
    for _ in range(signin.MAX_FAILURES - 1):
        assert attempt(engine, "niet-het-wachtwoord", A, now).reason == "wrong"
    hasher.calls, hasher.delay = 0, 0.3  # a slow check widens the window a race needs
    start = threading.Barrier(13)
    results: list = []

    def guess() -> None:
        start.wait()
        results.append(signin.sign_in(engine, EMAIL, "niet-het-wachtwoord", A, sleep=_no_sleep))

    threads = [threading.Thread(target=guess) for _ in range(13)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert hasher.calls <= 1, (hasher.calls, [r.reason for r in results])
    assert sorted(r.reason for r in results) == ["throttled"] * 12 + ["wrong"]
    assert attempt(engine, PASSWORD, A, datetime.now(UTC)).reason == "throttled"


def test_a_guess_is_counted_before_its_password_is_checked(engine, account, monkeypatch):
    seen: list[int] = []
    real = users.verify_password

    def spy(stored: str, password: str) -> bool:
        seen.append(rows(engine))  # another connection: the reservation is already committed
        return real(stored, password)

    monkeypatch.setattr(users, "verify_password", spy)
    attempt(engine, "niet-het-wachtwoord", A, T0)
    assert seen == [1]


# --- item 4: per address, in the database, with a slower back-off per account ---------------------


def test_five_failures_from_one_address_block_that_address_for_fifteen_minutes(engine, account):
    for i in range(signin.MAX_FAILURES):
        assert attempt(engine, "niet-het-wachtwoord", A, T0 + timedelta(minutes=i)).reason == "wrong"
    refused = attempt(engine, PASSWORD, A, T0 + timedelta(minutes=5))  # even the right password
    assert refused.reason == "throttled"
    assert refused.until == T0 + timedelta(minutes=15)  # when the first failure leaves the window
    assert isinstance(attempt(engine, PASSWORD, A, T0 + timedelta(minutes=15, seconds=1)), User)


def test_an_attacker_at_one_address_does_not_lock_out_the_right_password_from_another(engine, account):
    for _ in range(signin.MAX_FAILURES + 3):
        attempt(engine, "niet-het-wachtwoord", A, T0)
    assert attempt(engine, PASSWORD, A, T0).reason == "throttled"
    user = attempt(engine, PASSWORD, B, T0 + timedelta(seconds=1))
    assert isinstance(user, User) and user.email == EMAIL


def test_failures_survive_a_restart(engine, account):
    for _ in range(signin.MAX_FAILURES):
        attempt(engine, "niet-het-wachtwoord", A, T0)
    reset_engines()  # what a new console process starts with: no state but the database
    fresh = get_engine()
    assert fresh is not engine
    assert attempt(fresh, PASSWORD, A, T0 + timedelta(minutes=1)).reason == "throttled"


def test_unknown_e_mail_addresses_are_counted_like_known_ones(engine, account):
    for _ in range(signin.MAX_FAILURES):
        assert attempt(engine, "x", A, T0, email="niemand@example.nl").reason == "wrong"
    assert attempt(engine, "x", A, T0, email="niemand@example.nl").reason == "throttled"
    assert isinstance(attempt(engine, PASSWORD, A, T0), User)  # another account: its own counter


def test_success_clears_the_failures_of_that_address_only(engine, account):
    for _ in range(signin.MAX_FAILURES - 1):
        attempt(engine, "niet-het-wachtwoord", A, T0)
        attempt(engine, "niet-het-wachtwoord", B, T0)
    assert isinstance(attempt(engine, PASSWORD, A, T0), User)
    for _ in range(signin.MAX_FAILURES - 1):  # A starts from zero again ...
        assert attempt(engine, "niet-het-wachtwoord", A, T0).reason == "wrong"
    attempt(engine, "niet-het-wachtwoord", B, T0)  # ... B does not
    assert attempt(engine, PASSWORD, B, T0).reason == "throttled"


def test_many_addresses_slow_the_account_down_but_the_right_password_still_gets_in(engine, account):
    for i in range(signin.SLOW_AFTER):  # a botnet: few failures per address, many addresses
        attempt(engine, "niet-het-wachtwoord", f"192.0.2.{i}", T0)
    sleeps: list[float] = []
    user = attempt(engine, PASSWORD, B, T0 + timedelta(seconds=1), sleeps=sleeps)
    assert isinstance(user, User)
    assert sleeps == [pytest.approx(signin.SLOW_DELAY.total_seconds() - 1)]  # since the last attempt


def test_the_back_off_never_exceeds_its_delay_however_many_guesses_queue_up(engine, account):
    for i in range(signin.SLOW_AFTER):
        attempt(engine, "niet-het-wachtwoord", f"192.0.2.{i}", T0)
    sleeps: list[float] = []
    for i in range(30):  # all at once: each reserves the next slot
        attempt(engine, "niet-het-wachtwoord", f"198.18.0.{i}", T0, sleeps=sleeps)
    assert isinstance(attempt(engine, PASSWORD, B, T0, sleeps=sleeps), User)
    assert len(sleeps) == 31 and max(sleeps) <= signin.SLOW_DELAY.total_seconds()


def test_no_back_off_when_the_account_was_quiet_for_the_delay(engine, account):
    for i in range(signin.SLOW_AFTER):
        attempt(engine, "niet-het-wachtwoord", f"192.0.2.{i}", T0)
    assert isinstance(attempt(engine, PASSWORD, B, T0 + signin.SLOW_DELAY), User)  # no sleep asked


def test_old_attempts_are_pruned_and_no_longer_count(engine, account):
    for _ in range(signin.MAX_FAILURES):
        attempt(engine, "niet-het-wachtwoord", A, T0)
    later = T0 + signin.FAILURE_WINDOW + timedelta(seconds=1)
    assert attempt(engine, "niet-het-wachtwoord", B, later).reason == "wrong"
    assert rows(engine) == 1  # only the new one is left
    assert isinstance(attempt(engine, PASSWORD, A, later), User)


@pytest.mark.parametrize(
    ("given", "key"),
    [
        (None, "unknown"),
        ("", "unknown"),
        ("not an address", "unknown"),
        ("203.0.113.7", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64"),
    ],
)
def test_client_addresses_are_keyed_per_host_and_per_ipv6_64(given, key):
    assert signin.address_key(given) == key


def test_the_e_mail_typed_is_stored_only_as_a_digest(engine, account):
    attempt(engine, "niet-het-wachtwoord", A, T0, email="  Beheer@Example.NL ")
    with write_session(engine) as s:
        row = s.exec(select(SignInAttempt)).one()
    assert EMAIL not in row.account and len(row.account) == 64
    assert row.account == signin.account_key(EMAIL)


# --- migration 0003 ---------------------------------------------------------------------------------


def test_migration_0003_keeps_existing_accounts_at_version_0_and_goes_back_down(tmp_path):
    set_settings(make_settings(tmp_path))
    reset_engines()
    engine = get_engine()
    cfg = Config(str(cli.ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(cli.ROOT / "migrations"))

    def to(revision: str, up: bool = True) -> None:
        with engine.begin() as connection:
            cfg.attributes["connection"] = connection
            (command.upgrade if up else command.downgrade)(cfg, revision)

    to("0002")
    with engine.begin() as conn:
        conn.execute(
            text(
                'INSERT INTO "user" (email, name, role, active, created_at) '
                "VALUES ('oud@example.nl', 'Oud', 'admin', true, '2026-11-30 10:00:00')"
            )
        )
    to("0003")
    with engine.connect() as conn:
        assert conn.execute(text('SELECT session_version FROM "user"')).scalar_one() == 0
    assert "signinattempt" in inspect(engine).get_table_names()
    to("0002", up=False)
    assert "signinattempt" not in inspect(engine).get_table_names()
    assert "session_version" not in {c["name"] for c in inspect(engine).get_columns("user")}
    reset_engines()


# --- item 5: session versions and the idle timeout ------------------------------------------------


def test_a_password_reset_role_change_and_activation_change_bump_the_session_version(engine, hasher):
    with write_session(engine) as s:
        boss, _ = users.create_user(s, "baas@example.nl", "admin", password=PASSWORD)
        other, _ = users.create_user(s, "ander@example.nl", "finance", password=PASSWORD)

    def version() -> int:
        with write_session(engine) as s:
            return s.get(User, other.id).session_version

    assert version() == 0
    users.reset_password(boss, other.id)
    assert version() == 1
    users.set_user_role(boss, other.id, "tutor")
    assert version() == 2
    users.set_user_role(boss, other.id, "tutor")  # no change, nothing to end
    assert version() == 2
    users.set_user_active(boss, other.id, False)
    assert version() == 3
    users.set_user_active(boss, other.id, True)
    assert version() == 4
    with write_session(engine) as s:
        users.set_password(s, s.get(User, other.id), "Nieuw-wachtwoord-1")  # the CLI's way
    assert version() == 5


@pytest.mark.parametrize(
    ("remembered", "seen_hours_ago", "active", "problem"),
    [
        (3, 1, True, None),
        (3, 7.9, True, None),
        (2, 1, True, "ended"),  # reset, role change or (de)activation since signing in
        (None, 1, True, "ended"),  # a session that never remembered a version
        (3, 1, False, "ended"),
        (3, 8.1, True, "idle"),
        (3, None, True, "idle"),  # no activity remembered at all
    ],
)
def test_a_session_is_valid_while_its_version_matches_and_it_is_not_idle(
    remembered, seen_hours_ago, active, problem
):
    user = User(id=1, email=EMAIL, role="admin", active=active, session_version=3)
    seen = None if seen_hours_ago is None else T0 - timedelta(hours=seen_hours_ago)
    assert signin.session_problem(user, remembered, seen, T0, idle=timedelta(hours=8)) == problem


def test_a_deleted_account_ends_its_session():
    assert signin.session_problem(None, 0, T0, T0, idle=timedelta(hours=8)) == "ended"


# --- item 2: single sign-on claims -----------------------------------------------------------------


GOOGLE = "https://accounts.google.com"


def claims(**extra) -> dict:
    values = {
        "is_logged_in": True,
        "email": EMAIL,
        "email_verified": True,
        "iss": "https://idp.example",
        "iat": int(T0.timestamp()) - 60,
    }
    values.update(extra)
    return {k: v for k, v in values.items() if v is not None}


def sso(engine, given: dict, **settings_values) -> User:
    settings = get_settings().model_copy(update=settings_values)
    with write_session(engine) as s:
        return signin.sso_user(s, given, settings, now=T0)


def refusal(engine, given: dict, **settings_values) -> str:
    with pytest.raises(SsoRefused) as caught:
        sso(engine, given, **settings_values)
    assert caught.value.message  # a sentence for people, in English like every core error
    return caught.value.reason


@pytest.mark.parametrize("verified", [None, False, "false", "", 0, "yes"])
def test_single_sign_on_needs_an_e_mail_the_provider_verified(engine, account, verified):
    assert refusal(engine, claims(email_verified=verified)) == "unverified"


@pytest.mark.parametrize("verified", [True, "true", "TRUE"])
def test_single_sign_on_accepts_a_verified_e_mail(engine, account, verified):
    assert sso(engine, claims(email_verified=verified, email=EMAIL.upper())).email == EMAIL


def test_single_sign_on_only_from_the_allowed_issuer_when_one_is_set(engine, account):
    allowed = {"sso_allowed_issuer": "https://login.school.nl/tenant-1, https://idp.example/"}
    assert sso(engine, claims(iss="https://idp.example"), **allowed).email == EMAIL  # trailing / ignored
    assert sso(engine, claims(iss="https://login.school.nl/tenant-1"), **allowed).email == EMAIL
    assert refusal(engine, claims(iss="https://login.school.nl/tenant-2"), **allowed) == "issuer"
    assert refusal(engine, claims(iss=None), **allowed) == "issuer"


def test_single_sign_on_only_for_the_allowed_domain_when_one_is_set(engine, account):
    allowed = {"sso_allowed_domain": "example.nl"}
    assert sso(engine, claims(), **allowed).email == EMAIL  # a provider without hd: the e-mail's domain
    assert sso(engine, claims(iss=GOOGLE, hd="example.nl"), **allowed).email == EMAIL
    assert refusal(engine, claims(iss=GOOGLE), **allowed) == "domain"  # Google: a consumer account
    assert refusal(engine, claims(hd="elders.nl"), **allowed) == "domain"
    assert refusal(engine, claims(), sso_allowed_domain="school.nl") == "domain"
    assert refusal(engine, claims(email="a@sub.example.nl", hd="example.nl"), **allowed) == "domain"


def test_single_sign_on_wants_a_recent_sign_in_at_the_provider_for_a_new_session(engine, account):
    eight_hours = 8 * 3600
    assert sso(engine, claims(iat=int(T0.timestamp()) - eight_hours + 60)).email == EMAIL
    assert refusal(engine, claims(iat=int(T0.timestamp()) - eight_hours - 60)) == "stale"
    assert refusal(engine, claims(iat=None)) == "stale"


def test_single_sign_on_needs_an_active_account(engine, account):
    assert refusal(engine, claims(email="onbekend@example.nl")) == "no_account"
    assert refusal(engine, claims(email=None)) == "unverified"  # no e-mail: nothing was verified
    with write_session(engine) as s:
        s.get(User, account.id).active = False
    assert refusal(engine, claims()) == "no_account"
