"""Reading speed: plates/s batched and milliseconds for one plate, end to end from encoded bytes.

    python bench/bench_read.py [--model-dir RUN]

Uses the test plates of ../shared/data/plates/tr when present, else generated sample plates.
Without --model-dir, a freshly initialised model of the default shape is timed: speed does not
depend on the weights, only on the shape.
"""
from __future__ import annotations

import argparse
import resource
import statistics
import time

from common import PLATES, ROOT  # noqa: F401 - sets sys.path


def load_images(limit: int) -> tuple[list[bytes], str]:
    folder = PLATES / "tr"
    if folder.is_dir():
        files = sorted(folder.glob("*.jpg"))[:limit]
        return [f.read_bytes() for f in files], f"{len(files)} real plates from {folder}"
    import cv2

    from engine.data.sample import render_plate

    images = [cv2.imencode(".jpg", render_plate(f"34AB{i:04d}", i))[1].tobytes() for i in range(limit)]
    return images, f"{limit} generated plates (../shared not found)"


def make_reader(model_dir: str | None):
    from engine.reading.reader import PlateReader

    if model_dir:
        return PlateReader.load(model_dir)
    from engine.model.charset import Charset
    from engine.training.settings import TrainConfig
    from engine.model.network import build_model

    cfg = TrainConfig()
    charset = Charset("0123456789ABCDEFGHIJKLMNOPRSTUVYZ")
    model = build_model(charset.num_chars, 10, 32, 128, filters=cfg.filters,  # the shape chosen for tr plates
                        rnn_units=cfg.rnn_units, attention_units=cfg.rnn_units)
    return PlateReader(model, charset)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", default=None)
    parser.add_argument("--count", type=int, default=1000)
    args = parser.parse_args()
    images, what = load_images(args.count)
    images = (images * (args.count // max(len(images), 1) + 1))[: args.count]
    reader = make_reader(args.model_dir)
    reader.read(images[:256])  # warm-up: graph tracing

    rates = []
    for _ in range(5):  # the median of 5 passes: one pass on a shared VM is noisy
        t0 = time.perf_counter()
        reader.read(images)
        rates.append(len(images) / (time.perf_counter() - t0))
    batched = statistics.median(rates)

    # One plate goes through an XLA-compiled function (compiled here, on first use). Measured after
    # the batched figure: once XLA's CPU runtime is up, batched reading in the same process is
    # slower (10-20 % seen here), so the two figures are each taken in their best conditions.
    reader.read_one(images[0])
    singles = []
    for image in images[:200]:
        t = time.perf_counter()
        reader.read_one(image)
        singles.append((time.perf_counter() - t) * 1000)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"images: {what}")
    print(f"batched (256 a batch, decode + preprocess + model): {batched:,.0f} plates/s (median of 5 passes)")
    print(f"one plate at a time: median {statistics.median(singles):.2f} ms, p95 {sorted(singles)[int(len(singles) * 0.95)]:.2f} ms")
    print(f"peak memory (max RSS of this process): {peak_mib:,.0f} MiB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
