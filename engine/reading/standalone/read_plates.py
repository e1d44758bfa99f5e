#!/usr/bin/env python3
"""Read licence plates with this bundle's model: no TensorFlow, only LiteRT, numpy and Pillow.

    pip install ai-edge-litert==2.3.0 numpy==2.4.6 pillow==13.0.0
    python read_plates.py photos/ > readings.csv        # a folder, a zip, or photo files
    python read_plates.py a.jpg b.png --model export/ --threads 2 -o readings.csv

One CSV row per photo, in the order given (a folder is walked in name order):

    file          the photo's name (relative to the folder, or its name in the zip)
    reading       the plate text the model read ("" when it read nothing or the photo is unusable)
    confidence    the probability of the whole reading (0-1)
    accepted      True/False: confidence at or above the threshold chosen for this model;
                  empty when no threshold was chosen (reader.json "threshold": null)
    name_says     the plate text in the file name (`34FK4522_1.jpg` -> 34FK4522), when it is one
    matches_name  True/False: reading == name_says (empty when the name is not a plate text)
    problem       why a photo could not be read (not a picture, damaged, too large); the rest go on

The model files are export/model.tflite and export/reader.json next to this script (or --model).
(One file on purpose, hence its length: it is copied into every download bundle on its own.)
It reads on every core (--threads), 16 photos per model call (--batch); the exit status is 1 when
a photo could not be read (see its problem), 0 otherwise.

The photo is prepared exactly as the engine prepares it for training and for predictions.csv
(OpenCV's imdecode(IMREAD_GRAYSCALE) and engine/model/preprocess.py fit_to_box), re-done here
with Pillow and numpy so the readings are the same:

* JPEG: libjpeg's own grayscale output (the Y channel), which Pillow's "L" draft also asks for.
* PNG: libpng's RGB->gray as OpenCV asks for it: (9797 R + 19234 G + 3737 B) >> 15, through
  libpng's 8-bit gamma tables when the file has a gAMA or sRGB chunk.
  BMP: OpenCV's 14-bit weights (4899, 9617, 1868); WebP: cvtColor's 15-bit ones (9798, 19235, 3735).
* EXIF orientation (phone photos) is applied, as OpenCV does for JPEG, PNG and WebP.
* Fit: scaled to the model's box keeping the aspect ratio (OpenCV's INTER_AREA when shrinking,
  INTER_LINEAR when enlarging, both in OpenCV's uint8 arithmetic), standardised as
  (x - mean) / max(std, 8), zero-padded, image at the left, centred vertically.
* Views: a photo whose reading is less sure than reader.json "view_gate" is read again as given,
  cropped tighter and framed looser ("views", in percent of its height and width), and the model
  averages the characters' probabilities over the views. `--fast` reads the photo as given only.
"""
from __future__ import annotations

import argparse
import csv
import functools
import io
import json
import os
import queue
import sys
import threading
import time
import unicodedata
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np
from PIL import Image

REQUIREMENTS = ("ai-edge-litert==2.3.0", "numpy==2.4.6", "pillow==13.0.0")  # what this file is tested with
COLUMNS = ["file", "reading", "confidence", "accepted", "name_says", "matches_name", "problem"]
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")
FORMATS = ("JPEG", "PNG", "BMP", "WEBP")
# The engine's limits (engine/data/images.py): far above any plate photo, below a "pixel bomb".
MAX_SIDE, MAX_PIXELS = 8000, 16_000_000
MAX_FILE_BYTES = 64 * 1024 * 1024
MIN_STD = 8.0  # fit_to_box: (x - mean) / max(std, 8)
ORIENTATION = 0x0112  # the EXIF tag
SRGB_GAMMA = 45455  # libpng's gamma for an sRGB chunk, in its fixed point (x 100000)


# --- photos: files, folders and zips -----------------------------------------------------------
@dataclass
class Photo:
    name: str  # as the operator knows it: relative path in the folder, name in the zip, or file name
    load: Callable[[], bytes]
    problem: str | None = None  # known before reading: not an image by its name, too big


def _hidden(name: str) -> bool:
    """Hidden files, macOS resource forks and Windows thumbnails are skipped, as the engine does."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return any(p.startswith(".") or p.lower() in ("thumbs.db", "desktop.ini", "__macosx") for p in parts)


def _photo(name: str, load: Callable[[], bytes], size: int) -> Photo:
    if Path(name).suffix.lower() not in IMAGE_EXTENSIONS:
        return Photo(name, load, f"not an image file: only {', '.join(IMAGE_EXTENSIONS)} pictures are read")
    if size > MAX_FILE_BYTES:
        return Photo(name, load, f"the file is {size / 2**20:.1f} MiB, more than the {MAX_FILE_BYTES // 2**20} MiB allowed")
    return Photo(name, load)


def _zip_photos(path: Path) -> list[Photo]:
    archive = zipfile.ZipFile(path)  # stays open while the photos are read
    lock = threading.Lock()  # the members share one file handle

    def loader(info: zipfile.ZipInfo) -> Callable[[], bytes]:
        def load() -> bytes:
            with lock, archive.open(info) as f:
                return f.read(MAX_FILE_BYTES + 1)
        return load

    return [_photo(i.filename, loader(i), i.file_size) for i in archive.infolist()
            if not i.is_dir() and not _hidden(i.filename)]


def list_photos(sources: Sequence[str]) -> list[Photo]:
    """Every photo of the given files, folders (walked in name order) and zips."""
    photos: list[Photo] = []
    for source in sources:
        path = Path(source).expanduser()
        if path.is_dir():
            files = sorted(p for p in path.rglob("*") if p.is_file() and not _hidden(p.relative_to(path).as_posix()))
            photos += [_photo(p.relative_to(path).as_posix(), p.read_bytes, p.stat().st_size) for p in files]
        elif path.suffix.lower() == ".zip" and zipfile.is_zipfile(path):
            photos += _zip_photos(path)
        elif path.is_file():
            photos.append(_photo(path.name, path.read_bytes, path.stat().st_size))
        else:
            photos.append(Photo(str(source), lambda: b"", "file not found"))
    return photos


# --- decoding: what OpenCV's imdecode(IMREAD_GRAYSCALE) gives -----------------------------------
def _weighted_gray(rgb: np.ndarray, weights: tuple[int, int, int], shift: int, rounding: int) -> np.ndarray:
    x = rgb[..., :3].astype(np.int32)
    return ((x[..., 0] * weights[0] + x[..., 1] * weights[1] + x[..., 2] * weights[2] + rounding) >> shift).astype(np.uint8)


def _png_gamma_table(gamma: int) -> np.ndarray:
    """libpng's png_build_8bit_table: floor(255 * (i / 255) ** (gamma / 100000) + 0.5), ends fixed."""
    i = np.arange(256, dtype=np.float64)
    table = np.floor(255.0 * np.power(i / 255.0, gamma * 1e-5) + 0.5)
    table[0], table[255] = 0, 255
    return table.astype(np.uint8)


def _png_gray(rgb: np.ndarray, gamma: int | None) -> np.ndarray:
    """libpng's png_do_rgb_to_gray with OpenCV's coefficients (0.299, 0.587 -> 9797, 19234 of 32768).

    With a file gamma (gAMA or sRGB chunk) libpng mixes in linear light through 8-bit tables;
    its screen gamma then defaults to the file's, so grays (R = G = B) come out unchanged.
    """
    if gamma is None or abs(gamma - 100000) < 5000:  # png_gamma_significant: no tables
        return _weighted_gray(rgb, (9797, 19234, 3737), 15, 0)
    to_linear = _png_gamma_table(int(np.floor(1e10 / gamma + 0.5)))  # png_reciprocal
    from_linear = _png_gamma_table(gamma)
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    mixed = from_linear[_weighted_gray(to_linear[rgb[..., :3]], (9797, 19234, 3737), 15, 16384)]
    return np.where((r == g) & (g == b), r, mixed)


def _png_file_gamma(im: Image.Image) -> int | None:
    if "srgb" in im.info:
        return SRGB_GAMMA
    return None if "gamma" not in im.info else int(round(im.info["gamma"] * 100000))


def _to_gray(im: Image.Image) -> np.ndarray:
    """The decoded picture as OpenCV's IMREAD_GRAYSCALE gives it, before EXIF orientation."""
    if im.format == "JPEG":
        if im.mode == "CMYK":  # OpenCV: libjpeg's raw CMYK (Pillow inverts Adobe's), then to RGB and gray
            cmyk = np.asarray(im).astype(np.int32)
            cmyk = 255 - cmyk if "adobe" in im.info else cmyk
            k = cmyk[..., 3:]
            rgb = k - (((255 - cmyk[..., :3]) * k) >> 8)
            return _weighted_gray(rgb, (4899, 9617, 1868), 14, 8192)
        return np.asarray(im)  # the "L" draft: libjpeg's Y channel
    if im.mode in ("I;16", "I;16B", "I;16L", "I"):  # 16-bit gray: libpng keeps the high byte
        return (np.asarray(im).astype(np.int64) >> 8).astype(np.uint8)
    if im.mode in ("1", "L", "LA", "La"):
        return np.asarray(im.convert("L"))
    rgb = np.asarray(im.convert("RGB"))
    if im.format == "PNG":
        return _png_gray(rgb, _png_file_gamma(im))
    if im.format == "BMP":
        return _weighted_gray(rgb, (4899, 9617, 1868), 14, 8192)
    return _weighted_gray(rgb, (9798, 19235, 3735), 15, 16384)  # WebP: decoded to BGR, then cvtColor


# EXIF orientations 2-8 (1 is upright): mirrored, upside down, turned a quarter either way
TURNS: dict[int, Callable[[np.ndarray], np.ndarray]] = {
    2: lambda g: g[:, ::-1], 3: lambda g: g[::-1, ::-1], 4: lambda g: g[::-1], 5: lambda g: g.T,
    6: lambda g: np.rot90(g, -1), 7: lambda g: g[::-1, ::-1].T, 8: lambda g: np.rot90(g, 1)}


def _orient(gray: np.ndarray, orientation: int) -> np.ndarray:
    """The photo turned upright by its EXIF orientation, as OpenCV does while decoding."""
    turn = TURNS.get(orientation)
    return gray if turn is None else np.ascontiguousarray(turn(gray))


def _sniff(data: bytes) -> str | None:
    """The picture format from its first bytes, for a file Pillow cannot even open."""
    magics = {b"\xff\xd8\xff": "JPEG", b"\x89PNG\r\n\x1a\n": "PNG", b"BM": "BMP"}
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return next((kind for magic, kind in magics.items() if data.startswith(magic)), None)


def decode_gray(data: bytes) -> np.ndarray:
    """Encoded photo -> 2-D uint8 grayscale, as engine/data/images.decode_gray returns it.

    Raises ValueError with a plain reason for anything that is not a readable picture within the limits.
    """
    if not data:
        raise ValueError("the file is empty (0 bytes)")
    try:
        im = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError:
        raise ValueError(f"the image is too large (its header claims more than 180 megapixels; at most "
                         f"{MAX_PIXELS // 1_000_000} megapixels are read)") from None
    except Exception:  # Pillow raises many types for something that is not a picture
        kind = _sniff(data)
        if kind:
            raise ValueError(f"the {kind} image is damaged or incomplete and cannot be decoded") from None
        raise ValueError("not an image: the content is not a JPEG, PNG, BMP or WebP picture") from None
    if im.format not in FORMATS:
        raise ValueError(f"{im.format} files are not supported: save it as JPEG or PNG")
    width, height = im.size
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        raise ValueError(f"the image is too large ({width}x{height} pixels; at most {MAX_SIDE} a side "
                         f"and {MAX_PIXELS // 1_000_000} megapixels)")
    if im.format == "JPEG":
        im.draft("L", im.size)  # libjpeg converts to gray itself, at full size
    try:
        im.load()
        gray = _to_gray(im)
        orientation = im.getexif().get(ORIENTATION, 1) if im.format != "BMP" else 1
    except Exception:
        raise ValueError(f"the {im.format} image is damaged or incomplete and cannot be decoded") from None
    return _orient(gray, orientation)


# --- fitting into the model's box: OpenCV's uint8 resize, operation for operation ----------------
@functools.lru_cache(maxsize=256)  # photos from one camera or detector come in a few sizes
def _area_taps(ssize: int, dsize: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's computeResizeAreaTab: source indices and float32 weights [taps, dsize], tap by tap
    (unused taps weigh 0, which adds nothing)."""
    scale = 1.0 / (dsize / ssize)
    fs1 = np.arange(dsize) * scale
    fs2 = fs1 + scale
    cell = np.minimum(scale, ssize - fs1)
    s2 = np.minimum(np.floor(fs2), ssize - 1)
    s1 = np.minimum(np.ceil(fs1), s2)
    src = (s1 - 1)[:, None] + np.arange(int(np.ceil(scale)) + 2)
    first = np.where(s1 - fs1 > 1e-3, (s1 - fs1) / cell, 0.0)[:, None] * (src == (s1 - 1)[:, None])
    middle = (1.0 / cell)[:, None] * ((src >= s1[:, None]) & (src < s2[:, None]))
    last_w = np.where(fs2 - s2 > 1e-3, np.minimum(np.minimum(fs2 - s2, 1.0), cell) / cell, 0.0)
    last = last_w[:, None] * (src == s2[:, None])
    index = np.ascontiguousarray(np.clip(src, 0, ssize - 1).astype(np.intp).T)
    return index, np.ascontiguousarray((first + middle + last).astype(np.float32).T)


def _resize_area(gray: np.ndarray, new_h: int, new_w: int) -> np.ndarray:
    """cv2.resize(INTER_AREA) of uint8 when shrinking."""
    h, w = gray.shape
    scale_x, scale_y = 1.0 / (new_w / w), 1.0 / (new_h / h)
    if abs(scale_x - round(scale_x)) < sys.float_info.epsilon and abs(scale_y - round(scale_y)) < sys.float_info.epsilon:
        # whole factors (OpenCV's test, in doubles): block sums; 2x2 rounds half up, the others are
        # multiplied by 1/area in float32 and rounded half to even
        fy, fx = round(scale_y), round(scale_x)
        sums = gray[: new_h * fy, : new_w * fx].reshape(new_h, fy, new_w, fx).sum(axis=(1, 3), dtype=np.int32)
        if fx == fy == 2:
            return ((sums + 2) >> 2).astype(np.uint8)
        return np.clip(np.rint(sums.astype(np.float32) * np.float32(1.0 / (fx * fy))), 0, 255).astype(np.uint8)
    # Across, then down, in float32: each output is the sum of weight x source over the taps, added
    # in tap order (OpenCV's order, so the rounding is OpenCV's too). The taps are the outer axis of
    # one gather, so numpy adds them one after another (never pairwise) and three calls do a pass.
    index, weight = _area_taps(w, new_w)
    across = np.add.reduce(gray[:, index] * weight, axis=1)  # [h, taps, new_w] -> [h, new_w]
    index, weight = _area_taps(h, new_h)
    down = np.add.reduce(across[index] * weight[:, :, None], axis=0)  # [taps, new_h, new_w] -> [new_h, new_w]
    return np.clip(np.rint(down), 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=256)
def _linear_taps(ssize: int, dsize: int, clamp_weights: bool) -> tuple[np.ndarray, ...]:
    """Source indices and 11-bit fixed-point weights of OpenCV's INTER_LINEAR (half-pixel centres)."""
    f = ((np.arange(dsize) + 0.5) * (1.0 / (dsize / ssize)) - 0.5).astype(np.float32)
    s = np.floor(f)
    f = f - s
    s = s.astype(np.intp)
    if clamp_weights:  # columns: OpenCV pins the weights at the borders; rows only clamp the index
        f = np.where((s < 0) | (s >= ssize - 1), np.float32(0), f)
    a0 = np.rint((np.float32(1) - f) * np.float32(2048)).astype(np.int32)
    a1 = np.rint(f * np.float32(2048)).astype(np.int32)
    return np.clip(s, 0, ssize - 1), np.clip(s + 1, 0, ssize - 1), a0, a1


def _resize_linear(gray: np.ndarray, new_h: int, new_w: int) -> np.ndarray:
    """cv2.resize(INTER_LINEAR) of uint8 when enlarging: fixed-point rows, then OpenCV's vertical pass."""
    h, w = gray.shape
    src = gray.astype(np.int32)
    x0, x1, a0, a1 = _linear_taps(w, new_w, clamp_weights=True)
    y0, y1, b0, b1 = _linear_taps(h, new_h, clamp_weights=False)
    rows = src[:, x0] * a0 + src[:, x1] * a1
    out = (((rows[y0] >> 4) * b0[:, None]) >> 16) + (((rows[y1] >> 4) * b1[:, None]) >> 16)
    return np.clip((out + 2) >> 2, 0, 255).astype(np.uint8)


def view(gray: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """engine/model/preprocess.py view: cropped (percents <= 0) or framed with repeated edge pixels (>= 0)."""
    h, w = gray.shape
    dy, dx = h * abs(rows) // 100, w * abs(columns) // 100
    if rows <= 0 and columns <= 0:
        return gray[dy : h - dy, dx : w - dx]
    return np.pad(gray, ((dy, dy), (dx, dx)), mode="edge")


def fit_views(gray: np.ndarray, height: int, width: int, views: Sequence[Sequence[int]]) -> np.ndarray:
    """2-D uint8 photo -> [len(views), height, width, 1] float32 model inputs (preprocess.fit_views)."""
    return np.stack([fit_to_box(view(gray, rows, columns), height, width) for rows, columns in views])


def fit_to_box(gray: np.ndarray, height: int, width: int) -> np.ndarray:
    """2-D uint8 photo -> [height, width, 1] float32 model input (engine/model/preprocess.py fit_to_box)."""
    h, w = gray.shape
    scale = min(height / h, width / w)
    new_w = max(1, min(width, int(round(w * scale))))
    new_h = max(1, min(height, int(round(h * scale))))
    if (new_h, new_w) == (h, w):
        resized = gray
    elif scale < 1:
        resized = _resize_area(gray, new_h, new_w)
    else:
        resized = _resize_linear(gray, new_h, new_w)
    resized = resized.astype(np.float32)
    # per-image standardisation, in float32 exactly as the engine computes it
    mean, std = float(resized.mean()), float(resized.std())
    out = np.zeros((height, width, 1), np.float32)
    top = (height - new_h) // 2
    out[top : top + new_h, :new_w, 0] = (resized - mean) / max(std, MIN_STD)
    return out


# --- the model -----------------------------------------------------------------------------------
@dataclass
class Reading:
    text: str
    confidence: float  # probability of the whole plate: its characters' and the end's


class PlateModel:
    """model.tflite + reader.json. `read(images)` for prepared inputs, `read_photos(photos)` for files.

    Each of `threads` interpreters runs on one core (XNNPACK, one thread each): a batch is cut into
    chunks that the interpreters decode, fit and read side by side; one photo uses one interpreter,
    which is fastest for a single plate.
    """

    def __init__(self, folder: Path, threads: int = 1, chunk: int = 16, fast: bool = False):
        from ai_edge_litert.interpreter import Interpreter

        info = json.loads((folder / "reader.json").read_text(encoding="utf-8"))
        self.height, self.width = int(info["height"]), int(info["width"])
        views = [tuple(v) for v in info.get("views") or [(0, 0)]]
        self.views = views[:1] if fast else views  # the first view is the photo as given
        self.gate = float(info.get("view_gate", 1.0))
        self.charset: str = info["charset"]  # token 0 is "end", token i is charset[i - 1]
        self.threshold: float | None = info.get("threshold")
        self.chunk = chunk
        content = (folder / "model.tflite").read_bytes()
        self._idle: queue.SimpleQueue = queue.SimpleQueue()
        for _ in range(max(1, threads)):
            self._idle.put(_Runner(Interpreter(model_content=content, num_threads=1)))
        self._pool = ThreadPoolExecutor(max(1, threads)) if threads > 1 else None

    def read(self, images: np.ndarray) -> list[Reading]:
        """images [N, V, height, width, 1] float32 (fit_views) -> one Reading each, on one interpreter."""
        runner = self._idle.get()
        try:
            out = runner(images)
        finally:
            self._idle.put(runner)
        return [Reading(self._text(ids, n), float(p)) for ids, n, p in zip(out["ids"], out["length"], out["confidence"])]

    def _text(self, ids: np.ndarray, length: int) -> str:
        return "".join(self.charset[t - 1] for t in ids[:length] if 0 < t <= len(self.charset))

    def read_photos(self, photos: Sequence[Photo]) -> Iterator[Reading | Exception]:
        """A Reading, or the reason it could not be read, per photo, in order."""
        chunks = [photos[i : i + self.chunk] for i in range(0, len(photos), self.chunk)]
        results = self._pool.map(self._read_chunk, chunks) if self._pool else map(self._read_chunk, chunks)
        for result in results:
            yield from result

    def _read_chunk(self, photos: Sequence[Photo]) -> list[Reading | Exception]:
        grays: list[np.ndarray | Exception] = []
        for photo in photos:
            try:
                if photo.problem:
                    raise ValueError(photo.problem)
                grays.append(decode_gray(_load(photo)))
            except (OSError, ValueError) as exc:
                grays.append(exc)
        good = [x for x in grays if isinstance(x, np.ndarray)]
        first = [fit_to_box(g, self.height, self.width)[None] for g in good]  # the first view: the photo as given
        readings = self.read(np.stack(first)) if good else []
        unsure = [i for i, r in enumerate(readings) if r.confidence < self.gate] if len(self.views) > 1 else []
        if unsure:  # read again in every view, averaged (the first one is fitted already)
            again = self.read(np.stack([np.concatenate([first[i], fit_views(good[i], self.height, self.width, self.views[1:])])
                                        for i in unsure]))
            for i, reading in zip(unsure, again):
                readings[i] = reading
        results = iter(readings)
        return [x if isinstance(x, Exception) else next(results) for x in grays]


def _load(photo: Photo) -> bytes:
    data = photo.load()
    if len(data) > MAX_FILE_BYTES:  # a file may grow between listing and reading
        raise ValueError(f"the file is larger than the {MAX_FILE_BYTES // 2**20} MiB allowed")
    return data


class _Runner:
    """One interpreter, resized only when the shape of its input (photos, views) changes."""

    def __init__(self, interpreter):
        signature = interpreter.get_signature_runner()
        self.interpreter = interpreter
        self.input = signature.get_input_details()["images"]["index"]
        self.outputs = {name: d["index"] for name, d in signature.get_output_details().items()
                        if name in ("ids", "length", "confidence")}
        self.shape = None

    def __call__(self, images: np.ndarray) -> dict[str, np.ndarray]:
        if self.shape != images.shape:
            self.interpreter.resize_tensor_input(self.input, images.shape)
            self.interpreter.allocate_tensors()
            self.shape = images.shape
        self.interpreter.set_tensor(self.input, np.ascontiguousarray(images, np.float32))
        self.interpreter.invoke()
        return {name: self.interpreter.get_tensor(index) for name, index in self.outputs.items()}


# --- the CSV ---------------------------------------------------------------------------------------
def name_says(name: str) -> str:
    """The plate text of a file name (`34FK4522_1.jpg` -> `34FK4522`), or "" when it is not one."""
    stem = Path(name.replace("\\", "/")).stem.split("_", 1)[0]
    label = unicodedata.normalize("NFC", stem).strip().upper()
    looks_like_plate = label.isalnum() and any(c.isdigit() for c in label) and len(label) <= 16
    return label if looks_like_plate else ""


def _cell(value: object) -> object:
    """A cell a spreadsheet shows as text: a leading = + - @ would make it a formula."""
    if isinstance(value, str) and value.startswith(("=", "+", "-", "@", "\t", "\r")):
        return "'" + value
    return "" if value is None else value


def row(photo: Photo, reading: Reading | Exception, threshold: float | None) -> list:
    named = name_says(photo.name)
    if isinstance(reading, Exception):
        values = [photo.name, "", None, None, named, None, str(reading)]
    else:
        accepted = None if threshold is None else reading.confidence >= threshold
        values = [photo.name, reading.text, f"{reading.confidence:.4f}", accepted, named,
                  (reading.text == named) if named else None, ""]
    return [_cell(v) for v in values]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Read licence plates into a CSV (see the top of this file).")
    parser.add_argument("photos", nargs="+", help="photo files, folders of photos, or zips")
    parser.add_argument("--model", type=Path, default=Path(__file__).resolve().parent / "export",
                        help="folder with model.tflite and reader.json (default: export/ next to this file)")
    parser.add_argument("-o", "--output", type=Path, help="write the CSV here instead of to standard output")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="cores to read on (default: all)")
    parser.add_argument("--batch", type=int, default=16, help="photos per model call (default: 16)")
    parser.add_argument("--fast", action="store_true",
                        help="read each photo as given only, never again cropped and framed when unsure: a little faster, a little less accurate")
    args = parser.parse_args(argv)

    started = time.perf_counter()
    model = PlateModel(args.model, threads=args.threads, chunk=max(1, args.batch), fast=args.fast)
    photos = list_photos(args.photos)
    out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
    if out is sys.stdout:
        sys.stdout.reconfigure(encoding="utf-8", newline="")
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    failures = 0
    for photo, reading in zip(photos, model.read_photos(photos)):
        failures += isinstance(reading, Exception)
        writer.writerow(row(photo, reading, model.threshold))
    if out is not sys.stdout:
        out.close()
    print(f"read {len(photos) - failures} of {len(photos)} photos in {time.perf_counter() - started:.1f} s"
          + (f"; {failures} could not be read (see the problem column)" if failures else ""), file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
