"""One loader for everything the data layer reads: `load_examples(source, split)`.

A source may be an imported dataset folder, a .tfrecords file (ours or aocr's), a folder or glob
of them, a zip, an image folder, an aocr annotation file or a CSV. Raw sources go through the
importer's checks, so training and evaluation never see a file the importer would reject.
"""
from __future__ import annotations

import glob
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from engine.data.dataset import DatasetFolder, is_dataset_folder
from engine.storage.text import printable

__all__ = ["Example", "is_dataset_folder", "load_dataset_folder", "load_examples", "load_raw", "SPLITS", "TFRECORD_SUFFIXES"]

log = logging.getLogger(__name__)

SPLITS = (None, "all", "train", "test")
TFRECORD_SUFFIXES = (".tfrecords", ".tfrecord")


@dataclass
class Example:
    file: str  # a name a person recognizes (relative to the dataset's images/, or the original name)
    label: str
    image: bytes = field(repr=False)  # the original encoded file (JPEG/PNG/...), never re-encoded


def _has_glob(text: str) -> bool:
    return any(c in text for c in "*?[")


def _tfrecords_in(folder: Path, split: str | None) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in TFRECORD_SUFFIXES and p.is_file())
    if split in ("train", "test"):
        files = [p for p in files if p.name.startswith(f"{split}-") or p.name.startswith(f"{split}.")]
    return files


def _is_binary(path: Path) -> bool:
    """TFRecord files start with an 8-byte little-endian length, so they hold NUL bytes; text doesn't."""
    with open(path, "rb") as f:
        return b"\x00" in f.read(4096)


def load_dataset_folder(folder: Path, split: str | None = None) -> list[Example]:
    """Examples of an imported dataset, straight from images/ and labels.csv (no TensorFlow needed)."""
    dataset = DatasetFolder(folder)
    return [
        Example(row["file"], row["label"], dataset.image_path(row["file"]).read_bytes())
        for row in dataset.rows()
        if (split not in ("train", "test") or row["split"] == split) and not row["excluded"]
    ]


def load_raw(source: Path, *, keep_case: bool = False, max_label_length: int | None = None) -> list[Example]:
    """A zip, image folder, annotation file or CSV, checked like an import; rejected files are logged."""
    from engine.data.importer import collect_examples

    examples, rejected = collect_examples(source, keep_case=keep_case, max_label_length=max_label_length)
    for item in rejected:
        log.warning("skipped %s: %s", printable(item["file"]), printable(item["reason"]))
    return examples


def load_examples(
    source: str | os.PathLike,
    split: str | None = None,
    *,
    keep_case: bool = False,
    max_label_length: int | None = None,
) -> list[Example]:
    """Every example of `source` (see the module doc), optionally only its "train" or "test" part.

    `split` selects within a dataset folder (labels.csv's split column) or a folder of TFRecords
    (the `train-*` / `test-*` files). Any other source is one set already (e.g. an operator's
    separate test zip) and is returned whole whatever `split` says.
    `keep_case` and `max_label_length` apply to raw sources only (a dataset's labels are final).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be 'train', 'test' or 'all' (got {split!r}).")
    from engine.data import tfrecords

    text = os.fspath(source)
    path = Path(text).expanduser()
    if not path.exists() and _has_glob(text):
        files = sorted(Path(p) for p in glob.glob(os.path.expanduser(text)))
        if not files:
            raise FileNotFoundError(f"No files match {text}.")
        return list(tfrecords.read_tfrecords(files))
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    if is_dataset_folder(path):
        return load_dataset_folder(path, split)
    if path.is_dir():
        records = _tfrecords_in(path, split)
        if records:
            return list(tfrecords.read_tfrecords(records))
        return load_raw(path, keep_case=keep_case, max_label_length=max_label_length)
    if path.suffix.lower() in TFRECORD_SUFFIXES or (
        path.suffix.lower() not in (".zip", ".csv", ".txt") and _is_binary(path)
    ):
        return list(tfrecords.read_tfrecords([path]))
    return load_raw(path, keep_case=keep_case, max_label_length=max_label_length)
