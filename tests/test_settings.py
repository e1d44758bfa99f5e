"""One declaration of every training setting: the CLI's flags, the launcher and the trainer follow it."""
from __future__ import annotations

import dataclasses
import json

import pytest

from engine.training import settings


@pytest.fixture
def with_a_new_setting(monkeypatch):
    """TrainConfig as a developer would extend it: one new field, declared once, nothing else edited."""
    extended = dataclasses.make_dataclass(
        "TrainConfig",
        [("glare_strength", float, settings.setting(0.25, "How strong the simulated glare is.", flag="--glare-strength",
                                                    label="Glare strength", low=0.0, high=1.0, step=0.05))],
        bases=(settings.TrainConfig,),
    )
    monkeypatch.setattr(settings, "TrainConfig", extended)
    return extended


def test_a_new_setting_reaches_the_command_line_with_no_other_edit(with_a_new_setting):
    from engine.cli import build_parser, settings_from_args

    parser = build_parser()
    args = parser.parse_args(["train", "data/x", "--model-dir", "r", "--glare-strength", "0.5", "--preset", "quick"])
    assert args.glare_strength == 0.5
    config = settings_from_args(args)
    assert config.glare_strength == 0.5 and config.max_steps == settings.PRESETS["quick"]["max_steps"]
    assert "How strong the simulated glare is" in parser._subparsers._group_actions[0].choices["train"].format_help()
    defaults = settings_from_args(parser.parse_args(["train", "x", "--model-dir", "r"]))
    assert defaults.glare_strength == 0.25, "a flag not given keeps the declared default"


def test_every_offered_setting_has_a_flag_help_and_a_type():
    names = []
    for name, meta, default in settings.offered_settings():
        assert meta["flag"].startswith("--") and meta["help"]
        assert settings.setting_type(name) in (int, float, str, tuple)
        if meta["advanced"]:
            assert meta["label"] and meta["low"] is not None and meta["high"] is not None, name
        names.append(name)
    assert {"max_width", "max_height", "max_prediction", "num_epoch", "batch_size", "initial_learning_rate",
            "steps_per_checkpoint", "init_from", "max_steps", "max_minutes"} <= set(names), "aocr's flags and ours"


def test_the_launcher_writes_the_settings_the_trainer_reads(studio_home, make_sample_zip, monkeypatch):
    """config.json carries every setting across the process boundary: no hand-kept flag list."""
    from engine.data.importer import import_dataset
    from engine.runs import launcher

    dataset = studio_home / "datasets" / "plates"
    import_dataset(make_sample_zip(count=30), dataset)
    monkeypatch.setattr(launcher, "_spawn", lambda run: None)  # only the writing of config.json is looked at here
    run_id = launcher.start_run(dataset, preset="quick", name="n", max_steps=77, label_smoothing=0.05, init_from="none")
    config = json.loads((studio_home / "runs" / run_id / "config.json").read_text())
    read_back = settings.TrainConfig.from_dict(config["settings"])
    assert read_back.max_steps == 77 and read_back.label_smoothing == 0.05 and read_back.init_from == "none"
    assert read_back.max_minutes == settings.PRESETS["quick"]["max_minutes"]
    assert config["preset"] == "quick" and config["split_fingerprint"]
    with pytest.raises(ValueError, match="no_such_setting"):
        launcher.start_run(dataset, no_such_setting=1)
