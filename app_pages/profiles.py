"""Planning profiles (admin): edit a profile with validation that names the field, preview the
slots the edited profile would offer against current busy time before saving, map segments to
profiles, and read the audit log."""

import json

import streamlit as st

from core.audit import audit_page
from core.booking import preview_profile
from core.errors import LesplannerError
from core.models import SCHOOL_REGIONS, SEGMENTS
from core.profiles import (
    EDITABLE_FIELDS,
    ON_TIME_CANCEL,
    profile_rows,
    segment_mapping,
    set_segment_profile,
    update_profile,
)
from ui import auth, data, fmt, widgets
from ui.errors import run_action, show_error
from ui.i18n import tr
from ui.tables import row_dict

user = auth.require_page("profiles")
widgets.title(tr("prof.title"))

profiles = data.read(profile_rows)
if not profiles:
    st.info(tr("avail.no_profiles"))
    st.stop()
by_name = {p.name: p for p in profiles}

st.subheader(tr("prof.overview"))
fields = ["name", *EDITABLE_FIELDS]


def _hours_list(text: str) -> list[int] | str:
    """'48, 2' → [48, 2]; anything else goes to core's validation as typed, which names the field."""
    parts = [p.strip() for p in text.replace(";", ",").split(",") if p.strip()]
    try:
        return [int(p) for p in parts]
    except ValueError:
        return text


def _shown(field: str, value: object) -> str:
    items = value if isinstance(value, list) else []  # the list fields hold a list or None
    if field == "reminder_hours":
        return ", ".join(str(h) for h in items) or "—"
    if field == "allowed_weekdays":
        return ", ".join(fmt.weekday_name(d)[:2] for d in items) or "—"
    if isinstance(value, bool):
        return tr("yes") if value else tr("no")
    return "—" if value is None else str(value)


# Transposed (a row per field, a column per profile): thirteen fields do not fit side by side.
widgets.table(
    [{"field": tr(f"field.{f}"), **{p.name: _shown(f, getattr(p, f)) for p in profiles}} for f in fields[1:]],
    {"field": tr("prof.field"), **{p.name: p.name for p in profiles}},
)

# --- edit one profile --------------------------------------------------------------------------
st.subheader(tr("prof.edit"))
name = st.selectbox(tr("prof.pick"), list(by_name), key="prof_pick")
current = by_name[name]
with st.form(f"profile_form_{name}"):
    a, b, c, d = st.columns(4)
    values = {
        "duration_minutes": a.number_input(
            tr("field.duration_minutes"),
            min_value=0,
            max_value=1440,
            step=15,
            value=current.duration_minutes,
            key=f"pf_{name}_duration_minutes",
        ),
        "earliest_hour": b.number_input(
            tr("field.earliest_hour"),
            min_value=0,
            max_value=24,
            step=1,
            value=current.earliest_hour,
            key=f"pf_{name}_earliest_hour",
        ),
        "latest_hour": c.number_input(
            tr("field.latest_hour"),
            min_value=0,
            max_value=24,
            step=1,
            value=current.latest_hour,
            key=f"pf_{name}_latest_hour",
        ),
        "min_lead_minutes": d.number_input(
            tr("field.min_lead_minutes"),
            min_value=0,
            step=30,
            value=current.min_lead_minutes,
            key=f"pf_{name}_min_lead_minutes",
        ),
        "days_ahead": a.number_input(
            tr("field.days_ahead"),
            min_value=0,
            step=1,
            value=current.days_ahead,
            key=f"pf_{name}_days_ahead",
        ),
        "slot_step_minutes": b.number_input(
            tr("field.slot_step_minutes"),
            min_value=0,
            step=15,
            value=current.slot_step_minutes,
            key=f"pf_{name}_slot_step_minutes",
        ),
        "max_suggestions": c.number_input(
            tr("field.max_suggestions"),
            min_value=0,
            step=1,
            value=current.max_suggestions,
            key=f"pf_{name}_max_suggestions",
        ),
        "buffer_minutes": d.number_input(
            tr("field.buffer_minutes"),
            min_value=0,
            step=5,
            value=current.buffer_minutes,
            key=f"pf_{name}_buffer_minutes",
        ),
        "max_per_day": a.number_input(
            tr("field.max_per_day"),
            min_value=0,
            step=1,
            help=tr("prof.max_per_day_help"),
            value=current.max_per_day or 0,
            key=f"pf_{name}_max_per_day",
        )
        or None,
        "cancel_notice_hours": d.number_input(
            tr("field.cancel_notice_hours"),
            min_value=0,
            max_value=336,
            step=1,
            help=tr("prof.cancel_notice_help"),
            value=current.cancel_notice_hours,
            key=f"pf_{name}_cancel_notice_hours",
        ),
        "on_time_cancel": d.selectbox(
            tr("field.on_time_cancel"),
            ON_TIME_CANCEL,
            index=ON_TIME_CANCEL.index(current.on_time_cancel)
            if current.on_time_cancel in ON_TIME_CANCEL
            else 0,
            format_func=lambda v: tr(f"prof.on_time_cancel.{v}"),
            help=tr("prof.on_time_cancel_help"),
            key=f"pf_{name}_on_time_cancel",
        ),
        "reminder_hours": _hours_list(
            a.text_input(
                tr("field.reminder_hours"),
                value=", ".join(str(h) for h in current.reminder_hours or []),
                help=tr("prof.reminder_help"),
                key=f"pf_{name}_reminder_hours",
            )
        ),
    }
    values["allowed_weekdays"] = (
        b.multiselect(
            tr("field.allowed_weekdays"),
            list(range(7)),
            default=current.allowed_weekdays or [],
            format_func=fmt.weekday_name,
            help=tr("prof.weekdays_help"),
            key=f"pf_{name}_allowed_weekdays",
            placeholder=tr("prof.weekdays_all"),
        )
        or None
    )
    values["exclude_weekends"] = c.checkbox(
        tr("field.exclude_weekends"), value=current.exclude_weekends, key=f"pf_{name}_exclude_weekends"
    )
    values["requires_payment"] = c.checkbox(
        tr("field.requires_payment"), value=current.requires_payment, key=f"pf_{name}_requires_payment"
    )
    values["active"] = d.checkbox(tr("field.active"), value=current.active, key=f"pf_{name}_active")
    values["public_holidays"] = d.checkbox(
        tr("field.public_holidays"),
        value=current.public_holidays,
        help=tr("prof.public_holidays_help"),
        key=f"pf_{name}_public_holidays",
    )
    values["school_holidays"] = c.selectbox(
        tr("field.school_holidays"),
        [None, *SCHOOL_REGIONS],
        index=[None, *SCHOOL_REGIONS].index(current.school_holidays),
        format_func=lambda r: tr("prof.school_none") if r is None else tr(f"region.{r}"),
        help=tr("prof.school_help"),
        key=f"pf_{name}_school_holidays",
    )
    left, right, _ = st.columns([1.3, 1.3, 5])
    preview = left.form_submit_button(tr("prof.preview"), icon=":material/visibility:")
    save = right.form_submit_button(tr("prof.save"), type="primary", icon=":material/save:")

values = {k: int(v) if isinstance(v, float) else v for k, v in values.items()}
if preview:
    with st.spinner(tr("loading")):
        try:
            slots = preview_profile(name, values)
        except LesplannerError as exc:
            show_error(exc)
        else:
            st.markdown(f"**{tr('prof.preview.title')}**")
            if slots:
                widgets.table(
                    [{"when": fmt.fmt_range(s.start, s.end)} for s in slots], {"when": tr("col.when")}
                )
            else:
                st.warning(tr("prof.preview.none"))
if save:
    run_action(update_profile, user, name, values, success=tr("prof.saved", name=name))

# --- segment -> profile ------------------------------------------------------------------------
st.subheader(tr("prof.mapping"))
mapping = data.read(segment_mapping)
active_names = [p.name for p in profiles if p.active]
with st.form("segment_mapping"):
    columns = st.columns(len(SEGMENTS))
    chosen: dict[str, str | None] = {}
    for column, segment in zip(columns, SEGMENTS, strict=True):
        options: list[str | None] = (
            [*active_names] if mapping.get(segment) in active_names else [mapping.get(segment), *active_names]
        )
        chosen[segment] = column.selectbox(
            segment,
            options,
            index=options.index(mapping.get(segment)) if mapping.get(segment) in options else 0,
            key=f"map_{segment}",
        )
    save_mapping = st.form_submit_button(tr("prof.mapping.save"))
if save_mapping:

    def _save_mapping() -> None:
        for segment, profile_name in chosen.items():
            if profile_name is not None and profile_name != mapping.get(segment):
                set_segment_profile(user, segment, profile_name)

    run_action(_save_mapping, success=tr("prof.mapping.saved"))

# --- audit log ---------------------------------------------------------------------------------
st.subheader(tr("prof.audit"))
audit = data.read(audit_page, None, page=widgets.page_number("audit_page"), page_size=20)
if not audit.rows:
    st.caption(tr("prof.audit.empty"))
else:
    widgets.table(
        [
            row_dict(
                r,
                at=fmt.fmt_dt(r.at),
                before=json.dumps(r.before, ensure_ascii=False) if r.before else "",
                after=json.dumps(r.after, ensure_ascii=False) if r.after else "",
            )
            for r in audit.rows
        ],
        {
            "at": tr("col.when"),
            "actor": tr("col.actor"),
            "action": tr("col.action"),
            "entity_id": tr("col.entity"),
            "before": tr("col.before"),
            "after": tr("col.after"),
        },
        column_config={
            "before": st.column_config.TextColumn(width="large"),
            "after": st.column_config.TextColumn(width="large"),
        },
    )
    widgets.pager("audit_page", audit)
