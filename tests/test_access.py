"""Nothing let in: names from users stay inside the data folder; the dashboard is local and gated.

* Dataset and run names typed by an operator (engine.storage.paths.safe_name/child_path, engine.runs'
  name handling, the Data page's dataset_dir_for) can never address a path outside their folder,
  whatever is typed: '../../etc', '/abs', '..', '.', '', 'a/b', NUL, very long, any script.
* The dashboard listens on localhost unless configured otherwise (.streamlit/config.toml), checked
  on a real `streamlit run` by the sockets it opens.
* With a password (PLATE_STUDIO_PASSWORD), every page shows only the sign-in form, with no data
  leaking, until the password is entered; each new session starts locked again.
  (tests/test_pages.py checks the gate on the Data and Runs pages, by env and by secrets.)
* Wrong passwords slow down, then lock out, a client; rotating sessions runs into a global cap;
  every failure is logged with the client.
* Beyond loopback without a password: the launcher (`make run`) refuses to start the server and the
  app serves no page. Uploads are capped at 200 MB, and the Data page can say so.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from engine.storage.paths import UnsafeName, child_path, safe_name

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")

HOSTILE_NAMES = [
    "../../etc", "../..", "..", ".", "", " ", "...", "/abs", "/etc/passwd", "a/b", "a\\b", "..\\..\\x", "\x00",
    "a\x00b", "x\n/y", "~", "~root", "$HOME", "$(touch PWNED)", "-rf", "--help", ".hidden", "..hidden",
    "C:\\Windows", "//server/share", "%2e%2e%2f", "a" * 1000, "é" * 300, "皖" * 300, "\U00020000" * 100,
    "🚗" * 50, "👨‍👩‍👧", "plates 2024 (final)", "e\u0301", "\u202eexe.zip", "CON", "nul", "\t",
]


def assert_one_harmless_segment(name: str, result: str) -> None:
    assert result and result not in (".", "..") and not result.startswith((".", "-")), (name, result)
    assert "/" not in result and "\\" not in result and "\x00" not in result, (name, result)
    assert result.isprintable() and result == result.strip(), (name, result)
    assert len(result) <= 64 and len(result.encode("utf-8")) <= 255, (name, result, len(result.encode()))


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda n: repr(n)[:30])
def test_safe_name_and_child_path_stay_inside(tmp_path: Path, name: str) -> None:
    base = tmp_path / "datasets"
    base.mkdir()
    try:
        result = safe_name(name)
    except UnsafeName as exc:
        assert "not a usable name" in str(exc)
        with pytest.raises(UnsafeName):
            child_path(base, name)
        return
    assert_one_harmless_segment(name, result)
    path = child_path(base, name)
    assert path.parent == base.resolve() and path.name == result
    path.mkdir()  # the name is really usable on this file system
    assert sorted(p.name for p in tmp_path.rglob("*")) == sorted(["datasets", result])


def test_child_path_refuses_a_symlink_that_leads_outside(tmp_path: Path) -> None:
    base = tmp_path / "datasets"
    base.mkdir()
    (base / "sneaky").symlink_to("/etc")
    with pytest.raises(UnsafeName, match="outside"):
        child_path(base, "sneaky")


@pytest.fixture
def home(studio_home: Path) -> Path:
    (studio_home / "keep.txt").write_text("keep")
    for folder in ("runs/real-run", "datasets/real-dataset"):
        (studio_home / folder).mkdir(parents=True)
    return studio_home


@pytest.mark.parametrize("name", HOSTILE_NAMES + ["real-run/..", "real-dataset/../../keep.txt"], ids=lambda n: repr(n)[:30])
def test_runs_and_datasets_by_name_never_leave_their_folder(home: Path, name: str) -> None:
    from dashboard.data import dataset_dir_for
    from engine import runs
    from engine.runs import launcher

    for call in (runs.get_run, runs.delete_run, runs.run_path):
        with pytest.raises(runs.RunNotFound):
            call(name)
    for call in (runs.dataset_path, runs.delete_dataset):
        with pytest.raises((FileNotFoundError, UnsafeName)):
            call(name)
    try:
        target = dataset_dir_for(name)
    except UnsafeName:
        pass
    else:
        assert target.parent == (home / "datasets").resolve()
    try:
        run_id, run_dir = launcher._new_run_folder(name)  # what start_run does with the name
    except UnsafeName:
        with pytest.raises(UnsafeName):  # refused before anything starts or is created
            runs.start_run(home / "datasets" / "real-dataset", name=name)
    else:
        assert run_dir.parent == (home / "runs").resolve() and run_dir.name == run_id and run_dir.is_dir()
        assert_one_harmless_segment(name, run_id)
        run_dir.rmdir()
    assert (home / "keep.txt").read_text() == "keep"
    assert sorted(p.relative_to(home).as_posix() for p in home.rglob("*") if "registry" not in p.name) == [
        "datasets", "datasets/real-dataset", "keep.txt", "runs", "runs/real-run"]


# --- the dashboard listens on localhost ----------------------------------------------------------------
def test_config_listens_on_localhost_only() -> None:
    with open(ROOT / ".streamlit" / "config.toml", "rb") as f:
        config = tomllib.load(f)
    assert config["server"]["address"] in ("localhost", "127.0.0.1")
    assert config["server"]["headless"] is True
    assert config["browser"]["gatherUsageStats"] is False


def _listening(port: int) -> list[str]:
    """Local addresses of the sockets listening on `port` (from /proc/net/tcp and tcp6)."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, _remote, state = line.split()[1:4]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:  # 0A: LISTEN
                found.append(address)
    return found


LOOPBACK = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1 as /proc writes them


def test_the_real_server_binds_to_loopback_only(studio_home: Path) -> None:
    from browser_helpers import dashboard

    with dashboard(studio_home, address=None) as url:  # the address comes from .streamlit/config.toml
        addresses = _listening(int(url.rsplit(":", 1)[1]))
    assert addresses and set(addresses) <= LOOPBACK, addresses


# --- the password gate on every page --------------------------------------------------------------------
PAGES = {
    "pages/data.py": "Data",
    "pages/train.py": "Train",
    "pages/results.py": "Results",
    "pages/try_it.py": "Try it",
    "pages/runs.py": "Runs",
}
SECRET = "s3cret plates"
DATASET = "secret-fleet"


def page_text(at) -> str:
    """Every element the session would send to the browser, as text."""
    out = []

    def walk(node) -> None:
        proto = getattr(node, "proto", None)
        if proto is not None:
            out.append(str(proto))
        for child in (getattr(node, "children", None) or {}).values():
            walk(child)

    walk(at._tree)
    return "\n".join(out)


def assert_locked(at) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert [t.value for t in at.title] == ["Plate OCR Studio"]
    assert [i.label for i in at.text_input] == ["Password"]
    assert [b.label for b in at.button] == ["Sign in"]
    text = page_text(at)
    assert DATASET not in text and "photos" not in text.lower(), "data leaked past the gate"
    for kind in ("selectbox", "dataframe", "metric", "file_uploader", "plotly_chart", "imgs", "download_button"):
        assert not at.get(kind), kind


def sign_in(at, password: str) -> None:
    at.text_input(key="login_password").input(password)
    at.button[0].click().run()


def test_every_page_is_behind_the_password(studio_home: Path, sample_zip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    from engine.data.importer import import_dataset

    import_dataset(sample_zip, studio_home / "datasets" / DATASET)
    monkeypatch.setenv("PLATE_STUDIO_PASSWORD", SECRET)
    at = AppTest.from_file(APP, default_timeout=120)
    at.query_params["run"] = "anything"
    at.run()
    assert_locked(at)
    for page in PAGES:  # locked, the session has no other page at all: none can be switched to
        with pytest.raises(ValueError, match=r"Known pages: \['Sign in'\]"):
            at.switch_page(page)
        at.run()
        assert_locked(at)
    sign_in(at, "S3CRET PLATES")  # close is not enough
    assert_locked(at)
    assert any("not right" in e.value for e in at.error)

    sign_in(at, SECRET)
    assert not at.exception
    for page, title in PAGES.items():
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert [t.value for t in at.title] == [title], page
    at.switch_page("pages/data.py").run()
    assert DATASET in page_text(at)  # the content the gate was hiding

    fresh = AppTest.from_file(APP, default_timeout=120)  # another browser: its own session, locked
    fresh.run()
    assert_locked(fresh)


# --- wrong passwords: slower, then locked out -------------------------------------------------------------
@pytest.fixture
def limits(monkeypatch: pytest.MonkeyPatch):
    """Install fresh sign-in limits (the real class, with short times so the test can wait them out)."""
    from dashboard import common

    def install(**settings) -> common.SignInLimits:
        fresh = common.SignInLimits(**settings)
        monkeypatch.setattr(common, "SIGN_IN_LIMITS", fresh)
        return fresh

    return install


def locked_app(monkeypatch: pytest.MonkeyPatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("PLATE_STUDIO_PASSWORD", SECRET)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert_locked(at)
    return at


def errors(at) -> str:
    return " | ".join(e.value for e in at.error)


GUESS = "hunter2-guess"


def test_wrong_passwords_slow_down_then_lock_out(studio_home: Path, monkeypatch: pytest.MonkeyPatch, limits, caplog) -> None:
    """Times are short here (the schedule's shape is the real one); each wait is long next to an AppTest run."""
    import logging
    import time

    limits(free_attempts=2, base_delay=2.0, max_delay=60.0, lockout_after=5, lockout=3.0)
    caplog.set_level(logging.WARNING, logger="plate_studio.dashboard")
    at = locked_app(monkeypatch)
    for _ in range(2):  # a typo or two: no waiting
        sign_in(at, GUESS)
        assert "not right" in errors(at) and "try again in" not in errors(at)
    sign_in(at, GUESS)
    assert "You can try again in 2 s" in errors(at)
    sign_in(at, SECRET)  # at once, even with the right password: refused unchecked
    assert "Too many wrong passwords. Try again in" in errors(at)
    assert_locked(at)
    time.sleep(2.1)
    sign_in(at, GUESS)
    assert "You can try again in 4 s" in errors(at)  # the delay doubles
    time.sleep(4.1)
    sign_in(at, GUESS)  # the 5th in a row: locked out
    assert "You can try again in 3 s" in errors(at)
    sign_in(at, SECRET)
    assert "Too many wrong passwords" in errors(at)
    time.sleep(3.1)
    sign_in(at, SECRET)  # the lock-out is over
    assert not at.exception and [t.value for t in at.title] == ["Data"]

    failures = [r.getMessage() for r in caplog.records if r.getMessage().startswith("Wrong password from")]
    assert len(failures) == 5 and "session " in failures[0] and "(5 in a row)" in failures[-1], failures
    assert sum("Sign-in refused for" in r.getMessage() for r in caplog.records) == 2
    assert SECRET not in caplog.text and GUESS not in caplog.text  # who, not what they typed


def test_new_sessions_do_not_escape_the_global_cap(studio_home: Path, monkeypatch: pytest.MonkeyPatch, limits) -> None:
    import time

    fresh = limits(global_max=4, window=15.0)  # long enough for five slow page loads on a busy machine
    for _ in range(4):  # each attacker session uses one of its free attempts
        at = locked_app(monkeypatch)
        sign_in(at, GUESS)
        assert "not right" in errors(at)
    at = locked_app(monkeypatch)  # a fresh session, the right password: sign-in is paused for all
    sign_in(at, SECRET)
    assert "Too many wrong passwords" in errors(at)
    assert_locked(at)
    time.sleep(fresh.wait("a new client") + 0.1)  # until the oldest wrong password leaves the window
    sign_in(at, SECRET)
    assert [t.value for t in at.title] == ["Data"]


def test_default_limits_make_200_guesses_take_days() -> None:
    from dashboard.common import SignInLimits

    limits = SignInLimits()
    assert [limits.delay(n) for n in range(1, 12)] == [0, 0, 1, 2, 4, 8, 16, 32, 60, 900, 900]
    assert sum(limits.delay(n) for n in range(1, 200)) > 40 * 3600  # 200 tries on one client: ~2 days


def test_password_comparison() -> None:
    from dashboard.common import password_ok

    assert password_ok(SECRET, SECRET) and password_ok("皖🚗", "皖🚗")
    for wrong in (None, "", "s3cret", SECRET + " ", SECRET.upper(), SECRET * 100):
        assert not password_ok(wrong, SECRET), wrong


# --- never open to the network without a password -----------------------------------------------------------
@pytest.fixture
def server_address():
    """Set server.address for AppTest runs in this process (as `--server.address` would); restored after."""
    from streamlit import config

    before = config.get_option("server.address")
    yield lambda value: config.set_option("server.address", value)
    config.set_option("server.address", before)


@pytest.mark.parametrize("address", ["0.0.0.0", "::", "192.168.1.20", "plates.example.org"])
def test_the_app_serves_no_page_beyond_loopback_without_a_password(studio_home: Path, server_address, address: str,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.delenv("PLATE_STUDIO_PASSWORD", raising=False)
    server_address(address)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception
    assert f"will not serve on {address} without a password" in errors(at) and "PLATE_STUDIO_PASSWORD" in errors(at)
    assert not at.text_input and not at.button and not at.get("file_uploader")
    with pytest.raises(ValueError, match=r"Known pages: \['Sign in'\]"):
        at.switch_page("pages/data.py")

    monkeypatch.setenv("PLATE_STUDIO_PASSWORD", SECRET)  # with a password: the sign-in form
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert_locked(at)


@pytest.mark.parametrize("address", ["localhost", "127.0.0.1", "127.0.1.1", "::1", "[::1]"])
def test_loopback_needs_no_password(studio_home: Path, server_address, address: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from streamlit.testing.v1 import AppTest

    monkeypatch.delenv("PLATE_STUDIO_PASSWORD", raising=False)
    server_address(address)
    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    assert not at.exception and [t.value for t in at.title] == ["Data"]


def serve(*flags: str, env: dict | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("PLATE_STUDIO_PASSWORD", "STREAMLIT_SERVER_ADDRESS")}
    return subprocess.run([sys.executable, "-m", "dashboard.serve", *flags], cwd=ROOT, env={**base, **(env or {})},
                          capture_output=True, text=True, timeout=timeout)


def test_the_launcher_refuses_to_open_to_the_network_without_a_password(studio_home: Path) -> None:
    from browser_helpers import free_port

    port = free_port()
    for flags, env in ((["--server.address", "0.0.0.0"], {}), (["--server.address=192.168.1.20"], {}),
                       ([], {"STREAMLIT_SERVER_ADDRESS": "0.0.0.0"})):
        result = serve(*flags, "--server.port", str(port), env={"PLATE_STUDIO_HOME": str(studio_home), **env})
        assert result.returncode == 2, (flags, env, result.stderr[-2000:])
        assert "will not serve on" in result.stderr and "PLATE_STUDIO_PASSWORD" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert not _listening(port)


def test_the_launcher_starts_the_dashboard_on_loopback(studio_home: Path) -> None:
    import time
    import urllib.request

    from browser_helpers import free_port

    port = free_port()
    env = {**os.environ, "PLATE_STUDIO_HOME": str(studio_home)}
    env.pop("PLATE_STUDIO_PASSWORD", None)
    proc = subprocess.Popen([sys.executable, "-m", "dashboard.serve", "--server.port", str(port)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                time.sleep(0.3)
        assert proc.poll() is None, "the launcher exited"
        addresses = _listening(port)
        assert addresses and set(addresses) <= LOOPBACK, addresses
    finally:
        proc.terminate()
        proc.wait(timeout=20)


# --- the upload limit ---------------------------------------------------------------------------------------
def test_uploads_are_capped_at_200_mb_and_the_page_can_say_so() -> None:
    with open(ROOT / ".streamlit" / "config.toml", "rb") as f:
        assert tomllib.load(f)["server"]["maxUploadSize"] == 200
    probe = "from streamlit import config; config.get_config_options(); print(config.get_option('server.maxUploadSize'))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "200", result.stderr  # what `streamlit run` in the checkout uses

    from dashboard.data import upload_help, upload_limit_mb

    assert upload_limit_mb() == 200 and "up to 200 MB" in upload_help()
