"""`python -m engine predict [PHOTOS, FOLDERS, ZIPS...] --model-dir RUN|EXPORT|BUNDLE.zip [--csv OUT.csv]`.

Prints file, reading and confidence per photo (like aocr's predict; paths may also come one per
line on standard input), or writes them with the acceptance and the name check to a CSV.
"""
from __future__ import annotations

import argparse
import contextlib
import sys

from engine.storage.text import printable


def cli_predict(args: argparse.Namespace) -> int:
    from engine.reading.batch import list_photos, read_photos, write_rows
    from engine.reading.reader import PlateReader

    paths = list(args.images) or [line.strip() for line in sys.stdin if line.strip()]
    if not paths:
        print("error: give photos, folders or zips as arguments, or one path per line on stdin", file=sys.stderr)
        return 2
    reader = PlateReader.load(args.model_dir, checkpoint=args.checkpoint)
    with contextlib.ExitStack() as stack:
        photos = list_photos(paths, stack)
        rows = read_photos(reader, photos, total=len(photos))
        if args.csv:
            collected = list(rows)
            write_rows(args.csv, collected)
            bad = sum(bool(r["problem"]) for r in collected)
            print(f"read {len(collected) - bad} photos into {args.csv}" + (f"; {bad} could not be read" if bad else ""))
            return 1 if bad else 0
        failures = 0
        for row in rows:
            name = printable(row["file"])
            if row["problem"]:
                print(f"{name}\terror: {printable(row['problem'])}", file=sys.stderr)
                failures += 1
                continue
            mark = "" if row["accepted"] is None else ("\taccepted" if row["accepted"] else "\tcheck")
            print(f"{name}\t{row['reading']}\t{row['confidence']:.4f}{mark}", flush=True)
    return 1 if failures else 0
