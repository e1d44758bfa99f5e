"""`python -m engine predict [IMAGES...] --model-dir RUN|EXPORT|BUNDLE.zip`: text and confidence per image.

Like aocr's predict, paths may also come one per line on standard input.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path


def cli_predict(args: argparse.Namespace) -> int:
    from engine.reader import PlateReader

    paths = list(args.images) or [line.strip() for line in sys.stdin if line.strip()]
    if not paths:
        print("error: give image paths as arguments or one per line on stdin", file=sys.stderr)
        return 2
    reader = PlateReader.load(args.model_dir, checkpoint=args.checkpoint)
    failures = 0
    for path in paths:
        try:
            reading = reader.read_one(Path(path).read_bytes())
        except (OSError, ValueError) as exc:
            print(f"{path}\terror: {exc}", file=sys.stderr)
            failures += 1
            continue
        print(f"{path}\t{reading.text}\t{reading.confidence:.4f}", flush=True)
    return 1 if failures else 0
