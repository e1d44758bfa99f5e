"""Plate accuracy after a fixed training time on a real third-party set (../shared/data/plates).

    python bench/bench_accuracy.py --set tr --minutes 10

Imports the fixed `train` side, trains with the engine's CLI under a wall-clock budget (the whole
training process counts, TensorFlow start-up included), then scores the best checkpoint on every
image of the fixed `test` side. Skips cleanly when ../shared is absent.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import ROOT, plates_dir, split_rows, write_annotations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", default="tr", choices=["tr", "us"])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--work-dir", default=None, help="keep the dataset and run here (default: a temp folder)")
    parser.add_argument("train_args", nargs="*", help="extra flags for `engine train` (after --)")
    args = parser.parse_args()
    folder = plates_dir(args.set)
    if folder is None:
        return 0
    work = Path(args.work_dir or tempfile.mkdtemp(prefix=f"bench-{args.set}-"))
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PLATE_STUDIO_HOME": str(work / "home"), "TF_CPP_MIN_LOG_LEVEL": "2"}
    engine = [sys.executable, "-m", "engine"]

    train_list = write_annotations(folder, "train", work / "train.txt")
    dataset = work / "dataset"
    subprocess.run([*engine, "import", str(train_list), "--out", str(dataset), "--test-fraction", "0"],
                   cwd=ROOT, env=env, check=True, capture_output=True)
    run_dir = work / "run"
    t0 = time.time()
    subprocess.run([*engine, "train", str(dataset), "--model-dir", str(run_dir), "--max-minutes", str(args.minutes),
                    "--no-resume", *args.train_args], cwd=ROOT, env=env, check=True)
    train_seconds = time.time() - t0

    # score every image of the fixed test side (exact duplicates included, so figures stay comparable)
    sys.path.insert(0, str(ROOT))
    from engine.reading.evaluate import evaluate
    from engine.data.sources import Example

    test = [Example(r["filename"], r["label"], (folder / r["filename"]).read_bytes())
            for r in split_rows(folder) if r["split"] == "test"]
    result = evaluate(run_dir, test, output_dir=work / "test")
    print(f"set: {args.set}  train images: {sum(r['split'] == 'train' for r in split_rows(folder))}  "
          f"test images: {result['count']}")
    print(f"training wall time: {train_seconds / 60:.1f} min (budget {args.minutes} min, process start to exit)")
    print(f"plate accuracy (exact match): {result['plate_accuracy']:.2%}  ({result['correct']}/{result['count']})")
    print(f"character accuracy (1 - CER): {result['char_accuracy']:.2%}")
    print(f"aocr score (edit distance):   {result['aocr_score']:.2%}")
    print(f"run folder: {run_dir}; predictions: {work / 'test' / 'predictions.csv'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
