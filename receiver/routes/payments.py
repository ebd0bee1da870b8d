"""POST /api/v1/payment-links: a Stripe Checkout Session for a lesson the bot sells itself."""

from __future__ import annotations

from fastapi import APIRouter

from core.payments import create_payment_link
from receiver.schemas import PaymentLinkIn, PaymentLinkOut, error_responses, local

router = APIRouter(tags=["bot"])


@router.post(
    "/payment-links", response_model=PaymentLinkOut, responses=error_responses(401, 404, 409, 413, 422, 503)
)
def create_link(body: PaymentLinkIn) -> PaymentLinkOut:
    payment = create_payment_link(
        body.segment,
        body.minutes,
        body.order_id,
        body.conversation_id,
        body.student_name,
        body.service,
        body.audience,
        body.program,
    )
    return PaymentLinkOut(
        url=payment.url or "",
        checkout_session_id=payment.checkout_session_id,
        expires_at=local(payment.expires_at),
    )
