"""Plate accuracy after a training, timed AND by steps, quiet or with the CPU shared.

    python bench/bench_accuracy.py --set tr --minutes 10               # Turkish plates, 10 minutes
    python bench/bench_accuracy.py --set tr --minutes 10 --busy 1      # the same, one core busy
    python bench/bench_accuracy.py --set us --minutes 5 --limit 150    # the first 150 US training photos
    python bench/bench_accuracy.py --set sample --preset quick --busy 1   # what a new operator gets
    python bench/bench_accuracy.py --set two-row --preset balanced        # two-row plates (generated)
    python bench/bench_accuracy.py --set two-row --layouts "es*11,es-two-row" --preset balanced
                                   # Spanish plates, 1 in 12 of them two-row (layout*weight)
    python bench/bench_accuracy.py --set two-row --layouts "es*8,es-two-row" --masked 2 --preset balanced
                                   # the same with two characters of each plate hidden ('*')

`tr`/`us` use the fixed splits of ../shared/data/plates (skipped when absent): the `train` side is
imported (never a test photo), trained on with the engine's CLI, and the best checkpoint is scored on
every photo of the `test` side. `sample` is the Data page's "Use sample data" set with its own split;
`two-row` mixes the sample's one-row plates with generated two-row ones (or the --layouts given) and
scores each kind.
Besides the timed result, the averaged model is kept at fixed step counts (--snapshots) and scored
too, so a result can be read in steps as well as in minutes. `--busy N` runs N CPU-bound processes
alongside the training (bounded in time). The final model is scored as the product reads (each photo
in the reader's views, preprocess.VIEWS) and as `read_plates.py --fast` does (the photo as given only).
`--rescore` scores the run already in --work-dir again, without training (after a change of the reader).
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from common import Busy, measure, plates_dir, split_rows, write_annotations


def _import(args: list[str], work: Path, rescore: bool) -> None:
    if rescore:
        return  # the dataset the run was trained on is in work/dataset already
    code, _, _ = measure(["import", *args], work / "import.log", work / "home")
    if code != 0:
        raise SystemExit(f"import failed; see {work / 'import.log'}")


def prepare_dataset(options, work: Path) -> tuple[Path, list | None, dict]:
    """The dataset to train on, the fixed test photos (None: the dataset's own test split), and for
    generated sets each label's number of rows."""
    from engine.data.sample import make_sample_zip
    from engine.data.sources import Example

    dataset = work / "dataset"
    if options.set in ("tr", "us"):
        folder = plates_dir(options.set)
        if folder is None:
            return dataset, [], {}
        train_list = write_annotations(folder, "train", work / "train.txt", limit=options.limit)
        _import([str(train_list), "--out", str(dataset), "--test-fraction", "0"], work, options.rescore)
        test = [Example(r["filename"], r["label"], (folder / r["filename"]).read_bytes())
                for r in split_rows(folder) if r["split"] == "test"]
        return dataset, test, {}
    if options.set == "sample":
        _import([str(make_sample_zip(work / "sample.zip", 600, 0)), "--out", str(dataset)], work, options.rescore)
        return dataset, None, {}
    from engine.data.render import TWO_ROW
    from engine.data.sample import SAMPLE_LAYOUTS, sample_items

    layouts = weighted_layouts(options.layouts) if options.layouts else SAMPLE_LAYOUTS + TWO_ROW
    zip_path = make_sample_zip(work / "mixed.zip", 1200, 0, layouts=layouts, masked=options.masked)
    _import([str(zip_path), "--out", str(dataset)], work, options.rescore)
    rows = {text.label: len(text.rows) for _, text, _ in sample_items(1200, 0, layouts, options.masked)}
    return dataset, None, rows


def weighted_layouts(text: str) -> tuple[str, ...]:
    """'es*11,es-two-row' -> ('es', ... 11 times, 'es-two-row'): each photo's layout is drawn from these."""
    names = []
    for part in text.split(","):
        name, _, weight = part.strip().partition("*")
        names += [name] * int(weight or 1)
    return tuple(names)


def score(run_dir: Path, checkpoint: Path | None, dataset: Path, test: list | None, rows: dict, fast: bool = False) -> dict:
    from engine.data.sources import load_examples
    from engine.reading.metrics import char_accuracy, plate_accuracy
    from engine.reading.reader import PlateReader

    examples = test if test is not None else load_examples(dataset, split="test")
    reader = PlateReader.from_checkpoint(checkpoint) if checkpoint else PlateReader.load(run_dir)
    if fast:
        reader.views = reader.views[:1]  # the photo as given only, as read_plates.py --fast reads
    texts = [r.text for r in reader.read([e.image for e in examples])]
    labels = [e.label for e in examples]
    result = {"plate": plate_accuracy(texts, labels), "char": char_accuracy(texts, labels), "count": len(labels),
              "correct": sum(t == lab for t, lab in zip(texts, labels))}
    for kind, count in (("one_row", 1), ("two_row", 2)) if rows else ():
        idx = [i for i, lab in enumerate(labels) if rows.get(lab) == count]
        result[kind] = plate_accuracy([texts[i] for i in idx], [labels[i] for i in idx]) if idx else 0.0
        result[f"{kind}_count"] = len(idx)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", default="tr", choices=["tr", "us", "sample", "two-row"])
    parser.add_argument("--minutes", type=float, default=None, help="time limit (default: the preset's, else 10)")
    parser.add_argument("--steps", type=int, default=None, help="step limit (default: the preset's, else as many as the time allows)")
    parser.add_argument("--preset", default=None, choices=["quick", "balanced", "best"])
    parser.add_argument("--layouts", default=None, help="two-row set: layouts to draw from, e.g. 'es*11,es-two-row'")
    parser.add_argument("--masked", type=int, default=0, help="two-row set: characters hidden on each plate ('*' in its label)")
    parser.add_argument("--limit", type=int, default=None, help="only the first N training photos (split.csv order)")
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes running alongside the training")
    parser.add_argument("--snapshots", default="200,500,1000", help="also score the model after these steps")
    parser.add_argument("--work-dir", default=None, help="keep the dataset and run here (default: a temp folder)")
    parser.add_argument("--rescore", action="store_true", help="score the run in --work-dir again, without training")
    parser.add_argument("train_args", nargs="*", help="more flags for `engine train` (after --)")
    options = parser.parse_args()
    work = Path(options.work_dir or tempfile.mkdtemp(prefix=f"bench-{options.set}-"))
    work.mkdir(parents=True, exist_ok=True)
    dataset, test, rows = prepare_dataset(options, work)
    if test == []:
        return 0
    limits = []
    if options.preset:
        limits += ["--preset", options.preset]
    if options.minutes is not None or not options.preset:
        limits += ["--max-minutes", str(options.minutes or 10.0)]
    if options.steps is not None or not options.preset:
        limits += ["--max-steps", str(options.steps or 1_000_000)]
    run_dir = work / "run"
    args = ["train", str(dataset), "--model-dir", str(run_dir), "--no-resume", "--snapshot-steps", options.snapshots,
            *limits, *options.train_args]
    budget = 60 * (options.minutes or 45) + 600
    with Busy(0 if options.rescore else options.busy, budget) as busy:
        code, peak, seconds = (0, 0.0, 0.0) if options.rescore else measure(args, work / "train.log", work / "home")
    if code != 0:
        print(f"training failed (exit {code}); see {work / 'train.log'} and {run_dir / 'train.log'}")
        return 1
    status = json.loads((run_dir / "status.json").read_text())
    final = score(run_dir, None, dataset, test, rows)
    resolved = json.loads((run_dir / "config.json").read_text()).get("resolved", {})
    print(f"set: {options.set}{f' (first {options.limit} training photos)' if options.limit else ''}  "
          f"training photos: {resolved.get('train_images')} (+{resolved.get('check_images')} held out for checks)  "
          f"test photos: {final['count']}  input: {resolved.get('input')}  started from: "
          f"{resolved.get('started_from', {}).get('from')}")
    load = "the training's, as its first run printed (--rescore)" if options.rescore else busy.describe()
    print(f"load: {load}; command: python bench/bench_accuracy.py {' '.join(sys.argv[1:])}")
    if options.rescore:
        print(f"training: not run again (--rescore): {status.get('step')} steps; see {work / 'train.log'} for its figures")
    else:
        print(f"training: {seconds / 60:.1f} min wall time, {status.get('step')} steps, peak memory {peak:.0f} MB "
              f"(limits: {' '.join(limits)})")
    for step in [int(s) for s in options.snapshots.split(",") if s]:
        snap = run_dir / "checkpoints" / f"step-{step}.npz"
        if snap.exists():
            got = score(run_dir, snap, dataset, test, rows)
            print(f"after {step:>5} steps: plate accuracy {got['plate']:.2%} ({got['correct']}/{got['count']})")
    print(f"final (best held-out check): plate accuracy {final['plate']:.2%} ({final['correct']}/{final['count']}), "
          f"character accuracy {final['char']:.2%}")
    alone = score(run_dir, None, dataset, test, rows, fast=True)
    print(f"the same model reading the photo as given only (read_plates.py --fast): {alone['plate']:.2%} "
          f"({alone['correct']}/{alone['count']})" + (f"; two-row {alone['two_row']:.2%}, one-row {alone['one_row']:.2%}"
                                                      if "two_row" in alone else ""))
    if "two_row" in final:
        print(f"two-row plates: {final['two_row']:.2%} of {final['two_row_count']}; "
              f"one-row plates: {final['one_row']:.2%} of {final['one_row_count']}")
    print(f"run folder: {run_dir}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
