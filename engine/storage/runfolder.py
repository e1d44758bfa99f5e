"""The run folder: the contract between a training process and whoever watches it.

Plain files a person can read, each with one writer:

    config.json      the settings the run trains with   (launcher or CLI, before training; trainer)
    launch.json      what the launcher knows: pid, when, stop requests       (launcher only)
    status.json      state and progress                                       (trainer only)
    metrics.jsonl    one line per check on held-out photos                    (trainer only)
    train.log        the trainer's log; process.log: its stdout/stderr        (trainer)
    checkpoints/     best.npz (averaged weights that checked best), last.npz (to resume), step-N.npz
    evaluation.json  predictions.csv  confusion.csv                           (evaluation)
    export/  bundle.zip                                                       (export)

Writes are atomic, so a reader or a kill never sees half a file. Whether a run is alive is not
written anywhere: engine/runs/state.py asks the training lock (engine/storage/locks.py).
"""
from __future__ import annotations

import os
from pathlib import Path

from engine.storage.files import read_json, read_jsonl

STATES = ("queued", "running", "finished", "failed", "stopped")
ACTIVE_STATES = ("queued", "running")


class RunFolder:
    """Paths and readers of one run folder (`--model-dir`)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # paths: `run.config_path` is `run.path / "config.json"`, and so on for every name of FILES
    FILES = {"config_path": "config.json", "launch_path": "launch.json", "status_path": "status.json",
             "metrics_path": "metrics.jsonl", "log_path": "train.log", "process_log_path": "process.log",
             "checkpoint_dir": "checkpoints", "predictions_path": "predictions.csv", "confusion_path": "confusion.csv",
             "evaluation_path": "evaluation.json", "threshold_path": "threshold.json", "export_dir": "export",
             "bundle_path": "bundle.zip", "label_check_path": "label_check.csv"}

    # what describes the run and its process; everything else in FILES is made by a training
    DESCRIPTION = ("config_path", "launch_path", "status_path", "log_path", "process_log_path")

    def __getattr__(self, name: str) -> Path:
        if name in RunFolder.FILES:
            return self.path / RunFolder.FILES[name]
        raise AttributeError(name)

    def training_products(self) -> list[Path]:
        """Checks, checkpoints, scores, export and bundle: what a fresh start in this folder removes."""
        return [self.path / file for name, file in RunFolder.FILES.items() if name not in RunFolder.DESCRIPTION]

    def checkpoint(self, which: str = "best") -> Path:
        return self.checkpoint_dir / f"{which}.npz"

    def model_checkpoint(self) -> Path | None:
        """The checkpoint a reader should load: best, else last; None before the first save."""
        for which in ("best", "last"):
            if self.checkpoint(which).exists():
                return self.checkpoint(which)
        return None

    # readers -------------------------------------------------------------------------------
    def config(self) -> dict:
        return read_json(self.config_path, {}) or {}

    def launch(self) -> dict:
        return read_json(self.launch_path, {}) or {}

    def status(self) -> dict:
        """status.json as the trainer wrote it (engine/runs/state.py says whether it is still true)."""
        return read_json(self.status_path, {}) or {}

    def evaluation(self) -> dict:
        return read_json(self.evaluation_path, {}) or {}

    def metrics(self) -> list[dict]:
        """One dict per check; a half-written last line (a kill mid-write) is ignored."""
        return read_jsonl(self.metrics_path)

    def process_log_tail(self, lines: int = 20) -> str:
        try:
            text = self.process_log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])
