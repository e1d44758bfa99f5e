"""Single-file checkpoints: weights saved and restored BY NAME, with the optimizer state and metadata.

One .npz written atomically: a kill during a save leaves the previous checkpoint untouched. Keys
are the variables' paths inside the model ("cnn/c1_conv/kernel"), so a change in layer order
never silently puts weights in the wrong place: a checkpoint that does not fit the model is
refused with the names that differ. `transplant` starts a new model from another one (the
starter, or a previous run) whose characters or number of slots differ.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.model.charset import Charset
from engine.storage.files import atomic_write_bytes, remove_stale_temp_files

WEIGHT, AVERAGE, OPTIMIZER = "w:", "a:", "o:"


class CheckpointMismatch(ValueError):
    """The checkpoint was made for a different network than the one it is loaded into."""


@dataclass
class CheckpointState:
    weights: dict[str, np.ndarray]
    meta: dict
    averaged: dict[str, np.ndarray] = field(default_factory=dict)  # moving average of the weights
    optimizer: dict[str, np.ndarray] = field(default_factory=dict)


def variable_key(variable, model) -> str:
    """A variable's path inside the model, without the model's own name."""
    path = variable.path
    prefix = f"{model.name}/"
    return path[len(prefix):] if path.startswith(prefix) else path


def model_weights(model) -> dict[str, np.ndarray]:
    return {variable_key(v, model): np.asarray(v.numpy()) for v in model.weights}


def save(path: str | os.PathLike, model, meta: dict, *, averaged: dict[str, np.ndarray] | None = None,
         optimizer=None, weights: dict[str, np.ndarray] | None = None) -> None:
    """Write a checkpoint: `weights` (default: the model's own), the moving average and the optimizer's state."""
    arrays = {WEIGHT + k: v for k, v in (weights if weights is not None else model_weights(model)).items()}
    arrays.update({AVERAGE + k: v for k, v in (averaged or {}).items()})
    if optimizer is not None:
        arrays.update({OPTIMIZER + v.path: np.asarray(v.numpy()) for v in optimizer.variables})
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode("utf-8"), np.uint8)
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    remove_stale_temp_files(path)


def load(path: str | os.PathLike) -> CheckpointState:
    """Read a checkpoint; ValueError naming the file when it is unreadable."""
    try:
        with np.load(Path(path), allow_pickle=False) as data:
            meta = json.loads(bytes(data["meta"]).decode("utf-8"))
            groups = {WEIGHT: {}, AVERAGE: {}, OPTIMIZER: {}}
            for key in data.files:
                if key[:2] in groups:
                    groups[key[:2]][key[2:]] = data[key]
    except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise ValueError(f"Checkpoint {path} cannot be read: {exc}") from exc
    if not groups[WEIGHT]:
        raise ValueError(f"Checkpoint {path} holds no weights (made by an older version of Plate OCR Studio?).")
    return CheckpointState(groups[WEIGHT], meta, groups[AVERAGE], groups[OPTIMIZER])


def _check_fit(saved: dict[str, np.ndarray], model) -> None:
    wanted = {variable_key(v, model): tuple(v.shape) for v in model.weights}
    have = {k: tuple(v.shape) for k, v in saved.items()}
    missing = sorted(set(wanted) - set(have))
    extra = sorted(set(have) - set(wanted))
    wrong = sorted(k for k in set(wanted) & set(have) if wanted[k] != have[k])
    if missing or extra or wrong:
        parts = [f"{label}: {', '.join(names[:5])}{' ...' if len(names) > 5 else ''}"
                 for label, names in (("missing", missing), ("unexpected", extra), ("different shape", wrong)) if names]
        raise CheckpointMismatch("The checkpoint does not fit this model (" + "; ".join(parts) + ").")


def restore(model, weights: dict[str, np.ndarray]) -> None:
    """Put `weights` (by name) into the model; CheckpointMismatch if any name or shape differs."""
    _check_fit(weights, model)
    for v in model.weights:
        v.assign(weights[variable_key(v, model)])


def restore_optimizer(optimizer, saved: dict[str, np.ndarray]) -> None:
    """The optimizer's moments and step count, by name (after `optimizer.build`)."""
    for v in optimizer.variables:
        if v.path in saved and tuple(saved[v.path].shape) == tuple(v.shape):
            v.assign(saved[v.path])


def transplant(weights: dict[str, np.ndarray], source: Charset, model, target: Charset) -> dict[str, np.ndarray]:
    """`weights` of a model that read `source`, reshaped for `model`, which reads `target`.

    Every layer is kept as it is, except: the classifier's rows follow the characters (a known
    character keeps its trained row; a new one starts from the average row, slightly below it so
    it is not predicted before it is learned), and the slot queries are cut or extended (new
    slots start as copies of the last one) when the longest plate text differs.
    """
    out = {}
    shapes = {variable_key(v, model): tuple(v.shape) for v in model.weights}
    for key, shape in shapes.items():
        value = weights.get(key)
        if value is None:
            raise CheckpointMismatch(f"The starting model has no weights for {key}: it is a different network.")
        if key.endswith("classifier/kernel") or key.endswith("classifier/bias"):
            value = _map_classes(value, source, target)
        elif key.endswith("slot_queries"):
            value = _fit_slots(value, shape[0])
        if tuple(value.shape) != shape:
            raise CheckpointMismatch(f"The starting model's {key} has shape {tuple(value.shape)}, this model needs {shape}.")
        out[key] = value
    return out


def _map_classes(value: np.ndarray, source: Charset, target: Charset) -> np.ndarray:
    """Classifier kernel [D, V] or bias [V]: columns re-ordered from `source` tokens to `target` tokens."""
    kernel = value.ndim == 2
    columns = value if kernel else value[None, :]
    known = columns[:, 1:]  # characters (column 0 is "end")
    mean = known.mean(axis=1)
    out = np.empty((columns.shape[0], target.vocab_size), columns.dtype)
    out[:, 0] = columns[:, 0]
    for i, char in enumerate(target.chars, start=1):
        j = source.chars.find(char)
        if j >= 0:
            out[:, i] = columns[:, j + 1]
        else:
            out[:, i] = mean if kernel else mean - 1.0
    return out if kernel else out[0]


def _fit_slots(queries: np.ndarray, slots: int) -> np.ndarray:
    if len(queries) >= slots:
        return queries[:slots].copy()
    extra = np.repeat(queries[-1:], slots - len(queries), axis=0)
    return np.concatenate([queries, extra], axis=0)
