"""A small local stand-in for the parts of Chatwoot's application API Lesplanner uses.

core/chat.py talks to it over real HTTP (point CHATWOOT_URL at `fake.url`). It models:
- `api_access_token` header auth: a missing or wrong token is a 401, another account a 404;
- `POST /api/v1/accounts/{aid}/conversations/{cid}/messages` `{content, message_type, private,
  template_params?}` (a WhatsApp template: name and language required; kept in
  `additional_attributes.template_params` as Chatwoot does);
- `GET  /api/v1/accounts/{aid}/conversations/{cid}/messages` → `{"meta": ..., "payload": [...]}`,
  the latest 20 messages, `message_type` as Chatwoot's integer (1 = outgoing), `created_at` in
  seconds since the epoch;
- `POST /api/v1/accounts/{aid}/conversations/{cid}/custom_attributes` `{"custom_attributes": {}}`
  and `PUT /api/v1/accounts/{aid}/contacts/{id}` `{"custom_attributes": {}}`, both merged into
  what is there, as Chatwoot does;
- faults in front of the API: `fail_next(500 | 429 | 4xx, retry_after=...)`, and `slow_next`,
  which waits and then still stores the message (a client that timed out does not know).
Unknown conversations and contacts are accepted unless `known_conversations` /
`known_contacts` are set, in which case others answer 404.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.fakes._server import LocalHTTPServer

MESSAGE_TYPES = {"incoming": 0, "outgoing": 1, "activity": 2, "template": 3}

_MESSAGES = re.compile(r"^/api/v1/accounts/([^/]+)/conversations/([^/]+)/messages$")
_CONV_ATTRS = re.compile(r"^/api/v1/accounts/([^/]+)/conversations/([^/]+)/custom_attributes$")
_CONTACT = re.compile(r"^/api/v1/accounts/([^/]+)/contacts/([^/]+)$")


@dataclass
class RecordedRequest:
    method: str
    path: str
    body: Any
    status: int


@dataclass
class _Fault:
    status: int | None  # None: slow, then answer normally
    delay: float
    retry_after: str | None
    match: str | None


class FakeChatwoot(LocalHTTPServer):
    """State, HTTP server and fault controls. Use as a context manager or start()/stop().
    `now` is the fake's clock in seconds since the epoch (tests pass one following core.clock)."""

    def __init__(
        self, token: str = "cw-test-token-123", account_id: str = "7", *, now: Callable[[], float] = time.time
    ) -> None:
        self.token = token
        self.account_id = account_id
        self.now = now
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.conversation_attributes: dict[str, dict[str, Any]] = {}
        self.contact_attributes: dict[str, dict[str, Any]] = {}
        self.known_conversations: set[str] | None = None
        self.known_contacts: set[str] | None = None
        self.requests: list[RecordedRequest] = []
        self._next_id = 1
        self._faults: deque[_Fault] = deque()
        self._lock = threading.RLock()

    # -- lifecycle ---------------------------------------------------------------------------

    def start(self) -> FakeChatwoot:
        fake = self

        class Handler(_Handler):
            chatwoot = fake

        self._serve(Handler, "fake-chatwoot")
        return self

    # -- test controls -----------------------------------------------------------------------

    def fail_next(
        self, status: int, times: int = 1, *, retry_after: int | str | None = None, match: str | None = None
    ) -> None:
        """The next `times` requests (whose path contains `match`, if given) answer `status`."""
        with self._lock:
            for _ in range(times):
                self._faults.append(
                    _Fault(status, 0.0, None if retry_after is None else str(retry_after), match)
                )

    def slow_next(self, seconds: float, times: int = 1, *, match: str | None = None) -> None:
        """The next `times` requests wait `seconds`, then are handled normally."""
        with self._lock:
            for _ in range(times):
                self._faults.append(_Fault(None, seconds, None, match))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def sent(self, conversation_id: str) -> list[str]:
        """The contents of the outgoing, public messages stored for the conversation."""
        with self._lock:
            return [
                m["content"]
                for m in self.messages.get(str(conversation_id), [])
                if m["message_type"] == 1 and not m["private"]
            ]

    def templates(self, conversation_id: str) -> list[dict[str, Any]]:
        """The template_params of the template messages sent to the conversation (WhatsApp)."""
        with self._lock:
            return [
                m["additional_attributes"]["template_params"]
                for m in self.messages.get(str(conversation_id), [])
                if m.get("additional_attributes", {}).get("template_params") is not None
            ]

    def all_sent(self) -> list[tuple[str, str]]:
        with self._lock:
            return [
                (cid, m["content"])
                for cid, ms in self.messages.items()
                for m in ms
                if m["message_type"] == 1 and not m["private"]
            ]

    def requests_to(self, method: str, contains: str = "") -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method and contains in r.path]

    # -- the API -----------------------------------------------------------------------------

    def _take_fault(self, path: str) -> _Fault | None:
        with self._lock:
            for fault in list(self._faults):
                if fault.match is None or fault.match in path:
                    self._faults.remove(fault)
                    return fault
        return None

    def handle(self, method: str, path: str, headers: dict[str, str], body: Any) -> tuple[int, dict, Any]:
        if headers.get("api_access_token") != self.token:
            return 401, {}, {"errors": ["You need to sign in or sign up before continuing."]}
        for pattern, handler in (
            (_MESSAGES, self._messages),
            (_CONV_ATTRS, self._conversation_attributes),
            (_CONTACT, self._contact),
        ):
            found = pattern.match(path)
            if found:
                account, ident = unquote(found.group(1)), unquote(found.group(2))
                if account != self.account_id:
                    return 404, {}, {"error": "Resource could not be found"}
                return handler(method, ident, body)
        return 404, {}, {"error": "Resource could not be found"}

    def _messages(self, method: str, conversation_id: str, body: Any) -> tuple[int, dict, Any]:
        if self.known_conversations is not None and conversation_id not in self.known_conversations:
            return 404, {}, {"error": "Resource could not be found"}
        with self._lock:
            stored = self.messages.setdefault(conversation_id, [])
            if method == "GET":
                return (
                    200,
                    {},
                    {
                        "meta": {"labels": [], "additional_attributes": {}},
                        "payload": [dict(m) for m in stored[-20:]],
                    },
                )
            if method != "POST":
                return 405, {}, {"error": "method not allowed"}
            if not isinstance(body, dict) or not str(body.get("content") or "").strip():
                return 422, {}, {"message": "Content can't be blank"}
            kind = body.get("message_type", "outgoing")
            template = body.get("template_params")
            if template is not None and (
                not isinstance(template, dict) or not template.get("name") or not template.get("language")
            ):
                return 422, {}, {"message": "template_params needs name and language"}
            message = {
                "id": self._next_id,
                "content": body["content"],
                "message_type": MESSAGE_TYPES.get(kind, kind) if isinstance(kind, str) else kind,
                "private": bool(body.get("private", False)),
                "conversation_id": conversation_id,
                "account_id": self.account_id,
                "content_type": "text",
                "status": "sent",
                "created_at": int(self.now()),
                "additional_attributes": {"template_params": template} if template is not None else {},
            }
            self._next_id += 1
            stored.append(message)
            return 200, {}, message

    def _conversation_attributes(self, method: str, conversation_id: str, body: Any) -> tuple[int, dict, Any]:
        if method != "POST":
            return 405, {}, {"error": "method not allowed"}
        if self.known_conversations is not None and conversation_id not in self.known_conversations:
            return 404, {}, {"error": "Resource could not be found"}
        attributes = body.get("custom_attributes") if isinstance(body, dict) else None
        if not isinstance(attributes, dict):
            return 422, {}, {"message": "custom_attributes must be an object"}
        with self._lock:
            merged = self.conversation_attributes.setdefault(conversation_id, {})
            merged.update(attributes)
            return 200, {}, {"custom_attributes": dict(merged)}

    def _contact(self, method: str, contact_id: str, body: Any) -> tuple[int, dict, Any]:
        if method != "PUT":
            return 405, {}, {"error": "method not allowed"}
        if self.known_contacts is not None and contact_id not in self.known_contacts:
            return 404, {}, {"error": "Resource could not be found"}
        attributes = body.get("custom_attributes") if isinstance(body, dict) else None
        if not isinstance(attributes, dict):
            return 422, {}, {"message": "custom_attributes must be an object"}
        with self._lock:
            merged = self.contact_attributes.setdefault(contact_id, {})
            merged.update(attributes)
            return 200, {}, {"payload": {"id": contact_id, "custom_attributes": dict(merged)}}


class _Handler(BaseHTTPRequestHandler):
    chatwoot: FakeChatwoot
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_PUT(self) -> None:  # noqa: N802
        self._serve("PUT")

    def _serve(self, method: str) -> None:
        fake = self.chatwoot
        path = urlsplit(self.path).path
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        fault = fake._take_fault(path)
        if fault is not None and fault.status is not None:
            fake.requests.append(RecordedRequest(method, path, body, fault.status))
            extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            self._send(fault.status, extra, {"error": f"injected {fault.status}"})
            return
        if fault is not None:
            time.sleep(fault.delay)
        status, extra, answer = fake.handle(method, path, headers, body)
        with fake._lock:
            fake.requests.append(RecordedRequest(method, path, body, status))
        self._send(status, extra, answer)

    def _send(self, status: int, extra: dict[str, str], answer: Any) -> None:
        payload = json.dumps(answer).encode()
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            for key, value in extra.items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up waiting; Chatwoot would not notice either
