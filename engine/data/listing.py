"""What a source offers, before anything is decoded: one `Candidate` per file, with its label.

A source is a zip (checked by engine.data.safezip before a byte is read), a folder, an aocr
annotation file or a CSV. Files known to be rejected without reading them (an unsafe path, a
symlink, not an image by name, too big) carry their `problem` already.
"""
from __future__ import annotations

import contextlib
import functools
import os
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from engine.data.images import SUPPORTED
from engine.data.labels import IMAGE_EXTENSIONS, label_from_filename, legacy_file_name, read_label_file, split_extension
from engine.data.safezip import ImportRefused, ZipLimits, open_zip, read_member, scan_zip
from engine.storage.text import decoded_file_name

JUNK_NAMES = {"thumbs.db", "desktop.ini", "__macosx"}


@dataclass(slots=True)  # slots: an import of 100k photos holds 100k of these
class Candidate:
    name: str  # as the operator knows it: member name, path relative to the folder, or as written
    label: str
    load: Callable[[], bytes] | None = None
    problem: str | None = None  # known to be rejected before reading (bad path, symlink, ...)
    test: bool = False  # comes from the separate test source


class FolderFiles(Sequence[Candidate]):
    """The candidates of a folder, made when asked for from its file names: a folder of 100k photos
    is listed in 100k short strings, not 100k records (a file's size is checked when it is reached)."""

    def __init__(self, top: str, keep_case: bool, max_bytes: int) -> None:
        self.top, self.keep_case, self.max_bytes = top, keep_case, max_bytes
        self.names: list[str] = []  # relative, with "/"

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        rel = self.names[index]
        problem = _file_problem(os.path.join(self.top, rel), self.max_bytes)
        return _new_candidate(rel, self.keep_case, _file_loader(self.top, rel, self.max_bytes), problem)


@dataclass
class Listing:
    candidates: Sequence[Candidate] = field(default_factory=list)
    skipped: int = 0


def is_junk(name: str) -> bool:
    """Hidden files, macOS resource forks and Windows thumbnails: skipped silently."""
    parts = [p for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return any(p.startswith(".") or p.lower() in JUNK_NAMES for p in parts)


def _new_candidate(name: str, keep_case: bool, load, problem: str | None = None, label: str | None = None) -> Candidate:
    if problem is None and split_extension(name)[1] not in IMAGE_EXTENSIONS:
        problem = f"not an image file: {SUPPORTED}"
    name = legacy_file_name(name) or name  # a Chinese or Korean Windows name, read once here
    if label is None:  # from the name as it is: undecodable bytes make the label refused
        label = label_from_filename(name, keep_case)
    return Candidate(decoded_file_name(name), label, load, problem)


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


def _read_file(folder: str, name: str, max_bytes: int) -> bytes:
    with open(os.path.join(folder, name), "rb") as f:
        data = f.read(max_bytes + 1)  # capped: a file may grow between stat and read
    if len(data) > max_bytes:
        raise ValueError(f"the file is larger than the {max_bytes // (1024 * 1024)} MiB allowed per file")
    return data


def _file_loader(folder: str, name: str, max_bytes: int) -> Callable[[], bytes]:
    # a partial over strings the listing keeps anyway, not a closure over a Path: an import of 100k
    # photos holds 100k of these
    return functools.partial(_read_file, folder, name, max_bytes)


def _file_problem(path: str | os.PathLike, max_bytes: int) -> str | None:
    try:
        info = os.stat(path)  # follows a symlink, as reading it would
    except FileNotFoundError:
        return "file not found"
    except OSError as exc:
        return f"the file cannot be opened ({exc.strerror})"
    if not stat.S_ISREG(info.st_mode):
        return "not a file"
    if info.st_size > max_bytes:
        return f"the file is {info.st_size / 1024 / 1024:.1f} MiB, more than the {max_bytes // (1024 * 1024)} MiB allowed per file"
    return None


def _list_folder(root: Path, keep_case: bool, limits: ZipLimits) -> Listing:
    top = os.fspath(root)
    files_found = FolderFiles(top, keep_case, limits.max_file_bytes)
    listing = Listing(files_found)
    for folder, dirs, files in os.walk(top):
        hidden = [d for d in dirs if is_junk(d)]
        listing.skipped += len(hidden)
        dirs[:] = sorted(d for d in dirs if not is_junk(d))
        prefix = "" if folder == top else os.path.relpath(folder, top).replace(os.sep, "/") + "/"
        for name in sorted(files):
            if is_junk(name):
                listing.skipped += 1
                continue
            files_found.names.append(prefix + name)
            if len(files_found) > limits.max_entries:
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
        listing.candidates.append(_new_candidate(name, keep_case, _file_loader(str(image_path.parent), image_path.name,
                                                                           limits.max_file_bytes), problem, label))
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
