"""Run registry and training launcher: what the dashboard calls to start, stop, list and delete runs.

The registry is a small SQLite file (`data/registry.sqlite`, WAL mode, busy timeout) with one row
per run: id, name, dataset, created_at, params (JSON). Everything live about a run (state, epoch,
accuracy) comes from its run folder (status.json, metrics.jsonl, evaluation.json), so a browser
reload or a server restart loses nothing: the folder is the truth, the registry adds the name and
the settings it was started with. Run folders found on disk without a registry row are still listed.

One training at a time: `start_run` holds the `launch` lock while it checks that nothing is training
(no queued/running run with a live process and nobody holding the `training` lock), creates the run
folder, writes a `queued` status and spawns `python -m engine train ...` in its own session, so two
dashboards (or two browser tabs) pressing Start at the same moment cannot both launch.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

from engine import locks
from engine.locks import TrainingBusy
from engine.paths import PROJECT_ROOT, UnsafeName, child_path, data_home, datasets_dir, runs_dir, safe_name
from engine.runfolder import ACTIVE_STATES, RunFolder, now_iso, pid_alive, read_json

__all__ = [
    "TrainingBusy", "RunNotFound", "UnsafeName", "start_run", "stop_run", "resume_run", "list_runs",
    "get_run", "delete_run", "active_run", "list_datasets", "delete_dataset", "run_path", "TRAIN_FLAGS",
]

# TrainConfig field -> `python -m engine train` flag (aocr's names where aocr has one)
TRAIN_FLAGS = {
    "max_width": "--max-width",
    "max_height": "--max-height",
    "max_prediction": "--max-prediction",
    "num_epoch": "--num-epoch",
    "batch_size": "--batch-size",
    "initial_learning_rate": "--initial-learning-rate",
    "steps_per_checkpoint": "--steps-per-checkpoint",
    "max_minutes": "--max-minutes",
    "patience": "--patience",
    "seed": "--seed",
}
PRESET_NAMES = ("quick", "balanced", "best")
PROCESS_LOG = "process.log"
STOP_MARKER = "stop_requested"
# a queued run whose launcher never recorded a pid (it crashed mid-launch) stops counting as active
QUEUED_GRACE_SECONDS = 60

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL DEFAULT '',
    dataset TEXT NOT NULL DEFAULT '',
    created_at TEXT NOT NULL,
    params TEXT NOT NULL DEFAULT '{}',
    pid INTEGER
)
"""


class RunNotFound(LookupError):
    """No run folder with this id."""


# registry ----------------------------------------------------------------------------------------
def registry_path() -> Path:
    return data_home() / "registry.sqlite"


def _connect() -> sqlite3.Connection:
    conn = sqlite3.connect(registry_path(), timeout=30, isolation_level=None)  # autocommit
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA busy_timeout = 30000")
    try:
        conn.execute("PRAGMA journal_mode = WAL")
    except sqlite3.OperationalError:  # another process is switching it at this instant: it will be WAL
        pass
    conn.execute(_SCHEMA)
    return conn


def _registry_rows() -> dict[str, dict]:
    with closing(_connect()) as conn:
        rows = conn.execute("SELECT id, name, dataset, created_at, params, pid FROM runs").fetchall()
    out = {}
    for row in rows:
        item = dict(row)
        try:
            item["params"] = json.loads(item.get("params") or "{}")
        except json.JSONDecodeError:
            item["params"] = {}
        out[item["id"]] = item
    return out


def _registry_row(run_id: str) -> dict | None:
    return _registry_rows().get(run_id)


def _set_pid(run_id: str, pid: int | None) -> None:
    with closing(_connect()) as conn:
        conn.execute("UPDATE runs SET pid = ? WHERE id = ?", (pid, run_id))


# paths -------------------------------------------------------------------------------------------
def run_path(run_id: str) -> Path:
    """The folder of an existing run; the id is checked to be one plain folder name under runs/."""
    run_id = str(run_id)
    try:
        path = child_path(runs_dir(), run_id)
    except UnsafeName:
        raise RunNotFound(f"There is no run called {run_id!r}.") from None
    if path.name != run_id or not path.is_dir():
        raise RunNotFound(f"There is no run called {run_id!r}.")
    return path


def _resolve_dataset(dataset: str | os.PathLike) -> Path:
    """A dataset folder: a name under datasets/ or an existing path (folder, zip, tfrecords...)."""
    text = str(dataset)
    candidate = Path(text)
    if os.sep not in text and "/" not in text and not candidate.exists():
        try:
            named = child_path(datasets_dir(), text)
        except UnsafeName:
            named = None
        if named is not None and named.exists():
            return named
    if candidate.exists():
        return candidate.resolve()
    raise FileNotFoundError(f"The dataset {text!r} was not found. Import it on the Data page first.")


def _new_run_id(name: str | None) -> str:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    suffix = ""
    if name and str(name).strip():
        suffix = "-" + safe_name(name, max_length=40)
    return f"{stamp}{suffix}"


def _make_run_folder(name: str | None) -> tuple[str, Path]:
    base = _new_run_id(name)
    for attempt in range(1000):
        run_id = base if attempt == 0 else f"{base}-{attempt + 1}"
        path = child_path(runs_dir(), run_id)
        try:
            path.mkdir(parents=False, exist_ok=False)
        except FileExistsError:
            continue
        return run_id, path
    raise RuntimeError("Could not create a new run folder.")


# status ------------------------------------------------------------------------------------------
def _process_log_tail(path: Path, lines: int = 20) -> str:
    try:
        text = (path / PROCESS_LOG).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.strip().splitlines()[-lines:])


def _seconds_since(iso: str | None) -> float | None:
    if not iso:
        return None
    try:
        then = datetime.fromisoformat(str(iso))
    except ValueError:
        return None
    now = datetime.now(then.tzinfo) if then.tzinfo else datetime.now()
    return (now - then).total_seconds()


def run_status(path: Path) -> dict:
    """status.json as the dashboard should see it.

    On top of RunFolder.status() (a `running` status whose process died reads `failed`): a `queued`
    run whose process already ended reads `stopped` if someone pressed Stop, else `failed` with the
    end of process.log as the reason; a queued run with no process at all stops being active after a
    grace period (its launcher died before spawning).
    """
    folder = RunFolder(path)
    status = folder.status()
    state = status.get("state")
    stop_requested = (Path(path) / STOP_MARKER).exists()
    pid = status.get("pid")
    if state == "queued":
        if pid and not pid_alive(int(pid)):
            if stop_requested:
                status = {**status, "state": "stopped", "message": "Stopped before training started."}
            else:
                tail = _process_log_tail(Path(path))
                status = {**status, "state": "failed",
                          "error": status.get("error") or "The training process ended before it started training.",
                          "details": tail}
        elif not pid:
            age = _seconds_since(status.get("updated_at") or status.get("created_at"))
            if age is not None and age > QUEUED_GRACE_SECONDS:
                status = {**status, "state": "failed", "error": "The training never started (the launcher stopped)."}
    elif state == "failed" and stop_requested and pid and not pid_alive(int(pid)) and status.get("error", "").startswith("The training process ended unexpectedly"):
        # SIGTERM arrived before the trainer's handler was installed: it was a stop, not a crash
        status = {**status, "state": "stopped", "error": None}
    if status.get("state") == "failed" and "details" not in status:
        tail = _process_log_tail(Path(path))
        if tail:
            status = {**status, "details": tail}
    return status


def _is_active(status: dict) -> bool:
    if status.get("state") not in ACTIVE_STATES:
        return False
    pid = status.get("pid")
    if pid:
        return pid_alive(int(pid))
    return True  # queued, launcher still spawning (run_status turns stale ones into failed)


# datasets ----------------------------------------------------------------------------------------
def list_datasets() -> list[dict]:
    """Imported datasets (folders under datasets/ with a report.json), newest first."""
    out = []
    for path in sorted(p for p in datasets_dir().iterdir() if p.is_dir() and not p.name.startswith(".")):
        report = read_json(path / "report.json", None)
        if not isinstance(report, dict):
            continue
        out.append({
            "name": path.name,
            "path": str(path),
            "report": report,
            "accepted": report.get("accepted", 0),
            "rejected": len(report.get("rejected") or []),
            "warnings": len(report.get("warnings") or []),
            "train": report.get("train", 0),
            "test": report.get("test", 0),
            "created_at": report.get("created_at") or "",
        })
    out.sort(key=lambda d: (str(d["created_at"]), d["name"]), reverse=True)
    return out


def dataset_path(name: str) -> Path:
    path = child_path(datasets_dir(), name)
    if path.name != name or not path.is_dir():
        raise FileNotFoundError(f"There is no dataset called {name!r}.")
    return path


def delete_dataset(name: str) -> None:
    """Delete an imported dataset; refused while a training uses it."""
    path = dataset_path(name)
    active = active_run()
    if active and Path(active.get("dataset") or "").resolve() == path.resolve():
        raise TrainingBusy(f"The run {active['id']!r} is training on {name!r}; stop it before deleting the dataset.")
    shutil.rmtree(path)


# launching ---------------------------------------------------------------------------------------
def _train_command(dataset: Path, run_dir: Path, preset: str | None, params: dict) -> list[str]:
    cmd = [sys.executable, "-m", "engine", "train", str(dataset), "--model-dir", str(run_dir)]
    if preset:
        cmd += ["--preset", preset]
    for key, flag in TRAIN_FLAGS.items():
        value = params.get(key)
        if value is not None:
            cmd += [flag, str(value)]
    return cmd


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PLATE_STUDIO_HOME"] = str(data_home())
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    root = str(PROJECT_ROOT)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _spawn(run_id: str, run_dir: Path, cmd: list[str]) -> int:
    log = open(run_dir / PROCESS_LOG, "ab")
    try:
        log.write(f"\n[{now_iso()}] $ {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(
            cmd, cwd=str(PROJECT_ROOT), env=_child_env(), stdin=subprocess.DEVNULL, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, close_fds=True,
        )
    finally:
        log.close()
    # reap the child when it ends so it does not linger as a zombie under a long-lived server
    threading.Thread(target=proc.wait, name=f"reap-{run_id}", daemon=True).start()
    return proc.pid


def _check_idle() -> None:
    """Raise TrainingBusy if a run is queued/running or any process holds the training lock."""
    busy = active_run()
    if busy:
        label = busy.get("name") or busy["id"]
        raise TrainingBusy(f"The run {label!r} ({busy['id']}) is still training. Wait for it to finish or stop it first.")
    if locks.is_held("training"):
        raise TrainingBusy("Another training is running on this machine (started outside the dashboard). Wait for it to finish.")


def _clean_params(overrides: dict[str, Any]) -> dict[str, Any]:
    params = {}
    for key, value in overrides.items():
        if key not in TRAIN_FLAGS:
            raise ValueError(f"Unknown training setting {key!r}; known: {', '.join(TRAIN_FLAGS)}.")
        if value is None:
            continue
        params[key] = value
    return params


def start_run(dataset_dir: str | os.PathLike, preset: str | None = None, name: str | None = None, **overrides: Any) -> str:
    """Start training `dataset_dir` in a new run folder; returns the run id.

    Raises TrainingBusy while another training is queued or running, FileNotFoundError for a
    missing dataset, ValueError for an unknown preset or setting, UnsafeName for an unusable name.
    """
    if preset is not None:
        preset = str(preset).lower()
        if preset not in PRESET_NAMES:
            raise ValueError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESET_NAMES)}.")
    params = _clean_params(overrides)
    dataset = _resolve_dataset(dataset_dir)
    if name is not None and str(name).strip():
        safe_name(name)  # raise UnsafeName before anything is created
    with locks.exclusive("launch", wait=True, holder=f"launcher pid {os.getpid()}"):
        _check_idle()
        run_id, run_dir = _make_run_folder(name)
        record = {"preset": preset, **params}
        with closing(_connect()) as conn:
            conn.execute(
                "INSERT INTO runs (id, name, dataset, created_at, params) VALUES (?, ?, ?, ?, ?)",
                (run_id, str(name or "").strip(), str(dataset), now_iso(), json.dumps(record)),
            )
        folder = RunFolder(run_dir)
        folder.update_status(state="queued", created_at=now_iso(), message="Starting: loading the training engine...")
        pid = _spawn(run_id, run_dir, _train_command(dataset, run_dir, preset, params))
        _write_pid_if_queued(folder, pid)
        _set_pid(run_id, pid)
    return run_id


def _write_pid_if_queued(folder: RunFolder, pid: int) -> None:
    """Record the launcher's pid unless the trainer already wrote its own status (it has the same pid)."""
    status = read_json(folder.status_path, {}) or {}
    if status.get("state") == "queued" and not status.get("pid"):
        folder.update_status(pid=pid)


def resume_run(run_id: str) -> str:
    """Continue a stopped or failed run in its own folder (the trainer resumes from checkpoints/last.npz)."""
    run_dir = run_path(run_id)
    row = _registry_row(run_id) or {}
    config = RunFolder(run_dir).config()
    params = dict(row.get("params") or {})
    preset = params.pop("preset", None)
    params = {k: v for k, v in params.items() if k in TRAIN_FLAGS}
    dataset_text = row.get("dataset") or config.get("dataset") or config.get("dataset_path") or ""
    if not dataset_text:
        raise FileNotFoundError("This run does not say which dataset it was trained on, so it cannot be resumed.")
    dataset = _resolve_dataset(dataset_text)
    with locks.exclusive("launch", wait=True, holder=f"launcher pid {os.getpid()}"):
        _check_idle()
        folder = RunFolder(run_dir)
        (run_dir / STOP_MARKER).unlink(missing_ok=True)
        folder.update_status(state="queued", pid=None, error=None, message="Resuming: loading the training engine...")
        pid = _spawn(run_id, run_dir, _train_command(dataset, run_dir, preset, params))
        _write_pid_if_queued(folder, pid)
        if row:
            _set_pid(run_id, pid)
        else:  # a folder that was not registered: register it now
            with closing(_connect()) as conn:
                conn.execute(
                    "INSERT OR IGNORE INTO runs (id, name, dataset, created_at, params, pid) VALUES (?, ?, ?, ?, ?, ?)",
                    (run_id, "", str(dataset), now_iso(), json.dumps({"preset": preset, **params}), pid),
                )
    return run_id


def _is_our_trainer(pid: int, run_dir: Path) -> bool:
    """True if `pid` is a `python -m engine train` for this run folder (guards against pid reuse)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return pid_alive(pid)  # no /proc (not Linux): trust the recorded pid
    args = [a.decode(errors="replace") for a in cmdline if a]
    if "engine" not in args or "train" not in args:
        return False
    target = run_dir.resolve()
    return any(Path(a).resolve() == target for a in args if not a.startswith("-"))


def stop_run(run_id: str, *, wait: float = 0.0) -> bool:
    """Ask the training to stop (SIGTERM: it saves its checkpoint and sets state `stopped`).

    Returns True if a signal was sent. With `wait`, waits up to that many seconds for the process
    to end.
    """
    run_dir = run_path(run_id)
    status = run_status(run_dir)
    pid = status.get("pid") or (_registry_row(run_id) or {}).get("pid")
    if not pid or status.get("state") not in ACTIVE_STATES or not pid_alive(int(pid)):
        return False
    pid = int(pid)
    if not _is_our_trainer(pid, run_dir):
        return False
    (run_dir / STOP_MARKER).write_text(now_iso())
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    if wait:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.2)
    return True


# listing -----------------------------------------------------------------------------------------
def _run_record(run_id: str, path: Path, row: dict | None) -> dict:
    folder = RunFolder(path)
    status = run_status(path)
    evaluation = folder.evaluation()
    config = folder.config()
    row = row or {}
    created = row.get("created_at") or status.get("created_at") or status.get("started_at")
    if not created:
        try:
            created = datetime.fromtimestamp(path.stat().st_mtime).astimezone().isoformat(timespec="seconds")
        except OSError:
            created = ""
    dataset = row.get("dataset") or config.get("dataset") or config.get("dataset_path") or ""
    return {
        "id": run_id,
        "name": row.get("name") or "",
        "dataset": dataset,
        "dataset_name": Path(dataset).name if dataset else "",
        "created_at": created,
        "params": row.get("params") or {},
        "registered": bool(row),
        "path": str(path),
        "state": status.get("state") or "unknown",
        "active": _is_active(status),
        "status": status,
        "config": config,
        "evaluation": evaluation,
        "plate_accuracy": evaluation.get("plate_accuracy"),
        "char_accuracy": evaluation.get("char_accuracy"),
        "has_checkpoint": folder.checkpoint("best").exists() or folder.checkpoint("last").exists(),
    }


def list_runs() -> list[dict]:
    """Every run (registry joined with its folder's status and evaluation), newest first."""
    rows = _registry_rows()
    out = []
    for path in runs_dir().iterdir():
        if not path.is_dir() or path.name.startswith("."):
            continue
        out.append(_run_record(path.name, path, rows.get(path.name)))
    out.sort(key=lambda r: (str(r["created_at"]), r["id"]), reverse=True)
    return out


def get_run(run_id: str) -> dict:
    path = run_path(run_id)
    return _run_record(run_id, path, _registry_row(run_id))


def active_run() -> dict | None:
    """The run that is queued or training now, if any."""
    for run in list_runs():
        if run["active"]:
            return run
    return None


def delete_run(run_id: str) -> None:
    """Delete a run folder and its registry row; refused while it is training."""
    path = run_path(run_id)
    if _is_active(run_status(path)):
        raise TrainingBusy(f"The run {run_id!r} is still training; stop it before deleting it.")
    shutil.rmtree(path)
    with closing(_connect()) as conn:
        conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))

