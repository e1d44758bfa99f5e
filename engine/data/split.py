"""Train/test split grouped by label: two photos of one plate never land on both sides.

Otherwise the test score measures memory of a plate already seen, not reading.
"""
from __future__ import annotations

import random
from collections import Counter
from typing import Sequence


def grouped_split(labels: Sequence[str], test_fraction: float = 0.2, seed: int = 0) -> list[str]:
    """"train"/"test" for each label, about `test_fraction` of the images in test.

    Deterministic: depends only on the multiset of labels and the seed, not on their order.
    Whole label groups are moved to test (in a seeded random order) while that brings the test
    count closer to the target.
    """
    if not 0.0 <= test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1 (got {test_fraction}).")
    counts = Counter(labels)
    target = test_fraction * len(labels)
    groups = sorted(counts)
    random.Random(seed).shuffle(groups)
    test_labels: set[str] = set()
    in_test = 0
    for label in groups:
        if len(test_labels) >= len(groups) - 1:
            break  # always leave at least one plate to train on
        size = counts[label]
        if abs(in_test + size - target) < abs(in_test - target):
            test_labels.add(label)
            in_test += size
    return ["test" if label in test_labels else "train" for label in labels]
