"""Refunds we start ourselves go through Stripe's Refunds API as `stripe.refund` jobs.

`queue_refund` is called in the transaction that cancels the lesson (money first, side effects
after): it writes one job per lesson, keyed `stripe.refund:lesson-<id>`, so a repeated cancel
never refunds twice. The job calls Stripe with the idempotency key `lesplanner-refund-lesson-<id>`,
so a retry after a lost answer gets Stripe's first refund back instead of a second one. The
payment's status follows Stripe's `charge.refunded` webhook (core/payments/webhooks.py), the one
source of truth for money that moved. Refunds made in the Stripe dashboard arrive the same way.

Finance and admins refund a payment in full or in part from the console (`refund_payment`, with
a reason, audited): each request is its own job, keyed `stripe.refund:payment-<id>:<n>` with the
idempotency key `lesplanner-refund-payment-<id>-<n>`. What is left to refund counts the refunds
asked for but not answered yet, so two requests can never add up to more than was paid.
"""

from __future__ import annotations

from typing import Any

from sqlmodel import Session, select

from core import jobs
from core.audit import audit, current_actor
from core.db import read_session, write_session
from core.errors import NotFound, ValidationFailed
from core.messages import format_money
from core.models import Job, JobStatus, Lesson, Payment, PaymentStatus, User, stored_id
from core.payments.gateway import PaymentRefused, get_gateway

REFUND_JOB = "stripe.refund"


def refund_key(lesson_id: int) -> str:
    return f"{REFUND_JOB}:lesson-{lesson_id}"


def lesson_share(payment: Payment, amount: int) -> int:
    """What of `amount` (still refundable on the payment) one lesson may get back: all of it for
    a payment of one lesson; for a weekly series its 1/quantity of the amount paid, at most."""
    if payment.kind == "series" and payment.quantity > 1:
        return min(amount, (payment.amount or 0) // payment.quantity)
    return amount


def refundable_amount(payment: Payment | None) -> int:
    """Cents that can still be refunded on a paid payment, as Stripe last told us (0 for a
    payment that is not paid)."""
    if payment is None or payment.status not in (PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED):
        return 0
    return max(0, (payment.amount or 0) - payment.refunded_amount)


def _refund_jobs(session: Session, payment_id: int) -> list[Job]:
    return list(
        session.exec(select(Job).where(Job.kind == REFUND_JOB, Job.subject == f"payment-{payment_id}")).all()
    )


def left_to_refund(session: Session, payment: Payment) -> int:
    """What may still be refunded: the amount minus the larger of what Stripe reported refunded
    and what we asked for (jobs that did not fail), so nothing is refunded twice meanwhile."""
    if payment.status not in (PaymentStatus.PAID, PaymentStatus.PARTIALLY_REFUNDED):
        return 0
    asked = sum(
        int(j.payload.get("amount", 0))
        for j in _refund_jobs(session, stored_id(payment))
        if j.status != JobStatus.FAILED
    )
    return max(0, (payment.amount or 0) - max(payment.refunded_amount, asked))


def refund_payment(actor: User, payment_id: int, amount: int, reason: str) -> None:
    """Finance or an admin refunds `amount` cents of a paid payment, with a reason (audited).
    The refund itself is a job; the payment's status follows Stripe's webhook."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Give a reason for the refund.", field="reason")
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValidationFailed("The amount to refund must be a positive number of cents.", field="amount")
    with write_session() as session:
        who = current_actor(session, actor, "finance", "admin")
        payment = session.get(Payment, payment_id)
        if payment is None:
            raise NotFound(f"Payment {payment_id} does not exist.")
        left = left_to_refund(session, payment)
        if amount > left:
            raise ValidationFailed(
                f"At most {format_money(left, payment.currency or 'eur')} of this payment can still be "
                f"refunded; {format_money(amount, payment.currency or 'eur')} is more.",
                field="amount",
            )
        n = len(_refund_jobs(session, payment_id)) + 1
        jobs.enqueue(
            session,
            REFUND_JOB,
            f"{REFUND_JOB}:payment-{payment_id}:{n}",
            {
                "payment_id": payment_id,
                "amount": amount,
                "currency": payment.currency or "eur",
                "reason": reason[:200],
                "idempotency_key": f"lesplanner-refund-payment-{payment_id}-{n}",
            },
            subject=f"payment-{payment_id}",
        )
        audit(
            session,
            who,
            "payment.refund",
            "Payment",
            payment_id,
            {"refunded_amount": payment.refunded_amount},
            {"amount": amount, "reason": reason[:200]},
        )


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
    """The `stripe.refund` job: ask Stripe for the refund (idempotent per lesson or request)."""
    payment_id = int(ctx.payload["payment_id"])
    key = str(ctx.payload.get("idempotency_key") or f"lesplanner-refund-lesson-{ctx.payload['lesson_id']}")
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
            key,
            {"reason": str(ctx.payload.get("reason", ""))[:200]},
        )
    except PaymentRefused as exc:
        if exc.code == "charge_already_refunded":
            return "already refunded in Stripe"
        raise jobs.Permanent(f"Stripe refused the refund: {exc}") from None
    return f"refund {refund.get('id')} of {amount} {payment.currency or 'eur'} ({refund.get('status')})"


jobs.register(REFUND_JOB, refund_job)
