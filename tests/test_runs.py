"""engine.runs as the dashboard uses it: run folders are the truth, liveness comes from the training
lock, one training at a time, safe names, stop/resume/delete rules, datasets runs depend on.

Real trainings (tiny) are started where a rule needs one; every process a test starts is gone when
it ends.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from browser_helpers import TINY_TRAINING, import_tiny_dataset, kill_trainers, trainer_pids, wait_until

ROOT = Path(__file__).resolve().parent.parent
LONG = dict(TINY_TRAINING, max_steps=5000)  # long enough to be stopped, resumed and stopped again


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


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _fake_run(home: Path, run_id: str, status: dict | None = None, **files: dict) -> Path:
    """A run folder as a trainer (status.json) and the launcher (config.json, launch.json) leave it."""
    path = home / "runs" / run_id
    path.mkdir(parents=True)
    if status is not None:
        (path / "status.json").write_text(json.dumps(status))
    for name, content in files.items():
        (path / f"{name}.json").write_text(json.dumps(content))
    return path


def _dead_pid() -> int:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    return dead.pid


# the run folder is the truth ----------------------------------------------------------------------
def test_runs_are_the_folders_on_disk_newest_first(home: Path):
    runs = _runs()
    assert runs.list_runs() == []
    _fake_run(home, "old", {"state": "finished"}, config={"name": "first try", "created_at": "2024-01-01T00:00:00+00:00"})
    _fake_run(home, "newer", {"state": "stopped"}, config={"created_at": "2025-01-01T00:00:00+00:00"},
              evaluation={"plate_accuracy": 0.75, "char_accuracy": 0.9, "count": 4,
                          "verdict": {"level": "good", "headline": "It reads 75 %.", "advice": []}})
    listed = runs.list_runs()
    assert [r["id"] for r in listed] == ["newer", "old"]
    assert listed[0]["plate_accuracy"] == 0.75 and listed[0]["verdict"]["level"] == "good"
    assert runs.get_run("old")["name"] == "first try" and runs.get_run("old")["state"] == "finished"
    assert runs.active_run() is None
    assert not list(home.glob("*.sqlite*")), "no registry beside the run folders"


def test_a_dead_trainer_never_looks_alive_even_when_its_pid_was_reused(home: Path):
    runs = _runs()
    _fake_run(home, "running-dead", {"state": "running", "pid": _dead_pid(), "updated_at": _now()})
    reused = _fake_run(home, "launched-reused", None, launch={"pid": os.getpid(), "launched_at": _now()})
    (reused / "process.log").write_text("Traceback ...\nImportError: boom\n")
    dead = runs.get_run("running-dead")
    assert dead["state"] == "failed" and not dead["active"] and "ended unexpectedly" in dead["status"]["error"]
    reused_run = runs.get_run("launched-reused")  # this test's own pid: alive, but not a trainer of this run
    assert reused_run["state"] == "failed" and not reused_run["active"]
    assert "boom" in reused_run["status"]["details"]
    assert runs.active_run() is None


def test_stop_of_a_run_that_does_not_train_says_there_is_nothing_to_stop(home: Path):
    runs = _runs()
    _fake_run(home, "done", {"state": "finished"})
    with pytest.raises(runs.NothingToStop, match="not training"):
        runs.stop_run("done")


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

    with training_lock("a command-line training", home / "elsewhere"):
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
    script.write_text(LAUNCHER.format(root=str(ROOT), settings=LONG))
    go = tmp_path / "go"
    names = ["../../escape attempt", "a/b\\c"]
    procs = [subprocess.Popen([sys.executable, str(script), str(go), str(dataset), n], stdout=subprocess.PIPE,
                              text=True, env=os.environ.copy()) for n in names]
    time.sleep(1.0)  # both are waiting on the go file
    go.write_text("go")
    outs = [json.loads(p.communicate(timeout=120)[0].strip().splitlines()[-1]) for p in procs]
    started = [o["ok"] for o in outs if "ok" in o]
    busy = [o["busy"] for o in outs if "busy" in o]
    assert len(started) == 1 and len(busy) == 1, outs
    assert "still training" in busy[0] or "is starting" in busy[0]
    run_id = started[0]

    # the name was made harmless: one folder directly under runs/
    run_dir = (home / "runs" / run_id).resolve()
    assert run_dir.parent == (home / "runs").resolve() and "/" not in run_id and ".." not in run_id
    assert [r["id"] for r in runs.list_runs()] == [run_id]
    active = runs.active_run()
    assert active and active["id"] == run_id and active["state"] == "running"  # start_run waits for the lock

    # busy in this process too, and an active run or its dataset cannot be deleted
    with pytest.raises(runs.TrainingBusy, match="still training"):
        runs.start_run(dataset)
    with pytest.raises(runs.TrainingBusy):
        runs.delete_run(run_id)
    with pytest.raises(runs.TrainingBusy):
        runs.delete_dataset(dataset.name)
    assert run_dir.is_dir() and dataset.is_dir()

    # Stop once it learned: the trainer saves and ends `stopped`, resumable; Resume continues it
    wait_until(lambda: (runs.get_run(run_id)["status"].get("step") or 0) >= 1, 240, 0.5, "no step was made")
    assert runs.stop_run(run_id).startswith("Stopping")
    wait_until(lambda: not runs.get_run(run_id)["active"], 120, 0.5, "the run did not stop")
    stopped = runs.get_run(run_id)
    assert stopped["state"] == "stopped" and stopped["resumable"], stopped["status"]
    wait_until(lambda: not trainer_pids(home), 60, 0.5, "the stopped trainer did not exit")  # it lets go of the lock first

    assert runs.resume_run(run_id) == run_id
    assert runs.get_run(run_id)["active"]
    with pytest.raises(runs.TrainingBusy):
        runs.resume_run(run_id)
    runs.stop_run(run_id)
    wait_until(lambda: not runs.get_run(run_id)["active"], 120, 0.5, "the resumed run did not stop")
    assert runs.get_run(run_id)["state"] == "stopped"
    with pytest.raises(runs.NothingToStop):
        runs.stop_run(run_id)

    runs.delete_run(run_id)
    assert not run_dir.exists() and runs.list_runs() == []


# datasets ----------------------------------------------------------------------------------------
def test_a_dataset_runs_were_trained_on_cannot_be_replaced(home: Path, dataset: Path):
    runs = _runs()
    runs.check_replace(dataset)  # no run yet: fine
    _fake_run(home, "on-it", {"state": "finished"}, config={"name": "fleet model", "dataset": str(dataset)})
    assert [r["id"] for r in runs.runs_trained_on(dataset)] == ["on-it"]
    with pytest.raises(ValueError, match="fleet model"):
        runs.check_replace(dataset)


def test_list_and_delete_datasets(home: Path, dataset: Path):
    runs = _runs()
    listed = runs.list_datasets()
    assert [d["name"] for d in listed] == [dataset.name]
    assert listed[0]["accepted"] == listed[0]["train"] + listed[0]["test"] > 0
    assert runs.dataset_path(dataset.name) == dataset
    runs.delete_dataset(dataset.name)
    assert runs.list_datasets() == [] and not dataset.exists()
