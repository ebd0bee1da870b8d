"""Customer segments and the whitelists that decide them.

`detect_segment` keeps the seed's precedence: segment_override → weekend whitelist →
returning-broadcast list → existing customer → new. It is derived every time and never cached:
the seed stored its first answer forever, so a customer who paid stayed "new".

Identifiers on a whitelist are normalised so the same person matches however they were typed:
phone numbers to E.164 (Dutch by default), e-mail addresses lower-cased, contact ids as given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import phonenumbers
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import clock
from core.csv_import import clean_text
from core.db import read_session
from core.errors import NotFound, ValidationFailed
from core.models import SEGMENTS, WHITELISTS, Contact, WhitelistEntry

EXISTING_FLAGS = (
    "customer_since",
    "has_paid_lesson",
    "has_completed_intake",
    "intake_completed",
    "trial_lesson_completed",
    "lesson_booked",
)


@dataclass(frozen=True)
class SegmentDecision:
    segment: str
    reason: str  # which override, list or attribute decided it, for the console


def normalise_phone(raw: str, region: str = "NL") -> str | None:
    """E.164 for a valid phone number ('06 12345678' → '+31612345678'), else None."""
    if not raw or not raw.strip():
        return None
    text = raw.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    try:
        number = phonenumbers.parse(text, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalise_email(raw: str) -> str | None:
    text = (raw or "").strip().lower()
    if "@" not in text or text.startswith("@") or text.endswith("@") or " " in text:
        return None
    return text


def normalise_identifier(raw: str) -> tuple[str, str]:
    """(kind, normalised) for a whitelist identifier: an e-mail, a phone number or a contact id."""
    text = (raw or "").strip()
    if not text:
        raise ValidationFailed("identifier is empty")
    if "@" in text:
        email = normalise_email(text)
        if email is None:
            raise ValidationFailed(f"'{text}' is not a valid e-mail address")
        return "email", email
    digits = text.replace(" ", "").replace("-", "").replace("(", "").replace(")", "")
    if digits.startswith("+") or digits.startswith("00") or (digits.isdigit() and len(digits) >= 9):
        phone = normalise_phone(text)
        if phone is None:
            raise ValidationFailed(f"'{text}' is not a valid phone number")
        return "phone", phone
    return "contact_id", text


def contact_identifiers(contact: Contact) -> list[str]:
    """What a whitelist entry may match: the contact's id and phone (the chat platform vouches
    for them) and its e-mail only once staff entered or confirmed it (core/contacts.py)."""
    ids = [contact.id]
    if contact.phone:
        ids.append(normalise_phone(contact.phone) or contact.phone)
    if contact.email and contact.email_confirmed:
        ids.append(normalise_email(contact.email) or contact.email.lower())
    return ids


def _unconfirmed_hit(session: Session, contact: Contact) -> str | None:
    """The list an unconfirmed e-mail is on, so the console can say why it did not count."""
    if not contact.email or contact.email_confirmed:
        return None
    email = normalise_email(contact.email) or contact.email.lower()
    return session.exec(select(WhitelistEntry.list).where(WhitelistEntry.identifier == email)).first()


def _on_list(session: Session, list_name: str, identifiers: list[str]) -> str | None:
    row = session.exec(
        select(WhitelistEntry.identifier)
        .where(WhitelistEntry.list == list_name)
        .where(col(WhitelistEntry.identifier).in_(identifiers))
    ).first()
    return row


def explain_segment(session: Session, contact: Contact) -> SegmentDecision:
    attrs: dict[str, Any] = contact.attributes or {}
    if contact.segment_override:
        return SegmentDecision(contact.segment_override, "segment override set by an admin")
    ids = contact_identifiers(contact)
    hit = _on_list(session, "weekend", ids)
    if hit:
        return SegmentDecision("weekend", f"on the weekend whitelist ({hit})")
    if attrs.get("weekend_whitelisted"):
        return SegmentDecision("weekend", "attribute weekend_whitelisted")
    hit = _on_list(session, "returning_broadcast", ids)
    if hit:
        return SegmentDecision("returning_broadcast", f"on the returning-broadcast list ({hit})")
    if attrs.get("returning_broadcast"):
        return SegmentDecision("returning_broadcast", "attribute returning_broadcast")
    for flag in EXISTING_FLAGS:
        if attrs.get(flag):
            return SegmentDecision("existing", f"attribute {flag}")
    if attrs.get("customer_status") == "active":
        return SegmentDecision("existing", "attribute customer_status = active")
    unconfirmed = _unconfirmed_hit(session, contact)
    if unconfirmed:
        return SegmentDecision(
            "new",
            f"no list or customer attribute matched (the e-mail address is on the "
            f"{unconfirmed} list but not confirmed by staff)",
        )
    return SegmentDecision("new", "no list or customer attribute matched")


def detect_segment(contact_id: str) -> str:
    """The contact's segment now (never cached). A unit of work; inside a transaction use
    `explain_segment(session, contact)`."""
    with read_session() as session:
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise NotFound(f"Unknown contact '{contact_id}'.")
        return explain_segment(session, contact).segment


NOTE_LENGTH = 500  # a whitelist entry's note: who it is, why they are on the list


def add_to_whitelist(
    session: Session, list_name: str, identifier: str, *, note: str | None = None, added_by: str | None = None
) -> WhitelistEntry | None:
    """Add one identifier (normalised); returns None when it was already on the list."""
    if list_name not in WHITELISTS:
        raise ValidationFailed(f"Unknown list '{list_name}'; use one of: {', '.join(WHITELISTS)}.")
    _kind, value = normalise_identifier(identifier)
    existing = session.exec(
        select(WhitelistEntry).where(WhitelistEntry.list == list_name, WhitelistEntry.identifier == value)
    ).first()
    if existing is not None:
        return None
    entry = WhitelistEntry(
        list=list_name,
        identifier=value,
        note=clean_text(note, NOTE_LENGTH),
        added_by=added_by,
        added_at=clock.now(),
    )
    try:
        with session.begin_nested():
            session.add(entry)
    except IntegrityError:
        return None
    return entry


def validate_segment(segment: str | None) -> str | None:
    if segment in (None, ""):
        return None
    if segment not in SEGMENTS:
        raise ValidationFailed(f"Unknown segment '{segment}'; use one of: {', '.join(SEGMENTS)}.")
    return segment
