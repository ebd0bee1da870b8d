"""Console sign-in and roles, through Streamlit's AppTest (app.py runs in-process, so the test's
settings and database apply): who gets in, which pages each role can open, and that a page
refuses a role even when it is reached some other way."""

from __future__ import annotations

from datetime import timedelta

import pytest
import streamlit as st
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from core import clock, signin
from core.config import set_settings
from core.db import write_session
from core.models import User
from core.users import reset_password, set_user_active, set_user_role
from tests.support.console import (  # noqa: F401 - fast_passwords is a fixture
    ADMIN,
    FINANCE,
    PASSWORD,
    ROOT,
    TUTOR,
    _users,
    app,
    as_user,
    build_console_data,
    fast_passwords,
    sign_in,
)

PAGES = (
    "availability",
    "lessons",
    "profiles",
    "tutors",
    "closures",
    "contacts",
    "whitelists",
    "payments",
    "insights",
    "integrations",
    "users",
)
ALLOWED = {
    "admin": set(PAGES),
    "tutor": {"availability", "lessons", "tutors"},
    "finance": {"payments", "lessons", "insights"},
}
START_TITLE = {"admin": "Lessen", "tutor": "Beschikbaarheid", "finance": "Betalingen"}
EMAIL = {"admin": ADMIN, "tutor": TUTOR, "finance": FINANCE}
pytestmark = pytest.mark.usefixtures("fast_passwords")


@pytest.fixture
def world(engine):
    return build_console_data(engine)


def titles(at: AppTest) -> list[str]:
    return [t.value for t in at.title]


def test_signed_out_visitors_only_get_the_sign_in_form(world):
    at = app().run()
    assert not at.exception
    assert titles(at) == ["Lesplanner"]
    assert at.text_input(key="signin_email") is not None
    with pytest.raises(ValueError):
        at.switch_page("app_pages/lessons.py")


def test_a_wrong_password_is_refused_with_a_message(world):
    at = sign_in(app().run(), ADMIN, "niet-het-wachtwoord")
    assert "klopt niet" in at.error[0].value
    assert "user_id" not in at.session_state
    assert titles(at) == ["Lesplanner"]


def test_repeated_wrong_passwords_lock_the_account_for_a_while(world):
    at = app().run()
    for _ in range(signin.MAX_FAILURES):
        sign_in(at, FINANCE, "niet-het-wachtwoord")
    at = sign_in(at, FINANCE, PASSWORD)  # even the right password waits now
    assert "Te veel mislukte pogingen" in at.error[0].value and "15 minuten" in at.error[0].value
    assert "user_id" not in at.session_state


def test_the_lock_outlives_the_browser_session_and_the_process_caches(world):
    at = app().run()
    for _ in range(signin.MAX_FAILURES):
        sign_in(at, FINANCE, "niet-het-wachtwoord")
    st.cache_resource.clear()  # what a restarted console process starts with
    st.cache_data.clear()
    at = sign_in(app().run(), FINANCE, PASSWORD)  # a new browser session
    assert "Te veel mislukte pogingen" in at.error[0].value
    assert "user_id" not in at.session_state


@pytest.mark.parametrize("role", ["admin", "tutor", "finance"])
def test_the_right_password_opens_the_start_page_of_the_role(world, role):
    at = sign_in(app().run(), EMAIL[role].upper(), PASSWORD)
    assert not at.exception and not at.error
    assert titles(at) == [START_TITLE[role]]
    assert at.session_state["role"] == role


@pytest.mark.parametrize("role", ["admin", "tutor", "finance"])
def test_each_role_can_open_its_pages_and_no_others(world, role):
    at = as_user(EMAIL[role])
    for page in PAGES:
        if page in ALLOWED[role]:
            at.switch_page(f"app_pages/{page}.py").run()
            assert not at.exception, (page, at.exception)
            assert not [e.value for e in at.error], (page, [e.value for e in at.error])
        else:
            with pytest.raises(ValueError):  # not in this role's navigation at all
                at.switch_page(f"app_pages/{page}.py")


@pytest.mark.parametrize(
    ("role", "page"),
    [
        ("tutor", "payments"),
        ("tutor", "insights"),
        ("tutor", "profiles"),
        ("finance", "users"),
        ("finance", "availability"),
    ],
)
def test_a_page_refuses_a_role_that_may_not_see_it_even_when_run_directly(world, role, page):
    at = as_user(EMAIL[role], f"app_pages/{page}.py")
    assert "geen toegang" in at.error[0].value
    assert not at.dataframe and not at.form


def test_a_page_run_without_signing_in_shows_nothing(world):
    at = app("app_pages/payments.py").run()
    assert "niet (meer) ingelogd" in at.warning[0].value
    assert not at.dataframe


def test_a_deactivated_account_is_signed_out_on_its_next_click(world):
    at = as_user(FINANCE)
    assert titles(at) == ["Betalingen"]
    with write_session() as s:
        s.exec(select(User).where(User.email == FINANCE)).one().active = False
    at.run()
    assert titles(at) == ["Lesplanner"] and "user_id" not in at.session_state


def warnings(at: AppTest) -> str:
    return " ".join(w.value for w in at.warning)


@pytest.mark.parametrize("change", ["password", "role", "deactivate"])
def test_a_password_reset_role_change_or_deactivation_ends_open_sessions(world, change):
    at = sign_in(app().run(), FINANCE, PASSWORD)
    assert titles(at) == ["Betalingen"]
    users = _users()
    boss, target = users[ADMIN], users[FINANCE].id
    {
        "password": lambda: reset_password(boss, target),
        "role": lambda: set_user_role(boss, target, "tutor"),
        "deactivate": lambda: set_user_active(boss, target, False),
    }[change]()
    at.run()
    assert titles(at) == ["Lesplanner"] and "user_id" not in at.session_state
    assert "Je sessie is beëindigd" in warnings(at)


def test_a_change_to_one_account_leaves_the_sessions_of_others_open(world):
    at = sign_in(app().run(), ADMIN, PASSWORD)
    users = _users()
    set_user_role(users[ADMIN], users[FINANCE].id, "tutor")
    at.run()
    assert titles(at) == ["Lessen"] and not at.warning


def test_a_session_without_a_remembered_version_is_not_trusted(world):
    at = app()
    at.session_state["user_id"] = _users()[ADMIN].id  # e.g. a session from before this rule
    at.session_state["role"] = "admin"
    at.run()
    assert titles(at) == ["Lesplanner"] and "user_id" not in at.session_state


def test_an_idle_session_is_signed_out_after_the_idle_timeout(world):
    at = sign_in(app().run(), FINANCE, PASSWORD)
    at.session_state["last_seen"] = clock.now() - timedelta(hours=9)
    at.run()
    assert titles(at) == ["Lesplanner"] and "user_id" not in at.session_state
    assert "Je sessie is beëindigd na 8 uur zonder activiteit" in warnings(at)


def test_activity_keeps_a_session_open(world):
    at = sign_in(app().run(), FINANCE, PASSWORD)
    at.session_state["last_seen"] = clock.now() - timedelta(hours=7)
    at.run()
    assert titles(at) == ["Betalingen"]
    assert clock.now() - at.session_state["last_seen"] < timedelta(minutes=1)  # moved on


def test_the_idle_timeout_is_a_setting(world, settings):
    set_settings(settings.model_copy(update={"console_idle_timeout_hours": 1}))
    at = sign_in(app().run(), FINANCE, PASSWORD)
    at.session_state["last_seen"] = clock.now() - timedelta(minutes=61)
    at.run()
    assert titles(at) == ["Lesplanner"] and "1 uur" in warnings(at)


def test_sign_out_returns_to_the_sign_in_form(world):
    at = as_user(ADMIN)
    at.button(key="signout").click().run()
    assert titles(at) == ["Lesplanner"]


def test_english_can_be_chosen_in_the_sidebar(world):
    at = as_user(ADMIN)
    at.sidebar.selectbox[0].set_value("en").run()
    assert titles(at) == ["Lessons"]


SSO_SECRETS = {
    "auth": {
        "redirect_uri": "http://localhost:8501/oauth2callback",
        "cookie_secret": "x" * 32,
        "client_id": "id",
        "client_secret": "secret",
        "server_metadata_url": "https://idp.example/.well-known/openid-configuration",
    }
}


def sso_claims(email: str, **extra) -> dict:
    """What st.user holds after a sign-in at the provider: the ID token's claims."""
    values = {
        "is_logged_in": True,
        "email": email,
        "name": email.split("@")[0],
        "email_verified": True,
        "iss": "https://idp.example",
        "iat": int(clock.now().timestamp()) - 60,
    }
    values.update(extra)
    return {k: v for k, v in values.items() if v is not None}


def sso_app(claims: dict) -> AppTest:
    at = app()
    at.secrets = SSO_SECRETS
    at.user = claims
    return at.run()


def test_single_sign_on_maps_the_e_mail_to_the_accounts_role(world):
    at = sso_app(sso_claims(FINANCE))
    assert titles(at) == ["Betalingen"]


def test_single_sign_on_without_an_account_says_so(world):
    at = sso_app(sso_claims("onbekend@example.nl"))
    assert "geen actief Lesplanner-account" in at.error[0].value
    assert titles(at) == []


@pytest.mark.parametrize("verified", [False, None])
def test_single_sign_on_refuses_an_e_mail_the_provider_did_not_verify(world, verified):
    at = sso_app(sso_claims(ADMIN, email_verified=verified))
    assert "niet bevestigd" in at.error[0].value
    assert "user_id" not in at.session_state and titles(at) == []
    assert any(b.label == "Uitloggen" for b in at.button)  # to try another account


def test_single_sign_on_refuses_another_issuer_or_domain_when_they_are_set(world, settings):
    set_settings(settings.model_copy(update={"sso_allowed_issuer": "https://login.school.nl"}))
    at = sso_app(sso_claims(ADMIN))
    assert "https://idp.example" in at.error[0].value and "user_id" not in at.session_state
    set_settings(settings.model_copy(update={"sso_allowed_domain": "school.nl"}))
    at = sso_app(sso_claims(ADMIN))
    assert "school.nl" in at.error[0].value and "user_id" not in at.session_state
    set_settings(
        settings.model_copy(
            update={"sso_allowed_issuer": "https://idp.example", "sso_allowed_domain": "example.nl"}
        )
    )
    assert titles(sso_app(sso_claims(ADMIN))) == ["Lessen"]


def test_single_sign_on_from_long_ago_asks_for_a_new_sign_in_at_the_provider(world):
    at = sso_app(sso_claims(ADMIN, iat=int((clock.now() - timedelta(hours=9)).timestamp())))
    assert "opnieuw" in at.error[0].value and "user_id" not in at.session_state


def test_an_ended_single_sign_on_session_is_not_signed_straight_back_in(world):
    at = sso_app(sso_claims(FINANCE))
    assert titles(at) == ["Betalingen"]
    users = _users()
    set_user_role(users[ADMIN], users[FINANCE].id, "tutor")
    at.run()
    assert titles(at) == ["Lesplanner"] and "Je sessie is beëindigd" in warnings(at)
    at.run()  # the provider's cookie is still there, but this session stays signed out
    assert titles(at) == ["Lesplanner"] and "user_id" not in at.session_state
    assert any("single sign-on" in b.label for b in at.button)


def test_single_sign_on_offers_the_provider_and_keeps_local_accounts(world):
    at = sso_app({"is_logged_in": False})
    assert any("single sign-on" in b.label for b in at.button)
    assert titles(sign_in(at, TUTOR, PASSWORD)) == ["Beschikbaarheid"]
