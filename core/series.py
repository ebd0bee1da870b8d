"""Weekly series (DESIGN → "Series and prepaid lessons"; issue 15): 2-12 weeks on the same
weekday and local wall-clock time, asked for in one request and paid with one Checkout Session.

- Week n starts at the first week's local wall-clock time n-1 weeks later (Europe/Amsterdam),
  so a series crossing a DST change keeps its 16:00; durations are real minutes.
- The first week must be a start the profile offers now (as a booking's start: 422 otherwise).
  Later weeks are checked like bookings — closures, tutors' working hours, calendar busy time
  and this database's lessons — except that `days_ahead` applies to the first week only. A week
  that is not free is `taken`, with its reason and alternatives around that week (same tutor
  preferred).
- `dry_run` tells per week `free` or `taken` and stores nothing. Otherwise the asked weeks
  (all of them but those in `skip`) are claimed in ONE write transaction under the tutor locks:
  if any of them is taken then, nothing is stored and the answer is SlotTaken (409). Each week is
  a Lesson with the series' `series_id`; with payment they are held together until one Checkout
  Session of the lesson price × the number of lessons is paid (core/payments/webhooks.py confirms
  or releases them all). A series always goes through Checkout: credits pay single bookings.
- Once booked every lesson is its own: cancelled or moved under the profile's policy, an on-time
  cancel refunding its share of the payment (core/payments/refunds.py, lesson_share).
- The same conversation asking for a series with the same first start again gets the series it
  has (created = False), with the same payment link.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlmodel import Session, col, select

from core import clock, lessons, series_messages
from core.availability import refuse_closed
from core.booking import (
    abandon_hold,
    busy_overlaps,
    check_requested_slot,
    resolve_profile,
    slots_for_profile,
    tutors_for_profile,
)
from core.calendars import get_backend
from core.config import get_settings
from core.conversations import ensure_conversation
from core.db import read_session, scratch_session, write_session
from core.errors import SlotNotOffered, SlotTaken, ValidationFailed
from core.lessons import expire_holds, lesson_busy, lock_tutors
from core.messages import format_when
from core.models import (
    AWAITING_PAYMENT,
    CONFIRMED,
    HELD,
    Lesson,
    LessonSeries,
    Payment,
    PlanningProfile,
    Tutor,
    stored_id,
)
from core.payments import create_payment_link
from core.payments.links import SERIES_ORDER_PREFIX
from core.slots import Slot, is_offered, local_wall_time, require_aware

SERIES_MIN_WEEKS, SERIES_MAX_WEEKS = 2, 12
SERIES_MIN_LESSONS = 2
FREE, TAKEN, BOOKED, SKIPPED = "free", "taken", "booked", "skipped"


@dataclass
class SeriesWeek:
    week: int  # 1 = the first week
    start: datetime | None  # None: that wall-clock time does not exist that day (DST gap)
    end: datetime | None
    status: str  # free | taken (a dry run); booked | skipped (a booking)
    reason: str | None = None
    alternatives: list[Slot] = field(default_factory=list)
    tutor: Tutor | None = None
    free_tutors: list[Tutor] = field(default_factory=list)
    lesson: Lesson | None = None


@dataclass
class SeriesResult:
    profile: str
    weeks: list[SeriesWeek]
    dry_run: bool
    created: bool = False
    series_id: int | None = None
    lessons: list[Lesson] = field(default_factory=list)
    payment: Payment | None = None
    tutors: dict[int, str] = field(default_factory=dict)  # tutor id → name, for the answer


class _WeeksLost(Exception):
    """Inside the claim: asked weeks another booking took meanwhile (rolls the claim back)."""

    def __init__(self, weeks: list[SeriesWeek]) -> None:
        super().__init__("weeks taken meanwhile")
        self.weeks = weeks


def week_starts(start: datetime, weeks: int, tz: ZoneInfo) -> list[datetime | None]:
    """The UTC start of each week: the first week's local date + 7 days each, at its local
    wall-clock time (None where that time does not exist, the spring-forward night)."""
    local = start.astimezone(tz)
    minutes = local.hour * 60 + local.minute
    return [local_wall_time(local.date() + timedelta(weeks=n), minutes, tz) for n in range(weeks)]


def _validate(weeks: int, start: datetime, end: datetime, skip: Sequence[int]) -> list[int]:
    if (
        isinstance(weeks, bool)
        or not isinstance(weeks, int)
        or not SERIES_MIN_WEEKS <= weeks <= SERIES_MAX_WEEKS
    ):
        raise ValidationFailed(
            f"weeks must be {SERIES_MIN_WEEKS} to {SERIES_MAX_WEEKS} (got {weeks}).", field="weeks"
        )
    if end <= start:
        raise ValidationFailed("end must be after start.", field="end")
    skipped = sorted(set(skip))
    outside = [n for n in skipped if not 1 <= n <= weeks]
    if outside:
        raise ValidationFailed(
            f"skip names weeks of the series, 1 to {weeks}; {outside} is not one of them.", field="skip"
        )
    if weeks - len(skipped) < SERIES_MIN_LESSONS:
        raise ValidationFailed(
            f"A series books at least {SERIES_MIN_LESSONS} lessons; for one lesson use POST /api/v1/bookings.",
            field="skip",
        )
    return skipped


def book_series(
    conversation_id: str,
    start: datetime,
    end: datetime,
    weeks: int,
    *,
    contact_id: str | None = None,
    profile_name: str | None = None,
    skip: Sequence[int] = (),
    title: str = "",
    description: str = "",
    dry_run: bool = False,
) -> SeriesResult:
    """Check (dry_run) or book a weekly series; see the module docstring for the rules.

    Raises ValidationFailed (bad input, unknown profile), SlotNotOffered (the first week is not
    offered), NotFound (an unknown conversation without contact_id), SlotTaken (an asked week
    is taken: nothing stored), CalendarUnavailable, PaymentsNotConfigured / PaymentProviderError.
    """
    start = require_aware(start, "start").astimezone(UTC)
    end = require_aware(end, "end").astimezone(UTC)
    skipped = _validate(weeks, start, end, skip)
    tz = get_settings().tz
    expire_holds()
    now = clock.now()
    with scratch_session() as session:  # what the request would be; stored with the claim only
        conversation, contact = ensure_conversation(session, conversation_id, contact_id)
        profile, segment = resolve_profile(session, contact, profile_name)
        if not dry_run:
            existing = _existing(session, conversation.id, start, tz)
            if existing is not None:
                return existing
        tutors = tutors_for_profile(session, profile.name)
    check_requested_slot(profile, now, start, end, tz, "; a series starts with an offered slot")
    with read_session() as session:  # the first week must be bookable: booking's 422s
        refuse_closed(session, profile, tutors, start, end, tz, format_when(start, "en", tz))
    # Later weeks lie beyond days_ahead: the same profile, looking as far as the series does.
    later = PlanningProfile(**{**profile.model_dump(), "days_ahead": profile.days_ahead + 7 * weeks})
    plan = _check_weeks(profile, later, tutors, week_starts(start, weeks, tz), end - start, now, tz)
    names = {stored_id(t): t.name for t in tutors}
    if dry_run:
        _add_alternatives(later, tutors, [w for w in plan if w.status == TAKEN], now, tz)
        return SeriesResult(profile.name, plan, dry_run=True, tutors=names)

    asked = [w for w in plan if w.week not in skipped]
    taken = [w for w in asked if w.status == TAKEN]
    if taken:
        raise _taken(later, tutors, taken, now, tz)
    try:
        with write_session() as session:
            result = _claim(session, conversation_id, contact_id, profile, start, weeks, plan, skipped, now)
            if result is not None:  # the same request raced itself
                return result
            conversation, contact = ensure_conversation(session, conversation_id, contact_id)
            series = LessonSeries(
                conversation_id=conversation.id,
                contact_id=contact.id,
                profile_name=profile.name,
                start=start,
                weeks=weeks,
                lessons=len(asked),
                created_at=now,
            )
            session.add(series)
            session.flush()
            hold_until = (
                now + timedelta(minutes=get_settings().checkout_expires_minutes)
                if profile.requires_payment
                else None
            )
            for w in asked:
                assert w.start is not None and w.end is not None and w.tutor is not None  # free
                w.lesson = Lesson(
                    conversation_id=conversation.id,
                    contact_id=contact.id,
                    tutor_id=stored_id(w.tutor),
                    profile_name=profile.name,
                    start=w.start,
                    end=w.end,
                    title=(title or "").strip()[:200] or f"Les {contact.name or contact.id}",
                    description=(description or "").strip()[:4000],
                    series_id=stored_id(series),
                    series_week=w.week,
                )
                lessons.book(session, w.lesson, hold_until=hold_until)
                w.status = BOOKED
            if hold_until is None:  # confirmed now: told in one message (core/series_messages.py)
                series_messages.confirmed_at_once(session, stored_id(series))
            for w in plan:
                if w.week in skipped:
                    w.status = SKIPPED
            series_id, contact_name, buyer = stored_id(series), contact.name or "", contact.id
    except _WeeksLost as lost:
        raise _taken(later, tutors, lost.weeks, now, tz) from None
    booked = [w.lesson for w in asked if w.lesson is not None]
    result = SeriesResult(
        profile.name, plan, dry_run=False, created=True, series_id=series_id, lessons=booked, tutors=names
    )
    if hold_until is None:
        return result
    try:
        result.payment = create_payment_link(
            segment,
            profile.duration_minutes,
            f"{SERIES_ORDER_PREFIX}{series_id}",
            conversation_id,
            contact_name,
            profile.name,
            segment,
            profile.name,
            contact_id=buyer,
            internal=True,
            series=(series_id, len(booked)),
        )
    except Exception:
        for lesson in booked:
            abandon_hold(stored_id(lesson), "no payment link could be created", buyer, ({}, {}))
        raise
    with write_session() as session:  # the holds end with the Checkout Session
        for lesson in booked:
            row = session.get_one(Lesson, stored_id(lesson))
            if result.payment.expires_at is not None and row.status == HELD:
                row.hold_expires_at = result.payment.expires_at
                row.updated_at = clock.now()
            lesson.hold_expires_at = row.hold_expires_at
    return result


def _check_weeks(
    profile: PlanningProfile,
    later: PlanningProfile,
    tutors: Sequence[Tutor],
    starts: Sequence[datetime | None],
    duration: timedelta,
    now: datetime,
    tz: ZoneInfo,
) -> list[SeriesWeek]:
    """Each week free (with the tutors free then, and the one it would get) or taken (why)."""
    buffer = timedelta(minutes=profile.buffer_minutes or 0)
    known = [s for s in starts if s is not None]
    lo, hi = known[0] - buffer, known[-1] + duration + buffer
    # Fresh from the calendar (never cached), once for the whole series.
    calendar = get_backend().busy(sorted({t.calendar_id for t in tutors}), lo, hi)
    plan: list[SeriesWeek] = []
    with read_session() as session:
        claimed = lesson_busy(session, [stored_id(t) for t in tutors], lo, hi, now)
        for n, week_start in enumerate(starts, start=1):
            if week_start is None:
                plan.append(
                    SeriesWeek(n, None, None, TAKEN, "that time does not exist that day (clocks change)")
                )
                continue
            week = SeriesWeek(n, week_start, week_start + duration, FREE)
            plan.append(week)
            label = format_when(week_start, "en", tz)
            if not is_offered(later, now, week_start, tz):
                week.status, week.reason = (
                    TAKEN,
                    f"{label} is not a time the '{profile.name}' profile offers.",
                )
                continue
            try:
                working = refuse_closed(
                    session, profile, tutors, week_start, week_start + duration, tz, label
                )
            except SlotNotOffered as exc:
                week.status, week.reason = TAKEN, exc.message
                continue
            a, b = week_start - buffer, week_start + duration + buffer
            week.free_tutors = [
                t
                for t in working
                if not busy_overlaps(calendar.get(t.calendar_id, []), a, b)
                and not busy_overlaps(claimed[stored_id(t)], a, b)
            ]
            if not week.free_tutors:
                week.status, week.reason = TAKEN, f"{label} is taken."
    # Same tutor preferred: the one free in the most weeks teaches every week they are free.
    free_weeks = [w for w in plan if w.status == FREE]
    if free_weeks:
        counts: dict[int, int] = {}
        for w in free_weeks:
            for t in w.free_tutors:
                counts[stored_id(t)] = counts.get(stored_id(t), 0) + 1
        preferred = min(counts, key=lambda tid: (-counts[tid], tid))
        for w in free_weeks:
            w.tutor = next(
                (t for t in w.free_tutors if stored_id(t) == preferred),
                min(w.free_tutors, key=stored_id),
            )
    return plan


def _claim(
    session: Session,
    conversation_id: str,
    contact_id: str | None,
    profile: PlanningProfile,
    start: datetime,
    weeks: int,
    plan: list[SeriesWeek],
    skipped: Sequence[int],
    now: datetime,
) -> SeriesResult | None:
    """Under the tutor locks: the series this request already made (a repeat that raced), or
    None with every asked week given a tutor still free in this database; _WeeksLost if any is
    not (the caller's transaction then rolls back: nothing is stored)."""
    asked = [w for w in plan if w.week not in skipped]
    candidates = sorted({stored_id(t) for w in asked for t in w.free_tutors})
    lock_tutors(session, candidates)
    existing = _existing(session, conversation_id, start, get_settings().tz)
    if existing is not None:
        return existing
    buffer = timedelta(minutes=profile.buffer_minutes or 0)
    lost: list[SeriesWeek] = []
    for w in asked:
        assert w.start is not None and w.end is not None
        a, b = w.start - buffer, w.end + buffer
        taken = lesson_busy(session, [stored_id(t) for t in w.free_tutors], a, b, now)
        still = [t for t in w.free_tutors if not taken[stored_id(t)]]
        if not still:
            w.status, w.reason = TAKEN, f"{format_when(w.start, 'en', get_settings().tz)} was just taken."
            lost.append(w)
        elif w.tutor not in still:
            w.tutor = min(still, key=stored_id)
    if lost:
        raise _WeeksLost(lost)
    return None


def _taken(
    later: PlanningProfile, tutors: Sequence[Tutor], taken: list[SeriesWeek], now: datetime, tz: ZoneInfo
) -> SlotTaken:
    _add_alternatives(later, tutors, taken, now, tz)
    which = "; ".join(f"week {w.week}: {w.reason}" for w in taken)
    return SlotTaken(
        f"The series cannot be booked as asked ({which}). Leave those weeks out with skip, or book "
        "another time for them separately; nothing was booked.",
        alternatives=taken[0].alternatives,
    )


def _add_alternatives(
    later: PlanningProfile, tutors: Sequence[Tutor], taken: list[SeriesWeek], now: datetime, tz: ZoneInfo
) -> None:
    """Free slots in the same Monday-Sunday week as each taken week, nearest first: with the
    series' tutor when they have any, else with any tutor of the profile. A courtesy, like
    booking's alternatives: when they cannot be found the week is still taken."""
    wanted = [w for w in taken if w.start is not None]
    if not wanted:
        return
    try:
        with read_session() as session:  # fresh: see booking.busy_by_tutor on pooled connections
            every = slots_for_profile(session, later, now, tutors=tutors, every=True)
    except Exception:  # noqa: BLE001 - alternatives are a courtesy; the conflict still stands
        return
    for w in wanted:
        wanted_start = w.start
        assert wanted_start is not None
        day = wanted_start.astimezone(tz).date()
        monday = day - timedelta(days=day.weekday())
        near = [
            s
            for s in every
            if monday <= s.start.astimezone(tz).date() < monday + timedelta(days=7)
            and s.start != wanted_start
        ]
        near.sort(key=lambda s: (abs(s.start - wanted_start), s.start))
        w.alternatives = near[: later.max_suggestions]


def _existing(session: Session, conversation_id: str, start: datetime, tz: ZoneInfo) -> SeriesResult | None:
    """The conversation's series with this first start that still has planned lessons."""
    found = session.exec(
        select(LessonSeries)
        .where(LessonSeries.conversation_id == conversation_id, LessonSeries.start == start)
        .order_by(col(LessonSeries.id).desc())
    ).all()
    for series in found:
        rows = list(
            session.exec(
                select(Lesson)
                .where(Lesson.series_id == series.id)
                .order_by(col(Lesson.start), col(Lesson.id))
            ).all()
        )
        if not any(r.status in (HELD, AWAITING_PAYMENT, CONFIRMED) for r in rows):
            continue
        payment = session.exec(
            select(Payment).where(Payment.series_id == series.id).order_by(col(Payment.id).desc())
        ).first()
        # A lesson knows its week (it keeps it when moved); older ones are found by their start.
        by_week = {r.series_week: r for r in rows if r.series_week is not None}
        by_start = {r.start: r for r in rows if r.series_week is None}
        duration = rows[0].end - rows[0].start
        plan = []
        for n, week_start in enumerate(week_starts(series.start, series.weeks, tz), start=1):
            lesson = by_week.get(n) or (by_start.get(week_start) if week_start is not None else None)
            if lesson is not None:  # at its time now, moved or not
                plan.append(SeriesWeek(n, lesson.start, lesson.end, BOOKED, lesson=lesson))
            else:
                end = week_start + duration if week_start is not None else None
                plan.append(SeriesWeek(n, week_start, end, SKIPPED))
        names = {t.id: t.name for t in session.exec(select(Tutor)).all() if t.id is not None}
        return SeriesResult(
            series.profile_name,
            plan,
            dry_run=False,
            created=False,
            series_id=series.id,
            lessons=rows,
            payment=payment,
            tutors=names,
        )
    return None
