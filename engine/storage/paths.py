"""Where everything the app writes lives: one data folder, `PLATE_STUDIO_HOME` (default ./data)."""
from __future__ import annotations

import os
import re
import unicodedata
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # engine/storage/paths.py -> the checkout
MAX_NAME_BYTES = 200  # UTF-8 bytes of a name: room under the 255-byte limit for suffixes like "-2"


class UnsafeName(ValueError):
    """A user-supplied name that would address something outside its folder."""


class DataFolderUnusable(OSError):
    """The data folder (or one of its sub-folders) cannot be created or is not a folder."""


def _ensure_folder(path: Path, home: Path) -> Path:
    try:
        path.mkdir(parents=True, exist_ok=True)
        if not path.is_dir():
            raise NotADirectoryError(20, "Not a directory")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        error = DataFolderUnusable(
            f"The data folder {home} cannot be used ({reason}: {path}). Set PLATE_STUDIO_HOME to a folder "
            "this program can create and write to."
        )
        error.errno = exc.errno
        raise error from exc
    return path


def data_home() -> Path:
    """The data folder, created on first use (DataFolderUnusable, an OSError, when it cannot be)."""
    home = Path(os.environ.get("PLATE_STUDIO_HOME") or PROJECT_ROOT / "data").expanduser().resolve()
    return _ensure_folder(home, home)


def datasets_dir() -> Path:
    home = data_home()
    return _ensure_folder(home / "datasets", home)


def runs_dir() -> Path:
    home = data_home()
    return _ensure_folder(home / "runs", home)


def safe_name(name: str, *, max_length: int = 64) -> str:
    """A folder name made from what a user typed: letters, digits, '-', '_' and '.', never '..'.

    Unicode letters are kept (an operator may name a dataset in their own script); separators,
    control characters and leading dots are replaced so the result is one harmless path segment.
    """
    text = unicodedata.normalize("NFC", str(name)).strip()
    text = re.sub(r"[^\w.\-]+", "-", text, flags=re.UNICODE)
    text = re.sub(r"\.{2,}", ".", text).strip(".-_")
    text = text[:max_length].strip(".-_")
    while len(text.encode("utf-8")) > MAX_NAME_BYTES:  # file systems allow 255 bytes a name
        text = text[:-1].rstrip(".-_")
    if not text:
        raise UnsafeName(f"{name!r} is not a usable name: use letters, digits, '-' or '_'.")
    return text


def child_path(base: Path, name: str) -> Path:
    """`base/safe_name(name)`, checked to resolve inside `base`."""
    base = Path(base).resolve()
    path = (base / safe_name(name)).resolve()
    if path.parent != base:
        raise UnsafeName(f"{name!r} would point outside {base}.")
    return path
