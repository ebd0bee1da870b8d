"""The conversation's outbox for the bot: list messages (pending by default) and acknowledge
one the bot showed itself, for setups where Chatwoot delivery is not configured."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from core.chat import StatusFilter, conversation_messages, mark_delivered_by_bot
from core.models import OutboxMessage
from receiver.schemas import MessageOut, SafeId, error_responses, local

router = APIRouter(prefix="/conversations/{conversation_id}/messages", tags=["bot"])

ConversationId = Annotated[str, Path(), SafeId]
MessageId = Annotated[int, Path(ge=1, le=2**31 - 1)]  # an INTEGER column; larger ones overflow it


def message_out(message: OutboxMessage) -> MessageOut:
    return MessageOut(
        id=message.id,
        key=message.key,
        locale=message.locale,
        text=message.text,
        status=message.status,
        created_at=local(message.created_at),
        sent_at=local(message.sent_at),
    )


@router.get("", response_model=list[MessageOut], responses=error_responses(401, 404, 422, 503))
def list_messages(
    conversation_id: ConversationId, status: StatusFilter = Query("pending")
) -> list[MessageOut]:
    return [message_out(m) for m in conversation_messages(conversation_id, status)]


@router.post(
    "/{message_id}/ack", response_model=MessageOut, responses=error_responses(401, 404, 409, 422, 503)
)
def ack_message(conversation_id: ConversationId, message_id: MessageId) -> MessageOut:
    return message_out(mark_delivered_by_bot(conversation_id, message_id))
