"""The schema comes from Alembic and matches the models, so an existing database upgrades
cleanly and a fresh one gets exactly what the code expects."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlmodel import SQLModel, select

from core import cli
from core.config import set_settings
from core.db import get_engine, read_session, reset_engines
from core.models import MIGRATION_ONLY_INDEXES, PlanningProfile, SegmentProfile, Tutor
from tests.conftest import AMS, make_settings


def _fresh(tmp_path, **kw):
    set_settings(make_settings(tmp_path, **kw))
    reset_engines()
    return get_engine()


def test_migrate_creates_every_table_the_models_define(tmp_path):
    engine = _fresh(tmp_path)
    assert cli.migrate() != "none"
    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables
    with engine.connect() as conn:
        options = {
            "compare_type": False,
            "include_object": lambda obj, name, type_, *_: (
                not (type_ == "index" and name in MIGRATION_ONLY_INDEXES)
            ),
        }
        diff = compare_metadata(MigrationContext.configure(conn, opts=options), SQLModel.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_migrate_seeds_profiles_mapping_and_default_tutor_once(tmp_path):
    _fresh(tmp_path, gcal_calendar_id="tutor@school.nl")
    cli.migrate()
    cli.migrate()  # a second run changes nothing and does not fail
    with read_session() as s:
        assert {p.name for p in s.exec(select(PlanningProfile)).all()} == {
            "new",
            "existing",
            "weekend",
            "premium",
        }
        assert s.get(SegmentProfile, "returning_broadcast").profile_name == "existing"
        tutors = s.exec(select(Tutor)).all()
    assert [t.calendar_id for t in tutors] == ["tutor@school.nl"]


def test_seed_demo_only_loads_into_an_empty_database(tmp_path, capsys):
    _fresh(tmp_path)
    cli.migrate()
    assert cli.main(["seed-demo"]) == 0
    out = capsys.readouterr().out
    assert "password:" in out
    assert cli.main(["seed-demo"]) == 1
    assert cli.main(["seed-demo", "--if-empty"]) == 0
    assert "only loaded into an empty one" in capsys.readouterr().out


def test_first_admin_gets_a_random_password_printed_once(tmp_path, capsys):
    _fresh(tmp_path)
    cli.migrate()
    assert cli.main(["ensure-admin"]) == 0
    first = capsys.readouterr().out
    assert "admin@lesplanner.local" in first and "password:" in first
    assert cli.main(["ensure-admin"]) == 0
    assert "password:" not in capsys.readouterr().out
    password = first.split("password:")[1].split()[0]
    assert len(password) >= 12 and password.lower() not in {"admin", "password", "changeme"}


def _upgrade(engine, revision: str) -> None:
    from alembic import command
    from alembic.config import Config

    cfg = Config(str(cli.ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(cli.ROOT / "migrations"))
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, revision)


def test_planning_migration_caps_the_seed_profiles_left_without_a_daily_cap(tmp_path):
    engine = _fresh(tmp_path)
    _upgrade(engine, "0008")
    with engine.begin() as conn:
        for name, cap in [
            ("new", None),
            ("existing", None),
            ("weekend", None),
            ("premium", 4),
            ("custom", None),
        ]:
            conn.execute(
                text(
                    "INSERT INTO planningprofile (name, duration_minutes, earliest_hour, latest_hour,"
                    " min_lead_minutes, days_ahead, exclude_weekends, slot_step_minutes, max_suggestions,"
                    " buffer_minutes, max_per_day, requires_payment, active, updated_at)"
                    " VALUES (:n, 60, 9, 21, 360, 14, true, 60, 6, 0, :cap, true, true, '2026-11-30 08:00:00')"
                ),
                {"n": name, "cap": cap},
            )
    _upgrade(engine, "head")
    with engine.connect() as conn:
        caps = dict(conn.execute(text("SELECT name, max_per_day FROM planningprofile")).all())
    # the seed's profiles get the new default; an admin's own choice (a cap or none) is kept
    assert caps == {"new": 2, "existing": 2, "weekend": 3, "premium": 4, "custom": None}


def _old_payments(engine, rows: list[dict]) -> None:
    """Payments as an older revision stored them (plain INSERTs: no rollup kept), of contact c1;
    each row gives status, amount and any of created_at, paid_at, refunded_amount."""
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO contact (id, name, attributes, created_at, updated_at) VALUES ('c1', 'K', '{}', '2026-11-01 08:00:00', '2026-11-01 08:00:00')"
            )
        )
        for i, row in enumerate(rows):
            values = {"created_at": "2026-11-30 08:00:00", "paid_at": None, "refunded_amount": 0, **row}
            conn.execute(
                text(
                    "INSERT INTO payment (checkout_session_id, order_id, contact_id, minutes, price_id, amount,"
                    " currency, status, refunded_amount, kind, quantity, paid_at, created_at, updated_at)"
                    " VALUES (:cs, :o, 'c1', 60, 'price', :amount, 'eur', :status, :refunded_amount, 'lesson', 1,"
                    " :paid_at, :created_at, :created_at)"
                ),
                {"cs": f"cs_{i}", "o": f"o{i}", **values},
            )


def test_the_payment_rollup_migration_backfills_the_existing_payments(tmp_path):
    from tests.support.rollup import assert_rollup_matches

    engine = _fresh(tmp_path)
    _upgrade(engine, "0012")
    _old_payments(
        engine,
        [
            {"created_at": created, "status": status, "amount": amount}
            for created, status, amount in [
                ("2026-11-30 23:30:00", "paid", 4500),  # 00:30 on 1 December in Amsterdam
                ("2026-11-30 12:00:00", "paid", 6500),
                ("2026-11-30 12:10:00", "expired", 4500),
                ("2026-12-01 09:00:00", "refunded", 5500),
                ("2026-12-01 09:00:00", "open", None),
            ]
        ],
    )
    _upgrade(engine, "head")
    assert_rollup_matches()  # both rollups: 0017 backfills the paid one too
    with engine.connect() as conn:
        days = conn.execute(
            text("SELECT day, status, count, amount FROM paymentdaily ORDER BY day, status")
        ).all()
    assert [(str(d), s, n, a) for d, s, n, a in days] == [
        ("2026-11-30", "expired", 1, 4500),
        ("2026-11-30", "paid", 1, 6500),
        ("2026-12-01", "open", 1, 0),
        ("2026-12-01", "paid", 1, 4500),
        ("2026-12-01", "refunded", 1, 5500),
    ]


def test_the_paid_rollup_migration_backfills_the_money_that_came_in_per_local_day(tmp_path):
    from tests.support.rollup import recomputed_paid, rolled_up_paid

    engine = _fresh(tmp_path)
    _upgrade(engine, "0016")
    _old_payments(
        engine,
        [
            {"paid_at": paid_at, "status": status, "amount": amount, "refunded_amount": refunded}
            for paid_at, status, amount, refunded in [
                ("2026-11-30 23:30:00", "paid", 4500, 0),  # 00:30 on 1 December in Amsterdam
                ("2026-11-30 12:00:00", "partially_refunded", 6500, 2000),
                ("2026-12-01 09:00:00", "refunded", 5500, 5500),
                (None, "expired", 4500, 0),  # never paid: not in the rollup
                ("2026-12-01 10:00:00", "paid", None, 0),  # paid without an amount: counted, 0
            ]
        ],
    )
    _upgrade(engine, "head")
    assert rolled_up_paid() == recomputed_paid()
    with engine.connect() as conn:
        days = conn.execute(
            text("SELECT day, currency, count, amount, refunded_amount FROM paymentpaiddaily ORDER BY day")
        ).all()
    assert [(str(d), c, n, a, r) for d, c, n, a, r in days] == [
        ("2026-11-30", "eur", 1, 6500, 2000),
        ("2026-12-01", "eur", 3, 10000, 5500),
    ]


def test_on_postgresql_a_payment_text_search_can_use_a_trigram_index(tmp_path):
    """A substring search cannot use a b-tree; at 500,000 payments it read a month's 41,000 rows
    three times per page (~0.9 s, docs/PERFORMANCE.md). On PostgreSQL the migration adds a
    pg_trgm GIN index over the ids, and the search is written so that it can use it (its
    expression must equal the index's). Checked with sequential scans off: with a handful of rows
    the planner would rightly scan the table anyway."""
    import pytest

    from core.payments.queries import PaymentFilter, payment_count

    engine = _fresh(tmp_path)
    if engine.dialect.name != "postgresql":
        pytest.skip("PostgreSQL only (pg_trgm): runs in the PostgreSQL pass")
    cli.migrate()
    _old_payments(engine, [{"status": "paid", "amount": 4500}, {"status": "open", "amount": 4500}])
    statements: list[tuple[str, dict]] = []

    def remember(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001
        if " LIKE " in statement:
            statements.append((statement, parameters))

    from sqlalchemy import event

    event.listen(engine, "before_cursor_execute", remember)
    try:
        with read_session() as s:
            assert payment_count(s, PaymentFilter(None, None, (), "CS_1"), AMS) == 1
    finally:
        event.remove(engine, "before_cursor_execute", remember)
    (sql, params), *_ = statements
    with engine.connect() as conn:
        conn.exec_driver_sql("SET enable_seqscan = off")
        plan = "\n".join(row[0] for row in conn.exec_driver_sql("EXPLAIN " + sql, params))
    assert "ix_payment_search_trgm" in plan, plan


def test_series_migration_keeps_existing_lessons_and_payments_as_single_ones(tmp_path):
    engine = _fresh(tmp_path)
    _upgrade(engine, "0012")
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO planningprofile (name, duration_minutes, earliest_hour, latest_hour,"
                " min_lead_minutes, days_ahead, exclude_weekends, slot_step_minutes, max_suggestions,"
                " buffer_minutes, max_per_day, requires_payment, active, updated_at)"
                " VALUES ('new', 60, 9, 21, 360, 14, true, 60, 6, 0, 2, true, true, '2026-11-30 08:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO contact (id, attributes, created_at, updated_at) VALUES ('c', '{}', '2026-11-30 08:00:00', '2026-11-30 08:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO conversation (id, contact_id, attributes, created_at) VALUES ('v', 'c', '{}', '2026-11-30 08:00:00')"
            )
        )
        conn.execute(
            text("INSERT INTO tutor (id, name, calendar_id, active) VALUES (1, 'Anna', 'anna', true)")
        )
        conn.execute(
            text(
                'INSERT INTO lesson (conversation_id, contact_id, tutor_id, profile_name, start, "end",'
                " title, description, status, created_at, updated_at) VALUES ('v', 'c', 1, 'new',"
                " '2026-12-01 09:00:00', '2026-12-01 10:00:00', '', '', 'confirmed',"
                " '2026-11-30 08:00:00', '2026-11-30 08:00:00')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO payment (checkout_session_id, order_id, minutes, price_id, status, kind,"
                " quantity, refunded_amount, created_at, updated_at) VALUES ('cs_1', 'lesson-1', 60,"
                " 'price', 'paid', 'lesson', 1, 0, '2026-11-30 08:00:00', '2026-11-30 08:00:00')"
            )
        )
    _upgrade(engine, "head")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT series_id FROM lesson")).all() == [(None,)]
        assert conn.execute(text("SELECT series_id, kind FROM payment")).all() == [(None, "lesson")]
        assert conn.execute(text("SELECT count(*) FROM lessonseries")).scalar() == 0
