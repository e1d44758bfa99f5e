"""TFRecords in aocr's schema: tf.train.Example with `image` (the original encoded bytes),
`label` (UTF-8) and `comment` (the original file name; aocr's own files may lack it).

A dataset folder's own shards (tfrecords/train-*, test-*) are written on demand by
`ensure_dataset_records`, never by the import: TensorFlow costs ~700 MB and seconds to load, and
the import runs inside the dashboard's server. TensorFlow is imported inside the functions that
need it.
"""
from __future__ import annotations

import glob
import hashlib
import logging
import os
import shutil
import sys
import uuid
from pathlib import Path
from typing import Iterable, Iterator, Sequence

from engine.data.dataset import DatasetFolder, FolderClaim, is_dataset_folder
from engine.data.sources import TFRECORD_SUFFIXES, Example
from engine.storage.files import atomic_write_json, now_iso, read_json
from engine.storage.text import printable

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


# --- a dataset folder's own shards ----------------------------------------------------------------
FINGERPRINT = "fingerprint.json"  # in tfrecords/: the labels.csv the shards were written from
SPLIT_NAMES = ("train", "test")


def _wanted(dataset: DatasetFolder, shard_size: int) -> dict:
    return {"labels_sha256": hashlib.sha256(dataset.labels_path.read_bytes()).hexdigest(), "shard_size": shard_size}


def _current_records(dataset: DatasetFolder, wanted: dict) -> dict[str, list[Path]] | None:
    """The shards on disk when they were written from this very labels.csv, else None."""
    recorded = read_json(dataset.tfrecords_dir / FINGERPRINT)
    if not isinstance(recorded, dict) or any(recorded.get(k) != v for k, v in wanted.items()):
        return None
    shards = {split: [dataset.tfrecords_dir / name for name in recorded.get(split) or []] for split in SPLIT_NAMES}
    if not all(shards.values()) or not all(p.is_file() for paths in shards.values() for p in paths):
        return None
    return shards


def _dataset_examples(dataset: DatasetFolder, rows: list[dict], split: str | None) -> Iterator[Example]:
    """One photo in memory at a time; `comment` is the name the operator uploaded."""
    for row in rows:
        if split is None or row["split"] == split:
            yield Example(row["original"], row["label"], dataset.image_path(row["file"]).read_bytes())


def ensure_dataset_records(dataset_dir: str | os.PathLike, shard_size: int = DEFAULT_SHARD_SIZE) -> dict[str, list[Path]]:
    """The dataset's `tfrecords/train-*-of-*.tfrecords` and `test-*` shards, written if missing or
    older than labels.csv (tfrecords/fingerprint.json records the labels.csv they were made from).

    Concurrent callers do not clash: the writer holds a FolderClaim on the dataset folder, the others
    wait and then reuse its shards. Shards are written into a hidden temp folder and swapped in
    whole, so a reader never sees a half set. Returns {"train": [...], "test": [...]}.
    """
    dataset = DatasetFolder(dataset_dir)
    if not is_dataset_folder(dataset.path):
        raise FileNotFoundError(f"{dataset.path} is not an imported dataset folder (no labels.csv and images/).")
    shards = _current_records(dataset, _wanted(dataset, shard_size))
    if shards:
        return shards
    with FolderClaim(dataset.path):
        wanted = _wanted(dataset, shard_size)  # labels.csv may have changed while we waited
        return _current_records(dataset, wanted) or _write_dataset_records(dataset, wanted)


def _write_dataset_records(dataset: DatasetFolder, wanted: dict) -> dict[str, list[Path]]:
    for stale in dataset.path.glob(".tfrecords.*-*"):  # a killed writer's; we hold the claim
        shutil.rmtree(stale, ignore_errors=True)
    tmp = dataset.path / f".tfrecords.writing-{uuid.uuid4().hex[:8]}"
    old = dataset.path / f".tfrecords.old-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        rows = [r for r in dataset.rows() if not r.get("excluded")]  # photos left out by label review
        names = {split: [p.name for p in write_tfrecords(_dataset_examples(dataset, rows, split), tmp / split,
                                                         wanted["shard_size"])]
                 for split in SPLIT_NAMES}
        atomic_write_json(tmp / FINGERPRINT, {**wanted, **names, "written_at": now_iso()})
        if dataset.tfrecords_dir.exists():
            os.rename(dataset.tfrecords_dir, old)
        os.rename(tmp, dataset.tfrecords_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    log.info("wrote the TFRecords of %s (%s)", dataset.path, ", ".join(f"{len(v)} {k} shards" for k, v in names.items()))
    return {split: [dataset.tfrecords_dir / name for name in names[split]] for split in SPLIT_NAMES}


# --- command line ----------------------------------------------------------------------------------
def cli_dataset(args) -> int:
    """`python -m engine dataset ANNOTATIONS OUTPUT.tfrecords` (aocr's recipe), with the importer's checks.

    ANNOTATIONS may also be an imported dataset folder: without OUTPUT its own train/test shards are
    made (or found up to date); with OUTPUT, all its photos are written there with their labels.
    """
    source, output = Path(args.annotations_path).expanduser(), getattr(args, "output_path", None)
    if is_dataset_folder(source) and output is None:
        shards = ensure_dataset_records(source)
        for split, paths in shards.items():
            print(f"{split}: {', '.join(printable(str(p)) for p in paths)}")
        return 0
    if output is None:
        print("error: give the .tfrecords file to write (only a dataset folder can do without).", file=sys.stderr)
        return 2
    if is_dataset_folder(source):
        dataset = DatasetFolder(source)
        rows = [r for r in dataset.rows() if not r.get("excluded")]
        files = write_tfrecords(_dataset_examples(dataset, rows, None), output, args.shard_size)
        print(f"Wrote {len(rows)} examples to {_where(files)}.")
        return 0
    from engine.data.importer import ImportRefused, collect_examples

    try:
        examples, rejected = collect_examples(source, keep_case=args.keep_case, max_label_length=args.max_label_length)
    except (ImportRefused, FileNotFoundError) as exc:  # names inside come from the upload: escaped
        print(f"error: {printable(str(exc))}", file=sys.stderr)
        return 2
    for item in rejected:
        print(f"skipped {printable(item['file'])}: {printable(item['reason'])}", file=sys.stderr)
    if not examples:
        print(f"error: no usable images in {printable(str(source))}; nothing written.", file=sys.stderr)
        return 1
    files = write_tfrecords(examples, output, args.shard_size)
    print(f"Wrote {len(examples)} examples to {_where(files)} ({len(rejected)} rejected).")
    return 0


def _where(files: list[Path]) -> str:
    return printable(str(files[0]) if len(files) == 1 else f"{len(files)} files {files[0].name} ... {files[-1].name}")
