"""Shared bits of the benchmark scripts: where the third-party plates live, and the fixed splits."""
from __future__ import annotations

import csv
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# ../shared/data/plates beside the checkout (not part of the project; absent in a user's clone)
PLATES = ROOT.parent / "shared" / "data" / "plates"


def plates_dir(name: str) -> Path | None:
    """The folder of a third-party plate set, or None (after saying so) when it is not here."""
    folder = PLATES / name
    if not (folder / "split.csv").is_file():
        print(f"skipped: {folder} not found (the benchmark needs ../shared/data/plates/{name}).")
        return None
    return folder


def split_rows(folder: Path) -> list[dict]:
    with open(folder / "split.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def write_annotations(folder: Path, split: str, out: Path) -> Path:
    """An aocr annotation file (`path label` per line) for one side of the fixed split."""
    with open(out, "w", encoding="utf-8") as f:
        for row in split_rows(folder):
            if row["split"] == split:
                f.write(f"{folder / row['filename']} {row['label']}\n")
    return out
