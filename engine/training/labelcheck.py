"""The label check: two models, each trained from the starter on one half of the photos (grouped by
plate, so a plate's photos stay on one side) and reading the other half, so every photo gets a reading
from a model that never saw it: `label_check.csv` (file, label, reading, confidence, split, model,
label_odds). `label_odds` is the probability the model gives the label over the one it gives its
reading: confidence alone does not tell a wrong label (the label's character gets almost nothing) from
a hard photo (the model hesitates between its reading and the label). engine/reading/review.py turns
the readings into the list the operator reviews; the command line prints it.

It runs as a training does (`python -m engine check-labels`, launched by engine.runs.start_label_check):
it holds the training lock for its whole life and keeps status.json with the same fields.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import shutil
import signal
from pathlib import Path
from typing import Callable

from engine.data.dataset import DatasetFolder, is_dataset_folder
from engine.data.split import grouped_split
from engine.storage.csvfile import write_csv
from engine.storage.files import atomic_write_json, now_iso
from engine.storage.locks import Busy, training_lock
from engine.storage.runfolder import RunFolder
from engine.storage.text import printable
from engine.training.status import StatusWriter

HALVES = ("half-a", "half-b")
CHECK_COLUMNS = ("file", "label", "reading", "confidence", "split", "model", "label_odds")
MIN_PHOTOS = 20  # fewer photos cannot be split in two halves that each teach a model something
BATCH = 64
Progress = Callable[[str, float], None]  # (phase, percent)


def check_labels(dataset_dir: str | os.PathLike, out_dir: str | os.PathLike, *, steps: int = 600,
                 progress: Progress | None = None) -> Path:
    """Train one model per half from the starter, read the other half with each; returns label_check.csv.

    Holds the training lock throughout (Busy while another training runs) and keeps out_dir/status.json
    like a training's; SIGTERM stops it (StopRequested is raised after status.json says `stopped`).
    """
    from engine.training.run import log_to_run_folder, stop_on_sigterm
    from engine.training.trainer import StopRequested

    dataset, out = DatasetFolder(dataset_dir), RunFolder(out_dir)
    if not is_dataset_folder(dataset.path):
        raise ValueError(f"{dataset.path} is not an imported dataset folder.")
    out.path.mkdir(parents=True, exist_ok=True)
    status = _CheckStatus(out, progress)
    handler = log_to_run_folder(out)
    previous = signal.signal(signal.SIGTERM, stop_on_sigterm)
    try:
        with training_lock(out.path.name, out.path):
            status.update(state="running", pid=os.getpid(), run=out.path.name, phase="Splitting the photos in two",
                          started_at=now_iso(), finished_at=None, error=None, percent=0)
            if not out.config():  # a check run from the command line says what it is, as a launched one does
                atomic_write_json(out.config_path, {"kind": "label-check", "dataset": str(dataset.path.resolve()),
                                                    "name": "", "created_at": now_iso(), "steps": steps})
            rows = [r for r in dataset.rows() if not r["excluded"]]
            if len(rows) < MIN_PHOTOS:
                raise ValueError(f"A label check needs at least {MIN_PHOTOS} photos ({len(rows)} are not left out).")
            sides = grouped_split([r["label"] for r in rows], 0.5, seed=0)
            readings = [r for i in range(len(HALVES)) for r in _check_half(dataset, out, rows, sides, i, steps, status)]
            write_csv(out.label_check_path, CHECK_COLUMNS, ([r[c] for c in CHECK_COLUMNS] for r in readings))
            differ = sum(r["reading"] != r["label"] for r in readings)
            status.update(state="finished", finished_at=now_iso(), percent=100, eta_seconds=0,
                          phase=f"Finished: {differ} of {len(readings)} photos were read differently from their label")
        return out.label_check_path
    except StopRequested:
        status.update(state="stopped", finished_at=now_iso(), eta_seconds=None, phase="Stopped. Start a new check.")
        raise
    except Exception as exc:
        status.update(state="failed", error=f"{type(exc).__name__}: {exc}", finished_at=now_iso(), eta_seconds=None,
                      phase=str(exc) if isinstance(exc, Busy) else "The label check failed. See train.log for details.")
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)
        logging.getLogger().removeHandler(handler)
        handler.close()


def _check_half(dataset: DatasetFolder, out: RunFolder, rows: list[dict], sides: list[str], index: int, steps: int,
                status: _CheckStatus) -> list[dict]:
    """Train model `index` on its side of the split (from the starter, the normal trainer); it reads the other."""
    from engine.training.run import _config
    from engine.training.settings import TrainConfig
    from engine.training.trainer import Trainer

    name, learn = HALVES[index], ("train", "test")[index]
    data = _half_dataset(dataset, out.path / f"data-{name}", [r for r, side in zip(rows, sides) if side == learn])
    run = RunFolder(out.path / name)
    shutil.rmtree(run.path, ignore_errors=True)  # a check starts afresh: no checkpoint of an earlier one
    run.path.mkdir()
    config = _config(run, str(data.path), TrainConfig(max_steps=steps), None, False, None)
    # the trainer's internals, not run_training: this process already holds the training lock, and
    # closing a second descriptor of the lock file would release it (POSIX record locks)
    Trainer(run, config, _HalfStatus(run, status, index), True, False, None, False).fit()
    shutil.rmtree(data.path)
    status.update(phase=f"Model {index + 1} of {len(HALVES)}: reading the photos it never saw")
    unseen = [r for r, side in zip(rows, sides) if side != learn]
    return [{**reading, "model": name} for reading in _read(run, dataset, unseen)]


def _half_dataset(dataset: DatasetFolder, folder: Path, rows: list[dict]) -> DatasetFolder:
    """A dataset folder of training photos only, whose images/ links to the real one: no photo copied."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    (folder / "images").symlink_to(dataset.images_dir.resolve(), target_is_directory=True)
    half = DatasetFolder(folder)
    half.write_rows({**r, "split": "train"} for r in rows)
    return half


def _read(run: RunFolder, dataset: DatasetFolder, rows: list[dict]) -> list[dict]:
    """Each photo's reading, its confidence, and `label_odds`: the probability of the label over that of
    the reading, from the same per-character probabilities (1: the label is the reading; blank: the
    label has a character the model never learned). Read as PlateReader reads: see _probabilities."""
    import numpy as np

    from engine.data.images import decode_gray
    from engine.reading.reader import PlateReader

    reader = PlateReader.load(run.path)
    charset = reader.charset
    out = []
    for start in range(0, len(rows), BATCH):
        batch = rows[start:start + BATCH]
        grays = [decode_gray(dataset.image_path(r["file"]).read_bytes()) for r in batch]
        for row, p in zip(batch, _probabilities(reader, grays)):
            ids, best = p.argmax(-1), p.max(-1)
            known = charset.knows(row["label"]) and len(row["label"]) < len(ids)
            odds = np.prod(p[np.arange(len(ids)), charset.encode(row["label"], len(ids))] / best) if known else None
            out.append({"file": row["file"], "label": row["label"], "reading": charset.decode(ids),
                        "confidence": f"{_confidence(p):.4f}", "split": row["split"],
                        "label_odds": "" if odds is None else f"{odds:.3g}"})
    return out


def _probabilities(reader, grays: list) -> "np.ndarray":
    """Per-slot probabilities [N, K, vocab] of each photo as PlateReader reads it: the photo as given,
    and when that reading is less sure than the reader's gate, the average over all its views."""
    import numpy as np
    import tensorflow as tf

    from engine.model.preprocess import fit_to_box, fit_views

    model, height, width = reader.model, reader.height, reader.width

    def read(images: np.ndarray) -> np.ndarray:  # [N, V, H, W, 1] -> [N, V, K, vocab]
        logits = model(images.reshape(-1, height, width, 1), training=False)["logits"]
        return tf.nn.softmax(logits, axis=-1).numpy().reshape(*images.shape[:2], *logits.shape[1:])

    first = np.stack([fit_to_box(g, height, width)[0] for g in grays])[:, None]
    p = read(first)[:, 0]
    unsure = [i for i, q in enumerate(p) if _confidence(q) < reader.gate] if len(reader.views) > 1 else []
    if unsure:
        views = np.stack([np.concatenate([first[i], fit_views(grays[i], height, width, reader.views[1:])[0]]) for i in unsure])
        p[unsure] = read(views).mean(axis=1)
    return p


def _confidence(p: "np.ndarray") -> float:
    """network.read_outputs' confidence of one photo's [K, vocab] probabilities: its characters' and the end's."""
    import numpy as np

    ids, best = p.argmax(-1), p.max(-1)
    length = next((i for i, t in enumerate(ids) if t == 0), len(ids))
    return float(np.prod(best[:length + 1]))


class _CheckStatus(StatusWriter):
    """The check's status.json, also told to `progress` (the command line prints it)."""

    def __init__(self, run: RunFolder, progress: Progress | None):
        super().__init__(run)
        self.progress = progress

    def update(self, **fields) -> None:
        super().update(**fields)
        if self.progress:
            self.progress(str(self.fields.get("phase") or ""), float(self.fields.get("percent") or 0))


class _HalfStatus(StatusWriter):
    """One model's status.json, echoed into the check's as its share of the whole."""

    def __init__(self, run: RunFolder, outer: _CheckStatus, index: int):
        super().__init__(run)
        self.outer, self.index = outer, index

    def update(self, **fields) -> None:
        super().update(**fields)
        done, eta = float(self.fields.get("percent") or 0), self.fields.get("eta_seconds")
        if eta is not None and self.index + 1 < len(HALVES):  # the next model takes about as long as this one
            eta += (float(self.fields.get("elapsed_seconds") or 0) + eta) * (len(HALVES) - self.index - 1)
        percent = max(float(self.outer.fields.get("percent") or 0), (100.0 * self.index + done) / len(HALVES))
        self.outer.update(phase=f"Model {self.index + 1} of {len(HALVES)}: {self.fields.get('phase', '')}",
                          percent=round(min(99.0, percent), 1), eta_seconds=eta)  # a progress bar never goes back


# command line ------------------------------------------------------------------------------------
def cli_check_labels(args: argparse.Namespace) -> int:
    """`python -m engine check-labels DATASET --out DIR [--steps N]`: run the check, print the flagged photos."""
    from engine.reading.review import review_rows
    from engine.training.trainer import StopRequested

    try:
        check_labels(args.dataset_path, args.out, steps=args.steps, progress=_printer())
    except StopRequested:
        print("Stopped.")
        return 0
    except Busy as exc:
        print(f"error: {exc}")
        return 3
    flagged = review_rows(args.dataset_path, check_dir=args.out)
    print(f"{len(flagged)} photos whose label looks wrong, most suspicious first:")
    for rank, row in enumerate(flagged, 1):
        print(f"{rank:4d}. {printable(row['file'])}  label {printable(row['label'])}  "
              f"score {row['score']:.2f}: {printable(row['reason'])}")
    return 0


def _printer() -> Progress:
    """Print a phase once (step counters and percentages would repeat it every two seconds)."""
    seen = set()

    def show(phase: str, percent: float) -> None:
        key = re.sub(r"[\d,.]+", "#", phase)
        if key not in seen:
            seen.add(key)
            print(f"[{percent:3.0f} %] {phase}", flush=True)

    return show
