"""Pick a tf.distribute strategy: the default single device, one named device, or mirrored over all."""
from __future__ import annotations

import logging

log = logging.getLogger(__name__)


def make_strategy(name: str | None):
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    if name in (None, "", "default"):
        return tf.distribute.get_strategy()
    if name == "one-device":
        return tf.distribute.OneDeviceStrategy("/gpu:0" if gpus else "/cpu:0")
    if name == "mirrored":
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        log.info("Mirrored strategy over %s", devices)
        return tf.distribute.MirroredStrategy(devices)
    raise ValueError(f"Unknown strategy {name!r}: use default, one-device or mirrored.")
