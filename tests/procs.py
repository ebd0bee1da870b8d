"""The receiver as a real process, for tests that need what an in-process TestClient cannot give:
two servers on one database, a SIGKILL in the middle of a burst, a restart on the same port,
and the server's own stdout/stderr.

`ReceiverProcess(env)` runs `uvicorn receiver.main:app` on 127.0.0.1 and a free port (kept
across restarts), with the given environment on top of a clean one: the child runs in its own
folder, so the repository's `.env` cannot add settings the test did not choose. Everything the
child prints goes to a log file that `output()` returns.

`prepare_database(url)` creates every table and the seed profiles, as `python -m core.cli
migrate` would (without the subprocess), and adds one tutor.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

# Debug logging for every logger of the child (ours, uvicorn's, stripe's, urllib3's, ...), so a
# secret that any of them would print shows up in `output()`.
DEBUG_LOG_CONFIG = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}
    },
    "root": {"level": "DEBUG", "handlers": ["stderr"]},
    "loggers": {
        "uvicorn": {"level": "DEBUG"},
        "uvicorn.access": {"level": "DEBUG"},
        "uvicorn.error": {"level": "DEBUG"},
    },
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare_database(
    url: str, *, tutor_calendar: str = "tutor@lesplanner.test", requires_payment: bool | None = None
) -> None:
    """Tables, seed profiles and one tutor teaching every profile, in a database of its own
    engine (the test process's settings are not touched)."""
    from sqlmodel import Session, select

    import core.models  # noqa: F401  (registers the tables)
    from core.db import get_engine
    from core.models import PlanningProfile, Tutor
    from tests.conftest import fresh_schema

    fresh_schema(url)
    engine = get_engine(url)
    with Session(engine) as session:
        if requires_payment is not None:
            for profile in session.exec(select(PlanningProfile)).all():
                profile.requires_payment = requires_payment
                session.add(profile)
        session.add(Tutor(name="Anna", email="anna@lesplanner.test", calendar_id=tutor_calendar))
        session.commit()


class ReceiverProcess:
    """One uvicorn receiver. `start()` waits for /healthz; `kill()` is SIGKILL (no shutdown
    hooks, like a power cut); `restart()` starts it again on the same port."""

    def __init__(
        self,
        env: dict[str, str],
        *,
        port: int | None = None,
        debug_logs: bool = False,
        workdir: str | Path | None = None,
    ) -> None:
        self.port = port or free_port()
        self.env = {k: str(v) for k, v in env.items() if v is not None}
        self.debug_logs = debug_logs
        self.workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="receiver-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"receiver-{self.port}.log"
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _command(self) -> list[str]:
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            "receiver.main:app",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--no-server-header",
        ]
        if self.debug_logs:
            config = self.workdir / "log-config.json"
            config.write_text(json.dumps(DEBUG_LOG_CONFIG))
            cmd += ["--log-config", str(config), "--log-level", "debug"]
        else:
            cmd += ["--log-level", "warning"]
        return cmd

    def _environment(self) -> dict[str, str]:
        keep = {
            k: v
            for k, v in os.environ.items()
            if k in ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "SYSTEMROOT")
        }
        return {**keep, "PYTHONPATH": str(REPO_ROOT), "PYTHONUNBUFFERED": "1", **self.env}

    def start(self, timeout: float = 30.0) -> ReceiverProcess:
        assert self.process is None or self.process.poll() is not None, "already running"
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it while it runs
        try:
            self.process = subprocess.Popen(
                self._command(),
                cwd=self.workdir,
                env=self._environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        finally:
            log.close()
        self.starts += 1
        self.wait_healthy(timeout)
        return self

    def wait_healthy(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"receiver exited with {self.process.returncode}:\n{self.output()[-4000:]}"
                )
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as response:
                    if response.status == 200:
                        return
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.05)
        raise TimeoutError(f"receiver not healthy within {timeout} s:\n{self.output()[-4000:]}")

    def kill(self) -> None:
        """SIGKILL: no lifespan shutdown, no flush, open transactions die with the process."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        """SIGTERM and wait (uvicorn's graceful shutdown); SIGKILL if it hangs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def restart(self, timeout: float = 30.0) -> ReceiverProcess:
        self.kill()
        return self.start(timeout)

    def output(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def __enter__(self) -> ReceiverProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def receiver_env(database_url: str, **settings: Any) -> dict[str, str]:
    """Environment variables for a receiver: DATABASE_URL plus upper-cased settings
    (None values are left out). The bot API's rate limits are off unless given: fifty bots
    racing for one slot from 127.0.0.1 are a test, not a flood."""
    settings = {"bot_rate_limit_per_token": 0, "bot_rate_limit_per_address": 0, **settings}
    env = {"DATABASE_URL": database_url}
    env.update({k.upper(): str(v) for k, v in settings.items() if v is not None})
    return env


# --- the fake Stripe as a receiver subprocess sees it ----------------------------------------

WEBHOOK_SECRET = "whsec_reliability_0123456789abcdef"
BOT_TOKEN = "bot-token-reliability-0123456789"
PRICES = {  # setting -> (price id, amount in cents)
    "standard_price_id_60": ("price_std_60", 4500),
    "standard_price_id_90": ("price_std_90", 6500),
    "weekend_price_id_60": ("price_wk_60", 5500),
    "weekend_price_id_90": ("price_wk_90", 7900),
}


def add_prices(fake: Any) -> None:
    for price_id, amount in PRICES.values():
        fake.add_price(price_id, amount, "eur")


def stripe_settings(
    fake: Any, *, webhook_secret: str = WEBHOOK_SECRET, max_retries: int = 0
) -> dict[str, Any]:
    """Settings (lower-case names) that point Lesplanner's Stripe gateway at `fake`."""
    return dict(
        stripe_api_key=fake.api_key,
        stripe_api_base=fake.url,
        stripe_webhook_secret=webhook_secret,
        stripe_max_retries=max_retries,
        stripe_timeout_seconds=5.0,
        checkout_success_url="https://lesplanner.test/betaald",
        checkout_cancel_url="https://lesplanner.test/geannuleerd",
        **{name: price_id for name, (price_id, _) in PRICES.items()},
    )
