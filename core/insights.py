"""Insights for admins and finance: how the bot performs (DESIGN → Roles: Insights).

**The funnel** follows conversations, not events, so every step is a share of the one before:
a conversation is *offered* in the week of its first slot answer with at least one slot ever (a
`SlotOffer`, recorded by `booking.suggest_slots`), counted when that answer is in the period; it *booked* when a lesson was created
for it after that offer; it *paid* when it booked and a payment of it was paid after the offer, or
one of its lessons was confirmed without one (a free profile, a prepaid credit); it *attended* when
it booked and one of its lessons was marked attended. The segment of a cohort row is the segment of
that first offer.

**Rates and money** are about the period itself: lessons *starting* in it (cancellation rate =
cancelled / (cancelled + confirmed + needs a new time); expired holds were never lessons), marked
lessons starting in it (no-show rate = no-shows / marked), and payments *paid* in it (revenue =
paid − refunded so far, per week of payment). With a segment chosen, these count the conversations
whose latest offer was in that segment.

**Time to book** is the median of minutes from a cohort conversation's first offer to its first
lesson. The funnel and the rates are computed per view with a handful of indexed queries;
revenue without a segment is read from the paid rollup (PaymentPaidDaily, kept by every
payment write), so that a year reads ~365 rows instead of every paid payment.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from sqlalchemy import Select, and_, case, exists, func, or_
from sqlmodel import Session, col, select

from core.models import (
    CANCELLED,
    CONFIRMED,
    NEEDS_RESCHEDULE,
    Lesson,
    LessonOutcome,
    Payment,
    PaymentPaidDaily,
    SlotOffer,
)
from core.paging import local_bounds, week_monday
from core.payments.rollup import kept_in


@dataclass(frozen=True)
class InsightsFilter:
    date_from: date  # local dates, inclusive
    date_to: date
    segment: str | None = None


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


@dataclass(frozen=True)
class FunnelRow:
    """One line of the funnel: a week (all segments), a segment (all weeks), both, or neither."""

    week: date | None = None
    segment: str | None = None
    offered: int = 0
    booked: int = 0
    paid: int = 0
    attended: int = 0
    revenue: int = 0  # cents paid in this week minus what was refunded of it (week rows only)

    @property
    def booked_rate(self) -> float | None:
        return _rate(self.booked, self.offered)

    @property
    def paid_rate(self) -> float | None:
        return _rate(self.paid, self.offered)

    @property
    def attended_rate(self) -> float | None:
        return _rate(self.attended, self.offered)


@dataclass(frozen=True)
class Insights:
    weeks: list[FunnelRow] = field(default_factory=list)
    segments: list[FunnelRow] = field(default_factory=list)
    totals: FunnelRow = field(default_factory=FunnelRow)
    cells: list[FunnelRow] = field(default_factory=list)  # per week and segment
    lessons_confirmed: int = 0
    lessons_cancelled: int = 0
    attended: int = 0
    no_shows: int = 0
    paid_total: int = 0
    refunded_total: int = 0
    median_minutes_to_book: float | None = None

    @property
    def cancellation_rate(self) -> float | None:
        return _rate(self.lessons_cancelled, self.lessons_cancelled + self.lessons_confirmed)

    @property
    def no_show_rate(self) -> float | None:
        return _rate(self.no_shows, self.no_shows + self.attended)

    @property
    def revenue(self) -> int:
        return self.paid_total - self.refunded_total


@dataclass
class _Cohort:
    first_at: datetime
    segment: str
    booked_at: datetime | None = None
    paid: bool = False
    attended: bool = False


def _first_offers(f: InsightsFilter, tz: ZoneInfo) -> Any:
    """Each conversation's first offer ever, for those whose first offer is in the period: a
    conversation offered before the period belongs to an earlier cohort, whatever the period."""
    lo, hi = local_bounds(f.date_from, f.date_to, tz)
    first_at = func.min(SlotOffer.offered_at)
    return (
        select(SlotOffer.conversation_id, first_at.label("first_at"))
        .where(col(SlotOffer.slots) > 0)
        .group_by(col(SlotOffer.conversation_id))
        .having(and_(first_at >= lo, first_at < hi))
        .subquery()
    )


_Q = TypeVar("_Q", bound=Select)


def _in_segment(stmt: _Q, conversation: Any, segment: str | None) -> _Q:
    """Only rows of conversations whose latest offer was in `segment` (all rows without one)."""
    if not segment:
        return stmt
    latest = (
        select(SlotOffer.conversation_id, func.max(SlotOffer.offered_at).label("at"))
        .group_by(col(SlotOffer.conversation_id))
        .subquery()
    )
    in_segment = (
        select(SlotOffer.conversation_id)
        .join(
            latest,
            and_(
                col(SlotOffer.conversation_id) == latest.c.conversation_id,
                col(SlotOffer.offered_at) == latest.c.at,
            ),
        )
        .where(col(SlotOffer.segment) == segment)
    )
    return stmt.where(conversation.in_(in_segment))


def _cohorts(session: Session, f: InsightsFilter, tz: ZoneInfo) -> dict[str, _Cohort]:
    """The conversations first offered in the period, each with the segment of that first offer
    (of tied offers, the first recorded), its first booking after it, whether it paid (a lesson
    confirmed or marked, else a paid payment) and whether a lesson was attended.

    One query: per cohort conversation each of these is a lookup in an index that stops at the
    first match (ix_slotoffer_conversation_at, ix_lesson_conversation_created_status_outcome,
    ix_payment_conversation_id), not every offer, lesson and payment of every cohort aggregated.
    """
    first = _first_offers(f, tz)
    segment = (
        select(SlotOffer.segment)
        .where(
            col(SlotOffer.conversation_id) == first.c.conversation_id,
            col(SlotOffer.offered_at) == first.c.first_at,
            col(SlotOffer.slots) > 0,
        )
        .order_by(col(SlotOffer.id))
        .limit(1)
        .scalar_subquery()
    )
    after_first = and_(
        col(Lesson.conversation_id) == first.c.conversation_id, col(Lesson.created_at) >= first.c.first_at
    )
    paid_lesson = or_(col(Lesson.status).in_((CONFIRMED, NEEDS_RESCHEDULE)), col(Lesson.outcome).is_not(None))
    paid_payment = exists().where(
        col(Payment.conversation_id) == first.c.conversation_id, col(Payment.paid_at) >= first.c.first_at
    )
    rows = session.exec(
        select(  # type: ignore[call-overload]
            first.c.conversation_id,
            first.c.first_at,
            segment,
            select(func.min(col(Lesson.created_at))).where(after_first).scalar_subquery(),
            case((exists().where(after_first, paid_lesson), True), else_=paid_payment),
            exists().where(after_first, col(Lesson.outcome) == LessonOutcome.ATTENDED),
        )
    ).all()
    cohorts: dict[str, _Cohort] = {}
    for conversation_id, first_at, first_segment, booked_at, paid, attended in rows:
        if f.segment and first_segment != f.segment:
            continue
        booked = booked_at is not None
        cohorts[conversation_id] = _Cohort(
            first_at, first_segment or "", booked_at, booked and bool(paid), booked and bool(attended)
        )
    return cohorts


def insights(session: Session, f: InsightsFilter, tz: ZoneInfo) -> Insights:
    """The funnel, rates and revenue of the local dates f.date_from..f.date_to."""
    cohorts = _cohorts(session, f, tz)
    # offered, booked, paid, attended per (week, segment); None for "all weeks" / "all segments"
    counts: dict[tuple[date | None, str | None], list[int]] = {}
    minutes: list[float] = []
    for c in cohorts.values():
        week = week_monday(c.first_at.astimezone(tz).date())
        booked = c.booked_at is not None
        steps = (1, booked, booked and c.paid, booked and c.attended)
        for key in ((week, None), (None, c.segment), (week, c.segment), (None, None)):
            entry = counts.setdefault(key, [0, 0, 0, 0])
            for i, n in enumerate(steps):
                entry[i] += n
        if c.booked_at is not None:
            minutes.append((c.booked_at - c.first_at).total_seconds() / 60)
    rows = {key: FunnelRow(key[0], key[1], *n) for key, n in counts.items()}
    weeks = {week: row for (week, segment), row in rows.items() if week is not None and segment is None}
    segments = {segment: row for (week, segment), row in rows.items() if week is None and segment is not None}
    cells = {key: row for key, row in rows.items() if None not in key}
    totals = rows.get((None, None), FunnelRow())

    lo, hi = local_bounds(f.date_from, f.date_to, tz)
    lessons = _in_segment(
        select(Lesson.status, Lesson.outcome, func.count())
        .where(col(Lesson.start) >= lo, col(Lesson.start) < hi)
        .group_by(col(Lesson.status), col(Lesson.outcome)),
        col(Lesson.conversation_id),
        f.segment,
    )
    confirmed = cancelled = attended = no_shows = 0
    for status, outcome, n in session.exec(lessons).all():
        if status == CANCELLED:
            cancelled += n
        elif status in (CONFIRMED, NEEDS_RESCHEDULE):
            confirmed += n
        if outcome == LessonOutcome.ATTENDED:
            attended += n
        elif outcome == LessonOutcome.NO_SHOW:
            no_shows += n

    paid_total = refunded_total = 0
    for week, amount, refunded in _revenue_per_week(session, f, tz):
        paid_total += amount
        refunded_total += refunded
        row = weeks.get(week, FunnelRow(week=week))
        weeks[week] = replace(row, revenue=row.revenue + amount - refunded)

    return Insights(
        weeks=[weeks[w] for w in sorted(weeks)],
        segments=sorted(segments.values(), key=lambda r: (-r.offered, r.segment or "")),
        totals=totals,
        cells=[cells[k] for k in sorted(cells)],
        lessons_confirmed=confirmed,
        lessons_cancelled=cancelled,
        attended=attended,
        no_shows=no_shows,
        paid_total=paid_total,
        refunded_total=refunded_total,
        median_minutes_to_book=statistics.median(minutes) if minutes else None,
    )


def _revenue_per_week(session: Session, f: InsightsFilter, tz: ZoneInfo) -> list[tuple[date, int, int]]:
    """(local Monday, paid, refunded) per week with a paid payment in the period.

    Without a segment, from the paid rollup (PaymentPaidDaily: a row per day, currency and
    shard, whatever the number of payments), when it is kept in the zone asked for. With one, the
    payments themselves: a CASE turns paid_at into the index of its week (the UTC instants of the
    local Mondays in between, so exact in any zone and across summer time) and SQL sums them.
    """
    if not f.segment and kept_in(tz):
        per_day = session.exec(
            select(
                col(PaymentPaidDaily.day),
                func.sum(col(PaymentPaidDaily.count)),
                func.sum(col(PaymentPaidDaily.amount)),
                func.sum(col(PaymentPaidDaily.refunded_amount)),
            )
            .where(col(PaymentPaidDaily.day) >= f.date_from, col(PaymentPaidDaily.day) <= f.date_to)
            .group_by(col(PaymentPaidDaily.day))
        ).all()
        totals: dict[date, list[int]] = {}
        for day, count, amount, refunded in per_day:
            if count:  # a day whose payments all moved away keeps a row of zeros
                entry = totals.setdefault(week_monday(day), [0, 0])
                entry[0] += int(amount)
                entry[1] += int(refunded)
        return [(week, paid, refunded) for week, (paid, refunded) in sorted(totals.items())]

    lo, hi = local_bounds(f.date_from, f.date_to, tz)
    mondays = [week_monday(f.date_from)]
    while mondays[-1] + timedelta(days=7) <= f.date_to:
        mondays.append(mondays[-1] + timedelta(days=7))
    paid_at = col(Payment.paid_at)
    week_of = case(
        *((paid_at < local_bounds(monday, None, tz)[0], i) for i, monday in enumerate(mondays[1:])),
        else_=len(mondays) - 1,
    ).label("week_index")
    payments = _in_segment(
        select(
            week_of,
            func.coalesce(func.sum(col(Payment.amount)), 0),
            func.coalesce(func.sum(col(Payment.refunded_amount)), 0),
        )
        .where(paid_at >= lo, paid_at < hi)
        .group_by(week_of),
        col(Payment.conversation_id),
        f.segment,
    )
    return [
        (mondays[i], int(amount or 0), int(refunded or 0))
        for i, amount, refunded in session.exec(payments).all()
    ]


def _percent(rate: float | None) -> float | None:
    return None if rate is None else round(rate * 100, 1)


def insights_export(session: Session, f: InsightsFilter, tz: ZoneInfo) -> list[dict[str, Any]]:
    """The funnel per week and segment, for the CSV export (rates in percent of offered)."""
    return [
        {
            "week": row.week,
            "segment": row.segment,
            "offered": row.offered,
            "booked": row.booked,
            "paid": row.paid,
            "attended": row.attended,
            "booked_pct": _percent(row.booked_rate),
            "paid_pct": _percent(row.paid_rate),
            "attended_pct": _percent(row.attended_rate),
        }
        for row in insights(session, f, tz).cells
    ]
