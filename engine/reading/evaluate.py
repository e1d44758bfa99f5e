"""Evaluation: `python -m engine test DATASET --model-dir RUN [--visualize] [--output-dir DIR]`.

Writes evaluation.json (plate accuracy, character accuracy, aocr's score), predictions.csv
(file,label,prediction,confidence,correct) and confusion.csv into the output folder.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Sequence

from engine.data.sources import Example, load_examples
from engine.reading.metrics import aocr_score, char_accuracy, confusion_counts, plate_accuracy
from engine.storage.csvfile import write_csv
from engine.storage.files import atomic_write_json, now_iso


def evaluate(model_dir: str | os.PathLike, dataset: str | os.PathLike | Sequence[Example], output_dir=None, *,
             split: str | None = "test", checkpoint: str = "best", visualize: bool = False, reader=None) -> dict:
    """Read every example, score it, write the result files; returns the evaluation dict."""
    from engine.reading.reader import PlateReader

    examples = list(dataset) if isinstance(dataset, (list, tuple)) else load_examples(dataset, split=_split_arg(dataset, split))
    if not examples:
        raise ValueError(f"No images to evaluate in {dataset}.")
    reader = reader or PlateReader.load(model_dir, checkpoint=checkpoint)
    readings = reader.read([e.image for e in examples])
    labels = [e.label for e in examples]
    texts = [r.text for r in readings]
    out = Path(output_dir or model_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = {
        "plate_accuracy": plate_accuracy(texts, labels),
        "char_accuracy": char_accuracy(texts, labels),
        "aocr_score": aocr_score(texts, labels),
        "count": len(examples),
        "correct": sum(t == l for t, l in zip(texts, labels)),
        # absolute, as a run's config has it: the dashboard shows the photos from it, from its own folder
        "dataset": os.path.abspath(dataset) if not isinstance(dataset, (list, tuple)) else "(examples)",
        "checkpoint": checkpoint,
        "evaluated_at": now_iso(),
    }
    _write_predictions(out / "predictions.csv", examples, readings)
    _write_confusion(out / "confusion.csv", texts, labels)
    atomic_write_json(out / "evaluation.json", result)
    if visualize:
        from engine.reading.attention_gif import write_visualization

        write_visualization(out, examples, readings)
    return result


def _split_arg(dataset, split: str | None) -> str | None:
    # a dataset folder has splits; other sources (zip, tfrecords, folder of images) are read whole
    return None if split in (None, "", "all") else split


PREDICTION_COLUMNS = ["file", "label", "prediction", "confidence", "correct"]


def _write_predictions(path: Path, examples: Sequence[Example], readings) -> None:
    write_csv(path, PREDICTION_COLUMNS,
              ([e.file, e.label, r.text, f"{r.confidence:.4f}", int(r.text == e.label)] for e, r in zip(examples, readings)))


def _write_confusion(path: Path, texts: Sequence[str], labels: Sequence[str]) -> None:
    counts = sorted(confusion_counts(texts, labels).items(), key=lambda kv: (-kv[1], kv[0]))
    write_csv(path, ["label_char", "predicted_char", "count"], ([a, b, n] for (a, b), n in counts))


def cli_test(args: argparse.Namespace) -> int:
    from engine.data.dataset import check_split
    from engine.storage.runfolder import RunFolder

    config = RunFolder(args.model_dir).config()
    trained_on = config.get("dataset")
    if trained_on and Path(trained_on).resolve() == Path(args.dataset_path).resolve():
        check_split(args.dataset_path, (config.get("resolved") or {}).get("split_fingerprint") or config.get("split_fingerprint"))
    result = evaluate(args.model_dir, args.dataset_path, args.output_dir, split=args.split,
                      checkpoint=args.checkpoint, visualize=args.visualize)
    out = args.output_dir or args.model_dir
    if config and Path(out).resolve() == Path(args.model_dir).resolve():  # a run folder, scored in itself
        _judge_run(RunFolder(out), result)
    print(f"images: {result['count']}")
    print(f"plate accuracy (exact match): {result['plate_accuracy']:.2%}")
    print(f"character accuracy (1 - CER): {result['char_accuracy']:.2%}")
    print(f"aocr score (edit distance):   {result['aocr_score']:.2%}")
    print(f"wrote {Path(out) / 'predictions.csv'}, confusion.csv, evaluation.json")
    return 0


def _judge_run(run, result: dict) -> None:
    """A run scored in its own folder (aocr's recipe: `test testing.tfrecords` after `train`) gets the
    verdict its training would have given it with this score, so the dashboard judges by the score."""
    from engine.reading.verdict import judge

    best = run.status().get("best_val_plate_accuracy")
    verdict = judge(result, best, run.config().get("resolved") or {})
    atomic_write_json(run.evaluation_path, {**result, "verdict": verdict})
