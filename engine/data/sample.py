"""The sample data: synthetic plates anyone can train on in minutes, drawn by engine/data/render.py.

Deterministic: OpenCV's built-in faces only (no font files), each image has its own generator
seeded with (seed, index), and the zip entries carry a fixed date, so the same seed gives the same
bytes. The default mix is four one-row layouts; `layouts=TWO_ROW` (or `--layouts two-row`) makes
a set of plates with two rows of text.
"""
from __future__ import annotations

import os
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Iterator, Sequence

import cv2
import numpy as np

from engine.data import render
from engine.storage.files import zip_add
from engine.storage.locks import exclusive
from engine.storage.paths import datasets_dir

SAMPLE_LAYOUTS = ("tr", "eu", "us", "yellow")
DAMAGE = 0.5  # sample photos are moderately damaged: learnable in minutes, not trivially clean
GROUPS = {"one-row": render.ONE_ROW, "two-row": render.TWO_ROW, "all": render.LAYOUTS}


def layouts_from(text: str | None) -> tuple[str, ...]:
    """'two-row', 'one-row', 'all' or comma-separated layout names -> layout names."""
    if not text:
        return SAMPLE_LAYOUTS
    names: list[str] = []
    for part in text.split(","):
        part = part.strip()
        if part in GROUPS:
            names += GROUPS[part]
        elif part in render.LAYOUTS:
            names.append(part)
        elif part:
            raise ValueError(f"Unknown layout {part!r}: use one-row, two-row, all or one of {', '.join(render.LAYOUTS)}.")
    return tuple(dict.fromkeys(names))


def sample_items(count: int = 600, seed: int = 0, layouts: Sequence[str] = SAMPLE_LAYOUTS,
                 masked: int = 0) -> list[tuple[str, render.PlateText, str]]:
    """(file name, text, layout) plans: unique plates, ~1 in 6 photographed twice; with `masked`, that
    many characters of each plate hidden (written '*' in its name, covered in its photo)."""
    rng = np.random.default_rng([seed, 0xC0FFEE])
    fonts_cjk = any(f.cjk for f in render.hershey_fonts())
    usable = [l for l in layouts if fonts_cjk or not l.startswith("cn")]
    items, labels = [], set()
    while len(items) < count:
        layout = usable[int(rng.integers(0, len(usable)))]
        text = render.plate_text(layout, rng)
        if masked:
            text = render.masked(text, masked, rng)
        if text.label in labels:
            continue
        labels.add(text.label)
        photos = 1 + int(rng.random() < 0.17) + int(rng.random() < 0.04)
        for k in range(min(photos, count - len(items))):
            items.append((f"{text.label}.jpg" if k == 0 else f"{text.label}_{k}.jpg", text, layout))
    return items


def sample_images(count: int = 600, seed: int = 0, layouts: Sequence[str] = SAMPLE_LAYOUTS,
                  masked: int = 0) -> Iterator[tuple[str, bytes]]:
    """Yield (file name, JPEG bytes) for the sample set."""
    fonts = render.hershey_fonts()
    for index, (name, text, layout) in enumerate(sample_items(count, seed, layouts, masked)):
        rng = np.random.default_rng([seed, index])
        image = render.photograph(render.draw_plate(text, layout, rng, fonts), rng, DAMAGE)
        ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 96))])
        if not ok:
            raise RuntimeError(f"could not encode sample image {name}")
        yield name, jpg.tobytes()


def make_sample_zip(path: str | os.PathLike, count: int = 600, seed: int = 0,
                    layouts: Sequence[str] = SAMPLE_LAYOUTS, masked: int = 0) -> Path:
    """Write a zip of `count` label-named JPEGs (`34FK4522.jpg`, a second photo `34FK4522_1.jpg`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with zipfile.ZipFile(tmp, "w") as zf:
            for name, data in sample_images(count, seed, layouts, masked):
                zip_add(zf, name, data, compress=False)  # JPEGs do not compress
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def make_sample_folder(folder: str | os.PathLike, count: int = 600, seed: int = 0,
                       layouts: Sequence[str] = SAMPLE_LAYOUTS, masked: int = 0) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in sample_images(count, seed, layouts, masked):
        (folder / name).write_bytes(data)
    return folder


def ensure_sample_dataset(count: int = 600, seed: int = 0) -> Path:
    """data_home()/datasets/sample, generated and imported the first time (idempotent; concurrent
    callers wait for the first one rather than building it twice)."""
    target = datasets_dir() / "sample"
    if (target / "report.json").is_file():
        return target
    with exclusive("sample", wait=True, timeout=600):
        if (target / "report.json").is_file():  # someone else built it while we waited
            return target
        from engine.data.importer import import_dataset

        with tempfile.TemporaryDirectory(dir=datasets_dir(), prefix=".sample-zip-") as tmp:
            zip_path = make_sample_zip(Path(tmp) / "sample.zip", count, seed)
            import_dataset(zip_path, target, overwrite=True, seed=seed)
    return target


def cli_sample(args) -> int:
    """`python -m engine sample OUT.zip [--count N] [--seed S] [--layouts two-row] [--masked 2]` (a folder
    when OUT is not a .zip)."""
    out = Path(args.output_path)
    layouts = layouts_from(getattr(args, "layouts", None))
    make = make_sample_zip if out.suffix.lower() == ".zip" else make_sample_folder
    make(out, args.count, args.seed, layouts, getattr(args, "masked", 0))
    print(f"Wrote {args.count} synthetic plate images to {out}.", file=sys.stdout)
    return 0
