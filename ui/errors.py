"""How the console shows problems: a domain error (core.errors.LesplannerError) becomes an
`st.error` with its message; anything unexpected is logged with its traceback on the server and
shown as a short message, never as a raw traceback in the browser.

Writes go through `run_action`, which also clears the read cache and turns a success into a
"flash" message shown after the rerun, so the page is redrawn with fresh data.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import streamlit as st

from core.errors import InvalidProfile, LesplannerError
from ui import data
from ui.i18n import tr

log = logging.getLogger("lesplanner.console")
_FLASH = "_flash"


def show_error(exc: LesplannerError) -> None:
    if isinstance(exc, InvalidProfile):
        st.error(
            tr(
                "prof.invalid",
                label=tr(f"field.{exc.field}"),
                field=exc.field,
                message=exc.message.split(": ", 1)[-1],
            )
        )
    else:
        st.error(exc.message)


@contextmanager
def guard() -> Iterator[None]:
    """Show errors raised inside the block instead of a traceback. Streamlit's own control flow
    (st.stop, st.rerun) derives from BaseException and passes through."""
    try:
        yield
    except LesplannerError as exc:
        show_error(exc)
    except Exception as exc:  # noqa: BLE001 - last line before the browser
        log.exception("console page failed")
        st.error(tr("error.unexpected", kind=type(exc).__name__))


def run_action(
    fn: Callable[..., Any],
    *args: Any,
    success: str | Callable[[Any], str] | None = None,
    rerun: bool = True,
    **kwargs: Any,
) -> Any:
    """Call a core write; on success clear caches, queue the success message and rerun.
    On a domain error show it and return None."""
    try:
        result = fn(*args, **kwargs)
    except LesplannerError as exc:
        show_error(exc)
        return None
    data.clear()
    if success is not None:
        message = success(result) if callable(success) else success
        st.session_state[_FLASH] = message
    if rerun:
        st.rerun()
    return result


def show_flash() -> None:
    message = st.session_state.pop(_FLASH, None)
    if message:
        st.success(message)
