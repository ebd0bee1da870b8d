"""The console's side of credits and bundles (issues 15, 14): Contacten shows a contact's credit
balance and ledger and lets admins grant or correct with a reason; Betalingen shows what a
payment covers (a lesson, a bundle of N) and links to the receipt; Lessen lets staff choose what
a cancel gives back."""

from __future__ import annotations

import pytest
from sqlmodel import select

from core import credits
from core.db import read_session, write_session
from core.models import AuditLog, CreditEntry, Payment
from tests.support.console import ADMIN, FINANCE, click, fast_passwords, lesson, ok, page, table_text  # noqa: F401 - a fixture  # noqa: F401

pytest_plugins = ["tests.support.console"]
pytestmark = pytest.mark.usefixtures("fast_passwords")


def test_admin_grants_a_credit_with_a_reason_and_sees_the_ledger(world):  # noqa: F811
    at = page(ADMIN, "contacts")
    ok(at)
    at.text_input(key="contacts_query").set_value("Daan").run()
    assert "0 les(sen) van 60 min" in " ".join(m.value for m in at.markdown)
    at.number_input(key="cr_delta_c-2").set_value(2)
    at.text_input(key="cr_reason_c-2").set_value("les gemist door docent")
    at = click(at, "Tegoed aanpassen")
    ok(at)

    with read_session() as s:
        assert credits.balance(s, "c-2", 60) == 2
        assert s.exec(select(AuditLog).where(AuditLog.action == "credit.grant")).one()
    assert "2 les(sen) van 60 min" in " ".join(m.value for m in at.markdown)
    assert "les gemist door docent" in table_text(at)


def test_a_correction_below_zero_is_refused_with_a_message(world):  # noqa: F811
    at = page(ADMIN, "contacts")
    at.text_input(key="contacts_query").set_value("Daan").run()
    at.number_input(key="cr_delta_c-2").set_value(-1)
    at.text_input(key="cr_reason_c-2").set_value("typo")
    at = click(at, "Tegoed aanpassen")
    assert at.error and "below 0" in at.error[0].value


def test_betalingen_shows_a_bundle_and_its_invoice(world):  # noqa: F811
    with write_session() as s:
        paid = s.exec(select(Payment).where(Payment.checkout_session_id == "cs_test_paid_1")).one()
        paid.kind, paid.quantity = "bundle", 5
        paid.invoice_url = "https://invoice.stripe.com/i/acct_1/test_abc"
    at = page(FINANCE, "payments")
    ok(at)
    text = table_text(at)
    assert "Bundel van 5 lessen" in text
    assert any("invoice.stripe.com" in str(v) for df in at.dataframe for v in df.value.get("Factuur", []))


def test_staff_choose_credit_when_cancelling_on_lessen(world):  # noqa: F811
    at = page(ADMIN, "lessons")
    at.selectbox(key="lessons_pick").set_value(world["confirmed"]).run()
    radio = at.radio(key=f"cancel_consequence_{world['confirmed']}")
    assert radio.value in ("refund", "none")
    radio.set_value("none")
    at.checkbox(key="cancel_confirm").check()
    at = click(at, "Les annuleren")
    ok(at)
    assert lesson(world["confirmed"]).status == "cancelled"
    with read_session() as s:
        log = s.exec(select(AuditLog).where(AuditLog.action == "lesson.cancel")).one()
    assert log.after["consequence"] == "none"


def test_lessen_says_a_lesson_was_paid_with_a_credit(world):  # noqa: F811
    with write_session() as s:
        booked = lesson(world["confirmed"])
        s.add(
            CreditEntry(
                contact_id=booked.contact_id,
                minutes=60,
                delta=-1,
                kind="use",
                key=f"use:lesson-{booked.id}",
                lesson_id=booked.id,
            )
        )
    at = page(ADMIN, "lessons")
    at.selectbox(key="lessons_pick").set_value(world["confirmed"]).run()
    ok(at)
    assert "Betaald met lestegoed." in " ".join(at.caption.values)
