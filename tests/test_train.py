"""Training as a user runs it: the real subprocess, the real model, small generated plates."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.runfolder import RunFolder, wait_for

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--max-width", "64", "--max-height", "32", "--batch-size", "16"]


def engine_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine", *args]


def run_engine(*args: str, env: dict | None = None, timeout: float = 300, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(engine_cmd(*args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, **kw)


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("studio_home")


@pytest.fixture(scope="module")
def env(home) -> dict:
    return {**os.environ, "PLATE_STUDIO_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "2"}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, home, env) -> Path:
    from engine.importer import import_dataset
    from engine.sample import make_sample_zip

    tmp = tmp_path_factory.mktemp("data")
    zip_path = make_sample_zip(tmp / "plates.zip", count=120, seed=3)
    out = tmp / "dataset"
    import_dataset(zip_path, out, test_fraction=0.2, seed=0)
    return out


@pytest.fixture(scope="module")
def trained(dataset, tmp_path_factory, env) -> Path:
    """One real training of ~40 s shared by the tests that only read its results."""
    run_dir = tmp_path_factory.mktemp("runs") / "run1"
    proc = run_engine("train", str(dataset), "--model-dir", str(run_dir), "--max-minutes", "0.6", "--num-epoch", "40",
                      *SMALL, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return run_dir


def test_training_learns_and_writes_the_run_folder(trained):
    run = RunFolder(trained)
    status = run.status()
    assert status["state"] == "finished", status
    rows = run.metrics()
    assert len(rows) >= 3
    assert rows[-1]["loss"] < rows[0]["loss"] * 0.8, "training loss should clearly go down"
    for key in ("epoch", "step", "loss", "train_plate_accuracy", "val_plate_accuracy", "val_char_accuracy", "seconds"):
        assert key in rows[-1]
    assert run.checkpoint("best").exists() and run.checkpoint("last").exists()
    config = run.config()
    assert config["max_width"] == 64 and config["charset"]
    assert "epoch" in run.log_path.read_text()
    evaluation = run.evaluation()
    assert evaluation["count"] > 0 and 0 <= evaluation["plate_accuracy"] <= 1
    with open(run.predictions_path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["file", "label", "prediction", "confidence", "correct"]
    assert len(rows) == evaluation["count"]


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
        path, text, confidence = line.split("\t")
        assert path == str(image) and 0.0 <= float(confidence) <= 1.0


def test_sigterm_stops_cleanly_and_resume_continues(dataset, env, tmp_path):
    run_dir = tmp_path / "stoppable"
    proc = subprocess.Popen(engine_cmd("train", str(dataset), "--model-dir", str(run_dir), "--num-epoch", "50",
                                       *SMALL), cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run = RunFolder(run_dir)
    try:
        assert wait_for(lambda: len(run.metrics()) >= 1, timeout=120), "no epoch finished"
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    status = run.status()
    assert status["state"] == "stopped"
    from engine.checkpoint import load

    saved = load(run.checkpoint("last"))
    assert saved.meta["step"] >= run.metrics()[-1]["step"]
    epochs_before = [r["epoch"] for r in run.metrics()]
    done = run_engine("train", str(dataset), "--model-dir", str(run_dir), "--num-epoch", str(len(epochs_before) + 1),
                      *SMALL, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert run.status()["state"] == "finished"
    epochs = [r["epoch"] for r in run.metrics()]
    assert epochs[: len(epochs_before)] == epochs_before and epochs[-1] == len(epochs_before) + 1, \
        "the resumed run continues after the last saved epoch, not from scratch"
    assert "Resuming from epoch" in run.log_path.read_text()


def test_a_crash_is_recorded_as_failed(env, tmp_path):
    run_dir = tmp_path / "broken"
    proc = run_engine("train", str(tmp_path / "no-such-dataset"), "--model-dir", str(run_dir), env=env)
    assert proc.returncode != 0
    status = RunFolder(run_dir).status()
    assert status["state"] == "failed"
    assert "no-such-dataset" in status["error"]


def test_only_one_training_at_a_time(dataset, env, tmp_path, monkeypatch):
    monkeypatch.setenv("PLATE_STUDIO_HOME", env["PLATE_STUDIO_HOME"])
    from engine.locks import training_lock

    with training_lock(holder="a test"):
        proc = run_engine("train", str(dataset), "--model-dir", str(tmp_path / "second"), "--num-epoch", "1", *SMALL, env=env)
    assert proc.returncode == 3
    status = RunFolder(tmp_path / "second").status()
    assert status["state"] == "failed" and "already running" in status["error"]


def test_mirrored_strategy_on_two_logical_cpus(dataset, env, tmp_path):
    """The tf.distribute path: the CPU split into two logical devices, one replica each."""
    script = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from engine.config import config_for
        from engine.train import run_training
        cfg = config_for(None, num_epoch=2, max_width=64, max_height=32, batch_size=16, strategy="mirrored")
        raise SystemExit(run_training({str(dataset)!r}, {str(tmp_path / 'mirrored')!r}, cfg))
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = RunFolder(tmp_path / "mirrored")
    assert run.status()["state"] == "finished"
    assert "Mirrored strategy" in run.log_path.read_text()
    assert len(run.metrics()) == 2


def test_reader_keeps_wide_and_tiny_images(trained):
    """aocr silently dropped images wider than max-width; we scale them down and read them."""
    import cv2
    import numpy as np

    from engine.reader import PlateReader
    from engine.sample import render_plate

    reader = PlateReader.load(trained)
    plate = render_plate("AB123CD", 5)
    wide = cv2.resize(plate, (2400, 90))
    small = cv2.resize(plate, (60, 20))
    readings = reader.read([cv2.imencode(".png", im)[1].tobytes() for im in (wide, small)])
    assert len(readings) == 2
    for r in readings:
        assert 0.0 <= r.confidence <= 1.0
        assert r.attention.shape[0] == len(r.text) + 1
        assert np.allclose(r.attention.sum(axis=1), 1.0, atol=1e-3)
    assert readings[0].placement.width <= 64 and readings[0].image_size == (2400, 90)


def test_charset_round_trips_unicode():
    from engine.charset import EOS, Charset

    charset = Charset.from_labels(["皖A12345", "34FK4522"])
    ids = charset.encode("皖A1")
    assert charset.decode(ids + [EOS] + ids) == "皖A1"
    assert charset.knows("皖") and not charset.knows("Q")
