"""The run folder: the contract between a training process and whoever watches it.

Everything is plain files a person can read: config.json, status.json, metrics.jsonl, train.log,
checkpoints/. Writes are atomic (temp file + os.replace) so a reader or a kill never sees half a file.
"""
from __future__ import annotations

import errno
import json
import os
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

STATES = ("queued", "running", "finished", "failed", "stopped")
# write errors that mean "no room": the disk (or the quota, or a file size limit) is full
NO_SPACE = (errno.ENOSPC, errno.EFBIG, errno.EDQUOT)
ACTIVE_STATES = ("queued", "running")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a mix."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)  # mkstemp makes 0600; results are meant to be read by others too
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and exc.errno in NO_SPACE:
            raise OSError(exc.errno, f"Not enough disk space to write {path} ({exc.strerror}); the previous "
                                     "version of the file is kept. Free some disk space and try again.") from exc
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(obj, indent=2, ensure_ascii=False).encode("utf-8"))


def read_json(path: Path, default: Any = None) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return default


class RunFolder:
    """Paths and readers/writers of one run folder (`--model-dir`)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # paths ---------------------------------------------------------------------------------
    @property
    def config_path(self) -> Path:
        return self.path / "config.json"

    @property
    def status_path(self) -> Path:
        return self.path / "status.json"

    @property
    def metrics_path(self) -> Path:
        return self.path / "metrics.jsonl"

    @property
    def log_path(self) -> Path:
        return self.path / "train.log"

    @property
    def checkpoint_dir(self) -> Path:
        return self.path / "checkpoints"

    def checkpoint(self, which: str = "best") -> Path:
        return self.checkpoint_dir / f"{which}.npz"

    @property
    def predictions_path(self) -> Path:
        return self.path / "predictions.csv"

    @property
    def evaluation_path(self) -> Path:
        return self.path / "evaluation.json"

    # readers -------------------------------------------------------------------------------
    def config(self) -> dict:
        return read_json(self.config_path, {}) or {}

    def status(self) -> dict:
        """status.json, with a dead process reported as `failed` instead of `running` forever."""
        status = read_json(self.status_path, {}) or {}
        if status.get("state") == "running" and status.get("pid") and not pid_alive(int(status["pid"])):
            status = {**status, "state": "failed", "error": status.get("error") or "The training process ended unexpectedly (killed or crashed). The last checkpoint is kept; press Resume to continue."}
        return status

    def metrics(self) -> list[dict]:
        """One dict per finished epoch; a half-written last line (a kill mid-write) is ignored."""
        rows = []
        try:
            lines = self.metrics_path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return rows
        for line in lines:
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return rows

    def evaluation(self) -> dict:
        return read_json(self.evaluation_path, {}) or {}

    # writers -------------------------------------------------------------------------------
    def write_config(self, config: dict) -> None:
        atomic_write_json(self.config_path, config)

    def update_status(self, **fields: Any) -> dict:
        status = read_json(self.status_path, {}) or {}
        status.update(fields)
        status["updated_at"] = now_iso()
        atomic_write_json(self.status_path, status)
        return status

    def append_metrics(self, row: dict) -> None:
        self.path.mkdir(parents=True, exist_ok=True)
        line = json.dumps(row, ensure_ascii=False) + "\n"
        with open(self.metrics_path, "ab+") as f:
            if f.tell() > 0:  # a kill mid-append leaves half a line: end it, so this line stays whole
                f.seek(-1, os.SEEK_END)
                if f.read(1) != b"\n":
                    line = "\n" + line
            f.write(line.encode("utf-8"))
            f.flush()
            os.fsync(f.fileno())


def pid_alive(pid: int) -> bool:
    """True if a process with this pid exists and is not a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped by its parent) is not alive for our purposes
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().split(b") ", 1)[1][:1] != b"Z"
    except (OSError, IndexError):
        return True


def wait_for(predicate, timeout: float, interval: float = 0.2) -> bool:
    """Poll `predicate` until it is true or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return bool(predicate())
