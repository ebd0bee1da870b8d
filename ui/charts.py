"""Altair charts of the console: a tutor's week and payment totals.

The week chart puts days on x and local hours on y (top = morning), one rectangle per free slot,
lesson or busy interval, split at local midnight. Colours are fixed per kind so "held" looks the
same every week; labels are translated, tooltips carry text only.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date, datetime, time, timedelta
from typing import Any

import altair as alt
import pandas as pd

from ui import data, fmt
from ui.i18n import status_label, tr

KIND_COLOURS = {
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
    week_start: date, lessons: Sequence[Mapping[str, Any]], calendar: Mapping[str, Any] | None
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
        for s, e in calendar["busy"]:
            add("busy", s, e, "")
        for s, e in calendar["free"]:
            add("free", s, e, "")
    for lesson in lessons:
        add(
            lesson["status"],
            lesson["start"],
            lesson["end"],
            f"#{lesson['id']} {lesson['contact_name'] or ''} ({status_label(lesson['status'])})",
        )

    frame = pd.DataFrame(rows, columns=["day", "y0", "y1", "kind", "label", "when", "text"])
    lo = min([8.0, *frame["y0"].tolist()]) if len(frame) else 8.0
    hi = max([20.0, *frame["y1"].tolist()]) if len(frame) else 20.0
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
            order=alt.Order("kind:N"),
            tooltip=[
                alt.Tooltip("label:N", title=tr("avail.legend")),
                alt.Tooltip("when:N", title=tr("col.when")),
                alt.Tooltip("text:N", title=tr("col.detail")),
            ],
        )
        .properties(height=460)
    )


def payments_chart(totals: Sequence[Mapping[str, Any]], period: str) -> alt.Chart:
    frame = pd.DataFrame(
        [
            {
                "period": fmt.fmt_date(t["period"])
                if period == "day"
                else f"{tr('col.week')} "
                f"{t['period'].isocalendar().week} ({fmt.fmt_date(t['period'], year=False)})",
                "sort": t["period"].isoformat(),
                "status": status_label(t["status"]),
                "amount": t["amount"] / 100,
                "count": t["count"],
                "money": fmt.fmt_money(t["amount"], t["currency"]),
            }
            for t in totals
        ]
    )
    period_labels = list(dict.fromkeys(frame.sort_values("sort")["period"]))
    statuses = list(PAYMENT_COLOURS)
    return (
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
