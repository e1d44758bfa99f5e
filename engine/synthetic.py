"""Synthetic look-alikes of the training labels, mixed into training to teach rare characters.

Real sets are small and skewed (a letter may appear in a handful of plates). Rendering plates whose
texts follow the real labels' layout (digits stay digits, letters stay letters) but with random
characters from the learned charset shows the model every character many times.
"""
from __future__ import annotations

import re

import numpy as np

from engine.sample import STYLES, render_plate


def _printed(label: str) -> str:
    """Spaces where digits meet letters, as most plates print them: 34FK4522 -> 34 FK 4522."""
    return re.sub(r"(?<=\d)(?=\D)|(?<=\D)(?=\d)", " ", label)


# In the drawing fonts these look like 0 and 1: showing them would teach the model they are alike.
AMBIGUOUS = set("OIQ")


def lookalike_label(label: str, charset: str, rng: np.random.Generator) -> str:
    digits = [c for c in charset if c.isdigit()]
    others = [c for c in charset if not c.isdigit() and c not in AMBIGUOUS]
    out = []
    for c in label:
        pool = digits if c.isdigit() and digits else others if others else digits
        out.append(pool[int(rng.integers(0, len(pool)))] if pool else c)
    return "".join(out)


def lookalikes(labels: list[str], charset: str, count: int, seed: int = 0) -> list[tuple[np.ndarray, str]]:
    """`count` (BGR image, label) pairs whose texts mimic `labels` with random characters."""
    rng = np.random.default_rng([seed, 7919])
    out = []
    for _ in range(count):
        label = lookalike_label(labels[int(rng.integers(0, len(labels)))], charset, rng)
        style = STYLES[int(rng.integers(0, len(STYLES)))]
        out.append((render_plate(_printed(label), rng, style), label))
    return out
