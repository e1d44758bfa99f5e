"""What a source offers, before anything is decoded: one `Candidate` per file, with its label.

A source is a zip (checked by engine.data.safezip before a byte is read), a folder, an aocr
annotation file or a CSV; a zip or folder may hold its own CSV or annotation file, which then
labels the photos it names. Files known to be rejected without reading them (an unsafe path, a
symlink, not an image by name, too big, a photo its label file does not name) carry their
`problem` already.
"""
from __future__ import annotations

import contextlib
import functools
import os
import posixpath
import stat
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from engine.data.images import SUPPORTED
from engine.data.labels import (IMAGE_EXTENSIONS, annotation_rows, base_name, csv_rows, decode_text, label_from_filename,
                                 legacy_file_name, read_label_file, split_extension)
from engine.data.safezip import ImportRefused, UnsafeArchive, ZipLimits, open_zip, read_member, scan_zip
from engine.storage.text import decoded_file_name

JUNK_NAMES = {"thumbs.db", "desktop.ini", "__macosx"}
# A zip or folder of photos may bring its labels along: photos with camera names (IMG_1234.jpg) and a
# CSV or an aocr annotation file naming each one's plate text, as an operator exports them from a system.
LABEL_FILE_EXTENSIONS = (".csv", ".txt")


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
    label_files: list[str] = field(default_factory=list)  # the CSV or annotation files inside, used for labels


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


def _list_zip(path: Path, keep_case: bool, limits: ZipLimits, stack: contextlib.ExitStack,
              with_label_files: bool) -> Listing:
    zf = stack.enter_context(open_zip(path, limits))
    members = scan_zip(zf, limits)  # raises UnsafeArchive before anything is read
    lock = threading.Lock()  # one decompression at a time: ZipFile shares one file handle

    def loader(member):
        def load() -> bytes:
            with lock:
                return read_member(zf, member, limits)

        return load

    listing, texts = Listing(), []
    for member in members:
        if member.is_dir:
            continue
        if is_junk(member.name) and not member.problem:  # an unsafe name is reported even if hidden
            listing.skipped += 1
            continue
        if with_label_files and not member.problem and split_extension(member.name)[1] in LABEL_FILE_EXTENSIONS:
            texts.append((member.name, loader(member)))
            continue
        listing.candidates.append(_new_candidate(member.name, keep_case, loader(member), member.problem))
    _label_from_files(listing, texts, keep_case, limits.max_entries)
    return listing


def _label_rows(name: str, load: Callable[[], bytes], keep_case: bool) -> list[tuple[str, str]]:
    """(photo path as written, label) of a CSV or annotation file among the photos; a ValueError
    saying why a CSV cannot give labels. An annotation file is any text: the caller keeps it only
    when its paths name photos beside it (a readme.txt names none)."""
    text = decode_text(load(), base_name(name))
    if name.lower().endswith(".csv"):
        return csv_rows(text, base_name(name), keep_case)
    return annotation_rows(text, keep_case)


def _label_from_files(listing: Listing, texts: list[tuple[str, Callable[[], bytes]]], keep_case: bool,
                      max_rows: int) -> None:
    """Labels from the label files of a zip or folder (`texts`: name, loader) for the photos they
    name; their rows naming no photo there become left-out entries, and so does a photo no label
    file names (rather than be labelled from its camera name)."""
    photos = {c.name: c for c in listing.candidates if not c.problem}
    by_base: dict[str, list[str]] = {}
    for name in photos:
        by_base.setdefault(base_name(name), []).append(name)

    def photo_of(written: str, folder: str) -> str | None:
        written = written.replace("\\", "/")
        for candidate in (posixpath.normpath(posixpath.join(folder, written)), posixpath.normpath(written)):
            if candidate in photos:
                return candidate
        same = by_base.get(base_name(written), [])
        return same[0] if len(same) == 1 else None  # a CSV naming photos without their folder

    given: dict[str, tuple[str, str]] = {}  # photo -> (label, label file)
    for name, load in texts:
        try:
            rows = _label_rows(name, load, keep_case)
        except UnsafeArchive:  # the whole zip is refused, as for a photo
            raise
        except (ValueError, OSError) as exc:  # a CSV without the columns, not UTF-8, damaged
            listing.candidates.append(Candidate(name, "", None, str(exc)))
            continue
        if len(rows) > max_rows:  # each row naming no photo would be a line of the report
            raise ImportRefused(f"{base_name(name)} lists more than {max_rows:,} photos; import it in parts.")
        folder = posixpath.dirname(name)
        found = [(written, label, photo_of(written, folder)) for written, label in rows]
        if not name.lower().endswith(".csv") and not any(photo for _, _, photo in found):
            listing.candidates.append(_new_candidate(name, keep_case, None))  # a readme.txt: not an image
            continue
        listing.label_files.append(name)
        for written, label, photo in found:
            if photo is None:
                listing.candidates.append(Candidate(written, label, None,
                                                    f"listed in {base_name(name)}, but there is no such photo"))
            elif not label:
                photos[photo].problem = f"{base_name(name)} gives it no plate text"
            elif photo in given and given[photo][0] != label:
                earlier, where = given[photo]
                photos[photo].problem = (f"{where} gives it the label '{earlier}' and {base_name(name)} '{label}': "
                                         "correct one of them")
            else:
                given[photo] = (label, base_name(name))
                photos[photo].label = label
    if listing.label_files:
        files = " or ".join(base_name(n) for n in listing.label_files)
        for name, cand in photos.items():
            if name not in given and not cand.problem:
                cand.problem = f"not listed in {files}, so its plate text is unknown: add a line for it"


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


def _list_folder(root: Path, keep_case: bool, limits: ZipLimits, with_label_files: bool) -> Listing:
    top = os.fspath(root)
    files_found = FolderFiles(top, keep_case, limits.max_file_bytes)
    listing, texts = Listing(files_found), []
    for folder, dirs, files in os.walk(top):
        hidden = [d for d in dirs if is_junk(d)]
        listing.skipped += len(hidden)
        dirs[:] = sorted(d for d in dirs if not is_junk(d))
        prefix = "" if folder == top else os.path.relpath(folder, top).replace(os.sep, "/") + "/"
        for name in sorted(files):
            if is_junk(name):
                listing.skipped += 1
                continue
            if with_label_files and split_extension(name)[1] in LABEL_FILE_EXTENSIONS:
                texts.append((prefix + name, _file_loader(top, prefix + name, limits.max_file_bytes)))
                continue
            files_found.names.append(prefix + name)
            if len(files_found) > limits.max_entries:
                raise ImportRefused(f"{root.name} holds more than {limits.max_entries:,} files; import it in parts.")
    if texts:  # labels differ from the names: the candidates are made now, not on demand
        listing.candidates = list(files_found)
        _label_from_files(listing, texts, keep_case, limits.max_entries)
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


def list_source(source: str | os.PathLike, stack: contextlib.ExitStack, *, keep_case: bool = False,
                limits: ZipLimits | None = None, with_label_files: bool = True) -> Listing:
    """The candidates of a zip, folder, annotation file or CSV (zip handles stay open in `stack`).

    With `with_label_files` (imports) a CSV or annotation file inside a zip or folder gives the
    labels of the photos it names; readers, which label photos by their file names only, list it
    as a file."""
    limits = limits or ZipLimits()
    path = Path(source).expanduser()
    if path.is_dir():
        return _list_folder(path, keep_case, limits, with_label_files)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    if path.suffix.lower() == ".zip":
        return _list_zip(path, keep_case, limits, stack, with_label_files)
    if path.suffix.lower() in IMAGE_EXTENSIONS:
        raise ImportRefused(f"{path.name} is a single image; put your images in a zip or a folder.")
    if path.suffix.lower() in (".tfrecords", ".tfrecord"):
        raise ImportRefused(f"{path.name} is a TFRecord file: train on it directly; import takes a zip, a folder, an annotation file or a CSV.")
    return _list_label_file(path, keep_case, limits)
