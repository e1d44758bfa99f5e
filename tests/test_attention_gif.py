"""Attention GIFs and aocr's --visualize layout."""
from __future__ import annotations

from pathlib import Path

import cv2
import imageio.v3 as iio
import numpy as np
import pytest

from model_fixtures import run_engine, tiny_run  # noqa: F401 - fixture
from engine.reading.attention_gif import GIF_WIDTH, attention_gif, column_weights, folder_name, write_visualization
from engine.model.preprocess import Placement, fit_to_box
from engine.reading.reader import Reading
from engine.data.sources import Example


def _plate(width=300, height=90) -> bytes:
    img = np.full((height, width, 3), 200, np.uint8)
    cv2.putText(img, "AB123", (10, height - 20), cv2.FONT_HERSHEY_SIMPLEX, 2.0, (20, 20, 20), 4)
    return cv2.imencode(".jpg", img)[1].tobytes()


def _reading(text: str, image: bytes, peaks: list[int] | None = None, model_h=32, model_w=128) -> Reading:
    """A Reading whose attention row i is one-hot at encoder step peaks[i] (within the image)."""
    gray = cv2.imdecode(np.frombuffer(image, np.uint8), cv2.IMREAD_GRAYSCALE)
    _, place = fit_to_box(gray, model_h, model_w)
    steps = model_w // 4
    valid = (place.width + 3) // 4
    peaks = peaks if peaks is not None else [int((i + 0.5) * valid / max(len(text), 1)) for i in range(len(text))]
    att = np.zeros((len(text) + 1, steps), np.float32)
    for i, p in enumerate(peaks):
        att[i, p] = 1.0
    att[-1, :valid] = 1.0 / valid
    return Reading(text, 0.9, [0.9] * len(text), att, place, (gray.shape[1], gray.shape[0]))


def _frames(gif: bytes) -> np.ndarray:
    return iio.imread(gif, index=None, extension=".gif")


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
    assert len(gif) < 200_000
    meta = iio.immeta(gif, extension=".gif", index=None)
    assert meta.get("loop", 0) == 0  # loops forever


def test_frames_follow_the_attention_in_original_coordinates():
    image = _plate(width=300, height=90)
    reading = _reading("AB", image, peaks=[2, 25])  # left, then right part of the plate
    frames = _frames(attention_gif(image, reading)).astype(np.int32)[..., 0]
    plate_rows = slice(0, round(90 * GIF_WIDTH / 300))
    first, second = frames[1][plate_rows], frames[2][plate_rows]
    assert not np.array_equal(first, second)
    col_bright = lambda f: f.mean(axis=0)  # noqa: E731
    # where each frame is brightest relative to the plain plate = where the decoder looked
    base = frames[0][plate_rows].mean(axis=0) + 1
    r1, r2 = col_bright(first) / base, col_bright(second) / base
    # step j covers model columns [4j, 4j+4) -> original columns / placement.scale -> gif columns
    place = reading.placement
    for step, ratio in ((2, r1), (25, r2)):
        centre_orig = (4 * step + 2) / place.scale
        centre_gif = centre_orig * GIF_WIDTH / 300
        assert abs(int(np.argmax(ratio)) - centre_gif) <= 4 * GIF_WIDTH / 300 / place.scale
    # frames with the same attention are the same picture apart from the text band
    same = _reading("AA", image, peaks=[7, 7])
    f = _frames(attention_gif(image, same))[..., 0]
    assert np.array_equal(f[1][plate_rows], f[2][plate_rows])


def test_column_weights_ignore_the_padding():
    place = Placement(scale=0.5, width=40, height=16, top=8)  # image fills model columns 0..39 of 128
    att = np.zeros(32)
    att[30] = 1.0  # padding only: no original column maps there
    att[5] = 0.5
    w = column_weights(att, place, original_width=80)
    assert w.shape == (80,)
    assert w.max() == pytest.approx(1.0)
    # original column c -> model column c*0.5 -> step c*0.5//4 ; step 5 = original columns 40..47
    assert np.flatnonzero(w == w.max()).tolist() == list(range(40, 48))


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
