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

import json
import os
from pathlib import Path

from engine.storage.files import read_json

STATES = ("queued", "running", "finished", "failed", "stopped")
ACTIVE_STATES = ("queued", "running")


class RunFolder:
    """Paths and readers of one run folder (`--model-dir`)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # paths ---------------------------------------------------------------------------------
    config_path = property(lambda self: self.path / "config.json")
    launch_path = property(lambda self: self.path / "launch.json")
    status_path = property(lambda self: self.path / "status.json")
    metrics_path = property(lambda self: self.path / "metrics.jsonl")
    log_path = property(lambda self: self.path / "train.log")
    process_log_path = property(lambda self: self.path / "process.log")
    checkpoint_dir = property(lambda self: self.path / "checkpoints")
    predictions_path = property(lambda self: self.path / "predictions.csv")
    confusion_path = property(lambda self: self.path / "confusion.csv")
    evaluation_path = property(lambda self: self.path / "evaluation.json")
    export_dir = property(lambda self: self.path / "export")
    bundle_path = property(lambda self: self.path / "bundle.zip")

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
        try:
            lines = self.metrics_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return []
        rows = []
        for line in lines:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def process_log_tail(self, lines: int = 20) -> str:
        try:
            text = self.process_log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.strip().splitlines()[-lines:])
