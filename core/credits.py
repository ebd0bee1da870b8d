"""Prepaid lesson credits (DESIGN → "Series and prepaid lessons"; issue 15): a ledger per contact.

A credit is one prepaid lesson of a given length (`minutes`, 60 or 90). Every change is a
`CreditEntry`: +n bought (a paid bundle), +n/-n granted or corrected by an admin, -1 used by a
booking, +1 returned by an on-time cancel, -n taken back when a bundle is refunded. The balance is
the sum and never goes below 0:

- every step that changes a balance first locks the contact (`SELECT ... FOR UPDATE` on Postgres;
  on SQLite `write_session` is BEGIN IMMEDIATE, so writers are already one at a time) and then
  reads the balance in the same transaction;
- automatic entries carry a unique `key` (`use:lesson-42`, `return:lesson-42`,
  `purchase:payment-7`), so one lesson can never use two credits and a repeated webhook never
  adds a bundle twice — a second guard that holds whatever the locks do.

Steps here take the caller's session and never commit (core/ARCHITECTURE.md → Sessions); `grant`
is the admin's unit of work. Lock order is the booking's: tutor, then lesson, then contact.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from core import clock
from core.audit import audit, current_actor
from core.db import is_sqlite, write_session
from core.errors import NotFound, ValidationFailed
from core.models import Contact, CreditEntry, Lesson, Payment, User, stored_id

CREDIT_MINUTES = (60, 90)
PURCHASE, USE, RETURN, GRANT, REFUND = "purchase", "use", "return", "grant", "refund"
CREDIT_RETURNABLE = ("confirmed", "needs_reschedule")  # lesson states whose credit a cancel may return
MAX_GRANT = 50


@dataclass(frozen=True)
class Balance:
    minutes: int
    lessons: int


def lesson_minutes(lesson: Lesson) -> int:
    return int((lesson.end - lesson.start).total_seconds() // 60)


def lock_contact(session: Session, contact_id: str) -> None:
    """Serialise balance changes of one contact (Postgres row lock; SQLite's single writer)."""
    if not is_sqlite(session.get_bind()):
        session.exec(select(Contact.id).where(Contact.id == contact_id).with_for_update()).all()


def balance(session: Session, contact_id: str, minutes: int) -> int:
    total = session.exec(
        select(func.coalesce(func.sum(CreditEntry.delta), 0)).where(
            CreditEntry.contact_id == contact_id, CreditEntry.minutes == minutes
        )
    ).one()
    return int(total or 0)


def balances(session: Session, contact_id: str) -> list[Balance]:
    """The balance per lesson length (every length credits exist for, and 60 and 90 always)."""
    rows = session.exec(
        select(CreditEntry.minutes, func.sum(CreditEntry.delta))
        .where(CreditEntry.contact_id == contact_id)
        .group_by(col(CreditEntry.minutes))
    ).all()
    found = {int(m): int(n or 0) for m, n in rows}
    return [Balance(m, found.get(m, 0)) for m in sorted(set(CREDIT_MINUTES) | set(found))]


@dataclass(frozen=True)
class Statement:
    contact_id: str
    balances: list[Balance]
    entries: list[CreditEntry]

    @property
    def total(self) -> int:
        return sum(b.lessons for b in self.balances)


def statement(session: Session, contact_id: str, limit: int = 200) -> Statement:
    """A contact's credits: the balance per lesson length and the ledger, newest first."""
    if session.get(Contact, contact_id) is None:
        raise NotFound(f"Unknown contact '{contact_id}'.")
    return Statement(contact_id, balances(session, contact_id), entries(session, contact_id, limit))


@dataclass(frozen=True, slots=True)
class CreditRow:
    """One ledger entry as the console shows it."""

    created_at: datetime
    kind: str  # purchase | use | return | grant | refund
    minutes: int
    delta: int
    reason: str
    lesson_id: int | None
    payment_id: int | None
    actor: str


@dataclass(frozen=True, slots=True)
class CreditOverview:
    balances: dict[int, int]  # lesson length in minutes → lessons left
    entries: list[CreditRow]  # newest first


def credit_overview(session: Session, contact_id: str, limit: int = 200) -> CreditOverview:
    """The console's view of a contact's credits: balance per length and the ledger as rows."""
    found = statement(session, contact_id, limit)
    return CreditOverview(
        balances={b.minutes: b.lessons for b in found.balances},
        entries=[
            CreditRow(
                created_at=e.created_at,
                kind=e.kind,
                minutes=e.minutes,
                delta=e.delta,
                reason=e.reason,
                lesson_id=e.lesson_id,
                payment_id=e.payment_id,
                actor=e.actor,
            )
            for e in found.entries
        ],
    )


def entries(session: Session, contact_id: str, limit: int = 200) -> list[CreditEntry]:
    """The contact's ledger, newest first."""
    return list(
        session.exec(
            select(CreditEntry)
            .where(CreditEntry.contact_id == contact_id)
            .order_by(col(CreditEntry.created_at).desc(), col(CreditEntry.id).desc())
            .limit(limit)
        ).all()
    )


def _entry_by_key(session: Session, key: str) -> CreditEntry | None:
    return session.exec(select(CreditEntry).where(CreditEntry.key == key)).first()


def _add(session: Session, entry: CreditEntry) -> CreditEntry | None:
    """Insert an entry; None if its key was written before (also by a concurrent transaction)."""
    if entry.key is not None and _entry_by_key(session, entry.key) is not None:
        return None
    entry.created_at = clock.now()
    try:
        with session.begin_nested():
            session.add(entry)
    except IntegrityError:
        return None
    return entry


def use_credit(session: Session, contact: Contact, minutes: int, lesson: Lesson) -> CreditEntry | None:
    """Pay `lesson` with one of the contact's credits of `minutes`: the use entry (also when the
    lesson used one before), or None when the balance is 0."""
    key = f"{USE}:lesson-{stored_id(lesson)}"
    lock_contact(session, contact.id)
    existing = _entry_by_key(session, key)
    if existing is not None:
        return existing
    if balance(session, contact.id, minutes) < 1:
        return None
    return _add(
        session,
        CreditEntry(
            contact_id=contact.id,
            minutes=minutes,
            delta=-1,
            kind=USE,
            reason=f"lesson {lesson.id}",
            key=key,
            lesson_id=lesson.id,
        ),
    )


def has_credit(session: Session, contact_id: str, minutes: int) -> bool:
    """Whether the contact has a credit of `minutes` now (locks the contact: ask inside the
    transaction that will use it)."""
    lock_contact(session, contact_id)
    return balance(session, contact_id, minutes) >= 1


def paid_by_credit(session: Session, lesson_id: int) -> bool:
    return _entry_by_key(session, f"{USE}:lesson-{lesson_id}") is not None


def returned(session: Session, lesson_id: int) -> CreditEntry | None:
    return _entry_by_key(session, f"{RETURN}:lesson-{lesson_id}")


def return_credit(
    session: Session,
    lesson: Lesson,
    reason: str,
    *,
    actor: str = "system",
    payment: Payment | None = None,
) -> CreditEntry | None:
    """+1 credit of the lesson's length for a cancelled lesson (paid by credit or, under the
    `credit` policy or a staff choice, by money: then `payment` is what it came from). Once per
    lesson: None if it was returned before."""
    lock_contact(session, lesson.contact_id)
    return _add(
        session,
        CreditEntry(
            contact_id=lesson.contact_id,
            minutes=lesson_minutes(lesson),
            delta=1,
            kind=RETURN,
            reason=reason[:500],
            key=f"{RETURN}:lesson-{lesson.id}",
            lesson_id=lesson.id,
            payment_id=payment.id if payment is not None else None,
            actor=actor,
        ),
    )


def add_purchase(session: Session, payment: Payment) -> CreditEntry | None:
    """A paid bundle becomes `payment.quantity` credits of its length, once per payment."""
    if not payment.contact_id:
        raise ValidationFailed(f"Bundle payment {payment.checkout_session_id} has no contact.")
    lock_contact(session, payment.contact_id)
    return _add(
        session,
        CreditEntry(
            contact_id=payment.contact_id,
            minutes=payment.minutes,
            delta=payment.quantity,
            kind=PURCHASE,
            reason=f"bundle of {payment.quantity} paid",
            key=f"{PURCHASE}:payment-{payment.id}",
            payment_id=payment.id,
        ),
    )


def take_back_refunded_bundle(session: Session, payment: Payment) -> int:
    """A bundle refunded in full: its credits that are still unused are taken back (never below
    0; lessons already taken stay taken). Returns how many; once per payment."""
    if not payment.contact_id or _entry_by_key(session, f"{PURCHASE}:payment-{payment.id}") is None:
        return 0
    lock_contact(session, payment.contact_id)
    unused = min(payment.quantity, balance(session, payment.contact_id, payment.minutes))
    _close_returns_of_refunded_bundle(session, payment, payment.quantity - max(unused, 0))
    if unused <= 0:
        return 0
    entry = _add(
        session,
        CreditEntry(
            contact_id=payment.contact_id,
            minutes=payment.minutes,
            delta=-unused,
            kind=REFUND,
            reason=f"bundle refunded: {unused} unused of {payment.quantity} taken back",
            key=f"{REFUND}:payment-{payment.id}",
            payment_id=payment.id,
        ),
    )
    return unused if entry is not None else 0


def _close_returns_of_refunded_bundle(session: Session, payment: Payment, used: int) -> None:
    """The bundle's credits already spent on lessons still to come: their money is back, so a
    later cancel must not return them as credit. The latest `used` such lessons of the contact
    (credit-paid since the purchase, not cancelled, no return yet) get a zero return entry that
    takes the lesson's one return (its key) and says why."""
    if used <= 0 or not payment.contact_id:
        return
    purchase = _entry_by_key(session, f"{PURCHASE}:payment-{payment.id}")
    uses = session.exec(
        select(CreditEntry)
        .where(
            CreditEntry.contact_id == payment.contact_id,
            CreditEntry.minutes == payment.minutes,
            CreditEntry.kind == USE,
            col(CreditEntry.id) > (purchase.id if purchase is not None else 0),
        )
        .order_by(col(CreditEntry.id).desc())
    ).all()
    closed = 0
    for use in uses:
        if closed >= used:
            break
        lesson = session.get(Lesson, use.lesson_id) if use.lesson_id is not None else None
        if lesson is None or lesson.status not in CREDIT_RETURNABLE or returned(session, stored_id(lesson)):
            continue
        if _add(
            session,
            CreditEntry(
                contact_id=payment.contact_id,
                minutes=payment.minutes,
                delta=0,
                kind=REFUND,
                reason=f"bundle refunded: lesson {lesson.id}'s credit is not given back when it is cancelled",
                key=f"{RETURN}:lesson-{lesson.id}",
                lesson_id=lesson.id,
                payment_id=payment.id,
            ),
        ):
            closed += 1


def credit_returnable(session: Session, lesson_id: int) -> bool:
    """Paid with a credit and that credit not yet given back (nor closed by a bundle refund)."""
    return paid_by_credit(session, lesson_id) and returned(session, lesson_id) is None


def credit_given_for(session: Session, payment: Payment, lesson: Lesson) -> CreditEntry | None:
    """The credit `lesson`'s cancel gave for the money of `payment` (`on_time_cancel = credit`,
    or staff's choice), if it did."""
    given = returned(session, stored_id(lesson))
    return given if given is not None and given.payment_id == payment.id else None


def take_back_credit_of_refunded_payment(
    session: Session, payment: Payment, lesson: Lesson
) -> CreditEntry | None:
    """A payment refunded in full after the cancel of `lesson` (its one lesson, or one of its
    series) gave a credit for that money: the credit is taken back, never below 0. None when
    there is nothing to take back (then the customer has both: the caller alerts)."""
    given = credit_given_for(session, payment, lesson)
    if given is None:
        return None
    lock_contact(session, given.contact_id)
    if balance(session, given.contact_id, given.minutes) < 1:
        return None
    # One take-back per payment for a single lesson; a series' payment gives one per lesson.
    key = f"{REFUND}:payment-{payment.id}" + ("" if payment.lesson_id is not None else f":lesson-{lesson.id}")
    return _add(
        session,
        CreditEntry(
            contact_id=given.contact_id,
            minutes=given.minutes,
            delta=-1,
            kind=REFUND,
            reason=f"lesson {lesson.id} refunded after its cancel gave this credit",
            key=key,
            lesson_id=lesson.id,
            payment_id=payment.id,
        ),
    )


def grant(actor: User, contact_id: str, minutes: int, delta: int, reason: str) -> CreditEntry:
    """An admin grants (delta > 0) or corrects (delta < 0) a contact's credits of `minutes`, with
    a reason; audited. A correction that would take the balance below 0 is refused."""
    reason = (reason or "").strip()
    if not reason:
        raise ValidationFailed("Give a reason for the credit change.", field="reason")
    if minutes not in CREDIT_MINUTES:
        raise ValidationFailed(
            f"Credits are for lessons of {' or '.join(map(str, CREDIT_MINUTES))} minutes.", field="minutes"
        )
    if isinstance(delta, bool) or not isinstance(delta, int) or delta == 0 or abs(delta) > MAX_GRANT:
        raise ValidationFailed(
            f"The change must be a whole number of lessons between -{MAX_GRANT} and {MAX_GRANT}, not 0.",
            field="delta",
        )
    with write_session() as session:
        who = current_actor(session, actor, "admin")
        if session.get(Contact, contact_id) is None:
            raise NotFound(f"Contact '{contact_id}' does not exist.")
        lock_contact(session, contact_id)
        before = balance(session, contact_id, minutes)
        if before + delta < 0:
            raise ValidationFailed(
                f"The contact has {before} credit(s) of {minutes} minutes; taking {-delta} would go below 0.",
                field="delta",
            )
        entry = CreditEntry(
            contact_id=contact_id,
            minutes=minutes,
            delta=delta,
            kind=GRANT,
            reason=reason[:500],
            actor=who.email,
            created_at=clock.now(),
        )
        session.add(entry)
        session.flush()
        audit(
            session,
            who,
            "credit.grant",
            "Contact",
            contact_id,
            {"minutes": minutes, "balance": before},
            {"minutes": minutes, "delta": delta, "balance": before + delta, "reason": reason[:500]},
        )
    return entry
