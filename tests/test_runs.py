"""engine/runs.py: the run registry, the launcher's one-at-a-time rule, safe names, delete rules.

Real trainings (tiny) are started where the rule needs one; they are stopped at once and every
process a test starts is gone when it ends.
"""
from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from browser_helpers import TINY_TRAINING, import_tiny_dataset, kill_trainers, trainer_pids, wait_until

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def home(studio_home: Path):
    yield studio_home
    kill_trainers(studio_home)


@pytest.fixture
def dataset(home: Path, sample_zip: Path) -> Path:
    return import_tiny_dataset(sample_zip)


def _runs():
    from engine import runs

    return runs


def _fake_run(home: Path, run_id: str, status: dict) -> Path:
    path = home / "runs" / run_id
    path.mkdir(parents=True)
    (path / "status.json").write_text(json.dumps(status))
    return path


# registry ---------------------------------------------------------------------------------------
def test_registry_is_sqlite_in_wal_mode_and_lists_runs_found_on_disk(home: Path):
    runs = _runs()
    assert runs.list_runs() == []
    conn = sqlite3.connect(home / "registry.sqlite")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    conn.close()

    _fake_run(home, "20240101-000000-old", {"state": "finished", "started_at": "2024-01-01T00:00:00+00:00"})
    _fake_run(home, "20250101-000000-newer", {"state": "stopped", "started_at": "2025-01-01T00:00:00+00:00"})
    (home / "runs" / "20250101-000000-newer" / "evaluation.json").write_text(
        json.dumps({"plate_accuracy": 0.75, "char_accuracy": 0.9, "count": 4}))
    listed = runs.list_runs()
    assert [r["id"] for r in listed] == ["20250101-000000-newer", "20240101-000000-old"]  # newest first
    assert listed[0]["plate_accuracy"] == 0.75 and listed[0]["registered"] is False
    assert runs.get_run("20240101-000000-old")["state"] == "finished"
    assert runs.active_run() is None


def test_queued_or_running_with_a_dead_process_is_not_active(home: Path):
    runs = _runs()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _fake_run(home, "queued-dead", {"state": "queued", "pid": dead.pid})
    _fake_run(home, "running-dead", {"state": "running", "pid": dead.pid})
    (home / "runs" / "queued-dead" / "process.log").write_text("Traceback ...\nImportError: boom\n")
    assert runs.get_run("queued-dead")["state"] == "failed"
    assert "boom" in runs.get_run("queued-dead")["status"]["details"]
    assert runs.get_run("running-dead")["state"] == "failed"
    assert runs.active_run() is None


# names and paths --------------------------------------------------------------------------------
@pytest.mark.parametrize("bad", ["../x", "..", "/etc", "a/b", "runs/../../x", ""])
def test_run_ids_and_dataset_names_cannot_leave_the_data_folder(home: Path, bad: str):
    runs = _runs()
    victim = home / "keep.txt"
    victim.write_text("keep")
    (home / "runs" / "x").mkdir(parents=True, exist_ok=True)
    with pytest.raises(runs.RunNotFound):
        runs.get_run(bad)
    with pytest.raises(runs.RunNotFound):
        runs.delete_run(bad)
    with pytest.raises((FileNotFoundError, runs.UnsafeName)):
        runs.delete_dataset(bad)
    assert victim.read_text() == "keep"
    assert (home / "runs" / "x").is_dir()


def test_bad_settings_are_refused_before_anything_starts(home: Path, dataset: Path):
    runs = _runs()
    with pytest.raises(ValueError):
        runs.start_run(dataset, preset="forever")
    with pytest.raises(ValueError):
        runs.start_run(dataset, rm_rf=True)
    with pytest.raises(FileNotFoundError):
        runs.start_run(home / "no-such-dataset")
    with pytest.raises(runs.UnsafeName):
        runs.start_run(dataset, name="../..")
    assert runs.list_runs() == [] and not trainer_pids(home)


def test_busy_while_any_process_holds_the_training_lock(home: Path, dataset: Path):
    runs = _runs()
    from engine.storage.locks import training_lock

    with training_lock(holder="a command-line training"):
        with pytest.raises(runs.TrainingBusy):
            runs.start_run(dataset)
    assert runs.list_runs() == []


# one training at a time, real processes ---------------------------------------------------------
LAUNCHER = textwrap.dedent("""
    import json, os, sys, time
    sys.path.insert(0, {root!r})
    from engine import runs
    go = sys.argv[1]
    while not os.path.exists(go):
        time.sleep(0.002)
    try:
        rid = runs.start_run(sys.argv[2], name=sys.argv[3], **{settings!r})
        print(json.dumps({{"ok": rid}}))
    except runs.TrainingBusy as exc:
        print(json.dumps({{"busy": str(exc)}}))
""")


def test_two_processes_pressing_start_at_once_launch_one_training(home: Path, dataset: Path, tmp_path: Path):
    runs = _runs()
    script = tmp_path / "launch.py"
    script.write_text(LAUNCHER.format(root=str(ROOT), settings=dict(TINY_TRAINING, max_minutes=1.0, num_epoch=50)))
    go = tmp_path / "go"
    names = ["../../escape attempt", "a/b\\c"]
    procs = [subprocess.Popen([sys.executable, str(script), str(go), str(dataset), n], stdout=subprocess.PIPE,
                              text=True, env=os.environ.copy()) for n in names]
    time.sleep(1.0)  # both are waiting on the go file
    go.write_text("go")
    outs = [json.loads(p.communicate(timeout=60)[0].strip().splitlines()[-1]) for p in procs]
    started = [o["ok"] for o in outs if "ok" in o]
    busy = [o["busy"] for o in outs if "busy" in o]
    assert len(started) == 1 and len(busy) == 1, outs
    assert "still training" in busy[0]
    run_id = started[0]

    # the name was made harmless: one folder directly under runs/
    run_dir = (home / "runs" / run_id).resolve()
    assert run_dir.parent == (home / "runs").resolve() and "/" not in run_id and ".." not in run_id
    assert [r["id"] for r in runs.list_runs()] == [run_id]
    active = runs.active_run()
    assert active and active["id"] == run_id and active["state"] in ("queued", "running")
    assert (run_dir / "process.log").exists()

    # busy in this process too, and an active run or its dataset cannot be deleted
    with pytest.raises(runs.TrainingBusy, match="still training"):
        runs.start_run(dataset)
    with pytest.raises(runs.TrainingBusy):
        runs.delete_run(run_id)
    with pytest.raises(runs.TrainingBusy):
        runs.delete_dataset(dataset.name)
    assert run_dir.is_dir() and dataset.is_dir()

    # Stop: the trainer saves and ends as `stopped`; then the run can be resumed, stopped again, deleted
    assert runs.stop_run(run_id)
    wait_until(lambda: not runs.get_run(run_id)["active"], 90, 0.5, "the run did not stop")
    assert runs.get_run(run_id)["state"] == "stopped"
    assert not trainer_pids(home)

    assert runs.resume_run(run_id) == run_id
    assert runs.get_run(run_id)["active"]
    with pytest.raises(runs.TrainingBusy):
        runs.resume_run(run_id)
    runs.stop_run(run_id)
    wait_until(lambda: not runs.get_run(run_id)["active"], 90, 0.5, "the resumed run did not stop")
    assert runs.get_run(run_id)["state"] == "stopped"

    runs.delete_run(run_id)
    assert not run_dir.exists() and runs.list_runs() == []
    conn = sqlite3.connect(home / "registry.sqlite")
    assert conn.execute("SELECT COUNT(*) FROM runs").fetchone()[0] == 0
    conn.close()


def test_list_and_delete_datasets(home: Path, dataset: Path):
    runs = _runs()
    listed = runs.list_datasets()
    assert [d["name"] for d in listed] == [dataset.name]
    assert listed[0]["accepted"] == listed[0]["train"] + listed[0]["test"] > 0
    runs.delete_dataset(dataset.name)
    assert runs.list_datasets() == [] and not dataset.exists()
