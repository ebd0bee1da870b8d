"""Who is signed in to the console, and which pages each role may open.

Local accounts sign in with e-mail and password through core.signin.sign_in (argon2; failures
counted in the database per account and client address). When an `[auth]` section exists in
.streamlit/secrets.toml, single sign-on via `st.login` is offered too; core.signin.sso_user checks
the identity provider's claims and maps its e-mail to an account, whose role decides.

Only the user id, role, the account's session version and the time of the last run live in
st.session_state. The User row is re-read on every run: a password reset, role change or
(de)activation bumps the account's session_version and ends its open sessions on their next
click, as does CONSOLE_IDLE_TIMEOUT_HOURS without a click. Every page calls `require_page(...)`
itself: a page missing from the navigation is not enough, and core checks the role a third time
on each write.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import timedelta

import streamlit as st

from core import clock, signin
from core.config import get_settings
from core.db import read_session
from core.errors import SsoRefused
from core.models import User
from core.signin import SignInRefused
from core.users import user_count
from ui import data
from ui.i18n import tr

USER_KEY = "user_id"
ROLE_KEY = "role"
VERSION_KEY = "session_version"  # the account's session_version when this session signed in
SEEN_KEY = "last_seen"  # the last run of this session (aware UTC), for the idle timeout
VIA_KEY = "signed_in_via"  # "password" or "sso"
NOTICE_KEY = "signin_notice"  # why the session just ended, shown once on the sign-in page
SSO_ENDED_KEY = "sso_ended"  # a single sign-on session ended: no automatic sign-in again


@dataclass(frozen=True)
class PageSpec:
    path: str
    url: str
    icon: str
    roles: tuple[str, ...]
    section: str


PAGES: dict[str, PageSpec] = {
    "availability": PageSpec(
        "app_pages/availability.py",
        "availability",
        ":material/calendar_month:",
        ("tutor", "admin"),
        "nav.planning",
    ),
    "lessons": PageSpec(
        "app_pages/lessons.py", "lessons", ":material/school:", ("tutor", "admin", "finance"), "nav.planning"
    ),
    "profiles": PageSpec("app_pages/profiles.py", "profiles", ":material/tune:", ("admin",), "nav.planning"),
    "tutors": PageSpec(
        "app_pages/tutors.py", "tutors", ":material/schedule:", ("tutor", "admin"), "nav.planning"
    ),
    "closures": PageSpec(
        "app_pages/closures.py", "closures", ":material/event_busy:", ("admin",), "nav.planning"
    ),
    "contacts": PageSpec(
        "app_pages/contacts.py", "contacts", ":material/contacts:", ("admin",), "nav.customers"
    ),
    "whitelists": PageSpec(
        "app_pages/whitelists.py", "whitelists", ":material/checklist:", ("admin",), "nav.customers"
    ),
    "payments": PageSpec(
        "app_pages/payments.py", "payments", ":material/payments:", ("finance", "admin"), "nav.finance"
    ),
    "insights": PageSpec(
        "app_pages/insights.py", "insights", ":material/insights:", ("admin", "finance"), "nav.finance"
    ),
    "integrations": PageSpec(
        "app_pages/integrations.py", "integrations", ":material/hub:", ("admin",), "nav.admin"
    ),
    "users": PageSpec("app_pages/users.py", "users", ":material/group:", ("admin",), "nav.admin"),
}
DEFAULT_PAGE = {"tutor": "availability", "admin": "lessons", "finance": "payments"}


def pages_for(role: str) -> dict[str, list[st.Page]]:
    """The navigation for a role, grouped in sections, with the role's start page as default."""
    sections: dict[str, list[st.Page]] = {}
    for key, spec in PAGES.items():
        if role not in spec.roles:
            continue
        page = st.Page(
            spec.path,
            title=tr(f"page.{key}"),
            icon=spec.icon,
            url_path=spec.url,
            default=DEFAULT_PAGE.get(role) == key,
        )
        sections.setdefault(tr(spec.section), []).append(page)
    return sections


def signed_out_pages() -> list[st.Page]:
    """Before signing in every known address shows the sign-in form, so a deep link such as
    /payments asks for a password instead of "page not found", and after signing in the same
    address opens that page if the role allows it (otherwise the role's start page)."""
    pages = [st.Page(sign_in_page, title=tr("signin.title"), url_path="signin", default=True)]
    pages += [
        st.Page(sign_in_page, title=tr("signin.title"), url_path=spec.url, visibility="hidden")
        for spec in PAGES.values()
    ]
    return pages


# --- the signed-in user ------------------------------------------------------------------------


def oidc_configured() -> bool:
    try:
        return "auth" in st.secrets
    except Exception:  # noqa: BLE001 - no secrets.toml at all means no single sign-on
        return False


def _remember(user: User, via: str = "password") -> None:
    st.session_state[USER_KEY] = user.id
    st.session_state[ROLE_KEY] = user.role
    st.session_state[VERSION_KEY] = user.session_version
    st.session_state[SEEN_KEY] = clock.now()
    st.session_state[VIA_KEY] = via


def _forget() -> None:
    for key in (USER_KEY, ROLE_KEY, VERSION_KEY, SEEN_KEY, VIA_KEY):
        st.session_state.pop(key, None)


def idle_timeout() -> timedelta:
    return timedelta(hours=get_settings().console_idle_timeout_hours)


def _end_session(reason: str) -> None:
    """Sign this browser session out, with a message on the sign-in page. A single sign-on
    session is not signed straight back in from the provider's cookie: the user chooses
    single sign-on again (a new sign-in at the provider, in a new session)."""
    if st.session_state.get(VIA_KEY) == "sso":
        st.session_state[SSO_ENDED_KEY] = True
    _forget()
    st.session_state[NOTICE_KEY] = reason


def current_user() -> User | None:
    """The signed-in user as stored now, or None. Ends the session (see core.signin.
    session_problem) when the account's password, role or activation changed since signing in,
    or when the last click is longer ago than CONSOLE_IDLE_TIMEOUT_HOURS; every run counts as
    activity."""
    user_id = st.session_state.get(USER_KEY)
    if user_id is None:
        return None
    with read_session(data.engine()) as session:
        user = session.get(User, user_id)
    now = clock.now()
    problem = signin.session_problem(
        user, st.session_state.get(VERSION_KEY), st.session_state.get(SEEN_KEY), now, idle_timeout()
    )
    if problem is not None:
        _end_session(problem)
        return None
    assert user is not None  # session_problem ends a session whose account is gone
    st.session_state[ROLE_KEY] = user.role
    st.session_state[SEEN_KEY] = now
    return user


def client_address() -> str | None:
    """The browser's address as this server sees it (None on localhost or when unknown). Behind
    a reverse proxy it is the proxy's unless the proxy forwards the client's address (see
    docs/DECISIONS.md, "Console sign-in")."""
    address = st.context.ip_address
    return address if isinstance(address, str) else None


def sign_in(email: str, password: str) -> User | SignInRefused:
    """The user for these credentials (and remember them in this session), else why not."""
    result = signin.sign_in(data.engine(), email, password, client_address())
    if isinstance(result, User):
        _remember(result)
    return result


def _oidc_user() -> User | None:
    """The account of the identity provider's user (core.signin.sso_user checks the claims), or
    a stop with the reason it is refused and a way out: sign out of the provider, or (for an old
    sign-in there) sign in at the provider again."""
    if not oidc_configured() or not st.user.is_logged_in:
        return None
    try:
        with read_session(data.engine()) as session:
            user = signin.sso_user(session, dict(st.user), get_settings())
    except SsoRefused as refused:
        hours = f"{idle_timeout().total_seconds() / 3600:g}"
        st.error(
            tr(
                f"signin.sso.{refused.reason}",
                hours=hours,
                **{"email": "?", "issuer": "?", "domain": "?", **refused.extra},
            )
        )
        if refused.reason == "stale":
            st.button(tr("signin.sso"), on_click=st.login, type="primary")
        st.button(tr("signout"), on_click=st.logout)
        st.stop()
    _remember(user, via="sso")
    return user


def signed_in_user() -> User | None:
    user = current_user()
    if user is None and not st.session_state.get(SSO_ENDED_KEY):
        user = _oidc_user()
    return user


def sign_in_page() -> None:
    """The page everybody sees before signing in."""
    st.title(tr("app.title"))
    st.subheader(tr("signin.title"))
    with read_session(data.engine()) as session:
        no_users = user_count(session) == 0
    if no_users:
        st.info(tr("signin.no_users"))
    notice = st.session_state.pop(NOTICE_KEY, None)
    if notice:
        st.warning(tr(f"signin.ended.{notice}", hours=f"{idle_timeout().total_seconds() / 3600:g}"))
    if oidc_configured():
        st.button(tr("signin.sso"), on_click=st.login, type="primary")
        st.caption(tr("signin.or_local"))
    else:
        st.caption(tr("signin.intro"))
    with st.form("signin", border=True, width=420):
        email = st.text_input(tr("signin.email"), key="signin_email", autocomplete="username")
        password = st.text_input(
            tr("signin.password"), type="password", key="signin_password", autocomplete="current-password"
        )
        submitted = st.form_submit_button(tr("signin.submit"), type="primary")
    if submitted:
        with st.spinner(tr("signin.checking")):
            result = sign_in(email, password)
        if isinstance(result, User):
            st.rerun()
        elif result.reason == "throttled" and result.until is not None:
            seconds = (result.until - clock.now()).total_seconds()
            st.error(tr("signin.throttled", minutes=max(1, math.ceil(seconds / 60))))
        else:
            st.error(tr("signin.wrong"))


def sign_out() -> None:
    _forget()
    data.clear()
    if oidc_configured() and st.user.is_logged_in:
        st.logout()


def sidebar_account(user: User) -> None:
    with st.sidebar:
        st.caption(tr("signed_in_as"))
        st.text(f"{user.name or user.email}\n{user.email} · {tr(f'role.{user.role}')}")
        st.button(tr("signout"), on_click=sign_out, icon=":material/logout:", key="signout")
        st.button(
            tr("refresh"),
            on_click=data.clear,
            icon=":material/refresh:",
            key="refresh",
            help=tr("refresh.help"),
        )


def require_page(page_key: str) -> User:
    """The signed-in user if their role may open this page; otherwise an error and stop."""
    user = current_user()
    if user is None:
        st.warning(tr("guard.signed_out"))
        st.stop()
    if user.role not in PAGES[page_key].roles:
        st.error(tr("guard.denied", role=tr(f"role.{user.role}")))
        st.stop()
    return user
