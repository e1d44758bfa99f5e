"""Training settings: aocr's flags, our additions, and the dashboard's presets."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any


@dataclass
class TrainConfig:
    # model shape (aocr: --max-width, --max-height, --max-prediction)
    max_width: int | None = None  # None: chosen from the photos' shape (engine.preprocess.input_shape_for)
    max_height: int | None = None
    max_prediction: int | None = None  # None: longest training label + 2
    filters: tuple[int, ...] = (16, 32, 64, 96)  # CNN widths: small enough to read 1,000 plates/s on 2 cores
    rnn_units: int = 96
    # optimisation (aocr: --num-epoch, --batch-size, --initial-learning-rate, --steps-per-checkpoint)
    num_epoch: int = 200
    batch_size: int = 32
    initial_learning_rate: float = 2e-3
    steps_per_checkpoint: int = 0  # 0: save the last checkpoint once per epoch only
    # our additions
    max_minutes: float | None = 10.0  # wall-clock budget, everything included
    patience: int | None = None  # epochs without a better validation score before stopping
    val_fraction: float = 0.1  # share of training labels held out for validation (no --val-dataset)
    augment: bool = True
    ctc_weight: float = 0.5  # auxiliary CTC loss on the encoder: makes attention align early
    label_smoothing: float = 0.0
    synthetic_fraction: float = 0.5  # rendered look-alike plates added per epoch, as a share of the real ones
    ema_momentum: float = 0.99  # validate and keep the "best" model on averaged weights (0: off)
    strategy: str = "default"
    seed: int = 0
    keep_case: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        if "filters" in values:  # JSON gives a list back
            values["filters"] = tuple(values["filters"])
        return cls(**values)


# Presets the dashboard offers; each is a set of overrides on TrainConfig's defaults.
PRESETS: dict[str, dict[str, Any]] = {
    "quick": {"max_minutes": 3.0, "num_epoch": 60},
    "balanced": {"max_minutes": 10.0, "num_epoch": 200},
    "best": {"max_minutes": 30.0, "num_epoch": 600},
}

PRESET_HELP = {
    "quick": "About 3 minutes. Good for a first look or the sample data.",
    "balanced": "About 10 minutes. Reads most real plates well.",
    "best": "Up to 30 minutes. For the model you will deploy.",
}


def config_for(preset: str | None = None, **overrides: Any) -> TrainConfig:
    """TrainConfig from a preset name plus explicit overrides (None values are ignored)."""
    values: dict[str, Any] = dict(PRESETS.get(preset or "", {}))
    values.update({k: v for k, v in overrides.items() if v is not None})
    return TrainConfig.from_dict(values)
