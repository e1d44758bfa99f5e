"""Where a training starts: the starter model shipped in the repository, a previous run, or nothing.

The starter (engine/model/starter/starter.npz, float16, a few hundred KB) is made by
`python -m engine pretrain` (docs/PRETRAINING.md) on plates the project renders itself plus the
MIT-licensed Turkish training photos, and is loaded from the repository, never downloaded.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.model import checkpoint as ckpt
from engine.model.charset import Charset
from engine.storage.files import atomic_write_bytes
from engine.storage.runfolder import RunFolder

STARTER_FILE = Path(__file__).resolve().parent / "starter" / "starter.npz"


@dataclass
class StartingModel:
    """Weights to start from, with what they were trained to read."""

    weights: dict[str, np.ndarray]
    charset: Charset
    architecture: dict
    slots: int
    input_shape: tuple[int, int]
    source: str  # "starter", or the run folder it came from

    def describe(self) -> dict:
        return {"from": self.source, "characters": self.charset.chars, "slots": self.slots,
                "input": list(self.input_shape)}


class NoStartingModel(FileNotFoundError):
    """--init-from names something that holds no model."""


def starter_available() -> bool:
    return STARTER_FILE.is_file()


def load_starter(path: str | os.PathLike = STARTER_FILE) -> StartingModel:
    state = ckpt.load(path)
    weights = {k: v.astype(np.float32) for k, v in state.weights.items()}
    return _starting(weights, state.meta, "starter")


def load_run_model(run_dir: str | os.PathLike) -> StartingModel:
    """The model of a run (its best checkpoint, else its last one)."""
    found = RunFolder(run_dir).model_checkpoint()
    if found is None:
        raise NoStartingModel(f"{run_dir} has no trained model to start from (no checkpoint yet).")
    state = ckpt.load(found)
    return _starting(state.weights, state.meta, str(Path(run_dir).resolve()))


def _starting(weights: dict, meta: dict, source: str) -> StartingModel:
    model = meta.get("model") or {}
    if "vocab_size" not in model:
        raise NoStartingModel(f"{source} was made by an older version of Plate OCR Studio with another network; "
                              "start from the starter model or from scratch instead.")
    return StartingModel(weights, Charset(meta["charset"]), model.get("architecture") or {}, int(model["slots"]),
                         (int(model["height"]), int(model["width"])), source)


def starting_model(init_from: str | None) -> StartingModel | None:
    """What `--init-from` names: 'starter', 'none' (None is returned), or a run folder."""
    choice = (init_from or "starter").strip()
    if choice.lower() == "none":
        return None
    if choice.lower() == "starter":
        if not starter_available():
            raise NoStartingModel(f"The starter model {STARTER_FILE} is missing from this installation. "
                                  "Train from scratch with --init-from none, or make it with `python -m engine pretrain`.")
        return load_starter()
    if not Path(choice).is_dir():
        raise NoStartingModel(f"--init-from {choice}: expected 'starter', 'none' or a run folder.")
    return load_run_model(choice)


def save_starter(model, charset: Charset, meta: dict, path: str | os.PathLike = STARTER_FILE) -> Path:
    """Write the starter: the model's weights in float16 (half the size, no measurable loss)."""
    weights = {k: v.astype(np.float16) for k, v in ckpt.model_weights(model).items()}
    full = {**meta, "charset": charset.chars, "model": model.get_config()}
    arrays = {ckpt.WEIGHT + k: v for k, v in weights.items()}
    arrays["meta"] = np.frombuffer(json.dumps(full).encode("utf-8"), np.uint8)
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())
    return Path(path)
