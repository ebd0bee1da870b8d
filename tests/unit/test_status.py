"""Integration health rows: several processes may note the same service's health at the same
moment (two receiver workers, the console), and none of them may fail for it."""

from __future__ import annotations

import threading

from sqlmodel import func, select

from core.db import read_session, write_session
from core.models import IntegrationStatus
from core.status import status_row


def test_many_writers_noting_a_new_service_at_once_all_succeed_and_leave_one_row(engine):
    start = threading.Barrier(12)
    errors: list[BaseException] = []

    def note(n: int) -> None:
        try:
            start.wait()
            with write_session() as session:
                row = status_row(session, "chat")
                row.ok = n % 2 == 0
                row.detail = f"writer {n}"
                session.add(row)
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=note, args=(n,)) for n in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    with read_session() as session:
        assert session.exec(select(func.count()).select_from(IntegrationStatus)).one() == 1
        assert session.get(IntegrationStatus, "chat").detail.startswith("writer ")
