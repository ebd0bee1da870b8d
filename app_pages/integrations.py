"""Integrations (admin): is each outside service configured and working? Calendar checks and the
Stripe check run only on request (they call Google and Stripe). Also the database (URL without
password, migration revision), the last error per integration, the last webhook, background
jobs (failed ones with their reason and a retry button), and the outbox.
"""

import streamlit as st

from core import jobs, messages, system_reports
from core.calendars import get_backend
from core.calendars.mirror import mirror_states
from core.config import get_settings
from core.errors import LesplannerError
from core.payments import check_stripe
from core.tutors import list_tutors
from ui import auth, data, fmt, widgets
from ui.errors import run_action, show_error
from ui.i18n import status_label, tr
from ui.tables import row_dict

user = auth.require_page("integrations")
widgets.title(tr("int.title"))
settings = get_settings()


def _missing(names: list[str]) -> list[str]:
    """Environment variable names of the settings that are not set."""
    out = []
    for name in names:
        value = getattr(settings, name)
        if hasattr(value, "get_secret_value"):
            value = settings.secret(name)
        if not value:
            out.append(name.upper())
    return out


def _configured(missing: list[str], total: int) -> None:
    if not missing:
        st.success(tr("int.configured"))
    elif len(missing) == total:
        st.warning(tr("int.not_configured", missing=", ".join(missing)))
    else:
        st.warning(tr("int.partly", missing=", ".join(missing)))


def _checks_table(rows: list[dict]) -> None:
    widgets.table(
        rows,
        {"ok": tr("col.ok"), "subject": tr("col.subject"), "detail": tr("col.detail"), "fix": tr("col.fix")},
        column_config={
            "ok": st.column_config.CheckboxColumn(width="small"),
            "subject": st.column_config.TextColumn(width="medium"),
            "detail": st.column_config.TextColumn(width="large"),
        },
    )


google, stripe_col = st.columns(2)

# --- calendar ----------------------------------------------------------------------------------
with google:
    st.subheader(tr("int.calendar"))
    st.markdown(tr("int.backend", kind=settings.calendar_backend))
    if settings.calendar_backend == "google":
        _configured(_missing(["gcal_service_account_json"]), 1)
    tutors = data.read(list_tutors)
    if tutors:
        st.caption(tr("int.calendars"))
        widgets.table(
            tutors, {"name": tr("col.tutor"), "calendar_id": "calendar_id", "email": tr("col.email")}
        )
    if settings.calendar_backend == "google":
        st.caption(
            tr("int.mirror", age=settings.gcal_mirror_max_age_seconds, every=settings.gcal_sync_seconds)
        )
        states = data.read(mirror_states, data.now_minute())
        if states:
            widgets.table(
                [
                    {
                        "calendar_id": m.calendar_id,
                        "state": tr(f"int.mirror.{m.state}"),
                        "age": "—"
                        if m.age_seconds is None
                        else (
                            f"{m.age_seconds} s"
                            if m.age_seconds < 120
                            else fmt.fmt_minutes(m.age_seconds / 60)
                        ),
                        "events": m.events,
                        "error": m.last_error or "",
                    }
                    for m in states
                ],
                {
                    "calendar_id": "calendar_id",
                    "state": tr("col.status"),
                    "age": tr("int.mirror.age"),
                    "events": tr("int.mirror.events"),
                    "error": tr("int.mirror.error"),
                },
                key="mirror_states",
            )
    if st.button(tr("int.check_calendar"), key="check_calendar", icon=":material/event_available:"):
        with st.spinner(tr("loading")):
            try:
                checks = get_backend().check(sorted({t.calendar_id for t in tutors}))
                st.session_state["calendar_checks"] = [
                    {"subject": c.subject, "ok": c.ok, "detail": c.detail, "fix": c.fix or ""} for c in checks
                ]
            except LesplannerError as exc:
                show_error(exc)

# --- Stripe ------------------------------------------------------------------------------------
with stripe_col:
    st.subheader(tr("int.stripe"))
    stripe_settings = [
        "stripe_api_key",
        "stripe_webhook_secret",
        "standard_price_id_60",
        "standard_price_id_90",
        "weekend_price_id_60",
        "weekend_price_id_90",
        "checkout_success_url",
        "checkout_cancel_url",
    ]
    _configured(_missing(stripe_settings), len(stripe_settings))
    if st.button(tr("int.check_stripe"), key="check_stripe", icon=":material/credit_card:"):
        with st.spinner(tr("loading")):
            try:
                st.session_state["stripe_checks"] = [
                    {"subject": c.subject, "ok": c.ok, "detail": c.detail, "fix": ""} for c in check_stripe()
                ]
            except LesplannerError as exc:
                show_error(exc)
            data.clear()  # the check records its outcome in IntegrationStatus
    counts = data.read(system_reports.stripe_event_counts)
    last = data.read(system_reports.last_webhook)
    if last:
        st.caption(
            tr(
                "int.webhook",
                type=last.type,
                id=last.id,
                when=fmt.fmt_dt(last.received_at),
                status=status_label(last.status),
            )
        )
    else:
        st.caption(tr("int.webhook.none"))
    if counts:
        st.caption(", ".join(f"{status_label(s)}: {n}" for s, n in sorted(counts.items())))

# Check results get the full width: their details are sentences.
for results in ("calendar_checks", "stripe_checks"):
    if st.session_state.get(results):
        st.markdown(
            f"**{tr('int.check_results')}: {tr('int.calendar') if results == 'calendar_checks' else 'Stripe'}**"
        )
        _checks_table(st.session_state[results])

chat_col, db_col = st.columns(2)

# --- chat delivery -----------------------------------------------------------------------------
with chat_col:
    st.subheader(tr("int.chat"))
    chat_missing = _missing(["chatwoot_url", "chatwoot_account_id", "chatwoot_api_token"])
    if chat_missing:
        st.info(tr("int.chat_off", missing=", ".join(chat_missing)))
    else:
        st.success(tr("int.configured"))
    outbox_counts = data.read(messages.outbox_counts)
    st.caption(
        tr(
            "int.outbox_counts",
            counts=", ".join(f"{status_label(s)}: {n}" for s, n in sorted(outbox_counts.items())) or "0",
        )
    )

# --- database ----------------------------------------------------------------------------------
with db_col:
    st.subheader(tr("int.database"))
    info = data.read(system_reports.database_info, settings.database_url)
    widgets.table(
        [
            {"k": tr("int.db_url"), "v": info.url},
            {"k": "dialect", "v": info.dialect},
            {"k": tr("int.db_revision"), "v": info.revision or tr("int.db_no_revision")},
            *({"k": table, "v": f"{n:,}".replace(",", ".")} for table, n in info.counts.items()),
        ],
        {"k": tr("col.detail"), "v": tr("col.value")},
        column_config={"k": st.column_config.TextColumn(width="small")},
    )

# --- health ------------------------------------------------------------------------------------
st.subheader(tr("int.health"))
statuses = data.read(system_reports.integration_statuses)
if not statuses:
    st.caption(tr("int.health.empty"))
else:
    widgets.table(
        [
            {
                "name": s.name,
                "ok": s.ok,
                "detail": s.detail or "",
                "last_ok": fmt.fmt_dt(s.last_ok_at),
                "last_error_at": fmt.fmt_dt(s.last_error_at),
                "last_error": s.last_error or "",
            }
            for s in statuses.values()
        ],
        {
            "name": tr("col.subject"),
            "ok": tr("col.ok"),
            "detail": tr("col.detail"),
            "last_ok": "OK @",
            "last_error_at": tr("col.error") + " @",
            "last_error": tr("col.error"),
        },
        column_config={"ok": st.column_config.CheckboxColumn(width="small")},
    )

# --- background jobs ---------------------------------------------------------------------------
st.subheader(tr("int.jobs"))
st.caption(tr("int.jobs.caption"))
overview = data.read(system_reports.jobs_overview)
job_counts = overview.counts
if job_counts:
    st.caption(", ".join(f"{status_label(s)}: {n}" for s, n in sorted(job_counts.items())))
if not overview.rows:
    st.success(tr("int.jobs.empty"))
else:
    if job_counts.get("failed"):
        st.error(tr("int.jobs.failed", n=job_counts["failed"]))
    widgets.table(
        [
            row_dict(
                j,
                status=status_label(j.status),
                run_after=fmt.fmt_dt(j.run_after) if j.status != "failed" else "—",
            )
            for j in overview.rows
        ],
        {
            "id": tr("col.id"),
            "status": tr("col.status"),
            "kind": tr("col.kind"),
            "key": tr("col.key"),
            "attempts": tr("col.attempts"),
            "run_after": tr("col.next"),
            "last_error": tr("col.error"),
        },
        column_config={
            "id": st.column_config.NumberColumn(width="small", format="%d"),
            "last_error": st.column_config.TextColumn(width="large"),
        },
    )
    retryable = [j for j in overview.rows if j.status in ("failed", "pending")]
    if retryable:
        pick_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
        job_id = pick_col.selectbox(
            tr("int.jobs.pick"),
            [j.id for j in retryable],
            key="job_pick",
            format_func=lambda i: next(
                f"#{j.id} {j.key} ({status_label(j.status)})" for j in retryable if j.id == i
            ),
        )
        if button_col.button(tr("int.jobs.retry"), key="job_retry", icon=":material/replay:"):
            run_action(jobs.retry, job_id, success=tr("int.jobs.retried", id=job_id))

# --- outbox ------------------------------------------------------------------------------------
st.subheader(tr("int.outbox"))
PAGE = "outbox_page"
status = st.selectbox(
    tr("status"),
    ["pending", "sent", "failed"],
    key="outbox_status",
    index=None,
    placeholder=tr("all"),
    format_func=status_label,
    on_change=widgets.reset_page(PAGE),
)
outbox = data.read(messages.outbox_page, status, page=widgets.page_number(PAGE))
if not outbox.rows:
    st.caption(tr("int.outbox.empty"))
else:
    widgets.table(
        [
            row_dict(
                m,
                created_at=fmt.fmt_dt(m.created_at),
                sent_at=fmt.fmt_dt(m.sent_at),
                status=status_label(m.status),
            )
            for m in outbox.rows
        ],
        {
            "created_at": tr("col.created"),
            "conversation_id": tr("col.conversation"),
            "key": tr("col.key"),
            "status": tr("col.status"),
            "attempts": tr("col.attempts"),
            "sent_at": tr("col.sent_at"),
            "last_error": tr("col.error"),
            "text": tr("col.text"),
        },
    )
    widgets.pager(PAGE, outbox)
