"""Whitelists (admin): the weekend and returning-broadcast lists. Add or remove one identifier,
import a spreadsheet of phone numbers (preview first, with a report of invalid rows), export."""

import hashlib

import streamlit as st

from core.errors import LesplannerError
from core.models import WHITELISTS
from core.whitelists import (
    import_whitelist,
    parse_whitelist_csv,
    whitelist_add,
    whitelist_export,
    whitelist_page,
    whitelist_remove,
)
from ui import auth, data, fmt, widgets
from ui.errors import run_action, show_error
from ui.i18n import tr
from ui.tables import row_dict

user = auth.require_page("whitelists")
widgets.title(tr("wl.title"))
PAGE = "wl_page"

list_name = st.radio(
    tr("wl.list"),
    WHITELISTS,
    format_func=lambda n: tr(f"wl.list.{n}"),
    horizontal=True,
    key="wl_list",
    on_change=widgets.reset_page(PAGE),
)

# --- add one -----------------------------------------------------------------------------------
with st.form("wl_add", clear_on_submit=True):
    a, b, c = st.columns([2, 2, 1], vertical_alignment="bottom")
    identifier = a.text_input(tr("wl.add.identifier"), key="wl_add_identifier")
    note = b.text_input(tr("note"), key="wl_add_note")
    add = c.form_submit_button(tr("wl.add.submit"), type="primary", icon=":material/add:")
if add:
    run_action(
        whitelist_add,
        user,
        list_name,
        identifier,
        note,
        success=lambda entry: (
            tr("wl.add.done", identifier=fmt.esc_md(entry.identifier)) if entry else tr("wl.add.exists")
        ),
    )

# --- the list ----------------------------------------------------------------------------------
st.subheader(tr("wl.entries"))
query = st.text_input(tr("search"), key="wl_query", on_change=widgets.reset_page(PAGE))
result = data.read(whitelist_page, list_name, query, page=widgets.page_number(PAGE))
if not result.rows:
    st.info(tr("wl.empty"))
else:
    widgets.table(
        [row_dict(r, added_at=fmt.fmt_dt(r.added_at)) for r in result.rows],
        {
            "identifier": tr("col.identifier"),
            "note": tr("note"),
            "added_by": tr("col.added_by"),
            "added_at": tr("col.added_at"),
        },
    )
    widgets.pager(PAGE, result)
    left, right = st.columns([3, 1], vertical_alignment="bottom")
    labels = {r.id: r.identifier for r in result.rows}
    entry_id = left.selectbox(
        tr("wl.remove.pick"), list(labels), format_func=labels.__getitem__, key="wl_remove_pick"
    )
    if right.button(tr("wl.remove.submit"), key="wl_remove", icon=":material/delete:"):
        run_action(whitelist_remove, user, entry_id, success=tr("wl.remove.done"))
    widgets.csv_download(
        user,
        tr("export_csv"),
        whitelist_export,
        (list_name,),
        ["identifier", "note", "added_by", "added_at"],
        None,
        f"whitelist-{list_name}.csv",
        "wl_csv",
    )

# --- import ------------------------------------------------------------------------------------
st.subheader(tr("wl.import.title"))
st.caption(tr("wl.import.help"))
generation = st.session_state.setdefault("wl_upload_generation", 0)
upload = st.file_uploader(
    tr("wl.import.file"), type=["csv", "txt"], key=f"wl_upload_{list_name}_{generation}"
)
if upload is not None:
    raw = upload.getvalue()
    try:
        preview = parse_whitelist_csv(raw, list_name)
    except LesplannerError as exc:
        show_error(exc)
        st.stop()
    widgets.import_summary(preview)
    columns = {
        "row": tr("col.row"),
        "raw": tr("col.value"),
        "identifier": tr("col.identifier"),
        "kind": tr("col.kind"),
        "note": tr("note"),
    }
    if preview.invalid:
        st.markdown(f"**{tr('wl.import.invalid')}**")
        widgets.table(
            preview.invalid,
            {"row": tr("col.row"), "raw": tr("col.value"), "error": tr("col.error")},
            height=min(400, 38 + 35 * len(preview.invalid)),
        )
    if preview.valid:
        st.markdown(f"**{tr('wl.import.valid')}**")
        widgets.table(preview.valid, columns, height=min(400, 38 + 35 * len(preview.valid)))
    if preview.duplicates:
        with st.expander(tr("wl.import.dupes")):
            widgets.table(preview.duplicates, {**columns, "why": tr("col.why")})
    if not preview.valid:
        st.info(tr("wl.import.nothing"))
    # The file's hash in the key: a new upload needs a new click, never a stale confirmation.
    digest = hashlib.sha256(raw).hexdigest()[:12]
    if preview.valid and st.button(
        tr("wl.import.submit", n=len(preview.valid)), type="primary", key=f"wl_import_{digest}"
    ):

        def _import() -> int:
            added = import_whitelist(user, list_name, preview.valid)
            st.session_state["wl_upload_generation"] = generation + 1  # a fresh, empty uploader
            return added

        with st.spinner(tr("loading")):
            run_action(_import, success=lambda n: tr("wl.import.done", n=n))
