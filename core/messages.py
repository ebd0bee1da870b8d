"""Customer-facing chat messages: the catalog (nl, en) and the outbox.

Every message goes through the outbox with a unique `dedupe_key`, which makes the seed's
"send_text_with_duplicate_check" atomic: queueing the same key twice stores it once, even from
two processes at the same moment. Delivery to the chat platform happens elsewhere (core/chat.py);
until then the bot can fetch pending messages through the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import clock, jobs
from core.config import get_settings
from core.models import OutboxMessage
from core.paging import DEFAULT_PAGE_SIZE, PageResult, clamp_page, page_bounds

LOCALES = ("nl", "en")

CATALOG: dict[str, dict[str, str]] = {
    "payment_success_message": {
        "nl": "Bedankt voor je betaling, we hebben hem ontvangen! Je krijgt zo de bevestiging van je les.",
        "en": "Thank you for your payment, we have received it! "
        "The confirmation of your lesson follows shortly.",
    },
    "series_payment_success": {
        "nl": "Bedankt voor je betaling, we hebben hem ontvangen! Je krijgt zo de bevestiging van je lessen.",
        "en": "Thank you for your payment, we have received it! "
        "The confirmation of your lessons follows shortly.",
    },
    "booking_confirmed": {
        "nl": "Je les is ingepland op {when}. Tot dan!",
        "en": "Your lesson is booked for {when}. See you then!",
    },
    "series_confirmed": {
        "nl": "Je reeks van {lessons} lessen is ingepland: {dates}. Tot dan!",
        "en": "Your series of {lessons} lessons is booked: {dates}. See you then!",
    },
    "booking_held": {
        "nl": "We houden {when} voor je vast tot {until}. Rond je betaling af via {url}",
        "en": "We are holding {when} for you until {until}. Complete your payment at {url}",
    },
    "payment_processing": {
        "nl": "Bedankt! Je betaling voor de les op {when} wordt nog verwerkt. We houden het "
        "tijdstip voor je vast en laten het je weten zodra het geld binnen is.",
        "en": "Thank you! Your payment for the lesson on {when} is still being processed. We "
        "keep the time for you and will let you know as soon as it has arrived.",
    },
    "series_payment_processing": {
        "nl": "Bedankt! Je betaling voor je reeks van {lessons} lessen ({dates}) wordt nog verwerkt. "
        "We houden de tijdstippen voor je vast en laten het je weten zodra het geld binnen is.",
        "en": "Thank you! Your payment for your series of {lessons} lessons ({dates}) is still being "
        "processed. We keep the times for you and will let you know as soon as it has arrived.",
    },
    "hold_expired": {
        "nl": "De betaaltermijn voor je les op {when} is verlopen, dus het tijdstip is weer "
        "vrijgegeven. Laat het weten als je een nieuw moment wilt kiezen.",
        "en": "The payment window for your lesson on {when} has passed and the slot was "
        "released. Let us know if you would like to pick a new time.",
    },
    "payment_failed": {
        "nl": "Je betaling voor de les op {when} is niet gelukt, dus het tijdstip is "
        "vrijgegeven. Probeer het gerust opnieuw.",
        "en": "Your payment for the lesson on {when} did not go through, so the slot was "
        "released. Feel free to try again.",
    },
    "series_hold_expired": {
        "nl": "De betaaltermijn voor je reeks van {lessons} lessen ({dates}) is verlopen, dus de "
        "tijdstippen zijn weer vrijgegeven. Laat het weten als je nieuwe momenten wilt kiezen.",
        "en": "The payment window for your series of {lessons} lessons ({dates}) has passed and the "
        "times were released. Let us know if you would like to pick new times.",
    },
    "series_payment_failed": {
        "nl": "Je betaling voor je reeks van {lessons} lessen ({dates}) is niet gelukt, dus de "
        "tijdstippen zijn vrijgegeven. Probeer het gerust opnieuw.",
        "en": "Your payment for your series of {lessons} lessons ({dates}) did not go through, so the "
        "times were released. Feel free to try again.",
    },
    "slot_lost": {
        "nl": "Je betaling is ontvangen, maar het tijdstip {when} is helaas net bezet geraakt. "
        "Kies een nieuw moment; je hoeft niet opnieuw te betalen.",
        "en": "Your payment was received, but {when} was just taken. "
        "Please choose a new time; you do not need to pay again.",
    },
    "paid_after_cancel": {
        "nl": "Je betaling voor de les op {when} is ontvangen, maar die les was al geannuleerd. "
        "Kies een nieuw moment; je hoeft niet opnieuw te betalen.",
        "en": "Your payment for the lesson on {when} was received, but that lesson had been "
        "cancelled. Please choose a new time; you do not need to pay again.",
    },
    "lesson_cancelled": {
        "nl": "Je les op {when} is geannuleerd.",
        "en": "Your lesson on {when} has been cancelled.",
    },
    "lesson_rescheduled": {
        "nl": "Je les is verplaatst naar {when}.",
        "en": "Your lesson has been moved to {when}.",
    },
    "lesson_cancelled_refund": {
        "nl": "Je les van {when} is geannuleerd. Je krijgt {amount} terug; dat staat binnen een "
        "paar werkdagen weer op je rekening.",
        "en": "Your lesson on {when} has been cancelled. You will get {amount} back; it shows up "
        "in your account within a few working days.",
    },
    "lesson_cancelled_credit": {
        "nl": "Je les van {when} is geannuleerd. De les staat weer als tegoed voor je klaar: "
        "je volgende boeking kost je niets.",
        "en": "Your lesson on {when} has been cancelled. The lesson is back in your credit: "
        "your next booking costs you nothing.",
    },
    "bundle_paid": {
        "nl": "Bedankt voor je betaling! Je hebt nu {lessons} lessen van {minutes} minuten tegoed. "
        "Boek je eerste les wanneer je wilt.",
        "en": "Thank you for your payment! You now have {lessons} lessons of {minutes} minutes in "
        "credit. Book your first lesson whenever you like.",
    },
    "lesson_reminder": {
        "nl": "Herinnering: je hebt les met {tutor} op {when}. Tot dan!",
        "en": "Reminder: you have a lesson with {tutor} on {when}. See you then!",
    },
    "refund_issued": {
        "nl": "We hebben je betaling terugbetaald. Het kan een paar dagen duren voordat je het "
        "bedrag terugziet.",
        "en": "We have refunded your payment. It may take a few days to show up.",
    },
}

DUTCH_DAYS = ["maandag", "dinsdag", "woensdag", "donderdag", "vrijdag", "zaterdag", "zondag"]
DUTCH_MONTHS = [
    "januari",
    "februari",
    "maart",
    "april",
    "mei",
    "juni",
    "juli",
    "augustus",
    "september",
    "oktober",
    "november",
    "december",
]
EN_DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def t(key: str, locale: str = "nl", **params: Any) -> str:
    """The message `key` in `locale` (falls back to nl), formatted with params."""
    entry = CATALOG.get(key)
    if entry is None:
        raise KeyError(f"unknown message key {key!r}")
    template = entry.get(locale) or entry["nl"]
    return template.format_map(_Defaults(params))


class _Defaults(dict):
    def __missing__(self, key: str) -> str:
        return ""


def format_when(start, locale: str = "nl", tz=None) -> str:  # noqa: ANN001
    """'dinsdag 1 december om 10:00' in the business zone."""
    local = start.astimezone(tz or get_settings().tz)
    if locale == "en":
        return f"{EN_DAYS[local.weekday()]} {local:%d %B} at {local:%H:%M}".replace(" 0", " ")
    return f"{DUTCH_DAYS[local.weekday()]} {local.day} {DUTCH_MONTHS[local.month - 1]} om {local:%H:%M}"


DUTCH_DAYS_SHORT = ["ma", "di", "wo", "do", "vr", "za", "zo"]
DUTCH_MONTHS_SHORT = ["jan", "feb", "mrt", "apr", "mei", "jun", "jul", "aug", "sep", "okt", "nov", "dec"]


def format_short(start, locale: str = "nl", tz=None) -> str:  # noqa: ANN001
    """'ma 7 dec om 16:00' (or 'Mon 7 Dec at 16:00') in the business zone: chat-sized."""
    local = start.astimezone(tz or get_settings().tz)
    at = "at" if locale == "en" else "om"
    return f"{_short_day(local, locale)} {at} {local:%H:%M}"


def _short_day(local: datetime, locale: str) -> str:
    if locale == "en":
        return f"{EN_DAYS[local.weekday()][:3]} {local.day} {local:%b}"
    return f"{DUTCH_DAYS_SHORT[local.weekday()]} {local.day} {DUTCH_MONTHS_SHORT[local.month - 1]}"


def format_dates(starts: Sequence[datetime], locale: str = "nl", tz=None) -> str:  # noqa: ANN001
    """A series' lessons, chat-sized: 'ma 7 dec, ma 14 dec en ma 21 dec, steeds om 16:00' when
    they share their time (a series does, unless a lesson was moved), else each with its time:
    'ma 7 dec om 16:00, di 15 dec om 17:30 en ma 21 dec om 16:00'."""
    local = [s.astimezone(tz or get_settings().tz) for s in starts]
    times = {f"{x:%H:%M}" for x in local}
    if len(local) > 1 and len(times) == 1:
        items = [_short_day(x, locale) for x in local]
        each = "each at" if locale == "en" else "steeds om"
        return f"{_join(items, locale)}, {each} {times.pop()}"
    return _join([format_short(x, locale) for x in local], locale)


def _join(items: list[str], locale: str) -> str:
    if len(items) < 2:
        return "".join(items)
    return ", ".join(items[:-1]) + (" and " if locale == "en" else " en ") + items[-1]


def format_money(cents: int, currency: str = "eur", locale: str = "nl") -> str:
    """'€ 45,00' (nl) or '€45.00' (en)."""
    symbol = "€" if (currency or "eur").lower() == "eur" else (currency or "").upper() + " "
    whole, part = divmod(int(cents), 100)
    if locale == "en":
        return f"{symbol}{whole:,}.{part:02d}"
    return f"{symbol} {whole:,}".replace(",", ".") + f",{part:02d}"


def queue_message(
    session: Session,
    conversation_id: str,
    key: str,
    dedupe_key: str,
    locale: str = "nl",
    template: dict[str, Any] | None = None,
    **params: Any,
) -> OutboxMessage | None:
    """Queue `key` for the conversation once per dedupe_key; returns None if already queued.
    With `template` (Chatwoot's template_params) the chat platform sends that WhatsApp template;
    the text stays the message as people read it.

    Runs inside the caller's transaction (a SAVEPOINT guards the unique insert), so a rollback
    of the caller also un-queues the message. Its delivery to the chat platform is a `chat.send`
    job written in the same transaction (core/chat.py carries it out).
    """
    existing = session.exec(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key)).first()
    if existing is not None:
        return None
    message = OutboxMessage(
        conversation_id=conversation_id,
        dedupe_key=dedupe_key,
        key=key,
        locale=locale,
        text=t(key, locale, **params),
        template=template,
        created_at=clock.now(),
    )
    try:
        with session.begin_nested():
            session.add(message)
    except IntegrityError:
        return None
    jobs.enqueue(
        session,
        "chat.send",
        f"chat.send:{message.id}",
        {"message_id": message.id},
        subject=f"chat:{conversation_id}",
    )
    return message


def pending_messages(
    session: Session, conversation_id: str, status: str | None = "pending"
) -> list[OutboxMessage]:
    stmt = select(OutboxMessage).where(OutboxMessage.conversation_id == conversation_id)
    if status:
        stmt = stmt.where(OutboxMessage.status == status)
    return list(session.exec(stmt.order_by(col(OutboxMessage.id))).all())


def outbox_counts(session: Session) -> dict[str, int]:
    rows = session.exec(select(OutboxMessage.status, func.count()).group_by(col(OutboxMessage.status))).all()
    return {status: count for status, count in rows}


@dataclass(frozen=True, slots=True)
class OutboxRow:
    """A message in the outbox, as the Integrations page lists it."""

    id: int
    created_at: datetime
    conversation_id: str
    key: str | None  # the catalog key the text came from
    status: str  # pending | sent | failed
    attempts: int
    last_error: str | None
    sent_at: datetime | None
    text: str


def outbox_page(
    session: Session, status: str | None = None, page: int = 1, page_size: int = DEFAULT_PAGE_SIZE
) -> PageResult[OutboxRow]:
    page, page_size = page_bounds(page, page_size)
    where = [col(OutboxMessage.status) == status] if status else []
    total = session.exec(select(func.count(col(OutboxMessage.id))).where(*where)).one()
    page = clamp_page(page, page_size, total)
    rows = session.execute(
        # sqlmodel's select() is typed for at most four columns
        select(
            OutboxMessage.id,
            OutboxMessage.created_at,  # type: ignore[call-overload]
            OutboxMessage.conversation_id,
            OutboxMessage.key,
            OutboxMessage.status,
            OutboxMessage.attempts,
            OutboxMessage.last_error,
            OutboxMessage.sent_at,
            OutboxMessage.text,
        )
        .where(*where)
        .order_by(col(OutboxMessage.id).desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return PageResult([OutboxRow(**r._mapping) for r in rows], total, page, page_size)
