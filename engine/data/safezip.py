"""Hostile-zip handling: a zip is untrusted until its central directory has been checked.

Whole-archive refusals (raise `UnsafeArchive` before anything is read or written): not a zip,
too many entries, too many bytes in total, a compression ratio only a zip bomb has.
Single bad members (a symlink, a path escaping the folder, an encrypted or oversized file, data
shared with another entry) get a `problem` string so the importer can reject just them with a reason.

Members are read into memory one at a time with a size cap (`read_member`); the importer never
extracts by path. `safe_extract` exists for bundles whose folder layout matters (exported models).
"""
from __future__ import annotations

import os
import re
import stat
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

from engine.data.labels import legacy_name

MiB = 1024 * 1024
GiB = 1024 * MiB


class ImportRefused(ValueError):
    """The whole input is refused (the message says why, in plain words). `report` may hold
    the per-file reasons when the refusal is "nothing usable was found"."""

    def __init__(self, message: str, report: dict | None = None):
        super().__init__(message)
        self.report = report


class UnsafeArchive(ImportRefused):
    """A zip that looks malicious or broken as a whole (bomb, too many entries, not a zip)."""


@dataclass(frozen=True)
class ZipLimits:
    max_entries: int = 50_000
    max_total_bytes: int = 2 * GiB
    max_file_bytes: int = 64 * MiB
    max_ratio: float = 200.0  # uncompressed / compressed, only checked on members ...
    ratio_min_bytes: int = 1 * MiB  # ... bigger than this (tiny files compress absurdly well legitimately)


@dataclass
class Member:
    info: zipfile.ZipInfo
    name: str  # decoded, '/'-separated, as the operator sees it
    problem: str | None = None  # why this single member is rejected, in plain words

    @property
    def is_dir(self) -> bool:
        return self.info.is_dir()


_DRIVE = re.compile(r"^[A-Za-z]:")
_EOCD = b"PK\x05\x06"
_ZIP64_EOCD = b"PK\x06\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"


def _human(n: float) -> str:
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def declared_entry_count(path: str | os.PathLike) -> int | None:
    """Entry count from the end-of-central-directory record, read without parsing the directory.

    Lets a zip with millions of entries be refused in microseconds instead of after zipfile has
    built millions of ZipInfo objects. None when the records are missing or odd (zipfile decides).
    """
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 65_557))  # 22-byte record + up to 64 KiB comment
            tail = f.read()
    except OSError:
        return None
    pos = tail.rfind(_EOCD)
    if pos < 0 or len(tail) - pos < 22:
        return None
    total = struct.unpack("<H", tail[pos + 10 : pos + 12])[0]
    if total != 0xFFFF:
        return total
    # zip64: the locator just before the record points at the zip64 record holding the real count
    locator = tail[pos - 20 : pos] if pos >= 20 else b""
    if not locator.startswith(_ZIP64_LOCATOR):
        return None
    offset = struct.unpack("<Q", locator[8:16])[0]
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            record = f.read(56)
    except (OSError, ValueError):
        return None
    if len(record) < 56 or not record.startswith(_ZIP64_EOCD):
        return None
    return struct.unpack("<Q", record[32:40])[0]


def open_zip(path: str | os.PathLike, limits: ZipLimits | None = None) -> zipfile.ZipFile:
    """Open `path` as a zip, refusing non-zips and archives with too many entries up front."""
    limits = limits or ZipLimits()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist.")
    if not zipfile.is_zipfile(path):
        raise UnsafeArchive(f"{path.name} is not a zip file (or it is damaged). Please upload a .zip made with your system's 'Compress' command.")
    declared = declared_entry_count(path)
    if declared is not None and declared > limits.max_entries:
        raise _too_many(path.name, declared, limits)
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError) as exc:
        raise UnsafeArchive(f"{path.name} is not a readable zip file ({exc}).") from None
    if len(zf.infolist()) > limits.max_entries:
        zf.close()
        raise _too_many(path.name, len(zf.infolist()), limits)
    return zf


def _too_many(name: str, count: int, limits: ZipLimits) -> UnsafeArchive:
    return UnsafeArchive(f"{name} holds {count:,} entries; at most {limits.max_entries:,} are accepted. Split it into smaller zips.")


def decoded_name(info: zipfile.ZipInfo) -> str:
    """The member name as the operator wrote it.

    Zips made without the UTF-8 flag (older Windows/Linux tools) usually hold UTF-8 bytes, which
    zipfile decodes as cp437 mojibake; re-decode so `皖A12345.jpg` stays `皖A12345.jpg`. Windows'
    own zip on a Chinese or Korean system writes its code page instead (`legacy_name`).
    """
    name = info.filename
    if info.flag_bits & 0x800:
        return name
    try:
        raw = name.encode("cp437")
    except UnicodeEncodeError:
        return name
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return legacy_name(raw) or name


def path_problem(name: str) -> str | None:
    """Why a member name would write outside the target folder, or None when it is harmless."""
    if "\x00" in name or any(ord(c) < 32 for c in name):
        return "the name contains control characters"
    if "\\" in name:
        return "the name contains a backslash (a Windows path that could point outside the folder)"
    if name.startswith("/") or _DRIVE.match(name):
        return "the name is an absolute path that would point outside the folder"
    if ".." in name.split("/"):
        return "the name contains '..' and would point outside the folder"
    return None


def member_problem(info: zipfile.ZipInfo, name: str, limits: ZipLimits) -> str | None:
    """Why this one member is rejected (the rest of the archive can still be imported)."""
    problem = path_problem(name)
    if problem:
        return problem
    if stat.S_ISLNK(info.external_attr >> 16):
        return "it is a symbolic link, not a file"
    if info.flag_bits & 0x1:
        return "it is password-protected (encrypted)"
    if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, zipfile.ZIP_BZIP2, zipfile.ZIP_LZMA):
        return f"it uses a compression method this app cannot unpack (method {info.compress_type})"
    if info.file_size > limits.max_file_bytes:
        return f"the file is {_human(info.file_size)}, more than the {_human(limits.max_file_bytes)} allowed per file"
    return None


def check_bomb(info: zipfile.ZipInfo, name: str, limits: ZipLimits) -> None:
    if info.file_size > limits.ratio_min_bytes and info.file_size > limits.max_ratio * max(info.compress_size, 1):
        ratio = info.file_size / max(info.compress_size, 1)
        raise UnsafeArchive(
            f"{name} inside the zip unpacks from {_human(info.compress_size)} to {_human(info.file_size)} "
            f"(ratio {ratio:,.0f}:1): this looks like a 'zip bomb', so the whole archive is refused."
        )


def scan_zip(zf: zipfile.ZipFile, limits: ZipLimits | None = None) -> list[Member]:
    """Check the central directory and return every member with its problem (if any).

    Raises UnsafeArchive when the archive as a whole is unacceptable. Nothing is decompressed.
    """
    limits = limits or ZipLimits()
    infos = zf.infolist()
    if len(infos) > limits.max_entries:
        raise _too_many(Path(zf.filename or "the zip").name, len(infos), limits)
    members, total = [], 0
    for info in infos:
        name = decoded_name(info)
        check_bomb(info, name, limits)
        total += info.file_size
        if total > limits.max_total_bytes:
            raise UnsafeArchive(
                f"{Path(zf.filename or 'the zip').name} unpacks to more than {_human(limits.max_total_bytes)}; "
                "that is more than this app accepts in one import."
            )
        members.append(Member(info, name, member_problem(info, name, limits)))
    for index, other in _overlapping(zf, infos).items():
        members[index].problem = members[index].problem or (
            f"its data overlaps that of {members[other].name} inside the zip: zip tools never write that, "
            "it is how a tiny crafted zip makes one picture unpack hundreds of times"
        )
    return members


def _overlapping(zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo]) -> dict[int, int]:
    """Entries whose bytes in the file (local header + compressed data) overlap another entry's:
    {index: index of one entry it overlaps}, every entry of an overlap included.

    The central directory gives each entry's start and compressed size; the local header's name and
    extra-field lengths (read here, 30 bytes an entry) give where its data really starts, exactly as
    zipfile will read it.
    """
    spans = []
    for index, info in enumerate(infos):
        zf.fp.seek(info.header_offset)  # zipfile's shared handle seeks before each of its own reads
        header = zf.fp.read(30)
        if len(header) < 30 or not header.startswith(b"PK\x03\x04"):
            continue  # reading it fails later with "damaged", a reason of its own
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        end = info.header_offset + 30 + name_length + extra_length + info.compress_size
        spans.append((info.header_offset, end, index))
    spans.sort()
    found: dict[int, int] = {}
    reach, reacher = -1, -1  # the furthest end so far, and whose
    for start, end, index in spans:
        if start < reach:
            found[index] = reacher
            found.setdefault(reacher, index)
        if end > reach:
            reach, reacher = end, index
    return found


def read_member(zf: zipfile.ZipFile, member: Member, limits: ZipLimits | None = None) -> bytes:
    """The member's bytes, reading at most the per-file limit whatever its header claims.

    Raises ValueError (damaged member: bad CRC, broken deflate stream) or UnsafeArchive (a member
    that inflates past the limit despite a header saying otherwise).
    """
    limits = limits or ZipLimits()
    cap = min(limits.max_file_bytes, member.info.file_size)
    try:
        with zf.open(member.info) as f:
            data = f.read(cap + 1)
    except (zipfile.BadZipFile, EOFError, OSError, RuntimeError, NotImplementedError) as exc:
        raise ValueError(f"the file is damaged inside the zip ({exc})") from None
    except Exception as exc:  # zlib.error, lzma.LZMAError ...: a corrupt stream, not our bug
        raise ValueError(f"the file is damaged inside the zip ({type(exc).__name__}: {exc})") from None
    if len(data) > cap:
        raise UnsafeArchive(f"{member.name} inside the zip unpacks to more bytes than its header says: the archive is refused.")
    return data


def safe_extract(path: str | os.PathLike, dest: str | os.PathLike, limits: ZipLimits | None = None) -> list[Path]:
    """Extract a whole zip (e.g. an exported model bundle) into `dest`, keeping its folder layout.

    Strict: any bad member (escaping path, symlink, encrypted, oversized) refuses the archive before
    a single byte is written. Only regular files and folders are created, each checked to resolve
    inside `dest`. Returns the files written.
    """
    limits = limits or ZipLimits()
    dest = Path(dest).resolve()
    with open_zip(path, limits) as zf:
        members = scan_zip(zf, limits)
        bad = [m for m in members if m.problem]
        if bad:
            raise UnsafeArchive(f"{Path(path).name} contains an unsafe entry {bad[0].name!r}: {bad[0].problem}.")
        written = []
        for member in members:
            target = (dest / member.name).resolve()
            if target != dest and dest not in target.parents:
                raise UnsafeArchive(f"{member.name!r} would be written outside {dest}.")
            if member.is_dir:
                target.mkdir(parents=True, exist_ok=True)
                continue
            data = read_member(zf, member, limits)
            target.parent.mkdir(parents=True, exist_ok=True)
            with open(target, "wb") as f:
                f.write(data)
            written.append(target)
    return written
