"""The single engine of this process and its sessions.

SQLite (the default) gets WAL, a 15 s busy timeout and foreign keys on every connection. pysqlite
does not emit BEGIN by itself, so we take over transaction control (SQLAlchemy's documented
"serializable isolation / savepoints" recipe): `write_session()` opens with BEGIN IMMEDIATE, so
two processes that both want to write queue on the database lock instead of both reading a
free slot. On Postgres the booking code locks the tutor row instead.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.dialects.sqlite.base import SQLiteCompiler
from sqlalchemy.engine import Connection, Engine, make_url
from sqlmodel import Session, create_engine

from core.config import get_settings


def _sqlite_from_hint(self: SQLiteCompiler, table: Any, text: str | None) -> str | None:
    """`select.with_hint(Table, "INDEXED BY ix_...", "sqlite")` renders on SQLite, which
    SQLAlchemy leaves out (its SQLite compiler knows no table hints). SQLite keeps no statistics
    (no ANALYZE), so a query whose best index it cannot guess names it; other databases ignore
    a hint given for "sqlite"."""
    return text


SQLiteCompiler.get_from_hint_text = _sqlite_from_hint  # type: ignore[method-assign, assignment]

_lock = threading.Lock()
_engines: dict[str, Engine] = {}


def normalise_url(url: str) -> str:
    """Accept Heroku-style postgres:// URLs and use psycopg 3 for Postgres."""
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://") :]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    return url


def is_sqlite(engine: Engine | Connection) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True, pool_size=10, max_overflow=20)

    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # A roomy pool: SQLite connections are cheap, and a small fixed pool can deadlock when many
    # threads each hold one connection and wait for a second (e.g. the local calendar reading
    # while a booking's session is open). 20 kept + 200 on demand is far above the receiver's
    # 40 worker threads, and reusing connections is ~10x cheaper than opening one per session.
    engine = create_engine(
        url, pool_size=20, max_overflow=200, connect_args={"check_same_thread": False, "timeout": 15}
    )

    wal_set: list[bool] = []

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, see module docstring
        cur = dbapi_conn.cursor()
        if not wal_set:  # WAL is a property of the file: once per engine is enough
            cur.execute("PRAGMA journal_mode=WAL")
            wal_set.append(True)
        cur.execute("PRAGMA busy_timeout=15000")
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA synchronous=NORMAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {mode}")

    return engine


def get_engine(url: str | None = None) -> Engine:
    """One engine per URL per process (SQLModel's advice: one engine, many sessions)."""
    url = normalise_url(url or get_settings().database_url)
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            engine = _engines[url] = make_engine(url)
        return engine


def reset_engines() -> None:
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def read_session(engine: Engine | None = None) -> Iterator[Session]:
    engine = engine or get_engine()
    with Session(engine, expire_on_commit=False) as session:
        yield session


@contextmanager
def write_session(engine: Engine | None = None) -> Iterator[Session]:
    """One write transaction: BEGIN IMMEDIATE on SQLite, commit on success, rollback on error."""
    engine = engine or get_engine()
    if is_sqlite(engine):
        engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


@contextmanager
def scratch_session(engine: Engine | None = None) -> Iterator[Session]:
    """A write transaction that is always rolled back: to see what a request *would* change
    (register a conversation, apply the bot's contact details) before it is known to succeed.
    The objects read stay usable afterwards, detached, as the request saw them."""
    engine = engine or get_engine()
    if is_sqlite(engine):
        engine = engine.execution_options(sqlite_begin="IMMEDIATE")
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
        finally:
            session.expunge_all()
            session.rollback()
