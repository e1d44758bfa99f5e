"""Training as a user runs it: the real subprocess, the real model, small generated plates."""
from __future__ import annotations

import csv
import json
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.storage.runfolder import RunFolder
from model_fixtures import engine_env, sample_dataset, wait_for

ROOT = Path(__file__).resolve().parent.parent
# a few seconds of training on 2 cores: enough to see the loss fall and the files appear
SHORT = ["--max-steps", "120", "--batch-size", "16", "--check-every-seconds", "8", "--init-from", "none"]


def engine_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine", *args]


def run_engine(*args: str, env: dict, timeout: float = 400, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(engine_cmd(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("studio_home")


@pytest.fixture(scope="module")
def env(home) -> dict:
    return engine_env(home)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return sample_dataset(tmp_path_factory, count=120, seed=3)


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory, env) -> Path:
    """One real training of ~30 s shared by the tests that only read its results."""
    run_dir = tmp_path_factory.mktemp("runs") / "run1"
    # a check every 2 s: the first one comes within the first few dozen steps, before the loss has
    # fallen, whatever the speed of the machine (at 8 s it came at step 84 to 96 of 120)
    proc = run_engine("train", str(dataset), "--model-dir", str(run_dir), *SHORT, "--check-every-seconds", "2", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def test_training_learns_and_writes_the_run_folder(trained):
    run = RunFolder(trained)
    status = run.status()
    assert status["state"] == "finished" and status["step"] == 120, status
    rows = run.metrics()
    assert len(rows) >= 2
    assert rows[-1]["loss"] < rows[0]["loss"] * 0.9, "training loss should clearly go down"
    for key in ("check", "step", "loss", "train_plate_accuracy", "val_plate_accuracy", "val_char_accuracy", "elapsed"):
        assert key in rows[-1]
    assert run.checkpoint("best").exists() and run.checkpoint("last").exists()
    config = run.config()
    assert config["settings"]["max_steps"] == 120 and config["resolved"]["charset"]
    assert config["resolved"]["started_from"] == {"from": "none"}
    assert config["resolved"]["split_fingerprint"]
    from engine.model.precision import compute_precision  # bfloat16 on CPUs that compute it, float32 elsewhere

    assert config["resolved"]["precision"] == compute_precision("auto")
    evaluation = run.evaluation()
    assert evaluation["count"] > 0 and 0 <= evaluation["plate_accuracy"] <= 1
    assert evaluation["verdict"]["level"] in ("good", "poor")
    with open(run.predictions_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["file", "label", "prediction", "confidence", "correct"]
    assert len(rows) == evaluation["count"]
    with zipfile.ZipFile(run.bundle_path) as zf:  # the download is ready when training ends
        assert {"README.md", "export/model.tflite", "export/reader.json", "evaluation.json"} <= set(zf.namelist())
    log = run.log_path.read_text()  # the run's own lines, shown under Technical details
    assert "Test: plate accuracy" in log
    assert "Assets written to" not in log and "contains input name(s)" not in log  # TensorFlow's notes


def test_a_fresh_start_in_a_trained_folder_forgets_the_earlier_training(trained, dataset, env, tmp_path):
    """--no-resume over a finished run: its charts and scores must be the new training's alone."""
    import shutil

    run_dir = tmp_path / "again"
    shutil.copytree(trained, run_dir)
    earlier = RunFolder(run_dir).metrics()
    proc = run_engine("train", str(dataset), "--model-dir", str(run_dir), "--no-resume", "--max-steps", "8",
                      "--batch-size", "16", "--check-every-seconds", "600", "--init-from", "none", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = RunFolder(run_dir)
    rows = run.metrics()
    assert len(earlier) >= 2 and [r["step"] for r in rows] == [8], "only the new training's one final check"
    assert run.status()["step"] == 8 and run.evaluation()["count"] > 0


def test_training_ends_after_the_passes_over_the_photos(dataset, env, tmp_path):
    """aocr's --num-epoch ends training after that many passes over the training photos, whatever
    --max-steps says; without it, small sets stop after 200 passes but never before 1,500 steps."""
    from engine.training.schedule import step_limit

    run_dir = tmp_path / "two-passes"
    proc = run_engine("train", str(dataset), "--model-dir", str(run_dir), "--num-epoch", "2", "--max-steps", "500",
                      "--batch-size", "16", "--check-every-seconds", "600", "--init-from", "none", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = RunFolder(run_dir)
    per_pass = -(-run.config()["resolved"]["train_images"] // 16)
    assert run.status()["state"] == "finished" and run.status()["step"] == 2 * per_pass < 500
    assert step_limit(100_000, None, per_pass) == 1_500  # 200 passes of a small set: fewer than the floor
    assert step_limit(100_000, None, 41) == 8_200 and step_limit(3_000, None, 41) == 3_000


def test_a_poor_model_is_called_poor_in_plain_words(trained):
    """120 steps from scratch read few plates: the run must not look like a success."""
    evaluation = RunFolder(trained).evaluation()
    if evaluation["plate_accuracy"] >= 0.5:
        pytest.skip("this short training happened to read well")
    verdict = evaluation["verdict"]
    assert verdict["level"] == "poor" and "not usable" in verdict["headline"]
    assert any("Train longer" in a for a in verdict["advice"])
    with zipfile.ZipFile(RunFolder(trained).bundle_path) as zf:
        assert "Warning" in zf.read("README.md").decode()


def test_cli_test_and_predict(trained, dataset, env, tmp_path):
    out = tmp_path / "results"
    proc = run_engine("test", str(dataset), "--model-dir", str(trained), "--output-dir", str(out), env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "plate accuracy" in proc.stdout
    assert (out / "predictions.csv").exists() and (out / "confusion.csv").exists()
    evaluation = json.loads((out / "evaluation.json").read_text())
    assert set(evaluation) >= {"plate_accuracy", "char_accuracy", "aocr_score", "count"}

    images = sorted((dataset / "images").iterdir())[:3]
    proc = run_engine("predict", "--model-dir", str(trained), env=env, input="\n".join(map(str, images)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 3
    for line, image in zip(lines, images):
        name, text, confidence = line.split("\t")
        assert name == image.name and 0.0 <= float(confidence) <= 1.0

    folder_zip = tmp_path / "photos.zip"
    with zipfile.ZipFile(folder_zip, "w") as zf:
        for image in images:
            zf.write(image, f"inner/{image.name}")
        zf.writestr("notes.txt", "not a photo")
    proc = run_engine("predict", "--model-dir", str(trained), "--csv", str(tmp_path / "out.csv"),
                      str(dataset / "images"), str(folder_zip), env=env)
    with open(tmp_path / "out.csv", newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(list((dataset / "images").iterdir())) + 4
    assert proc.returncode == 1  # the text file is reported, the photos are read
    bad = [r for r in rows if r["problem"]]
    assert [r["file"] for r in bad] == ["notes.txt"]
    good = [r for r in rows if not r["problem"]]
    assert all(r["name_says"] and r["matches_name"] in ("True", "False") for r in good)


def test_sigterm_stops_cleanly_and_resume_continues(dataset, env, tmp_path):
    run_dir = tmp_path / "stoppable"
    args = ["--batch-size", "16", "--check-every-seconds", "5", "--init-from", "none"]
    proc = subprocess.Popen(engine_cmd("train", str(dataset), "--model-dir", str(run_dir), "--max-steps", "5000", *args),
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run = RunFolder(run_dir)
    try:
        assert wait_for(lambda: len(run.metrics()) >= 1, timeout=180), "no check happened"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    status = run.status()
    assert status["state"] == "stopped" and status["resumable"] is True
    from engine.model.checkpoint import load

    saved = load(run.checkpoint("last"))
    stopped_at = saved.meta["step"]
    assert stopped_at >= run.metrics()[-1]["step"]
    checks_before = [r["check"] for r in run.metrics()]
    done = run_engine("train", str(dataset), "--model-dir", str(run_dir), "--max-steps", str(stopped_at + 30), *args, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert run.status()["state"] == "finished" and run.status()["step"] == stopped_at + 30
    checks = [r["check"] for r in run.metrics()]
    assert checks[: len(checks_before)] == checks_before and len(checks) > len(checks_before), \
        "the resumed run continues after the last check, not from scratch"
    assert checks == sorted(set(checks))
    assert f"Resuming at step {stopped_at}" in run.log_path.read_text()


def test_stopping_before_anything_is_learned_says_so(dataset, env, tmp_path):
    run_dir = tmp_path / "early"
    proc = subprocess.Popen(engine_cmd("train", str(dataset), "--model-dir", str(run_dir), *SHORT),
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    run = RunFolder(run_dir)
    try:
        assert wait_for(lambda: run.status().get("state") == "running", timeout=60)
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
    finally:
        proc.kill()
    status = run.status()
    assert status["state"] == "stopped"
    if not run.checkpoint("last").exists():
        assert status["resumable"] is False and "nothing was kept" in status["phase"]


def test_a_crash_is_recorded_as_failed(env, tmp_path):
    run_dir = tmp_path / "broken"
    proc = run_engine("train", str(tmp_path / "no-such-dataset"), "--model-dir", str(run_dir), env=env)
    assert proc.returncode != 0
    status = RunFolder(run_dir).status()
    assert status["state"] == "failed"
    assert "no-such-dataset" in status["error"]


def test_only_one_training_at_a_time(dataset, env, tmp_path, monkeypatch):
    monkeypatch.setenv("PLATE_STUDIO_HOME", env["PLATE_STUDIO_HOME"])
    from engine.storage.locks import training_lock

    with training_lock("a-test", tmp_path / "elsewhere"):
        proc = run_engine("train", str(dataset), "--model-dir", str(tmp_path / "second"), *SHORT, env=env)
    assert proc.returncode == 3
    status = RunFolder(tmp_path / "second").status()
    assert status["state"] == "failed" and "already running" in status["error"] and "a-test" in status["error"]


def test_init_from_a_run_with_an_older_config_and_new_characters(trained, env, tmp_path):
    """Continue from a run whose config.json predates the current settings, on labels with a new character."""
    from engine.data.importer import import_dataset
    from engine.data.sample import make_sample_folder

    folder = make_sample_folder(tmp_path / "photos", count=60, seed=11)
    for i, photo in enumerate(sorted(folder.glob("*.jpg"))[:20]):  # a character the first run never saw
        photo.rename(folder / f"*{photo.name}" if i % 2 else folder / photo.name)
    import_dataset(folder, tmp_path / "dataset2")
    older = RunFolder(tmp_path / "older")
    import shutil

    shutil.copytree(trained, older.path)
    old_config = older.config()
    older.config_path.write_text(json.dumps({"dataset": old_config["dataset"], "max_width": 64, "num_epoch": 3}))
    run_dir = tmp_path / "continued"
    proc = run_engine("train", str(tmp_path / "dataset2"), "--model-dir", str(run_dir), "--init-from", str(older.path),
                      "--max-steps", "20", "--batch-size", "16", env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    resolved = RunFolder(run_dir).config()["resolved"]
    assert resolved["started_from"]["from"] == str(older.path.resolve())
    first = RunFolder(trained).config()["resolved"]["charset"]
    assert resolved["charset"].startswith(first) and resolved["charset"].endswith("*")


def test_reader_keeps_wide_and_tiny_images(trained):
    """aocr silently dropped images wider than max-width; we scale them down and read them."""
    import cv2

    from engine.data.render import render_plate
    from engine.reading.reader import PlateReader

    reader = PlateReader.load(trained)
    plate = render_plate("AB123CD", 5, "eu")
    wide = cv2.resize(plate, (2400, 90))
    small = cv2.resize(plate, (60, 20))
    readings = reader.read([cv2.imencode(".png", im)[1].tobytes() for im in (wide, small)])
    assert len(readings) == 2
    for r in readings:
        assert 0.0 <= r.confidence <= 1.0
        assert r.attention.shape == (len(r.text) + 1, *reader.grid)
        assert np.allclose(r.attention.sum(axis=(1, 2)), 1.0, atol=1e-3)
    assert readings[0].placement.width <= reader.width and readings[0].image_size == (2400, 90)


def test_val_dataset_naming_the_training_dataset_never_checks_on_its_test_photos(tmp_path, make_sample_zip):
    """`--val-dataset` = the training dataset would pick checkpoints on the photos of the final score:
    the test side stays untouched and progress is checked on held-out training photos instead."""
    from engine.data.dataset import DatasetFolder
    from engine.data.importer import import_dataset
    from engine.training.dataprep import prepare
    from engine.training.settings import TrainConfig

    dataset = tmp_path / "plates"
    import_dataset(make_sample_zip(count=120), dataset)
    rows = DatasetFolder(dataset).rows()
    test_labels = {r["label"] for r in rows if r["split"] == "test"}
    data = prepare(TrainConfig(init_from="none", synthetic_fraction=0.0), str(dataset), str(dataset), None,
                   lambda *_: None)
    assert data.notes["val_dataset_ignored"]
    assert data.check_labels and not set(data.check_labels) & test_labels
