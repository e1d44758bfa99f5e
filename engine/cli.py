"""Command line with aocr's subcommands and flags: dataset, train, test, predict, export.

Each subcommand lives in the module that does the work; modules are imported only when their
subcommand runs, so `python -m engine import` does not pay for loading TensorFlow.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

# subcommand -> (module, function taking the parsed args and returning an exit code)
COMMANDS = {
    "dataset": ("engine.tfrecords", "cli_dataset"),
    "import": ("engine.importer", "cli_import"),
    "sample": ("engine.sample", "cli_sample"),
    "train": ("engine.train", "cli_train"),
    "test": ("engine.evaluate", "cli_test"),
    "predict": ("engine.predict", "cli_predict"),
    "export": ("engine.export", "cli_export"),
}


def _add_model_shape(p: argparse.ArgumentParser) -> None:
    p.add_argument("--max-width", type=int, default=None, help="model input width in pixels (default 128)")
    p.add_argument("--max-height", type=int, default=None, help="model input height in pixels (default 32)")
    p.add_argument("--max-prediction", type=int, default=None, help="longest text the model reads (default: longest label + 2)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="Plate OCR Studio engine (aocr-compatible command line).")
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("dataset", help="aocr's: annotation file -> TFRecords")
    p.add_argument("annotations_path", help="text file, one 'path label' per line (or a CSV with image_path,plate_text)")
    p.add_argument("output_path", help="the .tfrecords file to write")
    p.add_argument("--keep-case", action="store_true", help="keep label case (default: upper-case)")
    p.add_argument("--max-label-length", type=int, default=None)
    p.add_argument("--shard-size", type=int, default=None, help="images per TFRecord file (default: one file)")

    p = sub.add_parser("import", help="zip, folder, annotation file or CSV -> dataset folder")
    p.add_argument("source", help="a .zip, a folder of images, an annotation file or a CSV")
    p.add_argument("--out", required=True, help="dataset folder to write")
    p.add_argument("--test", dest="test_source", default=None, help="separate test set (zip/folder/file) instead of a split")
    p.add_argument("--test-fraction", type=float, default=0.2)
    p.add_argument("--max-label-length", type=int, default=16)
    p.add_argument("--keep-case", action="store_true")
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("sample", help="write a zip of synthetic, label-named plate images")
    p.add_argument("output_path", help="a .zip file (or a folder)")
    p.add_argument("--count", type=int, default=600)
    p.add_argument("--seed", type=int, default=0)

    p = sub.add_parser("train", help="train the attention OCR model")
    p.add_argument("dataset_path", help="dataset folder, TFRecords, zip, image folder or annotation file")
    p.add_argument("--model-dir", required=True, help="the run folder: config, status, metrics, checkpoints")
    _add_model_shape(p)
    p.add_argument("--num-epoch", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--initial-learning-rate", type=float, default=None)
    p.add_argument("--steps-per-checkpoint", type=int, default=None, help="also save the last checkpoint every N steps")
    p.add_argument("--max-minutes", type=float, default=None, help="wall-clock budget, everything included")
    p.add_argument("--patience", type=int, default=None, help="epochs without better validation accuracy before stopping")
    p.add_argument("--val-dataset", default=None, help="validation data (default: a slice of the training data, held out by label)")
    p.add_argument("--strategy", default="default", choices=["default", "mirrored", "one-device"], help="tf.distribute strategy")
    p.add_argument("--preset", default=None, choices=["quick", "balanced", "best"])
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if the model dir has a checkpoint")

    p = sub.add_parser("test", help="evaluate: accuracy, predictions.csv, confusion, optional attention GIFs")
    p.add_argument("dataset_path")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--output-dir", default=None, help="where to write results (default: the model dir)")
    p.add_argument("--visualize", action="store_true", help="aocr's layout: one folder per image with image.gif and word.txt")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--split", default="test", help="which split of a dataset folder to use (test/train/all)")
    p.add_argument("--batch-size", type=int, default=256)

    p = sub.add_parser("predict", help="read plates: image paths as arguments or one per line on stdin")
    p.add_argument("images", nargs="*")
    p.add_argument("--model-dir", required=True, help="a run folder, an export folder or a bundle zip")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])

    p = sub.add_parser("export", help="SavedModel (bytes in, text out), Keras file, TFLite, download bundle")
    p.add_argument("export_path", nargs="?", default=None, help="where to write (default: MODEL_DIR/export)")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--format", default="all", choices=["all", "savedmodel", "keras", "tflite"])
    p.add_argument("--bundle", action="store_true", help="also write the download bundle zip")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    module_name, func_name = COMMANDS[args.command]
    func = getattr(importlib.import_module(module_name), func_name)
    try:
        return int(func(args) or 0)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
