"""A training process: `python -m engine train [DATASET] --model-dir RUN` (what the dashboard launches).

The run folder is the contract (engine/storage/runfolder.py). This process holds the training lock
for its whole life (the dashboard knows a run is alive from it), is the only writer of status.json,
turns SIGTERM into "save and stop", and records how the run ended: finished, stopped (with whether
anything was kept to resume from) or failed (with the reason). Starting it again on the same
folder resumes from the last save. The loop itself is engine/training/trainer.py.
"""
from __future__ import annotations

import logging
import os
import shutil
import signal
import traceback
from contextlib import nullcontext
from pathlib import Path

from engine.storage.files import atomic_write_json, now_iso
from engine.storage.locks import Busy, training_lock
from engine.storage.runfolder import RunFolder
from engine.training.distribute import is_chief
from engine.training.settings import TrainConfig
from engine.training.status import StatusWriter
from engine.training.trainer import STOP, StopRequested, Trainer

log = logging.getLogger("engine.training")


def run_training(model_dir: str | os.PathLike, dataset: str | None = None, settings: TrainConfig | None = None, *,
                 val_dataset: str | None = None, resume: bool = True, preset: str | None = None,
                 prepare_data=None, bundle: bool = True) -> int:
    """Train into `model_dir`, keeping status.json true at every moment. Returns an exit code.

    `settings` (with `dataset`) start a new run; without them the run's config.json is used (a run
    prepared by the dashboard's launcher, or one being resumed). `prepare_data` replaces
    dataprep.prepare (pretraining learns from rendered plates); `bundle`: make the download at the end.
    """
    run = RunFolder(model_dir)
    chief = is_chief(settings.strategy if settings else (run.config().get("settings") or {}).get("strategy", "default"))
    if chief:
        run.path.mkdir(parents=True, exist_ok=True)
    handler = log_to_run_folder(run if chief else None)
    previous = signal.signal(signal.SIGTERM, stop_on_sigterm)
    config = _config(run, dataset, settings, val_dataset, resume, preset, write=chief)
    status = StatusWriter(run, enabled=chief)
    try:
        with training_lock(run.path.name, run.path) if chief else nullcontext():
            if chief and not resume:
                _forget_earlier_training(run)
            status.update(state="running", pid=os.getpid(), run=run.path.name, phase="Loading the training engine",
                          started_at=now_iso(), finished_at=None, error=None, verdict=None, percent=0)
            Trainer(run, config, status, chief, resume, prepare_data, bundle).fit()
        return 0
    except Busy as exc:
        log.error("%s", exc)
        status.update(state="failed", error=str(exc), phase=str(exc), finished_at=now_iso())
        return 3
    except StopRequested:
        kept = run.checkpoint("last").exists()
        log.info("Stopped on request.%s", " The last checkpoint is kept." if kept else "")
        status.update(state="stopped", finished_at=now_iso(), eta_seconds=None, resumable=kept,
                      phase="Stopped. Resume continues from the last save." if kept
                      else "Stopped before anything was learned; nothing was kept. Start a new training.")
        return 0
    except Exception as exc:  # noqa: BLE001 - the run must record any failure for the operator
        log.error("Training failed: %s\n%s", exc, traceback.format_exc())
        status.update(state="failed", error=f"{type(exc).__name__}: {exc}", finished_at=now_iso(), eta_seconds=None,
                      phase="Training failed. See train.log for details.", resumable=run.checkpoint("last").exists())
        return 1
    finally:
        signal.signal(signal.SIGTERM, previous)
        logging.getLogger().removeHandler(handler)
        handler.close()


def _forget_earlier_training(run: RunFolder) -> None:
    """A fresh start in a folder that was trained before: its checks, checkpoints and results belong
    to the earlier training and would mix into this one's charts and scores."""
    for path in run.training_products():
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def log_to_run_folder(run: RunFolder | None) -> logging.Handler:
    """train.log in the run folder (the chief's); other workers of a cluster log to stderr only."""
    handler = logging.FileHandler(run.log_path, encoding="utf-8") if run else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.getLogger().addHandler(handler)
    logging.getLogger().setLevel(logging.INFO)
    return handler


def _config(run: RunFolder, dataset, settings, val_dataset, resume: bool, preset, write: bool = True) -> dict:
    """config.json: the run's settings (written by the launcher, or here for a CLI run)."""
    existing = run.config() if resume else {}
    if existing.get("settings") and (settings is None or run.checkpoint("last").exists()):
        config = existing
        if settings is not None:  # a resumed CLI run may get a new budget
            for key in ("max_steps", "max_minutes", "patience", "num_epoch", "steps_per_checkpoint"):
                config["settings"][key] = getattr(settings, key)
    else:
        if dataset is None:
            raise ValueError(f"{run.path} has no config.json: give the dataset to train on.")
        config = {"dataset": str(Path(dataset).resolve()) if Path(dataset).exists() else str(dataset),
                  "val_dataset": val_dataset, "preset": preset, "created_at": now_iso(),
                  "settings": (settings or TrainConfig()).to_dict()}
    if write:
        atomic_write_json(run.config_path, config)
    return config




def stop_on_sigterm(signum, frame) -> None:  # noqa: ARG001 - signal handler signature
    STOP.set()
