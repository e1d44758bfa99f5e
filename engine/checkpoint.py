"""Single-file checkpoints: model weights, optimizer state and metadata in one .npz, written atomically.

One file (not a folder) means one os.replace makes it visible: a kill during a save leaves the
previous checkpoint untouched, never a half-written one.
"""
from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.runfolder import atomic_write_bytes


@dataclass
class CheckpointState:
    weights: list[np.ndarray]
    optimizer: list[np.ndarray]
    meta: dict


def save(path: Path, model, optimizer, meta: dict) -> None:
    arrays = {f"w{i:04d}": np.asarray(w) for i, w in enumerate(model.get_weights())}
    if optimizer is not None:
        arrays.update({f"o{i:04d}": np.asarray(v) for i, v in enumerate(optimizer.variables)})
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    path = Path(path)
    atomic_write_bytes(path, buffer.getvalue())
    _remove_stale_temp_files(path)


def _remove_stale_temp_files(path: Path) -> None:
    """Delete what a killed save of this checkpoint left behind (`.last.npz.<random>.tmp`).

    Only one process trains in a run folder (and one per machine), and its saves are sequential,
    so once a save has completed any other temp file of the same checkpoint is dead weight.
    """
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def load(path: Path) -> CheckpointState:
    """Read a checkpoint; raises ValueError with the file name if it is unreadable."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            keys = sorted(data.files)
            meta = json.loads(bytes(data["meta"]).decode("utf-8"))
            weights = [data[k] for k in keys if k.startswith("w")]
            optimizer = [data[k] for k in keys if k.startswith("o")]
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"Checkpoint {path} cannot be read: {exc}") from exc
    return CheckpointState(weights, optimizer, meta)


def restore(state: CheckpointState, model, optimizer=None) -> None:
    model.set_weights(state.weights)
    if optimizer is not None and state.optimizer:
        for var, value in zip(optimizer.variables, state.optimizer):
            var.assign(value)
