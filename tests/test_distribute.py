"""tf.distribute done right: a mirrored step splits the global batch and learns what one device learns;
a real two-worker cluster on 127.0.0.1 trains, and only its chief writes the run folder."""
from __future__ import annotations

import json
import socket
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from engine.storage.runfolder import RunFolder
from model_fixtures import engine_env, sample_dataset

ROOT = Path(__file__).resolve().parent.parent

STEP_CHECK = textwrap.dedent("""
    import json, sys
    import numpy as np, tensorflow as tf, keras
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from engine.model.network import build_model
    from engine.training.steps import make_state, make_train_step

    rng = np.random.default_rng(0)
    images = rng.normal(size=(8, 32, 64, 1)).astype("float32")
    tokens = rng.integers(0, 12, size=(8, 6)).astype("int32")

    def one_step(strategy):
        keras.utils.set_random_seed(1)
        with strategy.scope():
            model = build_model(12, 6, 32, 64, {"dropout": 0.0})
            optimizer = keras.optimizers.SGD(0.1)
            optimizer.build(model.trainable_variables)
            state = make_state(model)
        step = make_train_step(model, optimizer, strategy, state, vocab=12, global_batch=8)
        data = tf.data.Dataset.from_tensors((images, tokens))
        batch = next(iter(strategy.experimental_distribute_dataset(data)))
        per_replica = [int(t.shape[0]) for t in strategy.experimental_local_results(batch[0])]
        step(batch, tf.constant([0.1, 0.0, 0.0]), tf.constant(0.0))
        weights = [np.asarray(v.numpy()) for v in model.trainable_variables]
        return per_replica, state.totals.numpy().tolist(), weights

    one, totals_one, w_one = one_step(tf.distribute.OneDeviceStrategy("/cpu:0"))
    two, totals_two, w_two = one_step(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    diff = max(float(np.abs(a - b).max()) for a, b in zip(w_one, w_two))
    print(json.dumps({"one": one, "two": two, "totals_one": totals_one, "totals_two": totals_two, "weight_diff": diff}))
""")


def test_a_mirrored_step_splits_the_batch_and_learns_what_one_device_learns(tmp_path):
    proc = subprocess.run([sys.executable, "-c", STEP_CHECK], cwd=ROOT, env=engine_env(tmp_path), capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["one"] == [8] and got["two"] == [4, 4], "each replica gets half of the global batch"
    loss_one, right_one, count_one = got["totals_one"]
    loss_two, right_two, count_two = got["totals_two"]
    assert count_one == count_two == 8, "photos are counted once, not once per replica"
    assert 0 <= right_two <= count_two
    assert loss_two == pytest.approx(loss_one, rel=1e-4), "same loss as one device on the same batch"
    assert got["weight_diff"] < 1e-4, "gradients summed over replicas with the loss scaled by the global batch"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    return sample_dataset(tmp_path_factory, count=80, seed=5)


def test_mirrored_training_on_two_logical_cpus_finishes(dataset, tmp_path):
    script = textwrap.dedent(f"""
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
        from engine.training.settings import config_for
        from engine.training.run import run_training
        cfg = config_for(None, max_steps=20, batch_size=16, strategy="mirrored", check_every_seconds=5)
        raise SystemExit(run_training({str(tmp_path / 'mirrored')!r}, {str(dataset)!r}, cfg))
    """)
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=engine_env(tmp_path), capture_output=True,
                          text=True, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    run = RunFolder(tmp_path / "mirrored")
    assert run.status()["state"] == "finished" and run.status()["step"] == 20
    assert "Mirrored strategy" in run.log_path.read_text()
    assert all(0.0 <= row["train_plate_accuracy"] <= 1.0 for row in run.metrics())


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_two_workers_on_127_0_0_1_train_and_only_the_chief_writes(dataset, tmp_path):
    ports = _free_ports(2)
    cluster = {"worker": [f"127.0.0.1:{p}" for p in ports]}
    procs, dirs = [], [tmp_path / "chief-run", tmp_path / "worker-run"]
    for index, run_dir in enumerate(dirs):
        env = engine_env(tmp_path / f"home{index}")
        env["TF_CONFIG"] = json.dumps({"cluster": cluster, "task": {"type": "worker", "index": index}})
        cmd = [sys.executable, "-m", "engine", "train", str(dataset), "--model-dir", str(run_dir), "--strategy",
               "multi-worker", "--max-steps", "16", "--batch-size", "16", "--check-every-seconds", "5"]
        procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        outputs = [p.communicate(timeout=600)[0] for p in procs]
    finally:
        for p in procs:
            p.kill()
    assert [p.returncode for p in procs] == [0, 0], "\n---\n".join(o[-2500:] for o in outputs)
    chief = RunFolder(dirs[0])
    assert chief.status()["state"] == "finished" and chief.status()["step"] == 16
    assert chief.checkpoint("best").exists() and chief.metrics()
    assert not dirs[1].exists() or not any(dirs[1].iterdir()), "a non-chief worker writes nothing the dashboard reads"

    from engine.reading.reader import PlateReader

    photos = [p.read_bytes() for p in sorted((dataset / "images").iterdir())[:4]]
    readings = PlateReader.load(chief.path).read(photos)
    assert len(readings) == 4 and all(0.0 <= r.confidence <= 1.0 for r in readings)
