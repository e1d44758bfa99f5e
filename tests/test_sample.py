"""The synthetic sample set: deterministic, label-named, plate-like, imported once."""
from __future__ import annotations

import threading
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.data.labels import label_from_filename
from engine.data.render import TWO_ROW
from engine.data.render import render_plate
from engine.data.sample import SAMPLE_LAYOUTS, ensure_sample_dataset, make_sample_zip, sample_items


def test_same_seed_same_bytes(tmp_path: Path) -> None:
    a = make_sample_zip(tmp_path / "a.zip", count=12, seed=5).read_bytes()
    b = make_sample_zip(tmp_path / "b.zip", count=12, seed=5).read_bytes()
    c = make_sample_zip(tmp_path / "c.zip", count=12, seed=6).read_bytes()
    assert a == b and a != c


def test_zip_is_label_named_with_second_photos(sample_zip: Path) -> None:
    with zipfile.ZipFile(sample_zip) as zf:
        names = zf.namelist()
    assert len(names) == len(set(names)) == 40
    assert all(n.endswith(".jpg") and label_from_filename(n).isalnum() for n in names)
    assert any("_1.jpg" in n for n in names)
    for n in names:  # a second photo always has its first
        if "_" in n:
            assert f"{n.split('_')[0]}.jpg" in names


@pytest.mark.parametrize("style", SAMPLE_LAYOUTS)
def test_render_plate(style: str) -> None:
    image = render_plate("34 FK 4522", np.random.default_rng(0), style)
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert 60 <= image.shape[1] <= 400 and 16 <= image.shape[0] <= image.shape[1]
    assert image.std() > 20  # there is something drawn
    assert np.array_equal(image, render_plate("34 FK 4522", np.random.default_rng(0), style))


def test_two_row_sample_sets(tmp_path: Path) -> None:
    """`python -m engine sample --layouts two-row`: plates with two rows of text, squarer photos."""
    assert main(["sample", str(tmp_path / "two.zip"), "--count", "8", "--layouts", "two-row"]) == 0
    plans = sample_items(8, 0, TWO_ROW)
    assert all(len(text.rows) == 2 and layout in TWO_ROW for _, text, layout in plans)
    with zipfile.ZipFile(tmp_path / "two.zip") as zf:
        assert sorted(zf.namelist()) == sorted(name for name, _, _ in plans)


def test_ensure_sample_dataset_once_even_concurrently(studio_home: Path) -> None:
    results: list[Path] = []
    threads = [threading.Thread(target=lambda: results.append(ensure_sample_dataset(count=30))) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    target = studio_home / "datasets" / "sample"
    assert results == [target] * 3
    assert (target / "report.json").is_file() and (target / "labels.csv").is_file()
    stamp = (target / "report.json").stat().st_mtime_ns
    assert ensure_sample_dataset(count=30) == target
    assert (target / "report.json").stat().st_mtime_ns == stamp  # not rebuilt
    leftovers = [p.name for p in (studio_home / "datasets").iterdir() if p.name != "sample"]
    assert leftovers == []


def test_cli_sample(tmp_path: Path) -> None:
    assert main(["sample", str(tmp_path / "s.zip"), "--count", "6", "--seed", "2"]) == 0
    with zipfile.ZipFile(tmp_path / "s.zip") as zf:
        assert len(zf.namelist()) == 6
    assert main(["sample", str(tmp_path / "folder"), "--count", "4"]) == 0
    assert len(list((tmp_path / "folder").glob("*.jpg"))) == 4


def test_masked_sample_sets_hide_characters_and_import_with_their_marks(tmp_path: Path) -> None:
    """`--masked 2`: two characters of each plate hidden, written '*' in the file name, as datasets
    published for privacy write them; the import keeps the marks in the labels."""
    from engine.data.importer import import_dataset
    from engine.data.dataset import DatasetFolder

    out = tmp_path / "masked.zip"
    assert main(["sample", str(out), "--count", "30", "--layouts", "es,es-two-row", "--masked", "2"]) == 0
    with zipfile.ZipFile(out) as zf:
        labels = [label_from_filename(name) for name in zf.namelist()]
    assert len(labels) == 30 and all(label.count("*") == 2 and len(label) in (7, 8) for label in labels), labels
    plain = {text.label for _, text, _ in sample_items(30, 0, ("es", "es-two-row"))}
    assert not plain & set(labels)
    import_dataset(out, tmp_path / "dataset", seed=0)
    rows = DatasetFolder(tmp_path / "dataset").rows()
    assert sorted(r["label"] for r in rows) == sorted(labels)
