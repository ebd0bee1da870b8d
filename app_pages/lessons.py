"""Lessons: filter, page through, inspect one lesson, cancel or reschedule it, export to CSV.

Everyone signed in sees this page: tutors only their own lessons, finance read-only, admins all
with every action. core.lesson_changes.cancel_lesson / reschedule_lesson check the role again.
"""

import streamlit as st

from core import clock
from core.lesson_changes import (
    CANCEL_CONSEQUENCES,
    cancel_lesson,
    default_cancel_consequence,
    mark_attendance,
    reschedule_lesson,
    reschedule_options,
)
from core.lesson_queries import LessonFilter, lesson_detail, lessons_export, lessons_page, unmarked_lessons
from core.models import AWAITING_PAYMENT, CONFIRMED, HELD, LESSON_STATUSES, NEEDS_RESCHEDULE
from core.profiles import profile_rows
from core.tutors import list_tutors
from ui import auth, data, fmt, widgets
from ui.errors import guard, run_action
from ui.i18n import calendar_label, status_label, tr
from ui.tables import row_dict

user = auth.require_page("lessons")
widgets.title(tr("lessons.title"))
tz = data.tz()
is_tutor = user.role == "tutor"
PAGE = "lessons_page"
reset = widgets.reset_page(PAGE)

# --- filters -----------------------------------------------------------------------------------
c_range, c_tutor, c_status, c_profile, c_query = st.columns([2.2, 1.5, 2.2, 1.2, 1.6])
date_from, date_to = widgets.date_range(
    "lessons_range", *widgets.default_range(7, 30), on_change=reset, container=c_range
)
tutor_id = None
if not is_tutor:
    tutors = {t.id: t.name for t in data.read(list_tutors, include_inactive=True)}
    tutor_id = c_tutor.selectbox(
        tr("tutor"),
        list(tutors),
        format_func=tutors.__getitem__,
        index=None,
        placeholder=tr("all"),
        key="lessons_tutor",
        on_change=reset,
    )
statuses = c_status.multiselect(
    tr("status"),
    LESSON_STATUSES,
    format_func=status_label,
    key="lessons_status",
    on_change=reset,
    placeholder=tr("all"),
)
profile_names = [p.name for p in data.read(profile_rows)]
profile = c_profile.selectbox(
    tr("profile"), profile_names, index=None, placeholder=tr("all"), key="lessons_profile", on_change=reset
)
query = c_query.text_input(tr("search"), key="lessons_query", on_change=reset, placeholder=tr("col.contact"))

lesson_filter = LessonFilter(
    date_from,
    date_to,
    tutor_id,
    tuple(statuses),
    profile,
    query or None,
    own_email=user.email if is_tutor else None,
)

# --- table -------------------------------------------------------------------------------------
with st.spinner(tr("loading")):
    result = data.read(lessons_page, lesson_filter, tz, page=widgets.page_number(PAGE))

if not result.rows:
    st.info(tr("lessons.empty"))
else:
    waiting = sum(1 for r in result.rows if r.calendar_sync in ("pending", "failed"))
    if waiting:
        st.warning(tr("lessons.calendar_waiting", n=waiting), icon=":material/event_busy:")
    widgets.table(
        [
            {
                "id": r.id,
                "start": fmt.fmt_dt(r.start),
                "end": fmt.fmt_time(r.end),
                "status": status_label(r.status),
                "calendar": calendar_label(r.calendar_sync),
                "tutor": r.tutor_name,
                "contact": r.contact_name or r.contact_id,
                "profile": r.profile_name,
                "series": tr("lessons.series_label", i=r.series_pos, n=r.series_total)
                if r.series_pos
                else "",
                "payment": " ".join(
                    x for x in (status_label(r.payment_status), fmt.fmt_money(r.amount, r.currency)) if x
                ),
            }
            for r in result.rows
        ],
        {
            "id": tr("col.id"),
            "start": tr("col.start"),
            "end": tr("col.end"),
            "status": tr("col.status"),
            "calendar": tr("col.calendar"),
            "tutor": tr("col.tutor"),
            "contact": tr("col.contact"),
            "profile": tr("col.profile"),
            "series": tr("col.series"),
            "payment": tr("col.payment"),
        },
        column_config={
            "id": st.column_config.NumberColumn(width="small", format="%d"),
            "calendar": st.column_config.TextColumn(width="small"),
        },
    )
    widgets.pager(PAGE, result)
    widgets.csv_download(
        user,
        tr("export_csv"),
        lessons_export,
        (lesson_filter, tz),
        [
            "id",
            "start",
            "end",
            "status",
            "tutor_name",
            "contact_name",
            "contact_id",
            "profile_name",
            "series_id",
            "payment_status",
            "amount",
            "currency",
            "checkout_session_id",
            "calendar_event_id",
            "calendar_sync",
            "cancel_reason",
        ],
        None,
        "lessen.csv",
        "lessons_csv",
    )

if user.role == "finance":
    st.caption(tr("lessons.readonly"))

# --- attendance: past lessons to mark, one click each -------------------------------------------
if user.role in ("tutor", "admin"):
    minute = clock.now().replace(second=0, microsecond=0)
    unmarked = data.read(unmarked_lessons, minute, own_email=user.email if is_tutor else None)
    if unmarked:
        st.subheader(tr("lessons.attendance.title"))
        st.caption(tr("lessons.attendance.help"))
        for row in unmarked:
            text, came, missed = st.columns([5, 1.2, 1.5], vertical_alignment="center")
            text.markdown(
                f"#{row.id} · {fmt.fmt_range(row.start, row.end)} · {fmt.esc_md(row.contact_name or '')}"
            )
            if came.button(
                tr("lessons.attendance.attended"), key=f"attended_{row.id}", icon=":material/check:"
            ):
                run_action(
                    mark_attendance,
                    row.id,
                    user,
                    "attended",
                    success=tr("lessons.attendance.done", id=row.id),
                )
            if missed.button(
                tr("lessons.attendance.no_show"), key=f"noshow_{row.id}", icon=":material/person_off:"
            ):
                run_action(
                    mark_attendance,
                    row.id,
                    user,
                    "no_show",
                    success=tr("lessons.attendance.done", id=row.id),
                )

# --- one lesson --------------------------------------------------------------------------------
if result.rows:
    st.subheader(tr("lessons.detail"))
    labels = {
        r.id: f"#{r.id} · {fmt.fmt_dt(r.start)} · {r.contact_name or r.contact_id}" for r in result.rows
    }
    lesson_id = st.selectbox(
        tr("lessons.pick"),
        list(labels),
        format_func=labels.__getitem__,
        index=None,
        key="lessons_pick",
        placeholder=tr("lessons.pick_placeholder"),
    )
    if lesson_id is not None:
        with guard():
            detail = data.read(lesson_detail, lesson_id)
            lesson, contact = detail.lesson, detail.contact
            invite = {
                None: tr("lessons.invite.none"),
                True: tr("lessons.invite.sent"),
                False: tr("lessons.invite.refused"),
            }[lesson.invite_sent]
            facts = [
                (tr("col.status"), status_label(lesson.status)),
                (tr("col.start"), fmt.fmt_range(lesson.start, lesson.end)),
                (tr("col.tutor"), detail.tutor_name or ""),
                (
                    tr("col.contact"),
                    " · ".join(
                        x
                        for x in (
                            contact.name if contact else None,
                            contact.phone if contact else None,
                            contact.email if contact else None,
                            lesson.contact_id,
                        )
                        if x
                    ),
                ),
                (tr("col.profile"), lesson.profile_name),
                (tr("lessons.description"), lesson.description or lesson.title),
                (tr("lessons.hold_until"), fmt.fmt_dt(lesson.hold_expires_at)),
                (tr("col.calendar"), calendar_label(lesson.calendar_sync) or "—"),
                (tr("lessons.event"), lesson.calendar_event_id or "—"),
                (tr("lessons.invite"), invite),
                (tr("lessons.note"), lesson.calendar_note or "—"),
                (tr("lessons.cancel_reason"), lesson.cancel_reason or "—"),
                (
                    tr("lessons.attendance.outcome"),
                    {
                        "attended": tr("lessons.attendance.attended"),
                        "no_show": tr("lessons.attendance.no_show"),
                    }.get(lesson.outcome or "", "—"),
                ),
            ]
            widgets.table([{"k": k, "v": v} for k, v in facts], {"k": tr("col.detail"), "v": tr("col.value")})
            st.markdown(f"**{tr('lessons.payments')}**")
            if detail.payments:
                widgets.table(
                    [
                        row_dict(
                            p,
                            status=status_label(p.status),
                            amount=fmt.fmt_money(p.amount, p.currency),
                            created_at=fmt.fmt_dt(p.created_at),
                            paid_at=fmt.fmt_dt(p.paid_at),
                        )
                        for p in detail.payments
                    ],
                    {
                        "checkout_session_id": tr("col.session"),
                        "status": tr("col.status"),
                        "amount": tr("col.amount"),
                        "created_at": tr("col.created"),
                        "paid_at": tr("col.paid_at"),
                    },
                )
            elif not detail.paid_by_credit:
                st.caption(tr("lessons.no_payment"))
            if detail.series:
                title = tr("lessons.series.title", id=lesson.series_id, n=len(detail.series))
                with st.expander(title, icon=":material/event_repeat:"):
                    st.caption(tr("lessons.series.help"))
                    widgets.table(
                        [
                            {
                                "id": s.id,
                                "start": fmt.fmt_range(s.start, s.end),
                                "status": status_label(s.status),
                            }
                            for s in detail.series
                        ],
                        {"id": tr("col.id"), "start": tr("col.start"), "status": tr("col.status")},
                    )
            if detail.paid_by_credit:
                st.caption(
                    tr("lessons.paid_by_credit")
                    + (" " + tr("lessons.credit_returned") if detail.credit_returned else "")
                )

            active = lesson.status in (HELD, AWAITING_PAYMENT, CONFIRMED, NEEDS_RESCHEDULE)
            if user.role == "finance":
                pass
            elif not active:
                st.caption(tr("lessons.not_active", status=status_label(lesson.status)))
            elif not data.can_manage_lesson(user, lesson_id):
                st.caption(tr("lessons.not_yours"))
            else:
                left, right = st.columns(2)
                with left.form("cancel_form"):
                    st.markdown(f"**{tr('lessons.cancel.title')}**")
                    reason = st.text_input(tr("reason"), key="cancel_reason")
                    default = data.read(default_cancel_consequence, lesson_id, data.now_minute())
                    consequence = st.radio(
                        tr("lessons.cancel.consequence"),
                        CANCEL_CONSEQUENCES,
                        index=CANCEL_CONSEQUENCES.index(default),
                        format_func=lambda c: tr(f"lessons.cancel.{c}"),
                        help=tr("lessons.cancel.consequence_help"),
                        horizontal=True,
                        key=f"cancel_consequence_{lesson_id}",
                    )
                    confirmed = st.checkbox(tr("lessons.cancel.confirm"), key="cancel_confirm")
                    cancel = st.form_submit_button(tr("lessons.cancel.submit"), type="primary")
                if cancel:
                    if not confirmed:
                        left.warning(tr("lessons.cancel.need_confirm"))
                    else:
                        run_action(
                            cancel_lesson,
                            lesson_id,
                            actor=user,
                            reason=reason,
                            consequence=consequence,
                            success=tr("lessons.cancel.done", id=lesson_id),
                        )
                if lesson.status != HELD:
                    with right:
                        st.markdown(f"**{tr('lessons.resched.title')}**")
                        if st.toggle(tr("lessons.resched.pick"), key=f"resched_open_{lesson_id}"):
                            with st.spinner(tr("loading")):
                                slots = reschedule_options(lesson_id, user)
                            if not slots:
                                st.info(tr("lessons.resched.none"))
                            else:
                                with st.form("resched_form"):
                                    choice = st.selectbox(
                                        tr("lessons.resched.pick"),
                                        range(len(slots)),
                                        format_func=lambda i: fmt.fmt_range(slots[i].start, slots[i].end),
                                        key="resched_slot",
                                    )
                                    why = st.text_input(tr("reason"), key="resched_reason")
                                    move = st.form_submit_button(tr("lessons.resched.submit"))
                                if move:
                                    run_action(
                                        reschedule_lesson,
                                        lesson_id,
                                        slots[choice].start,
                                        user,
                                        why,
                                        success=lambda new: tr("lessons.resched.done", id=new.id),
                                    )
