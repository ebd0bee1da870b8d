"""Refunds we start ourselves go through Stripe's Refunds API as `stripe.refund` jobs.

`queue_refund` is called in the transaction that cancels the lesson (money first, side effects
after): it writes one job per lesson, keyed `stripe.refund:lesson-<id>`, so a repeated cancel
never refunds twice. The job calls Stripe with the idempotency key `lesplanner-refund-lesson-<id>`,
so a retry after a lost answer gets Stripe's first refund back instead of a second one. The
payment's status follows Stripe's `charge.refunded` webhook (core/payments/webhooks.py), the one
source of truth for money that moved. Refunds made in the Stripe dashboard arrive the same way.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from core import jobs
from core.db import read_session
from core.models import Job, Lesson, Payment, PaymentStatus, stored_id
from core.payments.gateway import PaymentRefused, get_gateway

REFUND_JOB = "stripe.refund"


def refund_key(lesson_id: int) -> str:
    return f"{REFUND_JOB}:lesson-{lesson_id}"


def refundable_amount(payment: Payment | None) -> int:
    """Cents that can still be refunded on a paid payment (0 for anything else)."""
    if payment is None or payment.status != PaymentStatus.PAID:
        return 0
    return max(0, payment.amount or 0)


def queue_refund(session: Session, lesson: Lesson, payment: Payment, amount: int, reason: str) -> bool:
    """Write the lesson's refund job in the caller's transaction; False if one was written before."""
    lesson_id = stored_id(lesson)
    if queued_refund(session, lesson_id) is not None:
        return False
    jobs.enqueue(
        session,
        REFUND_JOB,
        refund_key(lesson_id),
        {
            "lesson_id": lesson_id,
            "payment_id": payment.id,
            "amount": amount,
            "currency": payment.currency or "eur",
            "reason": reason[:200],
        },
        subject=f"payment-{payment.id}",
    )
    return True


def queued_refund(session: Session, lesson_id: int) -> dict[str, Any] | None:
    """The refund job's payload for this lesson, if one was written (for repeated cancels)."""
    job = session.exec(select(Job).where(Job.key == refund_key(lesson_id))).first()
    return dict(job.payload) if job is not None else None


def refund_job(ctx: jobs.JobContext) -> str:
    """The `stripe.refund` job: ask Stripe for the refund (idempotent per lesson)."""
    payment_id = int(ctx.payload["payment_id"])
    amount = int(ctx.payload["amount"])
    with read_session() as session:
        payment = session.get(Payment, payment_id)
    if payment is None or not payment.payment_intent_id:
        raise jobs.Permanent(f"payment {payment_id} has no PaymentIntent to refund")
    ctx.renew()
    try:
        refund = get_gateway().create_refund(
            payment.payment_intent_id,
            amount,
            f"lesplanner-refund-lesson-{ctx.payload['lesson_id']}",
            {"lesson_id": str(ctx.payload["lesson_id"]), "reason": str(ctx.payload.get("reason", ""))[:200]},
        )
    except PaymentRefused as exc:
        if exc.code == "charge_already_refunded":
            return "already refunded in Stripe"
        raise jobs.Permanent(f"Stripe refused the refund: {exc}") from None
    return f"refund {refund.get('id')} of {amount} {payment.currency or 'eur'} ({refund.get('status')})"


jobs.register(REFUND_JOB, refund_job)
