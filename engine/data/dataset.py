"""The dataset folder an import writes, and the one place that knows its layout:

    labels.csv    one row per photo: file, label, split, width, height, original, digest, excluded
    images/       the accepted photos, byte for byte, under safe unique names
    report.json   what was accepted, rejected and why, and the statistics
    label_history.jsonl  every label correction and exclusion: who, when, old, new (edit_label, exclude)
    tfrecords/    train-*/test-* shards, written on demand (engine.data.tfrecords.ensure_dataset_records)

labels.csv goes through engine.storage.csvfile, so a label such as `=CMD()|A1` is plain text in a
spreadsheet and reads back unchanged. `digest` is each photo's content hash, recorded at import so
`split_fingerprint` never has to re-read every photo. `excluded` ("1") marks a photo the operator left
out: training and evaluation skip it, the split keeps it.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import unicodedata
from pathlib import Path
from typing import Iterable

from engine.data.labels import base_name, label_problem, normalize_label, split_extension
from engine.storage.csvfile import read_csv, write_csv
from engine.storage.files import now_iso, read_json, read_jsonl

LABEL_COLUMNS = ("file", "label", "split", "width", "height", "original", "digest", "excluded")


def photo_digest(data: bytes) -> str:
    """The content hash of one photo (also how the importer spots exact duplicates)."""
    return hashlib.blake2b(data, digest_size=20).hexdigest()


def is_dataset_folder(path: str | os.PathLike) -> bool:
    path = Path(path)
    return path.is_dir() and (path / "labels.csv").is_file() and (path / "images").is_dir()


class DatasetFolder:
    """Paths and readers of one imported dataset folder."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    labels_path = property(lambda self: self.path / "labels.csv")
    images_dir = property(lambda self: self.path / "images")
    report_path = property(lambda self: self.path / "report.json")
    tfrecords_dir = property(lambda self: self.path / "tfrecords")
    history_path = property(lambda self: self.path / "label_history.jsonl")

    def image_path(self, file: str) -> Path:
        """images/<file>; ValueError for a name that would leave images/ (a hand-edited labels.csv)."""
        if not file or file in (".", "..") or "/" in file or "\\" in file or "\x00" in file:
            raise ValueError(f"{self.labels_path} names an image outside images/: {file!r}")
        return self.images_dir / file

    def rows(self) -> list[dict]:
        """labels.csv as dicts (width/height as ints, excluded as a bool; `original` and `digest`
        filled in for datasets imported before those columns existed: the stored name and '')."""
        rows = []
        for row in read_csv(self.labels_path):
            rows.append({
                "file": row["file"],
                "label": row["label"],
                "split": row.get("split") or "train",
                "width": int(row.get("width") or 0),
                "height": int(row.get("height") or 0),
                "original": row.get("original") or row["file"],
                "digest": row.get("digest") or "",
                "excluded": row.get("excluded") == "1",
            })
        return rows

    def write_rows(self, rows: Iterable[dict]) -> None:
        write_csv(self.labels_path, LABEL_COLUMNS, ([_cell(row, c) for c in LABEL_COLUMNS] for row in rows))

    # corrections: labels.csv changes, images/ never does, label_history.jsonl remembers ------------
    def edit_label(self, file: str, new_label: str, who: str = "dashboard") -> None:
        """Correct the label of one photo (ValueError for an unknown file or an unusable label).
        The file name, the photo and the split stay: runs already trained keep their split fingerprint."""
        report = self.report() or {}
        label = normalize_label(new_label, keep_case=bool(report.get("keep_case")))
        problem = label_problem(label, report.get("max_label_length"))
        if problem:
            raise ValueError(problem)
        self._change(file, who, label=label)

    def exclude(self, file: str, who: str = "dashboard", excluded: bool = True) -> None:
        """Leave one photo out of training and evaluation (excluded=False takes it back)."""
        self._change(file, who, excluded=bool(excluded))

    def history(self) -> list[dict]:
        """Every correction, oldest first: {"file", "original", "old", "new", "excluded", "action", "who", "when"}."""
        return read_jsonl(self.history_path)

    def _change(self, file: str, who: str, **change) -> None:
        # the history file's lock serialises editors: two sessions cannot lose each other's edit
        with open(self.history_path, "a", encoding="utf-8") as history:
            fcntl.flock(history, fcntl.LOCK_EX)
            rows = self.rows()
            row = next((r for r in rows if r["file"] == file), None)
            if row is None:
                raise ValueError(f"{self.path.name} has no photo called {file!r}.")
            old = dict(row)
            row.update(change)
            if row == old:
                return
            self.write_rows(rows)
            action = "relabel" if "label" in change else "exclude" if row["excluded"] else "include"
            entry = {"file": file, "original": row["original"], "old": old["label"], "new": row["label"],
                     "excluded": row["excluded"], "action": action, "who": str(who), "when": now_iso()}
            history.write(json.dumps(entry, ensure_ascii=False) + "\n")

    def report(self) -> dict | None:
        return read_json(self.report_path)

    def split_fingerprint(self) -> str:
        """A short hash of which photos are on which side of the split: file name, side and photo
        content, not the label (so correcting a label keeps it). Runs record it to refuse evaluating
        or resuming against a different split."""
        lines = []
        for row in self.rows():
            digest = row["digest"] or photo_digest(self.image_path(row["file"]).read_bytes())
            lines.append(f"{row['file']}\t{row['split']}\t{digest}\n")
        return hashlib.sha256("".join(sorted(lines)).encode("utf-8")).hexdigest()[:16]


def _cell(row: dict, column: str):
    value = row.get(column, "")
    return ("1" if value else "") if column == "excluded" else value


class UniqueNamer:
    """Safe, unique file names for images/: Unicode letters kept, everything else '_', a '-2'
    suffix on clashes (compared case-insensitively, for macOS/Windows file systems)."""

    def __init__(self) -> None:
        self.used: set[int] = set()  # 64-bit hashes of the casefolded names: a third of the memory of the names

    @staticmethod
    def _key(name: str) -> int:
        return int.from_bytes(hashlib.blake2b(name.casefold().encode("utf-8"), digest_size=8).digest(), "little")

    def __call__(self, original: str) -> str:
        stem, ext = split_extension(base_name(original))
        stem = unicodedata.normalize("NFC", stem)
        stem = re.sub(r"[^\w\-]+", "_", stem).strip("._-")[:80]  # no leading '-': `rm *` in images/ stays safe
        while len(stem.encode("utf-8")) > 150:  # file systems allow 255 bytes; CJK is 3 bytes a char
            stem = stem[:-1]
        stem = stem or "image"
        name, n = f"{stem}{ext}", 1
        while self._key(name) in self.used:
            n += 1
            name = f"{stem}-{n}{ext}"
        self.used.add(self._key(name))
        return name


class FolderClaim:
    """An exclusive flock on a folder while this process works in it (an import's temp folder, an
    upload, a dataset whose TFRecords are being written).

    The kernel drops the lock when the process ends, SIGKILL included, so a claim that cannot be
    taken (wait=False raises BlockingIOError) tells a live worker's folder from a dead one's
    leftover. The lock is on the folder itself, so it follows the folder through a rename.
    """

    def __init__(self, folder: str | os.PathLike, *, wait: bool = True):
        self.fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BaseException:
            os.close(self.fd)
            raise

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> "FolderClaim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()



class SplitChanged(ValueError):
    """The dataset's split is not the one a run was trained with."""


def split_fingerprint(dataset: str | os.PathLike) -> str | None:
    path = Path(dataset)
    return DatasetFolder(path).split_fingerprint() if is_dataset_folder(path) else None


def check_split(dataset: str | os.PathLike, recorded: str | None) -> None:
    """Refuse to resume or score a run against a dataset whose split changed since the run started:
    its test photos could include photos the run trained on."""
    now = split_fingerprint(dataset)
    if recorded and now and now != recorded:
        raise SplitChanged(f"The dataset {Path(dataset).name} was replaced or re-split after this run started: "
                           "its test photos may include photos the run trained on. Start a new training instead.")
