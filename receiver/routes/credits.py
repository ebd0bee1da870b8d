"""Prepaid lessons (core/credits.py): POST /api/v1/bundles sells a bundle through Stripe
Checkout; GET /api/v1/contacts/{id}/credits tells what a contact has left and the ledger."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Response

from core.credits import statement
from core.payments import create_bundle_link
from receiver.deps import SessionDep
from receiver.schemas import BundleIn, BundleOut, CreditEntryOut, CreditsOut, SafeId, error_responses, local

router = APIRouter(tags=["bot"])


@router.post(
    "/bundles",
    status_code=201,
    response_model=BundleOut,
    responses={
        200: {"model": BundleOut, "description": "The same open link again (a repeated request)"},
        **error_responses(401, 404, 409, 413, 422, 503),
    },
)
def create_bundle(body: BundleIn, response: Response) -> BundleOut:
    payment, created = create_bundle_link(body.conversation_id, body.contact_id, body.minutes, body.lessons)
    response.status_code = 201 if created else 200
    return BundleOut(
        url=payment.url or "",
        checkout_session_id=payment.checkout_session_id,
        expires_at=local(payment.expires_at),
        minutes=payment.minutes,
        lessons=payment.quantity,
        amount=payment.amount,
        currency=payment.currency,
    )


@router.get(
    "/contacts/{contact_id}/credits", response_model=CreditsOut, responses=error_responses(401, 404, 422, 503)
)
def get_credits(contact_id: Annotated[str, Path(), SafeId], session: SessionDep) -> CreditsOut:
    found = statement(session, contact_id)
    return CreditsOut(
        contact_id=found.contact_id,
        balance={str(b.minutes): b.lessons for b in found.balances},
        total=found.total,
        entries=[
            CreditEntryOut(
                at=local(e.created_at) or e.created_at,
                kind=e.kind,
                minutes=e.minutes,
                delta=e.delta,
                reason=e.reason,
                lesson_id=e.lesson_id,
            )
            for e in found.entries
        ],
    )
