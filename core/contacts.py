"""Contacts: who they are, and who may say so (DESIGN → "Trust boundaries").

The chat platform vouches for a contact's id and, on WhatsApp, its phone number. A name or e-mail
address the customer types vouches for nothing. So:

- The bot (`apply_bot_details`) may fill in the name and e-mail address of a contact that staff
  do not maintain, and set its phone number once, when it has none. An e-mail the bot passes on
  is never *confirmed*: it does not match a whitelist (core/segments.py).
- Staff (`update_contact_details`, admins on Contacten) set name, e-mail and phone, and may
  confirm the e-mail. From then on the contact is *staff maintained*: the bot's details are
  ignored, so a new conversation that names this contact cannot rewrite who it is.
- Overrides (`set_contact_overrides`) pin a segment or profile.

Details the bot passes are applied in the same transaction as what the request does (a booking),
so a request that fails stores none of them.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from core import clock
from core.audit import audit, current_actor
from core.db import write_session
from core.errors import NotFound, ValidationFailed
from core.models import Contact, User
from core.profiles import get_profile
from core.segments import normalise_email, normalise_phone, validate_segment

IDENTITY_FIELDS = ("name", "email", "phone")
MAX_NAME_LENGTH = 200


def identity(contact: Contact) -> dict[str, Any]:
    """The identity fields as they are now (to restore them, or for the audit log)."""
    return {
        "name": contact.name,
        "email": contact.email,
        "phone": contact.phone,
        "email_confirmed": contact.email_confirmed,
    }


def _clean_email(raw: object) -> str:
    email = normalise_email(str(raw))
    if email is None:
        raise ValidationFailed(f"'{raw}' is not a valid e-mail address")
    return email


def _clean_phone(raw: object) -> str:
    phone = normalise_phone(str(raw))
    if phone is None:
        raise ValidationFailed(f"'{raw}' is not a valid phone number")
    return phone


def apply_bot_details(contact: Contact, info: dict[str, Any] | None) -> None:
    """What the bot may change on a contact (see the module docstring). Invalid values are a
    ValidationFailed even for a contact whose details are kept, so the bot learns of its bug."""
    if not info:
        return
    name = str(info["name"]).strip()[:MAX_NAME_LENGTH] if info.get("name") else None
    email = _clean_email(info["email"]) if info.get("email") else None
    phone = _clean_phone(info["phone"]) if info.get("phone") else None
    if contact.staff_maintained:
        return
    changed = False
    if name and name != contact.name:
        contact.name, changed = name, True
    if email and email != contact.email:
        contact.email, contact.email_confirmed, changed = email, False, True
    if phone and not contact.phone:
        contact.phone, changed = phone, True
    if changed:
        contact.updated_at = clock.now()


def restore_identity(
    session: Session, contact_id: str, written: dict[str, Any], before: dict[str, Any]
) -> None:
    """Undo `apply_bot_details` for a request that failed after its transaction committed (a
    booking whose payment link could not be made), unless someone changed the contact since."""
    contact = session.get(Contact, contact_id)
    if contact is None or identity(contact) != written or written == before:
        return
    contact.name, contact.email, contact.phone = before["name"], before["email"], before["phone"]
    contact.email_confirmed = before["email_confirmed"]
    contact.updated_at = clock.now()
    session.add(contact)


def update_contact_details(
    actor: User,
    contact_id: str,
    *,
    name: str | None,
    email: str | None,
    phone: str | None,
    email_confirmed: bool = False,
) -> Contact:
    """Staff set a contact's identity (admins). Empty values clear a field; the contact is staff
    maintained from now on, and its e-mail counts for whitelists only when `email_confirmed`."""
    name = (name or "").strip()[:MAX_NAME_LENGTH] or None
    email = _clean_email(email) if email and email.strip() else None
    phone = _clean_phone(phone) if phone and phone.strip() else None
    with write_session() as session:
        who = current_actor(session, actor, "admin")
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise NotFound(f"Unknown contact '{contact_id}'.")
        before = identity(contact)
        contact.name, contact.email, contact.phone = name, email, phone
        contact.email_confirmed = bool(email and email_confirmed)
        contact.staff_maintained = True
        contact.updated_at = clock.now()
        session.add(contact)
        audit(session, who, "contact.details", "Contact", contact_id, before, identity(contact))
    return contact


def set_contact_overrides(
    actor: User, contact_id: str, segment_override: str | None, profile_override: str | None
) -> Contact:
    """Pin a contact's segment and/or profile (None or "" clears the override)."""
    with write_session() as session:
        who = current_actor(session, actor, "admin")
        contact = session.get(Contact, contact_id)
        if contact is None:
            raise NotFound(f"Unknown contact '{contact_id}'.")
        segment_override = validate_segment(segment_override or None)
        profile_override = profile_override or None
        if profile_override is not None:
            get_profile(session, profile_override)
        before = {"segment_override": contact.segment_override, "profile_override": contact.profile_override}
        contact.segment_override = segment_override
        contact.profile_override = profile_override
        contact.updated_at = clock.now()
        session.add(contact)
        audit(
            session,
            who,
            "contact.overrides",
            "Contact",
            contact_id,
            before,
            {"segment_override": segment_override, "profile_override": profile_override},
        )
    return contact
