"""Display formatting for the console: dates in Dutch ("di 1 dec 2026 10:00") or English, in the
business time zone, money in euros, and escaping of outside text for the few places that render
markdown. Storage stays UTC; only what people read is local."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Any

from core.config import get_settings
from ui.i18n import lang

NL_DAYS = ("ma", "di", "wo", "do", "vr", "za", "zo")
NL_MONTHS = ("jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec")
EN_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
NL_WEEKDAYS_LONG = ("maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag")
EN_WEEKDAYS_LONG = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def local(dt: datetime) -> datetime:
    return dt.astimezone(get_settings().tz)


def fmt_date(d: date | datetime | None, *, year: bool = True) -> str:
    if d is None:
        return ""
    if isinstance(d, datetime):
        d = local(d).date()
    days, months = (EN_DAYS, EN_MONTHS) if lang() == "en" else (NL_DAYS, NL_MONTHS)
    text = f"{days[d.weekday()]} {d.day} {months[d.month - 1]}"
    return f"{text} {d.year}" if year else text


def fmt_time(dt: datetime | None) -> str:
    return "" if dt is None else f"{local(dt):%H:%M}"


def fmt_dt(dt: datetime | None) -> str:
    """'di 1 dec 2026 10:00' in the business zone; '' for None."""
    if dt is None:
        return ""
    return f"{fmt_date(dt)} {fmt_time(dt)}"


def fmt_range(start: datetime, end: datetime) -> str:
    if local(start).date() == local(end).date():
        return f"{fmt_dt(start)}–{fmt_time(end)}"
    return f"{fmt_dt(start)} – {fmt_dt(end)}"


def weekday_name(index: int) -> str:
    return (EN_WEEKDAYS_LONG if lang() == "en" else NL_WEEKDAYS_LONG)[index]


def fmt_money(cents: int | None, currency: str | None = "eur") -> str:
    if cents is None:
        return ""
    symbol = "€" if (currency or "eur").lower() == "eur" else (currency or "").upper() + " "
    amount = f"{cents / 100:,.2f}"
    if lang() == "en":
        return f"{symbol}{amount}"
    # Dutch: 1.234,56
    amount = amount.replace(",", "_").replace(".", ",").replace("_", ".")
    return f"{symbol} {amount}"


_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~$:])")


def esc_md(value: Any) -> str:
    """Text from outside (names, descriptions) made inert for st.markdown: no links, no HTML,
    no emphasis. Prefer st.text or a dataframe; use this where markdown is unavoidable."""
    return _MD_SPECIAL.sub(r"\\\1", "" if value is None else str(value))


def fmt_pct(rate: float | None) -> str:
    """A share as '33,3%' (Dutch) / '33.3%'; '—' when there is nothing to divide by."""
    if rate is None:
        return "—"
    text = f"{rate * 100:.1f}".removesuffix(".0")
    return f"{text.replace('.', ',') if lang() != 'en' else text}%"


def fmt_minutes(minutes: float | None) -> str:
    """A duration people read: '45 min', '2 u 5 min' / '2 h 5 min', '3 d 4 u'; '—' for None."""
    if minutes is None:
        return "—"
    total = round(minutes)
    days, rest = divmod(total, 24 * 60)
    hours, mins = divmod(rest, 60)
    h = "h" if lang() == "en" else "u"
    if days:
        return f"{days} d {hours} {h}" if hours else f"{days} d"
    if hours:
        return f"{hours} {h} {mins} min" if mins else f"{hours} {h}"
    return f"{mins} min"
