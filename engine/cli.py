"""Command line with aocr's subcommands and flags: dataset, train, test, predict, export (and ours).

Each subcommand's work lives in the module that does it; modules are imported only when their
subcommand runs, so `python -m engine import` does not pay for loading TensorFlow. The `train`
flags are generated from engine/training/settings.py, the one declaration of every setting.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import sys

from engine.model.precision import PRECISIONS
from engine.training.settings import PRESETS, TrainConfig, config_for, offered_settings, setting_type

# subcommand -> (module, function taking the parsed args and returning an exit code)
COMMANDS = {
    "dataset": ("engine.data.tfrecords", "cli_dataset"),
    "import": ("engine.data.importer", "cli_import"),
    "sample": ("engine.data.sample", "cli_sample"),
    "train": ("engine.cli", "cli_train"),
    "pretrain": ("engine.training.pretrain", "cli_pretrain"),
    "test": ("engine.reading.evaluate", "cli_test"),
    "predict": ("engine.reading.predict", "cli_predict"),
    "export": ("engine.reading.export", "cli_export"),
    "check-labels": ("engine.training.labelcheck", "cli_check_labels"),
}


def _csv_ints(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.replace(" ", "").split(",") if part)


def add_setting_flags(p: argparse.ArgumentParser) -> None:
    """One flag per offered TrainConfig setting; unset flags stay None (the preset's value is used)."""
    for name, meta, default in offered_settings():
        kind = setting_type(name)
        convert = _csv_ints if kind is tuple else kind
        extra = {"choices": meta["choices"]} if meta.get("choices") else {}
        shown = "automatic" if default is None else (",".join(map(str, default)) or "none") if kind is tuple else default
        p.add_argument(meta["flag"], dest=name, type=convert, default=None,
                       help=f"{meta['help']} (default: {shown})", **extra)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m engine", description="Plate OCR Studio engine (aocr-compatible command line).")
    parser.add_argument("--log-level", default="INFO")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("dataset", help="aocr's: annotation file -> TFRecords (or a dataset folder's shards)")
    p.add_argument("annotations_path", help="text file, one 'path label' per line, a CSV with image_path,plate_text, "
                                            "or an imported dataset folder")
    p.add_argument("output_path", nargs="?", default=None,
                   help="the .tfrecords file to write (for a dataset folder: default its tfrecords/ shards)")
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
    p.add_argument("--max-files", type=int, default=1_000_000,
                   help="refuse sources with more photos than this (the Data page accepts 50,000 per upload)")

    p = sub.add_parser("sample", help="write a zip of synthetic, label-named plate images")
    p.add_argument("output_path", help="a .zip file (or a folder)")
    p.add_argument("--count", type=int, default=600)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--layouts", default=None, help="comma-separated plate layouts (default: the sample's mix; "
                                                   "'two-row' for plates with two rows of text)")
    p.add_argument("--masked", type=int, default=0,
                   help="hide this many characters of each plate, written '*' in its file name, as datasets "
                        "published for privacy do (e.g. 2)")

    p = sub.add_parser("train", help="train the plate reader (starts from the starter model by default)")
    p.add_argument("dataset_path", nargs="?", default=None,
                   help="dataset folder, TFRecords, zip, image folder or annotation file "
                        "(optional when MODEL_DIR already holds a run's config.json)")
    p.add_argument("--model-dir", required=True, help="the run folder: config, status, metrics, checkpoints")
    p.add_argument("--preset", default=None, choices=list(PRESETS))
    add_setting_flags(p)
    p.add_argument("--val-dataset", default=None, help="validation data (default: a slice of the training data, held out by plate)")
    p.add_argument("--no-resume", action="store_true", help="start from scratch even if the model dir has a checkpoint")

    p = sub.add_parser("pretrain", help="make the starter model from rendered plates (docs/PRETRAINING.md)")
    p.add_argument("--work-dir", required=True, help="where rendered plates and the pretraining run are kept")
    p.add_argument("--plates", type=int, default=200_000, help="rendered plates to learn from")
    p.add_argument("--steps", type=int, default=30_000)
    p.add_argument("--minutes", type=float, default=60.0, help="time limit of the training part")
    p.add_argument("--real", default=None, help="a folder or annotation file of real photos to mix in (MIT-licensed TR train split)")
    p.add_argument("--output", default=None, help="where to write the starter (default: engine/model/starter/starter.npz)")
    p.add_argument("--workers", type=int, default=2, help="processes rendering plates")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--precision", default="auto", choices=PRECISIONS,
                   help="arithmetic of the training steps (auto: bfloat16 on CPUs with AMX or AVX-512 BF16)")
    p.add_argument("--init-from", default="none",
                   help="none: from scratch; starter or a run folder: a later stage continuing that model on new plates")
    p.add_argument("--boxes", default=None,
                   help="input sizes learned, HEIGHTxWIDTH, long plates first (default: the engine's three, e.g. 32x128,48x128,80x160)")

    p = sub.add_parser("test", help="evaluate: accuracy, predictions.csv, confusion, optional attention GIFs")
    p.add_argument("dataset_path")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--output-dir", default=None, help="where to write results (default: the model dir)")
    p.add_argument("--visualize", action="store_true", help="aocr's layout: one folder per image with image.gif and word.txt")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--split", default="test", help="which split of a dataset folder to use (test/train/all)")
    p.add_argument("--batch-size", type=int, default=256)

    p = sub.add_parser("predict", help="read plates: image paths, folders or zips as arguments, or one path per line on stdin")
    p.add_argument("images", nargs="*")
    p.add_argument("--model-dir", required=True, help="a run folder, an export folder or a bundle zip")
    p.add_argument("--checkpoint", default="best", choices=["best", "last"])
    p.add_argument("--csv", default=None, help="write file,reading,confidence,accepted to this CSV instead of printing")

    p = sub.add_parser("export", help="SavedModel (bytes in, text out), Keras file, TFLite, download bundle")
    p.add_argument("export_path", nargs="?", default=None, help="where to write (default: MODEL_DIR/export)")
    p.add_argument("--model-dir", required=True)
    p.add_argument("--format", default="all", choices=["all", "savedmodel", "keras", "tflite"])
    p.add_argument("--bundle", action="store_true", help="also write the download bundle zip")

    p = sub.add_parser("check-labels", help="find likely wrong labels: two models, each reading the half it never saw")
    p.add_argument("dataset_path", help="an imported dataset folder")
    p.add_argument("--out", required=True, help="the check's folder: status, the two models, label_check.csv")
    p.add_argument("--steps", type=int, default=600, help="training steps of each of the two models (default: 600)")
    return parser


def settings_from_args(args: argparse.Namespace) -> TrainConfig:
    """The preset, then every flag given (flags not given keep the preset's or the default value)."""
    return config_for(args.preset, **{name: getattr(args, name) for name, _, _ in offered_settings()})


def cli_train(args: argparse.Namespace) -> int:
    from engine.training.run import run_training

    given = {name: getattr(args, name) for name, _, _ in offered_settings() if getattr(args, name) is not None}
    settings = settings_from_args(args) if (given or args.preset or args.dataset_path) else None
    return run_training(args.model_dir, args.dataset_path, settings, val_dataset=args.val_dataset,
                        resume=not args.no_resume, preset=args.preset)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    if logging.getLogger().level >= logging.INFO:
        # TensorFlow's INFO lines (through absl: a 3,000-character one for every SavedModel) drown the log
        for library in ("tensorflow", "absl"):
            logging.getLogger(library).setLevel(logging.WARNING)
    module_name, func_name = COMMANDS[args.command]
    func = getattr(importlib.import_module(module_name), func_name)
    try:
        return int(func(args) or 0)
    except (FileNotFoundError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
