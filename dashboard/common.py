"""Small UI helpers shared by the pages: friendly errors, number formats, the password gate."""
from __future__ import annotations

import hmac
import logging
import math
import os
import traceback
from contextlib import contextmanager
from datetime import datetime
from typing import Iterator

import streamlit as st

log = logging.getLogger("plate_studio.dashboard")

PASSWORD_ENV = "PLATE_STUDIO_PASSWORD"


# errors ------------------------------------------------------------------------------------------
def show_error(message: str, exc: BaseException | None = None, *, details: str | None = None) -> None:
    """A short message on screen; the technical part (exception, traceback, log) in a closed expander."""
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
    """Turn any exception in the block into `show_error(message ...)` instead of a stack trace.

    `st.rerun()`/`st.stop()` (control-flow exceptions) pass through untouched.
    """
    try:
        yield
    except Exception as exc:  # noqa: BLE001 - this is the UI's last line of defence
        if _is_streamlit_control_flow(exc):
            raise
        show_error(f"{message} {short_reason(exc)}".strip(), exc)


def _is_streamlit_control_flow(exc: BaseException) -> bool:
    name = type(exc).__name__
    return name in {"RerunException", "StopException"} or type(exc).__module__.startswith("streamlit.runtime.scriptrunner")


def short_reason(exc: BaseException) -> str:
    """One plain sentence from an exception, without internals."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    if isinstance(exc, FileNotFoundError) and not text:
        return "A file it needs is missing."
    if isinstance(exc, MemoryError):
        return "The machine ran out of memory."
    if len(text) > 300:
        text = text[:297] + "..."
    return text


# formats -----------------------------------------------------------------------------------------
def fmt_pct(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100 * float(value):.{digits}f} %"


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    try:
        seconds = max(0, int(round(float(seconds))))
    except (TypeError, ValueError):
        return "-"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def fmt_time(iso: str | None) -> str:
    """An ISO timestamp as local 'YYYY-MM-DD HH:MM'."""
    if not iso:
        return "-"
    try:
        when = datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    if when.tzinfo is not None:
        when = when.astimezone()
    return when.strftime("%Y-%m-%d %H:%M")


def fmt_bytes(size: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


STATE_LABELS = {
    "queued": ("Starting", ":material/hourglass_top:"),
    "running": ("Training", ":material/model_training:"),
    "finished": ("Finished", ":material/check_circle:"),
    "stopped": ("Stopped", ":material/pause_circle:"),
    "failed": ("Failed", ":material/error:"),
    "unknown": ("Unknown", ":material/help:"),
}


def state_label(state: str | None) -> str:
    return STATE_LABELS.get(state or "unknown", (str(state).title(), ""))[0]


def run_label(run: dict) -> str:
    """How a run is named in pickers: its name (or id), when, and its score if it has one."""
    name = run.get("name") or run["id"]
    parts = [name]
    if run.get("name"):
        parts.append(f"({fmt_time(run.get('created_at'))})")
    state = run.get("state")
    if run.get("plate_accuracy") is not None:
        parts.append(f"- plate accuracy {fmt_pct(run['plate_accuracy'])}")
    elif state and state != "finished":
        parts.append(f"- {state_label(state).lower()}")
    return " ".join(parts)


# password gate -----------------------------------------------------------------------------------
def configured_password() -> str | None:
    """PLATE_STUDIO_PASSWORD, else st.secrets["password"], else None (no password)."""
    value = os.environ.get(PASSWORD_ENV)
    if value:
        return value
    try:
        secret = st.secrets.get("password")
    except Exception:  # no secrets.toml at all
        secret = None
    return str(secret) if secret else None


def password_ok(entered: str | None, expected: str) -> bool:
    if entered is None:
        return False
    return hmac.compare_digest(str(entered).encode("utf-8"), str(expected).encode("utf-8"))


def login_page() -> None:
    """The only page shown until the password is entered."""
    _, middle, _ = st.columns([1, 2, 1])
    with middle:
        _login_form()


def _login_form() -> None:
    st.title("Plate OCR Studio")
    st.write("This dashboard is protected. Enter the password to continue.")
    with st.form("login", clear_on_submit=True, border=True):
        entered = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        expected = configured_password()
        if expected and password_ok(entered, expected):
            st.session_state["authenticated"] = True
            st.rerun()
        else:
            st.error("That password is not right. Try again.")


def authenticated() -> bool:
    expected = configured_password()
    if not expected:
        return True
    return bool(st.session_state.get("authenticated"))


def _real_server() -> bool:
    """False under streamlit.testing's AppTest, which puts a mock Runtime in place and turns the
    pages/ folder mode back on before every run (a rerun there would drop the clicked button)."""
    try:
        from streamlit.runtime import Runtime
    except ImportError:  # pragma: no cover
        return True
    instance = getattr(Runtime, "_instance", None)
    return instance is not None and type(instance).__module__.split(".")[0] != "unittest"


def page_guard() -> None:
    """First line of every page: make sure it runs behind streamlit_app.py's router and password.

    Streamlit starts in its old "pages/ folder" mode whenever a pages/ folder exists, and leaves it
    only once st.navigation() has run. So the very first visit to a fresh server at /results would
    run pages/results.py on its own, without the router (or the password). Switch that mode off and
    rerun: the rerun goes through streamlit_app.py, which routes to the same URL. If Streamlit's
    internals ever change, the password check below still holds.
    """
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:  # pragma: no cover - other Streamlit versions
        PagesManager = None  # noqa: N806
    if PagesManager is not None and getattr(PagesManager, "uses_pages_directory", False):
        PagesManager.uses_pages_directory = False
        if _real_server():
            st.rerun()
    if not authenticated():
        login_page()
        st.stop()
    from engine.paths import DataFolderUnusable, data_home

    try:  # every page needs the data folder: say what to do instead of crashing
        data_home()
    except DataFolderUnusable as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()
