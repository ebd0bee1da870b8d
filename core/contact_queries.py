"""Reads of contacts for the console: search, the detail of one contact with the segment and
profile the bot would use (and why), and what the bot would offer the contact now.

These need core/booking.py (the profile a contact resolves to, the slots it offers), and booking
imports core/contacts.py (the contact writes), so the reads live here, above booking, and the
writes stay below it. They return frozen dataclasses (module-level, picklable for the console's
cache).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import ColumnElement, func, or_
from sqlmodel import Session, col, select

from core.booking import resolve_profile, slots_for_profile
from core.errors import LesplannerError, NotFound
from core.models import Contact, Conversation, Lesson
from core.paging import DEFAULT_PAGE_SIZE, PageResult, clamp_page, like_pattern, page_bounds
from core.segments import explain_segment, normalise_phone


@dataclass(frozen=True, slots=True)
class ContactRow:
    """A contact in the console's list, with the segment the bot detects now (derived, never stored)."""

    id: str
    name: str | None
    email: str | None
    phone: str | None
    segment_override: str | None
    profile_override: str | None
    updated_at: datetime
    segment: str


@dataclass(frozen=True, slots=True)
class ContactRecord:
    """The contact's own fields, as the console shows and edits them."""

    id: str
    name: str | None
    email: str | None
    phone: str | None
    attributes: dict[str, object]  # what the bot sent; customer data, shown as plain text
    segment_override: str | None
    profile_override: str | None
    email_confirmed: bool
    staff_maintained: bool
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class ContactDetail:
    contact: ContactRecord
    segment: str
    segment_reason: str
    profile: str | None  # the profile the bot would use, or None with profile_error saying why
    profile_error: str | None
    lesson_counts: dict[str, int]  # lesson status → number of lessons
    attended: int
    no_shows: int
    conversations: list[str]


@dataclass(frozen=True, slots=True)
class ContactOffer:
    """What the bot would offer a contact now."""

    segment: str
    reason: str
    profile: str
    slots: list[tuple[datetime, datetime]]


def search_contacts(
    session: Session, query: str = "", page: int = 1, page_size: int = DEFAULT_PAGE_SIZE
) -> PageResult[ContactRow]:
    """Contacts whose name, e-mail, phone or id contains `query` (case-insensitive)."""
    page, page_size = page_bounds(page, page_size)
    # sqlmodel's select() is typed for at most four columns (and mypy gives up on the unions)
    stmt = select(
        Contact.id,
        Contact.name,
        Contact.email,
        Contact.phone,  # type: ignore[call-overload, misc]
        Contact.segment_override,
        Contact.profile_override,
        Contact.updated_at,
    )
    count = select(func.count(col(Contact.id)))
    if query and query.strip():
        pattern = like_pattern(query)
        conditions: list[ColumnElement[bool]] = [
            func.lower(col(Contact.name)).like(pattern, escape="\\"),
            func.lower(col(Contact.email)).like(pattern, escape="\\"),
            col(Contact.phone).like(pattern, escape="\\"),
            func.lower(col(Contact.id)).like(pattern, escape="\\"),
        ]
        phone = normalise_phone(query)  # "06 1234 5678" finds "+31612345678"
        if phone:
            conditions.append(col(Contact.phone) == phone)
        stmt = stmt.where(or_(*conditions))
        count = count.where(or_(*conditions))
    total = session.exec(count).one()
    page = clamp_page(page, page_size, total)
    rows = session.execute(
        stmt.order_by(col(Contact.name), col(Contact.id)).offset((page - 1) * page_size).limit(page_size)
    ).all()
    found = [r._mapping for r in rows]
    # The segment as the bot sees it now (derived, never stored), for this page's rows only.
    contacts = {
        c.id: c for c in session.exec(select(Contact).where(col(Contact.id).in_([r["id"] for r in found])))
    }
    out = [ContactRow(**r, segment=explain_segment(session, contacts[r["id"]]).segment) for r in found]
    return PageResult(out, total, page, page_size)


def contact_detail(session: Session, contact_id: str) -> ContactDetail:
    """A contact with its detected segment (and why), the profile the bot would use, its lessons."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"Unknown contact '{contact_id}'.")
    decision = explain_segment(session, contact)
    try:
        profile, _ = resolve_profile(session, contact)
        profile_name, profile_error = profile.name, None
    except LesplannerError as exc:
        profile_name, profile_error = None, exc.message
    lesson_counts = dict(
        session.exec(
            select(Lesson.status, func.count(col(Lesson.id)))
            .where(Lesson.contact_id == contact_id)
            .group_by(col(Lesson.status))
        ).all()
    )
    outcome_counts = {
        str(outcome): n
        for outcome, n in session.exec(
            select(Lesson.outcome, func.count(col(Lesson.id)))
            .where(Lesson.contact_id == contact_id, col(Lesson.outcome).is_not(None))
            .group_by(col(Lesson.outcome))
        ).all()
    }
    conversations = session.exec(
        select(Conversation.id)
        .where(Conversation.contact_id == contact_id)
        .order_by(col(Conversation.created_at))
    ).all()
    return ContactDetail(
        contact=ContactRecord(
            id=contact.id,
            name=contact.name,
            email=contact.email,
            phone=contact.phone,
            attributes=dict(contact.attributes or {}),
            segment_override=contact.segment_override,
            profile_override=contact.profile_override,
            email_confirmed=contact.email_confirmed,
            staff_maintained=contact.staff_maintained,
            created_at=contact.created_at,
            updated_at=contact.updated_at,
        ),
        segment=decision.segment,
        segment_reason=decision.reason,
        profile=profile_name,
        profile_error=profile_error,
        lesson_counts=lesson_counts,
        attended=outcome_counts.get("attended", 0),
        no_shows=outcome_counts.get("no_show", 0),
        conversations=list(conversations),
    )


def offer_for_contact(session: Session, contact_id: str, now: datetime) -> ContactOffer:
    """What the bot would offer this contact now: segment (and why), profile and slots."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"Unknown contact '{contact_id}'.")
    decision = explain_segment(session, contact)
    profile, segment = resolve_profile(session, contact)
    slots = slots_for_profile(session, profile, now)
    return ContactOffer(
        segment=segment, reason=decision.reason, profile=profile.name, slots=[(s.start, s.end) for s in slots]
    )
