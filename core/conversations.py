"""Conversations and contacts, and what the bot may change on them.

A conversation seen for the first time is registered with its contact (an unknown contact is
created); after that the conversation always belongs to that contact. What the bot may change on
the contact is core/contacts.py's rule (`apply_bot_details`).

Ids from the bot (conversation and contact ids) are opaque strings of one safe alphabet
(`SAFE_ID`: letters, digits and `-_.:@+`, 1 to 120 characters, not `.` or `..` alone), checked
at the receiver and again before they become part of a URL to an outside API (core/chat.py).
"""

from __future__ import annotations

import re
from typing import Any

from sqlmodel import Session

from core.contacts import apply_bot_details
from core.errors import NotFound, ValidationFailed
from core.models import Contact, Conversation

SAFE_ID = re.compile(r"[A-Za-z0-9_.:@+-]{1,120}")
SAFE_ID_RULE = "must be 1 to 120 letters, digits or - _ . : @ + (and not '.' or '..' alone)"


SAFE_ORDER_ID = re.compile(r"[A-Za-z0-9_.:@+-]{1,200}")
SAFE_ORDER_ID_RULE = "must be 1 to 200 letters, digits or - _ . : @ + (and not '.' or '..' alone)"


def is_safe_id(value: object) -> bool:
    """Whether `value` is an id of the safe alphabet (usable as one URL path segment)."""
    return isinstance(value, str) and SAFE_ID.fullmatch(value) is not None and value not in (".", "..")


def is_safe_order_id(value: object) -> bool:
    """An order id: the same alphabet, up to Stripe's 200 characters of client_reference_id."""
    return isinstance(value, str) and SAFE_ORDER_ID.fullmatch(value) is not None and value not in (".", "..")


def require_safe_id(value: object, field: str) -> str:
    """`value` if it is a safe id, else ValidationFailed naming the field. Core checks again what
    the receiver checked, so no other caller (CLI, console, a job) can slip an id past the rule."""
    if not is_safe_id(value):
        raise ValidationFailed(f"{field} {SAFE_ID_RULE}", field=field)
    return str(value)


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
    require_safe_id(conversation_id, "conversation_id")
    if contact_id is not None:
        require_safe_id(contact_id, "contact_id")
    conversation = session.get(Conversation, conversation_id)
    if conversation is None:
        if not contact_id:
            raise NotFound(f"Unknown conversation '{conversation_id}'; send contact_id the first time.")
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
    contact = session.get_one(Contact, conversation.contact_id)  # added above if it was new
    apply_bot_details(contact, contact_info)
    session.flush()
    return conversation, contact
