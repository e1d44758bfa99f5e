"""The gate every page passes first: the password (sign-in form, wrong-password limits) and the
refusal to serve beyond this machine without one (`page_guard`, `authenticated`, `login_page`).

dashboard/serve.py uses `configured_password` and `exposure_problem` before the server starts.
Words and numbers live in dashboard/text.py, error boxes in dashboard/errors.py.
"""
from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import math
import os
import secrets
import threading
import time
from collections import deque

import streamlit as st

from dashboard.text import fmt_duration

log = logging.getLogger("plate_studio.dashboard")

PASSWORD_ENV = "PLATE_STUDIO_PASSWORD"


# password gate -----------------------------------------------------------------------------------
# The gate covers every page's script. It does not cover Streamlit's own HTTP endpoints (file
# uploads, media files of a signed-in session): README "Access" says how to put a proxy in front.
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
    """Constant time: both sides are hashed first, so neither content nor length leaks through timing."""
    if entered is None:
        return False
    return hmac.compare_digest(_digest(entered), _digest(expected))


def _digest(text: str) -> bytes:
    return hashlib.sha256(str(text).encode("utf-8")).digest()


class SignInLimits:
    """Wrong passwords slow a client down, then lock it out; too many from everyone pause sign-in
    for all, so opening fresh sessions does not help an attacker. Thread-safe (one per server)."""

    def __init__(self, *, free_attempts: int = 2, base_delay: float = 1.0, max_delay: float = 60.0,
                 lockout_after: int = 10, lockout: float = 900.0, global_max: int = 100, window: float = 900.0,
                 forget_after: float = 3600.0):
        self.free_attempts, self.base_delay, self.max_delay = free_attempts, base_delay, max_delay
        self.lockout_after, self.lockout = lockout_after, lockout
        self.global_max, self.window, self.forget_after = global_max, window, forget_after
        self._lock = threading.Lock()
        self._clients: dict[str, tuple[int, float]] = {}  # client -> (wrong passwords in a row, when the last)
        self._recent: deque[float] = deque()  # every wrong password within `window`, oldest first

    def delay(self, failures: int) -> float:
        """Seconds a client waits after its `failures`-th wrong password in a row: none for a typo or
        two, then doubling up to `max_delay`, then the lock-out."""
        if failures >= self.lockout_after:
            return self.lockout
        if failures <= self.free_attempts:
            return 0.0
        return min(self.max_delay, self.base_delay * 2 ** (failures - self.free_attempts - 1))

    def wait(self, client: str) -> float:
        """Seconds before `client` may try a password again (0: now)."""
        now = time.monotonic()
        with self._lock:
            self._forget(now)
            if len(self._recent) >= self.global_max:  # until enough of them are older than the window
                return self._recent[len(self._recent) - self.global_max] + self.window - now
            failures, last = self._clients.get(client, (0, now))
            return max(0.0, last + self.delay(failures) - now)

    def failed(self, client: str) -> int:
        """Record a wrong password; returns how many in a row this client has given."""
        now = time.monotonic()
        with self._lock:
            failures = self._clients.get(client, (0, now))[0] + 1
            self._clients[client] = (failures, now)
            self._recent.append(now)
        return failures

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._clients.pop(client, None)

    def _forget(self, now: float) -> None:
        while self._recent and self._recent[0] <= now - self.window:
            self._recent.popleft()
        for client in [c for c, (_, last) in self._clients.items() if now - last > self.forget_after]:
            del self._clients[client]


SIGN_IN_LIMITS = SignInLimits()


def _client() -> tuple[str, str]:
    """(who the limits count against, how the log names them): the IP address when Streamlit knows
    it (it does not for localhost, nor does it see past a proxy), else this browser session."""
    try:
        ip = st.context.ip_address
    except Exception:  # no server behind this script run
        ip = None
    if isinstance(ip, str) and ip:  # (streamlit.testing's stand-in server answers with a mock object)
        return f"ip:{ip}", ip
    session = st.session_state.setdefault("_sign_in_session", secrets.token_hex(6))
    return f"session:{session}", f"local or proxied client (session {session})"


def is_loopback(address: str | None) -> bool:
    """True when `address` (server.address) accepts connections from this machine only."""
    if not address:
        return False  # unset: Streamlit listens on every interface
    address = address.strip().strip("[]")
    if address.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False  # a host name: whatever it resolves to may be reachable from elsewhere


def exposure_problem(address: str | None, password: str | None) -> str | None:
    """Why the dashboard must not serve on `address`: other machines can reach it and no password is set."""
    if password or is_loopback(address):
        return None
    return (f"Plate OCR Studio will not serve on {address or 'every network interface'} without a password, "
            f"because anyone who can reach this machine could use it. Set {PASSWORD_ENV} (or password in "
            ".streamlit/secrets.toml), or keep server.address = \"localhost\" in .streamlit/config.toml.")


def server_address_problem() -> str | None:
    """exposure_problem for this server's configured address. Under streamlit.testing nothing
    listens, so only an address set explicitly (as tests of this guard do) is checked there."""
    address = st.get_option("server.address")
    if address is None and not _real_server():
        return None
    return exposure_problem(address, configured_password())


def login_page() -> None:
    """The only page shown until the password is entered (or the refusal to serve at all)."""
    _, middle, _ = st.columns([1, 2, 1])
    with middle:
        problem = server_address_problem()
        if problem:
            st.title("Plate OCR Studio")
            st.error(problem, icon=":material/lock:")
        else:
            _login_form()


def _login_form() -> None:
    st.title("Plate OCR Studio")
    st.write("This dashboard is protected. Enter the password to continue.")
    with st.form("login", clear_on_submit=True, border=True):
        entered = st.text_input("Password", type="password", key="login_password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        _sign_in(entered)


def _sign_in(entered: str) -> None:
    client, who = _client()
    wait = SIGN_IN_LIMITS.wait(client)
    if wait > 0:  # not even checked: a right password must not get through a lock-out either
        log.warning("Sign-in refused for %s: too many wrong passwords (%d s to wait)", who, math.ceil(wait))
        st.error(f"Too many wrong passwords. Try again in {fmt_duration(math.ceil(wait))}.")
        return
    expected = configured_password()
    if expected and password_ok(entered, expected):
        SIGN_IN_LIMITS.succeeded(client)
        st.session_state["authenticated"] = True
        st.rerun()
    failures = SIGN_IN_LIMITS.failed(client)
    log.warning("Wrong password from %s (%d in a row)", who, failures)
    wait = SIGN_IN_LIMITS.wait(client)
    later = f" You can try again in {fmt_duration(math.ceil(wait))}." if wait > 0 else ""
    st.error(f"That password is not right. Try again.{later}")


def authenticated() -> bool:
    if server_address_problem():
        return False
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
    from engine.storage.paths import DataFolderUnusable, data_home

    try:  # every page needs the data folder: say what to do instead of crashing
        data_home()
    except DataFolderUnusable as exc:
        st.error(str(exc), icon=":material/error:")
        st.stop()
