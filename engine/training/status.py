"""The one writer of a run's status.json and metrics.jsonl: the training process.

status.json fields: state (running, finished, failed, stopped), phase (what it is doing, in plain
words), pid, run, step, planned_steps, max_steps, percent, elapsed_seconds, eta_seconds,
best_val_plate_accuracy, best_step, checks, started_at, updated_at, finished_at, error, verdict.
Whether a "running" status is still true is decided by its reader (engine/runs/state.py) from the
training lock, not written here.
"""
from __future__ import annotations

import json
import os
from typing import Any

from engine.storage.files import atomic_write_json, now_iso
from engine.storage.runfolder import RunFolder


class StatusWriter:
    def __init__(self, run: RunFolder, enabled: bool = True):
        self.run, self.enabled = run, enabled  # a non-chief worker of a cluster writes nothing
        self.fields: dict[str, Any] = dict(run.status()) if enabled else {}

    def update(self, **fields: Any) -> None:
        if not self.enabled:
            return
        self.fields.update(fields)
        self.fields["updated_at"] = now_iso()
        atomic_write_json(self.run.status_path, self.fields)

    def append_metrics(self, row: dict) -> None:
        """One JSON line per check; a line torn by an earlier kill is ended first, so this one stays whole."""
        if not self.enabled:
            return
        self.run.path.mkdir(parents=True, exist_ok=True)
        line = json.dumps(row, ensure_ascii=False) + "\n"
        with open(self.run.metrics_path, "ab+") as f:
            if f.tell() > 0:
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())
