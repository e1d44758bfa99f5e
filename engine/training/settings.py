"""Training settings: the one declaration of every setting, and the presets.

`TrainConfig` is the single source of truth. Each field carries its help text, bounds and (for the
ones an operator may set) its command-line flag and form label in `field(metadata=...)`. The CLI's
`train` flags (engine/cli.py), the dashboard's advanced form (dashboard/training.py) and the run
launcher (engine/runs/launcher.py, which writes config.json for the trainer to read) are all
generated from it, so a new setting is added here and nowhere else.
"""
from __future__ import annotations

from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any, Iterator

from engine.model.precision import PRECISIONS
from engine.training.schedule import PASSES, PASSES_MIN_STEPS

# Different look-alike plates drawn for every training, whatever the set's size: on the first 150 US
# photos, 68 of them (half the photos) read 75.2 %, 1,000 read 77.1 %, 2,000 read 79.6 % (bench_accuracy.py)
LOOKALIKES = 2000


def setting(default: Any, help: str, *, flag: str | None = None, label: str | None = None,
            low: float | None = None, high: float | None = None, step: float | None = None,
            choices: tuple[str, ...] | None = None, advanced: bool = True) -> Any:
    """A dataclass field with what the CLI and the form need to offer it.

    `flag`: the `train` option (aocr's names where aocr has one); settings without a flag are
    internal (kept in config.json, not offered). `advanced`: shown in the dashboard's form.
    """
    meta = {"help": help, "flag": flag, "label": label, "low": low, "high": high, "step": step,
            "choices": choices, "advanced": advanced and flag is not None}
    return field(default=default, metadata=meta)


@dataclass
class TrainConfig:
    # --- model input and output (aocr: --max-width, --max-height, --max-prediction) -------------
    max_width: int | None = setting(
        None, "Photos are fitted into this width before reading (aocr --max-width). Empty: chosen from your photos.",
        flag="--max-width", label="Image width (pixels)", low=32, high=512, step=16)
    max_height: int | None = setting(
        None, "Photos are fitted into this height (aocr --max-height). Empty: chosen from your photos: "
        "32 for long one-row plates, 48 when a few of them are two-row (or US-shaped), 80 for square and two-row ones.",
        flag="--max-height", label="Image height (pixels)", low=16, high=128, step=16)
    max_prediction: int | None = setting(
        None, "The model reads at most this many characters (aocr --max-prediction). Empty: longest label + 2.",
        flag="--max-prediction", label="Longest plate text (characters)", low=1, high=32, step=1)
    # --- how long ---------------------------------------------------------------------------------
    max_steps: int = setting(
        3000, "Training steps (one step learns from one batch of photos). Training ends after this many "
        "steps or when the time limit runs out, whichever comes first.",
        flag="--max-steps", label="Training steps", low=10, high=1_000_000, step=100)
    max_minutes: float | None = setting(
        15.0, "Time limit in minutes, everything included. It ends training; the learning-rate schedule "
        "follows the steps, so a busy computer gives fewer steps, not a worse schedule.",
        flag="--max-minutes", label="Time limit (minutes)", low=0.1, high=10080.0, step=1.0)
    num_epoch: int | None = setting(
        None, f"Upper limit on passes over the photos (aocr --num-epoch). Empty: {PASSES} passes, and at least "
        f"{PASSES_MIN_STEPS:,} steps; on a small set, more passes learn its photos by heart and read new plates worse.",
        flag="--num-epoch", label="Passes over the photos (upper limit)", low=1, high=1_000_000, step=1)
    patience: int | None = setting(
        None, "Stop when the check on held-out photos has not improved for this many checks. "
        "Empty: train for all the steps.", flag="--patience", label="Stop early after (checks)", low=1, high=10000, step=1)
    # --- where it starts --------------------------------------------------------------------------
    init_from: str = setting(
        "starter", "What training starts from: 'starter' (the model shipped with Plate OCR Studio, "
        "which already reads many kinds of plates), a previous run's folder, or 'none' (from scratch).",
        flag="--init-from", advanced=False)
    # --- optimisation (aocr: --batch-size, --initial-learning-rate, --steps-per-checkpoint) ---------
    batch_size: int = setting(
        32, "Photos learned from at once (aocr --batch-size). Larger is steadier but slower per step.",
        flag="--batch-size", label="Photos per step", low=1, high=1024, step=1)
    initial_learning_rate: float | None = setting(
        None, "How big each learning step is (aocr --initial-learning-rate). Empty: 1e-3 from the starter "
        "or a run, 2e-3 from scratch.", flag="--initial-learning-rate", label="Learning rate", low=1e-6, high=1.0, step=1e-4)
    steps_per_checkpoint: int = setting(
        0, "Also save the model every this many steps (aocr --steps-per-checkpoint); 0: at every check.",
        flag="--steps-per-checkpoint", label="Save every (steps)", low=0, high=1_000_000, step=100)
    check_every_seconds: float = setting(
        30.0, "How often the model is checked on held-out photos (and saved), in seconds of training.",
        flag="--check-every-seconds", advanced=False)
    snapshot_steps: tuple[int, ...] = setting(
        (), "Also keep the averaged model at these step counts (benchmarks score them).",
        flag="--snapshot-steps", advanced=False)
    val_fraction: float = setting(0.1, "Share of training plates held out to check progress (no --val-dataset).")
    augment: bool = setting(True, "Alter every photo a little each time it is learned from (framing, light, blur).")
    synthetic_fraction: float = setting(
        0.5, f"Rendered look-alike plates mixed in, as a share of the real photos: {LOOKALIKES:,} different ones, "
        "so even a few hundred photos show the model every character many times. 0: none.")
    label_smoothing: float = setting(
        0.0, "Label smoothing of the character loss (above 0 it caps every confidence the model gives).")
    ema_momentum: float = setting(0.998, "Checks and the kept model use an average of recent weights (0: off).")
    warmup_steps: int = setting(100, "Steps over which the learning rate rises to its peak.")
    architecture: dict = setting(
        None, "Network sizes when training from scratch (engine/model/network.py Architecture); a model "
        "started from another keeps that one's.")
    strategy: str = setting(
        "default", "tf.distribute strategy: default, one-device, mirrored (all GPUs or CPUs of this "
        "machine) or multi-worker (several machines, configured by TF_CONFIG).",
        flag="--strategy", choices=("default", "one-device", "mirrored", "multi-worker"), advanced=False)
    precision: str = setting(
        "auto", "Number format of a training step's arithmetic: bfloat16 (weights kept in float32) or float32. "
        "auto: bfloat16 on CPUs that compute it natively (Intel AMX or AVX-512 BF16), about 1.3x faster; "
        "float32 elsewhere. The saved model is float32 either way.",
        flag="--precision", choices=PRECISIONS, advanced=False)
    seed: int = setting(0, "Random seed.", flag="--seed", advanced=False)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        """From config.json or form values; unknown keys (older or newer versions) are ignored."""
        known = {f.name: f for f in fields(cls)}
        kept = {}
        for key, value in values.items():
            if key in known:
                kept[key] = tuple(value) if isinstance(value, list) else value
        return cls(**kept)

    def learning_rate(self, from_scratch: bool) -> float:
        if self.initial_learning_rate:
            return float(self.initial_learning_rate)
        return 2e-3 if from_scratch else 1e-3


def offered_settings() -> Iterator[tuple[str, dict, Any]]:
    """(name, metadata, default) of every setting with a command-line flag, in declaration order."""
    for f in fields(TrainConfig):
        if f.metadata.get("flag"):
            default = f.default if f.default is not MISSING else None
            yield f.name, dict(f.metadata), default


def setting_type(name: str) -> type:
    """The Python type a setting's value has (int, float, str or tuple)."""
    annotation = {f.name: f.type for f in fields(TrainConfig)}[name]
    if isinstance(annotation, type):
        return annotation
    text = str(annotation)  # a string under `from __future__ import annotations`, e.g. "int | None"
    for kind in ("tuple", "float", "int", "str", "bool"):
        if text.startswith(kind) or f"[{kind}" in text:
            return {"tuple": tuple, "float": float, "int": int, "str": str, "bool": bool}[kind]
    raise TypeError(f"setting {name} has an unsupported type {text}")


# Presets the dashboard offers; each is a set of overrides on TrainConfig's defaults. Steps decide
# how much the model learns; the time limit only protects the operator's afternoon.
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"max_steps": 600, "max_minutes": 6.0},
    "balanced": {"max_steps": 3000, "max_minutes": 15.0},
    "best": {"max_steps": 10000, "max_minutes": 45.0},
}

_PRESET_USE = {
    "quick": "A first look, or the sample data.",
    "balanced": "Reads most real plates well.",
    "best": "For the model you will deploy.",
}


def preset_help(name: str) -> str:
    """The preset's caption: its steps and its time cap, from PRESETS. Not a duration: that is the
    machine's (Balanced on two-row plates took 5.7 minutes with Intel AMX; on a Zen 3 EPYC without
    AMX its 15-minute cap ended it at 1,678 steps)."""
    values = PRESETS[name]
    return f"{values['max_steps']:,} steps, at most {values['max_minutes']:g} minutes. {_PRESET_USE[name]}"


def config_for(preset: str | None = None, **overrides: Any) -> TrainConfig:
    """TrainConfig from a preset name plus explicit overrides (None values are ignored)."""
    if preset and preset not in PRESETS:
        raise ValueError(f"Unknown preset {preset!r}; choose one of {', '.join(PRESETS)}.")
    values: dict[str, Any] = dict(PRESETS.get(preset or "", {}))
    values.update({k: v for k, v in overrides.items() if v is not None})
    unknown = set(values) - {f.name for f in fields(TrainConfig)}
    if unknown:
        raise ValueError(f"Unknown training setting(s): {', '.join(sorted(unknown))}.")
    return TrainConfig.from_dict(values)
