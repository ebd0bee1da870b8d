"""POST /webhooks/google: Google Calendar's push notifications (events.watch channels).

Google sends headers only. The channel id must be one we opened and the token the secret we gave
it (compared in constant time); anything else is a 404 that changes nothing. A known channel's
notification only plans a sync of that calendar (core/calendars/mirror.py) and answers at once.
"""

from __future__ import annotations

from fastapi import APIRouter, HTTPException, Request
from starlette.concurrency import run_in_threadpool

from core.calendars.mirror import handle_notification
from receiver.schemas import WebhookAck, error_responses

router = APIRouter(tags=["webhooks"])


@router.post("/webhooks/google", response_model=WebhookAck, responses=error_responses(400, 404))
async def google_webhook(request: Request) -> WebhookAck:
    channel_id = request.headers.get("x-goog-channel-id")
    state = request.headers.get("x-goog-resource-state")
    if not channel_id or not state:
        raise HTTPException(
            400, "A Google Calendar notification carries X-Goog-Channel-ID and X-Goog-Resource-State headers."
        )
    token = request.headers.get("x-goog-channel-token") or ""
    result = await run_in_threadpool(handle_notification, channel_id, token, state)
    return WebhookAck(status=result)
