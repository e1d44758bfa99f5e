"""Attention GIFs (a heat map over the photo per character, in both directions) and aocr's --visualize layout."""
from __future__ import annotations

from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
import pytest

from model_fixtures import run_engine, tiny_run  # noqa: F401 - fixture
from engine.data.sources import Example
from engine.model.preprocess import Placement, fit_to_box
from engine.reading.attention_gif import GIF_WIDTH, attention_gif, folder_name, heat_map, write_visualization
from engine.reading.reader import Reading

MODEL_H, MODEL_W = 64, 128
ROWS, COLS = MODEL_H // 8, MODEL_W // 4


def _plate(width=300, height=90) -> bytes:
    img = np.full((height, width, 3), 200, np.uint8)
    cv2.putText(img, "AB123", (10, height - 20), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (20, 20, 20), 4)
    return cv2.imencode(".jpg", img)[1].tobytes()


def _reading(text: str, image: bytes, peaks: list[tuple[int, int]] | None = None) -> Reading:
    """A Reading whose attention map i is one-hot at grid cell peaks[i] = (row, column), within the photo."""
    gray = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_GRAYSCALE)
    _, place = fit_to_box(gray, MODEL_H, MODEL_W)
    valid_cols = (place.width + 3) // 4
    top, bottom = place.top // 8, (place.top + place.height - 1) // 8
    if peaks is None:
        peaks = [((top + bottom) // 2, int((i + 0.5) * valid_cols / max(len(text), 1))) for i in range(len(text))]
    att = np.zeros((len(text) + 1, ROWS, COLS), np.float32)
    for i, (r, c) in enumerate(peaks):
        att[i, r, c] = 1.0
    att[-1, top : bottom + 1, :valid_cols] = 1.0 / ((bottom - top + 1) * valid_cols)
    return Reading(text, 0.9, [0.9] * len(text), att, place, (gray.shape[1], gray.shape[0]))


def _frames(gif: bytes) -> np.ndarray:
    return iio.imread(gif, index=None, extension=".gif")


def _heat_centre(frame: np.ndarray, plain: np.ndarray) -> tuple[float, float]:
    """(row, column) where a frame differs most from the plain plate: where the heat map is."""
    diff = np.abs(frame.astype(np.int32) - plain.astype(np.int32)).sum(axis=-1).astype(np.float64)
    rows, cols = np.indices(diff.shape)
    total = diff.sum()
    return float((rows * diff).sum() / total), float((cols * diff).sum() / total)


def test_gif_has_one_frame_per_character_plus_the_plate():
    image = _plate()
    gif = attention_gif(image, _reading("AB123", image))
    assert gif[:6] in (b"GIF87a", b"GIF89a")
    frames = _frames(gif)
    assert len(frames) == len("AB123") + 1
    # scaled to ~GIF_WIDTH wide, height keeps the plate's aspect ratio (+ the text band)
    assert frames.shape[2] == GIF_WIDTH
    plate_h = round(90 * GIF_WIDTH / 300)
    assert plate_h < frames.shape[1] <= plate_h + 60
    assert len(gif) < 300_000
    meta = iio.immeta(gif, extension=".gif", index=None)
    assert meta.get("loop", 0) == 0  # loops forever


def test_the_heat_map_is_where_the_decoder_looked_in_both_directions():
    """A square two-row plate: one character read top-left, one bottom-right: the heat is there."""
    image = _plate(width=200, height=160)
    gray = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_GRAYSCALE)
    _, place = fit_to_box(gray, MODEL_H, MODEL_W)
    last_col = (place.width - 1) // 4
    reading = _reading("AB", image, peaks=[(1, 1), (ROWS - 2, last_col - 1)])
    frames = _frames(attention_gif(image, reading))
    plate_rows = slice(0, frames.shape[1] - 40)
    plain = frames[0][plate_rows]
    (r1, c1), (r2, c2) = (_heat_centre(frames[i][plate_rows], plain) for i in (1, 2))
    height, width = plain.shape[:2]
    assert r1 < height / 2 < r2, "the second character is on the lower row, and lights up there"
    assert c1 < width / 2 < c2
    # frames with the same attention are the same picture apart from the text band (up to the GIF's palette)
    same = _reading("AA", image, peaks=[(3, 5), (3, 5)])
    f = _frames(attention_gif(image, same)).astype(np.int32)
    assert np.abs(f[1][plate_rows] - f[2][plate_rows]).mean() < 2.0


def test_heat_map_ignores_the_padding_and_maps_to_the_original_photo():
    place = Placement(scale=0.5, width=40, height=16, top=8)  # the photo fills model rows 8..23, columns 0..39
    att = np.zeros((ROWS, COLS), np.float32)
    att[6, 30] = 1.0  # padding only: no original pixel maps there
    att[1, 5] = 0.5  # model rows 8..15, columns 20..23 -> original rows 0..15, columns 40..47
    weights = heat_map(att, place, (80, 32))
    assert weights.shape == (32, 80)
    assert weights.max() == pytest.approx(1.0)
    peak_row, peak_col = np.unravel_index(int(np.argmax(weights)), weights.shape)
    assert 36 <= peak_col <= 52 and peak_row < 20


def test_non_ascii_text_does_not_crash():
    image = _plate()
    gif = attention_gif(image, _reading("İŞ34Ç", image))
    assert len(_frames(gif)) == 6


def test_folder_names_are_safe():
    for bad in ("", "..", ".", "../../etc", "/abs", "a/b\\c", "CON", "\x00", "  "):
        name = folder_name(bad)
        assert name and "/" not in name and "\\" not in name and name not in (".", "..")
        assert not name.startswith(".")
    assert folder_name("34AB123") == "34AB123"


def test_write_visualization_layout_and_clashes(tmp_path: Path):
    image = _plate()
    examples = [Example("a.jpg", "AB123", image), Example("b.jpg", "AB124", image),
                Example("c.jpg", "XY1", image), Example("d.jpg", "ZZ", image)]
    readings = [_reading("AB123", image), _reading("AB123", image), _reading("../x", image), _reading("", image)]
    (tmp_path / "ab123-2").mkdir()  # an existing folder counts as taken (case-insensitively)
    folders = write_visualization(tmp_path, examples, readings)
    assert [f.name for f in folders][:2] == ["AB123", "AB123-3"]
    for folder, example, reading in zip(folders, examples, readings):
        assert folder.parent == tmp_path
        assert (folder / "image.gif").read_bytes()[:3] == b"GIF"
        lines = (folder / "word.txt").read_text(encoding="utf-8").splitlines()
        assert lines == [reading.text, example.label]
    assert len(_frames((folders[0] / "image.gif").read_bytes())) == 6
    assert len(_frames((folders[3] / "image.gif").read_bytes())) == 1  # empty reading: just the plate


def test_cli_test_visualize_honours_output_dir(tiny_run, tmp_path: Path):  # noqa: F811
    out = tmp_path / "results"
    run_engine(["test", str(tiny_run["dataset"]), "--model-dir", str(tiny_run["run"]), "--visualize",
                "--output-dir", str(out)], tiny_run["home"])
    assert (out / "predictions.csv").exists() and (out / "evaluation.json").exists()
    folders = [p for p in out.iterdir() if p.is_dir()]
    import csv

    rows = list(csv.DictReader((out / "predictions.csv").open(encoding="utf-8")))
    assert len(folders) == len(rows) > 0
    predictions = sorted(r["prediction"] for r in rows)
    assert sorted((f / "word.txt").read_text(encoding="utf-8").splitlines()[0] for f in folders) == predictions
    labels = sorted(r["label"] for r in rows)
    assert sorted((f / "word.txt").read_text(encoding="utf-8").splitlines()[1] for f in folders) == labels
    for f in folders:
        frames = _frames((f / "image.gif").read_bytes())
        text = (f / "word.txt").read_text(encoding="utf-8").splitlines()[0]
        assert len(frames) == len(text) + 1
    # nothing was written into the run folder by this command
    assert not any(p.is_dir() and (p / "word.txt").exists() for p in tiny_run["run"].iterdir())
