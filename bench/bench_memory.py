"""Peak memory (max RSS) of an import and of a one-minute training, next to photo count and size.

Memory should follow the number of photos times the model's working size, not the photos' own
size: 60 photos of 4000x3000 should cost about what 60 photos of 400x300 cost. Each measurement
is a separate process (`python -m engine import` / `python -m engine train --max-minutes 1`),
and its peak RSS is the kernel's own account of that one child (os.wait4's rusage).

    .venv/bin/python bench/bench_memory.py             # 60 big, 60 small, 2,000 small photos
    .venv/bin/python bench/bench_memory.py --no-train  # imports only (a few seconds)
    .venv/bin/python bench/bench_memory.py --train-args "--init-from none"  # extra `train` flags
"""
from __future__ import annotations

import argparse
import shlex
import tempfile
import zipfile
from pathlib import Path

from common import measure

SETS = [  # (name, photos, width, height): 4000x3000 is 12 MP, under the importer's 16 MP limit
    ("big", 60, 4000, 3000),
    ("small", 60, 400, 300),
    ("many", 2000, 400, 300),
]


def make_zip(path: Path, count: int, width: int, height: int) -> Path:
    """`count` synthetic plate photos scaled to width x height, named by their text."""
    import cv2
    import numpy as np

    from engine.data.sample import sample_images
    from engine.storage.files import zip_add

    with zipfile.ZipFile(path, "w") as zf:
        for name, data in sample_images(count, seed=3):
            plate = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            photo = cv2.resize(plate, (width, height), interpolation=cv2.INTER_CUBIC)
            zip_add(zf, name, cv2.imencode(".jpg", photo, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes(), compress=False)
    return path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-train", action="store_true", help="measure the imports only")
    parser.add_argument("--minutes", type=float, default=1.0, help="training budget per set")
    parser.add_argument("--train-args", default="", help="more flags for `python -m engine train`, quoted")
    options = parser.parse_args()
    print(f"{'set':6} {'photos':>6} {'size':>10} {'zip MB':>7} {'import MB':>10} {'import s':>9} {'train MB':>9} {'train s':>8}  train")
    with tempfile.TemporaryDirectory(prefix="bench-memory-") as tmp:
        tmp = Path(tmp)
        for name, count, width, height in SETS:
            source = make_zip(tmp / f"{name}.zip", count, width, height)
            dataset, run = tmp / f"{name}-ds", tmp / f"{name}-run"
            code, import_mb, import_s = measure(["import", str(source), "--out", str(dataset)], tmp / f"{name}-import.log")
            if code != 0:
                print(f"{name}: the import failed (exit {code}):\n{(tmp / f'{name}-import.log').read_text()[-2000:]}")
                return 1
            train = "skipped"
            train_mb = train_s = float("nan")
            if not options.no_train:
                log = tmp / f"{name}-train.log"
                code, train_mb, train_s = measure(["train", str(dataset), "--model-dir", str(run), "--max-minutes",
                                                   str(options.minutes), *shlex.split(options.train_args)], log)
                train = "ok" if code == 0 else f"FAILED (exit {code}): " + log.read_text(errors="replace").strip()[-300:]
            print(f"{name:6} {count:6d} {f'{width}x{height}':>10} {source.stat().st_size / 2**20:7.1f} {import_mb:10.0f} "
                  f"{import_s:9.1f} {train_mb:9.0f} {train_s:8.1f}  {train}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
