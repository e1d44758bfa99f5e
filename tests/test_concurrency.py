"""Concurrency with real processes released together by a multiprocessing barrier.

* Several processes importing at once (same dataset name, different names, plain and "replace")
  never corrupt each other's folders: every dataset left is one complete import, the loser of a
  name gets a clear refusal, no temp folder is left.
* Several processes pressing Start at once (engine.runs.start_run) while another lists the runs:
  exactly one training starts, the others get a clear TrainingBusy, exactly one run folder exists
  and its config.json is whole; the reader never fails on a half-made folder.

(tests/test_runs.py already checks two launchers with one dataset and the stop/resume/delete
cycle; this adds more launchers, different datasets, a concurrent reader and imports.)
"""
from __future__ import annotations

import csv
import hashlib
import multiprocessing as mp
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from browser_helpers import kill_trainers

ROOT = Path(__file__).resolve().parent.parent
TINY = {"max_steps": 5000, "batch_size": 16, "init_from": "none"}  # long enough to still run when checked


# --- workers (module level: the spawn start method imports them by name) ---------------------------
def _setup(home: str) -> None:
    os.environ["PLATE_STUDIO_HOME"] = home
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))


def import_worker(barrier, results, home: str, source: str, name: str, overwrite: bool) -> None:
    _setup(home)
    from engine.data.importer import ImportRefused, import_dataset
    from engine.storage.paths import datasets_dir

    barrier.wait(timeout=120)
    try:
        report = import_dataset(source, datasets_dir() / name, overwrite=overwrite)
        results.put((name, "ok", report["accepted"]))
    except ImportRefused as exc:
        results.put((name, "refused", str(exc)))
    except BaseException as exc:  # noqa: BLE001 - reported to the test
        results.put((name, "error", f"{type(exc).__name__}: {exc}"))


def start_worker(barrier, results, home: str, dataset: str, name: str) -> None:
    _setup(home)
    from engine import runs

    barrier.wait(timeout=120)
    try:
        results.put((name, "ok", runs.start_run(dataset, name=name, **TINY)))
    except runs.TrainingBusy as exc:
        results.put((name, "busy", str(exc)))
    except BaseException as exc:  # noqa: BLE001
        results.put((name, "error", f"{type(exc).__name__}: {exc}"))


def reader_worker(barrier, results, home: str) -> None:
    """Lists the run folders in a tight loop while the launchers race."""
    _setup(home)
    from engine import runs

    barrier.wait(timeout=120)
    errors, reads = [], 0
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        try:
            runs.list_runs()
            runs.active_run()
            reads += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(f"{type(exc).__name__}: {exc}")
    results.put(("reader", "errors" if errors else "ok", errors[:3] or reads))


def run_together(jobs: list[tuple], timeout: float = 180) -> list[tuple]:
    """Run each (function, *args) in its own spawned process, all released by one barrier."""
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(len(jobs)), ctx.Queue()
    procs = [ctx.Process(target=job[0], args=(barrier, results, *job[1:])) for job in jobs]
    try:
        for p in procs:
            p.start()
        out = [results.get(timeout=timeout) for _ in procs]
        for p in procs:
            p.join(timeout=30)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    return out


# --- helpers ----------------------------------------------------------------------------------------
def assert_complete_dataset(folder: Path, accepted: int) -> None:
    from engine.data.importer import load_report

    report = load_report(folder)
    assert report["accepted"] == accepted
    with open(folder / "labels.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == accepted
    images = sorted(p.name for p in (folder / "images").iterdir())
    assert images == sorted(r["file"] for r in rows)


def tree_digest(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


# --- imports ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("overwrite", [False, True], ids=["keep", "replace"])
def test_parallel_imports_same_and_different_names(studio_home: Path, sample_zip: Path, overwrite: bool) -> None:
    names = ["same", "same"] if overwrite else ["same", "same", "other"]
    results = run_together([(import_worker, str(studio_home), str(sample_zip), n, overwrite) for n in names])
    assert not [r for r in results if r[1] == "error"], results
    same = [r for r in results if r[0] == "same"]
    if overwrite:  # both may succeed one after the other, or the loser of the rename is refused
        assert any(r[1] == "ok" for r in same), same
    else:
        assert sorted(r[1] for r in same) == ["ok", "refused"], same
        refusal = next(r[2] for r in same if r[1] == "refused")
        assert "already exists" in refusal or "another import" in refusal, refusal
        assert [r[1] for r in results if r[0] == "other"] == ["ok"]
    datasets = studio_home / "datasets"
    expected = ["other", "same"] if not overwrite else ["same"]
    assert sorted(os.listdir(datasets)) == expected, "no temp or half folder left"
    for name in expected:
        assert_complete_dataset(datasets / name, 40)


# --- starting trainings --------------------------------------------------------------------------------
@pytest.fixture
def two_datasets(studio_home: Path, sample_zip: Path) -> list[Path]:
    from engine.data.importer import import_dataset

    one = studio_home / "datasets" / "one"
    import_dataset(sample_zip, one)
    shutil.copytree(one, one.parent / "two")
    return [one, one.parent / "two"]


def _stop_trainers() -> None:
    from engine import runs

    for run in runs.list_runs():
        if run["active"]:
            try:
                runs.stop_run(run["id"], wait=60)
            except runs.NothingToStop:
                pass


def test_parallel_start_run_exactly_one_training(studio_home: Path, two_datasets: list[Path]) -> None:
    from engine import runs

    before = {d.name: tree_digest(d) for d in two_datasets}
    jobs = [(start_worker, str(studio_home), str(two_datasets[i % 2]), f"racer {i}") for i in range(3)]
    jobs.append((reader_worker, str(studio_home)))
    try:
        results = run_together(jobs)
        by_kind: dict[str, list] = {}
        for name, kind, value in results:
            by_kind.setdefault(kind, []).append((name, value))
        assert "error" not in by_kind and "errors" not in by_kind, results
        assert len(by_kind.get("ok", [])) == 2, results  # one launcher + the reader
        started = [v for n, v in by_kind["ok"] if n != "reader"]
        assert len(started) == 1 and len(by_kind["busy"]) == 2, results
        for _, message in by_kind["busy"]:
            assert "still training" in message or "already running" in message, message
            assert "Traceback" not in message and len(message) < 300
        run_id = started[0]

        # exactly the started run's folder exists, whole
        assert os.listdir(studio_home / "runs") == [run_id]
        config = runs.get_run(run_id)["config"]
        assert config["name"].startswith("racer ") and config["settings"]["max_steps"] == TINY["max_steps"]
        active = runs.active_run()
        assert active is not None and active["id"] == run_id
        with pytest.raises(runs.TrainingBusy):
            runs.start_run(two_datasets[0])
    finally:
        _stop_trainers()
        kill_trainers(studio_home)
    assert {d.name: tree_digest(d) for d in two_datasets} == before, "the datasets were not touched"


def test_losing_the_final_rename_to_another_import_is_a_clear_refusal(tmp_path: Path, sample_zip: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The window the barrier test may miss: the name is free when checked, taken at the rename."""
    from engine.data import importer

    out = tmp_path / "datasets" / "plates"
    real_rename = os.rename

    def rename(src, dst):
        if Path(dst) == out and not out.exists():  # the other import publishes first
            out.mkdir(parents=True)
            (out / "report.json").write_text('{"accepted": 1}')
        return real_rename(src, dst)

    monkeypatch.setattr(importer.os, "rename", rename)
    with pytest.raises(importer.ImportRefused, match="another import at the same moment"):
        importer.import_dataset(sample_zip, out)
    assert os.listdir(out.parent) == ["plates"] and os.listdir(out) == ["report.json"]


def test_an_import_never_moves_aside_a_dataset_another_import_published_meanwhile(
        tmp_path: Path, sample_zip: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without 'replace', a dataset of the same name published just after the last check is kept,
    and this import is refused (the barrier test above caught both saying 'ok' once)."""
    from engine.data import importer

    out = tmp_path / "datasets" / "plates"
    real_exists, looks = Path.exists, []

    def exists(self: Path, *args, **kwargs) -> bool:
        free = real_exists(self, *args, **kwargs)
        if self == out:
            looks.append(free)
            if len(looks) == 2 and not free:  # publishing: the name is free, then the other import takes it
                out.mkdir(parents=True)
                (out / "report.json").write_text('{"accepted": 1}')
        return free

    monkeypatch.setattr(Path, "exists", exists)
    with pytest.raises(importer.ImportRefused, match="another import at the same moment"):
        importer.import_dataset(sample_zip, out)
    assert len(looks) >= 2, "the race was not staged"
    assert os.listdir(out.parent) == ["plates"] and os.listdir(out) == ["report.json"]
