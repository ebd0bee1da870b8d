"""Demo data for a first look (`python -m core.cli seed-demo`, run by `make run` on an empty
database): two tutors, 30 contacts across every segment, whitelist entries, time off, lessons
in every status with their payments, a few outbox messages, and a tutor and a finance account.

Demo rows are recognisable: Checkout Session ids start with `cs_demo_` and have no URL, because
no real Stripe session exists for them.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from sqlmodel import col, select

from core import clock
from core.calendars import event_id_for_lesson
from core.config import get_settings
from core.db import write_session
from core.messages import format_short, queue_message
from core.models import (
    CANCELLED,
    CONFIRMED,
    EXPIRED,
    HELD,
    NEEDS_RESCHEDULE,
    BusyBlock,
    Contact,
    Conversation,
    Lesson,
    Payment,
    SlotOffer,
    Tutor,
    stored_id,
)
from core.payments import rollup  # noqa: F401 - the demo's payments count in the daily totals
from core.profiles import seed_defaults
from core.segments import add_to_whitelist
from core.users import create_user

FIRST = [
    "Sanne",
    "Daan",
    "Emma",
    "Lucas",
    "Julia",
    "Sem",
    "Tess",
    "Finn",
    "Lotte",
    "Milan",
    "Noor",
    "Jesse",
    "Fleur",
    "Thijs",
    "Eva",
    "Bram",
    "Anouk",
    "Ruben",
    "Isa",
    "Lars",
    "Sophie",
    "Tim",
    "Lisa",
    "Jens",
    "Roos",
    "Stijn",
    "Femke",
    "Niels",
    "Iris",
    "Koen",
]
LAST = [
    "de Jong",
    "Jansen",
    "de Vries",
    "van den Berg",
    "van Dijk",
    "Bakker",
    "Janssen",
    "Visser",
    "Smit",
    "Meijer",
    "de Boer",
    "Mulder",
    "de Groot",
    "Bos",
    "Vos",
    "Peters",
    "Hendriks",
    "van Leeuwen",
    "Dekker",
    "Brouwer",
]
SUBJECTS = ["Wiskunde B", "Natuurkunde", "Scheikunde", "Engels", "Wiskunde A", "Economie", "Biologie"]


def _local(day_offset: int, hour: int, minute: int = 0) -> datetime:
    tz = get_settings().tz
    today = clock.now().astimezone(tz).date()
    day = today + timedelta(days=day_offset)
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=tz).astimezone(UTC)


def seed_demo(seed: int = 7) -> list[tuple[str, str, str]]:
    """Load the demo set; returns the demo accounts as (email, role, password)."""
    rng = random.Random(seed)
    now = clock.now()
    accounts: list[tuple[str, str, str]] = []
    with write_session() as s:
        seed_defaults(s)
        tutors = s.exec(select(Tutor).order_by(col(Tutor.id))).all()
        if tutors:
            anna = tutors[0]
            anna.name, anna.email = "Anna de Vries", "anna@lesplanner.local"
        else:
            anna = Tutor(
                name="Anna de Vries",
                email="anna@lesplanner.local",
                calendar_id=get_settings().gcal_calendar_id,
            )
            s.add(anna)
        bram = Tutor(
            name="Bram Jansen",
            email="bram@lesplanner.local",
            calendar_id="bram@lesplanner.local",
            profiles=["existing", "premium", "weekend"],
        )
        s.add(bram)
        s.flush()
        for email, role, name in [
            ("anna@lesplanner.local", "tutor", "Anna de Vries"),
            ("finance@lesplanner.local", "finance", "Fenna Financiën"),
        ]:
            _user, password = create_user(s, email, role, name, actor="seed-demo")
            accounts.append((email, role, password))

        contacts: list[Contact] = []
        for i in range(30):
            name = f"{FIRST[i]} {LAST[i % len(LAST)]}"
            phone = f"+316{rng.randrange(10_000_000, 99_999_999)}"
            email = f"{FIRST[i].lower()}.{LAST[i % len(LAST)].replace(' ', '').lower()}@leerling.test"
            attrs: dict = {}
            if 8 <= i < 18:  # existing customers, by each of the seed's indicators
                flag = [
                    "customer_since",
                    "has_paid_lesson",
                    "has_completed_intake",
                    "intake_completed",
                    "trial_lesson_completed",
                    "lesson_booked",
                ][i % 6]
                attrs[flag] = (now - timedelta(days=90 + i)).isoformat() if flag == "customer_since" else True
                if i == 17:
                    attrs = {"customer_status": "active"}
            if i in (22, 23):
                attrs["returning_broadcast"] = True
            if i == 26:
                attrs["weekend_whitelisted"] = True
            # The first 25 were entered by staff (e-mail confirmed); the last five came in through
            # the bot, so their e-mail addresses are their own word only.
            by_staff = i < 25
            contact = Contact(
                id=f"contact-{1001 + i}",
                name=name,
                email=email,
                phone=phone,
                attributes=attrs,
                created_at=now - timedelta(days=60 - i),
                email_confirmed=by_staff,
                staff_maintained=by_staff,
            )
            if i == 29:
                contact.profile_override = "premium"
            if i == 28:
                contact.segment_override = "existing"
            s.add(contact)
            contacts.append(contact)
            s.add(Conversation(id=f"conv-{5001 + i}", contact_id=contact.id, created_at=contact.created_at))
        s.flush()
        for c in contacts[18:21]:
            assert c.phone is not None  # the demo contacts all have both
            add_to_whitelist(s, "weekend", c.phone, note="Weekendgroep 2026", added_by="seed-demo")
        for c in contacts[20:25]:
            assert c.email is not None
            add_to_whitelist(
                s, "returning_broadcast", c.email, note="Schooljaar 2026-2027", added_by="seed-demo"
            )

        # Time off: Anna's Wednesday afternoons and a dentist visit; Bram's Friday.
        for week in range(3):
            s.add(
                BusyBlock(
                    tutor_id=stored_id(anna),
                    start=_local(2 + 7 * week, 13),
                    end=_local(2 + 7 * week, 17),
                    reason="Vrije middag",
                    created_by="seed-demo",
                )
            )
        s.add(
            BusyBlock(
                tutor_id=stored_id(anna),
                start=_local(1, 9),
                end=_local(1, 11),
                reason="Tandarts",
                created_by="seed-demo",
            )
        )
        s.add(
            BusyBlock(
                tutor_id=stored_id(bram),
                start=_local(4, 8),
                end=_local(4, 22),
                reason="Studiedag",
                created_by="seed-demo",
            )
        )

        plan = [  # (contact index, tutor, day offset, hour, status, payment status)
            (8, anna, -6, 15, CONFIRMED, "paid"),
            (9, anna, -5, 16, CONFIRMED, "paid"),
            (10, bram, -3, 10, CONFIRMED, "paid"),
            (11, anna, -2, 18, CONFIRMED, "paid"),
            (12, anna, 1, 15, CONFIRMED, "paid"),
            (13, bram, 1, 17, CONFIRMED, "paid"),
            (14, anna, 2, 10, CONFIRMED, "paid"),
            (15, anna, 3, 19, CONFIRMED, "paid"),
            (16, bram, 5, 11, CONFIRMED, "paid"),
            (29, bram, 6, 8, CONFIRMED, "paid"),
            (0, anna, 2, 11, HELD, "open"),
            (1, anna, 3, 11, HELD, "open"),
            (2, anna, 4, 14, NEEDS_RESCHEDULE, "paid"),
            (3, anna, 3, 14, CANCELLED, "refunded"),
            (4, anna, -1, 12, EXPIRED, "expired"),
            (5, anna, 5, 12, EXPIRED, "failed"),
            (
                18,
                bram,
                3 + (5 - (clock.now().astimezone(get_settings().tz).weekday() + 3) % 7) % 7,
                12,
                CONFIRMED,
                "paid",
            ),
        ]
        booked_at: dict[int, datetime] = {}
        for n, (ci, tutor, day, hour, status, pay_status) in enumerate(plan):
            contact = contacts[ci]
            duration = 90 if ci == 29 else 60
            start = _local(day, hour)
            profile = (
                "premium" if ci == 29 else ("weekend" if ci == 18 else ("new" if ci < 8 else "existing"))
            )
            lesson = Lesson(
                conversation_id=f"conv-{5001 + ci}",
                contact_id=contact.id,
                tutor_id=stored_id(tutor),
                profile_name=profile,
                start=start,
                end=start + timedelta(minutes=duration),
                title=f"{SUBJECTS[n % len(SUBJECTS)]} — {contact.name}",
                description="Proefles" if ci < 8 else "Vervolgles",
                status=status,
                created_at=start - timedelta(days=3),
                updated_at=now,
            )
            if status == HELD:
                lesson.hold_expires_at = now + timedelta(minutes=12 + 10 * n % 20)
            if status == CANCELLED:
                lesson.cancel_reason = "Afgezegd door klant"
            s.add(lesson)
            s.flush()
            booked_at.setdefault(ci, lesson.created_at)
            if status == CONFIRMED:
                lesson.calendar_event_id = event_id_for_lesson(stored_id(lesson))
                lesson.calendar_sync = "synced"
            minutes = duration
            s.add(
                Payment(
                    checkout_session_id=f"cs_demo_{lesson.id:04d}{rng.randrange(10**6):06d}",
                    payment_intent_id=f"pi_demo_{lesson.id:04d}"
                    if pay_status in ("paid", "refunded")
                    else None,
                    order_id=f"lesson-{lesson.id}",
                    conversation_id=lesson.conversation_id,
                    contact_id=contact.id,
                    lesson_id=lesson.id,
                    segment="weekend" if profile == "weekend" else ("new" if ci < 8 else "existing"),
                    minutes=minutes,
                    price_id=f"price_demo_{minutes}",
                    amount=6500 if minutes == 60 else 9500,
                    currency="eur",
                    status=pay_status,
                    expires_at=lesson.hold_expires_at or lesson.created_at + timedelta(minutes=30),
                    paid_at=lesson.created_at + timedelta(minutes=5)
                    if pay_status in ("paid", "refunded")
                    else None,
                    created_at=lesson.created_at,
                    updated_at=now,
                )
            )
            key = {
                CONFIRMED: "booking_confirmed",
                EXPIRED: "hold_expired",
                NEEDS_RESCHEDULE: "slot_lost",
                CANCELLED: "lesson_cancelled",
            }.get(status)
            if key:
                queue_message(
                    s,
                    lesson.conversation_id,
                    key,
                    dedupe_key=f"demo:{key}:{lesson.id}",
                    when=format_short(lesson.start),
                    alternatives="-",
                )
        # What the bot offered each conversation (the Insights funnel starts here): just before
        # its booking, or on a day in the last eight weeks for those that did not book.
        for ci, contact in enumerate(contacts):
            segment = "new" if ci < 8 else ("weekend" if 18 <= ci <= 20 else "existing")
            when = booked_at.get(ci)
            when = (
                min(when, now) - timedelta(minutes=rng.randrange(5, 240))
                if when
                else now - timedelta(days=rng.randrange(1, 56), hours=rng.randrange(0, 10))
            )
            s.add(
                SlotOffer(
                    conversation_id=f"conv-{5001 + ci}",
                    contact_id=contact.id,
                    profile_name="premium" if ci == 29 else segment,
                    segment=segment,
                    slots=6,
                    offered_at=when,
                )
            )
    return accounts
