"""TFRecords in aocr's schema (ours and aocr's own), a dataset's own shards written on demand, and
load_examples over every kind of source."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.cli import main
from engine.data.dataset import DatasetFolder
from engine.data.importer import import_dataset
from engine.data.sources import Example, load_examples
from engine.data.tfrecords import ensure_dataset_records, read_tfrecords, write_tfrecords

ROOT = Path(__file__).resolve().parent.parent


def jpeg(seed: int, w: int = 100, h: int = 32) -> bytes:
    rng = np.random.default_rng(seed)
    return cv2.imencode(".jpg", cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 0))[1].tobytes()


EXAMPLES = [
    Example("34FK4522.jpg", "34FK4522", jpeg(1)),
    Example("皖A12345_1.jpg", "皖A12345", jpeg(2)),
    Example("dir/مصر 12.png", "مصر 12", jpeg(3)),
    Example("e.jpg", "🚗X", jpeg(4)),
    Example("f.jpg", "lower", jpeg(5)),
]


def test_round_trip_unicode_and_shards(tmp_path: Path) -> None:
    files = write_tfrecords(EXAMPLES, tmp_path / "out" / "train", shard_size=2)
    assert [f.name for f in files] == [f"train-0000{i}-of-00003.tfrecords" for i in range(3)]
    assert list(read_tfrecords(files)) == EXAMPLES
    assert list(read_tfrecords(tmp_path / "out")) == EXAMPLES  # a folder
    assert list(read_tfrecords(str(tmp_path / "out" / "train-*.tfrecords"))) == EXAMPLES  # a glob


def test_single_file_and_empty(tmp_path: Path) -> None:
    assert write_tfrecords(iter(EXAMPLES), tmp_path / "all.tfrecords", shard_size=None) == [tmp_path / "all.tfrecords"]
    assert list(read_tfrecords(tmp_path / "all.tfrecords")) == EXAMPLES
    files = write_tfrecords([], tmp_path / "test", shard_size=2000)
    assert [f.name for f in files] == ["test-00000-of-00001.tfrecords"] and list(read_tfrecords(files)) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["all.tfrecords", "test-00000-of-00001.tfrecords"]  # no temp files


def test_reads_aocr_files_without_comment(tmp_path: Path) -> None:
    import tensorflow as tf

    path = tmp_path / "training.tfrecords"
    with tf.io.TFRecordWriter(str(path)) as writer:  # aocr's own writer: image + label only
        for ex in EXAMPLES[:2]:
            feature = {
                "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[ex.image])),
                "label": tf.train.Feature(bytes_list=tf.train.BytesList(value=[ex.label.encode()])),
            }
            writer.write(tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString())
    assert list(read_tfrecords(path)) == [Example("", ex.label, ex.image) for ex in EXAMPLES[:2]]
    renamed = tmp_path / "training_data"  # aocr users' files do not always carry the suffix
    renamed.write_bytes(path.read_bytes())
    assert [e.label for e in load_examples(renamed)] == ["34FK4522", "皖A12345"]


def test_damaged_file_is_a_clear_error(tmp_path: Path) -> None:
    path = write_tfrecords(EXAMPLES, tmp_path / "x.tfrecords", shard_size=None)[0]
    path.write_bytes(path.read_bytes()[:-50])
    with pytest.raises(ValueError, match="x.tfrecords is not a readable TFRecord file"):
        list(read_tfrecords(path))


@pytest.fixture
def dataset(sample_zip: Path, tmp_path: Path) -> Path:
    import_dataset(sample_zip, tmp_path / "ds")
    ensure_dataset_records(tmp_path / "ds", shard_size=7)
    return tmp_path / "ds"


def test_load_examples_dataset_folder_and_its_tfrecords(dataset: Path) -> None:
    train, test, everything = (load_examples(dataset, s) for s in ("train", "test", "all"))
    assert len(train) + len(test) == len(everything) == 40 and test
    assert not {e.label for e in train} & {e.label for e in test}
    assert len(load_examples(dataset)) == 40
    # the TFRecords hold the same images and labels (file: the original name)
    from_records = load_examples(dataset / "tfrecords", "test")
    assert sorted((e.label, e.image) for e in from_records) == sorted((e.label, e.image) for e in test)
    assert len(list((dataset / "tfrecords").glob("train-*"))) == -(-len(train) // 7)
    assert len(load_examples(str(dataset / "tfrecords" / "*.tfrecords"))) == 40
    with pytest.raises(ValueError):
        load_examples(dataset, "validation")


def test_load_examples_raw_sources(sample_zip: Path, tmp_path: Path) -> None:
    from_zip = load_examples(sample_zip)
    assert len(from_zip) == 40 and all(e.image[:2] == b"\xff\xd8" for e in from_zip)
    folder = tmp_path / "imgs"
    folder.mkdir()
    with zipfile.ZipFile(sample_zip) as zf:
        zf.extractall(folder)  # our own trusted zip
    (folder / "broken.jpg").write_bytes(b"nope")
    from_folder = load_examples(folder)
    assert sorted((e.label, e.image) for e in from_folder) == sorted((e.label, e.image) for e in from_zip)
    ann = tmp_path / "ann.txt"
    ann.write_text("".join(f"imgs/{e.file} {e.label}\n" for e in from_folder), encoding="utf-8")
    assert [e.label for e in load_examples(ann)] == [e.label for e in from_folder]
    table = tmp_path / "t.csv"
    table.write_text("image_path,plate_text\n" + "".join(f"imgs/{e.file},{e.label}\n" for e in from_folder), encoding="utf-8")
    assert [e.label for e in load_examples(table)] == [e.label for e in from_folder]
    with pytest.raises(FileNotFoundError):
        load_examples(tmp_path / "missing.zip")


def test_cli_dataset_writes_exactly_the_output(sample_zip: Path, tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    with zipfile.ZipFile(sample_zip) as zf:
        zf.extractall(folder)
    names = sorted(p.name for p in folder.iterdir())
    ann = tmp_path / "annotations.txt"
    ann.write_text("".join(f"imgs/{n} {n.split('_')[0].removesuffix('.jpg')}\n" for n in names) + "imgs/missing.jpg X\n", encoding="utf-8")
    out = tmp_path / "out" / "train.tfrecords"
    (tmp_path / "out").mkdir()
    result = subprocess.run([sys.executable, "-m", "engine", "dataset", str(ann), str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "skipped imgs/missing.jpg: file not found" in result.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["train.tfrecords"]
    assert len(list(read_tfrecords(out))) == 40

    # --shard-size (in-process: TensorFlow is already loaded)
    assert main(["dataset", str(ann), str(tmp_path / "sharded" / "train.tfrecords"), "--shard-size", "16"]) == 0
    assert sorted(p.name for p in (tmp_path / "sharded").iterdir()) == [f"train-0000{i}-of-00003.tfrecords" for i in range(3)]


# --- a dataset's own shards: written on demand, reused, rewritten after labels.csv changes --------------
def shard_labels(paths: list[Path]) -> list[str]:
    return sorted(e.label for e in read_tfrecords(paths))


def test_dataset_records_are_written_lazily_and_reused(sample_zip: Path, tmp_path: Path) -> None:
    folder = DatasetFolder(tmp_path / "ds")
    import_dataset(sample_zip, folder.path)
    assert not folder.tfrecords_dir.exists()  # the import writes none
    shards = ensure_dataset_records(folder.path)
    assert {k: [p.name for p in v] for k, v in shards.items()} == {
        "train": ["train-00000-of-00001.tfrecords"], "test": ["test-00000-of-00001.tfrecords"]}
    rows = folder.rows()
    for split in ("train", "test"):
        assert shard_labels(shards[split]) == sorted(r["label"] for r in rows if r["split"] == split)
        records = list(read_tfrecords(shards[split]))
        assert {e.file for e in records} == {r["original"] for r in rows if r["split"] == split}  # the uploaded name
    stamps = {p: p.stat().st_mtime_ns for paths in shards.values() for p in paths}
    assert ensure_dataset_records(folder.path) == shards
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps, "up to date: reused, not rewritten"
    assert sorted(p.name for p in folder.path.iterdir()) == ["images", "labels.csv", "report.json", "tfrecords"]


def test_dataset_records_follow_a_changed_labels_csv(sample_zip: Path, tmp_path: Path) -> None:
    folder = DatasetFolder(tmp_path / "ds")
    import_dataset(sample_zip, folder.path)
    before = {k: [str(p) for p in v] for k, v in ensure_dataset_records(folder.path).items()}
    old_labels = {k: shard_labels(v) for k, v in ensure_dataset_records(folder.path).items()}
    rows = folder.rows()
    fixed = [{**r, "label": "FIXED1"} if i == 0 else r for i, r in enumerate(rows)]
    folder.write_rows(fixed)
    after = ensure_dataset_records(folder.path)
    side = rows[0]["split"]
    assert shard_labels(after[side]) == sorted(r["label"] for r in fixed if r["split"] == side) != old_labels[side]
    assert before == {k: [str(p) for p in v] for k, v in after.items()}  # same names, new content
    assert sorted(p.name for p in folder.path.iterdir()) == ["images", "labels.csv", "report.json", "tfrecords"]
    assert len(ensure_dataset_records(folder.path, shard_size=10)["train"]) == -(-sum(r["split"] == "train" for r in rows) // 10)


ENSURE = r"""
import json, os, sys
sys.path.insert(0, sys.argv[1])
from engine.data.tfrecords import ensure_dataset_records
shards = ensure_dataset_records(sys.argv[2])
print(json.dumps({"inode": os.stat(os.path.join(sys.argv[2], "tfrecords")).st_ino,
                  "shards": {k: [str(p) for p in v] for k, v in shards.items()}}))
"""


def test_two_processes_asking_at_once_write_the_records_once(sample_zip: Path, tmp_path: Path) -> None:
    folder = DatasetFolder(tmp_path / "ds")
    import_dataset(sample_zip, folder.path)
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    procs = [subprocess.Popen([sys.executable, "-c", ENSURE, str(ROOT), str(folder.path)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for _ in range(2)]
    outs = [p.communicate(timeout=180) for p in procs]
    assert all(p.returncode == 0 for p in procs), [err[-2000:] for _, err in outs]
    seen = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    assert seen[0] == seen[1], "both got the same shards; the second one did not swap in its own"
    assert folder.tfrecords_dir.stat().st_ino == seen[0]["inode"]
    assert sorted(p.name for p in folder.path.iterdir()) == ["images", "labels.csv", "report.json", "tfrecords"]
    assert len(list(read_tfrecords(folder.tfrecords_dir))) == 40


def test_leftovers_of_a_killed_writer_are_removed_and_old_layouts_rewritten(sample_zip: Path, tmp_path: Path) -> None:
    folder = DatasetFolder(tmp_path / "ds")
    import_dataset(sample_zip, folder.path)
    (folder.path / ".tfrecords.writing-0123abcd").mkdir()  # a writer killed mid-way
    (folder.path / ".tfrecords.writing-0123abcd" / "train-00000.tfrecords.tmp").write_bytes(b"half")
    folder.tfrecords_dir.mkdir()  # an older import's shards, without a fingerprint
    write_tfrecords(EXAMPLES, folder.tfrecords_dir / "train")
    shards = ensure_dataset_records(folder.path)
    assert len(list(read_tfrecords(shards["train"] + shards["test"]))) == 40
    assert sorted(p.name for p in folder.path.iterdir()) == ["images", "labels.csv", "report.json", "tfrecords"]


def test_cli_dataset_with_a_dataset_folder(sample_zip: Path, tmp_path: Path) -> None:
    import argparse

    from engine.data.tfrecords import cli_dataset

    folder = DatasetFolder(tmp_path / "ds")
    import_dataset(sample_zip, folder.path)
    assert main(["dataset", str(folder.path), str(tmp_path / "all.tfrecords")]) == 0
    assert shard_labels([tmp_path / "all.tfrecords"]) == sorted(r["label"] for r in folder.rows())
    args = argparse.Namespace(annotations_path=str(folder.path), output_path=None, shard_size=None, keep_case=False,
                              max_label_length=None)
    assert cli_dataset(args) == 0  # no OUTPUT: the dataset's own shards
    assert sorted(p.name for p in folder.tfrecords_dir.iterdir()) == [
        "fingerprint.json", "test-00000-of-00001.tfrecords", "train-00000-of-00001.tfrecords"]
