"""Likely wrong labels (engine/reading/review.py) and label corrections (engine/data/dataset.py).

One real label check (two tiny trainings from the starter, launched as the dashboard launches it) runs
on sample plates with 5 % of the labels made wrong on purpose; the other tests need no training. The
sample is of one layout (Turkish plates): 150 steps then read ~88 % of the unseen photos, and a wrong
label can only be found on a photo the model reads.
"""
from __future__ import annotations

import json
import os
import random
import signal
import time
from pathlib import Path

import pytest

from engine.data.dataset import DatasetFolder
from engine.storage.csvfile import read_csv, write_csv

PHOTOS = 240
WRONG_SHARE = 0.05
CHECK_STEPS = 150
TOP_MULTIPLE = 2  # 80 % of the injected errors must be among the first 2 x (number injected) flagged photos
DIGITS, LETTERS = "0123456789", "ABCDEFGHJKLMNPRSTUVXYZ"


def _mislabel(label: str, taken: set[str], rng: random.Random) -> str:
    """One or two characters changed, digits to digits and letters to letters: the layout stays right,
    so only reading the photo can tell."""
    while True:
        chars = list(label)
        for i in rng.sample(range(len(chars)), rng.choice((1, 2))):
            pool = DIGITS if chars[i].isdigit() else LETTERS
            chars[i] = rng.choice(pool.replace(chars[i], ""))
        wrong = "".join(chars)
        if wrong not in taken:
            return wrong


def _wait(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"{what} within {timeout:.0f} s"
        time.sleep(0.5)


def _end_process(run_dir: Path) -> None:
    """SIGKILL the check process a failed test may have left (the pid it recorded, if still ours)."""
    pid = json.loads((run_dir / "launch.json").read_text()).get("pid") if (run_dir / "launch.json").exists() else None
    try:
        if pid and b"check-labels" in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)
    except (OSError, ValueError):
        pass


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A sample dataset with wrong labels injected, checked by a launched label check (progress recorded)."""
    from engine import runs
    from engine.data.importer import import_dataset
    from engine.data.sample import make_sample_folder

    base = tmp_path_factory.mktemp("review")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PLATE_STUDIO_HOME", str(base / "home"))
        photos = make_sample_folder(base / "photos", count=PHOTOS, seed=11, layouts=("tr",))
        rng, taken = random.Random(3), {p.stem.split("_")[0] for p in photos.iterdir()}
        injected = {}
        for photo in rng.sample(sorted(photos.iterdir()), round(WRONG_SHARE * PHOTOS)):
            wrong = _mislabel(photo.stem.split("_")[0], taken, rng)
            taken.add(wrong)
            photo.rename(photos / f"{wrong}.jpg")  # the photo's own bytes, a wrong name
            injected[f"{wrong}.jpg"] = photo.stem
        dataset = base / "home" / "datasets" / "plates"
        import_dataset(photos, dataset)
        started = time.monotonic()
        run_id = runs.start_label_check("plates", steps=CHECK_STEPS)
        run_dir = base / "home" / "runs" / run_id
        seen = []
        try:
            while runs.get_run(run_id)["active"]:
                status = json.loads((run_dir / "status.json").read_text()) if (run_dir / "status.json").exists() else {}
                seen.append((status.get("percent"), status.get("phase"), status.get("eta_seconds")))
                assert time.monotonic() - started < 400, "the label check did not end within 400 s"
                time.sleep(0.5)
            record, latest = runs.get_run(run_id), runs.latest_label_check("plates")
            listed = {"trainings": runs.list_runs(), "all": runs.list_runs(include_checks=True)}
        finally:
            _end_process(run_dir)
        return {"dataset": dataset, "run_dir": run_dir, "injected": injected, "seen": seen, "record": record,
                "latest": latest, "listed": listed, "seconds": time.monotonic() - started, "run_id": run_id}


# the real check ----------------------------------------------------------------------------------
def test_label_check_finds_the_injected_wrong_labels(checked: dict):
    from engine.reading.review import review_rows

    assert checked["record"]["state"] == "finished", checked["record"]["status"]
    flagged = review_rows(checked["dataset"], check_dir=checked["run_dir"])
    injected = checked["injected"]
    top = [row["file"] for row in flagged[: TOP_MULTIPLE * len(injected)]]
    found = [name for name in injected if name in top]
    ranks = {name: next((i + 1 for i, r in enumerate(flagged) if r["file"] == name), None) for name in injected}
    print(f"ranks of the {len(injected)} injected wrong labels among {len(flagged)} flagged: {ranks}")
    assert len(found) >= 0.8 * len(injected), f"ranks of the injected errors: {ranks}; flagged: {flagged[:25]}"
    first = flagged[0]
    assert first["score"] >= flagged[-1]["score"] and "never saw this photo" in first["reason"]


def test_each_photo_is_read_by_the_model_that_did_not_train_on_it(checked: dict):
    from engine.data.split import grouped_split

    rows = read_csv(checked["run_dir"] / "label_check.csv")
    photos = DatasetFolder(checked["dataset"]).rows()
    assert sorted(r["file"] for r in rows) == sorted(p["file"] for p in photos)  # every photo, once
    sides = dict(zip((p["file"] for p in photos), grouped_split([p["label"] for p in photos], 0.5, seed=0)))
    for row in rows:  # half-a learned the "train" side of the split, half-b the other
        assert row["model"] == {"test": "half-a", "train": "half-b"}[sides[row["file"]]]
    split = {p["file"]: p["split"] for p in photos}
    assert all(row["split"] == split[row["file"]] for row in rows)
    for half in ("half-a", "half-b"):
        config = json.loads((checked["run_dir"] / half / "config.json").read_text())
        assert config["settings"]["max_steps"] == CHECK_STEPS and config["settings"]["init_from"] == "starter"
        assert config["resolved"]["started_from"]["from"] == "starter"
    assert not list(checked["run_dir"].glob("data-*"))  # the halves' links to the photos are gone


def test_the_check_reads_each_photo_as_the_product_reads_it(checked: dict):
    """The Results page and the label check must not disagree on what a model reads: both go through
    the reader's views (unsure photos read again in every view, averaged)."""
    from engine.reading.reader import PlateReader

    rows = read_csv(checked["run_dir"] / "label_check.csv")
    images = DatasetFolder(checked["dataset"]).path / "images"
    rereads = 0
    for half in ("half-a", "half-b"):
        mine = [r for r in rows if r["model"] == half]
        reader = PlateReader.load(checked["run_dir"] / half)
        readings = reader.read([(images / r["file"]).read_bytes() for r in mine])
        assert [r["reading"] for r in mine] == [x.text for x in readings]
        assert [float(r["confidence"]) for r in mine] == pytest.approx([x.confidence for x in readings], abs=2e-4)
        reader.views = reader.views[:1]
        alone = reader.read([(images / r["file"]).read_bytes() for r in mine])
        rereads += sum(abs(a.confidence - x.confidence) > 1e-3 for a, x in zip(alone, readings))
    assert rereads > 0  # the views changed some readings' confidence: the comparison above can tell


def test_the_launched_check_reports_progress_and_is_listed_only_when_asked(checked: dict):
    percents = [p for p, _, _ in checked["seen"] if p is not None]
    phases = {phase for _, phase, _ in checked["seen"] if phase}
    assert any(0 < p < 100 for p in percents) and percents == sorted(percents)
    assert {phase[:12] for phase in phases} >= {"Model 1 of 2", "Model 2 of 2"}
    assert any(eta for _, _, eta in checked["seen"])
    assert checked["record"]["kind"] == "label-check" and checked["record"]["status"]["percent"] == 100
    assert checked["latest"]["id"] == checked["run_id"]
    assert checked["listed"]["trainings"] == []
    assert [r["id"] for r in checked["listed"]["all"]] == [checked["run_id"]]
    print(f"label check of {PHOTOS} photos, {CHECK_STEPS} steps a model: {checked['seconds']:.0f} s")


def test_a_label_check_holds_the_training_lock_and_can_be_stopped(studio_home: Path, sample_zip: Path):
    from engine import runs
    from engine.data.importer import import_dataset
    from engine.storage.locks import training_holder

    import_dataset(sample_zip, studio_home / "datasets" / "small")
    run_id = runs.start_label_check("small", steps=2000)
    run_dir = studio_home / "runs" / run_id
    try:
        assert training_holder()["run_dir"] == str(run_dir)  # start_label_check returns once it holds the lock
        with pytest.raises(runs.TrainingBusy):
            runs.start_run("small", preset="quick")
        with pytest.raises(runs.TrainingBusy):
            runs.start_label_check("small")
        _wait(lambda: "Model 1 of 2: Training" in runs.get_run(run_id)["status"].get("phase", ""), 120,
              "the first model did not start training")
        runs.stop_run(run_id, wait=60)
        record = runs.get_run(run_id)
        assert record["state"] == "stopped" and not record["active"] and training_holder() is None
        assert runs.latest_label_check("small") is None  # only finished checks count
        runs.delete_run(run_id)
        assert len(list((studio_home / "datasets" / "small" / "images").iterdir())) == 40  # links, not photos, went
    finally:
        if run_dir.exists():
            _end_process(run_dir)


# the pattern of the labels -----------------------------------------------------------------------
def test_pattern_flags_catch_length_and_layout_outliers_and_leave_a_clean_set_alone():
    from engine.data.sample import sample_items
    from engine.reading.review import pattern_flags

    rng = random.Random(0)
    clean = [f"{rng.randint(10, 81)}{rng.choice(LETTERS)}{rng.choice(LETTERS)}{rng.randint(100, 9999)}"
             for _ in range(80)]
    assert pattern_flags(clean) == {}
    flags = pattern_flags(clean + ["34AB12", "34AB1C23"])
    assert set(flags) == {"34AB12", "34AB1C23"}
    assert flags["34AB12"].startswith("the label has 6 characters;") and "7 or 8" in flags["34AB12"]
    assert "a letter (C) at position 6" in flags["34AB1C23"]
    assert pattern_flags(clean[:20] + ["34AB12"]) == {}  # too few plates to have a pattern
    mixed = [text.label for _, text, _ in sample_items(600, seed=0)]  # many countries: rare layouts are normal
    assert pattern_flags(mixed) == {}


def test_a_hidden_character_breaks_no_pattern_and_hides_none():
    """Labels of a set published for privacy write covered characters as '*' (`24*0JV*`): a mark is
    no break of the pattern, and the shares are counted over the labels that show a character there,
    so a plate of a minority layout is not flagged for the marks on the others; a real typo still is."""
    from engine.reading.review import pattern_flags

    rng = random.Random(2)
    def plate(layout: str) -> str:
        return "".join(rng.choice(DIGITS if k == "D" else LETTERS) for k in layout)

    def hide(label: str, *places: int) -> str:
        return "".join("*" if i in places else c for i, c in enumerate(label))

    usual = [plate("DDDDLLL") for _ in range(100)]
    minority = [plate("LDDDDLL") for _ in range(5)]  # 5 in 105: not rare
    labels = [hide(p, 0, 5) for p in usual[:60]] + [hide(p, 3, 6) for p in usual[60:]]
    labels += [hide(p, 0, 2) for p in minority[:3]] + [hide(p, 3, 6) for p in minority[3:]]
    assert pattern_flags(labels) == {}
    flags = pattern_flags(labels + ["12A4*BC"])
    assert list(flags) == ["12A4*BC"] and "a letter (A) at position 3" in flags["12A4*BC"]


# corrections -------------------------------------------------------------------------------------
@pytest.fixture
def small(studio_home: Path, sample_zip: Path) -> DatasetFolder:
    from engine.data.importer import import_dataset

    import_dataset(sample_zip, studio_home / "datasets" / "small")
    return DatasetFolder(studio_home / "datasets" / "small")


def test_edit_label_keeps_split_and_photos_writes_history_and_reaches_training(small: DatasetFolder):
    from engine.data.sources import load_examples
    from engine.data.tfrecords import ensure_dataset_records, read_tfrecords

    before = small.split_fingerprint()
    photos = {p.name: p.read_bytes() for p in small.images_dir.iterdir()}
    row = next(r for r in small.rows() if r["split"] == "train")
    ensure_dataset_records(small.path)

    small.edit_label(row["file"], " 34 fk 4522 ", who="tester")
    edited = next(r for r in small.rows() if r["file"] == row["file"])
    assert edited["label"] == "34 FK 4522" and edited["original"] == row["original"]
    assert small.split_fingerprint() == before
    assert {p.name: p.read_bytes() for p in small.images_dir.iterdir()} == photos
    (entry,) = small.history()
    assert entry["file"] == row["file"] and entry["original"] == row["original"] and entry["old"] == row["label"]
    assert entry["new"] == "34 FK 4522" and entry["who"] == "tester" and entry["when"] and entry["action"] == "relabel"
    assert ("34 FK 4522", row["file"]) in {(e.label, e.file) for e in load_examples(small.path, "train")}
    train_shards = ensure_dataset_records(small.path)["train"]  # rewritten: labels.csv changed
    assert "34 FK 4522" in {e.label for e in read_tfrecords(train_shards)}

    for bad in ("", "34\u200bFK"):
        with pytest.raises(ValueError):
            small.edit_label(row["file"], bad)
    with pytest.raises(ValueError):
        small.edit_label("no-such-photo.jpg", "34FK4522")
    small.edit_label(row["file"], "34 FK 4522")  # no change, no history line
    assert len(small.history()) == 1 and small.split_fingerprint() == before


def test_exclude_leaves_the_photo_out_of_training_and_evaluation(small: DatasetFolder):
    from engine.data.sources import load_examples
    from engine.training import dataprep
    from engine.training.settings import TrainConfig

    settings = TrainConfig(synthetic_fraction=0.0, val_fraction=0.0)
    counted = dataprep.prepare(settings, str(small.path), None, None, lambda text: None).train_count
    before = small.split_fingerprint()
    train = next(r for r in small.rows() if r["split"] == "train")
    test = next(r for r in small.rows() if r["split"] == "test")
    small.exclude(train["file"])
    small.exclude(test["file"], who="tester")

    assert train["file"] not in {e.file for e in load_examples(small.path, "train")}
    assert test["file"] not in {e.file for e in load_examples(small.path, "test")}  # what evaluation reads
    assert dataprep.prepare(settings, str(small.path), None, None, lambda text: None).train_count == counted - 1
    assert small.split_fingerprint() == before and (small.images_dir / train["file"]).exists()
    assert [(h["file"], h["action"], h["excluded"]) for h in small.history()] == [
        (train["file"], "exclude", True), (test["file"], "exclude", True)]
    small.exclude(test["file"], excluded=False)
    assert test["file"] in {e.file for e in load_examples(small.path, "test")}
    assert small.history()[-1]["action"] == "include"


# the list the operator reviews -------------------------------------------------------------------
def test_review_rows_merge_the_run_the_check_and_the_pattern(small: DatasetFolder, tmp_path: Path):
    from engine.reading.review import review_rows

    rows = small.rows()
    test_photos = [r for r in rows if r["split"] == "test"]
    train_photo = next(r for r in rows if r["split"] == "train")
    wrong, doubted, vouched, *right = test_photos
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps({"split_fingerprint": small.split_fingerprint()}))
    write_csv(run / "predictions.csv", ["file", "label", "prediction", "confidence", "correct"], [
        [wrong["file"], wrong["label"], "06EU5892", "0.6", 0],  # surer than when it is right: confidently
        [doubted["file"], doubted["label"], "X", "0.1", 0],  # the model's doubt, not the label's
        [vouched["file"], vouched["label"], "ZZ999", "0.6", 0],
        [train_photo["file"], train_photo["label"], "TRAINED1", "0.99", 0],  # the run learned it: no evidence
        *([r["file"], r["label"], r["label"], "0.5", 1] for r in right),  # its usual confidence when right: 0.5
    ])
    check = tmp_path / "check"
    write_csv(check / "label_check.csv", ["file", "label", "reading", "confidence", "split", "model", "label_odds"], [
        [vouched["file"], vouched["label"], vouched["label"], "0.4", "test", "half-a", "1"],
        [train_photo["file"], train_photo["label"], "CHECK12", "0.3", "train", "half-a", "0.01"],
        [doubted["file"], doubted["label"], "Y", "0.3", "test", "half-a", "0.8"],  # hesitates between Y and the label
    ])
    flagged = review_rows(small.path, run_dir=run, check_dir=check)
    assert [r["file"] for r in flagged] == [wrong["file"], train_photo["file"]]
    assert flagged[0]["reading"] == "06EU5892" and flagged[0]["confidence"] == pytest.approx(0.6)
    assert flagged[0]["score"] == 1 and flagged[0]["split"] == "test"
    assert flagged[0]["reason"] == "read confidently as 06EU5892 by a model that never saw this photo (confidence 60 %)"
    assert flagged[1]["reading"] == "CHECK12" and flagged[1]["score"] == pytest.approx(0.3 / 0.4 * 0.99)
    assert flagged[1]["reason"].endswith("which finds the label 100 times less likely")

    small.edit_label(wrong["file"], "06EU5892")  # fixed: no longer suspicious
    small.exclude(train_photo["file"])  # left out: not shown
    assert review_rows(small.path, run_dir=run, check_dir=check) == []
    (run / "config.json").write_text(json.dumps({"split_fingerprint": "another split"}))
    small.edit_label(wrong["file"], wrong["label"])
    assert review_rows(small.path, run_dir=run) == []  # a run of another split may have trained on them


def test_check_labels_command_line(tmp_path: Path):
    from engine.cli import build_parser

    args = build_parser().parse_args(["check-labels", "DATA", "--out", str(tmp_path / "out"), "--steps", "50"])
    assert (args.command, args.dataset_path, args.steps) == ("check-labels", "DATA", 50)
