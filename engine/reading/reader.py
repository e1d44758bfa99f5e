"""Reading plates with a trained model: `PlateReader.load(path).read(images)`.

`path` may be a run folder (its best or last checkpoint), a checkpoint .npz, an export folder or a
download bundle zip, so the same reader serves the CLI, the dashboard and a deployed bundle.
"""
from __future__ import annotations

import json
import os
import tempfile
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from engine.data.images import decode_gray
from engine.model import checkpoint as ckpt
from engine.model.charset import Charset
from engine.model.preprocess import VIEW_GATE, VIEWS, Placement, fit_to_box, fit_views
from engine.reading.threshold import load_threshold
from engine.storage.runfolder import RunFolder

_POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))


@dataclass
class Reading:
    text: str
    confidence: float  # probability of the whole plate: product of the characters' and the end's
    char_confidences: list[float]
    attention: np.ndarray = field(repr=False)  # [len(text) + 1, rows, columns]: each character, then the end
    placement: Placement | None = field(default=None, repr=False)  # where the photo sat in the model input
    image_size: tuple[int, int] = (0, 0)  # original (width, height)
    accepted: bool | None = None  # confidence above the run's threshold (None: no threshold chosen)


def _prepare(image, height: int, width: int):
    gray = decode_gray(image)
    x, place = fit_to_box(gray, height, width)
    return x[None], place, (gray.shape[1], gray.shape[0]), gray


class PlateReader:
    """Reads each photo as given, and again in all `views` when that reading is less sure than
    `gate` (preprocess.VIEWS and VIEW_GATE; `views=VIEWS[:1]` reads the photo as given only)."""

    def __init__(self, model, charset: Charset, threshold: float | None = None,
                 views: tuple[tuple[int, int], ...] = VIEWS, gate: float = VIEW_GATE):
        import tensorflow as tf

        from engine.model.network import read_views

        self.model, self.charset, self.threshold = model, charset, threshold
        self.views, self.gate = tuple(views), gate
        self.height, self.width = model.height, model.width
        self.grid = model.grid

        @tf.function(input_signature=[tf.TensorSpec([None, None, self.height, self.width, 1], tf.float32)])
        def infer(images):
            return read_views(model, images)

        self._infer = infer

    # loading -----------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike, checkpoint: str = "best") -> "PlateReader":
        path = Path(path)
        if path.is_file() and path.suffix == ".zip":
            return cls._from_bundle(path)
        if path.is_file():
            return cls.from_checkpoint(path)
        if (path / "checkpoints").is_dir():
            chosen = RunFolder(path).checkpoint(checkpoint)
            chosen = chosen if chosen.exists() else RunFolder(path).model_checkpoint()
            if chosen is None:
                raise FileNotFoundError(f"{path} has no trained model yet (no checkpoint in {path / 'checkpoints'}).")
            return cls.from_checkpoint(chosen, load_threshold(path))
        for candidate in (path, path / "export"):
            if (candidate / "model.keras").exists():
                return cls.from_keras(candidate)
        raise FileNotFoundError(f"No model found at {path}: expected a run folder, an export folder or a bundle zip.")

    @classmethod
    def from_checkpoint(cls, path: Path, threshold: float | None = None) -> "PlateReader":
        from engine.model.network import build_model

        state = ckpt.load(path)
        config = state.meta["model"]
        if "vocab_size" not in config:
            raise ValueError(f"{path} was made by an older version of Plate OCR Studio and cannot be read by this one.")
        model = build_model(config["vocab_size"], config["slots"], config["height"], config["width"], config.get("architecture"))
        ckpt.restore(model, state.weights)
        return cls(model, Charset(state.meta["charset"]), threshold)

    @classmethod
    def from_keras(cls, folder: Path) -> "PlateReader":
        import keras

        import engine.model.network  # noqa: F401 - registers PlateNet for deserialisation

        model = keras.saving.load_model(folder / "model.keras", compile=False)
        info = json.loads((folder / "reader.json").read_text(encoding="utf-8"))
        views = tuple(tuple(v) for v in info["views"]) if info.get("views") else VIEWS
        return cls(model, Charset(info["charset"]), info.get("threshold"), views, info.get("view_gate", VIEW_GATE))

    @classmethod
    def _from_bundle(cls, path: Path) -> "PlateReader":
        with zipfile.ZipFile(path) as zf, tempfile.TemporaryDirectory() as tmp:
            names = [n for n in zf.namelist() if n.endswith(("/model.keras", "/reader.json"))]
            if len(names) < 2:
                raise ValueError(f"{path.name} is not a Plate OCR Studio bundle (no model.keras / reader.json).")
            for name in names:
                (Path(tmp) / Path(name).name).write_bytes(zf.read(name))
            return cls.from_keras(Path(tmp))

    # reading -----------------------------------------------------------------------------------
    def read(self, images: Sequence[bytes | np.ndarray], batch_size: int = 256) -> list[Reading]:
        """Read each image (encoded bytes or a decoded array). Undecodable input raises ValueError.

        Large inputs are pipelined: the next batch is decoded in worker threads while the model
        reads the current one (TensorFlow and OpenCV release the GIL), so both cores stay busy.
        """
        prepare = lambda im: _prepare(im, self.height, self.width)  # noqa: E731
        chunks = [images[i : i + batch_size] for i in range(0, len(images), batch_size)]
        if len(images) <= 8:  # a few plates: threads cost more than they save
            pending = [[prepare(im) for im in chunk] for chunk in chunks]
        else:
            pending = [[_POOL.submit(prepare, im) for im in chunk] for chunk in chunks[:1]]
        readings: list[Reading] = []
        for k in range(len(chunks)):
            if len(images) > 8 and k + 1 < len(chunks):
                pending.append([_POOL.submit(prepare, im) for im in chunks[k + 1]])
            prepared = [p.result() if hasattr(p, "result") else p for p in pending[k]]
            pending[k] = []
            out = self._run(np.stack([p[0] for p in prepared]))
            unsure = np.flatnonzero(out["confidence"] < self.gate) if len(self.views) > 1 else []
            if len(unsure):  # read again in every view, averaged (the first, the photo as given, is fitted already)
                again = self._run(np.stack([np.concatenate([prepared[i][0], fit_views(prepared[i][3], self.height, self.width,
                                                                                      self.views[1:])[0]]) for i in unsure]))
                for key, value in again.items():
                    out[key][unsure] = value
            for row, (_, place, size, _) in enumerate(prepared):
                readings.append(self._reading(out, row, place, size))
        return readings

    def _run(self, views: np.ndarray) -> dict[str, np.ndarray]:
        """[N, V, height, width, 1] -> the model's read_outputs, as numpy arrays."""
        return {key: value.numpy() for key, value in self._infer(views).items()}

    def read_one(self, image: bytes | np.ndarray) -> Reading:
        return self.read([image])[0]

    def _reading(self, out: dict, row: int, place: Placement, size: tuple[int, int]) -> Reading:
        n = int(out["length"][row])
        ids, probs = out["ids"][row], out["probs"][row]
        steps = min(n + 1, len(ids))  # the characters and the end
        attention = out["attention"][row][:steps].reshape(steps, *self.grid)
        confidence = float(out["confidence"][row])
        accepted = None if self.threshold is None else confidence >= self.threshold
        return Reading(self.charset.decode(ids, n), confidence, [float(p) for p in probs[:n]], attention, place, size,
                       accepted)
