"""Users (admin): accounts and roles; create an account, change a role, deactivate or activate,
reset a password. New passwords are random and shown once, never stored in plain text."""

import streamlit as st

from core.models import ROLES
from core.users import add_user, list_users, reset_password, set_user_active, set_user_role
from ui import auth, data, fmt, widgets
from ui.errors import run_action
from ui.i18n import tr
from ui.tables import row_dict

user = auth.require_page("users")
widgets.title(tr("users.title"))

# A password made in the previous run (before its rerun) is shown once, then forgotten.
shown = st.session_state.pop("_new_password", None)
if shown:
    st.success(tr("users.password_once", email=fmt.esc_md(shown[0])))
    st.code(shown[1], language=None)

accounts = data.read(list_users)
widgets.table(
    [
        row_dict(
            u,
            role=tr(f"role.{u.role}"),
            active=tr("yes") if u.active else tr("no"),
            last_login_at=fmt.fmt_dt(u.last_login_at),
            created_at=fmt.fmt_dt(u.created_at),
        )
        for u in accounts
    ],
    {
        "email": tr("col.email"),
        "name": tr("col.name"),
        "role": tr("col.role"),
        "active": tr("col.active"),
        "last_login_at": tr("col.last_login"),
        "created_at": tr("col.created"),
    },
)


def _remember_password(email: str, password: str) -> None:
    st.session_state["_new_password"] = (email, password)


left, right = st.columns(2)
with left:
    st.subheader(tr("users.create"))
    with st.form("user_create", clear_on_submit=True):
        email = st.text_input(tr("col.email"), key="new_user_email")
        name = st.text_input(tr("col.name"), key="new_user_name")
        role = st.selectbox(tr("col.role"), ROLES, format_func=lambda r: tr(f"role.{r}"), key="new_user_role")
        create = st.form_submit_button(tr("users.create.submit"), type="primary")
    if create:

        def _create() -> None:
            created, password = add_user(user, email, role, name)
            _remember_password(created.email, password)

        run_action(_create)

with right:
    st.subheader(tr("users.manage"))
    by_id = {u.id: u for u in accounts}
    picked = st.selectbox(
        tr("users.pick"),
        list(by_id),
        key="user_pick",
        format_func=lambda i: f"{by_id[i].email} ({tr('role.' + by_id[i].role)})",
    )
    target = by_id[picked]
    new_role = st.selectbox(
        tr("col.role"),
        ROLES,
        index=ROLES.index(target.role),
        key=f"user_role_{picked}",
        format_func=lambda r: tr(f"role.{r}"),
    )
    a, b, c = st.columns(3)
    if a.button(tr("users.role_save"), key="user_role_save", disabled=new_role == target.role):
        run_action(set_user_role, user, picked, new_role, success=tr("users.done"))
    if target.active:
        if b.button(tr("users.deactivate"), key="user_deactivate", icon=":material/block:"):
            run_action(set_user_active, user, picked, False, success=tr("users.done"))
    elif b.button(tr("users.activate"), key="user_activate", icon=":material/check_circle:"):
        run_action(set_user_active, user, picked, True, success=tr("users.done"))
    if c.button(tr("users.reset"), key="user_reset", icon=":material/key:"):
        run_action(lambda: _remember_password(target.email, reset_password(user, picked)))
