"""Likely wrong labels: photos a model reads confidently and differently from their label, judged by a
model that never trained on that photo, and labels that break the dataset's own pattern.

`review_rows` merges the readings of the label check (engine/training/labelcheck.py: every photo, each
read by a model that never saw it), a run's readings of its test photos and `pattern_flags` into one
list, most suspicious first, compared with the labels as they are now (a corrected label stops being
flagged). `python -m engine check-labels` (engine/training/labelcheck.py) runs the check and prints that list.
"""
from __future__ import annotations

import os
import statistics
from collections import Counter, defaultdict
from dataclasses import dataclass

from engine.data.dataset import DatasetFolder
from engine.data.labels import MASK_MARKS
from engine.storage.csvfile import read_csv
from engine.storage.runfolder import RunFolder

__all__ = ["pattern_flags", "review_rows", "shape"]

MIN_PATTERN_LABELS = 30  # fewer plates have no pattern to break
RARE = 0.03  # a length, layout or character kind held by at most this share of the plates is rare
MAX_LAYOUTS, COVERED = 5, 0.95  # a set has a pattern when its 5 commonest lengths/layouts cover 95 % of it
MIN_EVIDENCE = 0.5  # below: the model hesitates, or reads most photos this unsurely
PATTERN_SCORE = 0.25  # a pattern break alone ranks below a disagreeing reading
MIN_SCORE = 0.2


# the label's own pattern -------------------------------------------------------------------------
def shape(label: str) -> str:
    """34FK4522 -> DDLLDDDD: letters L, digits D, anything else kept (24*0JV* -> DD*DLL*)."""
    return "".join("D" if c.isdigit() else "L" if c.isalpha() else c for c in label)


def _rare(count: int, total: int) -> bool:
    return count <= max(1, RARE * total)


def _has_pattern(counts: Counter, total: int) -> bool:
    """A mixed set (plates of many countries) has rare layouts that are not mistakes."""
    return sum(n for _, n in counts.most_common(MAX_LAYOUTS)) >= COVERED * total


def _percent(share: float) -> str:
    """97 %; 99.9 % rather than a rounded 100 % when not all."""
    text = f"{share:.0%}"
    if text == "100%" and share < 1:
        text = f"{min(share, 0.999):.1%}"
    return text.replace("%", " %")


def _or_list(items: list) -> str:
    return " or ".join(map(str, items)) if len(items) < 3 else ", ".join(map(str, items[:-1])) + f" or {items[-1]}"


def pattern_flags(labels: list[str]) -> dict[str, str]:
    """label -> why it breaks the set's pattern: a rare length, a letter where the others have a digit
    (or the reverse), a rare layout. Counted over distinct plates; empty for a set too small or too
    mixed to have a pattern."""
    plates = sorted(set(labels))
    if len(plates) < MIN_PATTERN_LABELS:
        return {}
    lengths = Counter(len(p) for p in plates)
    # A hidden character (`24*0JV*`) may be anything: its plate's layout is not known whole.
    whole = [p for p in plates if not set(p) & set(MASK_MARKS)]
    shapes = Counter(shape(p) for p in whole)
    # What the labels of each length show at each position, counted once (a hidden character shows nothing).
    columns: dict[int, list[Counter]] = {}
    for plate in plates:
        counts = columns.setdefault(len(plate), [Counter() for _ in plate])
        for i, kind in enumerate(shape(plate)):
            if kind not in MASK_MARKS:
                counts[i][kind] += 1
    flags = {}
    for plate in plates:
        reason = (_length_reason(plate, lengths, len(plates))
                  or _position_reason(plate, lengths[len(plate)], columns[len(plate)])
                  or (_shape_reason(plate, shapes, len(whole)) if len(whole) >= MIN_PATTERN_LABELS else None))
        if reason:
            flags[plate] = reason
    return flags


def _length_reason(plate: str, lengths: Counter, total: int) -> str | None:
    if not _has_pattern(lengths, total) or not _rare(lengths[len(plate)], total):
        return None
    common = sorted(n for n, count in lengths.items() if not _rare(count, total))
    share = sum(lengths[n] for n in common) / total
    return f"the label has {len(plate)} characters; {_percent(share)} of labels have {_or_list(common)}"


def _position_reason(plate: str, group: int, columns: list[Counter]) -> str | None:
    """A letter where the `group` labels of this length have digits (or the reverse), from what each
    position shows (`columns`)."""
    if group < MIN_PATTERN_LABELS // 2:
        return None
    words = {"D": "a digit", "L": "a letter"}
    for i, (kind, kinds) in enumerate(zip(shape(plate), columns)):
        seen = sum(kinds.values())
        if kind in MASK_MARKS or not seen:
            continue
        usual, count = kinds.most_common(1)[0]
        if usual != kind and _rare(kinds[kind], seen):
            which = f"{len(plate)}-character labels" + (" that show it" if seen < group else "")
            return (f"{words.get(kind, repr(kind))} ({plate[i]}) at position {i + 1}, where {_percent(count / seen)} "
                    f"of {which} have {words.get(usual, repr(usual))}")
    return None


def _shape_reason(plate: str, shapes: Counter, total: int) -> str | None:
    if not _has_pattern(shapes, total) or not _rare(shapes[shape(plate)], total):
        return None
    usual = ", ".join(f"{s} ({_percent(n / total)})" for s, n in shapes.most_common(2))
    return f"its layout {shape(plate)} (D digit, L letter) is rare: most labels are {usual}"


# the list the operator reviews -------------------------------------------------------------------
@dataclass
class Opinion:
    """One model's reading of a photo it never trained on."""

    reading: str
    confidence: float
    typical: float  # the model's median confidence on photos it read as labelled: its own scale
    odds: float | None = None  # the label's probability over the reading's (label check only)

    @property
    def sureness(self) -> float:
        """1 when the model is as sure as it usually is when right (label smoothing keeps it far below 1)."""
        return min(1.0, self.confidence / self.typical) if self.typical > 0 else 0.0

    @property
    def against(self) -> float:
        """How sure the model is that the label is wrong: its sureness, times how much likelier it finds its reading."""
        return self.sureness * (1.0 - (self.odds or 0.0))


def review_rows(dataset_dir: str | os.PathLike, run_dir: str | os.PathLike | None = None,
                check_dir: str | os.PathLike | None = None) -> list[dict]:
    """Photos whose label looks wrong, most suspicious first: {file, label, reading, confidence, split,
    reason, score}. Readings come from the run's test photos and the label check (models that never
    saw the photo), compared with the labels as they are now. Excluded photos are left out."""
    dataset = DatasetFolder(dataset_dir)
    rows = [r for r in dataset.rows() if not r["excluded"]]
    opinions = defaultdict(list)
    for file, opinion in _run_readings(dataset, run_dir) + _check_readings(check_dir):
        opinions[file].append(opinion)
    patterns = pattern_flags([r["label"] for r in rows])
    flagged = []
    for row in rows:
        verdict = _judge(row["label"], opinions[row["file"]], patterns.get(row["label"]))
        if verdict:
            flagged.append({"file": row["file"], "label": row["label"], "split": row["split"], **verdict})
    flagged.sort(key=lambda r: (-r["score"], r["file"]))
    return flagged


def _typical(readings: list[dict], agrees) -> dict[str, float]:
    """model -> median confidence of its readings that agreed with the label at the time."""
    right = defaultdict(list)
    for r in readings:
        if agrees(r):
            right[r.get("model", "")].append(float(r["confidence"]))
    return {model: statistics.median(values) for model, values in right.items()}


def _run_readings(dataset: DatasetFolder, run_dir) -> list[tuple[str, Opinion]]:
    """The run's readings of the photos it did not train on (none when the split changed since)."""
    run = RunFolder(run_dir) if run_dir is not None else None
    if run is None or not run.predictions_path.exists():
        return []
    config = run.config()
    recorded = config.get("split_fingerprint") or (config.get("resolved") or {}).get("split_fingerprint")
    if recorded and recorded != dataset.split_fingerprint():
        return []
    tested = {r["file"] for r in dataset.rows() if r["split"] == "test"}
    predictions = [p for p in read_csv(run.predictions_path) if p["file"] in tested]
    typical = _typical(predictions, lambda p: p["prediction"] == p["label"]).get("", 1.0)
    return [(p["file"], Opinion(p["prediction"], float(p["confidence"]), typical)) for p in predictions]


def _check_readings(check_dir) -> list[tuple[str, Opinion]]:
    path = RunFolder(check_dir).label_check_path if check_dir is not None else None
    if path is None or not path.exists():
        return []
    readings = read_csv(path)
    typical = _typical(readings, lambda r: r["reading"] == r["label"])
    return [(r["file"], Opinion(r["reading"], float(r["confidence"]), typical.get(r["model"], 1.0),
                                float(r["label_odds"]) if r.get("label_odds") else None)) for r in readings]


def _judge(label: str, opinions: list[Opinion], pattern: str | None) -> dict | None:
    """How sure we are that `label` is wrong; None when not suspicious enough to show."""
    best = max((o for o in opinions if o.reading != label), key=lambda o: o.against, default=None)
    vouched = max((o.sureness for o in opinions if o.reading == label), default=0.0)  # a model read the label
    against = best.against if best and best.against >= MIN_EVIDENCE else 0.0
    score = (1 - (1 - against) * (1 - (PATTERN_SCORE if pattern else 0.0))) * (1 - vouched)
    if score < MIN_SCORE:
        return None
    reasons = ([_read_reason(best)] if against else []) + ([pattern] if pattern else [])
    if vouched:
        reasons.append("but a model that never saw it read it as labelled")
    shown = best or max(opinions, key=lambda o: o.confidence, default=None)
    return {"reading": shown.reading if shown else "", "confidence": shown.confidence if shown else None,
            "reason": "; ".join(reasons), "score": round(score, 4)}


def _read_reason(opinion: Opinion) -> str:
    how = "confidently " if opinion.sureness >= 1 else ""
    said = f"read {how}as {opinion.reading or '(nothing)'} by a model that never saw this photo"
    if opinion.odds is None:
        return f"{said} (confidence {_percent(opinion.confidence)})"
    times = "over 1,000" if opinion.odds < 0.001 else f"{1 / opinion.odds:,.0f}"
    return f"{said}, which finds the label {times} times less likely"
