"""POST /webhooks/stripe: Stripe's events, verified against the raw body.

The body is read untouched (the signature covers the exact bytes) and handed to
core.payments.handle_webhook in the threadpool. No secret → 503, bad signature → 400, a
failure while handling → 500 so Stripe retries (the event is already stored as failed).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request
from starlette.concurrency import run_in_threadpool

from core.payments import handle_webhook
from receiver.schemas import WebhookAck, error_responses

router = APIRouter(tags=["webhooks"])

_RAW_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "description": "A Stripe event, exactly as Stripe sent it.",
                    "example": {"id": "evt_1", "type": "checkout.session.completed", "data": {"object": {}}},
                }
            }
        },
    }
}


@router.post(
    "/webhooks/stripe",
    response_model=WebhookAck,
    openapi_extra=_RAW_BODY,
    responses=error_responses(400, 413, 422, 500, 503),
)
async def stripe_webhook(
    request: Request, stripe_signature: Annotated[str | None, Header()] = None
) -> WebhookAck:
    payload = await request.body()
    result = await run_in_threadpool(handle_webhook, payload, stripe_signature)
    return WebhookAck(status=result.status)
