"""A tiny trained model shared by the attention-GIF and export tests (trained once per test process).

Import the fixtures into a test module: `from model_fixtures import tiny_run  # noqa: F401`.
Both modules share one run on disk: whichever asks first trains it (pytest-xdist gives each of its
processes its own temp folder, so each process that runs one of them trains its own).
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def engine_env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "PLATE_STUDIO_PASSWORD"}
    env["PLATE_STUDIO_HOME"] = str(home)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def run_engine(args: list[str], home: Path, timeout: float = 300, check: bool = True) -> subprocess.CompletedProcess:
    """`python -m engine ARGS` with `home` as its data folder; `check`: it must succeed."""
    proc = subprocess.run([sys.executable, "-m", "engine", *args], cwd=ROOT, env=engine_env(home),
                          capture_output=True, text=True, timeout=timeout)
    assert not check or proc.returncode == 0, f"engine {args[0]} failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return proc


def sample_dataset(tmp_path_factory: pytest.TempPathFactory, count: int, seed: int) -> Path:
    """A dataset folder imported from `count` generated sample plates (a fifth of them for testing)."""
    from engine.data.importer import import_dataset
    from engine.data.sample import make_sample_zip

    tmp = tmp_path_factory.mktemp("data")
    out = tmp / "dataset"
    import_dataset(make_sample_zip(tmp / "plates.zip", count=count, seed=seed), out, test_fraction=0.2, seed=0)
    return out


def wait_for(predicate, timeout: float, interval: float = 0.2) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass (tests wait on state, not on time)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """{"run": run folder (trained from the starter, evaluated: predictions.csv), "dataset": dataset folder, "home": data home}."""
    base = tmp_path_factory.getbasetemp() / "tiny_model"
    run, dataset, home = base / "run", base / "dataset", base / "home"
    if not (run / "predictions.csv").exists():
        from engine.data.importer import import_dataset
        from engine.data.sample import make_sample_zip

        home.mkdir(parents=True, exist_ok=True)
        import_dataset(make_sample_zip(base / "sample.zip", count=60, seed=3), dataset)
        run_engine(["train", str(dataset), "--model-dir", str(run), "--max-steps", "40", "--batch-size", "16",
                    "--no-resume"], home, timeout=300)
    assert (run / "checkpoints" / "best.npz").exists()
    return {"run": run, "dataset": dataset, "home": home}
