"""Dependencies shared by the routes, as `Annotated` aliases so routes stay a few lines long.

- `SettingsDep`: the process settings (tests install their own with `set_settings`).
- `SessionDep`: a read session for one request; writes go through core functions, which open
  their own write transactions.
- `check_bot_token`: the bot API's bearer check, the only place the token is compared. No token
  configured → 503 (fail closed, and say how to fix it); missing or wrong → 401 with
  `WWW-Authenticate: Bearer`. The comparison is constant-time so the token cannot be guessed
  byte by byte from response times. The ASGI gate (receiver/gate.py) runs it for every
  /api/v1 request before the app reads the body; `require_bot_token` runs it again as the
  routes' dependency, which is what puts the bearer scheme in the OpenAPI document.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from fastapi.security.utils import get_authorization_scheme_param
from sqlmodel import Session

from core.config import Settings, get_settings
from core.db import read_session
from receiver.errors import BotApiNotConfigured, Unauthorized

SettingsDep = Annotated[Settings, Depends(get_settings)]


def get_session() -> Iterator[Session]:
    with read_session() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]

bearer_scheme = HTTPBearer(
    auto_error=False,
    scheme_name="BotToken",
    description="The receiver's BOT_API_TOKEN: `Authorization: Bearer <token>`.",
)


NOT_CONFIGURED = "Bot API is not configured: set BOT_API_TOKEN"
WRONG_TOKEN = "Missing or wrong bot API token: send 'Authorization: Bearer <BOT_API_TOKEN>'."


def check_bot_token(settings: Settings, authorization: str | None) -> str:
    """The token of an `Authorization` header value if it is the configured one; raises
    BotApiNotConfigured (503) or Unauthorized (401). Parsed like FastAPI's HTTPBearer."""
    expected = settings.secret("bot_api_token")
    if expected is None:
        raise BotApiNotConfigured(NOT_CONFIGURED)
    scheme, given = get_authorization_scheme_param(authorization)
    if scheme.lower() != "bearer" or not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized(WRONG_TOKEN)
    return given


def require_bot_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    header = f"{credentials.scheme} {credentials.credentials}" if credentials is not None else None
    check_bot_token(settings, header)


BotAuth = Depends(require_bot_token)
