"""The starter model: the pretrain command that makes it, and what starting from it is worth.

Apart from tests/test_train.py so that pytest-xdist runs these long tests beside that file's.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from engine.storage.csvfile import read_csv
from engine.storage.runfolder import RunFolder
from model_fixtures import run_engine, sample_dataset


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("studio_home")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return sample_dataset(tmp_path_factory, count=120, seed=3)


def test_pretrain_command_makes_a_starter_that_loads(home, tmp_path):
    """CI does not pretrain: a few steps of the real command, end to end."""
    out = tmp_path / "starter.npz"
    run_engine(["pretrain", "--work-dir", str(tmp_path / "work"), "--plates", "5400", "--steps", "6",
                "--minutes", "3", "--workers", "2", "--output", str(out)], home, timeout=600)
    from engine.model import checkpoint as ckpt
    from engine.model.starter import STARTER_FILE, load_starter

    start = load_starter(out)
    assert start.slots >= 9 and "皖" in start.charset.chars and "Q" in start.charset.chars
    assert out.stat().st_size < 3_000_000
    from_scratch = ckpt.load(out).meta["check_plate_accuracy"]
    assert ckpt.load(out).meta["boxes"] == ["32x128", "48x128", "80x160"]  # every box the engine may pick

    # A later stage continues the shipped starter on the same rendered plates (linked, not rendered again):
    # it keeps reading what the starter reads, where six steps from scratch read nothing.
    later = tmp_path / "later"
    later.mkdir()
    (later / "rendered").symlink_to(tmp_path / "work" / "rendered")
    run_engine(["pretrain", "--work-dir", str(later), "--plates", "5400", "--steps", "6", "--minutes", "3",
                "--output", str(out), "--init-from", "starter", "--boxes", "32x128,48x128,64x128"], home, timeout=600)
    meta = ckpt.load(out).meta
    assert meta["boxes"] == ["32x128", "48x128", "64x128"]  # how the earlier stages were made
    assert meta["continued_from"]["steps"] == ckpt.load(STARTER_FILE).meta["steps"]
    assert meta["check_plate_accuracy"] > from_scratch + 0.3, (meta["check_plate_accuracy"], from_scratch)


def test_pretrain_names_a_wrong_box_before_rendering_anything(home, tmp_path):
    proc = run_engine(["pretrain", "--work-dir", str(tmp_path / "work"), "--boxes", "32x128,48x130,80x160"], home,
                      check=False)
    assert proc.returncode == 2
    assert "48x130" in proc.stderr and "4 wide" in proc.stderr
    assert not (tmp_path / "work").exists()


def test_starting_from_the_starter_beats_starting_from_scratch(dataset, home, tmp_path):
    """The same small number of steps on the same generated photos: the starter model must be far ahead."""
    scores = {}
    for start in ("starter", "none"):
        run_dir = tmp_path / start
        run_engine(["train", str(dataset), "--model-dir", str(run_dir), "--init-from", start, "--max-steps", "60",
                    "--batch-size", "16"], home, timeout=400)
        scores[start] = RunFolder(run_dir).evaluation()["plate_accuracy"]
        assert RunFolder(run_dir).config()["resolved"]["started_from"]["from"] == start
    assert scores["starter"] >= scores["none"] + 0.25, scores


def test_plates_with_hidden_characters_read_the_mark_where_a_character_is_hidden(home, tmp_path):
    """Datasets published for privacy cover some characters and write each as '*' (`24*0JV*`): a short
    training from the starter, which has never seen the mark, learns to read it where the photo hides one."""
    from engine.data.importer import import_dataset
    from engine.data.sample import make_sample_zip

    dataset = tmp_path / "dataset"
    import_dataset(make_sample_zip(tmp_path / "masked.zip", count=150, seed=4, layouts=("es",), masked=2), dataset,
                   test_fraction=0.2, seed=0)
    run_dir = tmp_path / "run"
    run_engine(["train", str(dataset), "--model-dir", str(run_dir), "--max-steps", "120", "--batch-size", "16"],
               home, timeout=600)
    run = RunFolder(run_dir)
    assert "*" in run.config()["resolved"]["charset"]
    rows = read_csv(run.predictions_path)
    assert len(rows) == 30 and all(r["label"].count("*") == 2 for r in rows)
    right = [r for r in rows if r["prediction"] == r["label"]]
    assert len(right) >= 20, [(r["label"], r["prediction"]) for r in rows]
