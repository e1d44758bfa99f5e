"""Training at scale: 10k and 100k generated plates, imported and trained for a fixed number of steps.

    python bench/bench_scale.py                        # 10k and 100k plates
    python bench/bench_scale.py --sizes 10000          # one size
    python bench/bench_scale.py --old-engine /tmp/old  # also the previous engine (a checkout of it) on 10k
    python bench/bench_scale.py --pipeline             # also the input pipelines' own speed, without a model
    python bench/bench_scale.py --busy 1               # with one CPU-bound process alongside

    (a checkout of the previous engine: git worktree add /tmp/old 01bd466)

For each size: import images/s and peak memory, training plates/s (steady state, between checks,
after start-up) and peak memory. Memory must not grow with the number of photos: a training keeps
decoded photos in memory up to a fixed budget and on disk beyond it, and shuffles within a fixed
buffer. Plates are rendered into a temp folder (never the repository), in parallel processes.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
from pathlib import Path

from common import ROOT, Busy, measure


def _render(args: tuple[str, int, int]) -> int:
    import cv2
    import numpy as np

    from engine.data import render

    folder, first, count = args
    fonts = render.hershey_fonts()
    for index in range(first, first + count):
        rng = np.random.default_rng([11, index])
        image, label = render.random_plate(rng, layouts=render.ONE_ROW, fonts=fonts, strength=0.6)
        ok, jpg = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90])
        Path(folder, f"{label}_{index}.jpg").write_bytes(jpg.tobytes())
    return count


def make_plates(folder: Path, count: int, workers: int = 2) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    have = sum(1 for _ in folder.glob("*.jpg"))
    if have >= count:
        return folder
    chunk = 2000
    jobs = [(str(folder), first, min(chunk, count - first)) for first in range(have, count, chunk)]
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        for _ in pool.imap_unordered(_render, jobs):
            pass
    return folder


def training_speed(run_dir: Path, batch: int) -> float | None:
    """Plates per second between the first and the last check (start-up and compiling excluded)."""
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines() if line.strip()]
    if len(rows) < 2:
        return None
    first, last = rows[0], rows[-1]
    return (last["step"] - first["step"]) * batch / max(1e-6, last["elapsed"] - first["elapsed"])


PIPELINE_PROBE = r"""
import os, sys, time
sys.path.insert(0, sys.argv[1])
from engine.training import pipeline
from engine.training.dataprep import prepare
from engine.training.settings import TrainConfig

data = prepare(TrainConfig(init_from="none"), sys.argv[2], None, None, lambda *a: None)
batch = int(sys.argv[3])
it = iter(pipeline.batches(data.sources, data.boxes, data.charset, data.slots, batch, cache_dir=None))
for _ in range(50):  # start-up: threads, first decodes
    next(it)
started, count = time.perf_counter(), 0
while time.perf_counter() - started < 20:
    next(it)
    count += 1
print(count * batch / (time.perf_counter() - started), flush=True)
os._exit(0)  # without waiting on tf.data's threads at exit
"""


# The previous engine's batch maker on its own (one thread, every photo decoded in memory first)
OLD_PIPELINE_PROBE = r"""
import os, sys, time
sys.path.insert(0, sys.argv[1])
import numpy as np
from engine.charset import Charset
from engine.config import TrainConfig
from engine.preprocess import input_shape_for
from engine.sources import load_examples
from engine.train import WORK_SCALE, BatchMaker, _decode_all, _resize_for_work

train = load_examples(sys.argv[2], split="train")
labels = [e.label for e in train]
grays = _decode_all(train)
cfg = TrainConfig()
cfg.max_height, cfg.max_width = input_shape_for([(g.shape[1], g.shape[0]) for g in grays])
cfg.max_prediction = max(len(t) for t in labels) + 2
images = [_resize_for_work(g, cfg.max_height * WORK_SCALE, cfg.max_width * WORK_SCALE * 2) for g in grays]
maker = BatchMaker(images, labels, Charset.from_labels(labels), cfg, cfg.max_prediction + 1)
rng, batch = np.random.default_rng(0), int(sys.argv[3])
started, count = time.perf_counter(), 0
while time.perf_counter() - started < 20:
    maker.batch(rng.integers(0, len(images), batch), rng)
    count += 1
print(count * batch / (time.perf_counter() - started), flush=True)
os._exit(0)
"""


def pipeline_speed(dataset: Path, batch: int, engine: Path = ROOT, probe: str = PIPELINE_PROBE) -> float:
    """Plates per second the input pipeline alone delivers (no model), in training batches."""
    import os
    import subprocess

    done = subprocess.run([sys.executable, "-c", probe, str(engine), str(dataset), str(batch)], cwd=engine,
                          env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(engine)},
                          capture_output=True, text=True, check=True)
    return float(done.stdout.strip().splitlines()[-1])


def old_training_speed(old: Path, photos: Path, work: Path, minutes: float) -> float | None:
    """The previous engine (its own checkout) on the same photos: training plates/s between its checks."""
    import os
    import shutil
    import subprocess

    for leftover in ("old-home", "old-dataset", "old-run"):  # an earlier bench's: the old engine would refuse them
        shutil.rmtree(work / leftover, ignore_errors=True)
    env = {**os.environ, "PLATE_STUDIO_HOME": str(work / "old-home"), "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(old)}
    engine = [sys.executable, "-m", "engine"]
    subprocess.run([*engine, "import", str(photos), "--out", str(work / "old-dataset"), "--test-fraction", "0.05"],
                   cwd=old, env=env, check=True, capture_output=True)
    subprocess.run([*engine, "train", str(work / "old-dataset"), "--model-dir", str(work / "old-run"), "--max-minutes",
                    str(minutes), "--no-resume"], cwd=old, env=env, check=True, capture_output=True)
    config = json.loads((work / "old-run" / "config.json").read_text())
    return training_speed(work / "old-run", config["batch_size"])  # measured the same way as today's


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--steps", type=int, default=400, help="training steps per size")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--work-dir", default=None, help="where plates, datasets and runs go (default: a temp folder)")
    parser.add_argument("--pipeline", action="store_true", help="also the input pipeline's own speed, without the model")
    parser.add_argument("--old-engine", default=None, help="a checkout of the previous engine, measured on the first size")
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes running alongside")
    options = parser.parse_args()
    work = Path(options.work_dir or tempfile.mkdtemp(prefix="bench-scale-"))
    with Busy(options.busy, seconds=4 * 3600) as busy:
        print(f"load: {busy.describe()}")
        return _measure_all(options, work)


def _measure_all(options: argparse.Namespace, work: Path) -> int:
    print(f"{'plates':>7} {'import/s':>9} {'import MB':>10} {'train plates/s':>15} {'train MB':>9}  (steps {options.steps}, "
          f"batch {options.batch_size}; work folder {work})")
    for size in [int(s) for s in options.sizes.split(",")]:
        here = work / str(size)
        photos = make_plates(work / f"plates-{size}", size)
        code, import_mb, import_s = measure(["import", str(photos), "--out", str(here / "dataset"), "--max-files", str(size), "--test-fraction",
                                             "0.05"], here / "import.log", here / "home") if not (here / "dataset").exists() \
            else (0, float("nan"), float("nan"))
        if code != 0:
            print(f"{size:>7} import failed: see {here / 'import.log'}")
            continue
        code, train_mb, _ = measure(["train", str(here / "dataset"), "--model-dir", str(here / "run"), "--no-resume",
                                     "--max-steps", str(options.steps), "--batch-size", str(options.batch_size),
                                     "--max-minutes", "60", "--check-every-seconds", "20"], here / "train.log", here / "home")
        speed = training_speed(here / "run", options.batch_size) if code == 0 else None
        print(f"{size:>7} {size / import_s:>9.0f} {import_mb:>10.0f} {speed or float('nan'):>15.0f} {train_mb:>9.0f}"
              + ("" if code == 0 else f"  training failed: see {here / 'train.log'}"), flush=True)
        if options.pipeline:
            print(f"{'':>7} the input pipeline alone (no model): {pipeline_speed(here / 'dataset', options.batch_size):,.0f} "
                  "plates/s", flush=True)
    if options.old_engine:
        first = int(options.sizes.split(",")[0])
        speed = old_training_speed(Path(options.old_engine), work / f"plates-{first}", work, 4.0)
        print(f"previous engine ({options.old_engine}) on {first} plates: {speed:.0f} training plates/s")
        if options.pipeline:
            alone = pipeline_speed(work / "old-dataset", options.batch_size, Path(options.old_engine), OLD_PIPELINE_PROBE)
            print(f"{'':>7} its input pipeline alone (no model): {alone:,.0f} plates/s")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
