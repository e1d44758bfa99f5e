"""The one reader that interprets a run's files: what state is it really in, and is it alive?

A run is active when the training lock is held by its trainer (the kernel says which process
holds it; that process wrote which run it trains). A status.json that says "running" while no
process holds the lock for it belongs to a trainer that died: the run reads `failed` (or
`stopped`, if Stop was pressed), whatever process may later have reused its pid.
"""
from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path

from engine.storage.locks import training_holder
from engine.storage.runfolder import RunFolder

START_GRACE_SECONDS = 120  # a launched trainer that has not taken the lock by then never will


def _age(iso: str | None) -> float | None:
    try:
        then = datetime.fromisoformat(str(iso))
    except (TypeError, ValueError):
        return None
    return time.time() - then.timestamp()


def _our_process(pid: int | None, run: RunFolder) -> bool:
    """Is `pid` alive and a `python -m engine train` (or `check-labels`) of this run folder, not a
    stranger with a reused pid?"""
    if not pid:
        return False
    try:
        args = [a.decode(errors="replace") for a in Path(f"/proc/{int(pid)}/cmdline").read_bytes().split(b"\0") if a]
        stat = Path(f"/proc/{int(pid)}/stat").read_bytes()
    except OSError:
        return False
    if stat.split(b") ", 1)[-1][:1] == b"Z":  # exited, not yet reaped
        return False
    target = run.path.resolve()
    ours = "engine" in args and ("train" in args or "check-labels" in args)  # a training or a label check
    return ours and any(Path(a).resolve() == target for a in args if not a.startswith("-"))


def holds_lock(run: RunFolder, holder: dict | None) -> bool:
    if not holder:
        return False
    if holder.get("run_dir"):
        return Path(holder["run_dir"]).resolve() == run.path.resolve()
    return holder.get("pid") == run.launch().get("pid")  # the instant before the trainer wrote its details


def run_state(run: RunFolder, holder: dict | None = ...) -> dict:
    """status.json as it really is now: {"state", "active", "phase", "error", "details", ... the trainer's fields}.

    `holder`: the training lock's holder if the caller already asked (listing many runs asks once).
    """
    holder = training_holder() if holder is ... else holder
    status, launch = run.status(), run.launch()
    state = status.get("state")
    stop_asked = bool(launch.get("stop_requested_at"))
    resumable = run.checkpoint("last").exists()
    if holds_lock(run, holder):
        return {**status, "state": "running", "active": True, "pid": holder["pid"]}
    if launch and _launched_since(launch, status):  # a start or resume the trainer has not picked up yet
        return _launched(run, status, launch, stop_asked, resumable)
    if state == "running":  # its trainer no longer holds the lock: it ended without saying so
        if stop_asked:
            return {**status, "state": "stopped", "active": False, "resumable": resumable,
                    "phase": "Stopped." + (" Resume continues from the last save." if resumable else "")}
        return {**status, "state": "failed", "active": False, "resumable": resumable,
                "error": "The training process ended unexpectedly (killed or crashed).", "details": run.process_log_tail()}
    if state in ("finished", "failed", "stopped"):
        extra = {"details": run.process_log_tail()} if state == "failed" else {}
        return {**status, "active": False, "resumable": status.get("resumable", resumable), **extra}
    if launch:
        return _launched(run, status, launch, stop_asked, resumable)
    return {**status, "state": state or "unknown", "active": False, "resumable": resumable}


def _launched_since(launch: dict, status: dict) -> bool:
    """Was the trainer launched after status.json was last written (or is there none)?"""
    launched, updated = _age(launch.get("launched_at")), _age(status.get("updated_at"))
    return updated is None or (launched is not None and launched < updated)


def _launched(run: RunFolder, status: dict, launch: dict, stop_asked: bool, resumable: bool) -> dict:
    """Launched, and the trainer has not taken the lock (yet, or ever)."""
    age = _age(launch.get("launched_at"))
    if _our_process(launch.get("pid"), run) and (age is None or age < START_GRACE_SECONDS):
        return {**status, "state": "queued", "active": True, "phase": "Starting the training engine", "error": None}
    if stop_asked:
        return {**status, "state": "stopped", "active": False, "resumable": resumable,
                "phase": "Stopped before training started." + ("" if resumable else " Nothing was kept.")}
    return {**status, "state": "failed", "active": False, "resumable": resumable,
            "error": "The training process ended before it started training.", "details": run.process_log_tail()}
