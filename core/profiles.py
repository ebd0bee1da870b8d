"""Planning profiles: the seed's four defaults, validation, and which profile a segment gets.

A profile says when lessons can be offered: the daily window, lead time, how far ahead, which
weekdays, how long a lesson lasts. Validation names the field that is wrong so the console and
the API can show it next to that field.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core import clock
from core.audit import audit, current_actor
from core.db import write_session
from core.errors import InvalidProfile, NotFound, UnknownProfile, ValidationFailed
from core.models import SCHOOL_REGIONS, PlanningProfile, SegmentProfile, User
from core.paging import row_from
from core.segments import validate_segment

SEED_PROFILES: dict[str, dict[str, Any]] = {
    "new": dict(
        duration_minutes=60,
        earliest_hour=10,
        latest_hour=20,
        min_lead_minutes=720,
        days_ahead=10,
        exclude_weekends=True,
        allowed_weekdays=None,
        max_suggestions=6,
        max_per_day=2,
    ),
    "existing": dict(
        duration_minutes=60,
        earliest_hour=9,
        latest_hour=21,
        min_lead_minutes=360,
        days_ahead=14,
        exclude_weekends=True,
        allowed_weekdays=None,
        max_suggestions=6,
        max_per_day=2,
    ),
    "weekend": dict(
        duration_minutes=60,
        earliest_hour=10,
        latest_hour=18,
        min_lead_minutes=180,
        days_ahead=7,
        exclude_weekends=False,
        allowed_weekdays=[5, 6],
        max_suggestions=6,
        max_per_day=3,
    ),
    "premium": dict(
        duration_minutes=90,
        earliest_hour=8,
        latest_hour=22,
        min_lead_minutes=240,
        days_ahead=21,
        exclude_weekends=False,
        allowed_weekdays=None,
        max_suggestions=15,
        max_per_day=2,
    ),
}

SEED_SEGMENT_PROFILES: dict[str, str] = {
    "new": "new",
    "existing": "existing",
    "weekend": "weekend",
    "returning_broadcast": "existing",
}

EDITABLE_FIELDS = (
    "duration_minutes",
    "earliest_hour",
    "latest_hour",
    "min_lead_minutes",
    "days_ahead",
    "exclude_weekends",
    "allowed_weekdays",
    "slot_step_minutes",
    "max_suggestions",
    "buffer_minutes",
    "max_per_day",
    "requires_payment",
    "active",
    "cancel_notice_hours",
    "reminder_hours",
    "on_time_cancel",
    "public_holidays",
    "school_holidays",
)
ON_TIME_CANCEL = ("refund", "credit")  # money back, or the lesson back as a prepaid credit


def _int(values: dict[str, Any], field: str, lo: int, hi: int, *, optional: bool = False) -> None:
    value = values.get(field)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidProfile(field, "must be a whole number")
    if not lo <= value <= hi:
        raise InvalidProfile(field, f"must be between {lo} and {hi} (got {value})")


def validate_profile(values: dict[str, Any]) -> dict[str, Any]:
    """Check a profile's fields; returns the cleaned values or raises InvalidProfile(field)."""
    v = dict(values)
    name = v.get("name")
    if name is not None and (
        not isinstance(name, str)
        or not name.strip()
        or len(name) > 40
        or not name.replace("_", "").replace("-", "").isalnum()
    ):
        raise InvalidProfile("name", "use 1-40 letters, digits, '-' or '_'")
    _int(v, "duration_minutes", 15, 8 * 60)
    _int(v, "earliest_hour", 0, 23)
    _int(v, "latest_hour", 1, 24)
    if v["earliest_hour"] >= v["latest_hour"]:
        raise InvalidProfile("earliest_hour", "must be before latest_hour")
    window = (v["latest_hour"] - v["earliest_hour"]) * 60
    if v["duration_minutes"] > window:
        raise InvalidProfile(
            "duration_minutes",
            f"a {v['duration_minutes']}-minute lesson does not fit the "
            f"{v['earliest_hour']}:00-{v['latest_hour']}:00 window",
        )
    _int(v, "min_lead_minutes", 0, 60 * 24 * 60)
    _int(v, "days_ahead", 0, 366)
    v.setdefault("slot_step_minutes", 60)
    _int(v, "slot_step_minutes", 5, 24 * 60)
    v.setdefault("max_suggestions", 6)
    _int(v, "max_suggestions", 1, 200)
    v.setdefault("buffer_minutes", 0)
    _int(v, "buffer_minutes", 0, 240)
    _int(v, "max_per_day", 1, 100, optional=True)
    weekdays = v.get("allowed_weekdays")
    if weekdays is not None:
        if not isinstance(weekdays, list | tuple) or not weekdays:
            raise InvalidProfile("allowed_weekdays", "give at least one weekday, or leave empty")
        if any(isinstance(d, bool) or not isinstance(d, int) or not 0 <= d <= 6 for d in weekdays):
            raise InvalidProfile("allowed_weekdays", "weekdays are 0 (Monday) to 6 (Sunday)")
        v["allowed_weekdays"] = sorted(set(weekdays))
    if "reminder_hours" in v:
        hours = v["reminder_hours"]
        if not isinstance(hours, list | tuple) or any(
            isinstance(h, bool) or not isinstance(h, int) for h in hours
        ):
            raise InvalidProfile("reminder_hours", "give whole hours before the lesson, e.g. 24 or 48, 2")
        if len(set(hours)) > 3 or any(not 1 <= h <= 14 * 24 for h in hours):
            raise InvalidProfile(
                "reminder_hours", "at most three reminders, each 1 to 336 hours before the lesson"
            )
        v["reminder_hours"] = sorted(set(hours))
    if "cancel_notice_hours" in v:
        _int(v, "cancel_notice_hours", 0, 14 * 24)
    if "on_time_cancel" in v and v["on_time_cancel"] not in ON_TIME_CANCEL:
        raise InvalidProfile("on_time_cancel", f"use one of: {', '.join(ON_TIME_CANCEL)}")
    if "school_holidays" in v:
        region = v["school_holidays"] or None
        if region is not None and region not in SCHOOL_REGIONS:
            raise InvalidProfile("school_holidays", f"use one of: {', '.join(SCHOOL_REGIONS)}, or none")
        v["school_holidays"] = region
    for flag in ("exclude_weekends", "requires_payment", "active", "public_holidays"):
        if flag in v and not isinstance(v[flag], bool):
            raise InvalidProfile(flag, "must be true or false")
    return v


def seed_defaults(session: Session) -> None:
    """Insert the seed profiles and segment mapping where missing (never overwrites edits)."""
    for name, values in SEED_PROFILES.items():
        if session.get(PlanningProfile, name) is None:
            session.add(PlanningProfile(name=name, **values))
    session.flush()
    for segment, profile in SEED_SEGMENT_PROFILES.items():
        if session.get(SegmentProfile, segment) is None:
            session.add(SegmentProfile(segment=segment, profile_name=profile))
    session.flush()


def get_profile(session: Session, name: str) -> PlanningProfile:
    profile = session.get(PlanningProfile, name)
    if profile is None or not profile.active:
        known = ", ".join(p.name for p in list_profiles(session)) or "none"
        raise UnknownProfile(f"Unknown planning profile '{name}'. Known profiles: {known}.")
    return profile


def list_profiles(session: Session, *, include_inactive: bool = False) -> list[PlanningProfile]:
    stmt = select(PlanningProfile).order_by(col(PlanningProfile.name))
    if not include_inactive:
        stmt = stmt.where(PlanningProfile.active == True)  # noqa: E712
    return list(session.exec(stmt).all())


def profile_for_segment(session: Session, segment: str) -> str:
    row = session.get(SegmentProfile, segment)
    if row is not None:
        return row.profile_name
    return SEED_SEGMENT_PROFILES.get(segment, "new")


def profile_values(profile: PlanningProfile) -> dict[str, Any]:
    return {f: getattr(profile, f) for f in ("name", *EDITABLE_FIELDS)}


# --- console reads and writes (admins; each write audited) ----------------------------------


@dataclass(frozen=True, slots=True)
class ProfileRow:
    """A planning profile as the console shows and edits it (the columns of PlanningProfile)."""

    name: str
    duration_minutes: int
    earliest_hour: int
    latest_hour: int
    min_lead_minutes: int
    days_ahead: int
    exclude_weekends: bool
    allowed_weekdays: list[int] | None
    slot_step_minutes: int
    max_suggestions: int
    buffer_minutes: int
    max_per_day: int | None
    requires_payment: bool
    active: bool
    cancel_notice_hours: int
    reminder_hours: list[int]
    on_time_cancel: str
    public_holidays: bool
    school_holidays: str | None
    updated_at: datetime


def profile_rows(session: Session, *, include_inactive: bool = True) -> list[ProfileRow]:
    stmt = select(PlanningProfile).order_by(col(PlanningProfile.name))
    if not include_inactive:
        stmt = stmt.where(PlanningProfile.active == True)  # noqa: E712
    return [row_from(ProfileRow, p) for p in session.exec(stmt).all()]


def segment_mapping(session: Session) -> dict[str, str]:
    return {row.segment: row.profile_name for row in session.exec(select(SegmentProfile)).all()}


def merged_profile_values(session: Session, name: str, values: dict[str, Any]) -> dict[str, Any]:
    current = session.get(PlanningProfile, name)
    if current is None:
        raise NotFound(f"Unknown planning profile '{name}'.")
    merged = profile_values(current)
    merged.update({k: v for k, v in values.items() if k in EDITABLE_FIELDS})
    merged["name"] = name
    return validate_profile(merged)


def update_profile(actor: User, name: str, values: dict[str, Any]) -> PlanningProfile:
    """Change a profile's fields (validated; InvalidProfile names the field)."""
    with write_session() as session:
        who = current_actor(session, actor, "admin")
        cleaned = merged_profile_values(session, name, values)
        profile = session.get_one(PlanningProfile, name)  # merged_profile_values found it
        if profile.active and not cleaned.get("active", True):
            used_by = session.exec(
                select(SegmentProfile.segment).where(SegmentProfile.profile_name == name)
            ).all()
            if used_by:
                raise InvalidProfile(
                    "active",
                    f"segment {', '.join(used_by)} still uses this profile; map it to another one first",
                )
        before = profile_values(profile)
        for key in EDITABLE_FIELDS:
            if key in cleaned:
                setattr(profile, key, cleaned[key])
        profile.updated_at = clock.now()
        session.add(profile)
        after = profile_values(profile)
        changed = {k for k in after if after[k] != before[k]}
        audit(
            session,
            who,
            "profile.update",
            "PlanningProfile",
            name,
            {k: before[k] for k in changed},
            {k: after[k] for k in changed},
        )
    return profile


def set_segment_profile(actor: User, segment: str, profile_name: str) -> None:
    with write_session() as session:
        who = current_actor(session, actor, "admin")
        chosen = validate_segment(segment)
        if chosen is None:
            raise ValidationFailed("Choose a segment.")
        get_profile(session, profile_name)  # must exist and be active
        row = session.get(SegmentProfile, chosen)
        before = {"profile_name": row.profile_name} if row else None
        if row is None:
            row = SegmentProfile(segment=chosen, profile_name=profile_name)
        row.profile_name = profile_name
        session.add(row)
        audit(
            session,
            who,
            "segment_profile.update",
            "SegmentProfile",
            chosen,
            before,
            {"profile_name": profile_name},
        )
