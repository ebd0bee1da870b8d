"""Alembic environment: migrates the database named by core.config (DATABASE_URL).

SQLite needs batch mode for ALTER TABLE; our custom column types are rendered as their plain
SQLAlchemy equivalents so migration files don't import application code.
"""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

import core.models  # noqa: F401 - registers the tables on SQLModel.metadata
from core.config import get_settings
from core.db import get_engine
from core.models import MIGRATION_ONLY_INDEXES, UTCDateTime

target_metadata = SQLModel.metadata


def render_item(type_, obj, autogen_context):  # noqa: ANN001
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime()"
    if type_ == "type" and obj.__class__.__module__.startswith("sqlmodel"):
        length = getattr(obj, "length", None)
        return f"sa.String(length={length})" if length else "sa.String()"
    return False


def include_object(obj, name, type_, reflected, compare_to) -> bool:  # noqa: ANN001
    return not (type_ == "index" and name in MIGRATION_ONLY_INDEXES)


def run_migrations_online() -> None:
    # Data migrations that fold times into local days (0013's payment rollup) need the zone.
    context.config.attributes.setdefault("timezone", get_settings().timezone)
    connectable = context.config.attributes.get("connection") or get_engine()
    if hasattr(connectable, "connect"):
        with connectable.connect() as connection:
            _run(connection)
    else:
        _run(connectable)


def _run(connection) -> None:  # noqa: ANN001
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        render_item=render_item,
        include_object=include_object,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


run_migrations_online()
