"""The rendered look-alike plates every training mixes in: the real labels' layout, random characters."""
from __future__ import annotations

import numpy as np

from engine.data import render
from engine.training.dataprep import lookalike_label, lookalike_print

CHARS = "0123456789" + render.LETTERS + render.PROVINCES


def test_lookalike_labels_keep_each_characters_kind_and_avoid_o_i_q():
    rng = np.random.default_rng(3)
    for label in ("34FK4522", "皖A12345", "7ABC123"):
        for _ in range(200):
            new = lookalike_label(label, CHARS, rng)
            assert len(new) == len(label)
            for old, char in zip(label, new):
                assert old.isdigit() == char.isdigit() and old.isascii() == char.isascii(), (label, new)
            assert not set(new) & set("OIQ")


def test_square_lookalikes_split_their_rows_where_real_plates_do():
    rng = np.random.default_rng(5)
    drawn = [lookalike_print("皖A12345", 0.5, rng) for _ in range(400)]
    two_row = [(text, layout) for text, layout in drawn if "\n" in text]
    assert 100 < len(two_row) < 300  # about half
    assert all(layout in render.TWO_ROW for _, layout in two_row)
    tops = {text.split("\n")[0].replace(" ", "") for text, _ in two_row}
    # Chinese two-row plates print the province and a letter on top; others 3, 4 or 5 characters
    assert tops == {"皖A", "皖A1", "皖A12", "皖A123"}
    assert {text.replace("\n", "").replace(" ", "") for text, _ in drawn} == {"皖A12345"}
    one_row = [lookalike_print("34FK4522", 0.0, rng) for _ in range(50)]
    assert all(text == "34 FK 4522" and layout in render.ONE_ROW for text, layout in one_row)


def test_hidden_characters_stay_hidden_where_the_real_plates_hide_them():
    """Datasets published for privacy write a hidden character as '*' (`24*0JV*`): look-alikes hide
    the same places, and print the rows grouped as the plate is (the mark sides with its neighbours)."""
    rng = np.random.default_rng(7)
    for _ in range(100):
        new = lookalike_label("24*0JV*", CHARS + "*", rng)
        assert [i for i, c in enumerate(new) if c == "*"] == [2, 6], new
    assert lookalike_print("24*0JV*", 0.0, rng)[0] == "24*0 JV*"
    assert lookalike_print("**52JBC", 0.0, rng)[0] == "**52 JBC"


def test_a_few_two_row_plates_among_long_ones_get_two_row_lookalikes_too():
    """Square photos (80 x 160 box): half the look-alikes on two rows. Among long plates, as many as
    twice the share of two-row-shaped photos, once these are enough (2 %) to choose the 48 px box;
    sets without them (Turkish, US) keep one-row look-alikes only."""
    from engine.model.preprocess import input_shape_for
    from engine.training.dataprep import _two_row_share
    from engine.training.pipeline import Box

    def share(long: int, square: int) -> tuple[tuple[int, int], float]:
        sizes = [(400, 100)] * long + [(150, 110)] * square
        box = input_shape_for(sizes)
        return box, _two_row_share(Box(*box), sizes)

    assert share(50, 50) == ((80, 160), 0.5)
    assert share(90, 10) == ((48, 128), 0.2)
    assert share(99, 1) == ((32, 128), 0.0)
    rng = np.random.default_rng(9)
    drawn = [lookalike_print("1234BCD", 0.2, rng) for _ in range(500)]
    assert 60 < sum("\n" in text for text, _ in drawn) < 140
