"""Image to model input: grayscale, fit into (height, width) keeping the aspect ratio, pad, standardise.

Training, evaluation, the reader and the bundle all go through `fit_to_box`, so a model sees the
same kind of input everywhere. Nothing is dropped for being wide: a wide plate is scaled down to fit.
Readers read each photo in a few `VIEWS` (as given, cropped tighter, framed looser) and average the
characters' probabilities over them (`network.read_outputs`).
"""
from __future__ import annotations

from typing import NamedTuple

import cv2
import numpy as np


# The network divides the height by 8 and the width by 4: model inputs are multiples of these,
# and one cell of its attention grid covers 8 x 4 input pixels.
STRIDE = (8, 4)

# The model input (height, width) for each shape of plate: one source for the engine, which picks
# one per data set (input_shape_for), and for pretraining, which teaches the starter all of them.
LONG_BOX = (32, 128)  # long one-row plates (most European and Turkish ones)
US_BOX = (48, 128)  # US-shaped one-row plates, with smaller characters
SQUARE_BOX = (80, 160)  # square and two-row plates: each row keeps about 32 px
TWO_ROW_ASPECT = 1.7  # photos narrower than 1.7 x their height: square and two-row plates
SOME_TWO_ROW = 0.02  # from this share of two-row-shaped photos up, long plates get US_BOX (input_shape_for)


# How a reader views each photo: (rows, columns) in percent of its height and width, taken off each
# side when negative (a tighter crop) and added by repeating the edge pixels when positive (a looser
# one). Plate crops are framed more or less tightly; averaging the characters' probabilities over
# the three views read 1 to 9 more plates of each benchmark run (0.3 to 5.7 points) than the photo
# alone, with the same models (docs/ARCHITECTURE.md). The first view is the photo as given: its attention is shown.
# Whole pixels (integer arithmetic), so the standalone reader and the serving graph cut the same ones.
VIEWS: tuple[tuple[int, int], ...] = ((0, 0), (-4, -2), (5, 5))
# A reading of the photo as given at least this sure is kept; a less sure one is read again in all
# VIEWS. On the benchmark sets that re-read 6 to 39 % of the plates and kept every gain of the views.
VIEW_GATE = 0.95


class Placement(NamedTuple):
    """Where the image sits in the model input, to map attention back to the original image."""

    scale: float  # model pixels per original pixel
    width: int  # model-input columns holding image (the rest is padding)
    height: int
    top: int  # rows of padding above the image


def input_shape_for(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """Model input (height, width) for photos of these (width, height) sizes.

    The box must fit the squarest photos the model will see: long one-row plates (most European
    and Turkish ones) read well 32 px high; US-shaped plates, with their smaller characters, get
    48; square and two-row plates get 80 x 160, so each row keeps about 32 px (64 x 128 read 8
    points fewer two-row plates and 2 fewer one-row ones: bench/bench_accuracy.py --set two-row).
    Chosen from the tenth percentile of the aspect ratios, so a few odd crops do not decide for the rest.
    But from 2 % of two-row-shaped photos up, long plates get 48 px, not 32: among Spanish plates, 1 in
    12 of them two-row, the 32 px box read 9 of 18 two-row test plates and the 48 px box 17, and 220
    and 222 of 222 one-row ones (bench/bench_accuracy.py --set two-row --layouts "es*11,es-two-row").
    Odd crops that are not two-row plates only cost 48 px steps, which take about a third longer.
    """
    aspects = sorted(w / max(h, 1) for w, h in sizes) or [3.0]
    squarest = aspects[len(aspects) // 10]
    if squarest < TWO_ROW_ASPECT:
        return SQUARE_BOX
    if squarest >= 2.6 and two_row_shaped(sizes) < max(2, SOME_TWO_ROW * len(aspects)):
        return LONG_BOX
    return US_BOX


def two_row_shaped(sizes: list[tuple[int, int]]) -> int:
    """How many of these (width, height) photos are shaped like square or two-row plates."""
    return sum(w / max(h, 1) < TWO_ROW_ASPECT for w, h in sizes)


def decode_gray(image: bytes | np.ndarray) -> np.ndarray:
    """Encoded bytes (or an already decoded array) to a 2-D uint8 grayscale image."""
    if isinstance(image, np.ndarray):
        arr = image
    else:
        arr = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_GRAYSCALE)
        if arr is None:
            raise ValueError("cannot decode image")
    if arr.ndim == 3:
        arr = cv2.cvtColor(arr, cv2.COLOR_BGRA2GRAY if arr.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    return arr


def view(gray: np.ndarray, rows: int, columns: int) -> np.ndarray:
    """The photo cropped (both percents <= 0) or framed with repeated edge pixels (both >= 0), see VIEWS."""
    h, w = gray.shape[:2]
    dy, dx = h * abs(rows) // 100, w * abs(columns) // 100
    if rows <= 0 and columns <= 0:
        return gray[dy : h - dy, dx : w - dx]
    return cv2.copyMakeBorder(gray, dy, dy, dx, dx, cv2.BORDER_REPLICATE)


def fit_views(gray: np.ndarray, height: int, width: int,
              views: tuple[tuple[int, int], ...] = VIEWS) -> tuple[np.ndarray, Placement]:
    """[len(views), height, width, 1] model inputs of one photo, and where the photo as given sits."""
    fitted = [fit_to_box(view(gray, *v), height, width) for v in views]
    return np.stack([x for x, _ in fitted]), fitted[0][1]


def fit_to_box(gray: np.ndarray, height: int, width: int) -> tuple[np.ndarray, Placement]:
    """Scale to the model height (or less, if the plate is too wide), pad right/top-bottom, standardise."""
    h, w = gray.shape[:2]
    scale = min(height / h, width / w)
    new_w = max(1, min(width, int(round(w * scale))))
    new_h = max(1, min(height, int(round(h * scale))))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    resized = cv2.resize(gray, (new_w, new_h), interpolation=interp).astype(np.float32)
    # per-image standardisation: brightness and contrast of the photo stop mattering
    mean, std = float(resized.mean()), float(resized.std())
    resized = (resized - mean) / max(std, 8.0)
    out = np.zeros((height, width), np.float32)
    top = (height - new_h) // 2
    out[top : top + new_h, :new_w] = resized
    return out[..., None], Placement(scale, new_w, new_h, top)
