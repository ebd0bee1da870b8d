"""Reconciliation of missed webhooks: Stripe's Checkout Sessions are the truth when a webhook
never arrived or failed, and each fix goes through the webhook handler so nothing happens twice.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import select

from core import clock
from core.db import read_session, write_session
from core.errors import LesplannerError, ValidationFailed
from core.integrations import scrub
from core.models import Payment
from core.payments.gateway import (
    FINAL_PAYMENT_STATES,
    OPEN,
    _record_status,
    get_gateway,
)
from core.payments.links import made_by_lesplanner
from core.payments.webhooks import (
    PROCESSED,
    WebhookHandlingFailed,
    _payment_for_session,
    _process_event,
)


@dataclass
class ReconcileReport:
    since: datetime
    checked: int = 0  # Checkout Sessions Stripe listed
    ours: int = 0  # of those, created by Lesplanner
    applied: list[str] = field(default_factory=list)  # "cs_… → paid (lesson 12 confirmed)"
    created: list[str] = field(default_factory=list)  # Payment rows we did not have
    unchanged: int = 0
    errors: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [
            f"Checked {self.checked} Checkout Sessions since {self.since.isoformat()}: "
            f"{self.ours} from Lesplanner, {len(self.applied)} applied, "
            f"{len(self.created)} recorded, {self.unchanged} already in sync, "
            f"{len(self.errors)} errors."
        ]
        lines += [f"  applied  {line}" for line in self.applied]
        lines += [f"  recorded {line}" for line in self.created]
        lines += [f"  ERROR    {line}" for line in self.errors]
        return "\n".join(lines)


def reconcile_payments(since: datetime) -> ReconcileReport:
    """Compare Stripe's Checkout Sessions created since `since` with our Payments and apply what
    a missed (or failed) webhook would have: paid, processing, expired. Each fix goes through
    the webhook handler as a synthetic event `reconcile:<session>:<state>`, so running this
    twice, or a late real webhook, changes nothing twice."""
    if since.tzinfo is None:
        raise ValidationFailed("since must be timezone-aware.", field="since")
    report = ReconcileReport(since=since)
    gateway = get_gateway()
    try:
        sessions = gateway.list_checkout_sessions(int(since.timestamp()))
    except LesplannerError as exc:
        _record_status("stripe", False, exc.message)
        raise
    _record_status("stripe", True, f"listed {len(sessions)} Checkout Sessions for reconciliation")
    for obj in sessions:
        report.checked += 1
        session_id = obj.get("id")
        with read_session() as read:
            payment = read.exec(select(Payment).where(Payment.checkout_session_id == session_id)).first()
        if payment is None and not made_by_lesplanner(obj):
            continue
        report.ours += 1
        state, paid = obj.get("status"), obj.get("payment_status") in ("paid", "no_payment_required")
        ours = payment.status if payment else None
        if state == "complete" and paid and ours not in FINAL_PAYMENT_STATES:
            type_, label = "checkout.session.completed", "paid"
        elif (
            state == "complete"
            and not paid
            and (payment is None or not payment.payment_intent_id)
            and ours not in FINAL_PAYMENT_STATES
        ):
            type_, label = "checkout.session.completed", "processing"
        elif state == "expired" and ours in (None, OPEN):
            type_, label = "checkout.session.expired", "expired"
        elif state == "open" and payment is None:
            try:
                with write_session() as write:
                    _payment_for_session(write, obj, clock.now())
                report.created.append(f"{session_id} (open, order {obj['metadata'].get('order_id')})")
            except Exception as exc:  # noqa: BLE001 - one bad session must not stop the run
                report.errors.append(f"{session_id}: {scrub(str(exc))}")
            continue
        else:
            report.unchanged += 1
            continue
        event = {
            "id": f"reconcile:{session_id}:{label}",
            "object": "event",
            "type": type_,
            "created": int(clock.now().timestamp()),
            "livemode": bool(obj.get("livemode")),
            "data": {"object": obj},
            "request": {"id": None, "idempotency_key": None},
        }
        try:
            result = _process_event(event, json.dumps(event))
        except WebhookHandlingFailed as exc:
            report.errors.append(f"{session_id}: {exc.message}")
            continue
        if result.status == PROCESSED:
            report.applied.append(f"{session_id} → {label}: {result.detail}")
        else:
            report.unchanged += 1
    return report
