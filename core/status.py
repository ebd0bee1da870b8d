"""The console's view of each outside service's health: one IntegrationStatus row per service
("google", "stripe", "webhook", "chat"), written by whichever process talked to it.

`status_row` makes the row exist without a race: two processes noting the same service's
health at once would otherwise both insert it and one would fail on the primary key.
"""

from __future__ import annotations

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from core.models import IntegrationStatus


def status_row(session: Session, name: str) -> IntegrationStatus:
    """The service's row in the caller's transaction, inserted first if missing (race-safe)."""
    row = session.get(IntegrationStatus, name)
    if row is not None:
        return row
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    session.execute(
        dialect.insert(IntegrationStatus.__table__)  # type: ignore[attr-defined]  # SQLModel's metaclass sets it
        .values(name=name, ok=True)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    return session.get_one(IntegrationStatus, name)
