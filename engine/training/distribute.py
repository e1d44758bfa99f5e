"""tf.distribute: the strategy a training runs under, and which process of a cluster is the chief.

default / one-device: one device. mirrored: every GPU of this machine (or every CPU device when
there is none), each global batch split across them. multi-worker: several machines (or
processes), configured by the standard TF_CONFIG environment variable; worker 0 is the chief,
the only one that writes the run folder.
"""
from __future__ import annotations

import json
import logging
import os

log = logging.getLogger(__name__)

STRATEGIES = ("default", "one-device", "mirrored", "multi-worker")


def cluster_task() -> tuple[str, int]:
    """(task type, index) from TF_CONFIG; ("chief", 0) without one."""
    try:
        task = json.loads(os.environ.get("TF_CONFIG") or "{}").get("task") or {}
    except json.JSONDecodeError as exc:
        raise ValueError(f"TF_CONFIG is not valid JSON: {exc}") from None
    return str(task.get("type", "chief")), int(task.get("index", 0))


def cluster_size() -> int:
    """How many processes train together (1 outside a cluster)."""
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG") or "{}").get("cluster") or {}
    except json.JSONDecodeError:
        return 1
    return max(1, sum(len(cluster.get(kind) or []) for kind in ("chief", "worker")))


def is_chief(strategy_name: str) -> bool:
    """True for the process that writes the run folder (always, outside multi-worker)."""
    if strategy_name != "multi-worker":
        return True
    kind, index = cluster_task()
    return kind == "chief" or (kind == "worker" and index == 0)


def make_strategy(name: str | None):
    import tensorflow as tf

    name = name or "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "one-device":
        gpus = tf.config.list_logical_devices("GPU")
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "mirrored":
        devices = [d.name for d in tf.config.list_logical_devices("GPU")] or \
                  [d.name for d in tf.config.list_logical_devices("CPU")]
        log.info("Mirrored strategy over %s", devices)
        return tf.distribute.MirroredStrategy(devices)
    if name == "multi-worker":
        if not os.environ.get("TF_CONFIG"):
            raise ValueError("--strategy multi-worker needs TF_CONFIG describing the cluster (see docs/DISTRIBUTED.md).")
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown strategy {name!r}: use one of {', '.join(STRATEGIES)}.")
