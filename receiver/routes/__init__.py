"""The receiver's routes, one module per concern. `api_router` is the bot API under /api/v1,
every route behind the bearer token and the rate limits (receiver/gate.py, which also documents
the 429 here); health and the Stripe and Google webhooks are public (each checks its own signature or token)."""

from __future__ import annotations

from fastapi import APIRouter

from receiver.deps import BotAuth
from receiver.routes import (
    bookings,
    contacts,
    credits,
    google,
    health,
    lessons,
    messages,
    payments,
    series,
    slots,
    webhooks,
)
from receiver.schemas import error_responses

api_router = APIRouter(prefix="/api/v1", dependencies=[BotAuth], responses=error_responses(429))
for module in (slots, bookings, series, payments, contacts, messages, lessons, credits):
    api_router.include_router(module.router)

public_router = APIRouter()
public_router.include_router(health.router)
public_router.include_router(webhooks.router)
public_router.include_router(google.router)
