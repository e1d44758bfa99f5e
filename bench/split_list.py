"""Write an aocr annotation file (`path label` per line) for one side of a fixed split in ../shared.

    python bench/split_list.py --set tr --split train /tmp/tr-train.txt

Used to mix the MIT-licensed Turkish training photos into pretraining (docs/PRETRAINING.md); never
a test split, never the AGPL US set.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from common import plates_dir, write_annotations


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--set", default="tr", choices=["tr"])
    parser.add_argument("--split", default="train", choices=["train"])
    parser.add_argument("output")
    options = parser.parse_args()
    folder = plates_dir(options.set)
    if folder is None:
        return 1
    out = write_annotations(folder, options.split, Path(options.output))
    print(f"wrote {sum(1 for _ in open(out, encoding='utf-8'))} photos of {options.set}/{options.split} to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
