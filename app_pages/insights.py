"""Insights (admin, finance): the funnel offered → booked → paid → attended per week and segment,
with the numbers beside the chart, cancellation and no-show rates, revenue and the time from offer
to booking (core.insights says exactly what each number counts), and a CSV of the funnel."""

import streamlit as st

from core.insights import InsightsFilter, insights, insights_export
from core.models import SEGMENTS
from ui import auth, charts, data, fmt, widgets
from ui.i18n import tr

user = auth.require_page("insights")
widgets.title(tr("ins.title"))
st.caption(tr("ins.caption"))
tz = data.tz()

c_range, c_segment = st.columns([2, 1])
date_from, date_to = widgets.date_range("ins_range", *widgets.default_range(83, 0), container=c_range)
segment = c_segment.selectbox(
    tr("ins.segment"),
    [None, *SEGMENTS],
    format_func=lambda s: tr("all") if s is None else s,
    key="ins_segment",
)
if date_from is None or date_to is None:
    st.stop()
chosen = InsightsFilter(date_from, date_to, segment)

with st.spinner(tr("loading")):
    result = data.read(insights, chosen, tz)
totals = result.totals

# --- the funnel ----------------------------------------------------------------------------------
cols = st.columns(4)
for col, stage, rate in zip(
    cols,
    charts.FUNNEL_STAGES,
    (None, totals.booked_rate, totals.paid_rate, totals.attended_rate),
    strict=True,
):
    col.metric(
        tr(f"ins.{stage}"),
        f"{getattr(totals, stage):,}".replace(",", "."),
        None if rate is None else tr("ins.of_offered", pct=fmt.fmt_pct(rate)),
        delta_color="off",
        delta_arrow="off",
        border=True,
    )

if not totals.offered:
    st.info(tr("ins.empty"))
else:
    st.subheader(tr("ins.funnel"))
    left, right = st.columns([1, 1])
    cohort_weeks = [w for w in result.weeks if w.offered]
    left.altair_chart(charts.funnel_chart(cohort_weeks), width="stretch")
    with right:
        widgets.table(
            [
                {
                    # Week rows always name their week (FunnelRow.week is None only in segment totals).
                    "week": f"{w.week.isocalendar().week} · {fmt.fmt_date(w.week, year=False)}"
                    if w.week
                    else "",
                    "offered": w.offered,
                    "booked": w.booked,
                    "paid": w.paid,
                    "attended": w.attended,
                    "revenue": fmt.fmt_money(w.revenue),
                }
                for w in result.weeks
            ],
            {
                "week": tr("col.week"),
                "offered": tr("ins.offered"),
                "booked": tr("ins.booked"),
                "paid": tr("ins.paid"),
                "attended": tr("ins.attended"),
                "revenue": tr("ins.week_revenue"),
            },
            key="ins_weeks",
        )
    st.subheader(tr("ins.by_segment"))
    widgets.table(
        [
            {
                "segment": r.segment or "—",
                "offered": r.offered,
                "booked": f"{r.booked} ({fmt.fmt_pct(r.booked_rate)})",
                "paid": f"{r.paid} ({fmt.fmt_pct(r.paid_rate)})",
                "attended": f"{r.attended} ({fmt.fmt_pct(r.attended_rate)})",
            }
            for r in result.segments
        ],
        {
            "segment": tr("col.segment"),
            "offered": tr("ins.offered"),
            "booked": tr("ins.booked"),
            "paid": tr("ins.paid"),
            "attended": tr("ins.attended"),
        },
        key="ins_segments",
    )

# --- rates and money -----------------------------------------------------------------------------
st.subheader(tr("ins.rates"))
r1, r2, r3, r4 = st.columns(4)
r1.metric(
    tr("ins.cancel_rate"),
    fmt.fmt_pct(result.cancellation_rate),
    tr("ins.lessons_n", n=result.lessons_cancelled + result.lessons_confirmed),
    delta_color="off",
    delta_arrow="off",
    help=tr("ins.cancel_help"),
    border=True,
)
r2.metric(
    tr("ins.no_show_rate"),
    fmt.fmt_pct(result.no_show_rate),
    tr("ins.marked_n", n=result.no_shows + result.attended),
    delta_color="off",
    delta_arrow="off",
    help=tr("ins.no_show_help"),
    border=True,
)
r3.metric(
    tr("ins.revenue"),
    fmt.fmt_money(result.revenue),
    tr("ins.refunded", amount=fmt.fmt_money(result.refunded_total)) if result.refunded_total else None,
    delta_color="off",
    delta_arrow="off",
    help=tr("ins.revenue_help"),
    border=True,
)
r4.metric(
    tr("ins.time_to_book"),
    fmt.fmt_minutes(result.median_minutes_to_book),
    help=tr("ins.time_help"),
    border=True,
)

if totals.offered:
    widgets.csv_download(
        user,
        tr("export_csv"),
        insights_export,
        (chosen, tz),
        [
            "week",
            "segment",
            "offered",
            "booked",
            "paid",
            "attended",
            "booked_pct",
            "paid_pct",
            "attended_pct",
        ],
        None,
        "inzichten.csv",
        "insights_csv",
    )
