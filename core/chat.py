"""Delivering outbox messages to the chat platform (Chatwoot), and the background worker.

Chatwoot is used when CHATWOOT_URL, CHATWOOT_ACCOUNT_ID and CHATWOOT_API_TOKEN are all set.
Otherwise messages stay `pending` and the bot fetches (and acknowledges) them through the API.

Delivery guarantees:
- A message is *claimed* in a write transaction before it is sent: status `sending`, with
  `next_attempt_at` used as the claim's lease (now + 2 minutes). Two workers, in one process
  or two, never claim the same message; a claim whose worker died is taken over once its
  lease has run out.
- Sent → `sent` with `sent_at`. Retryable failures (timeouts, 5xx, 429) → back to `pending`
  with exponential backoff (`attempts`, `last_error`, `next_attempt_at`; Chatwoot's
  Retry-After is honoured), `failed` after MAX_ATTEMPTS. Other 4xx mean the request itself is
  wrong (unknown conversation, bad token) and are not retried.
- Before a *repeated* attempt, the conversation's recent messages are read back: if the earlier
  attempt reached Chatwoot after all (a timeout after the server stored it, or a crash between
  sending and recording), the message is marked sent instead of going out twice.

Alongside a conversation's messages the seed's payment attributes are mirrored to Chatwoot as
conversation and contact custom attributes, so agents see them in the Chatwoot sidebar.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import quote

import httpx
from sqlalchemy import and_, or_
from sqlmodel import col, select

from core import clock
from core.config import Settings, get_settings, scrub
from core.db import is_sqlite, read_session, write_session
from core.errors import InvalidTransition, NotFound
from core.messages import pending_messages
from core.models import Contact, Conversation, IntegrationStatus, OutboxMessage
from core.segments import EXISTING_FLAGS
from core.status import status_row

log = logging.getLogger("lesplanner.chat")

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
MESSAGE_STATUSES = (PENDING, SENDING, SENT, FAILED)

CLAIM_LEASE = timedelta(minutes=2)  # a claim older than this belongs to a dead worker
MAX_ATTEMPTS = 8
BACKOFF_BASE_SECONDS = 10.0
BACKOFF_MAX_SECONDS = 30 * 60.0
TIMEOUT_SECONDS = 10.0
# A message we find in Chatwoot counts as ours when it is at most this much older than our row
# (clocks of two machines); older identical texts are an earlier, separate message.
CLOCK_SLACK = timedelta(minutes=2)

CONVERSATION_ATTRIBUTES = ("payment_completed", "payment_intent_id", "payment_amount", "payment_currency")
CONTACT_ATTRIBUTES = CONVERSATION_ATTRIBUTES + EXISTING_FLAGS + ("customer_status",)

NOT_CONFIGURED = ("not configured: set CHATWOOT_URL, CHATWOOT_ACCOUNT_ID and CHATWOOT_API_TOKEN; "
                  "until then messages wait in the outbox for the bot")


# --- configuration and the HTTP client --------------------------------------------------------


@dataclass(frozen=True)
class ChatwootConfig:
    url: str
    account_id: str
    token: str

    @classmethod
    def from_settings(cls, settings: Settings) -> ChatwootConfig | None:
        url = (settings.chatwoot_url or "").strip().rstrip("/")
        account = (settings.chatwoot_account_id or "").strip()
        token = settings.secret("chatwoot_api_token")
        if not (url and account and token):
            return None
        return cls(url, account, token)


def is_configured(settings: Settings | None = None) -> bool:
    return ChatwootConfig.from_settings(settings or get_settings()) is not None


class DeliveryError(Exception):
    def __init__(self, message: str, *, retryable: bool, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if not value:
        return None
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        return max((parsedate_to_datetime(value) - clock.now()).total_seconds(), 0.0)
    except (TypeError, ValueError):
        return None


class ChatwootClient:
    """The four Chatwoot application-API calls Lesplanner needs (header `api_access_token`)."""

    def __init__(self, config: ChatwootConfig, timeout: float = TIMEOUT_SECONDS) -> None:
        self._http = httpx.Client(
            base_url=f"{config.url}/api/v1/accounts/{quote(config.account_id, safe='')}",
            headers={"api_access_token": config.token, "Accept": "application/json"},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 5.0)),
        )

    def __enter__(self) -> ChatwootClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self._http.close()

    def _call(self, method: str, path: str, json: dict[str, Any] | None = None) -> httpx.Response:
        try:
            response = self._http.request(method, path, json=json)
        except httpx.TimeoutException:
            raise DeliveryError(f"Chatwoot did not answer {method} {path} in time", retryable=True) from None
        except httpx.TransportError as exc:
            raise DeliveryError(f"Chatwoot unreachable ({type(exc).__name__})", retryable=True) from None
        if response.is_success:
            return response
        status = response.status_code
        retryable = status in (408, 429) or status >= 500
        raise DeliveryError(
            f"Chatwoot answered {status} to {method} {path}: {response.text[:200]}",
            retryable=retryable, retry_after=_retry_after(response) if retryable else None,
        )

    @staticmethod
    def _conversation(conversation_id: str) -> str:
        return f"/conversations/{quote(str(conversation_id), safe='')}"

    def send_message(self, conversation_id: str, text: str) -> None:
        self._call("POST", f"{self._conversation(conversation_id)}/messages",
                   {"content": text, "message_type": "outgoing", "private": False})

    def recent_messages(self, conversation_id: str) -> list[dict[str, Any]]:
        body = self._call("GET", f"{self._conversation(conversation_id)}/messages").json()
        payload = body.get("payload", []) if isinstance(body, dict) else body
        return payload if isinstance(payload, list) else []

    def set_conversation_attributes(self, conversation_id: str, attributes: dict[str, Any]) -> None:
        self._call("POST", f"{self._conversation(conversation_id)}/custom_attributes",
                   {"custom_attributes": attributes})

    def set_contact_attributes(self, contact_id: str, attributes: dict[str, Any]) -> None:
        # Chatwoot merges these into the contact's existing custom attributes.
        self._call("PUT", f"/contacts/{quote(str(contact_id), safe='')}", {"custom_attributes": attributes})


# --- claiming and recording -------------------------------------------------------------------


@dataclass
class Claimed:
    id: int
    conversation_id: str
    contact_id: str | None
    text: str
    created_at: datetime
    attempts: int
    conversation_attributes: dict[str, Any]
    contact_attributes: dict[str, Any]


@dataclass
class DeliveryReport:
    configured: bool = True
    claimed: int = 0
    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def detail(self) -> str:
        if not self.configured:
            return NOT_CONFIGURED
        if not self.claimed:
            return "nothing due"
        return f"{self.sent} sent, {self.retried} to retry, {self.failed} failed"

    def __str__(self) -> str:
        return self.detail


def _due(now: datetime) -> Any:
    return or_(
        and_(col(OutboxMessage.status) == PENDING,
             or_(col(OutboxMessage.next_attempt_at).is_(None), col(OutboxMessage.next_attempt_at) <= now)),
        and_(col(OutboxMessage.status) == SENDING, col(OutboxMessage.next_attempt_at) <= now),
    )


def _pick(attributes: dict[str, Any] | None, keys: tuple[str, ...]) -> dict[str, Any]:
    attributes = attributes or {}
    return {k: attributes[k] for k in keys if k in attributes}


def claim_due(limit: int = 50, now: datetime | None = None) -> list[Claimed]:
    """Claim up to `limit` due messages for this worker (see the module docstring)."""
    now = now or clock.now()
    with read_session() as session:  # the common case, nothing due, takes no write lock
        if session.exec(select(OutboxMessage.id).where(_due(now)).limit(1)).first() is None:
            return []
    claimed: list[Claimed] = []
    with write_session() as session:
        stmt = select(OutboxMessage).where(_due(now)).order_by(col(OutboxMessage.id)).limit(limit)
        if not is_sqlite(session.get_bind()):
            stmt = stmt.with_for_update(skip_locked=True)
        for message in session.exec(stmt).all():
            message.status = SENDING
            message.attempts += 1
            message.next_attempt_at = now + CLAIM_LEASE
            session.add(message)
            conversation = session.get(Conversation, message.conversation_id)
            contact = session.get(Contact, conversation.contact_id) if conversation else None
            claimed.append(Claimed(
                id=message.id, conversation_id=message.conversation_id,
                contact_id=contact.id if contact else None, text=message.text,
                created_at=message.created_at, attempts=message.attempts,
                conversation_attributes=_pick(conversation.attributes if conversation else None,
                                              CONVERSATION_ATTRIBUTES),
                contact_attributes=_pick(contact.attributes if contact else None, CONTACT_ATTRIBUTES),
            ))
    return claimed


def _settle(item: Claimed, **changes: Any) -> bool:
    """Apply `changes` if our claim still stands (nobody took it over after the lease ran out)."""
    with write_session() as session:
        message = session.get(OutboxMessage, item.id)
        if message is None or message.status != SENDING or message.attempts != item.attempts:
            return False
        for name, value in changes.items():
            setattr(message, name, value)
        session.add(message)
    return True


def backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    """Wait before attempt `attempts + 1`: 10 s, 20 s, 40 s, ... capped at 30 minutes, never
    shorter than the server's Retry-After."""
    seconds = min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS)
    if retry_after is not None:
        seconds = max(seconds, min(retry_after, BACKOFF_MAX_SECONDS))
    return timedelta(seconds=seconds)


def _release(items: list[Claimed], at: datetime) -> None:
    """Give back claims we did not get to (Chatwoot asked us to slow down); no attempt used."""
    with write_session() as session:
        for item in items:
            message = session.get(OutboxMessage, item.id)
            if message is not None and message.status == SENDING and message.attempts == item.attempts:
                message.status = PENDING
                message.attempts -= 1
                message.next_attempt_at = at
                session.add(message)


def _scrub(text: str) -> str:
    return scrub(text)[:500]


def _already_in_chatwoot(client: ChatwootClient, item: Claimed) -> bool:
    """Whether an earlier attempt of this message reached Chatwoot after all."""
    not_before = item.created_at - CLOCK_SLACK
    for found in client.recent_messages(item.conversation_id):
        if found.get("message_type") not in (1, "outgoing") or found.get("private"):
            continue
        if (found.get("content") or "").strip() != item.text.strip():
            continue
        created = found.get("created_at")
        if isinstance(created, int | float) and created < not_before.timestamp():
            continue
        return True
    return False


def _mirror_attributes(client: ChatwootClient, item: Claimed) -> None:
    """Best effort for permanent refusals (e.g. a contact Chatwoot does not know): the message
    still goes out. Retryable failures retry the message, so attributes arrive with it."""
    calls = []
    if item.conversation_attributes:
        calls.append(lambda: client.set_conversation_attributes(item.conversation_id, item.conversation_attributes))
    if item.contact_attributes and item.contact_id:
        calls.append(lambda: client.set_contact_attributes(item.contact_id, item.contact_attributes))
    for call in calls:
        try:
            call()
        except DeliveryError as exc:
            if exc.retryable:
                raise
            log.warning("Chatwoot refused custom attributes for conversation %s: %s",
                        item.conversation_id, _scrub(str(exc)))


def _deliver_one(client: ChatwootClient, item: Claimed, mirrored: set[str]) -> None:
    if item.attempts > 1 and _already_in_chatwoot(client, item):
        log.info("Outbox message %s had reached Chatwoot already; not sending it again", item.id)
        return
    if item.conversation_id not in mirrored:
        _mirror_attributes(client, item)
        mirrored.add(item.conversation_id)
    client.send_message(item.conversation_id, item.text)


def deliver_pending(limit: int = 50, *, timeout: float = TIMEOUT_SECONDS) -> DeliveryReport:
    """Send the due outbox messages to Chatwoot; see the module docstring for the guarantees."""
    config = ChatwootConfig.from_settings(get_settings())
    if config is None:
        report = DeliveryReport(configured=False)
        _record_status(report)
        return report
    claimed = claim_due(limit)
    report = DeliveryReport(claimed=len(claimed))
    if not claimed:
        return report
    mirrored: set[str] = set()
    with ChatwootClient(config, timeout) as client:
        for index, item in enumerate(claimed):
            try:
                _deliver_one(client, item, mirrored)
            except DeliveryError as exc:
                error = _scrub(str(exc))
                report.errors.append(error)
                now = clock.now()
                if exc.retryable and item.attempts < MAX_ATTEMPTS:
                    wait = backoff(item.attempts, exc.retry_after)
                    _settle(item, status=PENDING, last_error=error, next_attempt_at=now + wait)
                    report.retried += 1
                    log.warning("Outbox message %s not delivered (attempt %s), retrying in %ss: %s",
                                item.id, item.attempts, int(wait.total_seconds()), error)
                    if exc.retry_after is not None:  # rate limited: the rest waits as well
                        _release(claimed[index + 1:], now + wait)
                        break
                else:
                    _settle(item, status=FAILED, last_error=error, next_attempt_at=None)
                    report.failed += 1
                    log.error("Outbox message %s failed after %s attempt(s): %s", item.id, item.attempts, error)
                continue
            _settle(item, status=SENT, sent_at=clock.now(), last_error=None, next_attempt_at=None)
            report.sent += 1
    _record_status(report)
    return report


def _record_status(report: DeliveryReport) -> None:
    """Keep the console's "chat" integration row current; written only when it changes or
    something was attempted, so an idle worker takes no write lock."""
    ok = report.configured and not report.errors
    detail = report.detail
    with read_session() as session:
        row = session.get(IntegrationStatus, "chat")
        if row is not None and not report.claimed and row.ok == ok and row.detail == detail:
            return
    now = clock.now()
    with write_session() as session:
        row = status_row(session, "chat")
        row.ok = ok
        row.detail = detail
        if ok and report.configured:
            row.last_ok_at = now
        if report.errors:
            row.last_error_at = now
            row.last_error = report.errors[-1]
        session.add(row)


# --- the bot's side of the outbox ---------------------------------------------------------------

StatusFilter = Literal["pending", "sending", "sent", "failed", "all"]


def conversation_messages(conversation_id: str, status: StatusFilter = "pending") -> list[OutboxMessage]:
    """The conversation's outbox messages with `status` ("all" for every one), oldest first."""
    with read_session() as session:
        if session.get(Conversation, conversation_id) is None:
            raise NotFound(f"Unknown conversation '{conversation_id}'.")
        return pending_messages(session, conversation_id, None if status == "all" else status)


def mark_delivered_by_bot(conversation_id: str, message_id: int) -> OutboxMessage:
    """The bot showed this message itself: mark it sent so nobody sends it again. Idempotent."""
    with write_session() as session:
        message = session.get(OutboxMessage, message_id)
        if message is None or message.conversation_id != conversation_id:
            raise NotFound(f"Conversation '{conversation_id}' has no message {message_id}.")
        if message.status == SENT:
            return message
        if message.status == SENDING:
            raise InvalidTransition(f"Message {message_id} is being delivered to Chatwoot right now.")
        message.status = SENT
        message.sent_at = clock.now()
        message.last_error = None
        message.next_attempt_at = None
        session.add(message)
        return message


# --- the worker ---------------------------------------------------------------------------------


def worker_tick(limit: int = 50) -> DeliveryReport | None:
    """One round: release expired holds, deliver due messages. Never raises."""
    from core.booking import expire_holds  # booking pulls in calendars and payments lazily

    try:
        expire_holds()
    except Exception as exc:  # noqa: BLE001 - the worker must outlive a bad round
        log.error("Releasing expired holds failed: %s", _scrub(repr(exc)))
    try:
        return deliver_pending(limit)
    except Exception as exc:  # noqa: BLE001
        log.error("Delivering outbox messages failed: %s", _scrub(repr(exc)))
        return None


def run_worker(stop_event: threading.Event, interval: float = 2.0, limit: int = 50) -> None:
    """Loop until `stop_event` is set. A full batch is followed at once by the next one."""
    log.info("Outbox worker started (Chatwoot %s)", "configured" if is_configured() else "not configured")
    while not stop_event.is_set():
        report = worker_tick(limit)
        if report is not None and report.claimed >= limit and not report.errors:
            continue
        stop_event.wait(interval)
    log.info("Outbox worker stopped")
