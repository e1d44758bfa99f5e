"""The training input pipeline on tf.data: photos in, augmented model batches out, in parallel.

    (encoded photo, label) records       from image files, TFRecord shards or in-memory examples
    -> decode once to the working size   a plate kept at twice the model's size: memory is bounded
                                         by photo count x working size, whatever the photos' size
    -> cache                             in memory for small sets, on disk for large ones
    -> shuffle, repeat
    -> batch (padded to the working size as it is made)
    -> augment + fit into the model box  one call per batch, batches in parallel (OpenCV releases the GIL)
    -> prefetch

Several model boxes can be mixed (the starter model learns every box the engine picks from at once):
each box gets its own batches, and batches are drawn from the boxes by weight.
"""
from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from engine.data.images import decode_gray, decode_to_fit
from engine.model.charset import Charset
from engine.model.preprocess import fit_to_box
from engine.training.augment import augment

log = logging.getLogger(__name__)

WORK_SCALE = 2  # photos are kept at twice the model box: augmentation still has detail to work with
MEMORY_CACHE_BYTES = 512 * 1024 * 1024  # past this, decoded photos are cached on disk instead
SHUFFLE_BUFFER = 8192


@dataclass(frozen=True)
class Box:
    """One model input size, and how often batches of it are drawn."""

    height: int
    width: int
    weight: float = 1.0

    @property
    def work(self) -> tuple[int, int]:
        return self.height * WORK_SCALE, self.width * WORK_SCALE * 2


@dataclass
class Records:
    """Where training photos come from: a tf.data.Dataset of (encoded image, label) strings, and
    how many there are. Build one with `from_files`, `from_shards` or `from_memory`."""

    dataset: object  # tf.data.Dataset
    count: int
    name: str = "photos"


def from_files(paths: Sequence[str | os.PathLike], labels: Sequence[str], name: str = "photos") -> Records:
    """Photos read from their files (a dataset folder's images/): nothing is held in memory."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices(([str(p) for p in paths], list(labels)))
    ds = ds.map(lambda path, label: (tf.io.read_file(path), label), num_parallel_calls=tf.data.AUTOTUNE)
    return Records(ds, len(labels), name)


def from_shards(shards: Sequence[str | os.PathLike], count: int, *, keep: set[str] | None = None,
                drop: set[str] | None = None, name: str = "photos") -> Records:
    """Photos from TFRecord shards (aocr's schema: image, label); `keep`/`drop` select by label
    (the validation plates are held out this way without reading the shards twice)."""
    import tensorflow as tf

    features = {"image": tf.io.FixedLenFeature([], tf.string), "label": tf.io.FixedLenFeature([], tf.string)}
    ds = tf.data.TFRecordDataset([str(s) for s in shards], num_parallel_reads=tf.data.AUTOTUNE)
    ds = ds.map(lambda raw: tuple(tf.io.parse_single_example(raw, features).values()),
                num_parallel_calls=tf.data.AUTOTUNE)
    for labels, wanted in ((keep, True), (drop, False)):
        if labels:
            table = tf.lookup.StaticHashTable(
                tf.lookup.KeyValueTensorInitializer(sorted(labels), [1] * len(labels), tf.string, tf.int32), 0)
            ds = ds.filter(lambda image, label, t=table, w=wanted: tf.equal(t.lookup(label), 1) if w
                           else tf.equal(t.lookup(label), 0))
    return Records(ds, count, name)


def from_memory(images: Sequence[bytes], labels: Sequence[str], name: str = "photos") -> Records:
    """Photos already in memory as encoded bytes (raw sources, rendered look-alikes)."""
    import tensorflow as tf

    return Records(tf.data.Dataset.from_tensor_slices((list(images), list(labels))), len(labels), name)


def _decoder(box: Box):
    work_h, work_w = box.work

    def decode(data: bytes) -> tuple[np.ndarray, np.ndarray]:
        try:
            gray = decode_to_fit(data, work_h, work_w)
        except ValueError:  # a photo that stopped decoding since import: a blank the model learns nothing from
            gray = np.zeros((8, 8), np.uint8)
        return gray, np.array(gray.shape, np.int32)

    return decode


def _batch_maker(box: Box, charset: Charset, slots: int, rng_seed: int, augmenting: bool):
    """make(images [B, work_h, work_w] padded, sizes [B, 2], labels [B]) -> (inputs, tokens): one Python
    call per batch, not per photo (tf.data's per-call cost was larger than the augmentation's)."""
    rng = np.random.default_rng(rng_seed)  # one generator per pipeline; calls may interleave, order does not matter

    def make(images: np.ndarray, sizes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        x = np.empty((len(images), box.height, box.width, 1), np.float32)
        tokens = np.empty((len(images), slots), np.int32)
        for i, ((h, w), label) in enumerate(zip(sizes, labels)):
            image = images[i, :h, :w]
            if augmenting:
                image = augment(image, rng)
            x[i] = fit_to_box(image, box.height, box.width)[0]
            tokens[i] = charset.encode(label.decode("utf-8"), slots)
        return x, tokens

    return make


def _cache(ds, count: int, box: Box, cache_dir: Path | None):
    """Keep decoded photos: in memory while they fit the budget, else in a file under `cache_dir`."""
    work_h, work_w = box.work
    if count * work_h * work_w // 2 <= MEMORY_CACHE_BYTES or cache_dir is None:
        return ds.cache()
    cache_dir.mkdir(parents=True, exist_ok=True)
    return ds.cache(str(cache_dir / f"decoded-{box.height}x{box.width}"))


def batches(sources: Sequence[tuple[Records, float]], boxes: Sequence[Box], charset: Charset, slots: int,
            batch_size: int, *, seed: int = 0, augmenting: bool = True, cache_dir: Path | None = None):
    """An endless tf.data.Dataset of (images [B, H, W, 1] float32, tokens [B, slots] int32).

    `sources`: (records, weight) pairs, e.g. the real photos (1.0) and rendered look-alikes (0.5).
    `boxes`: the model input sizes; a batch is one box, drawn by the boxes' weights.
    """
    import tensorflow as tf

    per_box = []
    for b, box in enumerate(boxes):
        decode, make = _decoder(box), _batch_maker(box, charset, slots, seed * 7919 + b, augmenting)
        streams, weights = [], []

        def decoded(data, label, decode=decode):
            image, size = tf.numpy_function(decode, [data], (tf.uint8, tf.int32), stateful=False)
            return tf.ensure_shape(image, [None, None]), tf.ensure_shape(size, [2]), label

        for s, (records, weight) in enumerate(sources):
            ds = records.dataset.map(decoded, num_parallel_calls=tf.data.AUTOTUNE)
            ds = _cache(ds, records.count, box, None if cache_dir is None else cache_dir / f"{s}-{records.name}")
            ds = ds.shuffle(min(SHUFFLE_BUFFER, max(records.count, 1)), seed=seed + s, reshuffle_each_iteration=True)
            streams.append(ds.repeat())
            weights.append(weight)
        ds = streams[0] if len(streams) == 1 else tf.data.Dataset.sample_from_datasets(
            streams, weights=[w / sum(weights) for w in weights], seed=seed)

        def prepared(images, sizes, labels, make=make, box=box):
            x, tokens = tf.numpy_function(make, [images, sizes, labels], (tf.float32, tf.int32), stateful=True)
            return (tf.ensure_shape(x, [batch_size, box.height, box.width, 1]),
                    tf.ensure_shape(tokens, [batch_size, slots]))

        options = tf.data.Options()
        options.deterministic = False  # any finished batch may go first: no waiting on a slow one
        # padded to one shape as the batch is made (the photo's own size goes along): no per-photo step
        ds = ds.padded_batch(batch_size, padded_shapes=([*box.work], [2], []), drop_remainder=True)
        per_box.append(ds.map(prepared, num_parallel_calls=tf.data.AUTOTUNE).with_options(options))
    if len(per_box) == 1:
        out = per_box[0]
    else:
        total = sum(b.weight for b in boxes)
        out = tf.data.Dataset.sample_from_datasets(per_box, weights=[b.weight / total for b in boxes], seed=seed)
    options = tf.data.Options()
    # several machines: each worker keeps its share of every batch (the sources are not split in files)
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return out.with_options(options).prefetch(tf.data.AUTOTUNE)


def model_inputs(images: Sequence[bytes | np.ndarray], height: int, width: int) -> np.ndarray:
    """Photos prepared once for checking ([N, H, W, 1] float32), exactly as the reader prepares them."""
    out = np.zeros((len(images), height, width, 1), np.float32)
    for i, data in enumerate(images):
        out[i] = fit_to_box(decode_gray(data), height, width)[0]
    return out
