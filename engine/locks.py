"""One training at a time on this machine: an exclusive lock file in the data folder.

The training process itself holds the lock (fcntl.flock), so the kernel frees it when the process
ends for any reason, SIGKILL included: a crashed training can never leave the machine "busy".
"""
from __future__ import annotations

import fcntl
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from engine.paths import data_home


class TrainingBusy(RuntimeError):
    """Another training holds the machine."""


def _lock_path(name: str) -> Path:
    return data_home() / f"{name}.lock"


@contextmanager
def exclusive(name: str, *, wait: bool = False, holder: str = "") -> Iterator[Path]:
    """Hold `<data>/<name>.lock`; raise TrainingBusy at once if another process holds it (unless wait)."""
    path = _lock_path(name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            other = Path(path).read_text(errors="replace").strip() or "another process"
            raise TrainingBusy(f"A training is already running ({other}). Wait for it to finish or stop it first.") from None
        os.ftruncate(fd, 0)
        os.write(fd, (holder or f"pid {os.getpid()}").encode())
        yield path
    finally:
        os.close(fd)  # closing the descriptor releases the flock


def is_held(name: str) -> bool:
    """True while some process holds the lock."""
    path = _lock_path(name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def training_lock(holder: str = ""):
    """The machine-wide training lock, held by the training process for its whole life."""
    return exclusive("training", holder=holder)
