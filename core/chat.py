"""Delivering outbox messages to the chat platform (Chatwoot): the `chat.send` job.

Chatwoot is used when CHATWOOT_URL, CHATWOOT_ACCOUNT_ID and CHATWOOT_API_TOKEN are all set.
Otherwise messages stay `pending` and the bot fetches (and acknowledges) them through the API.

Every queued message has one `chat.send` job (core/jobs.py), written in the transaction that
queued it, so a rolled-back change never speaks and a committed one always does. The job
system gives the guarantees: one worker at a time holds a job's lease, the lease is checked
right before each call to Chatwoot (a worker that was too slow stops before sending), results
are recorded only by the lease holder, and timeouts, 5xx and 429 (Retry-After honoured) are
retried with backoff capped at JOB_MAX_BACKOFF_SECONDS until Chatwoot heals. Other 4xx mean the
request itself is wrong (unknown conversation, bad token): the message is `failed`.

Before a *repeated* attempt, the conversation's recent messages are read back: if the earlier
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
from typing import Any, Literal
from urllib.parse import quote

import httpx

from core import clock, integrations, jobs
from core.config import Settings, get_settings
from core.conversations import is_safe_id
from core.db import read_session, write_session
from core.errors import InvalidTransition, NotFound
from core.messages import pending_messages
from core.models import Contact, Conversation, OutboxMessage
from core.segments import EXISTING_FLAGS

log = logging.getLogger("lesplanner.chat")

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"
MESSAGE_STATUSES = (PENDING, SENDING, SENT, FAILED)

TIMEOUT_SECONDS = 10.0
# A message we find in Chatwoot counts as ours when it is at most this much older than our row
# (clocks of two machines); older identical texts are an earlier, separate message.
CLOCK_SLACK = timedelta(minutes=2)

CONVERSATION_ATTRIBUTES = ("payment_completed", "payment_intent_id", "payment_amount", "payment_currency")
CONTACT_ATTRIBUTES = CONVERSATION_ATTRIBUTES + EXISTING_FLAGS + ("customer_status",)

NOT_CONFIGURED = (
    "not configured: set CHATWOOT_URL, CHATWOOT_ACCOUNT_ID and CHATWOOT_API_TOKEN; "
    "until then messages wait in the outbox for the bot"
)


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


DeliveryError = integrations.TransportError  # permanent=False: retried by the chat.send job


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
            raise DeliveryError(f"Chatwoot did not answer {method} {path} in time", permanent=False) from None
        except httpx.TransportError as exc:
            raise DeliveryError(f"Chatwoot unreachable ({type(exc).__name__})", permanent=False) from None
        if response.is_success:
            return response
        status = response.status_code
        raise DeliveryError(
            f"Chatwoot answered {status} to {method} {path}: {response.text[:200]}",
            permanent=not integrations.is_transient(status),
            retry_after=integrations.retry_after(response.headers.get("retry-after")),
        )

    @staticmethod
    def _segment(value: object, what: str) -> str:
        """`value` as one encoded URL path segment. An id outside the safe alphabet (e.g. `..`,
        stored before the receiver checked ids) is refused: it must never reach another
        Chatwoot endpoint than its own."""
        if not is_safe_id(value):
            raise DeliveryError(
                f"refused to call Chatwoot with {what} {value!r}: not a safe id", permanent=True
            )
        return quote(str(value), safe="")

    def _path(self, *parts: str | tuple[str, object]) -> str:
        """A path from literal segments and ("what", id) segments, each id checked and encoded."""
        return "".join(
            f"/{part}" if isinstance(part, str) else f"/{self._segment(part[1], part[0])}" for part in parts
        )

    def _conversation(self, conversation_id: str, tail: str) -> str:
        return self._path("conversations", ("conversation", conversation_id), tail)

    def send_message(self, conversation_id: str, text: str, template: dict[str, Any] | None = None) -> None:
        """Post an outgoing message; with `template`, as that WhatsApp template (Chatwoot's
        `template_params`: name, category, language, processed_params), `text` as its content."""
        body: dict[str, Any] = {"content": text, "message_type": "outgoing", "private": False}
        if template:
            body["template_params"] = template
        self._call("POST", self._conversation(conversation_id, "messages"), body)

    def recent_messages(self, conversation_id: str) -> list[dict[str, Any]]:
        body = self._call("GET", self._conversation(conversation_id, "messages")).json()
        payload = body.get("payload", []) if isinstance(body, dict) else body
        return payload if isinstance(payload, list) else []

    def set_conversation_attributes(self, conversation_id: str, attributes: dict[str, Any]) -> None:
        self._call(
            "POST",
            self._conversation(conversation_id, "custom_attributes"),
            {"custom_attributes": attributes},
        )

    def set_contact_attributes(self, contact_id: str, attributes: dict[str, Any]) -> None:
        # Chatwoot merges these into the contact's existing custom attributes.
        self._call("PUT", self._path("contacts", ("contact", contact_id)), {"custom_attributes": attributes})


# --- delivering one message: the chat.send job ---------------------------------------------


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


@dataclass
class _Outgoing:
    id: int
    conversation_id: str
    contact_id: str | None
    text: str
    created_at: datetime
    status: str
    conversation_attributes: dict[str, Any]
    contact_attributes: dict[str, Any]
    template: dict[str, Any] | None = None


def _pick(attributes: dict[str, Any] | None, keys: tuple[str, ...]) -> dict[str, Any]:
    attributes = attributes or {}
    return {k: attributes[k] for k in keys if k in attributes}


def _load(message_id: int) -> _Outgoing | None:
    with read_session() as session:
        message = session.get(OutboxMessage, message_id)
        if message is None:
            return None
        conversation = session.get(Conversation, message.conversation_id)
        contact = session.get(Contact, conversation.contact_id) if conversation else None
        return _Outgoing(
            id=message_id,
            conversation_id=message.conversation_id,
            contact_id=contact.id if contact else None,
            text=message.text,
            created_at=message.created_at,
            status=message.status,
            conversation_attributes=_pick(
                conversation.attributes if conversation else None, CONVERSATION_ATTRIBUTES
            ),
            contact_attributes=_pick(contact.attributes if contact else None, CONTACT_ATTRIBUTES),
            template=message.template,
        )


def _note(ctx: jobs.JobContext, message_id: int, **changes: Any) -> None:
    """Record an attempt on the message, only while `ctx` still holds the job (the fencing of
    jobs._finish, in the same transaction): a worker whose lease ran out while a call hung must
    not overwrite what the worker that took the message over recorded (e.g. turn its `sent`
    back into `pending` or `failed`). Raises LeaseLost otherwise."""
    with write_session() as session:
        ctx.hold(session)  # also locks the job row, so nobody takes it over meanwhile
        message = session.get(OutboxMessage, message_id)
        if message is None:
            return
        for name, value in changes.items():
            setattr(message, name, value)
        session.add(message)


def backoff(attempts: int, retry_after: float | None = None) -> timedelta:
    """The wait before the next attempt: the jobs' backoff (capped at JOB_MAX_BACKOFF_SECONDS)."""
    return jobs.backoff(attempts, retry_after)


def _scrub(text: str) -> str:
    return integrations.scrub(text)[:500]


def _already_in_chatwoot(client: ChatwootClient, item: _Outgoing) -> bool:
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


def _mirror_attributes(client: ChatwootClient, item: _Outgoing) -> None:
    """Best effort for permanent refusals (e.g. a contact Chatwoot does not know): the message
    still goes out. Retryable failures retry the message, so attributes arrive with it."""
    calls = []
    if item.conversation_attributes:
        calls.append(
            lambda: client.set_conversation_attributes(item.conversation_id, item.conversation_attributes)
        )
    if item.contact_attributes and item.contact_id:
        contact_id = item.contact_id
        calls.append(lambda: client.set_contact_attributes(contact_id, item.contact_attributes))
    for call in calls:
        try:
            call()
        except DeliveryError as exc:
            if exc.retryable:
                raise
            log.warning(
                "Chatwoot refused custom attributes for conversation %r: %s",
                item.conversation_id,
                _scrub(str(exc)),
            )


_timeout = threading.local()


def send_job(ctx: jobs.JobContext) -> str:
    """The `chat.send` job: deliver outbox message `ctx.payload['message_id']` to Chatwoot once.

    Before a repeated attempt (ours that failed, or a dead worker's that we took over) the
    conversation's recent messages are read back, so a message that reached Chatwoot although
    the answer was lost is not sent twice. The lease is checked right before the send."""
    message_id = int(ctx.payload["message_id"])
    item = _load(message_id)
    if item is None:
        return "message no longer exists"
    if item.status == SENT:
        return "already delivered (by the bot or an earlier attempt)"
    config = ChatwootConfig.from_settings(get_settings())
    if config is None:
        return "Chatwoot not configured: the message waits in the outbox for the bot"
    timeout = getattr(_timeout, "value", TIMEOUT_SECONDS)
    try:
        with ChatwootClient(config, timeout) as client:
            if ctx.attempts > 1:
                ctx.renew()
                if _already_in_chatwoot(client, item):
                    _note(
                        ctx,
                        message_id,
                        status=SENT,
                        sent_at=clock.now(),
                        attempts=ctx.attempts,
                        last_error=None,
                        next_attempt_at=None,
                    )
                    return "had reached Chatwoot already; not sent again"
            ctx.renew()
            _mirror_attributes(client, item)
            ctx.renew()
            client.send_message(item.conversation_id, item.text, item.template)
    except DeliveryError as exc:
        error = _scrub(str(exc))
        _note(
            ctx,
            message_id,
            attempts=ctx.attempts,
            last_error=error,
            status=PENDING if exc.retryable else FAILED,
        )
        if exc.retryable:
            raise jobs.Retry(error, exc.retry_after) from None
        raise jobs.Permanent(error) from None
    _note(
        ctx,
        message_id,
        status=SENT,
        sent_at=clock.now(),
        attempts=ctx.attempts,
        last_error=None,
        next_attempt_at=None,
    )
    return "sent"


jobs.register("chat.send", send_job)


def deliver_pending(limit: int = 50, *, timeout: float = TIMEOUT_SECONDS) -> DeliveryReport:
    """Run the due `chat.send` jobs now (the worker does this continuously)."""
    if ChatwootConfig.from_settings(get_settings()) is None:
        report = DeliveryReport(configured=False)
        _record_status(report)
        return report
    _timeout.value = timeout
    try:
        run = jobs.run_due(limit=limit, kinds=["chat.send"])
    finally:
        _timeout.value = TIMEOUT_SECONDS
    report = DeliveryReport(
        claimed=run.claimed, sent=run.done, retried=run.retried, failed=run.failed, errors=run.errors
    )
    _record_status(report)
    return report


def record_delivery(run: jobs.RunReport) -> None:
    """The worker's round, as the chat integration's status (only chat.send outcomes count)."""
    mine = [outcome for key, outcome in run.outcomes if key.startswith("chat.send:")]
    if not mine and is_configured():
        return
    _record_status(
        DeliveryReport(
            configured=is_configured(),
            claimed=len(mine),
            sent=mine.count("done"),
            retried=mine.count("retry"),
            failed=mine.count("failed"),
            errors=[e for e in run.errors if e.startswith("chat.send:")],
        )
    )


def _record_status(report: DeliveryReport) -> None:
    """Keep the console's "chat" integration row current; written only when it changes or
    something was attempted, so an idle worker takes no write lock."""
    integrations.record_health(
        "chat",
        report.configured and not report.errors,
        report.detail,
        error=report.errors[-1] if report.errors else None,
        force=bool(report.claimed),
        every=None,
        watch_detail=True,
    )


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
        if jobs.is_running(session, f"chat.send:{message.id}"):
            raise InvalidTransition(f"Message {message_id} is being delivered to Chatwoot right now.")
        message.status = SENT
        message.sent_at = clock.now()
        message.last_error = None
        message.next_attempt_at = None
        session.add(message)
        return message
