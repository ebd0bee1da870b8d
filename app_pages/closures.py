"""Closures (admin): the days nobody teaches. Public holidays come from the `holidays` package
(HOLIDAYS_COUNTRY) and can be marked as not applying; school holidays are imported from a CSV
(preview first) or entered by hand, per region, and a profile switches one region on; business
closures apply to everyone. All of them are never offered and never bookable."""

import hashlib
from datetime import date, timedelta
from typing import Any

import streamlit as st

from core.closures import (
    add_closure,
    closure_list,
    import_closures,
    parse_closures_csv,
    remove_closure,
    set_public_holiday,
    update_closure,
)
from core.errors import LesplannerError
from core.models import SCHOOL_REGIONS
from ui import auth, data, fmt, widgets
from ui.errors import run_action, show_error
from ui.i18n import tr

user = auth.require_page("closures")
widgets.title(tr("page.closures"))
today = data.now_minute().astimezone(data.tz()).date()


def _region(region: str | None) -> str:
    return tr(f"region.{region}") if region else tr("clo.all_regions")


def _when(start_date: date, end_date: date) -> str:
    if start_date == end_date:
        return fmt.fmt_date(start_date)
    return f"{fmt.fmt_date(start_date)} – {fmt.fmt_date(end_date)}"


# --- the coming year ---------------------------------------------------------------------------
st.subheader(tr("clo.list"))
rows = data.read(closure_list, today, today + timedelta(days=365))
if not rows:
    st.info(tr("clo.none"))
else:
    widgets.table(
        [
            {
                "when": _when(r.start_date, r.end_date),
                "name": r.name,
                "kind": tr(f"clo.source.{r.source}"),
                "region": _region(r.region) if r.source == "import" else "",
                "applies": tr("yes") if r.active else tr("no"),
            }
            for r in rows
        ],
        {
            "when": tr("col.when"),
            "name": tr("clo.name"),
            "kind": tr("col.kind"),
            "region": tr("clo.region"),
            "applies": tr("clo.applies"),
        },
        max_rows=40,
    )

# --- public holidays: applies or not -------------------------------------------------------------
public = [r for r in rows if r.source == "holidays"]
if public:
    left, mid, right = st.columns([3, 1, 1], vertical_alignment="bottom")
    labels = {r.start_date: f"{fmt.fmt_date(r.start_date)} {r.name}" for r in public}
    day = left.selectbox(
        tr("clo.public_pick"), list(labels), format_func=labels.__getitem__, key="clo_public"
    )
    if mid.button(tr("clo.public_off"), key="clo_public_off"):
        run_action(set_public_holiday, user, day, applies=False, success=tr("clo.saved"))
    if right.button(tr("clo.public_on"), key="clo_public_on"):
        run_action(set_public_holiday, user, day, applies=True, success=tr("clo.saved"))

# --- add a business closure or a school holiday --------------------------------------------------
st.subheader(tr("clo.add"))
with st.form("clo_add", clear_on_submit=True):
    a, b, c, d, e = st.columns([1, 1, 2, 1.2, 1.2])
    first = a.date_input(tr("clo.first"), value=today, format="DD-MM-YYYY", key="clo_add_first")
    last = b.date_input(tr("clo.last"), value=today, format="DD-MM-YYYY", key="clo_add_last")
    name = c.text_input(tr("clo.name"), key="clo_add_name")
    kind = d.selectbox(
        tr("col.kind"), ["admin", "import"], format_func=lambda k: tr(f"clo.source.{k}"), key="clo_add_kind"
    )
    region = e.selectbox(tr("clo.region"), [None, *SCHOOL_REGIONS], format_func=_region, key="clo_add_region")
    add = st.form_submit_button(tr("clo.add_submit"), type="primary", icon=":material/add:")
if add:
    run_action(add_closure, user, first, last, name, region, source=kind, success=tr("clo.saved"))

# --- edit or remove one -------------------------------------------------------------------------
editable = [r for r in rows if r.id is not None]
if editable:
    st.subheader(tr("clo.edit"))
    edit_labels = {r.id: f"{_when(r.start_date, r.end_date)} {r.name}" for r in editable}
    closure_id = st.selectbox(
        tr("clo.edit_pick"), list(edit_labels), format_func=edit_labels.__getitem__, key="clo_edit_pick"
    )
    current = next(r for r in editable if r.id == closure_id)
    with st.form(f"clo_edit_{closure_id}"):
        a, b, c, d = st.columns([1, 1, 2, 1.2])
        first = a.date_input(tr("clo.first"), value=current.start_date, format="DD-MM-YYYY")
        last = b.date_input(tr("clo.last"), value=current.end_date, format="DD-MM-YYYY")
        name = c.text_input(tr("clo.name"), value=current.name)
        changes: dict[str, Any] = {"start_date": first, "end_date": last, "name": name}
        if current.source == "import":
            changes["region"] = d.selectbox(
                tr("clo.region"),
                [None, *SCHOOL_REGIONS],
                index=[None, *SCHOOL_REGIONS].index(current.region),
                format_func=_region,
            )
        changes["active"] = st.checkbox(tr("clo.applies"), value=current.active)
        save = st.form_submit_button(tr("clo.save"), type="primary")
    if save:
        run_action(update_closure, user, closure_id, success=tr("clo.saved"), **changes)
    if st.button(tr("clo.remove"), key=f"clo_remove_{closure_id}", icon=":material/delete:"):
        run_action(remove_closure, user, closure_id, success=tr("clo.removed"))

# --- import school holidays -----------------------------------------------------------------------
st.subheader(tr("clo.import.title"))
st.caption(tr("clo.import.help"))
generation = st.session_state.setdefault("clo_upload_generation", 0)
upload = st.file_uploader(tr("wl.import.file"), type=["csv", "txt"], key=f"clo_upload_{generation}")
if upload is not None:
    raw = upload.getvalue()
    try:
        preview = parse_closures_csv(raw)
    except LesplannerError as exc:
        show_error(exc)
        st.stop()
    widgets.import_summary(preview)
    shown = {"row": tr("col.row"), "when": tr("col.when"), "name": tr("clo.name"), "region": tr("clo.region")}

    def _rows(records: list[dict]) -> list[dict]:
        return [
            {**r, "when": _when(r["start_date"], r["end_date"]), "region": _region(r["region"])}
            for r in records
        ]

    if preview.invalid:
        st.markdown(f"**{tr('wl.import.invalid')}**")
        widgets.table(
            preview.invalid, {"row": tr("col.row"), "raw": tr("col.value"), "error": tr("col.error")}
        )
    if preview.valid:
        st.markdown(f"**{tr('wl.import.valid')}**")
        widgets.table(_rows(preview.valid), shown)
    if preview.duplicates:
        with st.expander(tr("wl.import.dupes")):
            widgets.table(_rows(preview.duplicates), {**shown, "why": tr("col.why")})
    if not preview.valid:
        st.info(tr("wl.import.nothing"))
    digest = hashlib.sha256(raw).hexdigest()[:12]
    if preview.valid and st.button(
        tr("clo.import.submit", n=len(preview.valid)), type="primary", key=f"clo_import_{digest}"
    ):

        def _import() -> int:
            added = import_closures(user, preview.valid)
            st.session_state["clo_upload_generation"] = generation + 1
            return added

        run_action(_import, success=lambda n: tr("clo.import.done", n=n))
