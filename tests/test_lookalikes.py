"""The rendered look-alike plates every training mixes in: the real labels' layout, random characters."""
from __future__ import annotations

import numpy as np

from engine.data import render
from engine.training.dataprep import lookalike_label

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
