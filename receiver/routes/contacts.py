"""GET /api/v1/contacts/{id}/segment: the contact's segment now (derived, never cached), the
profile it gets and why."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from core.errors import NotFound
from core.models import Contact
from core.profiles import profile_for_segment
from core.segments import explain_segment
from receiver.deps import SessionDep
from receiver.schemas import SafeId, SegmentOut, error_responses

router = APIRouter(tags=["bot"])


@router.get(
    "/contacts/{contact_id}/segment", response_model=SegmentOut, responses=error_responses(401, 404, 422, 503)
)
def get_segment(contact_id: Annotated[str, Path(), SafeId], session: SessionDep) -> SegmentOut:
    contact = session.get(Contact, contact_id)
    if contact is None:
        raise NotFound(f"Unknown contact '{contact_id}'.")
    decision = explain_segment(session, contact)
    profile = contact.profile_override or profile_for_segment(session, decision.segment)
    return SegmentOut(
        contact_id=contact.id, segment=decision.segment, profile=profile, reason=decision.reason
    )
