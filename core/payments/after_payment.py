"""What Stripe tells after a payment that is neither money in nor money back: chargebacks
(`charge.dispute.*`: the payment is `disputed` with Stripe's status and the evidence due date,
finance gets an alert, the lesson stays, as DESIGN says; a lost dispute of a bundle takes back its
unused credits like a full refund, DECISIONS) and receipts (`invoice.finalized` /
`invoice.paid` with STRIPE_INVOICES: the hosted invoice page Betalingen links to). Called by
core/payments/webhooks.py inside its event transaction.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from core import credits, lessons
from core.models import AuditLog, Lesson, Payment, PaymentStatus
from core.payments.gateway import _id_of, _ts
from core.payments.refunds import queued_refund

PROCESSED, IGNORED = "processed", "ignored"


def lessons_paid_by(session: Session, payment: Payment) -> list[Lesson]:
    """The lessons a payment pays: its one lesson, or every lesson of its weekly series (by
    start), their tutors locked in booking's order (by id) before any lesson is changed."""
    if payment.lesson_id is not None:
        lesson = session.get(Lesson, payment.lesson_id)
        return [lesson] if lesson is not None else []
    if payment.series_id is None:
        return []
    found = list(
        session.exec(
            select(Lesson)
            .where(Lesson.series_id == payment.series_id)
            .order_by(col(Lesson.start), col(Lesson.id))
        ).all()
    )
    lessons.lock_tutors(session, sorted({lesson.tutor_id for lesson in found}))
    return found


def refund_announced(session: Session, payment: Payment, paid_for: list[Lesson]) -> bool:
    """Whether the customer was already told about this refund: it is the refund we started at
    their cancel (a series: the refunds of its lessons' cancels add up to the whole payment)."""
    if payment.lesson_id is not None:
        return queued_refund(session, payment.lesson_id) is not None
    asked = [queued_refund(session, lesson.id) for lesson in paid_for if lesson.id is not None]
    total = sum(int(r["amount"]) for r in asked if r is not None)
    return bool(paid_for) and total >= (payment.amount or 0)


def on_dispute(session: Session, dispute: dict[str, Any], now: datetime) -> tuple[str, str]:
    """A chargeback: the payment is `disputed` with Stripe's dispute status and the evidence due
    date, finance gets an alert, and the lesson stays as it is (DESIGN)."""
    intent = _id_of(dispute.get("payment_intent"))
    payment = (
        session.exec(select(Payment).where(Payment.payment_intent_id == intent)).first() if intent else None
    )
    if payment is None:
        return IGNORED, f"No Lesplanner payment has payment intent {intent or '(none)'}."
    status = str(dispute.get("status") or "unknown")[:40]
    due = _ts((dispute.get("evidence_details") or {}).get("due_by"))
    first = payment.status != PaymentStatus.DISPUTED
    payment.status = PaymentStatus.DISPUTED
    payment.dispute_status = status
    payment.dispute_due_by = due or payment.dispute_due_by
    payment.updated_at = now
    lesson = session.get(Lesson, payment.lesson_id) if payment.lesson_id is not None else None
    why = f"payment disputed ({dispute.get('reason') or 'no reason given'})" + (
        f"; evidence due {due:%Y-%m-%d}" if due else ""
    )
    if first and lesson is not None:
        lessons.finance_alert(session, lesson, why)
    elif first:  # a bundle (or a bare payment link): no lesson, the alert names the payment
        session.add(
            AuditLog(
                actor="system",
                action="finance.alert",
                entity="Payment",
                entity_id=str(payment.id),
                after={"status": payment.status, "kind": payment.kind, "why": why},
                at=now,
            )
        )
    if status == "lost" and payment.kind == "bundle":
        # The bank gave the money back: what was not used yet is taken back, once per payment.
        credits.take_back_refunded_bundle(session, payment)
    return PROCESSED, f"Payment {payment.checkout_session_id}: dispute {dispute.get('id')} is {status}."


def on_invoice(session: Session, invoice: dict[str, Any], now: datetime) -> tuple[str, str]:
    """The receipt Stripe made for a Checkout (STRIPE_INVOICES): keep its hosted page's URL so
    Betalingen can link to it. Found by invoice id (from checkout.session.completed) or by
    its PaymentIntent; an invoice of something else is ignored."""
    invoice_id = invoice.get("id")
    payment = (
        session.exec(select(Payment).where(Payment.invoice_id == invoice_id)).first() if invoice_id else None
    )
    intent = _id_of(invoice.get("payment_intent"))
    if payment is None and intent:
        payment = session.exec(select(Payment).where(Payment.payment_intent_id == intent)).first()
    if payment is None:
        return IGNORED, f"No Lesplanner payment has invoice {invoice_id or '(none)'}."
    payment.invoice_id = invoice_id or payment.invoice_id
    payment.invoice_url = invoice.get("hosted_invoice_url") or payment.invoice_url
    payment.updated_at = now
    return PROCESSED, f"Payment {payment.checkout_session_id}: invoice {invoice_id} recorded."
