"""Request and response bodies of the receiver, with the examples shown at /docs.

Datetimes going out carry the business zone's offset (2026-12-01T10:00:00+01:00); datetimes
coming in must carry an offset (`AwareDatetime`): a naive one is a 422, never a guess.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field

from core.config import get_settings
from core.conversations import SAFE_ID_RULE, SAFE_ORDER_ID_RULE, is_safe_id, is_safe_order_id
from core.slots import Slot


def _plausible(value: datetime) -> datetime:
    # Far-off years overflow when converted between zones; no lesson is booked there anyway.
    if not 2000 <= value.year <= 2999:
        raise ValueError("must be a date between the years 2000 and 2999")
    return value


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold NUL characters: refuse them here instead of failing inside.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


def _safe_id(value: str) -> str:
    # One rule for every id the bot sends (core.conversations.SAFE_ID): no path tricks, no
    # control characters, nothing that could become another URL or another log line.
    if not is_safe_id(value):
        raise ValueError(SAFE_ID_RULE)
    return value


def _safe_order_id(value: str) -> str:
    if not is_safe_order_id(value):
        raise ValueError(SAFE_ORDER_ID_RULE)
    return value


NoNul = AfterValidator(_no_nul)
SafeId = AfterValidator(_safe_id)
InstantIn = Annotated[AwareDatetime, AfterValidator(_plausible)]
Text = Annotated[str, NoNul]
Id = Annotated[str, SafeId]


def local(value: datetime | None) -> datetime | None:
    """`value` shown in the business zone (storage is UTC)."""
    return value.astimezone(get_settings().tz) if value is not None else None


# --- errors -----------------------------------------------------------------------------------


class ErrorOut(BaseModel):
    detail: str = Field(examples=["Unknown conversation 'conv-1001'; send contact_id the first time."])


class FieldErrorOut(BaseModel):
    field: str
    message: str


class ValidationErrorOut(BaseModel):
    detail: str = Field(
        examples=[
            "start has no time zone offset; send ISO 8601 with an offset, e.g. 2026-12-01T10:00:00+01:00"
        ]
    )
    errors: list[FieldErrorOut] = Field(
        default_factory=list, description="Per field, when the request did not match the schema."
    )


# --- slots ------------------------------------------------------------------------------------


class SlotOut(BaseModel):
    start: datetime = Field(examples=["2026-12-01T10:00:00+01:00"])
    end: datetime = Field(examples=["2026-12-01T11:00:00+01:00"])

    @classmethod
    def of(cls, slot: Slot) -> SlotOut:
        return cls(start=local(slot.start), end=local(slot.end))


class ConflictOut(BaseModel):
    detail: str = Field(examples=["Tuesday 1 December at 10:00 was just taken. Please choose another time."])
    alternatives: list[SlotOut] = Field(default_factory=list, description="Fresh free slots.")


class SlotsOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "profile": "new",
                    "timezone": "Europe/Amsterdam",
                    "segment": "new",
                    "slots": [
                        {"start": "2026-12-01T10:00:00+01:00", "end": "2026-12-01T11:00:00+01:00"},
                        {"start": "2026-12-01T11:00:00+01:00", "end": "2026-12-01T12:00:00+01:00"},
                    ],
                }
            ]
        }
    )

    profile: str
    timezone: str
    segment: str
    slots: list[SlotOut]


# --- bookings ---------------------------------------------------------------------------------


class ContactIn(BaseModel):
    name: Text | None = Field(None, max_length=200, examples=["Sanne de Vries"])
    email: Text | None = Field(None, max_length=254, examples=["sanne@example.nl"])
    phone: Text | None = Field(None, max_length=40, examples=["06 12345678"])


class BookingIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "conversation_id": "conv-1001",
                    "contact_id": "contact-42",
                    "start": "2026-12-01T10:00:00+01:00",
                    "end": "2026-12-01T11:00:00+01:00",
                    "title": "Bijles wiskunde",
                    "description": "Hoofdstuk 4, vergelijkingen",
                    "contact": {
                        "name": "Sanne de Vries",
                        "email": "sanne@example.nl",
                        "phone": "06 12345678",
                    },
                }
            ]
        }
    )

    conversation_id: Id
    contact_id: Id | None = Field(None, description="Required the first time a conversation is seen.")
    start: InstantIn = Field(description="ISO 8601 with an offset, one of the offered slots.")
    end: InstantIn = Field(description="start + the profile's lesson duration.")
    title: Text = Field("", max_length=200)
    description: Text = Field("", max_length=4000)
    contact: ContactIn | None = None
    profile: Text | None = Field(
        None,
        max_length=40,
        description="Planning profile; the segment "
        "decides when omitted (a contact's profile override always wins).",
    )


class LessonOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 17,
                    "status": "held",
                    "conversation_id": "conv-1001",
                    "contact_id": "contact-42",
                    "start": "2026-12-01T10:00:00+01:00",
                    "end": "2026-12-01T11:00:00+01:00",
                    "title": "Bijles wiskunde",
                    "tutor": "Anna",
                    "profile": "new",
                    "calendar_event_id": None,
                    "calendar_sync": None,
                    "hold_expires_at": "2026-11-25T13:30:00+01:00",
                    "payment_url": "https://checkout.stripe.com/c/pay/cs_test_a1b2c3",
                    "checkout_session_id": "cs_test_a1b2c3",
                }
            ]
        }
    )

    id: int
    status: Literal["held", "awaiting_payment", "confirmed", "needs_reschedule", "cancelled", "expired"]
    conversation_id: str
    contact_id: str
    start: datetime
    end: datetime
    title: str
    tutor: str
    profile: str
    calendar_event_id: str | None
    calendar_sync: Literal["pending", "synced", "failed"] | None = Field(
        None,
        description="Whether the tutor's calendar has the lesson's event yet: a confirmed "
        "lesson is pending until the worker made it (the slot is ours either way).",
    )
    hold_expires_at: datetime | None
    payment_url: str | None = Field(None, description="Stripe Checkout URL while the lesson is held.")
    checkout_session_id: str | None = None


# --- payment links ----------------------------------------------------------------------------


class PaymentLinkIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "segment": "new",
                    "minutes": 60,
                    "order_id": "order-2026-0042",
                    "conversation_id": "conv-1001",
                    "student_name": "Sanne de Vries",
                    "service": "bijles",
                    "audience": "havo",
                    "program": "wiskunde B",
                }
            ]
        }
    )

    segment: Text = Field(max_length=40, description="weekend uses the weekend prices")
    minutes: int = Field(description="60 or 90")
    order_id: Annotated[str, AfterValidator(_safe_order_id)] = Field(
        description="Your order id: " + SAFE_ORDER_ID_RULE + "."
    )
    conversation_id: Id
    student_name: Text = Field("", max_length=200)
    service: Text = Field("", max_length=200)
    audience: Text = Field("", max_length=200)
    program: Text = Field("", max_length=200)


class PaymentLinkOut(BaseModel):
    url: str = Field(examples=["https://checkout.stripe.com/c/pay/cs_test_a1b2c3"])
    checkout_session_id: str = Field(examples=["cs_test_a1b2c3"])
    expires_at: datetime | None = Field(examples=["2026-11-25T13:30:00+01:00"])


# --- contacts, messages, health, webhooks -----------------------------------------------------


class SegmentOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "contact_id": "contact-42",
                    "segment": "existing",
                    "profile": "existing",
                    "reason": "attribute has_paid_lesson",
                }
            ]
        }
    )

    contact_id: str
    segment: str
    profile: str
    reason: str = Field(description="Which override, list or attribute decided the segment.")


class MessageOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": 5,
                    "key": "payment_success_message",
                    "locale": "nl",
                    "text": "Bedankt voor je betaling, we hebben hem ontvangen! "
                    "Je krijgt zo de bevestiging van je les.",
                    "status": "pending",
                    "created_at": "2026-11-25T13:05:00+01:00",
                    "sent_at": None,
                }
            ]
        }
    )

    id: int
    key: str | None
    locale: str
    text: str
    status: str
    created_at: datetime
    sent_at: datetime | None = None


class HealthOut(BaseModel):
    status: Literal["ok"] = "ok"
    database: Literal["ok"] = "ok"


class WebhookAck(BaseModel):
    received: bool = True
    status: str = Field(examples=["processed"], description="processed | duplicate | ignored")


# --- documented error answers -----------------------------------------------------------------

_ERROR_DOCS: dict[int, tuple[str, type[BaseModel]]] = {
    400: ("Bad or missing Stripe signature", ErrorOut),
    401: ("Missing or wrong bot API token", ErrorOut),
    404: ("Unknown conversation, contact or message", ErrorOut),
    409: ("The slot is taken (with fresh alternatives) or the change is not allowed", ConflictOut),
    413: ("The request body is too large", ErrorOut),
    422: ("Invalid input, in one sentence", ValidationErrorOut),
    429: ("Too many requests: wait the `Retry-After` seconds", ErrorOut),
    500: ("Handling failed; the event is kept and Stripe retries", ErrorOut),
    503: ("Not configured, or an outside service (calendar, Stripe, database) is unavailable", ErrorOut),
}


_HEADER_DOCS: dict[int, dict[str, dict]] = {
    429: {
        "Retry-After": {
            "description": "Seconds until a request may be made again.",
            "schema": {"type": "integer"},
        }
    },
}


def error_responses(*codes: int) -> dict[int | str, dict]:
    """OpenAPI `responses=` for these status codes, so /docs lists every answer a route gives."""
    return {
        code: {
            "model": _ERROR_DOCS[code][1],
            "description": _ERROR_DOCS[code][0],
            **({"headers": _HEADER_DOCS[code]} if code in _HEADER_DOCS else {}),
        }
        for code in codes
    }


# --- the customer's own lessons (core/self_service.py) ------------------------------------------


class CancelNow(BaseModel):
    allowed: bool = Field(description="Whether the customer may cancel (or move) it through the bot now.")
    consequence: Literal["refund", "credit", "none"]
    amount: int | None = Field(None, description="Cents refunded when the consequence is a refund.")
    currency: str | None = None
    minutes: int | None = Field(
        None, description="The length of the lesson credited back when the consequence is a credit."
    )


class CustomerLessonOut(LessonOut):
    payment_status: str | None = Field(None, description="The lesson's latest payment, if any.")
    outcome: Literal["attended", "no_show"] | None = Field(
        None, description="Marked by the tutor after the lesson: attended or no_show."
    )
    cancel_until: datetime | None = Field(None, description="Until when the customer may cancel or move it.")
    cancel_now: CancelNow


class CustomerLessonsOut(BaseModel):
    lessons: list[CustomerLessonOut]


class Consequence(BaseModel):
    kind: Literal["refund", "credit", "none"] = Field(
        description="refund: the amount goes back through Stripe; credit: one prepaid lesson of "
        "`minutes` is added to the contact's credits; none: nothing is given back."
    )
    amount: int | None = None
    currency: str | None = None
    minutes: int | None = None


class CancelIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"conversation_id": "conv-1001", "reason": "ziek", "dry_run": True}]}
    )

    conversation_id: Id
    reason: Text = Field("", max_length=500)
    dry_run: bool = Field(False, description="Only tell what a cancel would do now; change nothing.")


class CancelOut(BaseModel):
    lesson: LessonOut
    allowed: bool
    consequence: Consequence
    cancel_until: datetime | None
    dry_run: bool


class RescheduleIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "conversation_id": "conv-1001",
                    "start": "2026-12-02T16:00:00+01:00",
                    "end": "2026-12-02T17:00:00+01:00",
                }
            ]
        }
    )

    conversation_id: Id
    start: InstantIn = Field(description="ISO 8601 with an offset, one of the offered slots.")
    end: InstantIn = Field(description="start + the lesson's length (a lesson keeps its length).")


# --- bundles and credits (core/credits.py) ------------------------------------------------------


class BundleIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"conversation_id": "conv-1001", "contact_id": "contact-42", "minutes": 60, "lessons": 5}
            ]
        }
    )

    conversation_id: Id
    contact_id: Id | None = Field(None, description="Required the first time a conversation is seen.")
    minutes: Literal[60, 90] = Field(description="The lesson length the credits are for.")
    lessons: int = Field(ge=2, le=20, description="How many prepaid lessons (2-20).")


class BundleOut(BaseModel):
    url: str = Field(examples=["https://checkout.stripe.com/c/pay/cs_test_a1b2c3"])
    checkout_session_id: str
    expires_at: datetime | None
    minutes: int
    lessons: int
    amount: int | None = Field(None, description="Cents, for all the lessons together.")
    currency: str | None = None


class CreditEntryOut(BaseModel):
    at: datetime
    kind: Literal["purchase", "use", "return", "grant", "refund"]
    minutes: int
    delta: int = Field(description="+n bought, granted or returned; -1 used; -n taken back.")
    reason: str
    lesson_id: int | None = None


class CreditsOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "contact_id": "contact-42",
                    "balance": {"60": 4, "90": 0},
                    "total": 4,
                    "entries": [
                        {
                            "at": "2026-12-01T10:05:00+01:00",
                            "kind": "use",
                            "minutes": 60,
                            "delta": -1,
                            "reason": "lesson 17",
                            "lesson_id": 17,
                        },
                        {
                            "at": "2026-11-30T09:00:00+01:00",
                            "kind": "purchase",
                            "minutes": 60,
                            "delta": 5,
                            "reason": "bundle of 5 paid",
                            "lesson_id": None,
                        },
                    ],
                }
            ]
        }
    )

    contact_id: str
    balance: dict[str, int] = Field(
        description="Prepaid lessons left per lesson length in minutes (a 60-minute credit "
        "pays a 60-minute lesson only)."
    )
    total: int = Field(description="All prepaid lessons left, whatever their length.")
    entries: list[CreditEntryOut] = Field(description="The ledger, newest first (at most 200).")


# --- weekly series (core/series.py) -------------------------------------------------------------


class SeriesIn(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "conversation_id": "conv-1001",
                    "contact_id": "contact-42",
                    "start": "2026-12-01T16:00:00+01:00",
                    "end": "2026-12-01T17:00:00+01:00",
                    "weeks": 6,
                    "skip": [3],
                    "title": "Bijles wiskunde",
                    "dry_run": False,
                }
            ]
        }
    )

    conversation_id: Id
    contact_id: Id | None = Field(None, description="Required the first time a conversation is seen.")
    start: InstantIn = Field(description="The first week's start: one of the offered slots.")
    end: InstantIn = Field(description="start + the profile's lesson duration.")
    weeks: int = Field(ge=2, le=12, description="How many weeks the series spans (2-12), the first included.")
    skip: list[int] = Field(
        default_factory=list,
        max_length=12,
        description="Week numbers (1 = the first week) not to book, e.g. the taken ones of the dry run.",
    )
    title: Text = Field("", max_length=200)
    description: Text = Field("", max_length=4000)
    profile: Text | None = Field(
        None,
        max_length=40,
        description="Planning profile; the segment decides when omitted (a contact's profile override always wins).",
    )
    dry_run: bool = Field(False, description="Only tell per week whether it is free; book nothing.")


class SeriesWeekOut(BaseModel):
    week: int = Field(description="1 = the first week.")
    start: datetime | None = Field(
        description="Same weekday and local time as the first week; a booked lesson moved since: its time now."
    )
    end: datetime | None
    status: Literal["free", "taken", "booked", "skipped"] = Field(
        description="Dry run: free or taken. Booked: booked, or skipped (left out with skip)."
    )
    reason: str | None = Field(None, description="Why a week is taken (busy, a closure, ...).")
    tutor: str | None = None
    lesson_id: int | None = None
    alternatives: list[SlotOut] = Field(
        default_factory=list, description="For a taken week: free slots in that week, nearest first."
    )


class SeriesOut(BaseModel):
    series_id: int | None = Field(description="null for a dry run.")
    profile: str
    timezone: str
    dry_run: bool
    weeks: list[SeriesWeekOut]
    lessons: list[LessonOut] = Field(default_factory=list, description="The lessons booked, by start.")
    payment_url: str | None = Field(
        None, description="One Stripe Checkout for all the lessons, while they are held."
    )
    checkout_session_id: str | None = None
    amount: int | None = Field(None, description="Cents, for all the lessons together.")
    currency: str | None = None
    hold_expires_at: datetime | None = None
