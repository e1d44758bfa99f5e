"""Which readings to trust: a confidence threshold chosen on the test photos, saved with the run.

Readings at or above the threshold are accepted; the rest go to a person. The trade-off comes
from the run's predictions.csv: the share of plates accepted against the share of accepted
readings that are wrong, for every threshold.
"""
from __future__ import annotations

import os

import numpy as np

from engine.storage.files import atomic_write_json, now_iso, read_json
from engine.storage.runfolder import RunFolder



def load_threshold(run_dir: str | os.PathLike) -> float | None:
    value = (read_json(RunFolder(run_dir).threshold_path, {}) or {}).get("threshold")
    return None if value is None else float(value)


def save_threshold(run_dir: str | os.PathLike, threshold: float | None) -> None:
    """Remember the operator's choice (None: accept every reading)."""
    atomic_write_json(RunFolder(run_dir).threshold_path, {"threshold": threshold, "chosen_at": now_iso()})


def tradeoff(confidences, correct) -> list[dict]:
    """For each distinct confidence as a threshold: {"threshold", "accepted", "wrong"}: the share
    of plates accepted and the share of the accepted ones that are wrong. Sorted by threshold."""
    conf = np.asarray(confidences, float)
    right = np.asarray(correct, bool)
    if conf.size == 0:
        return []
    order = np.argsort(-conf, kind="stable")
    conf, right = conf[order], right[order]
    accepted = np.arange(1, conf.size + 1)
    wrong = np.cumsum(~right)
    rows = []
    for i in range(conf.size):  # a threshold equal to conf[i] accepts everything up to the last equal value
        if i + 1 < conf.size and conf[i + 1] == conf[i]:
            continue
        rows.append({"threshold": float(conf[i]), "accepted": float(accepted[i] / conf.size),
                     "wrong": float(wrong[i] / accepted[i])})
    return rows[::-1]


def suggest(rows: list[dict], max_wrong: float = 0.01) -> dict | None:
    """The lowest threshold whose accepted readings are at most `max_wrong` wrong (most plates accepted)."""
    good = [r for r in rows if r["wrong"] <= max_wrong]
    return max(good, key=lambda r: (r["accepted"], -r["threshold"])) if good else None


def at_threshold(confidences, correct, threshold: float) -> dict:
    """The trade-off at one threshold: {"threshold", "accepted", "wrong"} (shares, as in `tradeoff`)."""
    conf = np.asarray(confidences, float)
    right = np.asarray(correct, bool)
    taken = conf >= threshold
    accepted = int(taken.sum())
    return {"threshold": float(threshold), "accepted": accepted / max(conf.size, 1),
            "wrong": float((~right[taken]).sum() / accepted) if accepted else 0.0}


def threshold_row(run_dir: str | os.PathLike) -> dict | None:
    """The saved threshold's trade-off on the run's test photos (predictions.csv), or None."""
    from engine.storage.csvfile import read_csv

    threshold = load_threshold(run_dir)
    path = RunFolder(run_dir).predictions_path
    if threshold is None or not path.exists():
        return None
    rows = read_csv(path)
    return at_threshold([float(r["confidence"]) for r in rows], [r["correct"] == "1" for r in rows], threshold)


def describe(row: dict) -> str:
    """'accept readings above 92 %: 96 % of plates accepted, 1 in 400 wrong; the rest go to a person'."""
    wrong = row["wrong"]
    if wrong == 0:
        errors = "none of them wrong"
    elif wrong <= 0.2:
        errors = f"1 in {round(1 / wrong):,} wrong"
    else:
        errors = f"{wrong:.0%} of them wrong"
    return (f"accept readings above {row['threshold']:.0%}: {row['accepted']:.0%} of plates accepted, "
            f"{errors}; the rest go to a person")
