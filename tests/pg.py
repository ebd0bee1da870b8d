"""A throwaway PostgreSQL server for the tests: initdb into a temp folder, start on a free
loopback port, one per test process. Debian's postgresql package provides the binaries
(`make test` installs it when missing). Set LESPLANNER_TEST_PG_URL to use a server you run.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import psycopg

from tests.procs import free_port


def _bin_dir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    found = shutil.which("pg_ctl")
    if found:
        return Path(os.path.realpath(found)).parent
    raise RuntimeError(
        "PostgreSQL is not installed: run `make test` (it installs Debian's postgresql) "
        "or `apt-get install postgresql`."
    )


class PostgresServer:
    def __init__(self) -> None:
        self.dir = Path(tempfile.mkdtemp(prefix="lesplanner-pg-"))
        self.port = free_port()
        self.bin = _bin_dir()
        self._as_user: list[str] = []
        if os.geteuid() == 0:  # postgres refuses to run as root
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as_user = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str) -> None:
        subprocess.run([*self._as_user, *args], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    def start(self) -> str:
        data = self.dir / "data"
        self._run(
            str(self.bin / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        opts = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._run(
            str(self.bin / "pg_ctl"),
            "-D",
            str(data),
            "-o",
            opts,
            "-l",
            str(self.dir / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        return self.url("postgres")

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        try:
            self._run(str(self.bin / "pg_ctl"), "-D", str(self.dir / "data"), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def admin_dsn(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://")


def create_database(server_url: str, template: str | None = None) -> str:
    """A fresh database on the server, empty or a copy of `template`; returns its SQLAlchemy URL."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn(server_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return server_url.rsplit("/", 1)[0] + "/" + name


def _server_and_name(url: str) -> tuple[str, str]:
    """The server's maintenance database URL and the database's name (without any query)."""
    base = url.split("?", 1)[0]
    return base.rsplit("/", 1)[0] + "/postgres", base.rsplit("/", 1)[1]


def recreate_from_template(url: str, template: str) -> None:
    """The database at `url`, dropped and made again as a copy of the database `template`."""
    server, name = _server_and_name(url)
    with psycopg.connect(admin_dsn(server), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')


def drop_database(url: str) -> None:
    server, name = _server_and_name(url)
    with psycopg.connect(admin_dsn(server), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# --- reusing a test database ------------------------------------------------------------------
# `CREATE DATABASE ... TEMPLATE` copies every page of the template (~0.2 s on a busy server); a
# test leaves a few rows behind, so handing its database to the next test after deleting them and
# restoring the template's rows and sequences costs ~0.02 s. Only a database that looks exactly
# like the template did (same tables, columns, indexes, triggers and functions) and that nobody
# is connected to any more is reused; anything else is left alone, and the next test gets a copy.

_FINGERPRINT = """
SELECT md5(coalesce(string_agg(item, ',' ORDER BY item), '')) FROM (
    SELECT 'c:' || c.relname || ':' || c.relkind::text FROM pg_class c
        WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL
    SELECT 'a:' || c.relname || '.' || a.attname || ':' || a.atttypid::text || ':' || a.attnotnull::text
        FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace = 'public'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT 't:' || t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
        WHERE c.relnamespace = 'public'::regnamespace
    UNION ALL
    SELECT 'p:' || p.proname FROM pg_proc p WHERE p.pronamespace = 'public'::regnamespace
    UNION ALL
    SELECT 'k:' || conname FROM pg_constraint WHERE connamespace = 'public'::regnamespace
) AS items(item)
"""


class TemplateCopy:
    """What a copy of the template must look like again before another test may have it."""

    def __init__(self, template_url: str) -> None:
        with psycopg.connect(admin_dsn(template_url)) as conn:
            self.fingerprint = conn.execute(_FINGERPRINT).fetchone()[0]  # type: ignore[index]
            tables = [
                r[0]
                for r in conn.execute(
                    "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'r'"
                )
            ]
            self.tables = tables
            self.rows: dict[str, bytes] = {}  # table -> its rows in COPY's text format
            for table in tables:
                with conn.cursor() as cursor, cursor.copy(f'COPY "{table}" TO STDOUT') as copy:
                    data = b"".join(bytes(block) for block in copy)
                if data:
                    self.rows[table] = data
            self.sequences = [
                (name, *conn.execute(f'SELECT last_value, is_called FROM "{name}"').fetchone())  # type: ignore[misc]
                for (name,) in conn.execute(
                    "SELECT relname FROM pg_class WHERE relnamespace = 'public'::regnamespace AND relkind = 'S'"
                ).fetchall()
            ]

    def reset(self, url: str) -> bool:
        """Make the database at `url` hold the template's rows again; False (and nothing done)
        when it cannot be reused."""
        server, name = _server_and_name(url)
        with psycopg.connect(admin_dsn(server), autocommit=True) as conn:
            connected = conn.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (name,)
            ).fetchone()[0]  # type: ignore[index]
        if connected:  # something of the last test still holds it: never share it
            return False
        with psycopg.connect(admin_dsn(url.split("?", 1)[0])) as conn:
            if conn.execute(_FINGERPRINT).fetchone()[0] != self.fingerprint:  # type: ignore[index]
                return False
            conn.execute("SET session_replication_role = replica")  # no foreign-key order needed
            for table in self.tables:
                conn.execute(f'DELETE FROM "{table}"')
            for table, data in self.rows.items():
                with conn.cursor() as cursor, cursor.copy(f'COPY "{table}" FROM STDIN') as copy:
                    copy.write(data)
            for sequence, last_value, is_called in self.sequences:
                conn.execute("SELECT setval(%s, %s, %s)", (f'"{sequence}"', last_value, is_called))
        return True
