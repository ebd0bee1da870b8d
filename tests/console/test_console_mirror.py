"""The Integrations page shows each tutor calendar's mirror: fresh, stale or never synced, its
age and its last error (issue 17)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from core import clock
from core.config import get_settings, set_settings
from core.db import write_session
from core.models import CalendarMirror
from tests.support.console import ADMIN, as_user, build_console_data, fast_passwords  # noqa: F401

pytestmark = pytest.mark.usefixtures("fast_passwords")


def test_admin_sees_each_calendars_mirror_state(engine, frozen_now):
    frozen_now(2026, 11, 30, 8, 0)
    build_console_data(engine)
    set_settings(get_settings().model_copy(update={"calendar_backend": "google"}))
    with write_session() as s:
        s.add(
            CalendarMirror(
                calendar_id="anna@calendar", synced_at=clock.now() - timedelta(seconds=20), events=7
            )
        )
        s.add(
            CalendarMirror(
                calendar_id="bram@calendar",
                synced_at=clock.now() - timedelta(minutes=10),
                last_error="Google Calendar is not answering (HTTP 503)",
            )
        )
    at = as_user(ADMIN).switch_page("app_pages/integrations.py").run()
    assert not at.exception, at.exception
    frame = next(df.value for df in at.dataframe if "Bezette afspraken" in df.value.columns)
    rows = {r["calendar_id"]: r for r in frame.to_dict("records")}
    assert rows["anna@calendar"]["Status"] == "bijgewerkt" and rows["anna@calendar"]["Leeftijd"] == "20 s"
    assert rows["anna@calendar"]["Bezette afspraken"] == 7
    assert (
        rows["bram@calendar"]["Status"].startswith("verouderd")
        and "503" in rows["bram@calendar"]["Laatste fout"]
    )
