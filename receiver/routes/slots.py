"""GET /api/v1/slots: the lesson times the bot may offer this conversation now."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from core.booking import suggest_slots
from receiver.schemas import NoNul, SafeId, SlotOut, SlotsOut, error_responses

router = APIRouter(tags=["bot"])


@router.get("/slots", response_model=SlotsOut, responses=error_responses(401, 404, 422, 503))
def get_slots(
    conversation_id: Annotated[str, Query(), SafeId],
    contact_id: Annotated[
        str | None, Query(description="Required the first time a conversation is seen."), SafeId
    ] = None,
    profile: Annotated[
        str | None,
        Query(max_length=40, description="Planning profile; the segment decides when omitted."),
        NoNul,
    ] = None,
) -> SlotsOut:
    found = suggest_slots(conversation_id, profile or None, contact_id=contact_id)
    return SlotsOut(
        profile=found.profile,
        timezone=found.timezone,
        segment=found.segment,
        slots=[SlotOut.of(s) for s in found.slots],
    )
