"""Helpers shared by the dashboard tests (test_runs, test_pages, test_browser).

Nothing here fakes the engine: datasets are made with engine.data.sample and imported with
engine.data.importer, trainings are real `python -m engine train` processes kept tiny.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# A few seconds to a minute of training on a shared 2-core machine (from scratch: a poor model).
TINY_TRAINING = {"max_steps": 40, "batch_size": 16, "init_from": "none"}


def bad_files() -> dict[str, bytes]:
    """Files the importer must reject, each for a different reason."""
    return {
        "notes.txt": b"not a picture",
        "BROKEN123.jpg": b"\xff\xd8\xff\xe0 this is not really a jpeg",
        "empty.jpg": b"",
    }


def zip_with_bad_files(sample_zip: Path, out: Path) -> Path:
    """A copy of `sample_zip` plus a few files that will be rejected."""
    with zipfile.ZipFile(sample_zip) as src, zipfile.ZipFile(out, "w") as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        for name, data in bad_files().items():
            dst.writestr(name, data)
    return out


def plate_jpeg(text: str = "34FK4522", seed: int = 7) -> bytes:
    """A generated photo of a plate reading `text`, as JPEG bytes."""
    import cv2

    from engine.data.render import render_plate

    ok, jpg = cv2.imencode(".jpg", render_plate(text, seed))
    assert ok
    return jpg.tobytes()


def markdown_texts(at) -> list[str]:
    """Every string an AppTest page shows as Markdown: text elements, alerts, toasts, titles, metric
    labels and values, widget labels, image captions, progress texts and expander labels."""
    out = []
    for kind in ("markdown", "caption", "title", "header", "subheader", "info", "warning", "success", "error", "toast"):
        out += [e.value for e in at.get(kind)]
    out += [m.label for m in at.metric] + [m.value for m in at.metric]
    for kind in ("button", "download_button", "selectbox", "multiselect", "text_input", "number_input", "checkbox",
                 "toggle", "radio", "slider", "select_slider", "file_uploader"):
        out += [w.label for w in at.get(kind) if getattr(w, "label", None)]
    out += [c for img in at.get("image") for c in img.captions]
    out += [p.text for p in at.get("progress")] + [e.label for e in at.get("expander")]
    return [text for text in out if text]


def rendered_html(markdown: str) -> str:
    """CommonMark's HTML for `markdown` (what a browser would build from it, less Streamlit's extras)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").render(markdown)


def import_tiny_dataset(sample_zip: Path, name: str = "tiny") -> Path:
    """Import `sample_zip` into the current PLATE_STUDIO_HOME's datasets/<name>."""
    from engine.data.importer import import_dataset
    from engine.storage.paths import datasets_dir

    out = datasets_dir() / name
    import_dataset(sample_zip, out, test_fraction=0.25)
    return out


def wait_until(predicate, timeout: float, interval: float = 0.5, message: str = "") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    if not predicate():
        raise AssertionError(message or f"condition not met within {timeout:.0f} s")


def wait_for_run_end(run_id: str, timeout: float = 240.0) -> dict:
    from engine import runs

    wait_until(lambda: not runs.get_run(run_id)["active"], timeout, 1.0,
               f"run {run_id} did not end within {timeout:.0f} s")
    return runs.get_run(run_id)


def trainer_processes():
    """(pid, argv) of every running `python -m engine train` process on this machine."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = [a.decode(errors="replace") for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
        except OSError:
            continue
        if "engine" in args and "train" in args:
            yield int(proc.name), args


def trainer_pids(home: Path) -> list[int]:
    """Pids of `python -m engine train` processes whose run folder is under `home`."""
    runs_root = str((Path(home) / "runs").resolve())
    return [pid for pid, args in trainer_processes() if any(a.startswith(runs_root) for a in args)]


def kill_trainers(home: Path, timeout: float = 20.0) -> None:
    """Stop every trainer this test data folder started (SIGTERM, then SIGKILL)."""
    pids = trainer_pids(home)
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and trainer_pids(home):
        time.sleep(0.3)
    for pid in trainer_pids(home):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def zip_is_valid(data: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.testzip() is None
        return zf.namelist()


def read_status(run_dir: Path) -> dict:
    try:
        return json.loads((Path(run_dir) / "status.json").read_text())
    except (OSError, json.JSONDecodeError):
        return {}


@contextlib.contextmanager
def dashboard(home: Path, *, address: str | None = "127.0.0.1", **env_extra: str):
    """`streamlit run streamlit_app.py` on a free port with its own data folder; yields the URL.

    address=None leaves the listening address to .streamlit/config.toml.
    """
    port = free_port()
    env = dict(os.environ, PLATE_STUDIO_HOME=str(home), **env_extra)
    if "PLATE_STUDIO_PASSWORD" not in env_extra:
        env.pop("PLATE_STUDIO_PASSWORD", None)
    log_path = home / "server.log"
    log = open(log_path, "wb")
    flags = ["--server.address", address] if address else []
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"), "--server.port", str(port),
         "--server.headless", "true", "--browser.gatherUsageStats", "false", *flags],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail("streamlit did not start:\n" + log_path.read_text(errors="replace")[-3000:])
            time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        kill_trainers(home)
