"""A faithful local stand-in for the parts of the Stripe API Lesplanner uses.

The real `stripe` library talks to it over HTTP (point `STRIPE_API_BASE` at `fake.url`), so tests
exercise our request encoding, Stripe's error shapes, idempotency keys and the library's own
retries, not a mock of our code. It also plays Stripe's webhook side: test controls such as
`complete_session` move a Checkout Session on and return the Stripe event that would be sent,
`signed` makes the body and `Stripe-Signature` header, and `deliver` POSTs it to a URL with
Stripe's retry-on-non-2xx behaviour.

What it models, as documented by Stripe:
- form-encoded bodies with nested keys (`line_items[0][price]=...`), unknown parameters refused;
- `GET /v1/prices/{id}`, `GET /v1/balance`, `POST/GET /v1/checkout/sessions`,
  `GET /v1/checkout/sessions/{id}`, `POST /v1/checkout/sessions/{id}/expire`, `POST /v1/refunds`,
  `GET /v1/payment_intents/{id}`;
- lists newest first with `limit`, `starting_after`, `has_more`, and `created[gte|gt|lte|lt]`;
- `expires_at` between 30 minutes and 24 hours after creation, metadata limits (50 keys,
  40-character keys, 500-character values);
- errors as `{"error": {"type", "code", "message", "param"}}`, 401 for a missing or bad key;
- `Idempotency-Key` on POST: the same key with the same parameters replays the saved answer
  (with `Idempotent-Replayed: true`), with other parameters it is a 400 `idempotency_error`;
  like Stripe, only answers of requests that started executing are saved (not validation
  errors, not 401s);
- injected faults (`fail_next`) happen in front of the API, like a load balancer: they are not
  saved under the idempotency key, so the library's retry reaches the API.
"""

from __future__ import annotations

import copy
import hashlib
import http.client
import json
import secrets
import socket
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import stripe
from stripe._api_version import _ApiVersion

from tests.fakes._server import LocalHTTPServer

API_VERSION = _ApiVersion.CURRENT
MIN_EXPIRY_SECONDS = 30 * 60
MAX_EXPIRY_SECONDS = 24 * 60 * 60
VALID_LOCALES = {
    "auto",
    "bg",
    "cs",
    "da",
    "de",
    "el",
    "en",
    "en-GB",
    "es",
    "es-419",
    "et",
    "fi",
    "fil",
    "fr",
    "fr-CA",
    "hr",
    "hu",
    "id",
    "it",
    "ja",
    "ko",
    "lt",
    "lv",
    "ms",
    "mt",
    "nb",
    "nl",
    "pl",
    "pt",
    "pt-BR",
    "ro",
    "ru",
    "sk",
    "sl",
    "sv",
    "th",
    "tr",
    "vi",
    "zh",
    "zh-HK",
    "zh-TW",
}
SESSION_CREATE_PARAMS = {
    "mode",
    "line_items",
    "success_url",
    "cancel_url",
    "client_reference_id",
    "metadata",
    "payment_intent_data",
    "locale",
    "expires_at",
    "customer",
    "customer_email",
    "payment_method_types",
    "expand",
    "ui_mode",
    "currency",
    "allow_promotion_codes",
    "billing_address_collection",
    "submit_type",
    "custom_text",
    "invoice_creation",
}


def _rand(n: int) -> str:
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(n))


def parse_form(body: str) -> dict[str, Any]:
    """Decode Stripe's form encoding (`a[b][0][c]=v`) into nested dicts and lists."""
    root: dict[str, Any] = {}
    for raw_key, value in parse_qsl(body, keep_blank_values=True):
        head, _, rest = raw_key.partition("[")
        parts = [head] + ([p.rstrip("]") for p in ("[" + rest).split("[")[1:]] if rest else [])
        node: Any = root
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            nxt_is_index = not last and (parts[i + 1].isdigit() or parts[i + 1] == "")
            if isinstance(node, list):
                index = int(part) if part.isdigit() else len(node)
                while len(node) <= index:
                    node.append(None)
                if last:
                    node[index] = value
                else:
                    if node[index] is None:
                        node[index] = [] if nxt_is_index else {}
                    node = node[index]
            else:
                if last:
                    node[part] = value
                else:
                    if part not in node:
                        node[part] = [] if nxt_is_index else {}
                    node = node[part]
    return root


class StripeApiError(Exception):
    """An answer in Stripe's error shape."""

    def __init__(
        self,
        status: int,
        type_: str,
        message: str,
        code: str | None = None,
        param: str | None = None,
        saved: bool = False,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.body: dict[str, Any] = {"error": {"type": type_, "message": message}}
        if code:
            self.body["error"]["code"] = code
            self.body["error"]["doc_url"] = f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
        if param:
            self.body["error"]["param"] = param
        self.saved = saved  # whether an idempotent replay should return this answer


def _invalid(
    message: str, param: str | None = None, code: str | None = "parameter_invalid", status: int = 400
) -> StripeApiError:
    return StripeApiError(status, "invalid_request_error", message, code=code, param=param)


def _missing(kind: str, ident: str, param: str) -> StripeApiError:
    return StripeApiError(
        404, "invalid_request_error", f"No such {kind}: '{ident}'", code="resource_missing", param=param
    )


@dataclass
class Fault:
    kind: str  # "429" | "500" | "503" | "slow" | "drop"
    path_prefix: str | None = None
    delay: float = 0.0


@dataclass
class RecordedRequest:
    method: str
    path: str
    params: dict[str, Any]
    headers: dict[str, str]
    status: int = 0
    replayed: bool = False


@dataclass
class Delivery:
    """What `deliver` saw: the final HTTP status and each attempt's status."""

    status: int
    attempts: list[int] = field(default_factory=list)
    body: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class FakeStripe(LocalHTTPServer):
    """The fake Stripe account: state, HTTP server and webhook sender.

    Use as a context manager or call `start()` / `stop()`. `now` is the fake's clock (seconds
    since the epoch); tests pass one that follows `core.clock` so `expires_at` checks agree.
    """

    def __init__(
        self,
        api_key: str = "sk_test_fake_lesplanner",
        *,
        now: Callable[[], float] = time.time,
        account_id: str = "acct_1FakeLesplanner",
    ) -> None:
        self.api_keys = {api_key}
        self.api_key = api_key
        self.account_id = account_id
        self.now = now
        self.prices: dict[str, dict[str, Any]] = {}
        self.sessions: dict[str, dict[str, Any]] = {}
        self.payment_intents: dict[str, dict[str, Any]] = {}
        self.charges: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.invoices: dict[str, dict[str, Any]] = {}
        self.events: list[dict[str, Any]] = []
        self.requests: list[RecordedRequest] = []
        self._session_order: list[str] = []  # creation order, for newest-first lists
        self._pi_data: dict[str, dict[str, Any]] = {}  # session id -> payment_intent_data
        self._idempotency: dict[tuple[str, str], tuple[str, str, int, bytes]] = {}
        self._faults: deque[Fault] = deque()
        self._lock = threading.RLock()

    # -- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeStripe:
        fake = self

        class Handler(_Handler):
            stripe_fake = fake

        self._serve(Handler, "fake-stripe")
        return self

    # -- test controls: catalogue and faults ------------------------------------------------

    def add_price(
        self,
        price_id: str,
        unit_amount: int,
        currency: str = "eur",
        *,
        active: bool = True,
        nickname: str | None = None,
    ) -> dict[str, Any]:
        with self._lock:
            price = {
                "id": price_id,
                "object": "price",
                "active": active,
                "billing_scheme": "per_unit",
                "created": int(self.now()),
                "currency": currency,
                "custom_unit_amount": None,
                "livemode": False,
                "lookup_key": None,
                "metadata": {},
                "nickname": nickname,
                "product": f"prod_{_rand(14)}",
                "recurring": None,
                "tax_behavior": "unspecified",
                "tiers_mode": None,
                "transform_quantity": None,
                "type": "one_time",
                "unit_amount": unit_amount,
                "unit_amount_decimal": str(unit_amount),
            }
            self.prices[price_id] = price
            return copy.deepcopy(price)

    def fail_next(self, kind: str, times: int = 1, *, path: str | None = None, delay: float = 0.0) -> None:
        """The next `times` requests (optionally only those under `path`) answer with a fault:
        "429" (rate limited), "500"/"503" (Stripe error), "slow" (wait `delay` seconds, then
        answer normally) or "drop" (close the connection without an answer)."""
        if kind not in {"429", "500", "503", "slow", "drop"}:
            raise ValueError(f"unknown fault {kind!r}")
        with self._lock:
            for _ in range(times):
                self._faults.append(Fault(kind, path, delay))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def requests_to(self, method: str, path_prefix: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self.requests if r.method == method and r.path.startswith(path_prefix)]

    # -- test controls: what customers do on the Checkout page -----------------------------

    def complete_session(self, session_id: str, paid: bool = True) -> dict[str, Any]:
        """The customer finishes Checkout. `paid=False` is a delayed method (e.g. SEPA debit):
        the session completes with payment_status unpaid and an async event follows later."""
        with self._lock:
            session = self._session(session_id)
            if session["status"] != "open":
                raise ValueError(f"session {session_id} is {session['status']}, not open")
            pi = self._create_payment_intent(session, succeeded=paid)
            session.update(
                status="complete",
                payment_status="paid" if paid else "unpaid",
                payment_intent=pi["id"],
                url=None,
            )
            session["customer_details"] = {
                "address": None,
                "email": "klant@example.test",
                "name": "Test Klant",
                "phone": None,
                "tax_exempt": "none",
                "tax_ids": [],
            }
            invoice = None
            if paid and session["invoice_creation"]["enabled"]:
                # Stripe makes a paid invoice for the session (its receipt), after the session.
                invoice_id = f"in_1{_rand(23)}"
                invoice = {
                    "id": invoice_id,
                    "object": "invoice",
                    "status": "paid",
                    "amount_paid": session["amount_total"],
                    "currency": session["currency"],
                    "payment_intent": pi["id"],
                    "hosted_invoice_url": f"https://invoice.stripe.com/i/{self.account_id}/test_{_rand(30)}",
                    "invoice_pdf": f"https://pay.stripe.com/invoice/{self.account_id}/test_{_rand(30)}/pdf",
                }
                self.invoices[invoice_id] = invoice
                session["invoice"] = invoice_id
            completed = self._event("checkout.session.completed", session)
            if invoice is not None:
                self._event("invoice.finalized", invoice)
                self._event("invoice.paid", invoice)
            return completed

    def async_succeed(self, session_id: str) -> dict[str, Any]:
        with self._lock:
            session = self._async_session(session_id)
            pi = self.payment_intents[session["payment_intent"]]
            pi["status"] = "succeeded"
            self._create_charge(pi)
            session["payment_status"] = "paid"
            return self._event("checkout.session.async_payment_succeeded", session)

    def async_fail(self, session_id: str) -> dict[str, Any]:
        with self._lock:
            session = self._async_session(session_id)
            pi = self.payment_intents[session["payment_intent"]]
            pi["status"] = "requires_payment_method"
            return self._event("checkout.session.async_payment_failed", session)

    def expire_session(self, session_id: str) -> dict[str, Any]:
        """Stripe expires an open session (its expires_at passed, or the API asked)."""
        with self._lock:
            session = self._session(session_id)
            if session["status"] != "open":
                raise ValueError(f"session {session_id} is {session['status']}, not open")
            session.update(status="expired", url=None)
            return self._event("checkout.session.expired", session)

    def add_paid_intent(self, amount: int, currency: str = "eur") -> dict[str, Any]:
        """A succeeded PaymentIntent with its charge, for a payment the test database already
        holds (demo rows made without a Checkout Session here); returns the PaymentIntent."""
        with self._lock:
            shell = {"id": f"cs_test_{_rand(24)}", "amount_total": amount, "currency": currency}
            return copy.deepcopy(self._create_payment_intent(shell, succeeded=True))

    def refund(self, session_id: str, amount: int | None = None) -> dict[str, Any]:
        """Refund a paid session's charge; returns the charge.refunded event."""
        with self._lock:
            session = self._session(session_id)
            refund = self._create_refund(
                {
                    "payment_intent": session["payment_intent"],
                    **({"amount": amount} if amount is not None else {}),
                }
            )
            return next(
                e
                for e in reversed(self.events)
                if e["type"] == "charge.refunded" and e["data"]["object"]["id"] == refund["charge"]
            )

    def event(self, type_: str, obj: dict[str, Any]) -> dict[str, Any]:
        """Any event around an object (e.g. types Lesplanner does not handle)."""
        with self._lock:
            return self._event(type_, obj)

    # -- webhooks -----------------------------------------------------------------------------

    @staticmethod
    def payload(event: dict[str, Any]) -> bytes:
        # Stripe sends pretty-printed JSON; the signature covers these exact bytes.
        return json.dumps(event, indent=2).encode("utf-8")

    @classmethod
    def signed(
        cls, event: dict[str, Any], secret: str, *, timestamp: int | None = None, body: bytes | None = None
    ) -> tuple[bytes, str]:
        """The body and `Stripe-Signature` header Stripe would send for `event`."""
        body = cls.payload(event) if body is None else body
        header = stripe.WebhookSignature.generate_signature_header(
            body.decode("utf-8"), secret, timestamp=timestamp
        )
        return body, header

    def deliver(
        self,
        event: dict[str, Any],
        url: str,
        secret: str,
        *,
        retries: int = 3,
        delay: float = 0.0,
        timeout: float = 10.0,
    ) -> Delivery:
        """POST the event like Stripe: signed afresh per attempt, retried on any non-2xx
        answer or network error, at most `retries` extra attempts `delay` seconds apart."""
        body = self.payload(event)
        result = Delivery(status=0)
        for attempt in range(retries + 1):
            if attempt and delay:
                time.sleep(delay)
            _, header = self.signed(event, secret, body=body)
            request = urllib.request.Request(
                url,
                data=body,
                method="POST",
                headers={
                    "Content-Type": "application/json; charset=utf-8",
                    "Stripe-Signature": header,
                    "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
                },
            )
            try:
                with urllib.request.urlopen(request, timeout=timeout) as response:
                    status, text = response.status, response.read().decode("utf-8", "replace")
            except urllib.error.HTTPError as exc:
                status, text = exc.code, exc.read().decode("utf-8", "replace")
            except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
                # A connection refused, reset or cut mid-answer (IncompleteRead): Stripe counts
                # every one of them as a failed delivery and tries again.
                status, text = 0, f"{type(exc).__name__}: {exc}"
            result.attempts.append(status)
            result.status, result.body = status, text
            if 200 <= status < 300:
                break
        return result

    # -- the API --------------------------------------------------------------------------------

    def handle(
        self, method: str, path: str, params: dict[str, Any], headers: dict[str, str]
    ) -> tuple[int, dict[str, str], bytes]:
        """One API request after faults; returns (status, extra headers, body)."""
        record = RecordedRequest(method, path, params, headers)
        with self._lock:
            self.requests.append(record)
            status, extra, body = self._handle_locked(method, path, params, headers, record)
            record.status = status
            return status, extra, body

    def _handle_locked(
        self, method: str, path: str, params: dict[str, Any], headers: dict[str, str], record: RecordedRequest
    ) -> tuple[int, dict[str, str], bytes]:
        auth = headers.get("authorization", "")
        key = auth[len("Bearer ") :] if auth.startswith("Bearer ") else ""
        if not key:
            return self._error(
                _invalid(
                    "You did not provide an API key. You need to provide your API key in the "
                    "Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').",
                    code=None,
                    status=401,
                )
            )
        if key not in self.api_keys:
            masked = key[:8] + "*" * max(len(key) - 12, 0) + key[-4:]
            return self._error(_invalid(f"Invalid API Key provided: {masked}", code=None, status=401))

        idem_key = headers.get("idempotency-key") if method == "POST" else None
        fingerprint = hashlib.sha256(json.dumps([method, path, params], sort_keys=True).encode()).hexdigest()
        if idem_key:
            saved = self._idempotency.get((key, idem_key))
            if saved is not None:
                saved_fp, saved_path, status, body = saved
                if saved_fp != fingerprint:
                    return self._error(
                        StripeApiError(
                            400,
                            "idempotency_error",
                            "Keys for idempotent requests can only be used with the same parameters "
                            "they were first used with. Try using a key other than "
                            f"'{idem_key}' if you meant to execute a different request.",
                        )
                    )
                record.replayed = True
                return status, {"Idempotent-Replayed": "true", "Idempotency-Key": idem_key}, body

        try:
            status, obj = self._route(method, path, params)
            body = json.dumps(obj, indent=2).encode()
        except StripeApiError as exc:
            status, body = exc.status, json.dumps(exc.body, indent=2).encode()
            if not exc.saved:
                return status, {}, body
        if idem_key:
            self._idempotency[(key, idem_key)] = (fingerprint, path, status, body)
        return status, ({"Idempotency-Key": idem_key} if idem_key else {}), body

    @staticmethod
    def _error(exc: StripeApiError) -> tuple[int, dict[str, str], bytes]:
        return exc.status, {}, json.dumps(exc.body, indent=2).encode()

    def _route(self, method: str, path: str, params: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        parts = [p for p in path.split("/") if p]
        if parts[:1] != ["v1"]:
            raise _invalid(f"Unrecognized request URL ({method}: {path}).", code=None, status=404)
        rest = parts[1:]
        if method == "GET" and rest == ["balance"]:
            return 200, self._balance()
        if method == "GET" and len(rest) == 2 and rest[0] == "prices":
            price = self.prices.get(rest[1])
            if price is None:
                raise _missing("price", rest[1], "price")
            return 200, copy.deepcopy(price)
        if rest[:2] == ["checkout", "sessions"]:
            if method == "POST" and len(rest) == 2:
                return 200, self._create_session(params)
            if method == "GET" and len(rest) == 2:
                return 200, self._list_sessions(params)
            if method == "GET" and len(rest) == 3:
                return 200, copy.deepcopy(self._session(rest[2]))
            if method == "POST" and len(rest) == 4 and rest[3] == "expire":
                session = self._session(rest[2])
                if session["status"] != "open":
                    raise _invalid(
                        'Only Checkout Sessions with a status in ["open"] can be expired. '
                        f'This Checkout Session has a status of "{session["status"]}".',
                        code=None,
                    )
                self.expire_session(rest[2])
                return 200, copy.deepcopy(session)
        if method == "POST" and rest == ["refunds"]:
            return 200, self._create_refund(params)
        if method == "GET" and len(rest) == 2 and rest[0] == "payment_intents":
            pi = self.payment_intents.get(rest[1])
            if pi is None:
                raise _missing("payment_intent", rest[1], "intent")
            return 200, copy.deepcopy(pi)
        raise _invalid(
            f"Unrecognized request URL ({method}: {path}). Please see "
            "https://stripe.com/docs or we can help at https://support.stripe.com/.",
            code=None,
            status=404,
        )

    def _balance(self) -> dict[str, Any]:
        return {
            "object": "balance",
            "livemode": False,
            "available": [{"amount": 0, "currency": "eur", "source_types": {"card": 0}}],
            "pending": [{"amount": 0, "currency": "eur", "source_types": {"card": 0}}],
        }

    # -- checkout sessions ----------------------------------------------------------------

    def _session(self, session_id: str) -> dict[str, Any]:
        session = self.sessions.get(session_id)
        if session is None:
            raise _missing("checkout.session", session_id, "session")
        return session

    def _async_session(self, session_id: str) -> dict[str, Any]:
        session = self._session(session_id)
        if session["status"] != "complete" or session["payment_status"] != "unpaid":
            raise ValueError(f"session {session_id} is not awaiting an async payment")
        return session

    def _create_session(self, params: dict[str, Any]) -> dict[str, Any]:
        for name in params:
            if name not in SESSION_CREATE_PARAMS:
                raise _invalid(f"Received unknown parameter: {name}", param=name)
        mode = params.get("mode")
        if not mode:
            raise _invalid("Missing required param: mode.", param="mode", code="parameter_missing")
        if mode not in {"payment", "setup", "subscription"}:
            raise _invalid("Invalid mode: must be one of payment, setup, or subscription", param="mode")
        if mode != "payment":
            raise _invalid("This fake only implements mode=payment.", param="mode")
        line_items = params.get("line_items")
        if not isinstance(line_items, list) or not line_items:
            raise _invalid(
                "You must provide at least one line item.", param="line_items", code="parameter_missing"
            )
        amount, currency = 0, None
        for i, item in enumerate(line_items):
            if not isinstance(item, dict) or not item.get("price"):
                raise _invalid(
                    f"Missing required param: line_items[{i}][price].",
                    param=f"line_items[{i}][price]",
                    code="parameter_missing",
                )
            price = self.prices.get(item["price"])
            if price is None:
                raise StripeApiError(
                    400,
                    "invalid_request_error",
                    f"No such price: '{item['price']}'",
                    code="resource_missing",
                    param=f"line_items[{i}][price]",
                )
            if not price["active"]:
                raise _invalid(
                    "The price specified is inactive. This field only accepts active prices.",
                    param=f"line_items[{i}][price]",
                )
            quantity = _int(item.get("quantity"), f"line_items[{i}][quantity]")
            if quantity is None or quantity < 1:
                raise _invalid("Quantity must be at least 1.", param=f"line_items[{i}][quantity]")
            if currency and currency != price["currency"]:
                raise _invalid("All prices must use the same currency.", param="line_items")
            currency = price["currency"]
            amount += price["unit_amount"] * quantity
        if not params.get("success_url"):
            raise _invalid(
                "Missing required param: success_url.", param="success_url", code="parameter_missing"
            )
        for url_param in ("success_url", "cancel_url"):
            value = params.get(url_param)
            if value is not None and not str(value).startswith(("http://", "https://")):
                raise _invalid("Not a valid URL", param=url_param, code="url_invalid")
        locale = params.get("locale")
        if locale is not None and locale not in VALID_LOCALES:
            raise _invalid(f"Invalid locale: {locale}", param="locale")
        created = int(self.now())
        expires_at = _int(params.get("expires_at"), "expires_at")
        if expires_at is None:
            expires_at = created + MAX_EXPIRY_SECONDS
        elif expires_at - created < MIN_EXPIRY_SECONDS:
            raise _invalid(
                "The `expires_at` timestamp must be at least 30 minutes from Checkout Session creation.",
                param="expires_at",
            )
        elif expires_at - created > MAX_EXPIRY_SECONDS:
            raise _invalid(
                "The `expires_at` timestamp must be less than 24 hours from Checkout Session creation.",
                param="expires_at",
            )
        metadata = _metadata(params.get("metadata"), "metadata")
        pi_data = params.get("payment_intent_data") or {}
        if not isinstance(pi_data, dict):
            raise _invalid("Invalid hash", param="payment_intent_data")
        for name in pi_data:
            if name not in {
                "metadata",
                "description",
                "statement_descriptor",
                "statement_descriptor_suffix",
                "receipt_email",
                "capture_method",
            }:
                raise _invalid(
                    f"Received unknown parameter: payment_intent_data[{name}]",
                    param=f"payment_intent_data[{name}]",
                )
        pi_metadata = _metadata(pi_data.get("metadata"), "payment_intent_data[metadata]")
        invoice_creation = params.get("invoice_creation")
        if invoice_creation is not None:
            if not isinstance(invoice_creation, dict) or invoice_creation.get("enabled") not in (
                "true",
                "false",
            ):
                raise _invalid(
                    "Invalid boolean: invoice_creation[enabled]", param="invoice_creation[enabled]"
                )
        client_reference_id = params.get("client_reference_id")
        if client_reference_id is not None and len(client_reference_id) > 200:
            raise _invalid("client_reference_id must be at most 200 characters.", param="client_reference_id")

        session_id = f"cs_test_a1{_rand(56)}"
        session = {
            "id": session_id,
            "object": "checkout.session",
            "adaptive_pricing": {"enabled": False},
            "after_expiration": None,
            "allow_promotion_codes": None,
            "amount_subtotal": amount,
            "amount_total": amount,
            "automatic_tax": {"enabled": False, "liability": None, "status": None},
            "billing_address_collection": None,
            "cancel_url": params.get("cancel_url"),
            "client_reference_id": client_reference_id,
            "client_secret": None,
            "consent": None,
            "consent_collection": None,
            "created": created,
            "currency": currency,
            "custom_fields": [],
            "custom_text": {
                "after_submit": None,
                "shipping_address": None,
                "submit": None,
                "terms_of_service_acceptance": None,
            },
            "customer": None,
            "customer_creation": "if_required",
            "customer_details": None,
            "customer_email": params.get("customer_email"),
            "expires_at": expires_at,
            "invoice": None,
            "invoice_creation": {
                "enabled": (invoice_creation or {}).get("enabled") == "true",
                "invoice_data": {},
            },
            "livemode": False,
            "locale": locale,
            "metadata": metadata,
            "mode": mode,
            "payment_intent": None,
            "payment_link": None,
            "payment_method_collection": "if_required",
            "payment_method_options": {},
            "payment_method_types": ["card", "ideal"],
            "payment_status": "unpaid",
            "phone_number_collection": {"enabled": False},
            "recovered_from": None,
            "setup_intent": None,
            "shipping_address_collection": None,
            "shipping_cost": None,
            "shipping_options": [],
            "status": "open",
            "submit_type": None,
            "subscription": None,
            "success_url": params.get("success_url"),
            "total_details": {"amount_discount": 0, "amount_shipping": 0, "amount_tax": 0},
            "ui_mode": "hosted",
            "url": f"https://checkout.stripe.com/c/pay/{session_id}#fid{_rand(40)}",
        }
        self.sessions[session_id] = session
        self._session_order.append(session_id)
        self._pi_data[session_id] = {"metadata": pi_metadata}
        return copy.deepcopy(session)

    def _list_sessions(self, params: dict[str, Any]) -> dict[str, Any]:
        for name in params:
            if name not in {
                "created",
                "limit",
                "starting_after",
                "ending_before",
                "status",
                "payment_intent",
                "customer",
                "expand",
            }:
                raise _invalid(f"Received unknown parameter: {name}", param=name)
        limit = _int(params.get("limit"), "limit") or 10
        if not 1 <= limit <= 100:
            raise _invalid("Invalid integer: limit must be between 1 and 100", param="limit")
        created = params.get("created") or {}
        if not isinstance(created, dict):
            created = {"eq": created}
        bounds = {op: _int(v, f"created[{op}]") for op, v in created.items()}
        items = [self.sessions[i] for i in reversed(self._session_order)]  # newest first

        def keep(s: dict[str, Any]) -> bool:
            c = s["created"]
            return all(
                {"gte": c >= v, "gt": c > v, "lte": c <= v, "lt": c < v, "eq": c == v}[op]
                for op, v in bounds.items()
                if v is not None
            )

        items = [s for s in items if keep(s)]
        if params.get("status"):
            items = [s for s in items if s["status"] == params["status"]]
        if params.get("payment_intent"):
            items = [s for s in items if s["payment_intent"] == params["payment_intent"]]
        after = params.get("starting_after")
        if after:
            ids = [s["id"] for s in items]
            if after not in self.sessions:
                raise _missing("checkout.session", after, "starting_after")
            items = items[ids.index(after) + 1 :] if after in ids else []
        page = items[:limit]
        return {
            "object": "list",
            "data": copy.deepcopy(page),
            "has_more": len(items) > limit,
            "url": "/v1/checkout/sessions",
        }

    # -- payment intents, charges, refunds ------------------------------------------------

    def _create_payment_intent(self, session: dict[str, Any], succeeded: bool) -> dict[str, Any]:
        pi_id = f"pi_3{_rand(23)}"
        pi = {
            "id": pi_id,
            "object": "payment_intent",
            "amount": session["amount_total"],
            "amount_received": session["amount_total"] if succeeded else 0,
            "currency": session["currency"],
            "created": int(self.now()),
            "livemode": False,
            "metadata": dict(self._pi_data.get(session["id"], {}).get("metadata", {})),
            "status": "succeeded" if succeeded else "processing",
            "latest_charge": None,
        }
        self.payment_intents[pi_id] = pi
        if succeeded:
            self._create_charge(pi)
        return pi

    def _create_charge(self, pi: dict[str, Any]) -> dict[str, Any]:
        charge_id = f"ch_3{_rand(23)}"
        charge = {
            "id": charge_id,
            "object": "charge",
            "amount": pi["amount"],
            "amount_captured": pi["amount"],
            "amount_refunded": 0,
            "captured": True,
            "created": int(self.now()),
            "currency": pi["currency"],
            "livemode": False,
            # Stripe does not copy the PaymentIntent's metadata onto its charges.
            "metadata": {},
            "paid": True,
            "payment_intent": pi["id"],
            "refunded": False,
            "status": "succeeded",
            "refunds": {
                "object": "list",
                "data": [],
                "has_more": False,
                "total_count": 0,
                "url": f"/v1/charges/{charge_id}/refunds",
            },
        }
        self.charges[charge_id] = charge
        pi["latest_charge"] = charge_id
        pi["amount_received"] = pi["amount"]
        return charge

    def _create_refund(self, params: dict[str, Any]) -> dict[str, Any]:
        for name in params:
            if name not in {"payment_intent", "charge", "amount", "reason", "metadata"}:
                raise _invalid(f"Received unknown parameter: {name}", param=name)
        if params.get("charge"):
            charge = self.charges.get(params["charge"])
            if charge is None:
                raise _missing("charge", params["charge"], "charge")
        elif params.get("payment_intent"):
            pi = self.payment_intents.get(params["payment_intent"])
            if pi is None:
                raise _missing("payment_intent", params["payment_intent"], "payment_intent")
            if not pi.get("latest_charge"):
                raise _invalid(
                    "This PaymentIntent does not have a successful charge to refund.",
                    param="payment_intent",
                    code="charge_not_refundable",
                )
            charge = self.charges[pi["latest_charge"]]
        else:
            raise _invalid(
                "One of the following params should be provided for this request: payment_intent or charge.",
                code="parameter_missing",
            )
        remaining = charge["amount"] - charge["amount_refunded"]
        amount = _int(params.get("amount"), "amount")
        amount = remaining if amount is None else amount
        if remaining <= 0:
            raise _invalid(
                f"Charge {charge['id']} has already been refunded.", code="charge_already_refunded"
            )
        if amount < 1 or amount > remaining:
            raise _invalid(
                f"Refund amount ({amount}) is greater than unrefunded amount on charge ({remaining})",
                param="amount",
                code="amount_too_large",
            )
        refund = {
            "id": f"re_3{_rand(23)}",
            "object": "refund",
            "amount": amount,
            "charge": charge["id"],
            "created": int(self.now()),
            "currency": charge["currency"],
            "metadata": _metadata(params.get("metadata"), "metadata"),
            "payment_intent": charge["payment_intent"],
            "reason": params.get("reason"),
            "status": "succeeded",
        }
        self.refunds[refund["id"]] = refund
        charge["amount_refunded"] += amount
        charge["refunded"] = charge["amount_refunded"] >= charge["amount"]
        charge["refunds"]["data"].insert(0, refund)
        charge["refunds"]["total_count"] += 1
        self._event("refund.created", refund)
        self._event("charge.refunded", charge)
        return copy.deepcopy(refund)

    # -- events ---------------------------------------------------------------------------

    def _event(self, type_: str, obj: dict[str, Any]) -> dict[str, Any]:
        event = {
            "id": f"evt_1{_rand(23)}",
            "object": "event",
            "api_version": API_VERSION,
            "created": int(self.now()),
            "data": {"object": copy.deepcopy(obj)},
            "livemode": False,
            "pending_webhooks": 1,
            "request": {"id": None, "idempotency_key": None},
            "type": type_,
        }
        self.events.append(event)
        return copy.deepcopy(event)


def _int(value: Any, param: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value))
    except ValueError:
        raise _invalid(f"Invalid integer: {value}", param=param) from None


def _metadata(value: Any, param: str) -> dict[str, str]:
    if value is None or value == "":
        return {}
    if not isinstance(value, dict):
        raise _invalid("Invalid hash", param=param)
    if len(value) > 50:
        raise _invalid("Metadata can have at most 50 keys.", param=param)
    out: dict[str, str] = {}
    for k, v in value.items():
        if len(k) > 40:
            raise _invalid("Metadata keys can have a maximum length of 40 characters.", param=f"{param}[{k}]")
        if isinstance(v, (dict, list)):
            raise _invalid("Metadata values must be strings.", param=f"{param}[{k}]")
        if len(str(v)) > 500:
            raise _invalid(
                "Metadata values can have a maximum length of 500 characters.", param=f"{param}[{k}]"
            )
        if v != "":  # an empty value unsets the key
            out[k] = str(v)
    return out


class _Handler(BaseHTTPRequestHandler):
    stripe_fake: FakeStripe
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without TCP_NODELAY a keep-alive client waits
    # ~40 ms per request on Nagle's algorithm and delayed ACKs.
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # keep test output clean

    def do_GET(self) -> None:  # noqa: N802
        self._serve("GET")

    def do_POST(self) -> None:  # noqa: N802
        self._serve("POST")

    def do_DELETE(self) -> None:  # noqa: N802
        self._serve("DELETE")

    def _serve(self, method: str) -> None:
        fake = self.stripe_fake
        split = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length).decode("utf-8") if length else ""
        headers = {k.lower(): v for k, v in self.headers.items()}

        fault = None
        with fake._lock:
            for f in list(fake._faults):
                if f.path_prefix is None or split.path.startswith(f.path_prefix):
                    fake._faults.remove(f)
                    fault = f
                    break
        if fault is not None:
            if fault.kind == "drop":
                fake.requests.append(RecordedRequest(method, split.path, {}, headers, status=0))
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if fault.kind == "slow":
                time.sleep(fault.delay)
            elif fault.kind == "429":
                fake.requests.append(RecordedRequest(method, split.path, {}, headers, status=429))
                self._send(
                    429,
                    {},
                    json.dumps(
                        {
                            "error": {
                                "code": "rate_limit",
                                "doc_url": "https://stripe.com/docs/error-codes/rate-limit",
                                "message": "Request rate limit exceeded. Learn more about rate limits here "
                                "https://stripe.com/docs/rate-limits.",
                                "type": "invalid_request_error",
                            }
                        }
                    ).encode(),
                )
                return
            else:  # 500 / 503
                status = int(fault.kind)
                fake.requests.append(RecordedRequest(method, split.path, {}, headers, status=status))
                self._send(
                    status,
                    {},
                    json.dumps(
                        {"error": {"message": "An unknown error occurred", "type": "api_error"}}
                    ).encode(),
                )
                return

        params = parse_form(raw if method == "POST" else split.query)
        status, extra, body = fake.handle(method, split.path, params, headers)
        self._send(status, extra, body)

    def _send(self, status: int, extra: dict[str, str], body: bytes) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Request-Id", f"req_{_rand(14)}")
            self.send_header("Stripe-Version", API_VERSION)
            for k, v in extra.items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (e.g. a timeout); Stripe would not notice either
