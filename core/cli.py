"""Command line for operators: `python -m core.cli <command>`.

migrate             upgrade the database to the newest schema, add seed profiles and the
                    default tutor (GCAL_CALENDAR_ID) where missing
seed-demo           load demo data, only into an empty database
create-user         create a console account (prints a generated password once)
ensure-admin        create a first admin with a random password if there are no accounts
expire-holds        release held lessons whose payment window has passed
deliver-messages    deliver pending chat messages once (Chatwoot)
check-calendar      diagnose the calendar backend and each tutor calendar
check-stripe        diagnose the Stripe key, prices, webhook secret and URLs
reconcile-payments  apply Checkout Sessions whose webhooks never arrived or failed
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func
from sqlmodel import select

from core import clock, jobs, worker
from core.calendars import get_backend
from core.calendars.google_check import check_calendar_report
from core.chat import deliver_pending
from core.config import get_settings
from core.db import get_engine, read_session, write_session
from core.demo import seed_demo
from core.errors import LesplannerError
from core.lessons import expire_holds
from core.models import Contact, Lesson, Tutor
from core.payments import check_stripe, reconcile_payments, rollup
from core.profiles import seed_defaults
from core.users import create_user, user_count

ROOT = Path(__file__).resolve().parent.parent


def migrate() -> str:
    """Upgrade to head; returns the revision now in force."""
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext

    cfg = Config(str(ROOT / "alembic.ini"))
    cfg.set_main_option("script_location", str(ROOT / "migrations"))
    engine = get_engine()
    with engine.begin() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
    with write_session() as session:
        seed_defaults(session)
        ensure_default_tutor(session)
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision() or "none"


def ensure_default_tutor(session) -> None:  # noqa: ANN001
    if session.exec(select(func.count()).select_from(Tutor)).one() == 0:
        session.add(Tutor(name="Standaard docent", calendar_id=get_settings().gcal_calendar_id))


def _cmd_migrate(args: argparse.Namespace) -> int:
    revision = migrate()
    print(f"Database is at revision {revision}.")
    return 0


def _cmd_rebuild_payment_totals(args: argparse.Namespace) -> int:
    with get_engine().begin() as connection:
        rows = rollup.rebuild(connection)
    print(
        f"Payment totals rebuilt: {rows} rows (per day created and per day paid) in {get_settings().timezone}."
    )
    return 0


def _cmd_seed_demo(args: argparse.Namespace) -> int:
    with read_session() as session:
        has_data = (
            session.exec(select(func.count()).select_from(Contact)).one()
            or session.exec(select(func.count()).select_from(Lesson)).one()
        )
    if has_data:
        print("The database already has contacts or lessons; demo data is only loaded into an empty one.")
        return 0 if args.if_empty else 1
    accounts = seed_demo()
    print("Demo data loaded: profiles, tutors, 30 contacts, whitelists, time off, lessons, payments.")
    for email, role, password in accounts:
        print(f"  {role:8} {email}  password: {password}")
    return 0


def _cmd_create_user(args: argparse.Namespace) -> int:
    password = sys.stdin.readline().strip() if args.password_stdin else None
    with write_session() as session:
        user, password = create_user(session, args.email, args.role, args.name or "", password)
    print(f"Created {user.role} {user.email}.")
    if not args.password_stdin:
        print(f"Password (shown once): {password}")
    return 0


def _cmd_ensure_admin(args: argparse.Namespace) -> int:
    with write_session() as session:
        if user_count(session, role="admin"):
            print(
                "Sign in with your existing admin account "
                "(lost it? `python -m core.cli create-user --role admin --email ...`)."
            )
            return 0
        user, password = create_user(session, args.email, "admin", "Beheerder")
    print("First admin account created. Sign in with:")
    print(f"  e-mail:   {user.email}")
    print(f"  password: {password}   (shown once; change it under Users)")
    return 0


def _cmd_expire_holds(args: argparse.Namespace) -> int:
    print(f"Released {expire_holds()} expired hold(s).")
    return 0


def _cmd_deliver(args: argparse.Namespace) -> int:
    print(deliver_pending())
    return 0


def _cmd_jobs(args: argparse.Namespace) -> int:
    if args.action == "run":
        print(worker.drain())
    elif args.action == "retry":
        if args.id is None:
            print("Error: give the job id to retry: jobs retry ID", file=sys.stderr)
            return 2
        job = jobs.retry(args.id)
        print(f"Job {job.id} ({job.key}) will run again now.")
        return 0
    with read_session() as session:
        counts = jobs.counts(session)
        rows = jobs.open_jobs(session, limit=args.limit)
    print("Jobs: " + (", ".join(f"{n} {status}" for status, n in sorted(counts.items())) or "none"))
    for job in rows:
        due = job.run_after.isoformat(timespec="seconds")
        error = f"  — {job.last_error}" if job.last_error else ""
        print(
            f"  #{job.id:<6} {job.status:<8} {job.kind:<24} {job.key:<40} attempts {job.attempts}, "
            f"next {due}{error}"
        )
    return 1 if counts.get("failed") else 0


def _cmd_check_calendar(args: argparse.Namespace) -> int:
    settings = get_settings()
    if settings.calendar_backend == "google":
        ok, text = check_calendar_report(settings)
        print(text)
        return 0 if ok else 1
    with read_session() as session:
        ids = [t.calendar_id for t in session.exec(select(Tutor).where(Tutor.active == True)).all()]  # noqa: E712
    for check in get_backend().check(ids):
        print(f"[{'ok' if check.ok else 'FAIL'}] {check.subject}: {check.detail}")
        if check.fix:
            print(f"       {check.fix}")
    return 0


def _cmd_check_stripe(args: argparse.Namespace) -> int:
    ok_all = True
    for item in check_stripe():
        subject, ok, detail = item[0], item[1], item[2]
        ok_all &= bool(ok)
        print(f"[{'ok' if ok else 'FAIL'}] {subject}: {detail}")
    return 0 if ok_all else 1


def _parse_since(text: str) -> datetime:
    text = text.strip()
    if text.endswith(("d", "h")) and text[:-1].isdigit():
        amount = int(text[:-1])
        return clock.now() - (timedelta(days=amount) if text.endswith("d") else timedelta(hours=amount))
    value = datetime.fromisoformat(text)
    if value.tzinfo is None:
        value = value.replace(tzinfo=get_settings().tz)
    return value.astimezone(UTC)


def _cmd_reconcile(args: argparse.Namespace) -> int:
    report = reconcile_payments(_parse_since(args.since))
    print(report)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m core.cli", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("migrate", help="upgrade the database schema").set_defaults(func=_cmd_migrate)
    p = sub.add_parser("seed-demo", help="load demo data into an empty database")
    p.add_argument("--if-empty", action="store_true", help="exit 0 when the database already has data")
    p.set_defaults(func=_cmd_seed_demo)
    p = sub.add_parser("create-user", help="create a console account")
    p.add_argument("--email", required=True)
    p.add_argument("--role", required=True, choices=["tutor", "admin", "finance"])
    p.add_argument("--name")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.set_defaults(func=_cmd_create_user)
    p = sub.add_parser("ensure-admin", help="create the first admin if there are no accounts")
    p.add_argument("--email", default="admin@lesplanner.local")
    p.set_defaults(func=_cmd_ensure_admin)
    sub.add_parser(
        "rebuild-payment-totals",
        help="recompute the daily payment totals, created and paid (after a TIMEZONE change)",
    ).set_defaults(func=_cmd_rebuild_payment_totals)
    sub.add_parser("expire-holds").set_defaults(func=_cmd_expire_holds)
    sub.add_parser("deliver-messages").set_defaults(func=_cmd_deliver)
    p = sub.add_parser("jobs", help="list open jobs (failed first), run the due ones, or retry one")
    p.add_argument("action", nargs="?", choices=["list", "run", "retry"], default="list")
    p.add_argument("id", nargs="?", type=int)
    p.add_argument("--limit", type=int, default=50)
    p.set_defaults(func=_cmd_jobs)
    sub.add_parser("check-calendar").set_defaults(func=_cmd_check_calendar)
    sub.add_parser("check-stripe").set_defaults(func=_cmd_check_stripe)
    p = sub.add_parser("reconcile-payments", help="apply missed Stripe webhooks")
    p.add_argument("--since", default="3d", help="ISO date/time or e.g. 3d, 12h (default 3d)")
    p.set_defaults(func=_cmd_reconcile)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except LesplannerError as exc:
        print(f"Error: {exc.message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
