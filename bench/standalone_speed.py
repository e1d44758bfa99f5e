"""The standalone reader's speed, measured as an operator runs it: in a process of its own, with
only LiteRT, numpy and Pillow loaded. bench/bench_read.py starts it and prints its figures.

    python bench/standalone_speed.py --photos DIR --variant float=EXPORT [--variant NAME=DIR ...]

Why a process of its own: in the benchmark's process, TensorFlow's idle worker threads keep spinning
for a while after each TensorFlow call, on the cores the next LiteRT read wanted. Measured there,
taking turns with TensorFlow, the one-plate model call of a 32 x 128 model took 1.93 ms on a 2-core
Zen 3 EPYC; alone, as `python read_plates.py` runs, it took 0.7 to 1.1 ms (six runs of a day).

Prints one JSON object: {contender: {"one": [median ms, p95 ms, CPU ms], "batch": [plates/s, CPU ms
a plate]}} for each variant's model call on the photo as given ("NAME model"), the first variant's
model call in all its views ("NAME views model", what an unsure plate gets too), end to end from the
JPEG bytes as read_plates.py reads ("NAME e2e") and with --fast ("NAME fast e2e"), and Pillow's
decoding alone ("decode pillow").
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from common import ROOT, one_at_a_time, per_second

STANDALONE = ROOT / "engine" / "reading" / "standalone" / "read_plates.py"


def load_standalone():
    """engine/reading/standalone/read_plates.py as a module (it is a script, not a package member)."""
    spec = importlib.util.spec_from_file_location("read_plates", STANDALONE)
    module = importlib.util.module_from_spec(spec)
    sys.modules["read_plates"] = module
    spec.loader.exec_module(module)
    return module


def measure(variants: dict[str, Path], photo_files: list[Path], count: int, singles: int,
            threads: int, batch: int) -> dict[str, dict[str, tuple]]:
    """The figures of every contender (see the module's docstring), on `count` photos (repeated)."""
    rp = load_standalone()
    images = [photo_files[i % len(photo_files)].read_bytes() for i in range(count)]
    photos = [rp.Photo(f"{i}.jpg", lambda data=data: data) for i, data in enumerate(images)]
    pool = ThreadPoolExecutor(threads)  # the model call batched as read_photos does it: a chunk per interpreter
    contenders = {}
    for name, folder in variants.items():
        one = rp.PlateModel(folder, threads=1)
        many = rp.PlateModel(folder, threads=threads, chunk=batch)
        if not contenders:  # the first variant (what the bundle ships): its model call in all views, end to end
            # as read_plates.py reads (unsure plates again in all views), and end to end with --fast
            inputs = np.stack([rp.fit_views(rp.decode_gray(data), one.height, one.width, one.views) for data in images])
            singles_in = [x[None] for x in inputs[:50]]
            chunks = [inputs[i : i + batch] for i in range(0, len(inputs), batch)]
            contenders[f"{name} views model"] = (lambda i, one=one: one.read(singles_in[i % 50]),
                                                 lambda many=many: list(pool.map(many.read, chunks)))
            contenders[f"{name} e2e"] = (lambda i, one=one: list(one.read_photos([photos[i % len(photos)]])),
                                         lambda many=many: list(many.read_photos(photos)))
            fast_one = rp.PlateModel(folder, threads=1, fast=True)
            fast_many = rp.PlateModel(folder, threads=threads, chunk=batch, fast=True)
            contenders[f"{name} fast e2e"] = (lambda i: list(fast_one.read_photos([photos[i % len(photos)]])),
                                              lambda: list(fast_many.read_photos(photos)))
        # the model call every photo gets: the photo as given
        contenders[f"{name} model"] = (lambda i, one=one: one.read(singles_in[i % 50][:, :1]),
                                       lambda many=many: list(pool.map(many.read, [c[:, :1] for c in chunks])))
    contenders["decode pillow"] = (lambda i: rp.decode_gray(images[i % len(images)]),
                                   lambda: list(pool.map(rp.decode_gray, images, chunksize=batch)))
    one = one_at_a_time({name: c[0] for name, c in contenders.items()}, singles)
    many = per_second({name: c[1] for name, c in contenders.items()}, len(images))
    pool.shutdown()
    return {name: {"one": one[name], "batch": many[name]} for name in contenders}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--photos", type=Path, required=True, help="a folder of test photos (JPEG)")
    parser.add_argument("--variant", action="append", required=True, help="NAME=FOLDER of model.tflite + reader.json")
    parser.add_argument("--count", type=int, default=1024, help="plates per batched pass")
    parser.add_argument("--singles", type=int, default=300, help="single reads for the one-plate figures")
    parser.add_argument("--threads", type=int, default=1, help="the standalone reader's interpreters")
    parser.add_argument("--batch", type=int, default=16, help="the standalone reader's photos per model call")
    options = parser.parse_args()
    variants = {name: Path(folder) for name, folder in (v.split("=", 1) for v in options.variant)}
    photo_files = sorted(options.photos.glob("*.jpg"))
    figures = measure(variants, photo_files, options.count, options.singles, options.threads, options.batch)
    assert "tensorflow" not in sys.modules, "the standalone reader must be measured without TensorFlow loaded"
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
