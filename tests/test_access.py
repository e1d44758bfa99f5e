"""Nothing let in: names from users stay inside the data folder; the dashboard is local and gated.

* Dataset and run names typed by an operator (engine.paths.safe_name/child_path, engine.runs'
  name handling, the Data page's dataset_dir_for) can never address a path outside their folder,
  whatever is typed: '../../etc', '/abs', '..', '.', '', 'a/b', NUL, very long, any script.
* The dashboard listens on localhost unless configured otherwise (.streamlit/config.toml), checked
  on a real `streamlit run` by the sockets it opens.
* With a password (PLATE_STUDIO_PASSWORD), every page shows only the sign-in form, with no data
  leaking, until the password is entered; each new session starts locked again.
  (tests/test_pages.py checks the gate on the Data and Runs pages, by env and by secrets.)
"""
from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from engine.paths import UnsafeName, child_path, safe_name

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
        run_id, run_dir = runs._make_run_folder(name)  # what start_run does with the name
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

    from engine.importer import import_dataset

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
