"""Dependencies shared by the routes, as `Annotated` aliases so routes stay a few lines long.

- `SettingsDep`: the process settings (tests install their own with `set_settings`).
- `SessionDep`: a read session for one request; writes go through core functions, which open
  their own write transactions.
- `require_bot_token`: the bot API's bearer check. No token configured → 503 (fail closed, and
  say how to fix it); missing or wrong → 401 with `WWW-Authenticate: Bearer`. The comparison is
  constant-time so the token cannot be guessed byte by byte from response times.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
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


def require_bot_token(
    settings: SettingsDep,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> None:
    expected = settings.secret("bot_api_token")
    if expected is None:
        raise BotApiNotConfigured("Bot API is not configured: set BOT_API_TOKEN")
    given = credentials.credentials if credentials is not None else ""
    if not given or not hmac.compare_digest(given.encode(), expected.encode()):
        raise Unauthorized("Missing or wrong bot API token: send 'Authorization: Bearer <BOT_API_TOKEN>'.")


BotAuth = Depends(require_bot_token)
