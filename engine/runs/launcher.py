"""Starting, stopping, resuming, listing and deleting trainings: what the dashboard calls.

The run folder is the truth (engine/storage/runfolder.py): config.json holds the settings and the
name, launch.json what the launcher did, status.json what the trainer reports. One training at a
time: `start_run` holds the `launch` lock while it checks that nothing trains, writes config.json,
spawns `python -m engine train --model-dir RUN` in its own session and waits until that process
holds the training lock (or ended), so two dashboards pressing Start at once cannot both launch.
A label check (`start_label_check`) is launched the same way and holds the same lock; its run folder
says `"kind": "label-check"` and it is listed only when asked for. (Slightly over 300 lines: the
datasets that runs depend on are kept here with the runs that depend on them.)
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.data.dataset import DatasetFolder, is_dataset_folder
from engine.runs.state import holds_lock, run_state
from engine.storage.files import atomic_write_json, now_iso
from engine.storage.locks import Busy, exclusive, training_holder
from engine.storage.paths import PROJECT_ROOT, UnsafeName, child_path, data_home, datasets_dir, runs_dir, safe_name
from engine.storage.runfolder import RunFolder
from engine.training.settings import config_for

TrainingBusy = Busy
SECRET_VARIABLES = ("PLATE_STUDIO_PASSWORD",)  # never handed to training processes
LOCK_WAIT_SECONDS = 60.0
LABEL_CHECK = "label-check"


class RunNotFound(LookupError):
    """No run folder with this id."""


class NothingToStop(RuntimeError):
    """Stop was pressed, but no training process of this run could be signalled."""


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


def resolve_dataset(dataset: str | os.PathLike) -> Path:
    """A dataset: a name under datasets/ or an existing path (folder, zip, tfrecords...)."""
    text = str(dataset)
    candidate = Path(text)
    if "/" not in text and os.sep not in text and not candidate.exists():
        try:
            named = child_path(datasets_dir(), text)
        except UnsafeName:
            named = None
        if named is not None and named.exists():
            return named
    if candidate.exists():
        return candidate.resolve()
    raise FileNotFoundError(f"The dataset {text!r} was not found. Import it on the Data page first.")


def _new_run_folder(name: str | None) -> tuple[str, Path]:
    base = datetime.now().strftime("%Y%m%d-%H%M%S")
    if name and str(name).strip():
        base += "-" + safe_name(name, max_length=40)
    for attempt in range(1000):
        run_id = base if attempt == 0 else f"{base}-{attempt + 1}"
        path = child_path(runs_dir(), run_id)
        try:
            path.mkdir(parents=False, exist_ok=False)
        except FileExistsError:
            continue
        return run_id, path
    raise RuntimeError("Could not create a new run folder.")


# launching ---------------------------------------------------------------------------------------
def _child_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARIABLES}
    env["PLATE_STUDIO_HOME"] = str(data_home())
    env["PYTHONUNBUFFERED"] = "1"
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    root = str(PROJECT_ROOT)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    return env


def _spawn(run: RunFolder, command: list[str] | None = None) -> int:
    """Start `python -m engine COMMAND` (default: train this run folder) detached, logging to process.log."""
    cmd = [sys.executable, "-m", "engine", *(command or ["train", "--model-dir", str(run.path)])]
    with open(run.process_log_path, "ab") as log:
        log.write(f"\n[{now_iso()}] $ {' '.join(cmd)}\n".encode())
        log.flush()
        proc = subprocess.Popen(cmd, cwd=str(PROJECT_ROOT), env=_child_env(), stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, start_new_session=True, close_fds=True)
    # reap the child when it ends so it does not linger as a zombie under a long-lived server
    threading.Thread(target=proc.wait, name=f"reap-{run.path.name}", daemon=True).start()
    atomic_write_json(run.launch_path, {"pid": proc.pid, "launched_at": now_iso(), "command": cmd})
    _wait_until_training(run, proc)
    return proc.pid


def _wait_until_training(run: RunFolder, proc: subprocess.Popen, timeout: float = LOCK_WAIT_SECONDS) -> None:
    """Until the new trainer holds the training lock (or has ended): then the next Start sees it busy."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if holds_lock(run, training_holder()):
            return
        time.sleep(0.1)


def _check_idle() -> None:
    holder = training_holder()
    if holder:
        label = holder.get("run") or f"pid {holder['pid']}"
        raise Busy(f"The run {label!r} is still training. Wait for it to finish or stop it first.")
    starting = next((r for r in list_runs(holder=None, include_checks=True) if r["active"]), None)
    if starting:
        raise Busy(f"The run {starting['name'] or starting['id']!r} is starting. Wait for it to finish or stop it first.")


def start_run(dataset: str | os.PathLike, preset: str | None = None, name: str | None = None, **settings: Any) -> str:
    """Start training `dataset` in a new run folder; returns the run id.

    `settings`: any TrainConfig field (init_from="starter" | a run folder | "none", max_steps, ...).
    Raises Busy while another training is starting or running, FileNotFoundError for a missing
    dataset, ValueError for an unknown preset or setting, UnsafeName for an unusable name.
    """
    config = config_for(preset, **settings)  # ValueError before anything is created
    dataset = resolve_dataset(dataset)
    if name is not None and str(name).strip():
        safe_name(name)  # UnsafeName before anything is created
    with exclusive("launch", wait=True, timeout=LOCK_WAIT_SECONDS):
        _check_idle()
        run_id, path = _new_run_folder(name)
        run = RunFolder(path)
        record = {"name": str(name or "").strip(), "dataset": str(dataset), "preset": preset, "created_at": now_iso(),
                  "settings": config.to_dict()}
        if is_dataset_folder(dataset):
            record["split_fingerprint"] = DatasetFolder(dataset).split_fingerprint()
        atomic_write_json(run.config_path, record)
        _spawn(run)
    return run_id


def start_label_check(dataset: str | os.PathLike, *, steps: int = 600) -> str:
    """Start a label check of an imported dataset (engine/reading/review.py) in a new run folder;
    returns its id. Raises Busy while a training or another check is starting or running."""
    dataset = resolve_dataset(dataset)
    if not is_dataset_folder(dataset):
        raise ValueError(f"{dataset.name} is not an imported dataset: only those can be checked.")
    with exclusive("launch", wait=True, timeout=LOCK_WAIT_SECONDS):
        _check_idle()
        run_id, path = _new_run_folder(f"{LABEL_CHECK}-{dataset.name}")
        run = RunFolder(path)
        atomic_write_json(run.config_path, {"kind": LABEL_CHECK, "dataset": str(dataset), "created_at": now_iso(),
                                            "name": f"Label check of {dataset.name}", "steps": int(steps),
                                            "split_fingerprint": DatasetFolder(dataset).split_fingerprint()})
        _spawn(run, ["check-labels", str(dataset), "--out", str(run.path), "--steps", str(int(steps))])
    return run_id


def latest_label_check(dataset: str | os.PathLike) -> dict | None:
    """The newest finished label check of `dataset` (a run record; its "path" holds label_check.csv)."""
    try:
        target = resolve_dataset(dataset)
    except FileNotFoundError:
        return None
    return next((r for r in list_runs(include_checks=True) if r["kind"] == LABEL_CHECK and r["state"] == "finished"
                 and r["dataset"] and Path(r["dataset"]).resolve() == target), None)


def resume_run(run_id: str) -> str:
    """Continue a stopped or failed run in its own folder (the trainer resumes from checkpoints/last.npz)."""
    run = RunFolder(run_path(run_id))
    if run.config().get("kind") == "label-check":
        raise ValueError("A label check cannot be resumed; start a new one.")
    if not run.config().get("settings"):
        raise ValueError("This run was made by an older version and cannot be resumed; start a new training.")
    with exclusive("launch", wait=True, timeout=LOCK_WAIT_SECONDS):
        _check_idle()
        if not run.checkpoint("last").exists():
            raise ValueError("This run saved nothing to resume from; start a new training.")
        _spawn(run)
    return run_id


def stop_run(run_id: str, *, wait: float = 0.0) -> str:
    """Ask the training to stop (SIGTERM: it saves and exits as `stopped`). Returns what was done;
    raises NothingToStop when no process of this run could be signalled."""
    run = RunFolder(run_path(run_id))
    holder = training_holder()
    state = run_state(run, holder)
    if not state["active"]:
        raise NothingToStop(f"The run {run_id!r} is not training ({state['state']}), so there is nothing to stop.")
    pid = holder["pid"] if holds_lock(run, holder) else run.launch().get("pid")
    atomic_write_json(run.launch_path, {**run.launch(), "stop_requested_at": now_iso()})
    try:
        os.kill(int(pid), signal.SIGTERM)
    except (ProcessLookupError, TypeError, ValueError):
        raise NothingToStop(f"The training process of {run_id!r} had already ended.") from None
    if wait:
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and run_state(run)["active"]:
            time.sleep(0.2)
    return "Stopping: the model so far is being saved." if run.checkpoint("last").exists() or holds_lock(run, holder) \
        else "Stopping before training started."


# listing -----------------------------------------------------------------------------------------
def _record(path: Path, holder: dict | None) -> dict:
    run = RunFolder(path)
    status = run_state(run, holder)
    config, evaluation = run.config(), run.evaluation()
    created = config.get("created_at") or status.get("started_at")
    if not created:
        created = datetime.fromtimestamp(path.stat().st_mtime).astimezone().isoformat(timespec="seconds")
    dataset = config.get("dataset") or ""
    return {
        "id": path.name, "kind": config.get("kind") or "training", "name": config.get("name") or "", "dataset": dataset,
        "dataset_name": Path(dataset).name if dataset else "", "created_at": created, "path": str(path),
        "preset": config.get("preset"), "settings": config.get("settings") or {}, "resolved": config.get("resolved") or {},
        "state": status["state"], "active": status["active"], "status": status, "config": config,
        "evaluation": evaluation, "plate_accuracy": evaluation.get("plate_accuracy"),
        "char_accuracy": evaluation.get("char_accuracy"), "verdict": evaluation.get("verdict") or status.get("verdict"),
        "has_checkpoint": run.model_checkpoint() is not None, "resumable": bool(status.get("resumable")),
    }


def list_runs(holder: dict | None = ..., *, include_checks: bool = False) -> list[dict]:
    """Every training's run folder with its real state and scores, newest first (label checks too
    with `include_checks`)."""
    holder = training_holder() if holder is ... else holder
    out = [_record(p, holder) for p in runs_dir().iterdir() if p.is_dir() and not p.name.startswith(".")]
    out = [r for r in out if include_checks or r["kind"] != LABEL_CHECK]
    out.sort(key=lambda r: (str(r["created_at"]), r["id"]), reverse=True)
    return out


def get_run(run_id: str) -> dict:
    return _record(run_path(run_id), training_holder())


def active_run() -> dict | None:
    """The run (or label check) that is starting or training now, if any."""
    return next((r for r in list_runs(include_checks=True) if r["active"]), None)


def delete_run(run_id: str) -> None:
    """Delete a run folder; refused while it is training."""
    path = run_path(run_id)
    if run_state(RunFolder(path))["active"]:
        raise Busy(f"The run {run_id!r} is still training; stop it before deleting it.")
    shutil.rmtree(path)


# datasets ----------------------------------------------------------------------------------------
def list_datasets() -> list[dict]:
    """Imported datasets (folders under datasets/ with a report.json), newest first."""
    out = []
    for path in sorted(p for p in datasets_dir().iterdir() if p.is_dir() and not p.name.startswith(".")):
        report = DatasetFolder(path).report()
        if not isinstance(report, dict):
            continue
        out.append({"name": path.name, "path": str(path), "report": report, "accepted": report.get("accepted", 0),
                    "rejected": len(report.get("rejected") or []), "warnings": len(report.get("warnings") or []),
                    "train": report.get("train", 0), "test": report.get("test", 0),
                    "created_at": report.get("created_at") or ""})
    out.sort(key=lambda d: (str(d["created_at"]), d["name"]), reverse=True)
    return out


def dataset_path(name: str) -> Path:
    path = child_path(datasets_dir(), name)
    if path.name != name or not path.is_dir():
        raise FileNotFoundError(f"There is no dataset called {name!r}.")
    return path


def runs_trained_on(dataset: str | os.PathLike) -> list[dict]:
    target = Path(dataset).resolve()
    return [r for r in list_runs() if r["dataset"] and Path(r["dataset"]).resolve() == target]


def check_replace(dataset: str | os.PathLike) -> None:
    """Refuse to replace a dataset that runs were trained on: its new split could put photos those
    runs trained on into their test scores. ValueError naming the runs."""
    dependent = runs_trained_on(dataset)
    if dependent:
        names = ", ".join(r["name"] or r["id"] for r in dependent[:5]) + (" ..." if len(dependent) > 5 else "")
        raise ValueError(f"{len(dependent)} run(s) were trained on {Path(dataset).name} ({names}). Import under "
                         "another name, or delete those runs first: replacing it would mix their test photos up.")


def delete_dataset(name: str) -> None:
    """Delete an imported dataset; refused while a training uses it. Runs trained on it are kept."""
    path = dataset_path(name)
    active = active_run()
    if active and Path(active.get("dataset") or "").resolve() == path.resolve():
        raise Busy(f"The run {active['id']!r} is training on {name!r}; stop it before deleting the dataset.")
    shutil.rmtree(path)
