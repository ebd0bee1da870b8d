"""Contacts & segments (admin): find a contact by name, phone, e-mail or id; see the segment the
bot detects and why, the profile it would use and the contact's attributes; correct and confirm
its details (then staff maintain them, core/contacts.py); pin a segment or profile with an
override. Contact data comes from customers and is shown as plain text."""

import pandas as pd
import streamlit as st

from core.contact_queries import contact_detail, search_contacts
from core.contacts import set_contact_overrides, update_contact_details
from core.credits import CREDIT_MINUTES, credit_overview, grant
from core.models import SEGMENTS
from core.profiles import profile_rows
from ui import auth, data, fmt, widgets
from ui.errors import guard, run_action
from ui.i18n import status_label, tr
from ui.tables import row_dict

user = auth.require_page("contacts")
widgets.title(tr("contacts.title"))
PAGE = "contacts_page"

query = st.text_input(tr("contacts.search"), key="contacts_query", on_change=widgets.reset_page(PAGE))
with st.spinner(tr("loading")):
    result = data.read(search_contacts, query, page=widgets.page_number(PAGE))
if not result.rows:
    st.info(tr("contacts.empty"))
    st.stop()

widgets.table(
    [row_dict(c, updated_at=fmt.fmt_dt(c.updated_at)) for c in result.rows],
    {
        "id": tr("col.id"),
        "name": tr("col.name"),
        "phone": tr("col.phone"),
        "email": tr("col.email"),
        "segment": tr("col.segment"),
        "segment_override": tr("contacts.segment_override"),
        "profile_override": tr("contacts.profile_override"),
    },
)
widgets.pager(PAGE, result)

labels = {c.id: " · ".join(x for x in (c.name, c.phone, c.email, c.id) if x) for c in result.rows}
contact_id = st.selectbox(
    tr("contacts.pick"), list(labels), format_func=labels.__getitem__, key="contacts_pick"
)

with guard():
    detail = data.read(contact_detail, contact_id)
    contact = detail.contact
    left, right = st.columns(2)
    with left:
        widgets.table(
            [
                {"k": k, "v": v}
                for k, v in (
                    (tr("col.name"), contact.name or ""),
                    (tr("col.phone"), contact.phone or ""),
                    (tr("col.email"), contact.email or ""),
                    (tr("contacts.email_state"), tr("yes") if contact.email_confirmed else tr("no")),
                    (
                        tr("contacts.maintained_by"),
                        tr("contacts.by_staff") if contact.staff_maintained else tr("contacts.by_bot"),
                    ),
                    (tr("col.id"), contact.id),
                    (tr("contacts.segment"), detail.segment),
                    (tr("contacts.segment_reason"), detail.segment_reason),
                    (tr("contacts.profile"), detail.profile or detail.profile_error or ""),
                    (
                        tr("contacts.lessons"),
                        ", ".join(f"{status_label(s)}: {n}" for s, n in detail.lesson_counts.items()) or "—",
                    ),
                    (
                        tr("contacts.attendance"),
                        tr("contacts.attendance_counts", attended=detail.attended, no_shows=detail.no_shows),
                    ),
                )
            ],
            {"k": tr("col.detail"), "v": tr("col.value")},
        )
    with right:
        st.markdown(f"**{tr('contacts.attributes')}**")
        if contact.attributes:
            # A dataframe, not st.json: values are customer data and stay plain text.
            st.dataframe(
                pd.DataFrame(
                    {
                        tr("col.key"): list(contact.attributes),
                        tr("col.value"): [str(v) for v in contact.attributes.values()],
                    }
                ),
                hide_index=True,
                width="stretch",
            )
        else:
            st.caption(tr("contacts.no_attributes"))

    st.subheader(tr("contacts.details"))
    st.caption(tr("contacts.details_help"))
    with st.form(f"details_{contact_id}"):
        a, b, c = st.columns(3)
        name = a.text_input(tr("col.name"), value=contact.name or "", key=f"cd_name_{contact_id}")
        email = b.text_input(tr("col.email"), value=contact.email or "", key=f"cd_email_{contact_id}")
        phone = c.text_input(tr("col.phone"), value=contact.phone or "", key=f"cd_phone_{contact_id}")
        confirmed = st.checkbox(
            tr("contacts.email_confirmed"),
            value=contact.email_confirmed,
            key=f"cd_confirmed_{contact_id}",
        )
        save_details = st.form_submit_button(tr("contacts.save_details"), type="primary")
    if save_details:
        run_action(
            update_contact_details,
            user,
            contact_id,
            name=name,
            email=email,
            phone=phone,
            email_confirmed=confirmed,
            success=tr("saved"),
        )

    st.subheader(tr("contacts.overrides"))
    profile_names = [p.name for p in data.read(profile_rows, include_inactive=False)]
    with st.form(f"overrides_{contact_id}"):
        a, b = st.columns(2)
        segment_options = [None, *SEGMENTS]
        profile_options = [None, *profile_names]
        segment = a.selectbox(
            tr("contacts.segment_override"),
            segment_options,
            index=segment_options.index(contact.segment_override)
            if contact.segment_override in segment_options
            else 0,
            format_func=lambda s: tr("none") if s is None else s,
            key=f"ov_seg_{contact_id}",
        )
        profile = b.selectbox(
            tr("contacts.profile_override"),
            profile_options,
            index=profile_options.index(contact.profile_override)
            if contact.profile_override in profile_options
            else 0,
            format_func=lambda p: tr("none") if p is None else p,
            key=f"ov_prof_{contact_id}",
        )
        save = st.form_submit_button(tr("contacts.save"), type="primary")
    if save:
        run_action(set_contact_overrides, user, contact_id, segment, profile, success=tr("saved"))

    st.subheader(tr("credits.title"))
    overview = data.read(credit_overview, contact_id)
    st.markdown(" · ".join(tr("credits.balance", n=n, minutes=m) for m, n in overview.balances.items()))
    if overview.entries:
        widgets.table(
            [
                row_dict(
                    e,
                    created_at=fmt.fmt_dt(e.created_at),
                    kind=tr(f"credits.kind.{e.kind}"),
                    delta=f"{e.delta:+d}",
                    lesson_id="" if e.lesson_id is None else str(e.lesson_id),
                )
                for e in overview.entries
            ],
            {
                "created_at": tr("col.created"),
                "kind": tr("credits.kind"),
                "minutes": tr("col.minutes"),
                "delta": tr("credits.delta"),
                "reason": tr("reason"),
                "lesson_id": tr("col.lesson"),
                "actor": tr("credits.actor"),
            },
        )
    else:
        st.caption(tr("credits.none"))
    with st.form(f"credits_{contact_id}"):
        st.caption(tr("credits.grant_help"))
        a, b, c = st.columns([1, 1, 3])
        minutes = a.selectbox(tr("col.minutes"), CREDIT_MINUTES, key=f"cr_min_{contact_id}")
        delta = int(
            b.number_input(
                tr("credits.delta"),
                min_value=-50,
                max_value=50,
                value=1,
                step=1,
                key=f"cr_delta_{contact_id}",
            )
        )
        why = c.text_input(tr("reason"), key=f"cr_reason_{contact_id}")
        change = st.form_submit_button(tr("credits.grant"), type="primary")
    if change:
        run_action(grant, user, contact_id, minutes, delta, why, success=tr("saved"))
