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

from engine import checkpoint as ckpt
from engine.charset import EOS, Charset
from engine.preprocess import Placement, decode_gray, fit_to_box

_POOL = ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2))


@dataclass
class Reading:
    text: str
    confidence: float  # probability of the whole plate: product of the character (and end) probabilities
    char_confidences: list[float]
    attention: np.ndarray = field(repr=False)  # [len(text) + 1, encoder steps]: one row per character, then end
    placement: Placement | None = field(default=None, repr=False)  # where the image sat in the model input
    image_size: tuple[int, int] = (0, 0)  # original (width, height)


class _done:  # noqa: N801 - a finished future, so small inputs skip the thread pool
    def __init__(self, value):
        self.value = value

    def result(self):
        return self.value


def _prepare(image, height: int, width: int):
    gray = decode_gray(image)
    x, place = fit_to_box(gray, height, width)
    return x, place, (gray.shape[1], gray.shape[0])


class PlateReader:
    def __init__(self, model, charset: Charset):
        import tensorflow as tf

        self.model, self.charset = model, charset
        self.height, self.width = model.height, model.width

        signature = [tf.TensorSpec([None, self.height, self.width, 1], tf.float32), tf.TensorSpec([None], tf.int32)]

        def _read(images, widths):
            return model((images, widths), training=False)

        self._read = tf.function(_read, input_signature=signature)
        # One plate at a time (the dashboard's "Try it", `predict`): XLA fuses the small per-step ops,
        # about 30 % faster at batch size 1. Compiled once, on first use, for batch size 1 only.
        self._read_one = tf.function(_read, input_signature=[tf.TensorSpec([1, *s.shape[1:]], s.dtype) for s in signature],
                                     jit_compile=True)

    # loading -----------------------------------------------------------------------------------
    @classmethod
    def load(cls, path: str | os.PathLike, checkpoint: str = "best") -> "PlateReader":
        path = Path(path)
        if path.is_file() and path.suffix == ".zip":
            return cls._from_bundle(path)
        if path.is_file():
            return cls.from_checkpoint(path)
        if (path / "checkpoints").is_dir():
            chosen = path / "checkpoints" / f"{checkpoint}.npz"
            if not chosen.exists():
                chosen = path / "checkpoints" / "last.npz"
            if not chosen.exists():
                raise FileNotFoundError(f"{path} has no trained model yet (no checkpoint in {path / 'checkpoints'}).")
            return cls.from_checkpoint(chosen)
        if (path / "model.keras").exists():
            return cls.from_keras(path)
        for candidate in (path / "export", path / "model"):
            if (candidate / "model.keras").exists():
                return cls.from_keras(candidate)
        raise FileNotFoundError(f"No model found at {path}: expected a run folder, an export folder or a bundle zip.")

    @classmethod
    def from_checkpoint(cls, path: Path) -> "PlateReader":
        from engine.model import build_model

        state = ckpt.load(path)
        cfg = dict(state.meta["model"])
        model = build_model(cfg.pop("num_chars"), cfg.pop("max_prediction"), cfg.pop("height"), cfg.pop("width"), **cfg)
        ckpt.restore(state, model)
        return cls(model, Charset(state.meta["charset"]))

    @classmethod
    def from_keras(cls, folder: Path) -> "PlateReader":
        import keras

        import engine.model  # noqa: F401 - registers AttentionOCR for deserialisation

        model = keras.saving.load_model(folder / "model.keras", compile=False)
        charset = json.loads((folder / "charset.json").read_text(encoding="utf-8"))["chars"]
        return cls(model, Charset(charset))

    @classmethod
    def _from_bundle(cls, path: Path) -> "PlateReader":
        with zipfile.ZipFile(path) as zf, tempfile.TemporaryDirectory() as tmp:
            names = [n for n in zf.namelist() if n.endswith(("model.keras", "charset.json"))]
            if len(names) < 2:
                raise ValueError(f"{path.name} is not a Plate OCR Studio bundle (no model.keras / charset.json).")
            for name in names:
                target = Path(tmp) / Path(name).name
                target.write_bytes(zf.read(name))
            return cls.from_keras(Path(tmp))

    # reading -----------------------------------------------------------------------------------
    def read(self, images: Sequence[bytes | np.ndarray], batch_size: int = 256) -> list[Reading]:
        """Read each image (encoded bytes or a decoded array). Undecodable input raises ValueError.

        Large inputs are pipelined: the next batch is decoded in worker threads while the model
        reads the current one (TensorFlow releases the GIL), so both cores stay busy.
        """
        prepare = lambda im: _prepare(im, self.height, self.width)  # noqa: E731
        chunks = [images[i : i + batch_size] for i in range(0, len(images), batch_size)]
        if len(images) <= 8:  # a few plates: threads cost more than they save
            pending = [[_done(prepare(im)) for im in chunk] for chunk in chunks]
        else:
            pending = [[_POOL.submit(prepare, im) for im in chunks[0]]] if chunks else []
        readings: list[Reading] = []
        for k in range(len(chunks)):
            if len(images) > 8 and k + 1 < len(chunks):
                pending.append([_POOL.submit(prepare, im) for im in chunks[k + 1]])
            prepared = [f.result() for f in pending[k]]
            pending[k] = []
            x = np.stack([p[0] for p in prepared])
            widths = np.array([p[1].width for p in prepared], np.int32)
            model = self._read_one if len(prepared) == 1 else self._read
            ids, probs, attention = (t.numpy() for t in model(x, widths))
            for row, (_, place, size) in enumerate(prepared):
                readings.append(self._reading(ids[row], probs[row], attention[row], place, size))
        return readings

    def read_one(self, image: bytes | np.ndarray) -> Reading:
        return self.read([image])[0]

    def _reading(self, ids, probs, attention, place, size) -> Reading:
        ends = np.flatnonzero(ids == EOS)
        n = int(ends[0]) if len(ends) else len(ids)
        text = self.charset.decode(ids[:n])
        steps = min(n + 1, len(ids))  # the characters and the end token
        confidence = float(np.prod(probs[:steps]))
        return Reading(text, confidence, [float(p) for p in probs[:n]], attention[:steps], place, size)
