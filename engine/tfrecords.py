"""TFRecords in aocr's schema: tf.train.Example with `image` (the original encoded bytes),
`label` (UTF-8) and `comment` (the original file name; aocr's own files may lack it).

TensorFlow is imported inside the functions that need it: importing it costs seconds, and
`python -m engine import` / the dashboard's data pages should not pay for it until they write.
"""
from __future__ import annotations

import glob
import logging
import os
import sys
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from engine.sources import TFRECORD_SUFFIXES, Example

log = logging.getLogger(__name__)

DEFAULT_SHARD_SIZE = 2000


def _tf():
    import tensorflow as tf  # lazy: seconds to import

    return tf


def _bytes_feature(tf, value: bytes):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def serialize_example(example: Example, tf=None) -> bytes:
    tf = tf or _tf()
    features = {
        "image": _bytes_feature(tf, example.image),
        "label": _bytes_feature(tf, example.label.encode("utf-8")),
        "comment": _bytes_feature(tf, example.file.encode("utf-8")),
    }
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


def _prefix_stem(prefix: Path) -> Path:
    """`out/train` or `out/train.tfrecords` -> `out/train` (shard names get the suffix back)."""
    return prefix.with_suffix("") if prefix.suffix.lower() in TFRECORD_SUFFIXES else prefix


def write_tfrecords(examples: Iterable[Example], prefix: str | os.PathLike, shard_size: int | None = DEFAULT_SHARD_SIZE) -> list[Path]:
    """Write `examples` as `PREFIX-00000-of-0000N.tfrecords` shards of `shard_size` examples.

    `shard_size=None` writes exactly one file named `prefix` (aocr's `dataset OUTPUT.tfrecords`).
    `examples` may be a lazy iterator: shards are written under temporary names and renamed once
    the total (hence N) is known. No examples still give one empty shard, so a reader globbing
    `test-*.tfrecords` finds a valid file. Returns the files written, in order.
    """
    tf = _tf()
    prefix = Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    if shard_size is None:
        return [_write_single(tf, examples, prefix)]
    if shard_size < 1:
        raise ValueError(f"shard_size must be at least 1 (got {shard_size}).")
    stem = _prefix_stem(prefix)
    temps: list[Path] = []
    writer, in_shard = None, 0
    try:
        for example in examples:
            if writer is None or in_shard >= shard_size:
                if writer is not None:
                    writer.close()
                temps.append(stem.parent / f".{stem.name}-{len(temps):05d}.tfrecords.tmp")
                writer, in_shard = tf.io.TFRecordWriter(str(temps[-1])), 0
            writer.write(serialize_example(example, tf))
            in_shard += 1
        if writer is None:  # nothing to write: one empty, valid shard
            temps.append(stem.parent / f".{stem.name}-00000.tfrecords.tmp")
            writer = tf.io.TFRecordWriter(str(temps[-1]))
        writer.close()
    except BaseException:
        if writer is not None:
            writer.close()
        for temp in temps:
            temp.unlink(missing_ok=True)
        raise
    final = [stem.parent / f"{stem.name}-{i:05d}-of-{len(temps):05d}.tfrecords" for i in range(len(temps))]
    for temp, path in zip(temps, final):
        os.replace(temp, path)
    return final


def _write_single(tf, examples: Iterable[Example], path: Path) -> Path:
    temp = path.parent / f".{path.name}.tmp"
    try:
        with tf.io.TFRecordWriter(str(temp)) as writer:
            for example in examples:
                writer.write(serialize_example(example, tf))
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    return path


def expand_tfrecord_paths(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Files, folders (their *.tfrecords) and glob patterns -> the list of files, sorted per entry."""
    items = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    files: list[Path] = []
    for item in items:
        path = Path(item).expanduser()
        if path.is_dir():
            files += sorted(p for p in path.iterdir() if p.suffix.lower() in TFRECORD_SUFFIXES)
        elif path.exists():
            files.append(path)
        else:
            matches = sorted(Path(p) for p in glob.glob(os.path.expanduser(os.fspath(item))))
            if not matches:
                raise FileNotFoundError(f"{item} does not exist.")
            files += matches
    return files


def _feature_bytes(example, name: str) -> bytes | None:
    feature = example.features.feature.get(name)
    if feature is None or not feature.bytes_list.value:
        return None
    return feature.bytes_list.value[0]


def read_tfrecords(paths: str | os.PathLike | Sequence[str | os.PathLike]) -> Iterator[Example]:
    """Examples from TFRecord files written by us or by aocr (`comment` missing -> file '').

    Raises ValueError naming the file when a file is damaged or not in aocr's schema.
    """
    tf = _tf()
    for path in expand_tfrecord_paths(paths):
        try:
            for raw in tf.data.TFRecordDataset(str(path)).as_numpy_iterator():
                parsed = tf.train.Example.FromString(raw)
                image = _feature_bytes(parsed, "image")
                if image is None:
                    raise ValueError(f"{path.name} has a record without an 'image' feature: not an aocr TFRecord file.")
                label = (_feature_bytes(parsed, "label") or b"").decode("utf-8", errors="replace")
                comment = (_feature_bytes(parsed, "comment") or b"").decode("utf-8", errors="replace")
                yield Example(comment, label, image)
        except (tf.errors.DataLossError, tf.errors.InvalidArgumentError) as exc:
            raise ValueError(f"{path.name} is not a readable TFRecord file ({exc.message.splitlines()[0]}).") from None
        except Exception as exc:
            if type(exc).__name__ == "DecodeError":  # protobuf: records that are not tf.train.Example
                raise ValueError(f"{path.name} does not hold tf.train.Example records: not an aocr TFRecord file.") from None
            raise


def cli_dataset(args) -> int:
    """`python -m engine dataset ANNOTATIONS OUTPUT.tfrecords` (aocr's recipe), with the importer's checks."""
    from engine.importer import collect_examples

    examples, rejected, warnings = collect_examples(
        args.annotations_path, keep_case=args.keep_case, max_label_length=args.max_label_length
    )
    for item in rejected + warnings:
        print(f"skipped {item['file']}: {item['reason']}", file=sys.stderr)
    if not examples:
        print(f"error: no usable images in {args.annotations_path}; nothing written.", file=sys.stderr)
        return 1
    files = write_tfrecords(examples, args.output_path, args.shard_size)
    where = files[0] if len(files) == 1 else f"{len(files)} files {files[0].name} ... {files[-1].name}"
    print(f"Wrote {len(examples)} examples to {where} ({len(rejected)} rejected).")
    return 0
