"""SQLModel tables: the one data model both processes share.

Storage is UTC everywhere. `UTCDateTime` stores naive UTC (SQLite has no time zones) and hands
back aware UTC datetimes, and it refuses naive input, so a naive datetime never gets guessed.
Names follow DESIGN.md and the seed's attribute names.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any, Protocol

from sqlalchemy import JSON, Column, DateTime, Index, UniqueConstraint, false, true
from sqlalchemy.ext.mutable import MutableDict, MutableList
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from core import clock

# Every status is a StrEnum defined here, once. StrEnum members compare equal to their
# strings, so rows written before the enums existed read back the same.


class LessonStatus(StrEnum):
    HELD = "held"  # claimed, waiting for the customer to pay (until hold_expires_at)
    AWAITING_PAYMENT = "awaiting_payment"  # checkout done, delayed method still settling
    CONFIRMED = "confirmed"
    NEEDS_RESCHEDULE = "needs_reschedule"  # paid, but its slot was lost: pick a new time
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class CalendarSync(StrEnum):
    PENDING = "pending"  # the calendar job has not (yet) made the calendar match the lesson
    SYNCED = "synced"
    FAILED = "failed"  # the calendar refused for good; staff must look


class LessonOutcome(StrEnum):
    ATTENDED = "attended"
    NO_SHOW = "no_show"


class PaymentStatus(StrEnum):
    OPEN = "open"
    PROCESSING = "processing"  # checkout completed with a delayed payment method
    PAID = "paid"
    FAILED = "failed"
    EXPIRED = "expired"
    REFUNDED = "refunded"
    PARTIALLY_REFUNDED = "partially_refunded"
    DISPUTED = "disputed"


class JobStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class MessageStatus(StrEnum):
    PENDING = "pending"
    SENDING = "sending"
    SENT = "sent"
    FAILED = "failed"


# Short names the code has always used.
HELD = LessonStatus.HELD
AWAITING_PAYMENT = LessonStatus.AWAITING_PAYMENT
CONFIRMED = LessonStatus.CONFIRMED
NEEDS_RESCHEDULE = LessonStatus.NEEDS_RESCHEDULE
CANCELLED = LessonStatus.CANCELLED
EXPIRED = LessonStatus.EXPIRED
LESSON_STATUSES = tuple(LessonStatus)
# These occupy their slot (a held or awaiting_payment lesson only until hold_expires_at).
BLOCKING_STATUSES = (HELD, AWAITING_PAYMENT, CONFIRMED)
WAITING_FOR_PAYMENT = (HELD, AWAITING_PAYMENT)

PAYMENT_STATUSES = tuple(PaymentStatus)

ROLES = ("tutor", "admin", "finance")
WHITELISTS = ("weekend", "returning_broadcast")
SEGMENTS = ("new", "existing", "weekend", "returning_broadcast")


class _Stored(Protocol):
    id: int | None


def stored_id(row: _Stored) -> int:
    """The id of a row read from (or flushed to) the database. SQLModel types `id` as
    `int | None` because a row not yet inserted has none; asking a stored row is the norm."""
    if row.id is None:
        raise ValueError(f"{type(row).__name__} has no id: it was never stored")
    return row.id


class UTCDateTime(TypeDecorator):
    """Aware datetimes in, aware UTC datetimes out; naive UTC in the column."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use an aware datetime")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


def _dt(**kw: Any) -> Any:
    nullable = kw.pop("nullable", False)
    index = kw.pop("index", False)
    return Field(sa_column=Column(UTCDateTime(), nullable=nullable, index=index), **kw)


def _json_dict() -> Any:
    return Field(default_factory=dict, sa_column=Column(MutableDict.as_mutable(JSON), nullable=False))


def _now() -> datetime:
    return clock.now()


class PlanningProfile(SQLModel, table=True):
    name: str = Field(primary_key=True, max_length=40)
    duration_minutes: int = 60
    earliest_hour: int = 9
    latest_hour: int = 21
    min_lead_minutes: int = 360
    days_ahead: int = 14
    exclude_weekends: bool = True
    allowed_weekdays: list[int] | None = Field(
        default=None, sa_column=Column(MutableList.as_mutable(JSON), nullable=True)
    )
    slot_step_minutes: int = 60
    max_suggestions: int = 6
    buffer_minutes: int = 0
    max_per_day: int | None = None
    requires_payment: bool = True
    active: bool = True
    # What a customer may do through the bot (core/self_service.py): cancel or move a lesson up
    # to this many hours before it starts; an on-time cancel of a paid lesson is refunded.
    cancel_notice_hours: int = Field(default=24, sa_column_kwargs={"server_default": "24"})
    # Hours before the start at which a confirmed lesson is reminded (core/reminders.py).
    reminder_hours: list[int] = Field(
        default_factory=lambda: [24],
        sa_column=Column(MutableList.as_mutable(JSON), nullable=False, server_default="[24]"),
    )
    on_time_cancel: str = Field(
        default="refund", max_length=20, sa_column_kwargs={"server_default": "refund"}
    )
    # Closures (core/availability.py): public holidays are never offered unless switched off;
    # school holidays of one region (noord | midden | zuid) only when switched on.
    public_holidays: bool = Field(default=True, sa_column_kwargs={"server_default": true()})
    school_holidays: str | None = Field(default=None, max_length=10)
    updated_at: datetime = _dt(default_factory=_now)


class SegmentProfile(SQLModel, table=True):
    segment: str = Field(primary_key=True, max_length=40)
    profile_name: str = Field(foreign_key="planningprofile.name")


class Contact(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=120)
    name: str | None = None
    email: str | None = Field(default=None, index=True)
    phone: str | None = Field(default=None, index=True)
    attributes: dict[str, Any] = _json_dict()
    segment_override: str | None = None
    profile_override: str | None = Field(default=None, foreign_key="planningprofile.name")
    # Trust boundaries (core/contacts.py): an e-mail address only matches a whitelist once staff
    # entered or confirmed it, and the bot never rewrites the identity of a contact staff maintain.
    email_confirmed: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    staff_maintained: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    created_at: datetime = _dt(default_factory=_now)
    updated_at: datetime = _dt(default_factory=_now)


class WhitelistEntry(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("list", "identifier", name="uq_whitelist_list_identifier"),)

    id: int | None = Field(default=None, primary_key=True)
    list: str = Field(max_length=40)
    identifier: str = Field(max_length=200, index=True)
    note: str | None = None
    added_by: str | None = None
    added_at: datetime = _dt(default_factory=_now)


class Conversation(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=120)
    contact_id: str = Field(foreign_key="contact.id", index=True)
    attributes: dict[str, Any] = _json_dict()
    created_at: datetime = _dt(default_factory=_now)


class Tutor(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    name: str
    email: str | None = Field(default=None, index=True)
    calendar_id: str
    # Profiles this tutor teaches; null means every profile.
    profiles: list[str] | None = Field(
        default=None, sa_column=Column(MutableList.as_mutable(JSON), nullable=True)
    )
    active: bool = True


class BusyBlock(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    tutor_id: int = Field(foreign_key="tutor.id", index=True)
    start: datetime = _dt(index=True)
    end: datetime = _dt(index=True)
    reason: str | None = None
    created_by: str | None = None


CLOSURE_SOURCES = ("holidays", "import", "admin")
SCHOOL_REGIONS = ("noord", "midden", "zuid")


class Closure(SQLModel, table=True):
    """Local dates (inclusive) when nobody teaches: a public holiday (source `holidays`: a row
    only records an admin's "does not apply" for the package's holiday on `start_date`), a school
    holiday of a region (`import`, editable), or a business closure (`admin`)."""

    id: int | None = Field(default=None, primary_key=True)
    start_date: date = Field(index=True)
    end_date: date = Field(index=True)
    name: str = Field(max_length=120)
    source: str = Field(max_length=20)
    region: str | None = Field(default=None, max_length=10)
    active: bool = True
    created_by: str | None = None
    created_at: datetime = _dt(default_factory=_now)


class TutorHours(SQLModel, table=True):
    """A tutor's weekly working hours: local wall-clock minutes after midnight on `weekday`
    (0 = Monday), [start_minute, end_minute); several blocks a day. No rows: the profile's window."""

    id: int | None = Field(default=None, primary_key=True)
    tutor_id: int = Field(foreign_key="tutor.id", index=True)
    weekday: int
    start_minute: int
    end_minute: int


class LessonSeries(SQLModel, table=True):
    """A weekly series booked in one request (core/series.py): its lessons carry `series_id`, and
    so does the one Payment that pays them all. `start` is the first week's start as asked (the
    repeat of the same request finds the series by it); `weeks` how many weeks it spans, of which
    `lessons` were booked (the weeks the customer skipped are not)."""

    __table_args__ = (Index("ix_lessonseries_conversation_start", "conversation_id", "start"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversation.id")
    contact_id: str = Field(foreign_key="contact.id")
    profile_name: str = Field(foreign_key="planningprofile.name")
    start: datetime = _dt()
    weeks: int
    lessons: int
    created_at: datetime = _dt(default_factory=_now)


class Lesson(SQLModel, table=True):
    __table_args__ = (
        Index("ix_lesson_tutor_status_start", "tutor_id", "status", "start"),
        Index("ix_lesson_conversation_start", "conversation_id", "start"),
        # Insights, from the index alone: a period's lessons per status and outcome, and each
        # conversation's first booking and whether one was paid or attended. The first also
        # serves every other "lessons by start" read (the console's list, the unmarked ones).
        Index("ix_lesson_start_status_outcome", "start", "status", "outcome"),
        Index(
            "ix_lesson_conversation_created_status_outcome",
            "conversation_id",
            "created_at",
            "status",
            "outcome",
        ),
        # Lessons by last change, the status read from the index: paid-but-cancelled (console).
        # Not (status, updated_at): every "lessons in status X" query would then read the rows in
        # updated_at order instead of ix_lesson_status's (rowid) order.
        Index("ix_lesson_updated_at_status", "updated_at", "status"),
    )

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversation.id")
    contact_id: str = Field(foreign_key="contact.id", index=True)
    tutor_id: int = Field(foreign_key="tutor.id")
    profile_name: str = Field(foreign_key="planningprofile.name")
    start: datetime = _dt()  # ix_lesson_start_status_outcome
    end: datetime = _dt()
    title: str = ""
    description: str = ""
    status: str = Field(default=HELD, index=True, max_length=20)
    hold_expires_at: datetime | None = _dt(default=None, nullable=True)
    calendar_event_id: str | None = None
    # None: no invite attempted (no email); True: Google sent it; False: refused (see note).
    invite_sent: bool | None = None
    calendar_note: str | None = None
    cancel_reason: str | None = None
    # Whether the tutor's calendar matches this lesson yet (None: nothing to sync, e.g. held).
    calendar_sync: str | None = Field(default=None, index=True, max_length=20)
    outcome: str | None = Field(default=None, max_length=20)
    # One of a weekly series (LessonSeries), paid together; null for a single booking.
    series_id: int | None = Field(default=None, foreign_key="lessonseries.id", index=True)
    # Which week of its series (1 = the first), kept when the lesson is moved; null for a single
    # booking and for series lessons booked before migration 0016 (found by their start then).
    series_week: int | None = None
    created_at: datetime = _dt(default_factory=_now)
    updated_at: datetime = _dt(default_factory=_now)


# Indexes only the migrations keep: PostgreSQL's trigram index for the payment search (an
# expression with pg_trgm's operator class; migration 0017). Autogenerate and the schema test
# leave them out of the comparison with the models.
MIGRATION_ONLY_INDEXES = frozenset({"ix_payment_search_trgm"})


class Payment(SQLModel, table=True):
    __table_args__ = (
        # A lesson's payments (and, from the index alone, whether one is paid: paid-but-cancelled).
        Index("ix_payment_lesson_id_status", "lesson_id", "status"),
        # The console's text search matches the ids in the index, reading only the rows found.
        Index(
            "ix_payment_search",
            "created_at",
            "checkout_session_id",
            "order_id",
            "payment_intent_id",
            "contact_id",
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    checkout_session_id: str = Field(unique=True, max_length=255)
    payment_intent_id: str | None = Field(default=None, index=True)
    order_id: str = Field(index=True, max_length=255)
    conversation_id: str | None = Field(default=None, foreign_key="conversation.id", index=True)
    contact_id: str | None = Field(default=None, foreign_key="contact.id")
    lesson_id: int | None = Field(default=None, foreign_key="lesson.id")  # ix_payment_lesson_id_status
    segment: str | None = None
    minutes: int
    price_id: str
    amount: int | None = None  # cents
    currency: str | None = None
    status: str = Field(default="open", index=True, max_length=20)
    refunded_amount: int = Field(default=0, sa_column_kwargs={"server_default": "0"})  # cents, as Stripe says
    # A chargeback: Stripe's dispute status (needs_response, under_review, won, lost, ...) and
    # the date the evidence is due; the payment stays `disputed` (DESIGN).
    dispute_status: str | None = Field(default=None, max_length=40)
    dispute_due_by: datetime | None = _dt(default=None, nullable=True)
    # What the payment buys: one lesson, a bundle of `quantity` prepaid lessons (credits), or the
    # `quantity` lessons of a weekly series (`series_id`; `lesson_id` is then null).
    series_id: int | None = Field(default=None, foreign_key="lessonseries.id", index=True)
    kind: str = Field(default="lesson", max_length=20, sa_column_kwargs={"server_default": "lesson"})
    quantity: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    # The receipt Stripe made when STRIPE_INVOICES is on: its id and hosted page.
    invoice_id: str | None = Field(default=None, max_length=255, index=True)
    invoice_url: str | None = None
    url: str | None = None
    expires_at: datetime | None = _dt(default=None, nullable=True)
    paid_at: datetime | None = _dt(default=None, nullable=True)
    created_at: datetime = _dt(default_factory=_now, index=True)
    updated_at: datetime = _dt(default_factory=_now)


class PaymentDaily(SQLModel, table=True):
    """The console's payment totals, kept up to date instead of recomputed per view: count and
    amount of the payments created on one local day (business zone) per status and currency.
    Every change of a payment moves it from one row to another in the same transaction
    (core/payments/rollup.py). `shard` (payment id mod a few) spreads concurrent webhooks of one
    day over several rows so they do not queue on one row lock; readers sum the shards."""

    day: date = Field(primary_key=True)
    status: str = Field(primary_key=True, max_length=20)
    currency: str = Field(primary_key=True, max_length=10)
    shard: int = Field(default=0, primary_key=True)
    count: int = 0
    amount: int = 0  # cents


class PaymentPaidDaily(SQLModel, table=True):
    """The money that came in, per local day of `paid_at` (business zone) and currency: how many
    payments were paid that day, their amount, and how much of them was refunded since. Insights
    reads a year of revenue from it instead of adding up every paid payment per view; kept like
    PaymentDaily, in the transaction that changes a payment (core/payments/rollup.py)."""

    day: date = Field(primary_key=True)
    currency: str = Field(primary_key=True, max_length=10)
    shard: int = Field(default=0, primary_key=True)
    count: int = 0
    amount: int = 0  # cents
    refunded_amount: int = 0  # cents


class CreditEntry(SQLModel, table=True):
    """One line of a contact's prepaid-lesson ledger (core/credits.py): +n bought or granted,
    -1 used by a lesson, +1 returned by an on-time cancel. The balance per lesson length is the
    sum; it never goes below 0. `key` makes an automatic entry happen once (one use per lesson,
    one return per lesson, one purchase per payment); manual corrections have none."""

    __table_args__ = (Index("ix_creditentry_contact_minutes", "contact_id", "minutes"),)

    id: int | None = Field(default=None, primary_key=True)
    contact_id: str = Field(foreign_key="contact.id")
    minutes: int  # the lesson length the credit is for (60 or 90)
    delta: int
    kind: str = Field(max_length=20)  # purchase | use | return | grant | refund
    reason: str = Field(default="", max_length=500)
    key: str | None = Field(default=None, unique=True, max_length=120)
    lesson_id: int | None = Field(default=None, foreign_key="lesson.id", index=True)
    payment_id: int | None = Field(default=None, foreign_key="payment.id", index=True)
    actor: str = Field(default="system", max_length=255)
    created_at: datetime = _dt(default_factory=_now)


class SlotOffer(SQLModel, table=True):
    """One answer of the bot API's slot request: who was offered how many slots, when, in which
    segment. The first step of the Insights funnel (offered → booked → paid → attended)."""

    __table_args__ = (Index("ix_slotoffer_conversation_at", "conversation_id", "offered_at"),)

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversation.id", max_length=120)
    contact_id: str = Field(max_length=255)
    profile_name: str = Field(max_length=80)
    segment: str | None = Field(default=None, max_length=40)
    slots: int
    offered_at: datetime = _dt(default_factory=_now, index=True)


class CalendarMirror(SQLModel, table=True):
    """The sync state of one tutor calendar's local mirror (Google's incremental sync)."""

    calendar_id: str = Field(primary_key=True, max_length=255)
    sync_token: str | None = None  # Google's nextSyncToken; None = the next sync is a full one
    synced_at: datetime | None = _dt(default=None, nullable=True)  # last successful sync
    full_sync_at: datetime | None = _dt(default=None, nullable=True)
    events: int = 0  # busy events mirrored after the last sync
    version: int = 0  # +1 per sync that changed something: processes cache the busy list per version
    last_error: str | None = None
    last_error_at: datetime | None = _dt(default=None, nullable=True)
    # Push notifications (events.watch), when GCAL_PUBLIC_WEBHOOK_URL is set: the open channel,
    # the secret token Google echoes back, and when Google last said something changed.
    channel_id: str | None = Field(default=None, max_length=64, index=True)
    channel_token: str | None = Field(default=None, max_length=128)
    channel_resource_id: str | None = Field(default=None, max_length=255)
    channel_expires_at: datetime | None = _dt(default=None, nullable=True)
    notified_at: datetime | None = _dt(default=None, nullable=True)


class MirroredEvent(SQLModel, table=True):
    """One busy event of a tutor calendar as the last sync saw it (opaque, not cancelled, not
    declined); free ("transparent"), cancelled and declined events are not kept."""

    __table_args__ = (
        UniqueConstraint("calendar_id", "event_id", name="uq_mirroredevent_calendar_event"),
        Index("ix_mirroredevent_calendar_start", "calendar_id", "start"),
    )

    id: int | None = Field(default=None, primary_key=True)
    calendar_id: str = Field(max_length=255)
    event_id: str = Field(max_length=1024)
    start: datetime = _dt()
    end: datetime = _dt()


class StripeEvent(SQLModel, table=True):
    id: str = Field(primary_key=True, max_length=255)
    type: str = Field(index=True)
    payload: str  # the raw JSON body as Stripe sent it
    received_at: datetime = _dt(default_factory=_now, index=True)
    processed_at: datetime | None = _dt(default=None, nullable=True)
    status: str = Field(default="processed", index=True, max_length=20)  # processed|failed|ignored
    error: str | None = None
    attempts: int = 1


class OutboxMessage(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(foreign_key="conversation.id", index=True)
    dedupe_key: str = Field(unique=True, max_length=255)
    key: str | None = None  # the catalog key the text came from
    locale: str = "nl"
    text: str
    # A WhatsApp template to send instead of free text (Chatwoot's template_params), if any.
    template: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    status: str = Field(default="pending", index=True, max_length=20)  # pending|sent|failed
    attempts: int = 0
    last_error: str | None = None
    next_attempt_at: datetime | None = _dt(default=None, nullable=True)
    created_at: datetime = _dt(default_factory=_now)
    sent_at: datetime | None = _dt(default=None, nullable=True)


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True, max_length=255)
    name: str = ""
    role: str = Field(default="tutor", max_length=20)
    password_hash: str | None = None
    active: bool = True
    created_at: datetime = _dt(default_factory=_now)
    last_login_at: datetime | None = _dt(default=None, nullable=True)
    # Bumped by a password reset, a role change and a (de)activation: a console session
    # remembers the version it signed in with and ends when it differs (ui/auth.py).
    session_version: int = Field(default=0, sa_column_kwargs={"server_default": "0"})


class SignInAttempt(SQLModel, table=True):
    """A console password check that failed or is under way (core/signin.py). A success deletes
    the rows of its account and address; rows older than the failure window are pruned."""

    __table_args__ = (Index("ix_signinattempt_account_at", "account", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    account: str = Field(max_length=64)  # SHA-256 of the normalised e-mail typed, never the text
    address: str = Field(max_length=64)  # core.signin.address_key: an IP, an IPv6 /64 or "unknown"
    at: datetime = _dt(index=True)  # when the password is (or was) checked


class AuditLog(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    actor: str
    action: str  # e.g. profile.update, whitelist.add, lesson.cancel
    entity: str
    entity_id: str | None = None
    before: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    after: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    at: datetime = _dt(default_factory=_now, index=True)


class IntegrationStatus(SQLModel, table=True):
    """Last known health of an outside service, written by whichever process talked to it,
    so the console shows the receiver's Google/Stripe/chat errors too."""

    name: str = Field(primary_key=True, max_length=40)  # google | stripe | chat | webhook
    ok: bool = True
    detail: str | None = None
    last_ok_at: datetime | None = _dt(default=None, nullable=True)
    last_error_at: datetime | None = _dt(default=None, nullable=True)
    last_error: str | None = None


class Job(SQLModel, table=True):
    """One outside effect (calendar, chat, Stripe) to carry out after the commit that asked for
    it; see core/jobs.py. `key` is the idempotency key; `subject` serialises the jobs of one
    thing (e.g. all calendar jobs of lesson 42 run one at a time)."""

    __table_args__ = (Index("ix_job_status_run_after", "status", "run_after"),)

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=40, index=True)
    key: str = Field(unique=True, max_length=255)
    subject: str | None = Field(default=None, max_length=120, index=True)
    payload: dict[str, Any] = _json_dict()
    status: str = Field(default=JobStatus.PENDING, max_length=20)
    run_after: datetime = _dt(default_factory=_now)
    attempts: int = 0
    last_error: str | None = None
    result: str | None = None
    lease_owner: str | None = Field(default=None, max_length=80)
    lease_until: datetime | None = _dt(default=None, nullable=True)
    created_at: datetime = _dt(default_factory=_now)
    updated_at: datetime = _dt(default_factory=_now)
    done_at: datetime | None = _dt(default=None, nullable=True)
    # Asked for again while it ran (enqueue with rearm): it runs once more when this run ends,
    # so that it sees the state that asked for it (e.g. a lesson cancelled while its event was
    # being made).
    rearmed: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
