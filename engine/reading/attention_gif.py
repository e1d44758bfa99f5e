"""Attention GIFs: where on the plate each character was read, as a heat map over the photo.

`attention_gif(image_bytes, reading)` -> GIF bytes (looping): frame 0 is the plate, then one frame
per character with the decoder's attention for that character drawn as a heat map over the
original photo (in both directions: a character on the second row of a two-row plate lights up
there), and the text read so far under the plate. `write_visualization(out_dir, examples,
readings)` writes aocr's `--visualize` layout: one folder per image, named by the prediction,
holding image.gif and word.txt.
"""
from __future__ import annotations

import io
import os
import re
import unicodedata
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

from engine.data.images import decode_gray
from engine.model.preprocess import STRIDE
from engine.storage.files import atomic_write_bytes

GIF_WIDTH = 280  # plates are scaled to about this width: small files, readable text
TEXT_BAND = 40  # pixels under the plate for the text read so far
HEAT = 0.55  # how strongly the heat map tints the photo where the attention is highest
FRAME_SECONDS = 0.6


def heat_map(attention_map: np.ndarray, placement, original_size: tuple[int, int]) -> np.ndarray:
    """One character's attention grid [rows, columns] -> weights over the ORIGINAL photo [h, w], max 1.

    Grid cell (r, c) covers model-input rows [8r, 8r + 8) and columns [4c, 4c + 4); the photo sits
    in the model input at rows [top, top + height) and columns [0, width), scaled by `scale`.
    """
    att = np.asarray(attention_map, np.float32)
    rows, cols = att.shape
    model_h, model_w = rows * STRIDE[0], cols * STRIDE[1]
    full = cv2.resize(att, (model_w, model_h), interpolation=cv2.INTER_LINEAR)
    ow, oh = original_size
    if placement is None or placement.scale <= 0:
        region = full
    else:
        region = full[placement.top : placement.top + placement.height, : placement.width]
    weights = cv2.resize(region, (ow, oh), interpolation=cv2.INTER_LINEAR)
    peak = float(weights.max()) if weights.size else 0.0
    return weights / peak if peak > 0 else np.zeros((oh, ow), np.float32)


def _gif_size(width: int, height: int) -> tuple[int, int]:
    w = GIF_WIDTH
    h = max(8, int(round(height * w / max(width, 1))))
    if h > 160:  # tall, narrow images: cap the height instead
        h = 160
        w = max(8, int(round(width * h / max(height, 1))))
    return w, h


def _draw_text(band: np.ndarray, text: str) -> None:
    """Draw `text` centred in a uint8 gray band (OpenCV 5's faces also draw CJK characters)."""
    h, w = band.shape
    if not text:
        return
    font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.9, 2
    (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    if tw > w - 8:
        scale *= (w - 8) / tw
        (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
    cv2.putText(band, text, ((w - tw) // 2, (h + th) // 2), font, scale, 255, thick, cv2.LINE_AA)


def frames(image_bytes: bytes | np.ndarray, reading) -> list[np.ndarray]:
    """The GIF's frames (uint8 RGB, all the same size): the plate, then one per character."""
    gray = decode_gray(image_bytes)
    oh, ow = gray.shape[:2]
    gw, gh = _gif_size(ow, oh)
    interp = cv2.INTER_AREA if gw < ow else cv2.INTER_LINEAR
    plate = cv2.cvtColor(cv2.resize(gray, (gw, gh), interpolation=interp), cv2.COLOR_GRAY2RGB).astype(np.float32)

    def frame(weights: np.ndarray | None, text: str) -> np.ndarray:
        canvas = np.zeros((gh + TEXT_BAND, gw, 3), np.uint8)
        if weights is None:
            canvas[:gh] = plate.astype(np.uint8)
        else:
            colours = cv2.applyColorMap((weights * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
            alpha = (HEAT * weights)[..., None]
            canvas[:gh] = np.clip(plate * (1.0 - alpha) + colours.astype(np.float32) * alpha, 0, 255).astype(np.uint8)
        band = np.zeros((TEXT_BAND, gw), np.uint8)
        _draw_text(band, text)
        canvas[gh:] = band[..., None]
        return canvas

    out = [frame(None, "")]
    attention = np.asarray(reading.attention) if reading.attention is not None else np.zeros((0, 1, 1))
    for i in range(len(reading.text)):
        if i < len(attention):
            weights = heat_map(attention[i], reading.placement, (ow, oh))
            weights = cv2.resize(weights, (gw, gh), interpolation=cv2.INTER_AREA if gw < ow else cv2.INTER_LINEAR)
        else:
            weights = None
        out.append(frame(weights, reading.text[: i + 1]))
    return out


def attention_gif(image_bytes: bytes | np.ndarray, reading) -> bytes:
    """GIF bytes, looping forever: len(reading.text) + 1 frames (the plate, then one per character)."""
    import imageio.v3 as iio

    pictures = frames(image_bytes, reading)
    durations = [FRAME_SECONDS * 1000] * len(pictures)
    durations[-1] = FRAME_SECONDS * 1000 * 3  # linger on the full reading
    buf = io.BytesIO()
    # (every frame differs from the one before - the text grows - so none is merged away)
    duration = durations if len(durations) > 1 else durations[0]
    iio.imwrite(buf, np.stack(pictures), extension=".gif", duration=duration, loop=0)
    return buf.getvalue()


# --- aocr's --visualize layout -----------------------------------------------------------------------
_UNSAFE = re.compile(r"[^\w\-]+", re.UNICODE)
_RESERVED = {"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(1, 10)), *(f"LPT{i}" for i in range(1, 10))}


def folder_name(prediction: str) -> str:
    """A safe folder name from a prediction: never empty, never a path, never '.', '..' or hidden."""
    name = unicodedata.normalize("NFKC", prediction or "")
    name = _UNSAFE.sub("_", name).strip("._")[:64]
    if not name or name.upper() in _RESERVED:
        name = f"_{name}" if name else "_empty"
    return name


def write_visualization(out_dir: str | os.PathLike, examples: Sequence, readings: Sequence) -> list[Path]:
    """One folder per image under out_dir, named by the prediction (-2, -3 ... on clashes), with
    image.gif and word.txt (prediction on line 1, label on line 2). Returns the folders."""
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    taken = {p.name.lower() for p in root.iterdir() if p.is_dir()}
    folders = []
    for example, reading in zip(examples, readings):
        base = folder_name(reading.text)
        name, n = base, 1
        while name.lower() in taken:  # case-insensitive: macOS/Windows file systems
            n += 1
            name = f"{base}-{n}"
        taken.add(name.lower())
        folder = root / name
        folder.mkdir()
        try:
            gif = attention_gif(example.image, reading)
        except ValueError:  # undecodable image: keep the folder and word.txt, skip the GIF
            gif = None
        if gif is not None:
            atomic_write_bytes(folder / "image.gif", gif)
        label = getattr(example, "label", "") or ""
        atomic_write_bytes(folder / "word.txt", f"{reading.text}\n{label}\n".encode("utf-8"))
        folders.append(folder)
    return folders
