"""Faults with the real processes: nothing lost.

* A training killed with SIGKILL between checks and in the middle of a checkpoint save reads
  `failed` (the training lock says its trainer is gone, whatever its pid becomes), its last good
  checkpoint loads, a half-written temp file is never taken for a checkpoint, and Resume continues
  from it (check numbers continue in metrics.jsonl) and finishes.
* The dashboard restarted (a fresh AppTest is a fresh server session; all state is on disk) while
  that training runs reattaches and shows live progress; after it finished the results are there.
* Disk full (RLIMIT_FSIZE in the child, SIGXFSZ ignored so writes fail with EFBIG) during training
  and during an import: a readable error, the previous checkpoint/dataset intact, no temp files.
* An unusable data folder (PLATE_STUDIO_HOME below a regular file; tests run as root, so chmod
  would not stop anything): import and training refuse with a clear message.

One real training run (tiny: ~60 plates, from scratch) is shared by the module through fixtures.
"""
from __future__ import annotations

import hashlib
import json
import os
import random
import resource
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.model import checkpoint as ckpt
from engine.storage.locks import training_holder
from engine.storage.runfolder import RunFolder

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
SMALL = ["--batch-size", "16", "--init-from", "none", "--check-every-seconds", "4"]
STEPS = 160
SETTINGS = {"batch_size": 16, "init_from": "none", "max_steps": STEPS, "steps_per_checkpoint": 1,
            "check_every_seconds": 4.0, "max_minutes": 8.0}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) is not alive
        return Path(f"/proc/{pid}/stat").read_bytes().split(b") ", 1)[1][:1] != b"Z"
    except (OSError, IndexError):
        return True


# --- helpers ---------------------------------------------------------------------------------------
def wait_until(predicate, timeout: float, message: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    value = predicate()
    assert value, message
    return value


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in Path(folder).rglob("*") if p.name.endswith(".tmp") or ".importing-" in p.name)


def digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def trainer_pid(run_dir: Path) -> int | None:
    """The pid of the trainer holding the training lock for this run folder."""
    holder = training_holder() or {}
    if holder.get("run_dir") and Path(holder["run_dir"]).resolve() == Path(run_dir).resolve():
        return int(holder["pid"])
    return None


def sigkill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def kill_leftovers(run_dirs: list[Path]) -> None:
    """SIGKILL any trainer still running on one of these run folders (this module's only)."""
    from browser_helpers import trainer_processes

    targets = {str(Path(d).resolve()) for d in run_dirs}
    for pid, args in trainer_processes():
        if targets & set(args):
            sigkill(pid)


def limited_fsize(max_bytes: int):
    """preexec_fn: files this child writes cannot grow past max_bytes (writes fail with EFBIG)."""
    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, max_bytes))
    return apply


def app_page(page: str):
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def shown_step(at) -> int:
    """The step the live panel shows (its label also says the planned steps: "Step (of about 60)")."""
    return next(int(m.value.replace(",", "")) for m in at.metric if m.label.startswith("Step"))


# --- module fixtures: one data folder, one dataset, one run that is killed twice ---------------------
@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory):
    home = tmp_path_factory.mktemp("faults_home")
    mp = pytest.MonkeyPatch()
    mp.setenv("PLATE_STUDIO_HOME", str(home))
    mp.setenv("TF_CPP_MIN_LOG_LEVEL", "2")
    mp.delenv("PLATE_STUDIO_PASSWORD", raising=False)
    yield home
    kill_leftovers(list((home / "runs").glob("*")) + list(home.glob("copy-*")))
    mp.undo()


@pytest.fixture(scope="module")
def plates_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine.data.sample import make_sample_zip

    return make_sample_zip(tmp_path_factory.mktemp("faults_zip") / "plates.zip", count=60, seed=5)


@pytest.fixture(scope="module")
def dataset(home: Path, plates_zip: Path) -> Path:
    from engine.data.importer import import_dataset
    from engine.storage.paths import datasets_dir

    out = datasets_dir() / "plates"
    import_dataset(plates_zip, out, test_fraction=0.2, seed=0)
    return out


@pytest.fixture(scope="module")
def crashes(home: Path, dataset: Path) -> dict:
    """Start a run from the engine API, SIGKILL it between checks, resume, SIGKILL it during a save."""
    from engine import runs

    seen: dict = {}
    run_id = runs.start_run(dataset, name="crash test", **SETTINGS)
    run_dir = home / "runs" / run_id
    folder = RunFolder(run_dir)
    last = folder.checkpoint("last")
    seen["run_id"], seen["run_dir"] = run_id, run_dir

    # 1. between checks: after the first check, wait for the next per-step save to land, kill at once
    wait_until(lambda: len(folder.metrics()) >= 1, 240, "no check happened")
    pid = wait_until(lambda: trainer_pid(run_dir), 30, "the trainer did not report its pid")
    before = last.stat().st_mtime_ns
    deadline = time.monotonic() + 60
    while last.stat().st_mtime_ns == before and time.monotonic() < deadline:
        time.sleep(0.0005)
    sigkill(pid)
    # the leader thread turns zombie before TensorFlow's other threads are gone and the lock is let go
    wait_until(lambda: not pid_alive(pid) and not runs.get_run(run_id)["active"], 10, "the killed trainer is still there")
    seen["kill1"] = {"status": folder.status(), "run": runs.get_run(run_id), "metrics": folder.metrics(),
                     "checkpoint": ckpt.load(last).meta, "temp": temp_files(run_dir)}

    # 2. during a save: resume, wait for the temp file of a checkpoint being written, kill at once
    runs.resume_run(run_id)
    pid = wait_until(lambda: trainer_pid(run_dir), 120, "the resumed trainer did not start")
    ckpt_dir = folder.checkpoint_dir
    deadline = time.monotonic() + 180
    writing: list[str] = []
    while time.monotonic() < deadline and pid_alive(pid):
        writing = [n for n in os.listdir(ckpt_dir) if n.startswith(".last.npz.") and n.endswith(".tmp")]
        if writing:
            break
        time.sleep(0.0005)
    sigkill(pid)
    assert writing, "never saw a checkpoint being written"
    # the leader thread turns zombie before TensorFlow's other threads are gone and the lock is let go
    wait_until(lambda: not pid_alive(pid) and not runs.get_run(run_id)["active"], 10, "the killed trainer is still there")
    seen["kill2"] = {"status": folder.status(), "run": runs.get_run(run_id), "metrics": folder.metrics(),
                     "checkpoint": ckpt.load(last).meta, "temp": temp_files(run_dir),
                     "mid_save": (ckpt_dir / writing[0]).exists()}
    return seen


@pytest.fixture(scope="module")
def resumed(crashes: dict, home: Path, dataset: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The twice-killed run resumed once more (it runs to the end).

    At the same moment a copy of the killed run is resumed from the command line on a "full disk"
    (its own data folder, so its own training lock): the two TensorFlow start-ups overlap.
    """
    from engine import runs

    copy = home / "copy-diskfull"
    shutil.copytree(crashes["run_dir"], copy, ignore=shutil.ignore_patterns("*.tmp"))  # the kill's leftovers
    folder = RunFolder(copy)
    # status.json (~1 KB) and the log fit, no checkpoint does
    limit = min(folder.checkpoint(n).stat().st_size for n in ("last", "best") if folder.checkpoint(n).exists()) // 2
    assert folder.log_path.stat().st_size < limit // 4 and folder.status_path.stat().st_size < 4096
    crashes["diskfull"] = {
        "run_dir": copy,
        "limit": limit,
        "kept": {name: digest(folder.checkpoint(name)) for name in ("last", "best") if folder.checkpoint(name).exists()},
        "meta": ckpt.load(folder.checkpoint("last")).meta,
        "metrics": folder.metrics_path.read_bytes(),
        "proc": subprocess.Popen(
            [sys.executable, "-m", "engine", "train", str(dataset), "--model-dir", str(copy), *SMALL,
             "--max-steps", str(STEPS), "--steps-per-checkpoint", "1"],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PLATE_STUDIO_HOME": str(tmp_path_factory.mktemp("diskfull_home"))},
            preexec_fn=limited_fsize(limit),
        ),
    }
    # A kill between a check's checkpoint and its metrics line, simulated on another copy: the
    # checkpoint says check 2 is done (and carries check 2's metrics row, as the trainer writes it),
    # metrics.jsonl only has check 1. Resumed for a few more steps.
    gap = home / "copy-gap"
    shutil.copytree(crashes["run_dir"], gap, ignore=shutil.ignore_patterns("*.tmp"))
    first_row = RunFolder(gap).metrics()[0]
    gap_meta = ckpt.load(RunFolder(gap).checkpoint("last")).meta
    rewrite_meta(RunFolder(gap).checkpoint("last"), checks=2,
                 metrics_row={**first_row, "check": 2, "step": gap_meta["step"], "loss": 1.25})
    crashes["gap"] = {"run_dir": gap, "proc": subprocess.Popen(
        [sys.executable, "-m", "engine", "train", str(dataset), "--model-dir", str(gap), *SMALL, "--max-steps",
         str(gap_meta["step"] + 10)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PLATE_STUDIO_HOME": str(tmp_path_factory.mktemp("gap_home"))})}

    runs.resume_run(crashes["run_id"])
    wait_until(lambda: runs.get_run(crashes["run_id"])["active"], 10, "resume did not start")
    return crashes


def rewrite_meta(path: Path, **changes) -> None:
    """Change a checkpoint's metadata in place (its arrays untouched)."""
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = {**json.loads(bytes(arrays["meta"]).decode("utf-8")), **changes}
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.fixture(scope="module")
def finished(resumed: dict) -> dict:
    from engine import runs

    run_id = resumed["run_id"]
    wait_until(lambda: not runs.get_run(run_id)["active"], 300, "the resumed run did not end", interval=0.5)
    return resumed


# --- training killed -----------------------------------------------------------------------------------
def test_sigkill_between_checks_reads_failed_and_keeps_the_last_checkpoint(crashes: dict) -> None:
    seen = crashes["kill1"]
    assert seen["status"]["state"] == "running", "status.json is what the killed trainer last wrote"
    run = seen["run"]  # ... and the dashboard's reading of it says what really happened
    assert run["state"] == "failed" and not run["active"] and run["has_checkpoint"] and run["resumable"]
    assert "ended unexpectedly" in run["status"]["error"]
    rows = seen["metrics"]
    assert [r["check"] for r in rows] == list(range(1, len(rows) + 1))
    # the checkpoint that loads is a per-step one, newer than the last metrics line
    assert seen["checkpoint"]["step"] > rows[-1]["step"]


def test_sigkill_during_a_save_keeps_the_previous_checkpoint(crashes: dict) -> None:
    before, seen = crashes["kill1"], crashes["kill2"]
    assert seen["run"]["state"] == "failed" and not seen["run"]["active"]
    step = seen["checkpoint"]["step"]
    if seen["mid_save"]:  # killed while the temp file was being written: last.npz is the old one
        assert step == before["checkpoint"]["step"], (step, before["checkpoint"])
        assert seen["temp"], "the half-written temp file should still be there (and be ignored)"
    else:  # the save completed between seeing its temp file and the kill: the new one
        assert step == before["checkpoint"]["step"] + 1
    # the loader takes last.npz, never the temp file; the temp file is not a complete checkpoint
    folder = RunFolder(crashes["run_dir"])
    assert ckpt.load(folder.checkpoint("last")).meta["step"] == step
    assert [r["check"] for r in seen["metrics"]][: len(before["metrics"])] == [r["check"] for r in before["metrics"]]


# --- dashboard restarted ------------------------------------------------------------------------------------
def test_a_restarted_dashboard_reattaches_to_the_running_training(resumed: dict) -> None:
    from engine import runs

    run_id = resumed["run_id"]
    folder = RunFolder(resumed["run_dir"])
    at = app_page("pages/train.py")
    assert runs.get_run(run_id)["active"], "the training ended before the page could be checked"
    assert any("crash test" in w.value and "running now" in w.value for w in at.warning)
    assert at.button(key="train_start").disabled
    assert at.button(key="train_stop")  # the live panel of the run, with its Stop button
    assert any("crash test" in s.value for s in at.subheader)
    shown = shown_step(at)

    # live: once the trainer reports a newer step, a new server session shows it
    wait_until(lambda: (folder.status().get("step") or 0) > shown or not runs.get_run(run_id)["active"], 240,
               "the step did not advance")
    now = folder.status().get("step") or 0
    at = app_page("pages/train.py")
    assert shown_step(at) >= min(now, STEPS)


def test_resume_after_the_kills_continues_and_finishes(finished: dict) -> None:
    from engine import runs

    run = runs.get_run(finished["run_id"])
    assert run["state"] == "finished", run["status"]
    folder = RunFolder(finished["run_dir"])
    rows = folder.metrics()
    checks = [r["check"] for r in rows]
    assert checks == list(range(1, len(rows) + 1)), "check numbers continue after each kill, without repeats"
    assert rows[0] == finished["kill1"]["metrics"][0], "the first check's line survived the kills"
    steps = [r["step"] for r in rows]
    assert steps == sorted(steps) and steps[-1] == STEPS
    log = folder.log_path.read_text()
    assert log.count("Resuming at step") == 2
    assert folder.evaluation()["count"] > 0
    meta = ckpt.load(folder.checkpoint("last")).meta
    assert meta["step"] == STEPS
    assert temp_files(finished["run_dir"]) == [], "temp files of killed saves are cleaned up by the next save"


def test_a_restarted_dashboard_shows_the_results_after_the_end(finished: dict) -> None:
    from dashboard.text import fmt_pct

    run_id = finished["run_id"]
    evaluation = RunFolder(finished["run_dir"]).evaluation()
    at = app_page("pages/train.py")
    assert not at.button(key="train_start").disabled
    assert at.button(key="train_results"), "the finished run's panel leads to its results"
    at = app_page("pages/results.py")
    assert at.selectbox(key="results_pick").value == run_id
    shown = " ".join(m.value for m in at.metric)
    assert fmt_pct(evaluation["plate_accuracy"]) in shown and str(evaluation["count"]) in " ".join(
        [shown] + [c.value for c in at.caption] + [m.value for m in at.markdown])


def test_a_kill_between_checkpoint_and_metrics_line_leaves_no_gap(resumed: dict) -> None:
    proc = resumed["gap"]["proc"]
    try:
        _, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, stderr[-3000:]
    rows = RunFolder(resumed["gap"]["run_dir"]).metrics()
    # check 2 is written once, from the checkpoint; the resumed run's checks follow on (how many depends on speed)
    assert [r["check"] for r in rows] == list(range(1, len(rows) + 1)) and len(rows) >= 3
    assert rows[1]["loss"] == 1.25, "check 2's line comes from the checkpoint that finished it"


# --- checkpoint saves killed many times (no TensorFlow: fast, so many kills) -----------------------------------
SAVER = textwrap.dedent("""
    import sys
    import numpy as np
    sys.path.insert(0, sys.argv[1])
    from engine.model import checkpoint

    start = int(sys.argv[3])
    for i in range(start, start + 10_000):
        weights = {f"layer{k}/kernel": np.full((256, 1024), i, np.float32) for k in range(6)}  # ~6 MB a save
        checkpoint.save(sys.argv[2], None, {"step": i}, weights=weights)
        print(i, flush=True)
""")


def test_repeated_sigkill_during_checkpoint_saves(tmp_path: Path) -> None:
    """12 SIGKILLs at random moments of back-to-back saves: last.npz always loads whole and consistent."""
    import numpy as np

    path = tmp_path / "checkpoints" / "last.npz"
    rng = random.Random(7)
    mid_save = 0
    saved = 0
    for attempt in range(12):
        proc = subprocess.Popen([sys.executable, "-c", SAVER, str(ROOT), str(path), str(saved + 1)],
                                stdout=subprocess.PIPE, text=True)
        try:
            first = proc.stdout.readline()  # one save of this process has completed
            assert first.strip(), "the saver did not save"
            if attempt % 2:  # kill at a random moment
                time.sleep(rng.uniform(0.0, 0.15))
            else:  # kill as soon as a save's temp file appears
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and not any(n.endswith(".tmp") for n in os.listdir(path.parent)):
                    time.sleep(0.0002)
        finally:
            proc.kill()
            proc.wait()
        leftovers = [n for n in os.listdir(path.parent) if n != "last.npz"]
        assert all(n.startswith(".last.npz.") and n.endswith(".tmp") for n in leftovers), leftovers
        mid_save += bool(leftovers)  # killed while writing (the next save of the next process removes it)
        state = ckpt.load(path)  # never a half file, never the temp file
        step = state.meta["step"]
        assert all(np.all(w == step) for w in state.weights.values()), "weights and metadata come from one save"
        assert step >= saved
        saved = step
    assert mid_save >= 3, "the kills should often land while a save is being written"
    # the next successful save removes what killed saves left behind
    proc = subprocess.run([sys.executable, "-c", SAVER.replace("10_000", "1"), str(ROOT), str(path), str(saved + 1)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert os.listdir(path.parent) == ["last.npz"]


def test_a_torn_metrics_line_does_not_swallow_the_next_check(tmp_path: Path) -> None:
    """A kill in the middle of appending to metrics.jsonl leaves half a line; the resumed run's line stays whole."""
    from engine.training.status import StatusWriter

    folder = RunFolder(tmp_path / "run")
    writer = StatusWriter(folder)
    writer.append_metrics({"check": 1, "step": 3})
    with open(folder.metrics_path, "a", encoding="utf-8") as f:
        f.write('{"check": 2, "st')  # killed here
    writer.append_metrics({"check": 2, "step": 6})
    writer.append_metrics({"check": 3, "step": 9})
    assert [r["check"] for r in folder.metrics()] == [1, 2, 3]


# --- disk full -------------------------------------------------------------------------------------------------
def test_disk_full_during_training_fails_cleanly_and_keeps_the_checkpoint(resumed: dict) -> None:
    """Files may not grow past half a checkpoint: status.json (~1 KB) and the log fit, no checkpoint does."""
    seen = resumed["diskfull"]
    proc = seen["proc"]
    try:
        _, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 1, stderr[-3000:]
    folder = RunFolder(seen["run_dir"])
    assert folder.checkpoint("last").stat().st_size > seen["limit"]
    status = folder.status()
    assert status["state"] == "failed"
    error = status["error"]
    assert "disk" in error.lower() and "last.npz" in error, error
    assert "Traceback" not in error and len(error) < 400
    assert {name: digest(folder.checkpoint(name)) for name in seen["kept"]} == seen["kept"]
    assert ckpt.load(folder.checkpoint("last")).meta == seen["meta"]
    assert temp_files(seen["run_dir"]) == []
    assert folder.metrics_path.read_bytes() == seen["metrics"]


IMPORT_CHILD = textwrap.dedent("""
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from engine.data.importer import import_dataset
    try:
        import_dataset(sys.argv[2], sys.argv[3], overwrite=sys.argv[4] == "overwrite")
        print(json.dumps({"ok": True}))
    except Exception as exc:
        print(json.dumps({"type": [c.__name__ for c in type(exc).__mro__], "message": str(exc)}))
""")


def test_cli_import_disk_full_prints_a_clear_error(plates_zip: Path, tmp_path: Path) -> None:
    """Here the disk fills up while the photos are copied."""
    out = tmp_path / "ds"
    proc = subprocess.run([sys.executable, "-m", "engine", "import", str(plates_zip), "--out", str(out)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, preexec_fn=limited_fsize(8 * 1024),
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert proc.returncode != 0
    assert "Traceback" not in proc.stderr and "error:" in proc.stderr and "disk" in proc.stderr.lower(), proc.stderr[-2000:]
    assert os.listdir(tmp_path) == []


# --- unusable data folder ----------------------------------------------------------------------------------------
@pytest.fixture
def unusable_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a regular file where the data folder's parent should be")
    home = blocker / "studio"
    monkeypatch.setenv("PLATE_STUDIO_HOME", str(home))
    return home


def clear(message: str, home: Path) -> None:
    assert str(home) in message and "PLATE_STUDIO_HOME" in message, message
    assert "Traceback" not in message and len(message) < 400, message


def test_unusable_data_folder_dashboard_says_what_to_do(unusable_home: Path) -> None:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(APP, default_timeout=120)
    at.run()
    for page in (None, "pages/train.py", "pages/results.py", "pages/try_it.py", "pages/runs.py"):
        if page:
            at.switch_page(page).run()
        assert not at.exception, (page, [e.value[:200] for e in at.exception])
        assert any("PLATE_STUDIO_HOME" in e.value for e in at.error), page


def test_unusable_data_folder_import_and_training_refuse_clearly(unusable_home: Path, plates_zip: Path,
                                                                 dataset: Path, tmp_path: Path) -> None:
    from engine.storage import paths
    from engine import runs
    from engine.data.importer import import_dataset

    for call in (paths.data_home, runs.list_datasets, runs.list_runs, lambda: runs.start_run(dataset)):
        with pytest.raises(OSError) as info:
            call()
        clear(str(info.value), unusable_home)
    with pytest.raises(OSError) as info:
        import_dataset(plates_zip, unusable_home / "datasets" / "x")
    assert str(unusable_home) in str(info.value) and "cannot" in str(info.value), str(info.value)

    # the command-line training: refused at once, with the reason in its run folder's status
    run_dir = tmp_path / "run"
    env = {**os.environ, "PLATE_STUDIO_HOME": str(unusable_home)}
    proc = subprocess.run([sys.executable, "-m", "engine", "train", str(dataset), "--model-dir", str(run_dir), *SMALL,
                           "--max-steps", "10"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0
    status = RunFolder(run_dir).status()
    assert status["state"] == "failed"
    clear(status["error"], unusable_home)
    assert not (run_dir / "checkpoints").exists()
    proc = subprocess.run([sys.executable, "-m", "engine", "import", str(plates_zip), "--out",
                           str(unusable_home / "datasets" / "x")], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr and "error:" in proc.stderr, proc.stderr[-2000:]
    assert unusable_home.parent.is_file()


# --- uploads and imports interrupted: disk full, SIGKILL, then the clean-up ---------------------------------------
# (No TensorFlow in the import any more: the disk fills up while the photos themselves are written.)
SAVE_UPLOAD_CHILD = textwrap.dedent("""
    import io, json, sys
    sys.path.insert(0, sys.argv[1])
    from dashboard.data import ImportProblem, save_upload

    upload = io.BytesIO(bytes(range(256)) * 8192)  # 2 MiB, as st.file_uploader hands it over
    upload.name = "plates 2024.zip"
    try:
        save_upload(upload)
        print(json.dumps({"ok": True}))
    except ImportProblem as exc:
        print(json.dumps({"message": exc.message}))
""")


def test_disk_full_while_saving_an_upload_leaves_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    proc = subprocess.run([sys.executable, "-c", SAVE_UPLOAD_CHILD, str(ROOT)], capture_output=True, text=True,
                          timeout=120, preexec_fn=limited_fsize(256 * 1024), env={**os.environ, "PLATE_STUDIO_HOME": str(home)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "Not enough disk space to save the upload" in result["message"] and "nothing was kept" in result["message"]
    assert os.listdir(home / "uploads") == [], "the partial upload is removed"


def test_disk_full_during_a_replacing_import_keeps_the_old_dataset_and_leaves_no_temp(home: Path, plates_zip: Path,
                                                                                       dataset: Path) -> None:
    datasets = dataset.parent
    before = {p.relative_to(datasets).as_posix(): digest(p) for p in datasets.rglob("*") if p.is_file()}
    limit = min(p.stat().st_size for p in (dataset / "images").iterdir()) // 2  # not even one photo fits
    proc = subprocess.run([sys.executable, "-c", IMPORT_CHILD, str(ROOT), str(plates_zip), str(dataset), "overwrite"],
                          capture_output=True, text=True, timeout=300, preexec_fn=limited_fsize(limit))
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert "OSError" in result["type"] and "nothing was kept" in result["message"], result
    after = {p.relative_to(datasets).as_posix(): digest(p) for p in datasets.rglob("*") if p.is_file()}
    assert after == before and sorted(os.listdir(datasets)) == ["plates"]


def many_photos_zip(path: Path, count: int) -> Path:
    """`count` distinct small plate-like JPEGs: an import of a few seconds, long enough to kill."""
    import zipfile

    import cv2
    import numpy as np

    base = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 256, (40, 120, 3), dtype=np.uint8), (5, 5), 0)
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(count):
            photo = base.copy()
            photo[0, :8, 0] = np.frombuffer(i.to_bytes(8, "little"), np.uint8)
            zf.writestr(f"AB{i:05d}.jpg", cv2.imencode(".jpg", photo)[1].tobytes())
    return path


def test_a_killed_import_leaves_nothing_after_the_clean_up(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """SIGKILL a real `python -m engine import` mid-way: its temp folder is never taken while it lives,
    and is gone after clean_leftovers(); the dashboard runs that clean-up at start-up."""
    from engine.data.importer import clean_leftovers

    home = tmp_path / "home"
    monkeypatch.setenv("PLATE_STUDIO_HOME", str(home))
    monkeypatch.delenv("PLATE_STUDIO_PASSWORD", raising=False)
    datasets = home / "datasets"
    datasets.mkdir(parents=True)
    source = many_photos_zip(tmp_path / "many.zip", 12_000)
    proc = subprocess.Popen([sys.executable, "-m", "engine", "import", str(source), "--out", str(datasets / "many")],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        def writing() -> Path | None:
            temps = [p for p in datasets.iterdir() if ".importing-" in p.name]
            # the temp folder appears a moment before its images/ folder does
            return temps[0] if temps and (temps[0] / "images").is_dir() and len(os.listdir(temps[0] / "images")) > 100 else None

        temp = wait_until(writing, 60, "the import never started writing", interval=0.01)
        assert clean_leftovers(min_age=0) == [] and temp.is_dir(), "a live import's folder is never removed"
        sigkill(proc.pid)
        proc.wait(timeout=10)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the import finished before it could be killed"
    assert temp.is_dir() and not (datasets / "many").exists()  # what the kill left
    assert clean_leftovers(min_age=0) == [temp]
    assert os.listdir(datasets) == []

    # the same leftover, found by the dashboard when it starts (leftovers a few minutes old go)
    (datasets / ".many.importing-0123abcd" / "images").mkdir(parents=True)
    (home / "uploads" / "upload-abc123").mkdir(parents=True)
    (home / "uploads" / "upload-abc123" / "plates.zip").write_bytes(b"half an upload")
    for folder in (datasets / ".many.importing-0123abcd", home / "uploads" / "upload-abc123"):
        os.utime(folder, (time.time() - 3600, time.time() - 3600))
    app_page("pages/data.py")
    assert os.listdir(datasets) == [] and os.listdir(home / "uploads") == []


# --- liveness: a run is alive only while its trainer holds the training lock ------------------------------------
def test_a_dead_trainers_reused_pid_does_not_keep_the_run_running(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """status.json says running with the pid of a live, unrelated process (the pid was reused): the run
    reads failed, Start and Delete are allowed, and Stop says it had nothing to stop."""
    from engine import runs
    from engine.storage.files import atomic_write_json, now_iso

    monkeypatch.setenv("PLATE_STUDIO_HOME", str(tmp_path / "home"))
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        run_dir = tmp_path / "home" / "runs" / "20260101-000000-killed"
        run_dir.mkdir(parents=True)
        atomic_write_json(run_dir / "config.json", {"dataset": "", "settings": {}, "created_at": now_iso()})
        atomic_write_json(run_dir / "launch.json", {"pid": stranger.pid, "launched_at": "2026-01-01T00:00:00+00:00"})
        atomic_write_json(run_dir / "status.json", {"state": "running", "pid": stranger.pid, "step": 40,
                                                     "updated_at": "2026-01-01T00:01:00+00:00"})
        run = runs.get_run(run_dir.name)
        assert run["state"] == "failed" and not run["active"] and "ended unexpectedly" in run["status"]["error"]
        assert runs.active_run() is None
        with pytest.raises(runs.NothingToStop, match="nothing to stop"):
            runs.stop_run(run_dir.name)
        assert stranger.poll() is None, "the unrelated process was not signalled"
        runs.delete_run(run_dir.name)
        assert not run_dir.exists()
    finally:
        stranger.kill()
        stranger.wait()


def test_a_run_refuses_to_resume_or_score_against_a_replaced_split(tmp_path: Path, plates_zip: Path) -> None:
    """A re-import with another split would put photos the run trained on into its test score."""
    from engine.data.dataset import DatasetFolder
    from engine.data.importer import import_dataset

    env = {**os.environ, "PLATE_STUDIO_HOME": str(tmp_path / "home"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    dataset = tmp_path / "ds"
    import_dataset(plates_zip, dataset, test_fraction=0.2, seed=0)
    run_dir = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "engine", "train", str(dataset), "--model-dir", str(run_dir), *SMALL,
                             "--max-steps", "2000"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_until(lambda: RunFolder(run_dir).checkpoint("last").exists(), 240, "no save happened")
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    before = DatasetFolder(dataset).split_fingerprint()
    import_dataset(plates_zip, dataset, test_fraction=0.4, seed=7, overwrite=True)  # another split
    assert DatasetFolder(dataset).split_fingerprint() != before
    proc = subprocess.run([sys.executable, "-m", "engine", "train", "--model-dir", str(run_dir)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    status = RunFolder(run_dir).status()
    assert status["state"] == "failed" and "re-split" in status["error"]
    proc = subprocess.run([sys.executable, "-m", "engine", "test", str(dataset), "--model-dir", str(run_dir), "--checkpoint",
                           "last"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "re-split" in proc.stderr


def test_a_dataset_runs_were_trained_on_cannot_be_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           plates_zip: Path) -> None:
    from engine import runs
    from engine.data.importer import import_dataset
    from engine.storage.files import atomic_write_json

    monkeypatch.setenv("PLATE_STUDIO_HOME", str(tmp_path / "home"))
    dataset = tmp_path / "home" / "datasets" / "plates"
    import_dataset(plates_zip, dataset)
    runs.check_replace(dataset)  # nothing trained on it yet
    run_dir = tmp_path / "home" / "runs" / "20260101-000000-first"
    run_dir.mkdir(parents=True)
    atomic_write_json(run_dir / "config.json", {"dataset": str(dataset), "name": "first", "settings": {}})
    with pytest.raises(ValueError, match="first"):
        runs.check_replace(dataset)
