"""Conversations and contacts, and what the bot may change on them.

A conversation seen for the first time is registered with its contact (an unknown contact is
created); after that the conversation always belongs to that contact. The bot may set a
contact's name, e-mail address and phone number, normalised and validated.

Ids from the bot (conversation and contact ids) are opaque strings of one safe alphabet
(`SAFE_ID`: letters, digits and `-_.:@+`, 1 to 120 characters, not `.` or `..` alone), checked
at the receiver and again before they become part of a URL to an outside API (core/chat.py).
"""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session

from core import clock
from core.errors import NotFound, ValidationFailed
from core.models import Contact, Conversation
from core.segments import normalise_email, normalise_phone

SAFE_ID = re.compile(r"[A-Za-z0-9_.:@+-]{1,120}")
SAFE_ID_RULE = "must be 1 to 120 letters, digits or - _ . : @ + (and not '.' or '..' alone)"


def is_safe_id(value: object) -> bool:
    """Whether `value` is an id of the safe alphabet (usable as one URL path segment)."""
    return (isinstance(value, str) and SAFE_ID.fullmatch(value) is not None
            and value not in (".", ".."))


def ensure_conversation(
    session: Session,
    conversation_id: str,
    contact_id: str | None = None,
    contact_info: dict[str, Any] | None = None,
) -> tuple[Conversation, Contact]:
    """The conversation and its contact; a conversation seen for the first time is registered
    with its contact (unknown contacts are created)."""
    if not conversation_id or not str(conversation_id).strip():
        raise ValidationFailed("conversation_id is required")
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        if not contact_id:
            raise NotFound(
                f"Unknown conversation '{conversation_id}'; send contact_id the first time."
            )
        contact = session.get(Contact, contact_id)
        if contact is None:
            contact = Contact(id=contact_id)
            session.add(contact)
        conversation = Conversation(id=conversation_id, contact_id=contact_id)
        session.add(conversation)
    elif contact_id and contact_id != conversation.contact_id:
        raise ValidationFailed(
            f"Conversation '{conversation_id}' belongs to another contact than '{contact_id}'."
        )
    contact = session.get(Contact, conversation.contact_id)
    if contact_info:
        _update_contact(contact, contact_info)
    session.flush()
    return conversation, contact


def _update_contact(contact: Contact, info: dict[str, Any]) -> None:
    if info.get("name"):
        contact.name = str(info["name"]).strip()[:200]
    if info.get("email"):
        email = normalise_email(str(info["email"]))
        if email is None:
            raise ValidationFailed(f"'{info['email']}' is not a valid e-mail address")
        contact.email = email
    if info.get("phone"):
        phone = normalise_phone(str(info["phone"]))
        if phone is None:
            raise ValidationFailed(f"'{info['phone']}' is not a valid phone number")
        contact.phone = phone
    contact.updated_at = clock.now()
