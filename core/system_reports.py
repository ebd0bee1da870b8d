"""Reads for the console's Integrations page: the database (URL without credentials, migration
revision, row counts), each outside service's last health, the last Stripe webhook, and the
background jobs. Kept apart from the business reads, which live with their domain
(core/lesson_queries.py, core/payments/queries.py, core/contact_queries.py, ...)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, inspect, text
from sqlalchemy.engine import make_url
from sqlmodel import Session, col, select

from core import jobs
from core.config import DATABASE_URL_SECRET_PARAMS
from core.db import normalise_url
from core.models import Contact, IntegrationStatus, Lesson, OutboxMessage, Payment, StripeEvent, stored_id
from core.paging import row_from


@dataclass
class DatabaseInfo:
    url: str  # without password
    dialect: str
    revision: str | None  # Alembic revision, None when the schema was not made by migrations
    tables_ok: bool
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IntegrationRow:
    """An outside service's last health (google | stripe | chat | webhook)."""

    name: str
    ok: bool
    detail: str | None
    last_ok_at: datetime | None
    last_error_at: datetime | None
    last_error: str | None


@dataclass(frozen=True, slots=True)
class WebhookRow:
    """The last Stripe event received."""

    id: str
    type: str
    received_at: datetime
    status: str  # processed | failed | ignored
    error: str | None


@dataclass(frozen=True, slots=True)
class JobRow:
    id: int
    kind: str
    key: str
    status: str
    attempts: int
    run_after: datetime
    last_error: str  # "" when none
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class JobsOverview:
    counts: dict[str, int]  # job status → number of jobs
    rows: list[JobRow]  # the jobs not done: failed first, then the waiting ones


def safe_database_url(url: str) -> str:
    """The URL for people: the password and every password-like query parameter masked."""
    try:
        parsed = make_url(normalise_url(url))
        masked = {k: "***" for k in parsed.query if k.lower() in DATABASE_URL_SECRET_PARAMS}
        return parsed.update_query_dict(masked).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - an unparsable URL must still never leak a password
        return "(unparsable DATABASE_URL)"


def database_info(session: Session, url: str) -> DatabaseInfo:
    bind = session.get_bind()
    names = set(inspect(bind).get_table_names())
    revision: str | None = None
    if "alembic_version" in names:
        version = session.execute(text("SELECT version_num FROM alembic_version")).first()
        revision = version[0] if version else None
    counts: dict[str, int] = {}
    for model in (Lesson, Payment, Contact, StripeEvent, OutboxMessage):
        counts[str(model.__tablename__)] = session.exec(select(func.count()).select_from(model)).one()
    return DatabaseInfo(
        url=safe_database_url(url),
        dialect=bind.dialect.name,
        revision=revision,
        tables_ok={"lesson", "payment", "user"} <= names,
        counts=counts,
    )


def integration_statuses(session: Session) -> dict[str, IntegrationRow]:
    return {row.name: row_from(IntegrationRow, row) for row in session.exec(select(IntegrationStatus)).all()}


def last_webhook(session: Session) -> WebhookRow | None:
    row = session.execute(
        # sqlmodel's select() is typed for at most four columns
        select(
            StripeEvent.id,
            StripeEvent.type,
            StripeEvent.received_at,  # type: ignore[call-overload]
            StripeEvent.status,
            StripeEvent.error,
        )
        .order_by(col(StripeEvent.received_at).desc())
        .limit(1)
    ).first()
    return WebhookRow(**row._mapping) if row else None


def stripe_event_counts(session: Session) -> dict[str, int]:
    rows = session.exec(select(StripeEvent.status, func.count()).group_by(StripeEvent.status)).all()
    return {status: n for status, n in rows}


def jobs_overview(session: Session, limit: int = 200) -> JobsOverview:
    """Background jobs for the Integrations page: counts per status, and the ones not done
    (failed first, with their reason; then the waiting ones, soonest first)."""
    rows = [
        JobRow(
            id=stored_id(j),
            kind=j.kind,
            key=j.key,
            status=j.status,
            attempts=j.attempts,
            run_after=j.run_after,
            last_error=j.last_error or "",
            updated_at=j.updated_at,
        )
        for j in jobs.open_jobs(session, limit)
    ]
    return JobsOverview(counts=jobs.counts(session), rows=rows)
