"""`python -m engine pretrain`: make the starter model every training starts from (docs/PRETRAINING.md).

1. Render plates of every layout (engine/data/render.py: one and two rows, many countries' looks
   and random ones, every system font found, street-camera damage) into TFRecord shards under
   the work folder, in parallel processes; deterministic for a seed and a set of fonts.
2. Train the network on them, from scratch or (`--init-from`, a later stage) from an earlier
   starter, optionally mixed with real photos (the MIT-licensed Turkish training split: never a
   test split, never the AGPL US set), learning several input boxes at once (by default the three
   that engine/model/preprocess.py picks from), with the usual trainer (checks, checkpoints,
   resume after a stop).
3. Write the averaged best weights in float16 to engine/model/starter/starter.npz.
"""
from __future__ import annotations

import argparse
import logging
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np

from engine.model.charset import Charset
from engine.storage.files import read_json

log = logging.getLogger(__name__)

# Layouts by weight: country looks, and random ones (unlike any country) for plates in general.
LAYOUT_WEIGHTS = {"random": 5, "random-two-row": 3, "us": 3, "two-row": 2, "eu": 2, "eu-two-row": 2, "es-two-row": 2,
                  "cn-yellow-two-row": 2, "cn-blue": 2, "cn-green": 2}
# Share of batches in each input box, long plates first: the model reads them in the fewest pixels.
BOX_SHARES = (0.45, 0.3, 0.25)
SLOTS = 13  # reads up to 12 characters; fine-tuning cuts or extends this
SHARD_SIZE = 5000
REAL_SHARE = 0.2  # share of examples drawn from the real photos, when given


def weighted_layouts() -> list[str]:
    from engine.data import render

    return [name for name in render.LAYOUTS for _ in range(LAYOUT_WEIGHTS.get(name, 1))]


def _render_shard(args: tuple[str, int, int, int]) -> tuple[str, list[str]]:
    """One shard of rendered plates (a worker process): JPEG gray photos and their labels."""
    import cv2

    from engine.data import render
    from engine.data.sources import Example
    from engine.data.tfrecords import write_tfrecords

    path, first, count, seed = args
    fonts = render.hershey_fonts() + render.system_fonts()
    layouts = weighted_layouts()
    examples, labels = [], []
    for index in range(first, first + count):
        rng = np.random.default_rng([seed, index])
        image, label = render.random_plate(rng, layouts=layouts, fonts=fonts, strength=float(rng.uniform(0.2, 1.0)))
        gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
        ok, jpg = cv2.imencode(".jpg", gray, [cv2.IMWRITE_JPEG_QUALITY, 95])
        examples.append(Example(f"{index}.jpg", label, jpg.tobytes()))
        labels.append(label)
    write_tfrecords(examples, path, shard_size=None)
    return path, labels


def render_plates(folder: Path, count: int, seed: int, workers: int) -> tuple[list[Path], list[int]]:
    """Shards of `count` rendered plates (reused when already complete) and how many each holds."""
    folder.mkdir(parents=True, exist_ok=True)
    jobs, shards, sizes = [], [], []
    for n, first in enumerate(range(0, count, SHARD_SIZE)):
        path = folder / f"rendered-{seed}-{n:05d}.tfrecords"
        size = min(SHARD_SIZE, count - first)
        done = folder / f"{path.name}.labels"
        shards.append(path)
        sizes.append(size)
        if not (path.exists() and done.exists()):
            jobs.append((str(path), first, size, seed))
    if jobs:
        log.info("Rendering %d plates in %d shards with %d processes", sum(j[2] for j in jobs), len(jobs), workers)
        started = time.monotonic()
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for path, shard_labels in pool.imap_unordered(_render_shard, jobs):
                Path(f"{path}.labels").write_text("\n".join(shard_labels), encoding="utf-8")  # marks it complete
                log.info("rendered %s", Path(path).name)
        log.info("Rendered in %.0f s", time.monotonic() - started)
    return shards, sizes


def starter_charset() -> Charset:
    from engine.data.render import LETTERS, PROVINCES

    return Charset("0123456789" + LETTERS + PROVINCES)


def default_boxes() -> list[tuple[int, int]]:
    """The boxes the engine picks from for a data set, so the starter has learned each of them."""
    from engine.model.preprocess import LONG_BOX, SQUARE_BOX, US_BOX

    return [LONG_BOX, US_BOX, SQUARE_BOX]


def parse_boxes(text: str) -> list[tuple[int, int]]:
    """'32x128,48x128,64x128' (height x width, long plates first) to [(32, 128), ...]."""
    from engine.model.preprocess import STRIDE

    boxes = []
    for part in text.split(","):
        height, _, width = part.strip().lower().partition("x")
        if not (height.isdigit() and width.isdigit()):
            raise ValueError(f"--boxes: '{part}' is not HEIGHTxWIDTH, e.g. 32x128")
        box = (int(height), int(width))
        if box[0] % STRIDE[0] or box[1] % STRIDE[1]:
            raise ValueError(f"--boxes: {part} must be a multiple of {STRIDE[0]} high and {STRIDE[1]} wide")
        boxes.append(box)
    if len(boxes) != len(BOX_SHARES):
        raise ValueError(f"--boxes: give {len(BOX_SHARES)} boxes, long plates first")
    return boxes


def make_prepare(shards: list[Path], sizes: list[int], real: str | None, boxes: list[tuple[int, int]],
                 check_count: int = 1500):
    """A replacement for dataprep.prepare: rendered shards (+ real photos), several input boxes."""
    from engine.data.sources import load_examples
    from engine.data.tfrecords import read_tfrecords
    from engine.training import pipeline
    from engine.training.dataprep import TrainingData

    def prepare(settings, dataset, val_dataset, start, progress, resolved=None):
        progress("Reading the rendered plates")
        check_shard = shards[-1]  # held out: the last shard is only checked on, never learned from
        check = list(read_tfrecords([check_shard]))[:check_count]
        train_shards = shards[:-1]
        count = sum(sizes[:-1])
        sources = [(pipeline.from_shards(train_shards, count, name="rendered"), 1.0 - (REAL_SHARE if real else 0.0))]
        notes = {"rendered_plates": count, "check_images": len(check)}
        if real:
            photos = load_examples(real)
            sources.append((pipeline.from_memory([e.image for e in photos], [e.label for e in photos], name="real"), REAL_SHARE))
            notes["real_photos"] = len(photos)
        charset = starter_charset()
        model_boxes = [pipeline.Box(bh, bw, share) for (bh, bw), share in zip(boxes, BOX_SHARES)]
        return TrainingData(sources, model_boxes[0], charset, SLOTS, count, [e.image for e in check], [e.label for e in check],
                            notes, extra_boxes=model_boxes[1:])

    return prepare


def pretrain(work_dir: str | os.PathLike, plates: int, steps: int, minutes: float, real: str | None,
             output: str | os.PathLike | None, workers: int, seed: int, precision: str = "auto",
             init_from: str = "none", boxes: list[tuple[int, int]] | None = None) -> Path:
    """`init_from`: 'none' trains from scratch (learning rate 2e-3); 'starter' or a run folder continues
    that model on newly rendered plates (a later stage, learning rate 1e-3). `boxes`: the input sizes
    learned (default: the engine's three)."""
    from engine.model.network import build_model
    from engine.model import checkpoint as ckpt
    from engine.model.starter import STARTER_FILE, save_starter
    from engine.training.settings import TrainConfig
    from engine.training.run import run_training

    work = Path(work_dir)
    shards, sizes = render_plates(work / "rendered", plates, seed, workers)
    if len(shards) < 2:
        raise ValueError(f"Pretraining needs more than {SHARD_SIZE} plates: the last {SHARD_SIZE} are kept for checks.")
    run = work / "run"
    boxes = boxes or default_boxes()
    earlier = _starting_meta(init_from)
    settings = TrainConfig(init_from=init_from, max_steps=steps, max_minutes=minutes, batch_size=64,
                           initial_learning_rate=2e-3 if earlier is None else None,
                           warmup_steps=500, synthetic_fraction=0.0, check_every_seconds=120.0, seed=seed, precision=precision,
                           max_height=boxes[0][0], max_width=boxes[0][1], max_prediction=SLOTS - 1)
    code = run_training(run, str(work / "rendered"), settings, prepare_data=make_prepare(shards, sizes, real, boxes), bundle=False)
    if code != 0:
        raise RuntimeError(f"Pretraining did not finish (exit code {code}); see {run / 'train.log'}. Run the same "
                           "command again to resume it.")
    state = ckpt.load(run / "checkpoints" / "best.npz")
    model_cfg = state.meta["model"]
    model = build_model(model_cfg["vocab_size"], model_cfg["slots"], 48, 128, model_cfg.get("architecture"))
    ckpt.restore(model, state.weights)
    status = read_json(run / "status.json", {})
    meta = {"made_by": "python -m engine pretrain", "rendered_plates": plates, "steps": state.meta.get("step"),
            "real_photos": bool(real), "check_plate_accuracy": status.get("best_val_plate_accuracy"), "seed": seed,
            "boxes": [f"{h}x{w}" for h, w in boxes]}
    if earlier is not None:
        meta["continued_from"] = earlier  # how the model this stage started from was made
    return save_starter(model, starter_charset(), meta, output or STARTER_FILE)


def _starting_meta(init_from: str) -> dict | None:
    """What the model a stage continues from says of how it was made (None: from scratch)."""
    from engine.model import checkpoint as ckpt
    from engine.model.starter import STARTER_FILE, starting_model

    start = starting_model(init_from)
    if start is None:
        return None
    if start.source != "starter":
        return {"run": start.source}
    meta = dict(ckpt.load(STARTER_FILE).meta)
    return {k: v for k, v in meta.items() if k not in ("model", "charset")}


def cli_pretrain(args: argparse.Namespace) -> int:
    path = pretrain(args.work_dir, args.plates, args.steps, args.minutes, args.real, args.output, args.workers, args.seed,
                    args.precision, args.init_from, parse_boxes(args.boxes) if args.boxes else None)
    print(f"wrote the starter model to {path} ({path.stat().st_size / 1024:.0f} KB)")
    return 0
