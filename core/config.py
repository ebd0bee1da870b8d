"""Settings: every knob of Lesplanner in one place, read from the environment or `.env`.

Secrets are `SecretStr` so they never show up in a repr, a log line or an error page.
Tests build their own `Settings(...)` and install it with `set_settings`.
"""

from __future__ import annotations

import json
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.engine import make_url

STRIPE_DEFAULT_API_BASE = "https://api.stripe.com"
GCAL_DEFAULT_API_ENDPOINT = "https://www.googleapis.com/calendar/v3/"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = "sqlite:///data/lesplanner.db"
    timezone: str = "Europe/Amsterdam"
    # Public holidays never offered (core/availability.py): the `holidays` package's country code;
    # empty = none.
    holidays_country: str = "NL"

    # Calendar
    calendar_backend: str = "local"  # local | google
    gcal_service_account_json: SecretStr | None = None  # a file path or the JSON text itself
    gcal_calendar_id: str = "primary"
    gcal_delegated_user: str | None = None
    gcal_api_endpoint: str = GCAL_DEFAULT_API_ENDPOINT
    gcal_timeout_seconds: float = 5.0  # per HTTP request
    gcal_max_retries: int = 4
    gcal_call_budget_seconds: float = 12.0  # all attempts of one call, below SQLite's 15 s busy_timeout
    # The local mirror (core/calendars/mirror.py): slots come from it while it is younger than
    # GCAL_MIRROR_MAX_AGE_SECONDS (0 = never: always FreeBusy); the worker syncs each calendar
    # every GCAL_SYNC_SECONDS.
    gcal_mirror_max_age_seconds: int = 60
    gcal_sync_seconds: int = 30
    # Where Google may push change notifications (events.watch), the receiver's public HTTPS base
    # URL; /webhooks/google is appended. Unset: polling only.
    gcal_public_webhook_url: str | None = None

    # Stripe
    stripe_api_key: SecretStr | None = None
    stripe_webhook_secret: SecretStr | None = None
    stripe_api_base: str = STRIPE_DEFAULT_API_BASE
    stripe_timeout_seconds: float = 15.0
    stripe_max_retries: int = 3
    standard_price_id_60: str | None = None
    standard_price_id_90: str | None = None
    weekend_price_id_60: str | None = None
    weekend_price_id_90: str | None = None
    # Bundles of prepaid lessons (credits): a one-time price per lesson, bought × the number.
    bundle_price_id_60: str | None = None
    bundle_price_id_90: str | None = None
    # Ask Stripe for an invoice (a receipt with the business's BTW details) with every Checkout.
    stripe_invoices: bool = False
    # A Stripe Tax Rate (e.g. 21% BTW, inclusive) put on every line item; unset for exempt tutoring.
    stripe_tax_rate_id: str | None = None
    checkout_success_url: str | None = None
    checkout_cancel_url: str | None = None
    checkout_expires_minutes: int = 30  # Stripe accepts 30 minutes .. 24 hours
    # A delayed payment method (SEPA, Bancontact, ...) keeps its slot this long after checkout.
    async_payment_hold_hours: int = 72

    # Bot API and webhooks
    bot_api_token: SecretStr | None = None
    max_body_bytes: int = 256 * 1024
    # Bot API rate limits, requests a minute per receiver process (0 = no limit; see
    # receiver/ratelimit.py): all requests with the token (a runaway bot, a leaked token), and
    # per client address the requests without a valid token (guessing the token).
    bot_rate_limit_per_token: int = Field(600, ge=0)
    bot_rate_limit_per_address: int = Field(60, ge=0)
    # The receiver's /docs, /redoc and /openapi.json, read when the app starts. On for
    # development; production should set API_DOCS_ENABLED=false (404 for all three).
    api_docs_enabled: bool = True

    # Chat delivery (Chatwoot)
    chatwoot_url: str | None = None
    chatwoot_account_id: str | None = None
    chatwoot_api_token: SecretStr | None = None
    # Reminders outside WhatsApp's 24-hour window go out as this approved template (name), with
    # the customer's name, the lesson's time and the tutor as parameters {{1}}, {{2}}, {{3}}.
    chatwoot_reminder_template: str | None = None
    chatwoot_reminder_template_language: str = "nl"
    chatwoot_reminder_template_category: str = "UTILITY"

    # Background jobs (core/jobs.py): retries back off up to this many seconds, so a healed
    # service is used again within a minute.
    job_max_backoff_seconds: int = 60

    # Console sessions (ui/auth.py): one without a click for this long is signed out.
    console_idle_timeout_hours: float = 8.0
    # Single sign-on (core/signin.py): when set, only ID tokens from this issuer (`iss`) and for
    # e-mail addresses of this domain (and Google's `hd`) are accepted. Commas separate several.
    sso_allowed_issuer: str = ""
    sso_allowed_domain: str = ""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        ZoneInfo(v)  # raises for an unknown zone name
        return v

    @field_validator("holidays_country")
    @classmethod
    def _known_country(cls, v: str) -> str:
        v = v.strip().upper()
        if v:
            try:
                holidays.country_holidays(v)
            except NotImplementedError:
                raise ValueError(
                    f"HOLIDAYS_COUNTRY '{v}' is not a country the holidays package knows"
                ) from None
        return v

    @field_validator("calendar_backend")
    @classmethod
    def _known_backend(cls, v: str) -> str:
        v = v.strip().lower()
        if v not in {"local", "google"}:
            raise ValueError("CALENDAR_BACKEND must be 'local' or 'google'")
        return v

    @field_validator("console_idle_timeout_hours")
    @classmethod
    def _positive_timeout(cls, v: float) -> float:
        if not v > 0:
            raise ValueError("CONSOLE_IDLE_TIMEOUT_HOURS must be more than 0")
        return v

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def secret(self, name: str) -> str | None:
        """The plain value of a secret setting, or None when unset or blank."""
        value = getattr(self, name)
        if value is None:
            return None
        raw = value.get_secret_value().strip()
        return raw or None

    def configured_secrets(self) -> list[str]:
        """Every secret value that is set: used to scrub logs and error messages. The Google
        service account's private key counts on its own too (however it is quoted), also when
        GCAL_SERVICE_ACCOUNT_JSON names a key file."""
        names = [
            "gcal_service_account_json",
            "stripe_api_key",
            "stripe_webhook_secret",
            "bot_api_token",
            "chatwoot_api_token",
        ]
        found = [s for s in (self.secret(n) for n in names) if s and len(s) >= 6]
        found.extend(_service_account_secrets(self.secret("gcal_service_account_json")))
        found.extend(p for p in database_passwords(self.database_url) if len(p) >= 6)
        # Longest first, so a whole value is replaced before any part of it.
        return sorted(set(found), key=len, reverse=True)


# Query parameters that carry a credential in a database URL (libpq and the drivers read these).
DATABASE_URL_SECRET_PARAMS = ("password", "passwd", "pass", "sslpassword")


@lru_cache(maxsize=8)
def database_passwords(url: str | None) -> tuple[str, ...]:
    """Every credential a database URL carries, in each form SQLAlchemy's URL parser knows:
    the password after the user name and password-like query parameters."""
    if not url:
        return ()
    try:
        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - an unparsable URL has nothing we could find
        return ()
    found = [parsed.password] if parsed.password else []
    for key, value in parsed.query.items():
        if key.lower() in DATABASE_URL_SECRET_PARAMS:
            found.extend(value if isinstance(value, tuple) else (value,))
    return tuple(str(v) for v in found if v)


@lru_cache(maxsize=8)
def _service_account_secrets(raw: str | None) -> tuple[str, ...]:
    if not raw:
        return ()
    text = raw
    if not raw.lstrip().startswith("{"):
        try:
            with open(raw, encoding="utf-8") as fh:
                text = fh.read()
        except OSError:
            return ()
    try:
        info = json.loads(text)
    except ValueError:
        return ()
    if not isinstance(info, dict):
        return ()
    out: list[str] = [text.strip()] if text is not raw else []
    key = info.get("private_key")
    if isinstance(key, str) and key:
        out += [key, key.strip(), key.replace("\n", "\\n"), json.dumps(key)[1:-1]]
        # The key's base64 body lines, so a fragment in a traceback is caught as well.
        out += [line for line in key.splitlines() if len(line) >= 16 and "PRIVATE KEY" not in line]
    key_id = info.get("private_key_id")
    if isinstance(key_id, str) and len(key_id) >= 6:
        out.append(key_id)
    return tuple(s for s in out if s)


def scrub(text: str, settings: Settings | None = None) -> str:
    """`text` with every configured secret replaced by ***, so no log line or error carries one.
    Broken settings must not hide the original message, so any failure leaves the text as is."""
    try:
        secrets = (settings or get_settings()).configured_secrets()
    except Exception:  # noqa: BLE001
        return text
    for secret in secrets:
        text = text.replace(secret, "***")
    return text


_override: Settings | None = None


@lru_cache(maxsize=1)
def _from_env() -> Settings:
    return Settings()


def get_settings() -> Settings:
    return _override if _override is not None else _from_env()


def set_settings(settings: Settings | None) -> None:
    """Install settings for this process (tests); None goes back to the environment."""
    global _override
    _override = settings
    _from_env.cache_clear()
