"""Import a zip, an image folder, an annotation file or a CSV into a dataset folder.

Every image is checked (header first with Pillow, so a file claiming 100000x100000 pixels never
allocates, then one full decode with OpenCV); each rejected file gets a reason an operator
understands, and one bad file never stops the import. The dataset is built in a temp folder next
to `out_dir` and renamed into place at the end, so a failed import never leaves a half dataset.
"""
from __future__ import annotations

import contextlib
import csv
import errno
import hashlib
import io
import logging
import os
import re
import shutil
import statistics
import sys
import threading
import time
import unicodedata
import uuid
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator

from engine.labels import (
    IMAGE_EXTENSIONS,
    base_name,
    label_from_filename,
    read_label_file,
    split_extension,
)
from engine.runfolder import NO_SPACE, atomic_write_json, now_iso, read_json
from engine.safezip import ImportRefused, UnsafeArchive, ZipLimits, open_zip, read_member, scan_zip
from engine.sources import Example
from engine.split import grouped_split

__all__ = ["import_dataset", "load_report", "report_frame", "collect_examples", "ImportRefused", "UnsafeArchive", "ZipLimits"]

log = logging.getLogger(__name__)

MIN_WIDTH, MIN_HEIGHT = 16, 8
MAX_SIDE = 8000
MAX_PIXELS = 40_000_000
JUNK_NAMES = {"thumbs.db", "desktop.ini", "__macosx"}
Progress = Callable[[int, int], None]

_SUPPORTED = "only .jpg, .jpeg, .png, .bmp and .webp pictures are imported"


# --- candidates: what a source lists, before anything is decoded ---------------------------------
@dataclass
class Candidate:
    name: str  # as the operator knows it: member name, path relative to the folder, or as written
    label: str
    load: Callable[[], bytes] | None = None
    problem: str | None = None  # known to be rejected before reading (bad path, symlink, ...)
    test: bool = False  # comes from the separate test source


@dataclass
class Listing:
    candidates: list[Candidate] = field(default_factory=list)
    skipped: int = 0


def is_junk(name: str) -> bool:
    """Hidden files, macOS resource forks and Windows thumbnails: skipped silently."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return any(p.startswith(".") or p.lower() in JUNK_NAMES for p in parts)


def _new_candidate(name: str, keep_case: bool, load, problem: str | None = None, label: str | None = None) -> Candidate:
    if problem is None and split_extension(name)[1] not in IMAGE_EXTENSIONS:
        problem = f"not an image file: {_SUPPORTED}"
    if label is None:
        label = label_from_filename(name, keep_case)
    return Candidate(name, label, load, problem)


def _list_zip(path: Path, keep_case: bool, limits: ZipLimits, stack: contextlib.ExitStack) -> Listing:
    zf = stack.enter_context(open_zip(path, limits))
    members = scan_zip(zf, limits)  # raises UnsafeArchive before anything is read
    lock = threading.Lock()  # one decompression at a time: ZipFile shares one file handle

    def loader(member):
        def load() -> bytes:
            with lock:
                return read_member(zf, member, limits)

        return load

    listing = Listing()
    for member in members:
        if member.is_dir:
            continue
        if is_junk(member.name) and not member.problem:  # an unsafe name is reported even if hidden
            listing.skipped += 1
            continue
        listing.candidates.append(_new_candidate(member.name, keep_case, loader(member), member.problem))
    return listing


def _file_loader(path: Path, max_bytes: int) -> Callable[[], bytes]:
    def load() -> bytes:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)  # capped: a file may grow between stat and read
        if len(data) > max_bytes:
            raise ValueError(f"the file is larger than the {max_bytes // (1024 * 1024)} MiB allowed per file")
        return data

    return load


def _file_problem(path: Path, max_bytes: int) -> str | None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return "file not found"
    except OSError as exc:
        return f"the file cannot be opened ({exc.strerror})"
    if not path.is_file():
        return "not a file"
    if size > max_bytes:
        return f"the file is {size / 1024 / 1024:.1f} MiB, more than the {max_bytes // (1024 * 1024)} MiB allowed per file"
    return None


def _list_folder(root: Path, keep_case: bool, limits: ZipLimits) -> Listing:
    listing = Listing()
    for folder, dirs, files in os.walk(root):
        hidden = [d for d in dirs if is_junk(d)]
        listing.skipped += len(hidden)
        dirs[:] = sorted(d for d in dirs if not is_junk(d))
        for name in sorted(files):
            if is_junk(name):
                listing.skipped += 1
                continue
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            listing.candidates.append(
                _new_candidate(rel, keep_case, _file_loader(path, limits.max_file_bytes), _file_problem(path, limits.max_file_bytes))
            )
            if len(listing.candidates) > limits.max_entries:
                raise ImportRefused(f"{root.name} holds more than {limits.max_entries:,} files; import it in parts.")
    return listing


def _list_label_file(path: Path, keep_case: bool, limits: ZipLimits) -> Listing:
    listing = Listing()
    for image_path, label in read_label_file(path, keep_case):
        try:
            name = image_path.relative_to(path.parent).as_posix()
        except ValueError:
            name = str(image_path)
        problem = _file_problem(image_path, limits.max_file_bytes)
        listing.candidates.append(_new_candidate(name, keep_case, _file_loader(image_path, limits.max_file_bytes), problem, label))
    if len(listing.candidates) > limits.max_entries:
        raise ImportRefused(f"{path.name} lists more than {limits.max_entries:,} images; import it in parts.")
    return listing


def list_source(source: str | os.PathLike, stack: contextlib.ExitStack, *, keep_case: bool = False, limits: ZipLimits | None = None) -> Listing:
    """The candidates of a zip, folder, annotation file or CSV (zip handles stay open in `stack`)."""
    limits = limits or ZipLimits()
    path = Path(source).expanduser()
    if path.is_dir():
        return _list_folder(path, keep_case, limits)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    if path.suffix.lower() == ".zip":
        return _list_zip(path, keep_case, limits, stack)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        raise ImportRefused(f"{path.name} is a single image; put your images in a zip or a folder.")
    if path.suffix.lower() in (".tfrecords", ".tfrecord"):
        raise ImportRefused(f"{path.name} is a TFRecord file: train on it directly; import takes a zip, a folder, an annotation file or a CSV.")
    return _list_label_file(path, keep_case, limits)


# --- checking one candidate --------------------------------------------------------------------
@dataclass
class Checked:
    candidate: Candidate
    data: bytes | None = None
    width: int = 0
    height: int = 0
    digest: bytes = b""
    reason: str | None = None  # set when rejected
    duplicate_of: str | None = None  # set when an exact copy of an earlier accepted file


# C0/C1 controls, and the bidirectional embedding/override/isolate marks that make a label display
# as something else than it is (U+202A-U+202E, U+2066-U+2069, the "Trojan Source" characters).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def label_problem(label: str, max_label_length: int | None) -> str | None:
    if not label:
        return "empty label: the file name must start with the plate text, e.g. 34FK4522.jpg or 34FK4522_1.jpg"
    if _CONTROL.search(label):
        return "the label contains invisible control characters"
    if max_label_length is not None and len(label) > max_label_length:
        return f"the label '{label}' has {len(label)} characters, more than the maximum of {max_label_length}"
    return None


def sniff_format(data: bytes) -> str | None:
    """The picture format from the first bytes (never trust the extension)."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:2] == b"BM":
        return "BMP"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, name in ((b"GIF8", "GIF"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"%PDF", "PDF")):
        if data.startswith(magic):
            return name
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "HEIC/AVIF"
    return None


def _header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header only: Pillow's open is lazy and decodes no pixels.
    None when Pillow itself refuses the header as a decompression bomb (> ~180 megapixels)."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Image.DecompressionBombError:
        return None


def image_problem(data: bytes) -> tuple[str | None, int, int]:
    """(reason or None, width, height) for the bytes of one file."""
    if not data:
        return "the file is empty (0 bytes)", 0, 0
    kind = sniff_format(data)
    if kind is None:
        return f"not an image: the content is not a JPEG, PNG, BMP or WebP picture ({_SUPPORTED})", 0, 0
    if kind not in ("JPEG", "PNG", "BMP", "WEBP"):
        return f"{kind} files are not supported: save it as JPEG or PNG", 0, 0
    limit = f"at most {MAX_SIDE} pixels a side and {MAX_PIXELS // 1_000_000} megapixels"
    try:
        size = _header_size(data)
    except Exception:
        return f"the {kind} image is damaged or incomplete: its header cannot be read", 0, 0
    if size is None:
        return f"the image is too large (its header claims more than 180 megapixels; {limit})", 0, 0
    width, height = size
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        return f"the image is too large ({width}x{height} pixels; {limit})", width, height
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return f"the image is too small ({width}x{height} pixels; at least {MIN_WIDTH}x{MIN_HEIGHT} needed)", width, height
    if not _decodes(data, kind):
        return f"the {kind} image is damaged or incomplete (e.g. a cut-off download) and cannot be decoded", width, height
    return None, width, height


def _decodes(data: bytes, kind: str) -> bool:
    import cv2
    import numpy as np

    # Grayscale skips the colour conversion. For JPEG, libjpeg's 1/8 scaled decode still entropy-
    # decodes the whole stream (so truncated or corrupt files fail just the same) but skips most of
    # the inverse DCT: 3x faster. The size was already checked from the header.
    flags = cv2.IMREAD_REDUCED_GRAYSCALE_8 if kind == "JPEG" else cv2.IMREAD_GRAYSCALE
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error:
        return False
    return image is not None and image.size > 0


def check_candidate(candidate: Candidate, max_label_length: int | None) -> Checked:
    """Read and check one file. Never raises for a bad file (only for an archive-level refusal)."""
    checked = Checked(candidate)
    checked.reason = candidate.problem or label_problem(candidate.label, max_label_length)
    if checked.reason:
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
    if checked.reason is None:
        checked.data = data
        checked.digest = hashlib.blake2b(data, digest_size=20).digest()
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
    candidates: list[Candidate],
    max_label_length: int | None,
    progress: Progress | None = None,
    on_accept: Callable[[int, Candidate, bytes], None] | None = None,
) -> Iterator[Checked]:
    """Check every candidate (in a small thread pool), in order, marking exact duplicates of an
    earlier accepted file (the first copy is kept).

    `on_accept(index, candidate, data)` runs in the worker thread for each file that passed its
    checks (before duplicate marking), so file writes happen in parallel too.
    """
    workers = max(2, min(4, os.cpu_count() or 1))
    total = len(candidates)
    every = max(1, total // 200)  # ~200 progress updates, whatever the size
    seen: dict[bytes, str] = {}
    if progress:
        progress(0, total)
    def work(item: tuple[int, Candidate]) -> Checked:
        checked = check_candidate(item[1], max_label_length)
        if checked.reason is None and on_accept is not None:
            on_accept(item[0], item[1], checked.data)
        return checked

    for done, checked in enumerate(_ordered_map(work, enumerate(candidates), workers, 64), 1):
        if checked.reason is None:
            if checked.digest in seen:
                checked.duplicate_of, checked.data = seen[checked.digest], None
            else:
                seen[checked.digest] = checked.candidate.name
        if progress and (done % every == 0 or done == total):
            progress(done, total)
        yield checked


def _issue(name: str, reason: str) -> dict:
    return {"file": name, "reason": reason}


def _duplicate_reason(first: str) -> str:
    return f"exact copy of {first}: the first copy was kept, this one was left out"


def collect_examples(
    source: str | os.PathLike,
    *,
    keep_case: bool = False,
    max_label_length: int | None = None,
    limits: ZipLimits | None = None,
) -> tuple[list[Example], list[dict], list[dict]]:
    """Checked examples of a raw source, in memory: (examples, rejected, warnings)."""
    examples, rejected, warnings = [], [], []
    with contextlib.ExitStack() as stack:
        listing = list_source(source, stack, keep_case=keep_case, limits=limits)
        for checked in check_candidates(listing.candidates, max_label_length):
            name = checked.candidate.name
            if checked.reason:
                rejected.append(_issue(name, checked.reason))
            elif checked.duplicate_of:
                warnings.append(_issue(name, _duplicate_reason(checked.duplicate_of)))
            else:
                examples.append(Example(name, checked.candidate.label, checked.data))
    return examples, rejected, warnings


# --- writing the dataset -----------------------------------------------------------------------
class UniqueNamer:
    """Safe, unique file names for images/: Unicode letters kept, everything else '_', a '-2'
    suffix on clashes (compared case-insensitively, for macOS/Windows file systems)."""

    def __init__(self) -> None:
        self.used: set[str] = set()

    def __call__(self, original: str) -> str:
        stem, ext = split_extension(base_name(original))
        stem = unicodedata.normalize("NFC", stem)
        stem = re.sub(r"[^\w\-]+", "_", stem).strip("._-")[:80]  # no leading '-': `rm *` in images/ stays safe
        while len(stem.encode("utf-8")) > 150:  # file systems allow 255 bytes; CJK is 3 bytes a char
            stem = stem[:-1]
        stem = stem or "image"
        name, n = f"{stem}{ext}", 1
        while name.casefold() in self.used:
            n += 1
            name = f"{stem}-{n}{ext}"
        self.used.add(name.casefold())
        return name


@dataclass
class Row:
    file: str  # stored name, relative to images/
    label: str
    width: int
    height: int
    original: str
    test: bool = False
    split: str = "train"
    data: bytes | None = field(default=None, repr=False)  # kept for the TFRecords while memory allows


KEEP_IN_MEMORY = 256 * 1024 * 1024  # beyond this, TFRecords re-read images/ instead


def _write_accepted(
    candidates: list[Candidate], images: Path, max_label_length: int | None, progress: Progress | None
) -> tuple[list[Row], list[dict], list[dict]]:
    namer = UniqueNamer()
    stored = [namer(c.name) for c in candidates]  # decided up front, in order: deterministic

    def save(index: int, candidate: Candidate, data: bytes) -> None:
        with open(images / stored[index], "xb") as f:  # "x": never overwrite anything
            f.write(data)

    rows, rejected, warnings, kept = [], [], [], 0
    for index, checked in enumerate(check_candidates(candidates, max_label_length, progress, save)):
        cand = checked.candidate
        shown = f"{cand.name} (test set)" if cand.test else cand.name
        if checked.reason:
            rejected.append(_issue(shown, checked.reason))
        elif checked.duplicate_of:
            (images / stored[index]).unlink()
            warnings.append(_issue(shown, _duplicate_reason(checked.duplicate_of)))
        else:
            keep = kept + len(checked.data) <= KEEP_IN_MEMORY
            kept += len(checked.data) if keep else 0
            rows.append(Row(stored[index], cand.label, checked.width, checked.height, cand.name, cand.test, "train", checked.data if keep else None))
    return rows, rejected, warnings


def _assign_split(rows: list[Row], has_test_source: bool, test_fraction: float, seed: int) -> list[dict]:
    """Set each row's split; returns warnings (a plate in both parts of a given test set)."""
    if has_test_source:
        for row in rows:
            row.split = "test" if row.test else "train"
        train_labels = {r.label for r in rows if not r.test}
        return [
            _issue(f"{r.original} (test set)", f"the plate {r.label} is also in the training set, so the test score will look better than it is")
            for r in rows
            if r.test and r.label in train_labels
        ]
    for row, side in zip(rows, grouped_split([r.label for r in rows], test_fraction, seed)):
        row.split = side
    return []


def _write_labels_csv(rows: list[Row], path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["file", "label", "split", "width", "height"])
        for r in rows:
            writer.writerow([r.file, r.label, r.split, r.width, r.height])


def _write_records(rows: list[Row], root: Path, shard_size: int) -> dict[str, list[str]]:
    from engine.tfrecords import write_tfrecords

    def examples(split: str) -> Iterator[Example]:  # re-read from disk: memory stays flat
        for r in rows:
            if r.split == split:
                yield Example(r.original, r.label, r.data if r.data is not None else (root / "images" / r.file).read_bytes())

    written = {}
    for split in ("train", "test"):
        files = write_tfrecords(examples(split), root / "tfrecords" / split, shard_size)
        written[split] = [p.relative_to(root).as_posix() for p in files]
    return written


def _size_stats(values: list[int]) -> dict:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)} if values else {}


def _stats(rows: list[Row]) -> dict:
    chars = Counter(c for r in rows for c in r.label)
    lengths = Counter(len(r.label) for r in rows)
    return {
        "charset": "".join(sorted(chars)),
        "char_histogram": {c: chars[c] for c in sorted(chars)},
        "label_length_histogram": {str(n): lengths[n] for n in sorted(lengths)},
        "image_size": {"width": _size_stats([r.width for r in rows]), "height": _size_stats([r.height for r in rows])},
        "train": sum(r.split == "train" for r in rows),
        "test": sum(r.split == "test" for r in rows),
    }


def _refusal_summary(source: Path, rejected: list[dict]) -> str:
    reasons = Counter(item["reason"].split(":")[0] for item in rejected)
    top = "; ".join(f"{n} x {reason}" for reason, n in reasons.most_common(3))
    return f"No usable images in {source.name}" + (f" ({len(rejected)} rejected: {top})." if rejected else " (it holds no image files).")


def _publish(tmp: Path, out_dir: Path, overwrite: bool) -> None:
    """Move the finished dataset into place; an old one (overwrite) is removed only afterwards."""
    old = None
    if out_dir.exists():
        if not overwrite:
            raise ImportRefused(f"{out_dir} already exists; choose another name or allow overwriting.")
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
    shard_size: int = 2000,
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
    except OSError as exc:
        raise OSError(exc.errno, f"The dataset folder {out_dir} cannot be created ({exc.strerror}). Check that the "
                                 "data folder (PLATE_STUDIO_HOME) is a folder this program can write to.") from exc
    try:
        report = _build(source, tmp, test_source, test_fraction, max_label_length, keep_case, seed, progress, limits, shard_size)
        report["seconds"] = round(time.monotonic() - started, 3)
        log.info("imported %s: %d accepted, %d rejected, %d warnings in %.1f s", source, report["accepted"], len(report["rejected"]), len(report["warnings"]), report["seconds"])
        atomic_write_json(tmp / "report.json", report)
        _publish(tmp, out_dir, overwrite)
    except BaseException as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        if _out_of_space(exc):
            raise OSError(errno.ENOSPC, f"Not enough disk space to write the dataset in {out_dir.parent}; nothing was "
                                        "kept (an existing dataset of that name is untouched). Free some disk space "
                                        "and import again.") from exc
        raise
    return report


def _out_of_space(exc: BaseException) -> bool:
    """A write failed for lack of room: ENOSPC/EFBIG/EDQUOT, also as TensorFlow's file-writer errors."""
    if isinstance(exc, OSError) and exc.errno in NO_SPACE:
        return True
    text = str(exc)
    return type(exc).__module__.startswith("tensorflow") and any(
        os.strerror(code) in text for code in NO_SPACE
    )


def _build(source, tmp, test_source, test_fraction, max_label_length, keep_case, seed, progress, limits, shard_size) -> dict:
    with contextlib.ExitStack() as stack:
        listing = list_source(source, stack, keep_case=keep_case, limits=limits)
        candidates, skipped = listing.candidates, listing.skipped
        if test_source is not None:
            test_listing = list_source(test_source, stack, keep_case=keep_case, limits=limits)
            for cand in test_listing.candidates:
                cand.test = True
            candidates, skipped = candidates + test_listing.candidates, skipped + test_listing.skipped
        rows, rejected, warnings = _write_accepted(candidates, tmp / "images", max_label_length, progress)
    report = {
        "accepted": len(rows),
        "rejected": rejected,
        "warnings": warnings,
        "skipped": skipped,
        "test_fraction": test_fraction,  # with a test source: replaced by the actual fraction below
        "seed": seed,
        "max_label_length": max_label_length,
        "keep_case": keep_case,
        "source": str(source),
        "test_source": None if test_source is None else str(test_source),
        "created_at": now_iso(),
    }
    if not any(not r.test for r in rows):
        raise ImportRefused(_refusal_summary(source, rejected), report=report)
    warnings += _assign_split(rows, test_source is not None, test_fraction, seed)
    if test_source is not None:
        report["test_fraction"] = round(sum(r.test for r in rows) / len(rows), 4)
        if not any(r.test for r in rows):
            warnings.append(_issue(Path(test_source).name, "the test set has no usable images, so there is nothing to measure accuracy on"))
    _write_labels_csv(rows, tmp / "labels.csv")
    report["tfrecords"] = _write_records(rows, tmp, shard_size)
    report["shard_size"] = shard_size
    report.update(_stats(rows))
    return report


# --- reading reports ---------------------------------------------------------------------------
def load_report(dataset_dir: str | os.PathLike) -> dict:
    """The report.json of an imported dataset."""
    path = Path(dataset_dir) / "report.json"
    report = read_json(path)
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
    try:
        report = import_dataset(
            args.source,
            args.out,
            test_source=args.test_source,
            test_fraction=args.test_fraction,
            max_label_length=args.max_label_length,
            keep_case=args.keep_case,
            seed=args.seed,
        )
    except ImportRefused as exc:
        print(f"error: {exc}", file=sys.stderr)
        for item in (exc.report or {}).get("rejected", [])[:50]:
            print(f"  rejected {item['file']}: {item['reason']}", file=sys.stderr)
        return 2
    except OSError as exc:  # disk full, unusable folder: a sentence, not a traceback
        if isinstance(exc, FileNotFoundError):
            raise  # the CLI's own "error: ..." (exit code 2)
        print(f"error: {exc.strerror if exc.strerror and exc.errno else exc}", file=sys.stderr)
        return 1
    _print_summary(report, Path(args.out))
    return 0


def _print_summary(report: dict, out: Path, limit: int = 50) -> None:
    print(
        f"Imported {report['accepted']} images into {out} (train {report['train']}, test {report['test']}); "
        f"{len(report['rejected'])} rejected, {len(report['warnings'])} warnings, {report['skipped']} hidden files skipped."
    )
    items = [("rejected", i) for i in report["rejected"]] + [("warning", i) for i in report["warnings"]]
    for status, item in items[:limit]:
        print(f"  {status} {item['file']}: {item['reason']}")
    if len(items) > limit:
        print(f"  ... and {len(items) - limit} more, see {out / 'report.json'}")
