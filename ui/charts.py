"""Altair charts of the console: a tutor's week and payment totals.

The week chart puts days on x and local hours on y (top = morning), one rectangle per free slot,
lesson or busy interval, split at local midnight. Colours are fixed per kind so "held" looks the
same every week; labels are translated, tooltips carry text only.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import altair as alt
import pandas as pd

from core.availability import WeekLesson
from core.availability_queries import WeekCalendar
from core.payments.queries import PaymentTotal
from ui import data, fmt
from ui.i18n import lang, status_label, tr

KIND_COLOURS = {
    "off_hours": "#e0e0e0",  # outside the tutor's working hours: greyed out
    "closed": "#8d6e63",  # a closure (public or school holiday, business closure), with its name
    "busy": "#9e9e9e",
    "free": "#66bb6a",
    "held": "#ffa726",
    "confirmed": "#1e88e5",
    "needs_reschedule": "#e53935",
}
# One colour per payment status (a status missing here would drop out of the chart).
PAYMENT_COLOURS = {
    "paid": "#43a047",
    "open": "#1e88e5",
    "processing": "#90caf9",
    "expired": "#bdbdbd",
    "failed": "#e53935",
    "refunded": "#8e24aa",
    "partially_refunded": "#ce93d8",
    "disputed": "#fb8c00",
}


def _split_by_day(start: datetime, end: datetime) -> list[tuple[date, float, float]]:
    """(local date, start hour, end hour) pieces of an interval, cut at local midnights."""
    tz = data.tz()
    s, e = start.astimezone(tz), end.astimezone(tz)
    pieces = []
    while s < e:
        midnight = datetime.combine(s.date() + timedelta(days=1), time(0), tzinfo=tz)
        stop = min(e, midnight)
        end_hour = 24.0 if stop == midnight else stop.hour + stop.minute / 60
        pieces.append((s.date(), s.hour + s.minute / 60, end_hour))
        s = stop
    return pieces


def week_chart(
    week_start: date, lessons: Sequence[WeekLesson], calendar: WeekCalendar | None
) -> alt.LayerChart | alt.Chart:
    days = [week_start + timedelta(days=i) for i in range(7)]
    labels = [fmt.fmt_date(d, year=False) for d in days]
    label_of = dict(zip(days, labels, strict=True))
    rows: list[dict[str, Any]] = []

    def add(kind: str, start: datetime, end: datetime, text: str) -> None:
        for day, y0, y1 in _split_by_day(start, end):
            if day in label_of:
                rows.append(
                    {
                        "day": label_of[day],
                        "y0": y0,
                        "y1": y1,
                        "kind": kind,
                        "label": tr(f"avail.kind.{kind}"),
                        "when": fmt.fmt_range(start, end),
                        "text": text,
                    }
                )

    if calendar is not None:
        for s, e in calendar.off_hours:
            add("off_hours", s, e, "")
        for closure in calendar.closures:
            add("closed", closure.start, closure.end, closure.name)
        for s, e in calendar.busy:
            add("busy", s, e, "")
        for s, e in calendar.free:
            add("free", s, e, "")
    for lesson in lessons:
        add(
            lesson.status,
            lesson.start,
            lesson.end,
            f"#{lesson.id} {lesson.contact_name or ''} ({status_label(lesson.status)})",
        )

    # Whole days (closures, hours outside work) do not stretch the hours shown: they are clipped.
    background = ("off_hours", "closed")
    sized = [r for r in rows if r["kind"] not in background]
    lo = min([8.0, *(r["y0"] for r in sized)])
    hi = max([20.0, *(r["y1"] for r in sized)])
    for r in rows:
        if r["kind"] in background:
            r["y0"], r["y1"] = max(r["y0"], float(int(lo))), min(r["y1"], float(int(hi + 0.99)))
    rows = [{**r, "z": 0 if r["kind"] in background else 1} for r in rows if r["y0"] < r["y1"]]
    frame = pd.DataFrame(rows, columns=["day", "y0", "y1", "kind", "label", "when", "text", "z"])
    kinds = list(KIND_COLOURS)
    legend_labels = [tr(f"avail.kind.{k}") for k in kinds]
    return (
        alt.Chart(frame)
        .mark_rect(cornerRadius=3, stroke="white", strokeWidth=1)
        .encode(
            x=alt.X(
                "day:N",
                sort=labels,
                scale=alt.Scale(domain=labels),
                title=None,
                axis=alt.Axis(orient="top", labelAngle=0, labelFontSize=12),
            ),
            y=alt.Y(
                "y0:Q",
                scale=alt.Scale(domain=[int(lo), int(hi + 0.99)], reverse=True, nice=False),
                title=tr("avail.hour"),
                axis=alt.Axis(tickCount=int(hi - lo) + 1, format="d"),
            ),
            y2="y1:Q",
            color=alt.Color(
                "label:N",
                title=tr("avail.legend"),
                scale=alt.Scale(domain=legend_labels, range=[KIND_COLOURS[k] for k in kinds]),
                legend=alt.Legend(orient="bottom"),
            ),
            order=alt.Order("z:Q"),  # the background (closures, hours off) under the rest
            tooltip=[
                alt.Tooltip("label:N", title=tr("avail.legend")),
                alt.Tooltip("when:N", title=tr("col.when")),
                alt.Tooltip("text:N", title=tr("col.detail")),
            ],
        )
        .properties(height=460)
    )


# Vega's number format for the axes and tooltips: Dutch groups thousands with a dot ("120.000").
NUMBER_LOCALES = {
    "nl": {"decimal": ",", "thousands": ".", "grouping": [3], "currency": ["€ ", ""]},
    "en": {"decimal": ".", "thousands": ",", "grouping": [3], "currency": ["€", ""]},
}


def localised(chart: Any) -> Any:
    """The chart with numbers written the way the console's language writes them."""
    return chart.configure(locale={"number": NUMBER_LOCALES[lang()]})


def payments_chart(totals: Sequence[PaymentTotal], period: str) -> Any:
    frame = pd.DataFrame(
        [
            {
                "period": fmt.fmt_date(t.period)
                if period == "day"
                else f"{tr('col.week')} {t.period.isocalendar().week} ({fmt.fmt_date(t.period, year=False)})",
                "sort": t.period.isoformat(),
                "status": status_label(t.status),
                "amount": t.amount / 100,
                "count": t.count,
                "money": fmt.fmt_money(t.amount, t.currency),
            }
            for t in totals
        ]
    )
    period_labels = list(dict.fromkeys(frame.sort_values("sort")["period"]))
    statuses = list(PAYMENT_COLOURS)
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("period:N", sort=period_labels, title=None, axis=alt.Axis(labelAngle=-40)),
            y=alt.Y("sum(amount):Q", title=f"{tr('col.amount')} (€)"),
            color=alt.Color(
                "status:N",
                title=tr("col.status"),
                scale=alt.Scale(
                    domain=[status_label(s) for s in statuses], range=[PAYMENT_COLOURS[s] for s in statuses]
                ),
            ),
            tooltip=[
                alt.Tooltip("period:N", title=tr("col.date")),
                alt.Tooltip("status:N", title=tr("col.status")),
                alt.Tooltip("money:N", title=tr("col.amount")),
                alt.Tooltip("count:Q", title=tr("col.count")),
            ],
        )
        .properties(height=300)
    )
    return localised(chart)


FUNNEL_STAGES = ("offered", "booked", "paid", "attended")
FUNNEL_COLOURS = ("#90caf9", "#1e88e5", "#43a047", "#2e7d32")


def funnel_chart(weeks: Sequence[Any]) -> Any:
    """Per week, four bars side by side: conversations offered, booked, paid and attended."""
    labels = [tr(f"ins.{stage}") for stage in FUNNEL_STAGES]
    frame = pd.DataFrame(
        [
            {
                "week": f"{tr('col.week')} {w.week.isocalendar().week}",
                "monday": fmt.fmt_date(w.week),
                "sort": w.week.isoformat(),
                "stage": label,
                "order": i,
                "count": getattr(w, stage),
            }
            for w in weeks
            for i, (stage, label) in enumerate(zip(FUNNEL_STAGES, labels, strict=True))
        ]
    )
    week_labels = list(dict.fromkeys(frame.sort_values("sort")["week"]))
    chart = (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            x=alt.X("week:N", sort=week_labels, title=None, axis=alt.Axis(labelAngle=0)),
            xOffset=alt.XOffset("stage:N", sort=labels),
            y=alt.Y("count:Q", title=tr("ins.count")),
            color=alt.Color(
                "stage:N",
                title=tr("ins.stage"),
                sort=labels,
                scale=alt.Scale(domain=labels, range=FUNNEL_COLOURS),
            ),
            tooltip=[
                alt.Tooltip("week:N", title=tr("col.week")),
                alt.Tooltip("monday:N", title=tr("col.date")),
                alt.Tooltip("stage:N", title=tr("ins.stage")),
                alt.Tooltip("count:Q", title=tr("ins.count")),
            ],
        )
        .properties(height=300)
    )
    return localised(chart)
