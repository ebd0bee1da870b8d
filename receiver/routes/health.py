"""GET /healthz: the process answers and the database runs a query."""

from __future__ import annotations

import logging

from fastapi import APIRouter
from sqlalchemy import text

from core.config import scrub
from core.db import get_engine
from core.errors import IntegrationUnavailable
from receiver.schemas import HealthOut, error_responses

router = APIRouter(tags=["health"])
log = logging.getLogger("receiver")


def check_database() -> None:
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception as exc:
        # The URL may hold a password: people get a fixed sentence, the log a scrubbed reason.
        log.warning("Health check: database unavailable: %s", scrub(str(exc))[:300])
        raise IntegrationUnavailable("The database is not reachable.") from None


@router.get("/healthz", response_model=HealthOut, responses=error_responses(503))
def healthz() -> HealthOut:
    check_database()
    return HealthOut()
