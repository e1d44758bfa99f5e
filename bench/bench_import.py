"""Import speed on real plate crops: ../shared/data/plates/tr (1,851 JPEGs, median 335x101).

Prints images/s for the whole import as the Data page runs it (listing, header checks, decoding,
duplicate hashing, copying into images/, labels.csv, report; no TFRecords: those are written
before a training). OpenCV and Pillow import time is excluded: they are loaded before the clock
starts. Target: >= 500 images/s.
"""
from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from common import plates_dir  # noqa: E402 - also puts the repo on sys.path


def main() -> int:
    DATA = plates_dir("tr")  # noqa: N806
    if DATA is None:
        return 0
    import cv2  # noqa: F401  (warm-up: excluded from the timing)
    import PIL.Image  # noqa: F401

    from engine.data.importer import import_dataset

    with tempfile.TemporaryDirectory(prefix="bench-import-") as tmp:
        started = time.perf_counter()
        report = import_dataset(DATA, Path(tmp) / "tr")
        seconds = time.perf_counter() - started
    images = report["accepted"] + len(report["rejected"]) + len(report["warnings"])
    print(f"source: {DATA}")
    print(f"accepted {report['accepted']}, rejected {len(report['rejected'])}, duplicates/warnings {len(report['warnings'])}, "
          f"skipped {report['skipped']} (train {report['train']}, test {report['test']})")
    for item in report["rejected"]:
        print(f"  rejected {item['file']}: {item['reason']}")
    print(f"import: {images} files in {seconds:.2f} s = {images / seconds:.0f} images/s on {os.cpu_count()} CPU cores "
          "(excluding library import time)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
