"""Conversations and contacts, and what the bot may change on them.

A conversation seen for the first time is registered with its contact (an unknown contact is
created); after that the conversation always belongs to that contact. The bot may set a
contact's name, e-mail address and phone number, normalised and validated.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session

from core import clock
from core.errors import NotFound, ValidationFailed
from core.models import Contact, Conversation
from core.segments import normalise_email, normalise_phone


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
