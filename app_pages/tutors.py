"""Docenten: a tutor's weekly working hours (admins for every tutor, a tutor for themself). Time
outside them is never offered; a tutor without hours works the profile's whole window."""

import streamlit as st

from core.tutor_hours import set_tutor_week, tutor_week
from core.tutors import list_tutors
from ui import auth, data, fmt, widgets
from ui.errors import run_action
from ui.i18n import tr

user = auth.require_page("tutors")
widgets.title(tr("page.tutors"))

tutors = data.read(list_tutors, email=user.email if user.role == "tutor" else None)
if not tutors:
    st.info(tr("avail.no_tutor", email=user.email) if user.role == "tutor" else tr("avail.no_tutors"))
    st.stop()
names = {t.id: t.name for t in tutors}
tutor_id = st.selectbox(tr("tutor"), list(names), format_func=names.__getitem__, key="tutors_pick")


week = data.read(tutor_week, tutor_id)
st.subheader(tr("tutors.hours"))
st.caption(tr("tutors.hours_help") if any(week.values()) else tr("tutors.no_hours"))
with st.form(f"tutor_hours_{tutor_id}"):
    texts = {}
    columns = st.columns(7)
    for day, column in enumerate(columns):
        texts[day] = column.text_input(
            fmt.weekday_name(day), value=week[day], placeholder="09:00-17:00", key=f"th_{tutor_id}_{day}"
        )
    save = st.form_submit_button(tr("tutors.save"), type="primary", icon=":material/save:")
if save:
    run_action(set_tutor_week, user, tutor_id, texts, success=tr("tutors.saved"))
