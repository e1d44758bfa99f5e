"""Train page helpers: which run to show, the settings form's values, a plain summary of a status."""
from __future__ import annotations

from typing import Any

from engine import runs
from engine.training.settings import PRESETS, TrainConfig, config_for
from engine.storage.runfolder import RunFolder

PRESET_ORDER = ("quick", "balanced", "best")

# Advanced settings: (TrainConfig field, label, help, kind, min, max, step)
ADVANCED = [
    ("max_width", "Image width (px)", "Photos are fitted into this width before reading (aocr --max-width). "
     "Empty: chosen from your photos' shape.", int, 16, 1024, 8),
    ("max_height", "Image height (px)", "Photos are fitted into this height (aocr --max-height). "
     "Empty: chosen from your photos' shape.", int, 16, 256, 4),
    ("max_prediction", "Longest plate text (characters)", "The model reads at most this many characters "
     "(aocr --max-prediction). Empty: longest label + 2.", int, 1, 64, 1),
    ("num_epoch", "Epochs (passes over the photos)", "Upper limit; the time budget usually ends training first "
     "(aocr --num-epoch).", int, 1, 10000, 1),
    ("batch_size", "Batch size (photos per step)", "aocr --batch-size.", int, 1, 1024, 1),
    ("initial_learning_rate", "Learning rate", "Step size of the optimiser (aocr --initial-learning-rate).", float, 1e-6, 1.0, 1e-4),
    ("max_minutes", "Time budget (minutes)", "Training stops and keeps the best model when this runs out.", float, 0.1, 1440.0, 0.5),
    ("patience", "Stop early after (epochs)", "Stop when validation plate accuracy has not improved for this many "
     "epochs. Empty: train for the whole time budget.", int, 1, 10000, 1),
]


def preset_defaults(preset: str | None) -> TrainConfig:
    return config_for(preset)


def overrides_from(values: dict[str, Any]) -> dict[str, Any]:
    """Only the advanced settings the operator filled in (None means: keep the preset's value)."""
    out = {}
    for key, _label, _help, kind, *_ in ADVANCED:
        value = values.get(key)
        if value is None or value == "":
            continue
        out[key] = kind(value)
    return out


def run_to_show(preferred: str | None = None) -> dict | None:
    """The active run, else the preferred one (just started / picked), else the newest."""
    all_runs = runs.list_runs()
    for run in all_runs:
        if run["active"]:
            return run
    if preferred:
        for run in all_runs:
            if run["id"] == preferred:
                return run
    return all_runs[0] if all_runs else None


def progress_fraction(status: dict, config: dict) -> float:
    """0..1 for the progress bar: by epochs or by the time budget, whichever is further along."""
    fractions = []
    epochs = status.get("epochs") or config.get("num_epoch")
    epoch = status.get("epoch")
    step, steps = status.get("step"), status.get("steps_per_epoch")
    if epochs and epoch is not None:
        within = (step % steps) / steps if (step is not None and steps) else 0.0
        fractions.append((float(epoch) + within) / float(epochs))
    budget = config.get("max_minutes")
    if budget and status.get("elapsed_seconds") is not None:
        fractions.append(float(status["elapsed_seconds"]) / (60.0 * float(budget)))
    eta, elapsed = status.get("eta_seconds"), status.get("elapsed_seconds")
    if eta is not None and elapsed is not None and (eta + elapsed) > 0:
        fractions.append(float(elapsed) / float(eta + elapsed))
    if status.get("state") == "finished":
        return 1.0
    return max(0.0, min(1.0, max(fractions) if fractions else 0.0))


def metrics_of(run: dict) -> list[dict]:
    return RunFolder(run["path"]).metrics()


def preset_summary(preset: str) -> str:
    values = PRESETS.get(preset, {})
    return ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in values.items())
