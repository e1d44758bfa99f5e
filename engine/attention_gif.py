"""Attention GIFs: where the decoder looked for each character, drawn on the original plate photo.

`attention_gif(image_bytes, reading)` -> GIF bytes (looping): frame 0 is the plate, then one frame
per decoded character with the attended region bright, the rest dimmed, and the text read so far
under the plate. `write_visualization(out_dir, examples, readings)` writes aocr's `--visualize`
layout: one folder per image, named by the prediction, holding image.gif and word.txt.
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

from engine.preprocess import WIDTH_STRIDE, decode_gray

GIF_WIDTH = 280  # plates are scaled to about this width: small files, readable text
TEXT_BAND = 40  # pixels under the plate for the text read so far
DIM = 0.3  # brightness of the region the decoder did not look at
FRAME_SECONDS = 0.6


def column_weights(attention_row: np.ndarray, placement, original_width: int) -> np.ndarray:
    """One attention row [T] -> weight per ORIGINAL image column [original_width], max 1.

    Encoder step j covers model-input columns [4j, 4j+4); only columns < placement.width hold
    the image; model column m is original column m / placement.scale.
    """
    att = np.asarray(attention_row, np.float64)
    if placement is None or placement.scale <= 0:
        scale, valid = att.size * WIDTH_STRIDE / max(original_width, 1), att.size * WIDTH_STRIDE
    else:
        scale, valid = float(placement.scale), int(placement.width)
    cols = (np.arange(original_width) + 0.5) * scale  # centre of each original column, in model columns
    cols = np.clip(cols, 0, max(valid - 1, 0))
    steps = np.clip((cols // WIDTH_STRIDE).astype(int), 0, att.size - 1)
    weights = att[steps]
    peak = weights.max() if weights.size else 0.0
    return weights / peak if peak > 0 else np.ones(original_width)


def _gif_size(width: int, height: int) -> tuple[int, int]:
    w = GIF_WIDTH
    h = max(8, int(round(height * w / max(width, 1))))
    if h > 160:  # tall, narrow images: cap the height instead
        h = 160
        w = max(8, int(round(width * h / max(height, 1))))
    return w, h


def _ascii_safe(text: str) -> bool:
    return all(32 <= ord(c) < 127 for c in text)


def _draw_text(band: np.ndarray, text: str) -> None:
    """Draw `text` centred in a uint8 gray band: Hershey for ASCII, Pillow's default font otherwise."""
    h, w = band.shape
    if not text:
        return
    if _ascii_safe(text):
        font, scale, thick = cv2.FONT_HERSHEY_SIMPLEX, 0.9, 2
        (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
        if tw > w - 8:
            scale *= (w - 8) / tw
            (tw, th), _ = cv2.getTextSize(text, font, scale, thick)
        cv2.putText(band, text, ((w - tw) // 2, (h + th) // 2), font, scale, 255, thick, cv2.LINE_AA)
        return
    try:
        from PIL import Image, ImageDraw, ImageFont

        img = Image.fromarray(band)
        draw = ImageDraw.Draw(img)
        try:
            font = ImageFont.load_default(size=22)
        except TypeError:  # old Pillow: a fixed-size bitmap font
            font = ImageFont.load_default()
        box = draw.textbbox((0, 0), text, font=font)
        tw, th = box[2] - box[0], box[3] - box[1]
        draw.text(((w - tw) // 2 - box[0], (h - th) // 2 - box[1]), text, fill=255, font=font)
        band[:] = np.asarray(img)
    except Exception:  # noqa: BLE001 - never fail a GIF over a glyph
        _draw_text(band, "".join(c if 32 <= ord(c) < 127 else "?" for c in text))


def frames(image_bytes: bytes | np.ndarray, reading) -> list[np.ndarray]:
    """The GIF's frames (uint8 gray, all the same size): the plate, then one per character."""
    gray = decode_gray(image_bytes)
    oh, ow = gray.shape[:2]
    gw, gh = _gif_size(ow, oh)
    interp = cv2.INTER_AREA if gw < ow else cv2.INTER_LINEAR
    plate = cv2.resize(gray, (gw, gh), interpolation=interp).astype(np.float32)
    out = []

    def frame(weights_gif: np.ndarray | None, text: str) -> np.ndarray:
        canvas = np.zeros((gh + TEXT_BAND, gw), np.uint8)
        if weights_gif is None:
            canvas[:gh] = plate.astype(np.uint8)
        else:
            light = DIM + (1.0 - DIM) * weights_gif[None, :]
            canvas[:gh] = np.clip(plate * light, 0, 255).astype(np.uint8)
        _draw_text(canvas[gh:], text)
        return canvas

    out.append(frame(None, ""))
    attention = np.asarray(reading.attention) if reading.attention is not None else np.zeros((0, 1))
    for i in range(len(reading.text)):
        if i < len(attention):
            w_orig = column_weights(attention[i], reading.placement, ow)
            w_gif = cv2.resize(w_orig[None, :].astype(np.float32), (gw, 1), interpolation=cv2.INTER_AREA if gw < ow else cv2.INTER_LINEAR)[0]
        else:
            w_gif = np.ones(gw, np.float32)
        out.append(frame(w_gif, reading.text[: i + 1]))
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
    from engine.runfolder import atomic_write_bytes

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
