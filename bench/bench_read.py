"""Reading speed, side by side: today's TensorFlow reader against the bundle's standalone reader.

    python bench/bench_read.py                      # a quick model (trained once, then reused)
    python bench/bench_read.py --model-dir RUN      # a trained run of yours
    python bench/bench_read.py --busy 1             # with one CPU-bound process alongside

For one plate (median and p95 over many single reads) and for batches (plates/s):
  (a) PlateReader: TensorFlow, decode + fit_views + model (and its model call alone, for reference)
  (b) the standalone reader's model call: model.tflite in LiteRT, on prepared inputs: the photo as
      given (what every plate gets), and in all its views (preprocess.VIEWS: what the unsure get too)
  (c) the standalone reader end to end: JPEG decode + preprocessing (numpy) + model, as
      read_plates.py reads (unsure plates again in all views), and with `--fast` (as given only)
  (d) decoding alone, on as many threads: Pillow (what the standalone reader decodes with) and
      OpenCV (what PlateReader decodes with). No reader can read photos faster than it decodes them,
      so (d) bounds (c): the figures say how far any reader of these photos can go on this machine.
(b), (c) and Pillow's decoding run in a process of their own without TensorFlow (standalone_speed.py),
as `python read_plates.py` runs: TensorFlow's idle threads, spinning after each of its calls, slowed
them when they took turns with it here.
Then the plate accuracy of TensorFlow, the float TFLite (what the bundle ships) and its quantised
variants on the test photos, with the speed of each quantised model call.

Photos: the fixed test split of ../shared/data/plates/tr when present, else generated plates.
Without --model-dir a quick model is trained on the matching training photos (a few minutes, once:
kept in --work-dir and reused).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from common import ROOT, Busy, measure, one_at_a_time, per_second, plates_dir, split_rows, write_annotations
from standalone_speed import STANDALONE, load_standalone


# --- the model and the photos ------------------------------------------------------------------
def held_out_photos(model_dir: Path | None) -> tuple[list, str]:
    """(Examples of the test photos, what they are): tr's fixed test split, else the run's own."""
    from engine.data.sources import Example, load_examples

    folder = plates_dir("tr")
    if folder is not None:
        rows = [r for r in split_rows(folder) if r["split"] == "test"]
        return ([Example(r["filename"], r["label"], (folder / r["filename"]).read_bytes()) for r in rows],
                f"{len(rows)} real plates, the test split of {folder}")
    dataset = Path(json.loads((model_dir / "config.json").read_text())["dataset"])
    examples = load_examples(dataset, split="test")
    return examples, f"{len(examples)} photos, the test split of {dataset}"


def quick_model(work: Path) -> Path:
    """A run trained with the Quick preset on tr's training photos (or generated plates), made once."""
    run = work / "run"
    if (run / "checkpoints" / "best.npz").exists():
        return run
    from engine.data.sample import make_sample_zip

    dataset = work / "dataset"
    folder = plates_dir("tr")
    if folder is not None:
        source = [str(write_annotations(folder, "train", work / "train.txt")), "--test-fraction", "0"]
    else:
        source = [str(make_sample_zip(work / "sample.zip", 600, 0))]
    for args in (["import", *source, "--out", str(dataset)], ["train", str(dataset), "--model-dir", str(run), "--preset", "quick"]):
        print(f"making the quick model: engine {args[0]} ...", flush=True)
        code, _, _ = measure(args, work / f"{args[0]}.log", work / "home")
        if code != 0:
            raise SystemExit(f"engine {args[0]} failed; see {work / (args[0] + '.log')}")
    return run


def training_inputs(model_dir: Path, fit: Callable, limit: int = 300) -> list[np.ndarray] | None:
    """[1, 1, H, W, 1] inputs of the run's training photos, to calibrate full int8 (None if not found)."""
    from engine.data.sources import load_examples

    dataset = Path(json.loads((model_dir / "config.json").read_text()).get("dataset", ""))
    if not dataset.is_dir():
        return None
    examples = load_examples(dataset, split="train")[:limit]
    return [fit(e.image)[None] for e in examples] or None


def measure_speed(reader, variants: dict[str, Path], photos: list[bytes], prepared: np.ndarray, options) -> dict:
    """{contender: {"one": (median ms, p95 ms, CPU ms), "batch": (plates/s, CPU ms a plate)}}: TensorFlow
    (end to end, its model call) and OpenCV's decoding here; the standalone reader (each variant's
    model call, the float one end to end, Pillow's decoding) in its own process (standalone_speed.py).
    `prepared`: the photos as given, fitted into the model's box ([N, 1, H, W, 1]), in the same order."""
    from engine.data.images import decode_gray as engine_decode_gray

    images = [photos[i % len(photos)] for i in range(options.count)]  # the test photos, repeated
    inputs = prepared[np.arange(options.count) % len(photos)]
    singles = [x[None] for x in inputs[:50]]

    def tf_model(x: np.ndarray) -> None:
        for value in reader._infer(x).values():  # PlateReader's own graph, on prepared inputs
            value.numpy()

    pool = ThreadPoolExecutor(options.threads)
    contenders = {  # name: (read the i-th plate alone, read them all)
        "tf": (lambda i: reader.read_one(images[i % len(images)]), lambda: reader.read(images)),
        "tf_model": (lambda i: tf_model(singles[i % 50]),
                     lambda: [tf_model(inputs[i : i + 256]) for i in range(0, len(inputs), 256)]),
        "decode opencv": (lambda i: engine_decode_gray(images[i % len(images)]),
                          lambda: list(pool.map(engine_decode_gray, images, chunksize=options.batch))),
    }
    one = one_at_a_time({name: c[0] for name, c in contenders.items()}, options.singles)
    batch = per_second({name: c[1] for name, c in contenders.items()}, len(images))
    pool.shutdown()
    figures = {name: {"one": one[name], "batch": batch[name]} for name in contenders}
    return {**figures, **standalone_speed(variants, photos, options)}


def standalone_speed(variants: dict[str, Path], photos: list[bytes], options) -> dict:
    """The standalone reader's figures, from standalone_speed.py in a process without TensorFlow."""
    folder = options.work_dir / "photos"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for i, data in enumerate(photos):
        (folder / f"{i:05d}.jpg").write_bytes(data)
    command = [sys.executable, str(ROOT / "bench" / "standalone_speed.py"), "--photos", str(folder),
               "--count", str(options.count), "--singles", str(options.singles), "--threads", str(options.threads),
               "--batch", str(options.batch), *(f"--variant={name}={path}" for name, path in variants.items())]
    done = subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def command_line_seconds(model_dir: Path, folder: Path, photo: Path, runs: int = 3) -> dict[str, float]:
    """Median seconds for one photo from the command line, start-up included (taking turns):
    `python -m engine predict` (TensorFlow) against `python read_plates.py`."""
    commands = {"engine predict": [sys.executable, "-m", "engine", "predict", str(photo), "--model-dir", str(model_dir)],
                "read_plates.py": [sys.executable, str(STANDALONE), str(photo), "--model", str(folder)]}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, command in commands.items():
            started = time.perf_counter()
            subprocess.run(command, cwd=ROOT, env=env, check=True, capture_output=True)
            times[name].append(time.perf_counter() - started)
    return {name: statistics.median(t) for name, t in times.items()}


def plate_accuracy(texts: Sequence[str], labels: Sequence[str]) -> float:
    return sum(t == label for t, label in zip(texts, labels)) / max(len(labels), 1)


def litert_texts(rp, folder: Path, photos: list[bytes], fast: bool = False) -> list[str]:
    """What read_plates.py reads from these JPEGs with this model."""
    model = rp.PlateModel(folder, threads=1, fast=fast)
    return [r.text for r in model.read_photos([rp.Photo(f"{i}.jpg", lambda data=data: data) for i, data in enumerate(photos)])]


def write_tflite(folder: Path, flatbuffer: bytes, info: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.tflite").write_bytes(flatbuffer)
    (folder / "reader.json").write_text(json.dumps(info), encoding="utf-8")
    return folder


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model-dir", type=Path, default=None, help="a trained run (default: a quick model)")
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes running alongside (bounded in time)")
    parser.add_argument("--count", type=int, default=1024, help="plates per batched pass")
    parser.add_argument("--singles", type=int, default=300, help="single reads for the one-plate figures")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="the standalone reader's interpreters")
    parser.add_argument("--batch", type=int, default=16, help="the standalone reader's photos per model call")
    parser.add_argument("--work-dir", type=Path, default=Path(tempfile.gettempdir()) / "plate-bench-read",
                        help="where the quick model and the TFLite variants are kept")
    options = parser.parse_args()
    options.work_dir.mkdir(parents=True, exist_ok=True)
    model_dir = options.model_dir or quick_model(options.work_dir)

    import tensorflow as tf

    from engine.data.images import decode_gray
    from engine.model.preprocess import fit_views
    from engine.reading.export import reader_info, tflite_bytes
    from engine.reading.reader import PlateReader

    rp = load_standalone()
    reader = PlateReader.load(model_dir)
    info = reader_info(reader)
    examples, what = held_out_photos(model_dir)
    # the photo as given: every plate's model call (the standalone process prepares the views it times)
    fit = lambda data: fit_views(decode_gray(data), reader.height, reader.width, reader.views[:1])[0]  # noqa: E731
    test_inputs = np.stack([fit(e.image) for e in examples])
    labels = [e.label for e in examples]

    variants = {"float": write_tflite(options.work_dir / "float", tflite_bytes(reader.model), info),
                "dynamic-range": write_tflite(options.work_dir / "dynamic", tflite_bytes(reader.model, "dynamic"), info)}
    calibration = training_inputs(model_dir, fit)
    if calibration:
        variants["full int8"] = write_tflite(options.work_dir / "int8", tflite_bytes(reader.model, "int8", calibration), info)
        variants["int8 conv only"] = write_tflite(options.work_dir / "int8-conv",
                                                  tflite_bytes(reader.model, "int8-conv", calibration), info)

    load_before = os.getloadavg()[0]
    with Busy(options.busy, seconds=900) as busy:
        figures = measure_speed(reader, variants, [e.image for e in examples], test_inputs, options)
        (options.work_dir / "one.jpg").write_bytes(examples[0].image)
        start_up = command_line_seconds(model_dir, variants["float"], options.work_dir / "one.jpg")
    load_after = os.getloadavg()[0]
    tf_texts = [r.text for r in reader.read([e.image for e in examples])]
    texts = {name: litert_texts(rp, folder, [e.image for e in examples]) for name, folder in variants.items()}

    print(f"model: {model_dir}  input {reader.height}x{reader.width} (height x width), {info['slots']} slots, "
          f"{len(info['charset'])} characters")
    print(f"photos: {what}; batched passes of {options.count}")
    print(f"machine: {os.cpu_count()} cores; load: {busy.describe()} (each stopped after 900 s at the latest); "
          f"load average {load_before:.1f} before, {load_after:.1f} after (other processes included)")
    intra = tf.config.threading.get_intra_op_parallelism_threads() or os.cpu_count()
    print(f"threads: TensorFlow {intra} intra-op, PlateReader decoding in {max(2, os.cpu_count() or 2)} threads, "
          f"batches of 256; standalone: in a process of its own without TensorFlow (as read_plates.py runs), "
          f"{options.threads} LiteRT interpreter(s) x 1 XNNPACK thread, batches of {options.batch}; one plate: 1 interpreter")
    print(f"command: python bench/bench_read.py {' '.join(sys.argv[1:])}")
    print()
    print(f"{'':40}{'one plate: median':>18}{'p95':>10}{'CPU':>10}{'batched':>13}{'CPU/plate':>11}")
    rows = [("(a) PlateReader (TensorFlow), end to end", "tf"), ("    TensorFlow model call alone", "tf_model"),
            ("(b) standalone: LiteRT model call", "float model"), ("    the same in all views", "float views model"),
            ("(c) standalone: end to end", "float e2e"), ("    with --fast", "float fast e2e"),
            ("(d) decoding alone: Pillow (standalone)", "decode pillow"), ("    decoding alone: OpenCV (PlateReader)", "decode opencv")]
    for title, name in rows:
        (median, p95, cpu_one), (rate, cpu_batch) = figures[name]["one"], figures[name]["batch"]
        print(f"{title:40}{median:>15.2f} ms{p95:>7.2f} ms{cpu_one:>7.2f} ms{rate:>8,.0f} /s{cpu_batch:>8.2f} ms")
    for title, new, old in (("speed-up (c) over (a)", "float e2e", "tf"), ("speed-up (b) over the TF model call", "float model", "tf_model")):
        new, old = figures[new], figures[old]
        print(f"{title:40}{old['one'][0] / new['one'][0]:>17.1f}x{'':10}{old['one'][2] / new['one'][2]:>9.1f}x"
              f"{new['batch'][0] / old['batch'][0]:>12.1f}x{old['batch'][1] / new['batch'][1]:>10.1f}x")
    wanted = 3 * figures["tf"]["batch"][0]
    print(f"batched, 3x the TensorFlow reader would be {wanted:,.0f} /s; decoding the photos alone, without fitting or "
          f"reading them, runs {figures['decode pillow']['batch'][0]:,.0f} /s with Pillow and "
          f"{figures['decode opencv']['batch'][0]:,.0f} /s with OpenCV")
    print("one photo from the command line, start-up included: "
          + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in start_up.items()))
    print()
    print(f"plate accuracy on the {len(labels)} test photos: TensorFlow {plate_accuracy(tf_texts, labels):.2%}")
    for name, got in texts.items():
        agree = sum(a == b for a, b in zip(got, tf_texts))
        speed = figures[f"{name} model"]
        print(f"  TFLite {name:14} {plate_accuracy(got, labels):7.2%}  (same text as TensorFlow on {agree}/{len(labels)}); "
              f"model call: one plate {speed['one'][0]:.2f} ms, batched {speed['batch'][0]:,.0f} /s "
              f"({speed['batch'][1]:.2f} ms CPU a plate)")
    fast = litert_texts(rp, variants["float"], [e.image for e in examples], fast=True)
    print(f"  TFLite float, --fast   {plate_accuracy(fast, labels):7.2%}  (the photo as given only, never in its {len(reader.views)} views)")
    if not calibration:
        print("  (full int8 and int8 conv only not measured: the run's training photos, needed to calibrate it, were not found)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
