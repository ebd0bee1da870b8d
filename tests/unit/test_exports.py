"""CSV exports check the role when the file is built, not only when the page was drawn: the
console builds the file on the click (st.download_button with a callable), possibly long after
the page was rendered, and the account's role may have changed in between (issue 12, question)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from sqlmodel import select
from streamlit.runtime.media_file_manager import MediaFileManager

from core import exports
from core import users as accounts
from core.audit import audit_page
from core.db import read_session, write_session
from core.errors import PermissionDenied
from core.lesson_queries import LessonFilter, lessons_export
from core.models import User
from core.payments.queries import PaymentFilter, payments_export
from tests.conftest import AMS
from tests.support.console import (  # noqa: F401 - fast_passwords is a fixture
    ADMIN,
    FINANCE,
    OTHER_TUTOR,
    TUTOR,
    as_user,
    build_console_data,
    fast_passwords,
)

COLUMNS = ["id", "status"]
pytestmark = pytest.mark.usefixtures("fast_passwords")


@pytest.fixture
def world(engine):
    return build_console_data(engine)


def users() -> dict[str, User]:
    with read_session() as s:
        return {u.email: u for u in s.exec(select(User)).all()}


def export(actor: User, report: Callable[..., Any], *args: Any) -> bytes:
    with read_session() as s:
        return exports.export_csv(s, actor, report, args, COLUMNS, None, AMS)


def payments_args() -> tuple:
    return (PaymentFilter(date(2020, 1, 1), date(2100, 1, 1)), AMS)


def test_finance_exports_payments_until_its_role_changes(world):
    finance, boss = users()[FINANCE], users()[ADMIN]
    assert export(finance, payments_export, *payments_args()).count(b"\r\n") > 1
    accounts.set_user_role(boss, finance.id, "tutor")
    with pytest.raises(PermissionDenied):
        export(finance, payments_export, *payments_args())


def test_an_export_is_refused_after_deactivation_or_a_password_reset(world):
    finance, boss = users()[FINANCE], users()[ADMIN]
    accounts.reset_password(boss, finance.id)
    with pytest.raises(PermissionDenied, match="session"):
        export(finance, payments_export, *payments_args())  # the page was drawn before the reset
    fresh = users()[FINANCE]
    accounts.set_user_active(boss, fresh.id, False)
    with pytest.raises(PermissionDenied):
        export(users()[FINANCE], payments_export, *payments_args())


def test_a_tutor_exports_only_lessons_filtered_to_their_own(world):
    tutor = users()[TUTOR]
    assert export(tutor, lessons_export, LessonFilter(own_email=TUTOR), AMS)
    for other in (LessonFilter(), LessonFilter(own_email=OTHER_TUTOR)):
        with pytest.raises(PermissionDenied):
            export(tutor, lessons_export, other, AMS)


def test_only_known_exports_can_be_built(world):
    with pytest.raises(PermissionDenied):
        export(users()[ADMIN], audit_page)


def test_the_download_button_checks_the_role_when_it_builds_the_file(world, monkeypatch):
    builders: dict[str, object] = {}
    original = MediaFileManager.add_deferred

    def remember(self, data_callable, mimetype, coordinates, file_name=None, **kw):  # noqa: ANN001
        builders[file_name] = data_callable
        return original(self, data_callable, mimetype, coordinates, file_name, **kw)

    monkeypatch.setattr(MediaFileManager, "add_deferred", remember)
    at = as_user(FINANCE).switch_page("app_pages/payments.py").run()
    assert not at.exception
    build = builders["betalingen.csv"]
    assert build().startswith(b"\xef\xbb\xbf")  # while finance: the CSV
    with write_session() as s:
        s.exec(select(User).where(User.email == FINANCE)).one().role = "tutor"
    with pytest.raises(PermissionDenied):
        build()  # the click after the role change: no file
