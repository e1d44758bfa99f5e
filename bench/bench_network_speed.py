"""Speed of a network variant against today's network: reading (LiteRT) and training steps.

    python bench/bench_network_speed.py --separable c3            # c3 made depthwise-separable
    python bench/bench_network_speed.py --filters 16,24,48,96     # narrower blocks
    python bench/bench_network_speed.py --separable c3 --busy 1   # with one CPU-bound process alongside

For deciding what a change of engine/model/network.py would buy before pretraining a starter for it:
the weights are random (speed does not depend on them), so the figures say nothing of accuracy.
Each side runs in a fresh process, the two take turns `--pairs` times (a shared VM's speed drifts by
a third within minutes), and every run prints:
  one plate     median ms of the LiteRT model call, batch 1, one thread, 32 x 128 input
  batch of 16   plates/s of the same call, batches of 16, one thread (the standalone reader runs one
                such interpreter a core)
  training      optimizer steps/s, batch 32, 48 x 128 input (the US plates' box), float32
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

from common import ROOT, Busy


def child(separable: set[str], filters: tuple[int, ...], late_blocks: int) -> dict:
    """The figures of one network, measured in this process."""
    import numpy as np
    import tensorflow as tf
    from ai_edge_litert.interpreter import Interpreter

    import engine.model.network as network
    from engine.reading.export import tflite_bytes

    conv = network._conv
    network._conv = lambda f, name, sep: conv(f, name, sep or name in separable)
    arch = {"filters": list(filters), "late_blocks": late_blocks}

    model = network.build_model(68, 10, 32, 128, arch, "float32")
    content = tflite_bytes(model)
    seconds = {}
    for batch, reads in ((1, 200), (16, 40)):
        interpreter = Interpreter(model_content=content, num_threads=1)
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, [batch, 32, 128, 1])
        interpreter.allocate_tensors()
        x = np.random.default_rng(0).standard_normal((batch, 32, 128, 1), np.float32)
        times = []
        for i in range(reads + 10):
            started = time.perf_counter()
            interpreter.set_tensor(index, x)
            interpreter.invoke()
            if i >= 10:  # the first calls allocate and warm the caches
                times.append(time.perf_counter() - started)
        seconds[batch] = statistics.median(times)

    import keras

    trained = network.build_model(68, 10, 48, 128, arch, "float32")
    optimizer = keras.optimizers.Adam(1e-3, clipnorm=5.0)

    @tf.function
    def step(images, tokens):
        with tf.GradientTape() as tape:
            logits = trained(images, training=True)["logits"]
            loss = tf.reduce_mean(tf.nn.softmax_cross_entropy_with_logits(tf.one_hot(tokens, 68), logits))
        optimizer.apply_gradients(zip(tape.gradient(loss, trained.trainable_variables), trained.trainable_variables))
        return loss

    rng = np.random.default_rng(1)
    images = tf.constant(rng.standard_normal((32, 48, 128, 1), np.float32))
    tokens = tf.constant(rng.integers(0, 68, (32, 10)).astype(np.int32))
    for _ in range(5):
        step(images, tokens).numpy()  # tracing
    rates = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(30):
            loss = step(images, tokens)
        loss.numpy()
        rates.append(30 / (time.perf_counter() - started))
    return {"one_plate_ms": seconds[1] * 1000, "batch16_per_s": 16 / seconds[16],
            "train_steps_per_s": statistics.median(rates), "parameters": model.count_params()}


def run_child(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, __file__, "--child", *args], cwd=ROOT, check=True,
                          stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--separable", default="", help="conv blocks made depthwise-separable, e.g. c3 or c2,c3")
    parser.add_argument("--filters", default="16,32,64,96", help="the four blocks' filters")
    parser.add_argument("--late-blocks", type=int, default=2, help="separable blocks at the last resolution")
    parser.add_argument("--pairs", type=int, default=3, help="turns of today's network and the variant")
    parser.add_argument("--busy", type=int, default=0, help="CPU-bound processes running alongside")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    options = parser.parse_args()
    variant = ["--separable", options.separable, "--filters", options.filters, "--late-blocks", str(options.late_blocks)]
    if options.child:
        separable = {name for name in options.separable.split(",") if name}
        filters = tuple(int(f) for f in options.filters.split(","))
        print(json.dumps(child(separable, filters, options.late_blocks)))
        return 0
    sides = {"today's network": [], "variant": []}
    with Busy(options.busy, seconds=1800) as busy:
        for _ in range(options.pairs):
            sides["today's network"].append(run_child([]))
            sides["variant"].append(run_child(variant))
    print(f"variant: {' '.join(sys.argv[1:]) or '(none)'}; load: {busy.describe()}; {options.pairs} turns each")
    print(f"{'':18}{'parameters':>12}{'one plate':>14}{'batch of 16':>16}{'training':>16}")
    for name, runs in sides.items():
        one = " / ".join(f"{r['one_plate_ms']:.2f}" for r in runs)
        batch = " / ".join(f"{r['batch16_per_s']:,.0f}" for r in runs)
        train = " / ".join(f"{r['train_steps_per_s']:.2f}" for r in runs)
        print(f"{name:18}{runs[0]['parameters']:>12,}   {one} ms   {batch} /s   {train} steps/s")
    ratio = lambda key: statistics.median(v[key] for v in sides["variant"]) / statistics.median(t[key] for t in sides["today's network"])  # noqa: E731
    print(f"variant / today's, medians: one plate {ratio('one_plate_ms'):.2f}x the time, batches {ratio('batch16_per_s'):.2f}x "
          f"the plates/s, training {ratio('train_steps_per_s'):.2f}x the steps/s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
