"""Synthetic licence plates drawn with OpenCV: a sample data set anyone can train on in minutes.

Deterministic: the same seed gives the same bytes (each image has its own generator seeded with
(seed, index), and the zip entries carry a fixed timestamp). Several plate layouts (Turkish with
a blue TR band, EU, US with coloured text, yellow rear plates), Hershey fonts of varying weight,
then a little blur, noise, tilt/perspective and lighting, so a model must actually read.
"""
from __future__ import annotations

import contextlib
import os
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import cv2
import numpy as np

from engine.paths import datasets_dir

# OpenCV 5 draws these as one sans family whose weight follows `thickness`; SCRIPT_SIMPLEX is its italic.
FONTS = (cv2.FONT_HERSHEY_SIMPLEX, cv2.FONT_HERSHEY_DUPLEX, cv2.FONT_HERSHEY_COMPLEX, cv2.FONT_HERSHEY_TRIPLEX, cv2.FONT_HERSHEY_SCRIPT_SIMPLEX)
# No I, O or Q: in these fonts they look like 1 and 0, and a sample set must be learnable
# (many countries leave them out of plates for the same reason).
LETTERS = "ABCDEFGHJKLMNPRSTUVWXYZ"
TR_LETTERS = "ABCDEFGHJKLMNPRSTUVYZ"  # Turkish plates also use no W, X
DIGITS = "0123456789"
STYLES = ("tr", "eu", "us", "yellow")
US_STATES = ("CALIFORNIA", "TEXAS", "OHIO", "NEW YORK", "FLORIDA", "OREGON", "NEVADA", "UTAH")
US_INK = ((120, 40, 10), (30, 30, 170), (40, 110, 20), (20, 20, 20), (110, 20, 90))  # BGR
ZIP_DATE = (2024, 1, 1, 0, 0, 0)  # fixed: same seed -> same zip bytes
PLATE_HEIGHT = 110  # drawing resolution; photos are resized afterwards


# --- plate texts ---------------------------------------------------------------------------------
def _pick(rng: np.random.Generator, chars: str, n: int) -> str:
    return "".join(chars[i] for i in rng.integers(0, len(chars), n))


def plate_text(style: str, rng: np.random.Generator) -> str:
    """A plausible plate for `style`, with the spaces printed on the plate (the label drops them)."""
    if style == "tr":  # 34 FK 4522: province 01-81, 1-3 letters, 2-4 digits
        letters = int(rng.integers(1, 4))
        digits = {1: 4, 2: int(rng.integers(3, 5)), 3: int(rng.integers(2, 4))}[letters]
        return f"{int(rng.integers(1, 82)):02d} {_pick(rng, TR_LETTERS, letters)} {_pick(rng, DIGITS, digits)}"
    if style == "eu":  # AB 123 CD or B MW 1234
        if rng.random() < 0.5:
            return f"{_pick(rng, LETTERS, 2)} {_pick(rng, DIGITS, 3)} {_pick(rng, LETTERS, 2)}"
        return f"{_pick(rng, LETTERS, int(rng.integers(1, 3)))} {_pick(rng, LETTERS, 2)} {_pick(rng, DIGITS, int(rng.integers(2, 5)))}"
    if style == "us":  # ABC 1234 or 7ABC123
        if rng.random() < 0.5:
            return f"{_pick(rng, LETTERS, 3)} {_pick(rng, DIGITS, 4)}"
        return f"{_pick(rng, DIGITS, 1)}{_pick(rng, LETTERS, 3)}{_pick(rng, DIGITS, 3)}"
    return f"{_pick(rng, LETTERS, 2)}{_pick(rng, DIGITS, 2)} {_pick(rng, LETTERS, 3)}"  # yellow: AB12 CDE


# --- drawing ------------------------------------------------------------------------------------
def _fit_text(text: str, font: int, thickness: int, height: int) -> tuple[float, int, int]:
    """Font scale making capitals `height` px tall, and the resulting text (width, height)."""
    (w, h), _ = cv2.getTextSize(text, font, 1.0, thickness)
    scale = height / max(h, 1)
    (w, h), _ = cv2.getTextSize(text, font, scale, thickness)
    return scale, w, h


def _band(img: np.ndarray, width: int, code: str, rng: np.random.Generator) -> None:
    """The blue country band on the left, with its code in white at the bottom."""
    h = img.shape[0]
    cv2.rectangle(img, (0, 0), (width, h - 1), (160, 60, 0), -1)
    scale, w, th = _fit_text(code, cv2.FONT_HERSHEY_SIMPLEX, 2, int(h * 0.2))
    cv2.putText(img, code, ((width - w) // 2, h - int(h * 0.12)), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 2, cv2.LINE_AA)
    if rng.random() < 0.6:  # a ring of "stars" like an EU flag
        cx, cy, r = width // 2, int(h * 0.33), int(width * 0.3)
        for a in np.linspace(0, 2 * np.pi, 12, endpoint=False):
            cv2.circle(img, (int(cx + r * np.cos(a)), int(cy + r * np.sin(a))), 2, (0, 200, 255), -1)


def _draw(text: str, style: str, rng: np.random.Generator) -> np.ndarray:
    h = PLATE_HEIGHT
    font = FONTS[int(rng.integers(0, len(FONTS)))]
    thickness = int(rng.integers(1, 8))
    text_h = int(h * rng.uniform(0.5, 0.6)) if style != "us" else int(h * rng.uniform(0.42, 0.5))
    scale, tw, th = _fit_text(text, font, thickness, text_h)
    band = int(h * 0.38) if style in ("tr", "eu") or (style == "yellow" and rng.random() < 0.5) else 0
    margin = int(h * rng.uniform(0.15, 0.3))
    width = band + tw + 2 * margin
    background = {"tr": (245, 245, 245), "eu": (240, 240, 240), "yellow": (20, 200, 245)}.get(style)
    if background is None:  # US: pale and tinted
        background = tuple(int(v) for v in rng.integers(200, 256, 3))
    ink = US_INK[int(rng.integers(0, len(US_INK)))] if style == "us" else (20, 20, 20)
    img = np.empty((h, width, 3), np.uint8)
    img[:] = background
    if band:
        _band(img, band, {"tr": "TR", "eu": "DEFIN"[int(rng.integers(0, 5))]}.get(style, "GB"), rng)
    cv2.rectangle(img, (1, 1), (width - 2, h - 2), (30, 30, 30), int(rng.integers(2, 5)))
    baseline = (h + th) // 2 + (int(h * 0.1) if style == "us" else 0)
    cv2.putText(img, text, (band + margin, baseline), font, scale, ink, thickness, cv2.LINE_AA)
    if style == "us":
        state = US_STATES[int(rng.integers(0, len(US_STATES)))]
        s_scale, sw, sh = _fit_text(state, cv2.FONT_HERSHEY_SIMPLEX, 1, int(h * 0.12))
        cv2.putText(img, state, ((width - sw) // 2, int(h * 0.08) + sh), cv2.FONT_HERSHEY_SIMPLEX, s_scale, ink, 1, cv2.LINE_AA)
    return img


def _photograph(plate: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Make a clean drawing look like a crop from a street photo: surroundings, perspective, light."""
    h, w = plate.shape[:2]
    pad = int(h * 0.12)
    body = tuple(int(v) for v in rng.integers(20, 230, 3))  # the car around the plate
    img = cv2.copyMakeBorder(plate, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=body)
    H, W = img.shape[:2]
    src = np.float32([[0, 0], [W, 0], [W, H], [0, H]])
    jitter = rng.uniform(-0.04, 0.04, (4, 2)) * [W, H]
    tilt = np.tan(np.radians(rng.uniform(-4, 4))) * W / 2  # a slight rotation
    dst = np.float32(src + jitter + [[0, -tilt], [0, tilt], [0, tilt], [0, -tilt]])
    img = cv2.warpPerspective(img, cv2.getPerspectiveTransform(src, dst), (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    target_w = int(rng.integers(200, 401))
    img = cv2.resize(img, (target_w, max(24, round(H * target_w / W))), interpolation=cv2.INTER_AREA)
    if rng.random() < 0.7:
        k = int(rng.choice([3, 3, 5]))
        img = cv2.GaussianBlur(img, (k, k), 0)
    out = img.astype(np.float32) * rng.uniform(0.6, 1.25) + rng.uniform(-35, 30)
    out += rng.normal(0, rng.uniform(0, 9), out.shape)
    return np.clip(out, 0, 255).astype(np.uint8)


def render_plate(text: str, rng: np.random.Generator | int | None = None, style: str | None = None) -> np.ndarray:
    """A BGR photo of a plate showing `text` (printed as given; spaces included).

    `style` is one of STYLES ("tr", "eu", "us", "yellow"), random when None. `rng` is a numpy
    Generator (or a seed); the same generator state gives the same image.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    style = style or STYLES[int(rng.integers(0, len(STYLES)))]
    if style not in STYLES:
        raise ValueError(f"style must be one of {', '.join(STYLES)} (got {style!r}).")
    return _photograph(_draw(text, style, rng), rng)


# --- sample sets --------------------------------------------------------------------------------
def sample_items(count: int = 600, seed: int = 0) -> list[tuple[str, str, str]]:
    """(file name, printed text, style) plans: unique plates, ~1 in 6 photographed twice."""
    rng = np.random.default_rng([seed, 0xC0FFEE])
    items, labels = [], set()
    while len(items) < count:
        style = STYLES[int(rng.integers(0, len(STYLES)))]
        text = plate_text(style, rng)
        label = text.replace(" ", "")
        if label in labels:
            continue
        labels.add(label)
        photos = 1 + int(rng.random() < 0.17) + int(rng.random() < 0.04)
        for k in range(min(photos, count - len(items))):
            items.append((f"{label}.jpg" if k == 0 else f"{label}_{k}.jpg", text, style))
    return items


def sample_images(count: int = 600, seed: int = 0):
    """Yield (file name, JPEG bytes) for the sample set."""
    for index, (name, text, style) in enumerate(sample_items(count, seed)):
        rng = np.random.default_rng([seed, index])
        image = render_plate(text, rng, style)
        ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 96))])
        if not ok:
            raise RuntimeError(f"could not encode sample image {name}")
        yield name, jpg.tobytes()


def make_sample_zip(path: str | os.PathLike, count: int = 600, seed: int = 0) -> Path:
    """Write a zip of `count` label-named JPEGs (`34FK4522.jpg`, a second photo `34FK4522_1.jpg`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:  # JPEGs do not compress
            for name, data in sample_images(count, seed):
                zf.writestr(zipfile.ZipInfo(name, ZIP_DATE), data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def make_sample_folder(folder: str | os.PathLike, count: int = 600, seed: int = 0) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in sample_images(count, seed):
        (folder / name).write_bytes(data)
    return folder


@contextlib.contextmanager
def _file_lock(path: Path, timeout: float = 600.0):
    """An exclusive lock between processes (the dashboard and a CLI may both ask for the sample)."""
    with open(path, "a+b") as f:
        try:
            import fcntl
        except ImportError:  # Windows: msvcrt locks one byte
            import msvcrt

            deadline = time.monotonic() + timeout
            while True:
                try:
                    msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise TimeoutError(f"timed out waiting for {path}") from None
                    time.sleep(0.2)
            try:
                yield
            finally:
                f.seek(0)
                msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)
            return
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def ensure_sample_dataset(count: int = 600, seed: int = 0) -> Path:
    """data_home()/datasets/sample, generated and imported the first time (idempotent; concurrent
    callers wait for the first one rather than building it twice)."""
    target = datasets_dir() / "sample"
    if (target / "report.json").is_file():
        return target
    with _file_lock(datasets_dir() / ".sample.lock"):
        if (target / "report.json").is_file():  # someone else built it while we waited
            return target
        from engine.importer import import_dataset

        with tempfile.TemporaryDirectory(dir=datasets_dir(), prefix=".sample-zip-") as tmp:
            zip_path = make_sample_zip(Path(tmp) / "sample.zip", count, seed)
            import_dataset(zip_path, target, overwrite=True, seed=seed)
    return target


def cli_sample(args) -> int:
    """`python -m engine sample OUT.zip [--count N] [--seed S]` (a folder when OUT is not a .zip)."""
    out = Path(args.output_path)
    if out.suffix.lower() == ".zip":
        make_sample_zip(out, args.count, args.seed)
    else:
        make_sample_folder(out, args.count, args.seed)
    print(f"Wrote {args.count} synthetic plate images to {out}.", file=sys.stdout)
    return 0
