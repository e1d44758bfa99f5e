"""Errors as an operator should see them: one plain sentence, the technical part folded away."""
from __future__ import annotations

import logging
import traceback
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

import streamlit as st

from dashboard.text import plain

log = logging.getLogger("plate_studio.dashboard")
T = TypeVar("T")


def show_error(message: str, exc: BaseException | None = None, *, details: str | None = None) -> None:
    """`message` (Markdown we wrote; user text in it must go through text.plain) on screen; the
    exception, traceback or log in a closed expander, as literal text."""
    st.error(message, icon=":material/error:")
    text = details or ""
    if exc is not None:
        log.warning("%s: %s", message, exc, exc_info=exc)
        tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
        text = (text + "\n\n" if text else "") + f"{type(exc).__name__}: {exc}\n\n{tb}"
    if text.strip():
        with st.expander("Technical details"):
            st.code(text.strip(), language=None)


@contextmanager
def friendly_errors(message: str) -> Iterator[None]:
    """Any exception in the block becomes `show_error(message + reason)` instead of a stack trace.
    st.rerun()/st.stop() (Streamlit's control-flow exceptions) pass through."""
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - the UI's last line of defence
        if _is_streamlit_control_flow(exc):
            raise
        show_error(f"{message} {reason(exc)}".strip(), exc)


def attempt(action: Callable[[], T], failure: str) -> tuple[bool, T | None]:
    """Run an engine action for a button: (done, its result). A refusal the engine explains (busy, an
    unusable name or value, a missing file) is shown after `failure` in its own plain words; anything
    else as `failure` with the details folded away."""
    from engine.storage.locks import Busy

    try:
        return True, action()
    except (Busy, FileNotFoundError, ValueError) as exc:  # UnsafeName and the engine's refusals are ValueErrors
        show_error(f"{failure} {reason(exc)}")
    except Exception as exc:  # noqa: BLE001 - the UI's last line of defence
        show_error(failure, exc)
    return False, None


def _is_streamlit_control_flow(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name in {"RerunException", "StopException"} or type(exc).__module__.startswith("streamlit.runtime.scriptrunner")


def reason(exc: BaseException) -> str:
    """One plain sentence from an exception, escaped for Markdown (engine messages quote user names)."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, FileNotFoundError) and not text:
        text = "A file it needs is missing."
    if isinstance(exc, MemoryError):
        text = "The machine ran out of memory."
    if len(text) > 300:
        text = text[:297] + "..."
    return plain(text)
