"""Import a zip, an image folder, an annotation file or a CSV into a dataset folder.

Every image is checked (header first with Pillow, so a file claiming 100000x100000 pixels never
allocates, then one full decode with OpenCV); each rejected file gets a reason an operator
understands, and one bad file never stops the import. What one import may cost is bounded: the
zip by engine.data.safezip, each photo by engine.data.images' limits, and all photos together by a
budget of decoded pixels (files past it are refused with that reason, never decoded).

The dataset is built in a hidden temp folder next to `out_dir`, held with a FolderClaim while it
is written, and renamed into place at the end, so a failed import never leaves a half dataset; a
killed one leaves a folder that `clean_leftovers` (run at dashboard start-up and by the CLI)
removes. No TensorFlow here: TFRecords are written on demand by engine.data.tfrecords.

(Over 300 lines: checking, writing and publishing share the Checked/Row records and the budget;
listing sources lives in engine.data.listing, image rules in engine.data.images.)
"""
from __future__ import annotations

import contextlib
import csv
import errno
import logging
import os
import re
import shutil
import statistics
import sys
import threading
import time
import uuid
from array import array
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from engine.data.dataset import DatasetFolder, FolderClaim, UniqueNamer, photo_digest
from engine.data.images import MAX_TOTAL_PIXELS, PIXELS_PER_PHOTO, image_problem, too_large
from engine.data.labels import label_problem
from engine.data.listing import Candidate, list_source
from engine.data.safezip import ImportRefused, UnsafeArchive, ZipLimits
from engine.data.sources import Example
from engine.data.split import grouped_split
from engine.storage.files import atomic_write_json, is_out_of_space, now_iso, read_json
from engine.storage.paths import data_home, datasets_dir
from engine.storage.text import printable

__all__ = ["import_dataset", "load_report", "report_frame", "collect_examples", "clean_leftovers",
           "ImportRefused", "UnsafeArchive", "ZipLimits"]

log = logging.getLogger(__name__)

Progress = Callable[[int, int], None]


# --- checking one candidate --------------------------------------------------------------------
@dataclass
class Checked:
    candidate: Candidate
    data: bytes | None = None
    width: int = 0
    height: int = 0
    digest: str = ""
    pixels: int = 0  # decoded to check it (counts against the import's pixel budget)
    passed_names: bool = False  # got past the checks made without reading the file
    reason: str | None = None  # set when left out (an exact copy of an earlier accepted file too)


class PixelBudget:
    """Decoded pixels of one import. Charged in file order by the one thread that consumes the
    results (so which files are refused does not depend on thread timing); `exhausted` tells the
    workers to stop reading files at all."""

    def __init__(self, limit: int):
        self.limit, self.spent = limit, 0
        self.exhausted = threading.Event()

    @property
    def reason(self) -> str:
        return (f"left out: this import reached its limit of {self.limit / 1e9:g} gigapixels of photos to decode "
                f"(enough for about {self.limit // PIXELS_PER_PHOTO:,} plate photos); import the rest in another zip")

    def charge(self, pixels: int) -> bool:
        """Add one file's pixels; False once the budget is overrun (by this file or an earlier one)."""
        if self.exhausted.is_set():
            return False
        self.spent += pixels
        if self.spent > self.limit:
            self.exhausted.set()
            return False
        return True


def check_candidate(candidate: Candidate, max_label_length: int | None, budget: PixelBudget) -> Checked:
    """Read and check one file. Never raises for a bad file (only for an archive-level refusal)."""
    checked = Checked(candidate)
    checked.reason = candidate.problem or label_problem(candidate.label, max_label_length)
    if checked.reason:
        return checked
    checked.passed_names = True
    if budget.exhausted.is_set():
        checked.reason = budget.reason
        return checked
    try:
        data = candidate.load()
    except UnsafeArchive:
        raise
    except Exception as exc:  # unreadable file: reject it, keep going
        checked.reason = str(exc) if isinstance(exc, ValueError) else f"the file cannot be read ({exc})"
        return checked
    try:
        checked.reason, checked.width, checked.height = image_problem(data)
    except Exception as exc:  # a decoder bug on a weird file must not stop the import
        checked.reason = f"the image cannot be checked ({type(exc).__name__}: {exc})"
    if too_large(checked.width, checked.height) is None:
        checked.pixels = checked.width * checked.height
    if checked.reason is None:
        checked.data = data
        checked.digest = photo_digest(data)
    return checked


def _ordered_map(fn: Callable, items: Iterable, workers: int, window: int) -> Iterator:
    """fn over items in a thread pool, results in input order, at most `window` in flight
    (OpenCV and zlib release the GIL, so two threads use both cores; the window bounds memory)."""
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import") as pool:
        pending: deque = deque()
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= window:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def check_candidates(
    candidates: Iterable[Candidate],
    total: int,
    max_label_length: int | None,
    max_total_pixels: int,
    progress: Progress | None = None,
    on_accept: Callable[[int, bytes], None] | None = None,
) -> Iterator[Checked]:
    """Check every candidate (in a small thread pool), in order: exact copies of an earlier accepted
    file are left out (the first copy is kept), files past the pixel budget refused.

    `on_accept(index, data)` runs in the worker thread for each file that passed its checks, so
    file writes happen in parallel too; the bytes are then dropped (memory stays per worker).
    Without it, accepted files keep their bytes in `.data`.
    """
    workers = max(2, min(4, len(os.sched_getaffinity(0))))  # the cores this process may use
    every = max(1, total // 200)  # ~200 progress updates, whatever the size
    budget = PixelBudget(max_total_pixels)
    seen: dict[bytes, str] = {}  # digest -> first file with it (as bytes: a third of the memory of the hex text)
    if progress:
        progress(0, total)

    def work(item: tuple[int, Candidate]) -> Checked:
        checked = check_candidate(item[1], max_label_length, budget)
        if checked.reason is None and on_accept is not None:
            on_accept(item[0], checked.data)
            checked.data = None
        return checked

    for done, checked in enumerate(_ordered_map(work, enumerate(candidates), workers, 64), 1):
        if checked.passed_names and not budget.charge(checked.pixels):
            checked.reason, checked.data = budget.reason, None
        elif checked.reason is None:
            key = bytes.fromhex(checked.digest[:32])  # 128 bits tell photos apart
            if key in seen:
                checked.reason, checked.data = f"exact copy of {seen[key]}: the first copy was kept", None
            else:
                seen[key] = checked.candidate.name
        if progress and (done % every == 0 or done == total):
            progress(done, total)
        yield checked


def _issue(name: str, reason: str) -> dict:
    return {"file": name, "reason": reason}


def collect_examples(
    source: str | os.PathLike,
    *,
    keep_case: bool = False,
    max_label_length: int | None = None,
    limits: ZipLimits | None = None,
    max_total_pixels: int = MAX_TOTAL_PIXELS,
) -> tuple[list[Example], list[dict]]:
    """Checked examples of a raw source, in memory: (examples, rejected)."""
    examples, rejected = [], []
    with contextlib.ExitStack() as stack:
        listing = list_source(source, stack, keep_case=keep_case, limits=limits)
        for checked in check_candidates(listing.candidates, len(listing.candidates), max_label_length, max_total_pixels):
            if checked.reason:
                rejected.append(_issue(checked.candidate.name, checked.reason))
            else:
                examples.append(Example(checked.candidate.name, checked.candidate.label, checked.data))
    return examples, rejected


# --- writing the dataset -----------------------------------------------------------------------
# An import of 100k photos must not hold 100k records: each accepted photo's row goes to a partial
# CSV as soon as it is checked, and memory keeps only what the split and the summary need.
PARTIAL = "labels.partial.csv"
PARTIAL_COLUMNS = ("file", "label", "width", "height", "original", "digest", "test")


@dataclass
class Accepted:
    """The accepted photos, in file order: their rows are in the partial CSV, these columns in memory
    (labels only once checking is over and its memory is free: see `_read_labels`)."""

    labels: list[str] = field(default_factory=list)
    tests: bytearray = field(default_factory=bytearray)  # 1: from the separate test source
    widths: array = field(default_factory=lambda: array("I"))
    heights: array = field(default_factory=lambda: array("I"))

    def __len__(self) -> int:
        return len(self.tests)


def _write_accepted(
    candidates: Iterable[Candidate], total: int, images: Path, max_label_length: int | None, max_total_pixels: int,
    progress: Progress | None,
) -> tuple[Accepted, list[dict]]:
    """Check every candidate, save accepted photos to images/ and their rows to the partial CSV;
    returns them and the files left out."""
    namer = UniqueNamer()
    stored: dict[int, str] = {}  # names of the files in flight (at most the checking window)

    def named() -> Iterator[Candidate]:
        for index, cand in enumerate(candidates):
            stored[index] = namer(cand.name)  # decided here, in file order: deterministic
            yield cand

    folder = os.fspath(images)  # paths joined as text: a Path per photo would intern every name

    def save(index: int, data: bytes) -> None:
        with open(os.path.join(folder, stored[index]), "xb") as f:  # "x": never overwrite anything
            f.write(data)

    accepted, rejected = Accepted(), []
    with open(images.parent / PARTIAL, "w", encoding="utf-8", newline="") as partial:
        rows = csv.writer(partial)
        for index, checked in enumerate(check_candidates(named(), total, max_label_length, max_total_pixels, progress, save)):
            cand, file = checked.candidate, stored.pop(index)
            shown = f"{cand.name} (test set)" if cand.test else cand.name
            if checked.reason:
                with contextlib.suppress(FileNotFoundError):  # saved by its worker before the verdict
                    os.unlink(os.path.join(folder, file))
                rejected.append(_issue(shown, checked.reason))
            else:
                rows.writerow((file, cand.label, checked.width, checked.height, cand.name, checked.digest, int(cand.test)))
                accepted.tests.append(cand.test)
                accepted.widths.append(checked.width)
                accepted.heights.append(checked.height)
    return accepted, rejected


# A plate is photographed a few times, not by the hundred: a label that a quarter of the photos share
# comes from names that are not plate text (a camera's IMG_1234.jpg gives every photo the label IMG).
SHARED_LABEL_SHARE, SHARED_LABEL_MIN = 0.25, 8


def _shared_label_warnings(labels: list[str], label_files: list[str]) -> list[dict]:
    warnings = []
    for label, count in Counter(labels).most_common(3):
        if count >= SHARED_LABEL_MIN and count >= SHARED_LABEL_SHARE * len(labels):
            if label_files:
                where, fix = "in " + ", ".join(label_files), "check that its label column holds each photo's plate text"
            else:
                where, fix = "from their file names", ("name each photo by its plate text (34FK4522.jpg), or put a CSV "
                                                       "with the columns file,label in the zip")
            warnings.append(_issue(f"{count:,} photos", f"{count:,} of the {len(labels):,} photos got the same label "
                                   f"'{label}' {where}: a plate is not photographed that often, so these are "
                                   f"probably not plate text; {fix}"))
    return warnings


def _read_labels(folder: Path) -> list[str]:
    with open(folder / PARTIAL, encoding="utf-8", newline="") as partial:
        return [values[PARTIAL_COLUMNS.index("label")] for values in csv.reader(partial)]


def _assign_split(accepted: Accepted, has_test_source: bool, test_fraction: float, seed: int) -> list[str]:
    """Each accepted photo's split: its source's with a test source, else grouped by plate text."""
    if has_test_source:
        return ["test" if test else "train" for test in accepted.tests]
    return grouped_split(accepted.labels, test_fraction, seed)


def _write_labels(folder: Path, splits: list[str], train_labels: set[str]) -> list[dict]:
    """labels.csv from the partial CSV and the splits (streamed); returns the warnings for test
    photos whose plate is also in the training set."""
    warnings: list[dict] = []

    def rows() -> Iterator[dict]:
        with open(folder / PARTIAL, encoding="utf-8", newline="") as partial:
            for values, split in zip(csv.reader(partial), splits, strict=True):
                row = dict(zip(PARTIAL_COLUMNS, values))
                if row.pop("test") == "1" and row["label"] in train_labels:
                    warnings.append(_issue(f"{row['original']} (test set)", f"the plate {row['label']} is also in the "
                                                                            "training set, so the test score will look better than it is"))
                yield {**row, "split": split}

    DatasetFolder(folder).write_rows(rows())
    (folder / PARTIAL).unlink()
    return warnings


def _size_stats(values: Iterable[int]) -> dict:
    values = sorted(values)
    return {"min": values[0], "median": statistics.median(values), "max": values[-1]} if values else {}


def _stats(accepted: Accepted, splits: list[str]) -> dict:
    chars = Counter()
    lengths = Counter()
    for label in accepted.labels:
        chars.update(label)
        lengths[len(label)] += 1
    return {
        "charset": "".join(sorted(chars)),
        "char_histogram": {c: chars[c] for c in sorted(chars)},
        "label_length_histogram": {str(n): lengths[n] for n in sorted(lengths)},
        "image_size": {"width": _size_stats(accepted.widths), "height": _size_stats(accepted.heights)},
        "train": splits.count("train"),
        "test": splits.count("test"),
    }


def _refusal_summary(source: Path, rejected: list[dict]) -> str:
    reasons = Counter(item["reason"].split(":")[0] for item in rejected)
    top = "; ".join(f"{n} x {reason}" for reason, n in reasons.most_common(3))
    return f"No usable images in {source.name}" + (f" ({len(rejected)} rejected: {top})." if rejected else " (it holds no image files).")


def _publish(tmp: Path, out_dir: Path, overwrite: bool) -> None:
    """Move the finished dataset into place; an old one (overwrite) is removed only afterwards,
    and claimed meanwhile so that neither clean_leftovers nor a TFRecords writer touches it."""
    if out_dir.exists() and not overwrite:
        raise ImportRefused(f"{out_dir} already exists; choose another name or allow overwriting.")
    # decided once: a dataset another import publishes after the check above is never moved aside
    # unless replacing was asked for (the rename below then finds the name taken and refuses)
    replacing = overwrite and out_dir.exists()
    with FolderClaim(out_dir) if replacing else contextlib.nullcontext():
        old = None
        if replacing:
            old = out_dir.parent / f".{out_dir.name}.old-{uuid.uuid4().hex[:8]}"
            os.rename(out_dir, old)
        try:
            os.rename(tmp, out_dir)
        except OSError as exc:
            if old is not None:
                os.rename(old, out_dir)
            if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):  # another import took the name meanwhile
                raise ImportRefused(f"{out_dir} was created by another import at the same moment; choose another "
                                    "name or import again to replace it.") from None
            raise
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)


def import_dataset(
    source: str | os.PathLike,
    out_dir: str | os.PathLike,
    *,
    test_source: str | os.PathLike | None = None,
    test_fraction: float = 0.2,
    max_label_length: int = 16,
    keep_case: bool = False,
    seed: int = 0,
    progress: Progress | None = None,
    overwrite: bool = False,
    limits: ZipLimits | None = None,
    max_total_pixels: int = MAX_TOTAL_PIXELS,
) -> dict:
    """Import `source` (zip, folder, annotation file or CSV) into the dataset folder `out_dir`.

    Returns the report (also written as report.json). Raises ImportRefused (a ValueError) when the
    input as a whole is refused (unsafe zip, not a zip, nothing usable, `out_dir` exists and not
    `overwrite`); a refusal for "nothing usable" carries the per-file reasons in `.report`.
    `progress(done, total)` is called while files are checked.
    """
    started = time.monotonic()
    source, out_dir = Path(source).expanduser(), Path(out_dir).expanduser().resolve()
    if out_dir.exists() and not overwrite:
        raise ImportRefused(f"{out_dir} already exists; choose another name or allow overwriting.")
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1 (got {test_fraction}).")
    tmp = out_dir.parent / f".{out_dir.name}.importing-{uuid.uuid4().hex[:8]}"
    try:
        (tmp / "images").mkdir(parents=True)
        claim = FolderClaim(tmp)
    except OSError as exc:
        raise OSError(exc.errno, f"The dataset folder {out_dir} cannot be created ({exc.strerror}). Check that the "
                                 "data folder (PLATE_STUDIO_HOME) is a folder this program can write to.") from exc
    try:
        report = _build(source, tmp, test_source, test_fraction, max_label_length, keep_case, seed, progress, limits,
                        max_total_pixels)
        report["seconds"] = round(time.monotonic() - started, 3)
        log.info("imported %s: %d accepted, %d rejected, %d warnings in %.1f s", source, report["accepted"], len(report["rejected"]), len(report["warnings"]), report["seconds"])
        atomic_write_json(tmp / "report.json", report)
        _publish(tmp, out_dir, overwrite)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if is_out_of_space(exc):
            raise OSError(errno.ENOSPC, f"Not enough disk space to write the dataset in {out_dir.parent}; nothing was "
                                        "kept (an existing dataset of that name is untouched). Free some disk space "
                                        "and import again.") from exc
        raise
    finally:
        claim.release()
    return report


def _check_and_write(source, tmp, test_source, max_label_length, keep_case, progress, limits,
                     max_total_pixels) -> tuple[Accepted, list[dict], int, list[str]]:
    """(accepted, rejected, skipped, label files used) of the source and the test source; the
    listings are freed on return."""
    with contextlib.ExitStack() as stack:
        listing = list_source(source, stack, keep_case=keep_case, limits=limits)
        parts, skipped, label_files = [(listing.candidates, False)], listing.skipped, list(listing.label_files)
        if test_source is not None:
            test_listing = list_source(test_source, stack, keep_case=keep_case, limits=limits)
            parts.append((test_listing.candidates, True))
            skipped += test_listing.skipped
            label_files += test_listing.label_files

        def every_candidate() -> Iterator[Candidate]:  # made one at a time (a folder's are not kept)
            for candidates, test in parts:
                for cand in candidates:
                    cand.test = test
                    yield cand

        total = sum(len(candidates) for candidates, _ in parts)
        return (*_write_accepted(every_candidate(), total, tmp / "images", max_label_length, max_total_pixels,
                                 progress), skipped, label_files)


def _build(source, tmp, test_source, test_fraction, max_label_length, keep_case, seed, progress, limits,
           max_total_pixels) -> dict:
    accepted, rejected, skipped, label_files = _check_and_write(source, tmp, test_source, max_label_length,
                                                                keep_case, progress, limits, max_total_pixels)
    accepted.labels = _read_labels(tmp)
    warnings = _shared_label_warnings(accepted.labels, label_files)
    report = {
        "accepted": len(accepted),
        "rejected": rejected,
        "warnings": warnings,
        "skipped": skipped,
        "labels_from": label_files,  # CSV or annotation files inside the zip or folder; empty: file names
        "test_fraction": test_fraction,  # with a test source: replaced by the actual fraction below
        "seed": seed,
        "max_label_length": max_label_length,
        "keep_case": keep_case,
        "source": str(source),
        "test_source": None if test_source is None else str(test_source),
        "created_at": now_iso(),
    }
    if all(accepted.tests):  # no training photo (also: none at all)
        raise ImportRefused(_refusal_summary(source, rejected), report=report)
    splits = _assign_split(accepted, test_source is not None, test_fraction, seed)
    train_labels = {label for label, test in zip(accepted.labels, accepted.tests) if not test} if test_source else set()
    warnings += _write_labels(tmp, splits, train_labels)
    if test_source is not None:
        report["test_fraction"] = round(sum(accepted.tests) / len(accepted), 4)
        if not any(accepted.tests):
            warnings.append(_issue(Path(test_source).name, "the test set has no usable images, so there is nothing to measure accuracy on"))
    report.update(_stats(accepted, splits))
    return report


# --- leftovers of killed imports and uploads ----------------------------------------------------
LEFTOVER = re.compile(r"^\..+\.(importing|old)-[0-9a-f]{8}$")
STALE_AFTER = 180.0  # seconds: younger folders may belong to an import that has not claimed them yet


def clean_leftovers(folder: str | os.PathLike | None = None, *, min_age: float = STALE_AFTER) -> list[Path]:
    """Remove what killed imports left: `.NAME.importing-*` and `.NAME.old-*` folders, and (for the
    data folder) upload folders in uploads/. Never a folder a live process holds a FolderClaim on,
    nor one younger than `min_age` seconds. `folder`: where to look for import leftovers (default:
    the data folder's datasets/, plus its uploads/). Returns the folders removed."""
    if folder is None:
        targets = [p for p in datasets_dir().iterdir() if LEFTOVER.match(p.name)]
        uploads = data_home() / "uploads"
        targets += list(uploads.iterdir()) if uploads.is_dir() else []
    else:
        folder = Path(folder)
        targets = [p for p in folder.iterdir() if LEFTOVER.match(p.name)] if folder.is_dir() else []
    removed = []
    for path in targets:
        try:
            if path.is_symlink() or not path.is_dir() or time.time() - path.stat().st_mtime < min_age:
                continue
            claim = FolderClaim(path, wait=False)
        except (BlockingIOError, FileNotFoundError, NotADirectoryError):  # in use, or gone meanwhile
            continue
        with claim:
            shutil.rmtree(path, ignore_errors=True)
        if not path.exists():
            log.info("removed %s, left behind by an interrupted import or upload", path)
            removed.append(path)
    return removed


# --- reading reports ---------------------------------------------------------------------------
def load_report(dataset_dir: str | os.PathLike) -> dict:
    """The report.json of an imported dataset."""
    report = read_json(Path(dataset_dir) / "report.json")
    if report is None:
        raise FileNotFoundError(f"{Path(dataset_dir)} is not an imported dataset (no readable report.json).")
    return report


def report_frame(report: dict):
    """The report's problems as a table: columns file, status ('rejected' or 'warning'), reason."""
    import pandas as pd

    rows = [{"file": i["file"], "status": "rejected", "reason": i["reason"]} for i in report.get("rejected", [])]
    rows += [{"file": i["file"], "status": "warning", "reason": i["reason"]} for i in report.get("warnings", [])]
    return pd.DataFrame(rows, columns=["file", "status", "reason"])


# --- command line ------------------------------------------------------------------------------
def cli_import(args) -> int:
    """`python -m engine import SOURCE --out DIR [--test TEST_SOURCE] ...`"""
    out = Path(args.out).expanduser().resolve()
    clean_leftovers(out.parent)
    # The command line is how big sets come in: its limits grow with --max-files (the web page keeps
    # the defaults), at the same cost per photo as an upload's.
    bytes_per_photo = ZipLimits.max_total_bytes // ZipLimits.max_entries
    limits = ZipLimits(max_entries=args.max_files,
                       max_total_bytes=max(ZipLimits.max_total_bytes, args.max_files * bytes_per_photo))
    try:
        report = import_dataset(
            args.source,
            out,
            test_source=args.test_source,
            test_fraction=args.test_fraction,
            max_label_length=args.max_label_length,
            keep_case=args.keep_case,
            seed=args.seed,
            limits=limits,
            max_total_pixels=max(MAX_TOTAL_PIXELS, args.max_files * PIXELS_PER_PHOTO),
        )
    except ImportRefused as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        for item in (exc.report or {}).get("rejected", [])[:50]:
            print(f"  rejected {printable(item['file'])}: {printable(item['reason'])}", file=sys.stderr)
        return 2
    except FileNotFoundError as exc:
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, unusable folder: a sentence, not a traceback
        print(f"error: {printable(exc.strerror if exc.strerror and exc.errno else str(exc))}", file=sys.stderr)
        return 1
    _print_summary(report, Path(args.out))
    return 0


def _print_summary(report: dict, out: Path, limit: int = 50) -> None:
    print(
        f"Imported {report['accepted']} images into {printable(str(out))} (train {report['train']}, test {report['test']}); "
        f"{len(report['rejected'])} rejected, {len(report['warnings'])} warnings, {report['skipped']} hidden files skipped."
    )
    if report.get("labels_from"):
        print(f"Labels taken from {printable(', '.join(report['labels_from']))}, not from the file names.")
    items = [("rejected", i) for i in report["rejected"]] + [("warning", i) for i in report["warnings"]]
    for status, item in items[:limit]:
        print(f"  {status} {printable(item['file'])}: {printable(item['reason'])}")
    if len(items) > limit:
        print(f"  ... and {len(items) - limit} more, see {printable(str(out / 'report.json'))}")
