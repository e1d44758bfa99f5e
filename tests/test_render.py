"""The plate renderer: reproducible sample plates, every layout, labels, CJK glyphs, clean vs damaged."""
from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.data import render
from engine.data.render import (
    LAYOUTS,
    ONE_ROW,
    PROVINCES,
    TWO_ROW,
    PlateText,
    draw_plate,
    hershey_fonts,
    photograph,
    plate_text,
    random_plate,
    render_plate,
    system_fonts,
)

LATIN = set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
ROOT = Path(__file__).resolve().parent.parent


def _digest(seeds: range) -> list[str]:
    return [hashlib.sha256(random_plate(seed, fonts=hershey_fonts())[0].tobytes()).hexdigest() for seed in seeds]


def test_same_seed_same_bytes_even_in_a_fresh_process() -> None:
    for seed in range(8):
        a, label_a = random_plate(seed, fonts=hershey_fonts())
        b, label_b = random_plate(seed, fonts=hershey_fonts())
        assert label_a == label_b and np.array_equal(a, b)
    assert not np.array_equal(random_plate(1, fonts=hershey_fonts())[0], random_plate(2, fonts=hershey_fonts())[0])
    # A fresh process has empty glyph caches: the bytes must not depend on what was drawn before.
    code = "from tests.test_render import _digest; print(' '.join(_digest(range(6))))"
    fresh = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    assert fresh == _digest(range(6))


@pytest.mark.parametrize("layout", LAYOUTS)
def test_every_layout_renders_with_opencv_faces(layout: str) -> None:
    rng = np.random.default_rng(3)
    cjk = layout.startswith("cn") and any(f.cjk for f in hershey_fonts())  # OpenCV 5 draws CJK itself
    for _ in range(6):
        image, label = random_plate(rng, layouts=[layout], fonts=hershey_fonts())
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert 60 <= image.shape[1] <= 400 and image.shape[0] >= 16
        assert image.std() > 5  # something is drawn
        assert 2 <= len(label) <= 10 and set(label) <= (LATIN | set(PROVINCES) if cjk else LATIN)
        if cjk:
            assert label[0] in PROVINCES and set(label[1:]) <= LATIN


def test_labels_follow_each_layouts_grammar_without_separators() -> None:
    rng = np.random.default_rng(0)
    grammar = {
        "cn-blue": r"[%s][A-Z][A-HJ-NP-Z0-9]{5}" % PROVINCES,
        "cn-green": r"[%s][A-Z]([DF][A-Z0-9]\d{4}|\d{5}[DF])" % PROVINCES,
        "cn-yellow-two-row": r"[%s][A-Z][A-HJ-NP-Z0-9]{5}" % PROVINCES,
        "br-mercosul": r"[A-Z]{3}\d[A-Z]\d{2}",
        "br-old": r"[A-Z]{3}\d{4}",
        "es": r"\d{4}[BCDFGHJKLMNPRSTVWXYZ]{3}",
        "uk": r"[A-Z]{2}\d{2}[A-Z]{3}",
        "tr": r"\d{2}[A-Z]{1,3}\d{2,4}",
    }
    for layout in LAYOUTS:
        for _ in range(30):
            text = plate_text(layout, rng)
            assert len(text.rows) == (2 if layout in TWO_ROW else 1)
            assert text.label == re.sub(r"[ \-·]", "", "".join(text.rows))
            assert not set(text.label) & set(" -·")
            if layout in grammar:
                assert re.fullmatch(grammar[layout], text.label), (layout, text.rows)


def test_two_row_plates_are_much_squarer_than_one_row_plates() -> None:
    rng = np.random.default_rng(5)
    aspect = {}
    for layout in LAYOUTS:
        plates = [draw_plate(plate_text(layout, rng), layout, rng, hershey_fonts()) for _ in range(4)]
        aspect[layout] = [p.shape[1] / p.shape[0] for p in plates]
    two = [a for n in TWO_ROW for a in aspect[n]]
    one = [a for n in ONE_ROW if n != "us" for a in aspect[n]]  # US plates are 2:1 with one row
    assert max(two) < 2.3 < min(one) + 0.15
    assert np.median(two) * 1.8 < np.median(one)


def test_render_plate_is_back_compatible_with_the_sample_generator() -> None:
    image = render_plate("34 FK 4522", np.random.default_rng(0), "tr")
    assert image.dtype == np.uint8 and image.ndim == 3 and 60 <= image.shape[1] <= 400
    assert image.std() > 20
    assert np.array_equal(image, render_plate("34 FK 4522", np.random.default_rng(0), "tr"))
    assert np.array_equal(render_plate("34 FK 4522", 4), render_plate("34 FK 4522", 4))  # an int seed, a random style
    assert {"tr", "eu", "us", "yellow"} <= set(LAYOUTS)
    for style in ("eu", "us", "yellow"):
        assert render_plate("AB 123 CD", 1, style).std() > 5
    render_plate("AB 12\n345", 2)  # a "\n" draws two rows
    with pytest.raises(ValueError):
        render_plate("34 FK 4522", 0, "mars")


def _centre_high_frequency(image: np.ndarray) -> float:
    """Fine detail in the middle of the crop, which is plate whatever the crop and tilt."""
    h, w = image.shape[:2]
    grey = cv2.cvtColor(image[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3], cv2.COLOR_BGR2GRAY).astype(np.float32)
    return float(np.abs(grey - cv2.GaussianBlur(grey, (0, 0), 1.5)).mean())


def test_strength_zero_is_a_clean_crop_and_strength_one_is_not() -> None:
    plate = np.full((100, 470, 3), 128, np.uint8)  # a blank plate: anything fine-grained is damage
    damaged = []
    for seed in range(12):
        clean = photograph(plate, np.random.default_rng(seed), 0.0)
        h, w = clean.shape[:2]
        assert np.all(clean[h // 3 : 2 * h // 3, w // 3 : 2 * w // 3] == 128)  # no noise, light, cast or JPEG
        damaged.append(_centre_high_frequency(photograph(plate, np.random.default_rng(seed), 1.0)))
    assert np.mean(damaged) > 1.0 and sum(d > 0.3 for d in damaged) >= 8


def _white_ink(plate: np.ndarray) -> int:
    """White pixels: the characters (and border) of a blue Chinese plate."""
    return int((plate.min(axis=2) > 190).sum())


def test_system_fonts_render_plates_and_cjk_layouts_really_draw_the_province() -> None:
    fonts = system_fonts()
    if not fonts:
        pytest.skip("no system fonts (see docs/FONTS.md)")
    rng = np.random.default_rng(9)
    for _ in range(25):
        image, label = random_plate(rng, fonts=fonts)
        assert image.ndim == 3 and set(label) <= LATIN | set(PROVINCES)
    cjk = [f for f in fonts if f.cjk]
    if not cjk:
        pytest.skip("no CJK system font (see docs/FONTS.md)")
    for seed in range(6):  # the same seed picks the same face and spacing for both texts
        with_province = draw_plate(PlateText.of(["皖A·12345"]), "cn-blue", np.random.default_rng(seed), cjk)
        without = draw_plate(PlateText.of([" A·12345"]), "cn-blue", np.random.default_rng(seed), cjk)
        assert _white_ink(with_province) > _white_ink(without) + 150
        # Asked to draw 皖 with Latin-only faces, it borrows the system's CJK faces: the very same plate.
        latin_only = [f for f in fonts if not f.cjk][:3]
        fallback = draw_plate(PlateText.of(["皖A·12345"]), "cn-blue", np.random.default_rng(seed), latin_only)
        assert np.array_equal(fallback, with_province)


def test_without_any_cjk_font_the_layout_falls_back_and_labels_match(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(render, "system_fonts", lambda roots=("/usr/share/fonts",): [])
    latin = [replace(f, cjk=False) for f in hershey_fonts()]  # as on an OpenCV without its CJK face
    rng = np.random.default_rng(2)
    for layout in ("cn-blue", "cn-yellow-two-row"):
        image, label = random_plate(rng, layouts=[layout], fonts=latin)
        assert not set(label) & set(PROVINCES) and set(label) <= LATIN
    with pytest.raises(ValueError):
        draw_plate(PlateText.of(["皖A·12345"]), "cn-blue", rng, latin)
