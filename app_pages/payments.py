"""Payments (finance, admin): status filters, totals per day or week, the payments table with links
to the Stripe dashboard, holds about to expire, paid lessons that need a new time, failed webhook
events with a retry button, and CSV export. Totals and pages are computed in SQL (core.payments.queries).
"""

from datetime import timedelta

import streamlit as st

from core.audit import require_role
from core.lesson_queries import holds_expiring, needs_reschedule
from core.models import PAYMENT_STATUSES
from core.payments import retry_failed_event, stripe_dashboard_url
from core.payments.queries import (
    PaymentFilter,
    StatusTotal,
    failed_events,
    open_disputes,
    paid_but_cancelled,
    payment_status_counts,
    payment_totals,
    payments_export,
    payments_page,
)
from core.payments.refunds import refund_payment
from ui import auth, charts, data, fmt, widgets
from ui.errors import run_action
from ui.i18n import status_label, tr
from ui.tables import row_dict

user = auth.require_page("payments")
widgets.title(tr("pay.title"))
tz = data.tz()
PAGE = "payments_page"
reset = widgets.reset_page(PAGE)

# --- filters -----------------------------------------------------------------------------------
c_range, c_status, c_query, c_period = st.columns([2, 2.4, 2, 1.2])
date_from, date_to = widgets.date_range(
    "pay_range", *widgets.default_range(30, 0), on_change=reset, container=c_range
)
statuses = c_status.multiselect(
    tr("status"),
    PAYMENT_STATUSES,
    format_func=status_label,
    key="pay_status",
    on_change=reset,
    placeholder=tr("all"),
)
query = c_query.text_input(tr("search"), key="pay_query", on_change=reset, placeholder=tr("pay.search"))
period = c_period.radio(
    tr("pay.period"),
    ["day", "week"],
    format_func=lambda p: tr(f"pay.period.{p}"),
    horizontal=True,
    key="pay_period",
)
payment_filter = PaymentFilter(date_from, date_to, tuple(statuses), query or None)

# --- totals ------------------------------------------------------------------------------------
with st.spinner(tr("loading")):
    counts = data.read(payment_status_counts, payment_filter, tz)
    totals = data.read(payment_totals, payment_filter, tz, period)
CARDS_PER_ROW = 4  # eight cards in one row left no room for the amount: each showed "€ …"
if counts:
    cards = [(status, counts.get(status, StatusTotal(count=0, amount=0))) for status in PAYMENT_STATUSES]
    for first in range(0, len(cards), CARDS_PER_ROW):
        row = cards[first : first + CARDS_PER_ROW]
        for col, (status, entry) in zip(st.columns(CARDS_PER_ROW), row, strict=False):
            col.metric(
                status_label(status),
                fmt.fmt_money(entry.amount),
                tr("pay.count", n=f"{entry.count:,}".replace(",", ".")),
                delta_color="off",
                delta_arrow="off",
                border=True,
            )
if totals:
    st.altair_chart(charts.payments_chart(totals, period), width="stretch")
elif payment_filter.query:  # the search found nothing, not the period
    st.info(tr("pay.search_empty", q=payment_filter.query.strip()))
else:
    st.info(tr("pay.chart_empty"))

# --- the payments ------------------------------------------------------------------------------
st.subheader(tr("pay.table"))


with st.spinner(tr("loading")):
    result = data.read(payments_page, payment_filter, tz, page=widgets.page_number(PAGE))
if not result.rows:
    st.info(tr("pay.empty"))
else:
    rows = []
    for p in result.rows:
        link = stripe_dashboard_url(p.checkout_session_id, payment_intent_id=p.payment_intent_id)
        rows.append(
            {
                "created_at": fmt.fmt_dt(p.created_at),
                "status": status_label(p.status),
                "amount": fmt.fmt_money(p.amount, p.currency),
                "minutes": p.minutes,
                "covers": tr(f"pay.covers.{p.kind}", n=p.quantity)
                if p.kind in ("bundle", "series")
                else tr("pay.covers.lesson"),
                "quantity": p.quantity,
                "segment": p.segment,
                "order_id": p.order_id,
                "lesson_id": "" if p.lesson_id is None else str(p.lesson_id),
                "paid_at": fmt.fmt_dt(p.paid_at),
                "session": p.checkout_session_id,
                "link": link,
                "invoice": p.invoice_url,
            }
        )
    widgets.table(
        rows,
        {
            "created_at": tr("col.created"),
            "status": tr("col.status"),
            "amount": tr("col.amount"),
            "minutes": tr("col.minutes"),
            "covers": tr("pay.covers"),
            "quantity": tr("pay.quantity"),
            "segment": tr("col.segment"),
            "order_id": tr("col.order"),
            "lesson_id": tr("col.lesson"),
            "paid_at": tr("col.paid_at"),
            "session": tr("col.session"),
            "link": tr("col.stripe"),
            "invoice": tr("pay.invoice"),
        },
        column_config={
            "link": st.column_config.LinkColumn(display_text="Stripe ↗", width="small"),
            "invoice": st.column_config.LinkColumn(display_text=tr("pay.invoice_link"), width="small"),
            "minutes": st.column_config.NumberColumn(width="small"),
            "quantity": st.column_config.NumberColumn(width="small"),
        },
    )
    widgets.pager(PAGE, result)
    widgets.csv_download(
        user,
        tr("export_csv"),
        payments_export,
        (payment_filter, tz),
        [
            "id",
            "created_at",
            "status",
            "amount",
            "currency",
            "minutes",
            "segment",
            "order_id",
            "checkout_session_id",
            "payment_intent_id",
            "lesson_id",
            "contact_id",
            "paid_at",
            "expires_at",
            "kind",
            "quantity",
            "invoice_url",
        ],
        None,
        "betalingen.csv",
        "payments_csv",
    )

# --- refund a payment (finance, admin): full or partial, with a reason --------------------------
refundable = {
    p.id: p
    for p in result.rows
    if p.status in ("paid", "partially_refunded") and (p.amount or 0) > (p.refunded_amount or 0)
}
if refundable:
    with st.expander(tr("pay.refund_form.title"), icon=":material/undo:"):
        st.caption(tr("pay.refund_form.help"))
        with st.form("refund_form"):
            picked = st.selectbox(
                tr("pay.refund_form.payment"),
                list(refundable),
                format_func=lambda i: (
                    f"{refundable[i].checkout_session_id} · {fmt.fmt_money(refundable[i].amount, refundable[i].currency)}"
                    f" · {fmt.fmt_dt(refundable[i].paid_at)}"
                ),
                key="refund_pick",
            )
            euros = st.number_input(
                tr("pay.refund_form.amount"), min_value=0.01, step=1.0, format="%.2f", key="refund_amount"
            )
            why = st.text_input(tr("reason"), key="refund_reason")
            sure = st.checkbox(tr("pay.refund_form.confirm"), key="refund_confirm")
            go = st.form_submit_button(tr("pay.refund_form.submit"), type="primary")
        if go:
            if not sure:
                st.warning(tr("pay.refund_form.need_confirm"))
            else:
                cents = round(euros * 100)
                chosen = refundable[picked]
                run_action(
                    refund_payment,
                    user,
                    picked,
                    cents,
                    why,
                    success=tr("pay.refund_form.done", amount=fmt.fmt_money(cents, chosen.currency)),
                )

# --- holds, reschedules, failed events ---------------------------------------------------------
now = data.now_minute()
left, right = st.columns(2)
with left:
    st.subheader(tr("pay.holds"))
    holds = data.read(holds_expiring, now, timedelta(minutes=30))
    if holds:
        widgets.table(
            [
                {
                    "id": h.id,
                    "expires": fmt.fmt_dt(h.hold_expires_at),
                    "start": fmt.fmt_dt(h.start),
                    "contact": h.contact_name,
                    "amount": fmt.fmt_money(h.amount, h.currency),
                }
                for h in holds
            ],
            {
                "id": tr("col.lesson"),
                "expires": tr("col.expires"),
                "start": tr("col.start"),
                "contact": tr("col.contact"),
                "amount": tr("col.amount"),
            },
        )
    else:
        st.caption(tr("pay.holds.empty"))
with right:
    st.subheader(tr("pay.resched"))
    cases = data.read(needs_reschedule)
    if cases:
        widgets.table(
            [
                {
                    "id": c.id,
                    "start": fmt.fmt_dt(c.start),
                    "contact": c.contact_name,
                    "tutor": c.tutor_name,
                    "payment": status_label(c.payment_status),
                    "amount": fmt.fmt_money(c.amount, c.currency),
                }
                for c in cases
            ],
            {
                "id": tr("col.lesson"),
                "start": tr("col.start"),
                "contact": tr("col.contact"),
                "tutor": tr("col.tutor"),
                "payment": tr("col.payment"),
                "amount": tr("col.amount"),
            },
        )
    else:
        st.caption(tr("pay.resched.empty"))

st.subheader(tr("pay.disputes"))
disputes = data.read(open_disputes)
if disputes:
    widgets.table(
        [
            {
                "due_by": fmt.fmt_dt(d.due_by),
                "status": d.dispute_status or "",
                "amount": fmt.fmt_money(d.amount, d.currency),
                "lesson_id": "" if d.lesson_id is None else str(d.lesson_id),
                "start": fmt.fmt_dt(d.lesson_start),
                "lesson_status": status_label(d.lesson_status) if d.lesson_status else "",
                "session": d.checkout_session_id,
            }
            for d in disputes
        ],
        {
            "due_by": tr("pay.disputes.due_by"),
            "status": tr("pay.disputes.status"),
            "amount": tr("col.amount"),
            "lesson_id": tr("col.lesson"),
            "start": tr("col.start"),
            "lesson_status": tr("col.status"),
            "session": tr("col.session"),
        },
    )
    st.caption(tr("pay.disputes.help"))
else:
    st.caption(tr("pay.disputes.empty"))

st.subheader(tr("pay.refund"))
to_refund = data.read(paid_but_cancelled)
if to_refund:
    widgets.table(
        [
            {
                "lesson_id": r.lesson_id,
                "start": fmt.fmt_dt(r.start),
                "contact": r.contact_name,
                "status": status_label(r.lesson_status),
                "reason": r.cancel_reason or "",
                "amount": fmt.fmt_money(r.amount, r.currency),
                "session": r.checkout_session_id,
            }
            for r in to_refund
        ],
        {
            "lesson_id": tr("col.lesson"),
            "start": tr("col.start"),
            "contact": tr("col.contact"),
            "status": tr("col.status"),
            "reason": tr("reason"),
            "amount": tr("col.amount"),
            "session": tr("col.session"),
        },
    )
else:
    st.caption(tr("pay.refund.empty"))

st.subheader(tr("pay.failed"))
events = data.read(failed_events)
if not events:
    st.caption(tr("pay.failed.empty"))
else:
    widgets.table(
        [row_dict(e, received_at=fmt.fmt_dt(e.received_at)) for e in events],
        {
            "id": tr("col.id"),
            "type": tr("col.type"),
            "received_at": tr("col.received"),
            "attempts": tr("col.attempts"),
            "error": tr("col.error"),
        },
    )
    pick_col, button_col = st.columns([3, 1], vertical_alignment="bottom")
    event_id = pick_col.selectbox(tr("pay.retry.pick"), [e.id for e in events], key="retry_pick")
    if button_col.button(tr("pay.retry.submit"), key="retry_event", icon=":material/replay:"):

        def _retry(event: str):  # noqa: ANN202
            require_role(user, "admin", "finance")  # core checks the role too, not only the page
            return retry_failed_event(event)

        with st.spinner(tr("loading")):
            run_action(
                _retry,
                event_id,
                success=lambda result: tr(
                    "pay.retry.done",
                    id=fmt.esc_md(event_id),
                    result=fmt.esc_md(f"{result.status}: {result.detail}"),
                ),
            )
