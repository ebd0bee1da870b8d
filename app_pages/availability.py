"""Availability: a tutor's week (free slots, held and confirmed lessons, busy time), the free slots
as a table, what the bot would offer a contact right now (admins), and time off for the local
calendar.

Tutors see only their own calendar (Tutor.email == their e-mail); admins pick any tutor. When the
calendar cannot be read, the page says so and shows no free slots rather than guessing.
"""

from datetime import datetime, time, timedelta

import streamlit as st

from core.availability import add_busy_block, future_busy_blocks, remove_busy_block, week_items
from core.availability_queries import week_calendar
from core.config import get_settings
from core.contact_queries import ContactOffer, offer_for_contact, search_contacts
from core.errors import CalendarUnavailable, LesplannerError
from core.paging import week_monday
from core.profiles import profile_rows
from core.tutors import list_tutors
from ui import auth, charts, data, fmt, widgets
from ui.errors import run_action, show_error
from ui.i18n import tr

user = auth.require_page("availability")
widgets.title(tr("avail.title"))
tz = data.tz()
now = data.now_minute()
today = now.astimezone(tz).date()

profiles = [p.name for p in data.read(profile_rows, include_inactive=False)]
all_tutors = data.read(list_tutors, email=user.email if user.role == "tutor" else None)
if not profiles:
    st.info(tr("avail.no_profiles"))
    st.stop()
if not all_tutors:
    st.info(tr("avail.no_tutor", email=user.email) if user.role == "tutor" else tr("avail.no_tutors"))
    st.stop()

# --- profile, tutor, week ----------------------------------------------------------------------
if "avail_week" not in st.session_state:
    st.session_state["avail_week"] = week_monday(today)
    st.session_state["avail_date"] = st.session_state["avail_week"]


def _shift(days: int) -> None:
    st.session_state["avail_week"] = (
        week_monday(today) if days == 0 else st.session_state["avail_week"] + timedelta(days=days)
    )
    st.session_state["avail_date"] = st.session_state["avail_week"]


def _picked() -> None:
    st.session_state["avail_week"] = week_monday(st.session_state["avail_date"])


c_profile, c_tutor, c_date, c_prev, c_today, c_next = st.columns(
    [1.2, 1.6, 1.3, 1.1, 0.9, 1.1], vertical_alignment="bottom"
)
profile = c_profile.selectbox(
    tr("profile"),
    profiles,
    key="avail_profile",
    index=profiles.index("existing") if "existing" in profiles else 0,
)
tutors = {t.id: t.name for t in all_tutors if not t.profiles or profile in t.profiles} or {
    t.id: t.name for t in all_tutors
}
tutor_id = c_tutor.selectbox(tr("tutor"), list(tutors), format_func=tutors.__getitem__, key="avail_tutor")
c_date.date_input(tr("avail.week_of"), key="avail_date", format="DD-MM-YYYY", on_change=_picked)
c_prev.button(tr("avail.prev"), on_click=_shift, args=(-7,), width="stretch")
c_today.button(tr("avail.today"), on_click=_shift, args=(0,), width="stretch")
c_next.button(tr("avail.next"), on_click=_shift, args=(7,), width="stretch")
week = st.session_state["avail_week"]
st.caption(
    tr(
        "avail.week_caption",
        week=week.isocalendar().week,
        first=fmt.fmt_date(week),
        last=fmt.fmt_date(week + timedelta(days=6)),
        tz=get_settings().timezone,
    )
)

# --- the week ----------------------------------------------------------------------------------
items = data.read(week_items, tutor_id, week, tz)
calendar = None
with st.spinner(tr("loading")):
    try:
        calendar = data.read(week_calendar, profile, tutor_id, week, tz, now)
    except CalendarUnavailable as exc:
        st.error(tr("avail.calendar_error", message=exc.message))
    except LesplannerError as exc:
        show_error(exc)

st.altair_chart(charts.week_chart(week, items.lessons, calendar), width="stretch")

st.subheader(tr("avail.free_slots"))
if calendar is not None:
    if calendar.free:
        widgets.table(
            [
                {"date": fmt.fmt_date(s), "start": fmt.fmt_time(s), "end": fmt.fmt_time(e)}
                for s, e in calendar.free
            ],
            {"date": tr("col.date"), "start": tr("col.start"), "end": tr("col.end")},
            height=240,
        )
    else:
        st.info(tr("avail.no_free"))

# --- what the bot would offer (admins: it searches every customer) ------------------------------
if user.role == "admin":
    st.subheader(tr("avail.bot.title"))
    query: str | None = st.text_input(tr("avail.bot.search"), key="avail_bot_query")
else:
    query = None  # tutors do not browse the customer list (Contacts is admin-only too)
if query is None:
    pass
elif not query.strip():
    st.caption(tr("avail.bot.hint"))
else:
    found = data.read(search_contacts, query, page=1, page_size=20).rows
    if not found:
        st.info(tr("avail.bot.none_found"))
    else:
        names = {c.id: " · ".join(x for x in (c.name, c.phone, c.email, c.id) if x) for c in found}
        contact_id = st.selectbox(
            tr("avail.bot.pick"), list(names), format_func=names.__getitem__, key="avail_bot_contact"
        )
        offer: ContactOffer | None
        with st.spinner(tr("loading")):
            try:
                offer = data.read(offer_for_contact, contact_id, now)
            except LesplannerError as exc:
                show_error(exc)
                offer = None
        if offer is not None:
            st.markdown(
                tr(
                    "avail.bot.result",
                    segment=fmt.esc_md(offer.segment),
                    reason=fmt.esc_md(offer.reason),
                    profile=fmt.esc_md(offer.profile),
                )
            )
            if offer.slots:
                widgets.table(
                    [{"when": fmt.fmt_range(s, e)} for s, e in offer.slots], {"when": tr("col.when")}
                )
            else:
                st.info(tr("avail.bot.no_slots"))

# --- time off (local calendar only) ------------------------------------------------------------
st.subheader(tr("avail.timeoff.title"))
if get_settings().calendar_backend != "local":
    st.info(tr("avail.timeoff.google"))
    st.stop()
with st.form("timeoff_add", clear_on_submit=True):
    a, b, c, d, e = st.columns([1, 0.8, 1, 0.8, 2])
    from_day = a.date_input(
        tr("avail.timeoff.from_date"), value=today, format="DD-MM-YYYY", key="to_from_day"
    )
    from_time = b.time_input(tr("avail.timeoff.from_time"), value=time(9), step=900, key="to_from_time")
    to_day = c.date_input(tr("avail.timeoff.to_date"), value=today, format="DD-MM-YYYY", key="to_to_day")
    to_time = d.time_input(tr("avail.timeoff.to_time"), value=time(17), step=900, key="to_to_time")
    reason = e.text_input(tr("reason"), key="to_reason")
    add = st.form_submit_button(tr("avail.timeoff.add"))
if add:
    run_action(
        add_busy_block,
        user,
        tutor_id,
        datetime.combine(from_day, from_time, tzinfo=tz),
        datetime.combine(to_day, to_time, tzinfo=tz),
        reason,
        success=tr("avail.timeoff.added"),
    )

blocks = data.read(future_busy_blocks, tutor_id, now)
if not blocks:
    st.caption(tr("avail.timeoff.none"))
else:
    widgets.table(
        [
            {"when": fmt.fmt_range(b.start, b.end), "reason": b.reason or "", "by": b.created_by}
            for b in blocks
        ],
        {"when": tr("col.when"), "reason": tr("reason"), "by": tr("col.added_by")},
    )
    labels = {b.id: f"{fmt.fmt_range(b.start, b.end)} {b.reason or ''}" for b in blocks}
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    block_id = left.selectbox(
        tr("avail.timeoff.remove_pick"),
        list(labels),
        format_func=labels.__getitem__,
        key="timeoff_remove_pick",
    )
    if right.button(tr("avail.timeoff.remove"), key="timeoff_remove"):
        run_action(remove_busy_block, user, block_id, success=tr("avail.timeoff.removed"))
