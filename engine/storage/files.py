"""Files the engine writes: atomically (a reader or a kill never sees half a file), plain and dated.

Every JSON, CSV, checkpoint and zip the engine writes goes through `atomic_writer` (or `atomic_write_bytes`), so a full
disk gives one clear message and keeps the previous version of the file.
"""
from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, BinaryIO, Iterator

# write errors that mean "no room": the disk (or the quota, or a file size limit) is full
NO_SPACE = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
# fixed date of every zip entry the engine writes: the same content gives the same zip bytes
ZIP_DATE = (2024, 1, 1, 0, 0, 0)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def is_out_of_space(exc: BaseException) -> bool:
    """A write failed for lack of room: ENOSPC/EFBIG/EDQUOT, also as TensorFlow's file-writer errors."""
    if isinstance(exc, OSError) and exc.errno in NO_SPACE:
        return True
    text = str(exc)
    return type(exc).__module__.startswith("tensorflow") and any(os.strerror(code) in text for code in NO_SPACE)


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write `path` through: readers see the old file or the new one, never a mix
    (the new one replaces the old only when the block ends without an exception)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; results are meant to be read by others too
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            raise OSError(exc.errno, f"Not enough disk space to write {path} ({exc.strerror}); the previous "
                                     "version of the file is kept. Free some disk space and try again.") from exc
        raise


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a mix."""
    with atomic_writer(path) as f:
        f.write(data)


def remove_stale_temp_files(path: str | os.PathLike) -> None:
    """Delete what killed writes of `path` left behind (`.NAME.<random>.tmp` beside it).

    Only call it where one process writes that file (a run folder's trainer): its own writes are
    sequential, so after one completed, any other temp file of the same name is dead weight.
    """
    path = Path(path)
    for stale in path.parent.glob(f".{path.name}.*.tmp"):
        stale.unlink(missing_ok=True)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, ensure_ascii=False).encode("utf-8"))


def read_json(path: str | os.PathLike, default: Any = None) -> Any:
    """The parsed file, or `default` when it is missing, half-written or not JSON."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError, json.JSONDecodeError, UnicodeDecodeError):
        return default


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """One dict per line of a JSON-lines file; a line torn by a kill mid-write is skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    rows = []
    for line in lines:
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def zip_add(zf: zipfile.ZipFile, name: str, data: bytes, *, compress: bool = True) -> None:
    """One entry with the fixed date and plain file permissions."""
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def human_bytes(size: float) -> str:
    """1536 -> '1.5 KB' (binary multiples, the way file managers show sizes)."""
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"
