"""Shared fixtures: a fresh database per test, a controllable clock, clean globals.

Databases are SQLite files by default. With LESPLANNER_TEST_DB=postgres every test that uses the
`settings`/`engine` fixtures runs on a fresh database of a real PostgreSQL server instead
(`make test` runs the database tests both ways). Tests that only make sense on
SQLite use the `sqlite_only` marker.
"""

from __future__ import annotations

import os
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import event
from sqlalchemy.pool import Pool
from sqlmodel import SQLModel

from core import clock, integrations
from core.calendars import set_backend
from core.config import Settings, set_settings
from core.db import get_engine, make_engine, reset_engines, write_session
from core.profiles import seed_defaults

AMS = ZoneInfo("Europe/Amsterdam")


TEST_DB = os.environ.get("LESPLANNER_TEST_DB", "sqlite")
_pg_databases: dict[str, str] = {}  # tmp_path -> database URL, so make_settings is stable per test
_pg_server = None


def pg_server_url() -> str:
    """The URL of this test process's PostgreSQL server (started on first use)."""
    global _pg_server
    if os.environ.get("LESPLANNER_TEST_PG_URL"):
        return os.environ["LESPLANNER_TEST_PG_URL"]
    if _pg_server is None:
        from tests.pg import PostgresServer

        _pg_server = PostgresServer()
        _pg_server.start()
    return _pg_server.url("postgres")


def test_database_url(tmp_path, kind: str | None = None) -> str:
    kind = kind or TEST_DB
    if kind == "sqlite":
        return f"sqlite:///{tmp_path}/test.db"
    key = str(tmp_path)
    if key not in _pg_databases:
        from tests.pg import create_database

        if _running_wants_schema:
            # The test will ask `engine` for the schema: give it a copy of the template at once
            # (one an earlier test handed back, or a new one), instead of an empty database that
            # `engine` then drops and makes again (~0.15 s a test, whatever settings fixture).
            base = _reusable.pop() if _reusable else create_database(pg_server_url(), template=_pg_template())
            # A URL of its own all the same (caches in the code are keyed by the database URL).
            url = f"{base}?application_name=lesplanner-test-{len(_pg_databases)}"
            _from_template.add(url)
            _lent.append(url)
        else:
            url = create_database(pg_server_url())
        _pg_databases[key] = url
    return _pg_databases[key]


_running_wants_schema = False  # does the test being set up use the `engine` fixture?


_reusable: list[str] = []  # template copies a finished test handed back, reset (tests/pg.py)
_lent: list[str] = []  # template copies the running test got
_template_copy = None  # what such a copy must look like again (tests.pg.TemplateCopy)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    global _running_wants_schema
    global _connections_at_setup
    _running_wants_schema = "engine" in getattr(item, "fixturenames", ())
    _connections_at_setup = _connections_opened


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """After the test's fixtures are gone, its template copies go back to the pool if they can
    be made like the template again (PostgreSQL; tests/pg.py TemplateCopy)."""
    global _template_copy
    yield
    while _lent:
        url = _lent.pop()
        if _template_copy is None:
            from tests.pg import TemplateCopy

            _template_copy = TemplateCopy(pg_server_url().rsplit("/", 1)[0] + "/" + _pg_template())
        try:
            reusable = _template_copy.reset(url)
        except Exception:  # noqa: BLE001 - a database we cannot reset is simply not reused
            reusable = False
        if reusable:
            _reusable.append(url.split("?", 1)[0])


_templates: dict[str, str] = {}  # kind -> this process's template (a SQLite file or a database name)


def _build_schema(url: str) -> None:
    """Every table and the seed profiles, in the database at `url`."""
    engine = make_engine(url)
    try:
        SQLModel.metadata.create_all(engine)
        with write_session(engine) as session:
            seed_defaults(session)
    finally:
        engine.dispose()


def fresh_schema(url: str) -> None:
    """Make the (new, unused) database at `url` one with every table and the seed profiles.

    Building the schema costs ~0.3-1 s per test (40 tables, their indexes, the seeds); a copy of a
    template built once per test process costs ~1 ms on SQLite (a file copy) and ~0.1 s on
    PostgreSQL (`CREATE DATABASE ... TEMPLATE`). No engine may hold the target open."""
    import shutil
    import tempfile

    if url.startswith("sqlite"):
        if "sqlite" not in _templates:
            path = os.path.join(tempfile.mkdtemp(prefix="lesplanner-template-"), "template.db")
            _build_schema(f"sqlite:///{path}")
            _templates["sqlite"] = path
        target = url.removeprefix("sqlite:///")
        for suffix in ("", "-wal", "-shm"):  # the last connection's close checkpoints the WAL
            if os.path.exists(target + suffix):
                os.remove(target + suffix)
            if suffix and os.path.exists(_templates["sqlite"] + suffix):
                shutil.copyfile(_templates["sqlite"] + suffix, target + suffix)
        shutil.copyfile(_templates["sqlite"], target)
        return
    from tests.pg import recreate_from_template

    if url in _from_template:  # made as a copy of the template already (the settings fixture)
        return
    recreate_from_template(url, _pg_template())


_from_template: set[str] = set()  # PostgreSQL test databases made as copies of the template


def _pg_template() -> str:
    from tests.pg import create_database

    if "postgres" not in _templates:
        template_url = create_database(pg_server_url())
        _build_schema(template_url)
        _templates["postgres"] = template_url.rsplit("/", 1)[1]
    return _templates["postgres"]


def make_settings(tmp_path, **overrides) -> Settings:
    # The bot API's rate limits are off unless a test sets them (tests/api/test_api_gate.py does):
    # a test's hundreds of requests from one test client are no flood.
    values = dict(
        database_url=test_database_url(tmp_path), bot_rate_limit_per_token=0, bot_rate_limit_per_address=0
    )
    values.update(overrides)
    return Settings(_env_file=None, **values)


def pytest_sessionfinish(session, exitstatus):
    if _pg_server is not None:
        _pg_server.stop()


def _uses_a_database(item) -> bool:  # noqa: ANN001
    """Every database a test gets is made under its `tmp_path` (the `settings` and `engine`
    fixtures, `make_settings(tmp_path)`, `test_database_url(tmp_path)`); a test that makes one
    elsewhere says so with the `database` marker."""
    return "tmp_path" in getattr(item, "fixturenames", ()) or "database" in item.keywords


_connections_opened = 0  # DBAPI connections opened by any engine in this process


def _count_connection(dbapi_connection, connection_record):  # noqa: ANN001
    global _connections_opened
    _connections_opened += 1


event.listen(Pool, "connect", _count_connection)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """The PostgreSQL pass skips the tests that use no database (`_uses_a_database`). So that a
    test cannot use one unnoticed and never run on PostgreSQL, the SQLite pass fails any such
    test that opens a database connection (in its fixtures or its body)."""
    result = yield
    if (
        TEST_DB == "sqlite"
        and _connections_opened > _connections_at_setup
        and not _uses_a_database(item)
        and "sqlite_only" not in item.keywords
    ):
        raise AssertionError(
            "This test opened a database connection but has no tmp_path (where test databases are "
            "made): the PostgreSQL pass would skip it. Make its database under tmp_path, or mark it "
            "`database` (it makes its own) or `sqlite_only`."
        )
    return result


_connections_at_setup = 0  # _connections_opened when the running test's setup began


def pytest_collection_modifyitems(config, items):
    if TEST_DB != "sqlite":
        skip = pytest.mark.skip(reason="SQLite-specific; this run is on " + TEST_DB)
        # The second pass exists for the database: a test that uses none (the slot engine's
        # properties, the architecture rules, message formatting) ran in the first pass already.
        no_database = pytest.mark.skip(reason="uses no database; ran in the SQLite pass")
        for item in items:
            if "sqlite_only" in item.keywords:
                item.add_marker(skip)
            elif not _uses_a_database(item):
                item.add_marker(no_database)


@pytest.fixture
def settings(tmp_path):
    s = make_settings(tmp_path)
    set_settings(s)
    yield s
    set_settings(None)


@pytest.fixture
def engine(settings):
    """A fresh database with every table and the seed profiles."""
    reset_engines()
    fresh_schema(settings.database_url)
    eng = get_engine()
    yield eng
    reset_engines()


@pytest.fixture(autouse=True)
def _clean_globals():
    yield
    clock.set_now(None)
    set_backend(None)
    set_settings(None)
    with integrations._memo_lock:  # the next test's database may have this one's URL
        integrations._memo.clear()


@pytest.fixture
def frozen_now():
    """Freeze the clock: `frozen_now(datetime)` or `frozen_now(2026, 12, 1, 9, 0)` in Amsterdam."""

    def freeze(*args) -> datetime:
        value = args[0] if len(args) == 1 and isinstance(args[0], datetime) else datetime(*args, tzinfo=AMS)
        clock.set_now(value)
        return value

    return freeze
