"""Scores of a reading against labels: plate accuracy, character accuracy, aocr's score, confusion."""
from __future__ import annotations

from collections import Counter
from typing import Sequence

from rapidfuzz.distance import Levenshtein


def plate_accuracy(predictions: Sequence[str], labels: Sequence[str]) -> float:
    """Share of plates read exactly right."""
    return sum(p == t for p, t in zip(predictions, labels)) / max(len(labels), 1)


def char_accuracy(predictions: Sequence[str], labels: Sequence[str]) -> float:
    """1 - character error rate: edits needed to fix all readings over the characters of all labels."""
    edits = sum(Levenshtein.distance(p, t) for p, t in zip(predictions, labels))
    return max(0.0, 1.0 - edits / max(sum(len(t) for t in labels), 1))


def aocr_score(predictions: Sequence[str], labels: Sequence[str]) -> float:
    """aocr's own 'accuracy': mean of 1 - min(1, edit distance / label length) per image."""
    scores = []
    for p, t in zip(predictions, labels):
        wrong = (0.0 if not p else 1.0) if not t else min(1.0, Levenshtein.distance(p, t) / len(t))
        scores.append(1.0 - wrong)
    return sum(scores) / max(len(scores), 1)


def confusion_counts(predictions: Sequence[str], labels: Sequence[str]) -> Counter:
    """(label char, read char) -> count over aligned characters; '' stands for a missed or extra char."""
    counts: Counter = Counter()
    for p, t in zip(predictions, labels):
        for op in Levenshtein.opcodes(t, p):
            if op.tag == "equal":
                for c in t[op.src_start : op.src_end]:
                    counts[(c, c)] += 1
            elif op.tag == "replace":
                for a, b in zip(t[op.src_start : op.src_end], p[op.dest_start : op.dest_end]):
                    counts[(a, b)] += 1
            elif op.tag == "delete":
                for c in t[op.src_start : op.src_end]:
                    counts[(c, "")] += 1
            elif op.tag == "insert":
                for c in p[op.dest_start : op.dest_end]:
                    counts[("", c)] += 1
    return counts
