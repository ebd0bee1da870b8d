"""Console pages through AppTest: what each role sees, and one action per page that changes the
database (cancel a lesson, edit a profile, add a whitelist entry, ...), checked in the database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import select

from core import worker
from core.calendars import event_id_for_lesson, set_backend
from core.calendars.local import LocalCalendarBackend
from core.db import read_session, write_session
from core.errors import CalendarUnavailable, PermissionDenied
from core.lesson_changes import cancel_lesson
from core.models import (
    PAYMENT_STATUSES,
    AuditLog,
    BusyBlock,
    Closure,
    Contact,
    Job,
    Lesson,
    OutboxMessage,
    Payment,
    PlanningProfile,
    Tutor,
    TutorHours,
    User,
    WhitelistEntry,
)
from tests.conftest import AMS
from tests.support.console import (  # noqa: F401 - fast_passwords is a fixture
    ADMIN,
    FINANCE,
    OTHER_TUTOR,
    TRICKY_NAME,
    TUTOR,
    as_user,
    build_console_data,
    click,
    click_key,
    fast_passwords,
    lesson,
    ok,
    page,
    table_text,
)
from ui.charts import PAYMENT_COLOURS

pytest_plugins = ["tests.support.console"]
pytestmark = pytest.mark.usefixtures("fast_passwords")


# --- lessons -----------------------------------------------------------------------------------


def test_admin_cancels_a_lesson_only_after_confirming(world):
    at = page(ADMIN, "lessons")
    ok(at)
    at.selectbox(key="lessons_pick").set_value(world["confirmed"]).run()
    assert "lesplanner00000001" in table_text(at)  # calendar event id in the detail
    at.text_input(key="cancel_reason").set_value("docent ziek")
    at = click(at, "Les annuleren")
    assert "Vink de bevestiging aan" in at.warning[0].value
    assert lesson(world["confirmed"]).status == "confirmed"
    at.checkbox(key="cancel_confirm").check()
    at = click(at, "Les annuleren")
    ok(at)
    assert lesson(world["confirmed"]).status == "cancelled"
    assert lesson(world["confirmed"]).cancel_reason == "docent ziek"
    assert any("geannuleerd" in s.value for s in at.success)


def test_a_tutor_sees_only_their_own_lessons_and_cannot_cancel_another_tutors(world, engine):
    at = page(TUTOR, "lessons")
    ok(at)
    shown = table_text(at)
    assert "Anna de Vries" in shown and "Bram Jansen" not in shown
    assert world["other"] not in at.selectbox(key="lessons_pick").options
    with read_session() as s:
        anna = s.exec(select(User).where(User.email == TUTOR)).one()
    with pytest.raises(PermissionDenied):  # and core refuses whatever the page shows
        cancel_lesson(world["other"], actor=anna, reason="x")
    assert lesson(world["other"]).status == "confirmed"


def _past_lesson(contact: str = "c-2") -> int:
    """A confirmed lesson of Anna's that ended yesterday afternoon."""
    with write_session() as s:
        anna = s.exec(select(Tutor).where(Tutor.email == TUTOR)).one()
        row = Lesson(
            conversation_id=f"conv-{contact}",
            contact_id=contact,
            tutor_id=anna.id,
            profile_name="existing",
            start=datetime(2026, 11, 29, 14, 0, tzinfo=UTC),
            end=datetime(2026, 11, 29, 15, 0, tzinfo=UTC),
            title="Wiskunde",
            status="confirmed",
        )
        s.add(row)
        s.flush()
        return row.id


def test_a_tutor_marks_a_past_lesson_no_show_in_one_click(world):
    lesson_id = _past_lesson()
    at = page(TUTOR, "lessons")
    ok(at)
    assert any(f"#{lesson_id}" in m.value for m in at.markdown)

    at = click_key(at, f"noshow_{lesson_id}")
    ok(at)

    assert lesson(lesson_id).outcome == "no_show"
    assert not any(f"#{lesson_id}" in m.value for m in at.markdown)  # marked: off the list
    with read_session() as s:
        assert s.exec(select(AuditLog).where(AuditLog.action == "lesson.attendance")).one().after == {
            "outcome": "no_show"
        }
    contacts = page(ADMIN, "contacts")
    contacts.text_input(key="contacts_query").set_value("Daan").run()
    assert "Niet verschenen: 1" in table_text(contacts) or "niet verschenen: 1" in table_text(contacts)


def test_finance_reads_lessons_without_any_action(world):
    at = page(FINANCE, "lessons")
    ok(at)
    at.selectbox(key="lessons_pick").set_value(world["confirmed"]).run()
    ok(at)
    assert not at.form  # no cancel or reschedule form
    assert any("Alleen-lezen" in c for c in at.caption.values)


def test_admin_reschedules_a_paid_lesson_to_an_offered_slot(world):
    at = page(ADMIN, "lessons")
    at.selectbox(key="lessons_pick").set_value(world["moved"]).run()
    at.toggle(key=f"resched_open_{world['moved']}").set_value(True).run()
    ok(at)
    before = lesson(world["moved"])
    at = click(at, "Verzetten")
    ok(at)
    assert at.success, "the page says the lesson was moved"
    moved = lesson(world["moved"])  # the same lesson, at the first offered time, confirmed
    assert moved.status == "confirmed" and moved.start != before.start
    assert moved.end - moved.start == before.end - before.start
    with read_session() as s:
        assert [row.id for row in s.exec(select(Lesson).where(Lesson.conversation_id == "conv-c-3"))] == [
            moved.id
        ]
        payment = s.exec(select(Payment).where(Payment.checkout_session_id == "cs_test_paid_3")).one()
        told = s.exec(select(OutboxMessage).where(OutboxMessage.conversation_id == "conv-c-3")).all()
    assert payment.lesson_id == moved.id and payment.status == "paid"
    assert [m.key for m in told] == ["booking_confirmed"]
    assert moved.calendar_sync == "pending"
    worker.drain()
    assert lesson(moved.id).calendar_sync == "synced"
    assert lesson(moved.id).calendar_event_id == event_id_for_lesson(moved.id)


def test_lesson_filters_narrow_the_table_and_say_what_to_do_when_empty(world):
    at = page(ADMIN, "lessons")
    at.multiselect(key="lessons_status").select("expired").run()
    ok(at)
    assert "Geen lessen gevonden" in at.info[0].value


def test_customer_text_is_never_rendered_as_markdown(world):
    at = page(ADMIN, "lessons")
    at.selectbox(key="lessons_pick").set_value(world["moved"]).run()
    assert TRICKY_NAME in table_text(at)  # shown as plain text in a table
    for element in (*at.markdown, *at.caption, *at.title, *at.subheader):
        assert "<b>html</b>" not in element.value


# --- availability ------------------------------------------------------------------------------


def test_availability_shows_the_week_free_slots_and_adds_time_off(world):
    at = page(TUTOR, "availability")
    ok(at)
    assert at.get("arrow_vega_lite_chart") or at.get("vega_lite_chart")
    assert not any("Wat de bot" in h.value for h in at.subheader)  # no customer search for tutors
    assert "Datum" in at.dataframe[0].value.columns
    at.date_input(key="to_from_day").set_value(datetime(2026, 12, 7).date())
    at.date_input(key="to_to_day").set_value(datetime(2026, 12, 7).date())
    at = click(at, "Vrij nemen toevoegen")
    ok(at)
    with read_session() as s:
        blocks = s.exec(select(BusyBlock).where(BusyBlock.created_by == TUTOR)).all()
    assert [(b.start.astimezone(AMS).hour, b.end.astimezone(AMS).hour) for b in blocks] == [(9, 17)]


def test_week_navigation_moves_a_week_at_a_time(world):
    at = page(ADMIN, "availability")
    before = at.caption.values[0]
    at = click(at, "Volgende week →")
    ok(at)
    assert at.caption.values[0] != before and "7 dec" in at.caption.values[0]


def test_what_the_bot_would_offer_a_contact(world):
    at = page(ADMIN, "availability")
    at.text_input(key="avail_bot_query").set_value("Lotte").run()
    ok(at)
    assert any("weekend" in m.value for m in at.markdown)


class _DownCalendar(LocalCalendarBackend):
    def busy(self, calendar_ids, start, end):  # noqa: ANN001, ANN201
        raise CalendarUnavailable("Google Calendar answered 503 for anna@calendar.")


def test_an_unreadable_calendar_is_an_error_and_never_fake_free_slots(world):
    set_backend(_DownCalendar())
    at = as_user(TUTOR)
    assert "503" in at.error[0].value
    assert "Vrije tijden deze week" in [h.value for h in at.subheader]
    assert not any("Datum" in df.value.columns for df in at.dataframe)


# --- profiles ----------------------------------------------------------------------------------


def test_an_invalid_profile_edit_names_the_field_and_saves_nothing(world):
    at = page(ADMIN, "profiles")
    ok(at)
    at.number_input(key="pf_existing_earliest_hour").set_value(20)
    at.number_input(key="pf_existing_latest_hour").set_value(10)
    at = click(at, "Opslaan")
    assert "earliest_hour" in at.error[0].value and "Vroegste uur" in at.error[0].value
    with read_session() as s:
        assert s.get(PlanningProfile, "existing").earliest_hour == 9


def test_a_profile_edit_is_previewed_then_saved_and_audited(world):
    at = page(ADMIN, "profiles")
    at.number_input(key="pf_existing_max_suggestions").set_value(3)
    at = click(at, "Voorbeeld")
    ok(at)
    [preview] = [df.value for df in at.dataframe if list(df.value.columns) == ["Wanneer"]]
    assert len(preview) == 3
    at = click(at, "Opslaan")
    ok(at)
    with read_session() as s:
        assert s.get(PlanningProfile, "existing").max_suggestions == 3
    assert "profile.update" in table_text(at)


def test_an_admin_sets_a_profiles_reminder_hours(world):
    at = page(ADMIN, "profiles")
    at.text_input(key="pf_existing_reminder_hours").set_value("48, 2")
    at = click(at, "Opslaan")
    ok(at)

    with read_session() as s:
        assert s.get(PlanningProfile, "existing").reminder_hours == [2, 48]


# --- contacts, whitelists ----------------------------------------------------------------------


def test_admin_pins_a_contacts_segment(world):
    at = page(ADMIN, "contacts")
    ok(at)
    at.text_input(key="contacts_query").set_value("Daan").run()
    at.selectbox(key="ov_seg_c-2").set_value("weekend")
    at = click(at, "Overrides opslaan")
    ok(at)
    with read_session() as s:
        assert s.get(Contact, "c-2").segment_override == "weekend"


def test_admin_corrects_and_confirms_a_contacts_details(world):
    at = page(ADMIN, "contacts")
    at.text_input(key="contacts_query").set_value("Daan").run()
    assert "de klant via de bot (niet gecontroleerd)" in table_text(at)
    at.text_input(key="cd_email_c-2").set_value("Daan@Example.nl")
    at.checkbox(key="cd_confirmed_c-2").check()
    at = click(at, "Gegevens opslaan")
    ok(at)
    with read_session() as s:
        contact = s.get(Contact, "c-2")
    assert (contact.email, contact.email_confirmed, contact.staff_maintained) == (
        "daan@example.nl",
        True,
        True,
    )
    assert "het team" in table_text(at)


def test_admin_adds_a_whitelist_entry(world):
    at = page(ADMIN, "whitelists")
    ok(at)
    at.text_input(key="wl_add_identifier").set_value("06 8765 4321")
    at = click(at, "Toevoegen")
    ok(at)
    with read_session() as s:
        assert s.exec(select(WhitelistEntry).where(WhitelistEntry.identifier == "+31687654321")).one()
    assert "+31687654321" in table_text(at)


def test_whitelist_csv_import_previews_invalid_rows_before_importing(world):
    at = page(ADMIN, "whitelists")
    at.file_uploader[0].upload("nummers.csv", b"telefoon\n0612345678\nabc\n0611112222\n", "text/csv")
    at.run()
    ok(at)
    assert "1 nieuw, 1 al aanwezig of dubbel, 1 ongeldig" in "".join(m.value for m in at.markdown)
    at = click(at, "Importeer 1 nieuwe kenmerken")
    ok(at)
    with read_session() as s:
        assert s.exec(select(WhitelistEntry).where(WhitelistEntry.identifier == "+31612345678")).one()


# --- payments, integrations, users -------------------------------------------------------------


def test_finance_sees_totals_holds_reschedules_and_failed_events(world):
    at = page(FINANCE, "payments")
    ok(at)
    text = table_text(at)
    assert "cs_test_paid_1" in text and "evt_failed_1" in text and "Daan Visser" in text
    assert any("dashboard.stripe.com" in str(v) for df in at.dataframe for v in df.value.get("Stripe", []))
    at = click(at, "Opnieuw verwerken")
    ok(at)
    shown = [s.value.replace("\\", "") for s in at.success]  # the markdown source is escaped
    assert any("evt_failed_1" in m and "Lesson 2 is confirmed" in m for m in shown), shown
    assert lesson(world["held"]).status == "confirmed"  # the retried payment confirmed the hold
    assert "Geen mislukte Stripe-events" in " ".join(at.caption.values)


def test_a_payment_search_that_finds_nothing_says_so_instead_of_blaming_the_period(world):
    """Seen in the browser: searching "PAID_1" on the demo data showed "No payments in this
    period. Choose a wider date range." — the period was fine, the search found nothing."""
    at = page(FINANCE, "payments")
    at.text_input(key="pay_query").set_value("geen-zo-id").run()
    ok(at)
    shown = " ".join(at.info.values)
    assert "Geen betalingen gevonden met „geen-zo-id” in deze periode." in shown
    assert "Kies een ruimere periode" not in shown


def test_finance_refunds_half_a_payment_with_a_reason(world):
    at = page(FINANCE, "payments")
    with read_session() as s:
        paid_id = s.exec(select(Payment).where(Payment.checkout_session_id == "cs_test_paid_1")).one().id
    at.selectbox(key="refund_pick").set_value(paid_id).run()
    at.number_input(key="refund_amount").set_value(22.50)
    at.text_input(key="refund_reason").set_value("les half gegeven")
    at.checkbox(key="refund_confirm").check()
    at = click(at, "Terugbetalen")
    ok(at)

    with read_session() as s:
        job = s.exec(select(Job).where(Job.kind == "stripe.refund")).one()
    assert (job.payload["payment_id"], job.payload["amount"], job.payload["reason"]) == (
        paid_id,
        2250,
        "les half gegeven",
    )
    assert any("22,50" in m.value for m in at.success)


def test_finance_sees_a_dispute_with_its_evidence_due_date(world):
    with write_session() as s:
        paid = s.exec(select(Payment).where(Payment.checkout_session_id == "cs_test_paid_1")).one()
        paid.status, paid.dispute_status = "disputed", "needs_response"
        paid.dispute_due_by = datetime(2026, 12, 10, 22, 59, tzinfo=UTC)
    at = page(FINANCE, "payments")
    ok(at)

    text = table_text(at)
    assert "needs_response" in text and "10 dec 2026" in text


def test_integrations_run_the_calendar_check_on_request(world, engine):
    at = page(ADMIN, "integrations")
    ok(at)
    assert engine.dialect.name in table_text(at)
    if engine.url.password:
        assert str(engine.url.password) not in table_text(at)
    at = click(at, "Agenda's controleren")
    ok(at)
    assert "embedded calendar" in table_text(at)


def test_admin_creates_an_account_and_sees_its_password_once(world):
    at = page(ADMIN, "users")
    ok(at)
    at.text_input(key="new_user_email").set_value("nieuw@example.nl")
    at.selectbox(key="new_user_role").set_value("finance")
    at = click(at, "Aanmaken")
    ok(at)
    assert len(at.code) == 1 and len(at.code[0].value) >= 12
    with read_session() as s:
        assert s.exec(select(User).where(User.email == "nieuw@example.nl")).one().role == "finance"
    at.run()
    assert not at.code  # shown once


def test_holds_list_is_relative_to_now(world, frozen_now):
    frozen_now(datetime(2026, 11, 30, 8, 0, tzinfo=AMS) - timedelta(hours=2))
    at = page(FINANCE, "payments")
    ok(at)
    assert "Geen openstaande holds" in " ".join(at.caption.values)


# --- planning: closures and tutors' hours (issue 16) ---------------------------------------------


def test_admin_imports_school_holidays_after_a_preview_and_adds_a_closure(world):
    at = page(ADMIN, "closures")
    ok(at)
    assert "Eerste kerstdag" in table_text(at)  # the public holidays of the coming year
    at.file_uploader[0].upload(
        "vakanties.csv",
        b"naam;regio;van;tot\nKerstvakantie;midden;19-12-2026;03-01-2027\nX;oost;1-1-2027;2-1-2027\n",
        "text/csv",
    )
    at.run()
    ok(at)
    assert "1 nieuw, 0 al aanwezig of dubbel, 1 ongeldig" in "".join(m.value for m in at.markdown)
    at = click(at, "Importeer 1 schoolvakanties")
    ok(at)
    at.text_input(key="clo_add_name").set_value("Teamuitje")
    at = click(at, "Toevoegen")
    ok(at)
    with read_session() as s:
        rows = {(c.name, c.source, c.region) for c in s.exec(select(Closure)).all()}
    assert rows == {("Kerstvakantie", "import", "midden"), ("Teamuitje", "admin", None)}


def test_a_tutor_sets_their_own_working_hours(world):
    at = page(TUTOR, "tutors")
    ok(at)
    assert len(at.selectbox[0].options) == 1  # only their own
    at.text_input(key=next(t.key for t in at.text_input if t.label == "dinsdag")).set_value("18:00-21:00")
    at = click(at, "Werktijden opslaan")
    ok(at)
    with read_session() as s:
        hours = s.exec(select(TutorHours)).all()
    assert [(h.weekday, h.start_minute, h.end_minute) for h in hours] == [(1, 1080, 1260)]


def test_the_payments_chart_has_a_colour_for_every_payment_status():
    # A status without a colour falls outside the chart's colour scale and its bar disappears
    # (a partly refunded payment did, issue 14).
    assert set(PAYMENT_COLOURS) == set(PAYMENT_STATUSES)


def test_refresh_in_the_sidebar_shows_a_change_made_elsewhere_at_once(world):
    """Reads are cached for 30 s; a webhook or another user may change a row meanwhile. The
    sidebar's refresh button forgets the cached reads, so the page shows the change at once."""
    at = page(FINANCE, "payments")
    ok(at)
    with write_session() as s:
        paid = s.exec(select(Payment).where(Payment.checkout_session_id == "cs_test_paid_1")).one()
        paid.status, paid.dispute_status = "disputed", "needs_response"
    at.run()
    assert "needs_response" not in table_text(at)  # still the cached read
    at = click_key(at, "refresh")
    ok(at)
    assert "needs_response" in table_text(at)


def test_the_payments_chart_writes_amounts_the_dutch_way():
    """Axis ticks like "120,000" read as 120 euros to a Dutch reader: in Dutch the thousands are
    grouped with a dot and decimals follow a comma ("120.000", "22,50")."""
    from datetime import date

    from core.payments.queries import PaymentTotal
    from ui.charts import payments_chart

    spec = payments_chart([PaymentTotal(date(2026, 12, 1), "paid", "eur", 3, 12_345_678)], "day").to_dict()
    number = spec["config"]["locale"]["number"]
    assert (number["decimal"], number["thousands"], number["grouping"]) == (",", ".", [3])
