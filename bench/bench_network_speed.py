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
  training      the trainer's optimizer steps/s (engine/training/steps.py), batch 32, 48 x 128 input
                (the US plates' box), float32
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys

from common import ROOT, Busy, one_at_a_time, per_second


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
    calls = {}
    for batch in (1, 16):
        interpreter = Interpreter(model_content=content, num_threads=1)
        index = interpreter.get_input_details()[0]["index"]
        interpreter.resize_tensor_input(index, [batch, 1, 32, 128, 1])  # one view of each photo: the network alone
        interpreter.allocate_tensors()
        x = np.random.default_rng(0).standard_normal((batch, 1, 32, 128, 1), np.float32)
        calls[batch] = lambda interpreter=interpreter, index=index, x=x: (interpreter.set_tensor(index, x), interpreter.invoke())
    one = one_at_a_time({"one": lambda i: calls[1]()}, 200)["one"][0]
    batches = per_second({"batch": lambda: [calls[16]() for _ in range(40)]}, 40 * 16)["batch"][0]

    # the trainer's own step (engine/training/steps.py) and optimizer, on one device
    import keras

    from engine.training.steps import make_state, make_train_step

    trained = network.build_model(68, 10, 48, 128, arch, "float32")
    optimizer = keras.optimizers.Adam(1e-3, clipnorm=5.0)
    step = make_train_step(trained, optimizer, tf.distribute.get_strategy(), make_state(trained), 68, 32)
    rng = np.random.default_rng(1)
    batch = (tf.constant(rng.standard_normal((32, 48, 128, 1), np.float32)),
             tf.constant(rng.integers(0, 68, (32, 10)).astype(np.int32)))
    controls, decay = tf.constant([1e-3, 0.0, 0.0]), tf.constant(1.0)
    ten_steps = lambda: [step(batch, controls, decay) for _ in range(10)][-1].numpy()  # noqa: E731
    steps = per_second({"train": ten_steps}, 10, passes=6)["train"][0]
    return {"one_plate_ms": one, "batch16_per_s": batches, "train_steps_per_s": steps,
            "parameters": model.count_params()}


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
