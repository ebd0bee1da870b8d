"""The console in a real browser: `streamlit run app.py` as a subprocess on a prepared SQLite
database, driven by Playwright with Debian's chromium. Each role signs in, opens its pages, sees
their content, and each admin page makes one edit that is then checked in the database.
Full-page screenshots land in artifacts/screenshots/ (git-ignored) for a human to look at.

Chromium missing is a failure, not a skip: `make test` installs it (apt-get install chromium).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
from sqlmodel import select

from core import clock, jobs, payments
from core.config import set_settings
from core.db import make_engine, read_session, reset_engines, write_session
from core.models import AuditLog, BusyBlock, Contact, Lesson, Payment, PlanningProfile, User, WhitelistEntry
from tests.conftest import make_settings
from tests.fakes.stripe_fixtures import WEBHOOK_SECRET, _stripe_values
from tests.fakes.stripe_server import FakeStripe
from tests.procs import free_port
from tests.support.console import ADMIN, FINANCE, PASSWORD, TUTOR, build_console_data

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TIMEOUT_MS = 20_000
# The console here runs on its own SQLite file, whatever LESPLANNER_TEST_DB says: one pass is enough.
pytestmark = pytest.mark.sqlite_only


@pytest.fixture(scope="module")
def database(tmp_path_factory) -> Iterator[tuple[str, dict]]:
    """A migrated SQLite database with the console demo rows (the lead's migrations)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('browser')}/console.db"
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "core.cli", "migrate"],
        cwd=ROOT,
        env=env,
        check=True,
        capture_output=True,
        timeout=120,
    )
    engine = make_engine(url)
    ids = build_console_data(engine)
    engine.dispose()
    yield url, ids


@pytest.fixture(scope="module")
def console(database) -> Iterator[str]:
    url, _ = database
    port = free_port()
    env = {**os.environ, "DATABASE_URL": url, "CALENDAR_BACKEND": "local", "PYTHONUNBUFFERED": "1"}
    log = SHOTS.parent / "streamlit.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.headless",
                "true",
                "--server.port",
                str(port),
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                    if response.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"streamlit did not start; see {log}:\n{log.read_text()[-2000:]}")
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture(scope="module")
def browser():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: install it with `apt-get install -y chromium` (make test does).")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        instance = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(
        viewport={"width": 1440, "height": 900}, locale="nl-NL", timezone_id="Europe/Amsterdam"
    )
    tab = context.new_page()
    tab.set_default_timeout(TIMEOUT_MS)
    yield tab
    context.close()


def _db(database):
    engine = make_engine(database[0])
    return engine


# --- helpers -----------------------------------------------------------------------------------


def settle(page) -> None:  # noqa: ANN001
    """Wait until Streamlit has finished the current run (its status widget disappears)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')"
        " && document.querySelectorAll('[data-stale=\"true\"]').length === 0",
        timeout=TIMEOUT_MS,
    )
    page.wait_for_timeout(200)


def heading(page, text: str) -> None:  # noqa: ANN001
    page.get_by_role("heading", name=text, exact=True).first.wait_for()


def sign_in(page, base: str, email: str, path: str = "") -> None:  # noqa: ANN001
    page.goto(f"{base}/{path}")
    page.get_by_label("E-mailadres").fill(email)
    page.get_by_label("Wachtwoord").fill(PASSWORD)
    page.get_by_role("button", name="Inloggen").click()
    page.get_by_role("button", name="Uitloggen").wait_for()
    settle(page)


def choose(page, label: str, option: str) -> None:  # noqa: ANN001
    """Pick an option of a selectbox by typing into its search box, and wait until the box shows
    it: on a loaded machine a rerun can replace the list under the click, and a button pressed
    next would then send the old value (seen in CI: "Opgeslagen." with nothing changed)."""
    box = page.get_by_label(label, exact=True)
    for _ in range(5):
        try:
            box.click()
            box.fill(option.strip())
            page.get_by_role("option", name=re.compile(re.escape(option))).first.click(timeout=8_000)
            settle(page)
            if option.strip() in box.input_value():  # the combobox shows the chosen option
                return
        except PlaywrightError as exc:
            # A rerun still swapping the widget: for a moment the old and the new box are both
            # on the page (seen in CI after picking a contact: "resolved to 2 elements"), or it
            # closed the list before the option showed (seen at load 10: the option never came).
            if "strict mode violation" not in str(exc) and not isinstance(exc, PlaywrightTimeoutError):
                raise
            settle(page)
    raise AssertionError(f"the selectbox {label!r} shows {box.input_value()!r}, not {option!r}")


def open_page(page, title: str) -> None:  # noqa: ANN001
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title).click()
    heading(page, title)
    settle(page)


def shot(page, name: str) -> None:  # noqa: ANN001
    """A full-page screenshot: Streamlit scrolls inside its main container, so the viewport is
    first made as tall as that content."""
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=\"stMain\"]') || document.body;"
        " return Math.max(m.scrollHeight, document.body.scrollHeight); }"
    )
    page.set_viewport_size({"width": 1440, "height": min(max(900, int(height) + 40), 6000)})
    page.wait_for_timeout(400)
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
    page.set_viewport_size({"width": 1440, "height": 900})


def grid_text(page, *needles: str) -> str:  # noqa: ANN001
    """The text of every dataframe (glide-data-grid keeps an accessible table in the DOM), once
    every needle shows up in it (grids render a moment after the run ends)."""
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while True:
        text = " ".join(page.locator("[data-testid='stDataFrame'] table").all_inner_texts())
        if all(n in text for n in needles) or time.monotonic() > deadline:
            return text
        page.wait_for_timeout(200)


def migration_head() -> str:
    """The newest migration's revision: what `core.cli migrate` left the database at."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(Config(str(ROOT / "alembic.ini"))).get_current_head()


def nav_links(page) -> list[str]:  # noqa: ANN001
    # Each link's text starts with its icon's ligature name ("calendar_month"); the title is last.
    return [
        t.split("\n")[-1].strip()
        for t in page.get_by_test_id("stSidebarNav").get_by_role("link").all_inner_texts()
    ]


# --- tests -------------------------------------------------------------------------------------


def test_a_wrong_password_is_refused(console, page):
    page.goto(console)
    page.get_by_label("E-mailadres").fill(ADMIN)
    page.get_by_label("Wachtwoord").fill("fout-wachtwoord")
    page.get_by_role("button", name="Inloggen").click()
    page.get_by_text("E-mailadres of wachtwoord klopt niet").wait_for()
    shot(page, "signin_wrong_password")


def test_tutor_sees_availability_and_own_lessons_only(console, page):
    sign_in(page, console, TUTOR, "payments")  # a deep link to a page the tutor may not open
    heading(page, "Beschikbaarheid")  # the tutor's start page instead
    assert nav_links(page) == ["Beschikbaarheid", "Lessen", "Docenten"]
    assert page.get_by_role("heading", name="Betalingen").count() == 0
    page.locator("[data-testid='stVegaLiteChart'], .vega-embed").first.wait_for()
    shot(page, "tutor_availability")
    open_page(page, "Lessen")
    text = grid_text(page, "Anna de Vries")
    assert "Anna de Vries" in text and "Bram Jansen" not in text
    shot(page, "tutor_lessons")


def test_finance_sees_payments_and_read_only_lessons(console, page, database):
    engine = _db(database)
    with write_session(engine) as s:  # a good month: the status cards must show it in full
        paid = s.exec(select(Payment).where(Payment.checkout_session_id == "cs_test_paid_1")).one()
        paid.amount = 12_345_678
    engine.dispose()
    sign_in(page, console, FINANCE, "payments")  # a deep link survives signing in
    heading(page, "Betalingen")
    assert nav_links(page) == ["Lessen", "Betalingen", "Inzichten"]
    text = grid_text(page, "cs_test_paid_1", "evt_failed_1")
    assert "cs_test_paid_1" in text and "evt_failed_1" in text
    values = page.get_by_test_id("stMetricValue")
    assert values.count() >= 8
    cut = values.evaluate_all(  # the value or the element inside it that ellipsis-cuts the text
        "els => els.filter(e => [e, ...e.querySelectorAll('*')].some(x => x.scrollWidth > x.clientWidth))"
        ".map(e => e.innerText)"
    )
    assert not cut, f"status cards cut their amounts: {cut}"
    assert "€ 123.501,78" in values.all_inner_texts()  # with the other paid payment
    shot(page, "finance_payments_cards")
    shot(page, "finance_payments")
    open_page(page, "Lessen")
    page.get_by_text("Alleen-lezen").wait_for()
    shot(page, "finance_lessons")
    open_page(page, "Inzichten")  # no offers in this data set: the empty state says where they come from
    page.get_by_text("Nog geen aanbod in deze periode").wait_for()
    shot(page, "finance_insights")


def test_admin_pages_and_one_edit_each(console, page, database):
    ids = database[1]
    engine = _db(database)
    sign_in(page, console, ADMIN)
    heading(page, "Lessen")
    assert len(nav_links(page)) == 11

    # Lessons: cancel the needs_reschedule lesson after confirming.
    choose(page, "Les", f"#{ids['moved']} ")
    settle(page)
    page.get_by_text("Ja, annuleer deze les").click()
    page.get_by_role("button", name="Les annuleren").click()
    page.get_by_text(f"Les {ids['moved']} is geannuleerd.").wait_for()
    settle(page)
    shot(page, "admin_lessons")
    with read_session(engine) as s:
        assert s.get(Lesson, ids["moved"]).status == "cancelled"

    # Availability: add time off for Anna on the first day shown.
    open_page(page, "Beschikbaarheid")
    page.get_by_label("Reden").last.fill("studiedag")
    page.get_by_role("button", name="Vrij nemen toevoegen").click()
    page.get_by_text("Vrije tijd toegevoegd.").wait_for()
    settle(page)
    shot(page, "admin_availability")
    with read_session(engine) as s:
        assert s.exec(select(BusyBlock).where(BusyBlock.reason == "studiedag")).first() is not None

    # Planning profiles: an invalid edit names the field; a valid one is saved.
    open_page(page, "Planningsprofielen")
    page.get_by_label("Vroegste uur").fill("22")
    page.get_by_role("button", name="Opslaan", exact=True).click()
    page.get_by_text("earliest_hour").first.wait_for()
    settle(page)
    shot(page, "admin_profiles_invalid")
    page.get_by_label("Vroegste uur").fill("8")
    page.get_by_label("Maximaal aantal voorstellen").fill("7")
    page.get_by_role("button", name="Voorbeeld").click()
    page.get_by_text("Deze tijden zou het bewerkte profiel").wait_for()
    settle(page)
    page.get_by_role("button", name="Opslaan", exact=True).click()
    page.get_by_text("Profiel existing opgeslagen.").wait_for()
    settle(page)
    shot(page, "admin_profiles")
    with read_session(engine) as s:
        saved = s.get(PlanningProfile, "existing")
        assert (saved.earliest_hour, saved.max_suggestions) == (8, 7)
        assert s.exec(select(AuditLog).where(AuditLog.action == "profile.update")).first() is not None

    # Contacts & segments: pin Daan's segment.
    open_page(page, "Contacten & segmenten")
    page.get_by_label("Zoek op naam").fill("Daan")
    page.get_by_label("Zoek op naam").press("Enter")
    settle(page)
    # Pick Daan explicitly: on a loaded machine the search may still be running, and the detail
    # would otherwise be the first contact of the unfiltered list.
    choose(page, "Contact", "Daan Visser")
    choose(page, "Segment vastzetten", "weekend")
    page.get_by_role("button", name="Overrides opslaan").click()
    page.get_by_text("Opgeslagen.").wait_for()
    settle(page)
    shot(page, "admin_contacts")
    with read_session(engine) as s:
        assert s.get(Contact, "c-2").segment_override == "weekend"

    # Whitelists: add a phone number in Dutch notation.
    open_page(page, "Whitelists")
    page.get_by_label("Telefoonnummer, e-mailadres of contact-id").fill("06 2222 3333")
    page.get_by_role("button", name="Toevoegen", exact=True).click()
    page.get_by_text("+31622223333 staat nu op de lijst.").wait_for()
    settle(page)
    shot(page, "admin_whitelists")
    with read_session(engine) as s:
        assert s.exec(select(WhitelistEntry).where(WhitelistEntry.identifier == "+31622223333")).first()
    with page.expect_download() as download:
        page.get_by_role("button", name="Exporteer CSV").click()
    exported = Path(download.value.path()).read_text(encoding="utf-8-sig")
    assert exported.splitlines()[0] == "identifier,note,added_by,added_at"
    assert "'+31622223333" in exported  # a leading + would be a formula to a spreadsheet

    # Payments: the dashboard link and the lists are there.
    open_page(page, "Betalingen")
    assert "cs_test_paid_1" in grid_text(page, "cs_test_paid_1")
    shot(page, "admin_payments")

    # Integrations: run the calendar check.
    open_page(page, "Integraties")
    page.get_by_role("button", name="Agenda's controleren").click()
    settle(page)
    head = migration_head()
    text = grid_text(page, "embedded calendar", head)
    assert "embedded calendar" in text and head in text  # the check ran; the migration revision
    shot(page, "admin_integrations")

    # Users: create an account; its password is shown once.
    open_page(page, "Gebruikers")
    page.get_by_label("E-mail", exact=True).fill("nieuw@example.nl")
    page.get_by_role("button", name="Aanmaken").click()
    page.get_by_text("wordt maar één keer getoond").wait_for()
    settle(page)
    shot(page, "admin_users")
    with read_session(engine) as s:
        assert s.exec(select(User).where(User.email == "nieuw@example.nl")).first() is not None
    engine.dispose()


def test_english_is_one_click_away(console, page):
    sign_in(page, console, ADMIN)
    choose(page, "Taal / Language", "English")
    heading(page, "Lessons")
    settle(page)
    shot(page, "admin_lessons_english")


def test_finance_refunds_half_a_payment_and_sees_it_partially_refunded(console, page, database, tmp_path):
    """The console runs in its own process without Stripe settings; the stripe.refund job and the
    charge.refunded webhook it leads to run here, in-process, against the same database and a fake
    Stripe that knows the demo payment's PaymentIntent."""
    url, _ = database
    engine = _db(database)
    with FakeStripe() as fake:
        intent = fake.add_paid_intent(4500, "eur")
        with write_session(engine) as s:
            paid = s.exec(select(Payment).where(Payment.checkout_session_id == "cs_test_paid_1")).one()
            paid.payment_intent_id = intent["id"]
            s.add(paid)
            payment_id = paid.id

        sign_in(page, console, FINANCE, "payments")
        heading(page, "Betalingen")
        page.locator("[data-testid='stExpander'] summary").filter(has_text="Terugbetalen").click()
        choose(page, "Betaling", "cs_test_paid_1")
        form = page.get_by_test_id("stForm")  # the page's charts label their axes "Bedrag (€)" too
        form.get_by_label("Bedrag (€)", exact=True).fill("22.50")
        form.get_by_label("Reden", exact=True).fill("les half gegeven")
        form.get_by_label("Reden", exact=True).press("Tab")
        form.get_by_text("Ja, dit bedrag terugbetalen").click()
        form.get_by_role("button", name="Terugbetalen").click()
        page.get_by_text("Terugbetaling van € 22,50 staat klaar voor Stripe.").wait_for()
        settle(page)
        shot(page, "finance_refund_asked")
        with read_session(engine) as s:
            assert s.get(Payment, payment_id).status == "paid"  # until Stripe confirms

        # The worker's part and Stripe's answer, in this process on the console's database.
        set_settings(make_settings(tmp_path, database_url=url, **_stripe_values(fake)))
        reset_engines()
        try:
            report = jobs.run_until_idle(kinds=["stripe.refund"])
            assert report.done == 1, report
            [event] = [e for e in fake.events if e["type"] == "charge.refunded"]
            body, header = fake.signed(event, WEBHOOK_SECRET)
            assert payments.handle_webhook(body, header).status == "processed"
        finally:
            reset_engines()
        assert [r["amount"] for r in fake.refunds.values()] == [2250]

    with read_session(engine) as s:
        refunded = s.get(Payment, payment_id)
        assert (refunded.status, refunded.refunded_amount) == ("partially_refunded", 2250)
    engine.dispose()
    # The console reads through a 30-second cache: the sidebar's refresh shows the change at once.
    page.get_by_role("button", name="Vernieuwen").click()
    settle(page)
    assert "deels terugbetaald" in grid_text(page, "cs_test_paid_1", "deels terugbetaald")
    shot(page, "finance_refund_partial")


def test_tutor_marks_a_past_lesson_no_show(console, page, database):
    ids = database[1]
    engine = _db(database)
    now = clock.now().replace(minute=0, second=0, microsecond=0)
    with write_session(engine) as s:
        past = Lesson(
            conversation_id="conv-c-1",
            contact_id="c-1",
            tutor_id=ids["anna"],
            profile_name="existing",
            start=now - timedelta(days=1, hours=1),
            end=now - timedelta(days=1),
            title="Les c-1",
            status="confirmed",
            created_at=now - timedelta(days=2),
            updated_at=now - timedelta(days=2),
        )
        s.add(past)
        s.flush()
        lesson_id = past.id

    sign_in(page, console, TUTOR, "lessons")
    heading(page, "Lessen")
    # The console reads through a 30-second cache: the sidebar's refresh shows the new lesson.
    page.get_by_role("button", name="Vernieuwen").click()
    settle(page)
    page.get_by_text("Nog te markeren: was de leerling er?").wait_for()
    shot(page, "tutor_lessons_to_mark")
    page.locator(f".st-key-noshow_{lesson_id} button").click()
    page.get_by_text(f"Les #{lesson_id} gemarkeerd.").wait_for()
    settle(page)
    assert page.locator(f".st-key-noshow_{lesson_id} button").count() == 0
    with read_session(engine) as s:
        assert s.get(Lesson, lesson_id).outcome == "no_show"

    choose(page, "Les", f"#{lesson_id} ")
    text = grid_text(page, "Aanwezigheid", "Niet verschenen")
    assert "Aanwezigheid" in text and "Niet verschenen" in text
    shot(page, "tutor_lesson_no_show")
    engine.dispose()
