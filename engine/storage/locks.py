"""Locks between processes: lock files in the data folder, held with POSIX record locks.

The kernel frees a lock when its process ends for any reason, SIGKILL included, so a crashed
training never leaves the machine "busy". `holder(name)` asks the kernel who holds a lock
(F_GETLK) without taking it, so checking never gets in the way of a process acquiring it, and
the answer names a live process: a recorded pid that was later reused by an unrelated program
cannot make a dead training look alive.
"""
from __future__ import annotations

import fcntl
import json
import os
import struct
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from engine.storage.files import now_iso
from engine.storage.paths import data_home

# struct flock on Linux and the BSDs is {short type, short whence, off_t start, off_t len, pid_t pid}
_FLOCK = "hhqqi"
_FLOCK_SIZE = 32
_held: dict[str, dict] = {}  # locks this process holds (F_GETLK never reports the caller's own locks)
_held_guard = threading.Lock()


class Busy(RuntimeError):
    """Another process holds the lock (for the training lock: another training runs)."""


def lock_path(name: str) -> Path:
    return data_home() / f"{name}.lock"


def _query(fd: int) -> int | None:
    """The pid holding a write lock on the open file, or None."""
    request = struct.pack(_FLOCK, fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0).ljust(_FLOCK_SIZE, b"\0")
    answer = fcntl.fcntl(fd, fcntl.F_GETLK, request)
    kind, _, _, _, pid = struct.unpack(_FLOCK, answer[: struct.calcsize(_FLOCK)])
    return None if kind == fcntl.F_UNLCK else int(pid)


def holder(name: str) -> dict | None:
    """Who holds lock `name` now: {"pid": ..., plus what the holder wrote (e.g. "run")}, or None.

    Read-only: never takes the lock. When the holder has not yet written its details (the instant
    after acquiring), only "pid" is given.
    """
    with _held_guard:
        if name in _held:
            return dict(_held[name])
    path = lock_path(name)
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return None
    try:
        pid = _query(fd)
        if pid is None:
            return None
        try:
            details = json.loads(os.pread(fd, 4096, 0).decode("utf-8") or "{}")
        except (ValueError, UnicodeDecodeError):
            details = {}
        if not isinstance(details, dict) or details.get("pid") != pid:
            details = {}  # written by an earlier holder: only the kernel's pid is known
        return {**details, "pid": pid}
    finally:
        os.close(fd)


@contextmanager
def exclusive(name: str, *, wait: bool = False, timeout: float | None = None, **details) -> Iterator[None]:
    """Hold `<data>/<name>.lock` for the block; raise Busy at once if another process holds it
    (with `wait`, wait for it, up to `timeout` seconds). `details` are written into the file for
    `holder()` to report."""
    path = lock_path(name)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, name, wait, timeout)
        info = {"pid": os.getpid(), "since": now_iso(), **details}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode("utf-8"), 0)
        with _held_guard:
            _held[name] = info
        try:
            yield
        finally:
            with _held_guard:
                _held.pop(name, None)
    finally:
        os.close(fd)  # closing the descriptor releases the lock


def _acquire(fd: int, name: str, wait: bool, timeout: float | None) -> None:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        try:
            fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except (BlockingIOError, PermissionError):
            if not wait or (deadline is not None and time.monotonic() > deadline):
                other = holder(name) or {}
                who = f"run {other['run']}, pid {other['pid']}" if other.get("run") else f"pid {other.get('pid', '?')}"
                raise Busy(f"A training is already running ({who}). Wait for it to finish or stop it first.") from None
            time.sleep(0.05)


TRAINING = "training"


def training_lock(run_id: str, run_dir: str | os.PathLike):
    """The machine-wide training lock, held by the training process for its whole life."""
    return exclusive(TRAINING, run=run_id, run_dir=str(run_dir))


def training_holder() -> dict | None:
    """The live training process, if any: {"pid", "run", "run_dir", "since"}."""
    return holder(TRAINING)
