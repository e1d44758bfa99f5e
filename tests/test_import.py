"""The importer: every bad file rejected with a reason, every good one kept, nothing written outside."""
from __future__ import annotations

import csv
import os
import stat
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine import importer
from engine.importer import ImportRefused, UnsafeArchive, import_dataset, load_report, report_frame
from engine.safezip import ZipLimits

ROOT = Path(__file__).resolve().parent.parent


# --- test images -------------------------------------------------------------------------------
def image(w: int = 120, h: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 0)


def jpeg(w: int = 120, h: int = 40, seed: int = 0) -> bytes:
    return cv2.imencode(".jpg", image(w, h, seed))[1].tobytes()


def png(w: int = 120, h: int = 40, seed: int = 0) -> bytes:
    return cv2.imencode(".png", image(w, h, seed))[1].tobytes()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width x height: decoding it for real would need gigabytes."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int) -> bytes:
    """A real JPEG with its SOF0 frame header patched to other dimensions."""
    data = bytearray(jpeg(64, 32))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


GOOD = {  # member name -> expected label
    "34FK4522.jpg": "34FK4522",
    "34FK4522_1.jpg": "34FK4522",
    "sub/dir/06ABC123.png": "06ABC123",
    "皖A12345.jpg": "皖A12345",
    "مصر123.jpg": "مصر123",
    "🚗CAR1_2.jpeg": "🚗CAR1",
    "AB 12 CD.JPG": "AB 12 CD",
    "$(rm -rf ~);X1.jpg": "$(RM -RF ~);X1",
    "it's \"q\" & |p|.webp": "IT'S \"Q\" & |P|",
    "lower case.bmp": "LOWER CASE",
}

BAD = {  # member name -> a word the reason must contain
    "ZERO.jpg": "empty",
    "TRUNCATED.jpg": "damaged",
    "TRUNCATED.png": "damaged",
    "NOTANIMAGE.jpg": "not an image",
    "_1.jpg": "empty label",
    "ABCDEFGHIJKLMNOPQRSTUVWXYZ.jpg": "more than the maximum of 16",
    "TINY.jpg": "too small",
    "HUGE.png": "too large",
    "WIDE.jpg": "too large",
    "README.txt": "not an image",
    "ANIM.gif": "not an image",
    "../evil.jpg": "outside",
    "/tmp/evil_plate_studio.jpg": "outside",
    "..\\evil2.jpg": "backslash",
    "LINK.jpg": "symbolic link",
}


def encode_image(name: str, seed: int) -> bytes:
    ext = name.rsplit(".", 1)[-1].lower()
    fmt = {"jpg": ".jpg", "jpeg": ".jpg", "png": ".png", "bmp": ".bmp", "webp": ".webp"}[ext]
    return cv2.imencode(fmt, image(120, 40, seed))[1].tobytes()


@pytest.fixture
def hostile_zip(tmp_path: Path) -> Path:
    path = tmp_path / "upload" / "plates.zip"
    path.parent.mkdir()
    good = {name: encode_image(name, i) for i, name in enumerate(GOOD)}
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in good.items():
            zf.writestr(name, data)
        zf.writestr("DUPLICATE.jpg", good["34FK4522.jpg"])
        zf.writestr("ZERO.jpg", b"")
        zf.writestr("TRUNCATED.jpg", jpeg(seed=50)[:300])
        zf.writestr("TRUNCATED.png", png(seed=51)[:-200])
        zf.writestr("NOTANIMAGE.jpg", b"<html>this is a web page, not a photo</html>")
        zf.writestr("_1.jpg", jpeg(seed=52))
        zf.writestr("ABCDEFGHIJKLMNOPQRSTUVWXYZ.jpg", jpeg(seed=53))
        zf.writestr("TINY.jpg", jpeg(10, 5))
        zf.writestr("HUGE.png", png_claiming(100_000, 100_000))
        zf.writestr("WIDE.jpg", jpeg_claiming(9000, 32))
        zf.writestr("README.txt", b"hello")
        zf.writestr("ANIM.gif", b"GIF89a....")
        zf.writestr("../evil.jpg", jpeg(seed=54))
        zf.writestr("/tmp/evil_plate_studio.jpg", jpeg(seed=55))
        zf.writestr("..\\evil2.jpg", jpeg(seed=56))
        zf.writestr(symlink_info("LINK.jpg"), "/etc/passwd")
        zf.writestr("__MACOSX/._34FK4522.jpg", b"\0\5\26\7resource fork")
        zf.writestr(".DS_Store", b"\0\0\0\1Bud1")
        zf.writestr("sub/.hidden.jpg", jpeg(seed=57))
        zf.writestr("sub/dir/", b"")
    return path


def tree(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")}


def test_hostile_zip(hostile_zip: Path, tmp_path: Path) -> None:
    outside = Path("/tmp/evil_plate_studio.jpg")
    outside.unlink(missing_ok=True)
    before = tree(tmp_path)
    out = tmp_path / "datasets" / "plates"
    calls: list[tuple[int, int]] = []
    report = import_dataset(hostile_zip, out, progress=lambda done, total: calls.append((done, total)))

    # every good file is in, with its label
    assert report["accepted"] == len(GOOD)
    with open(out / "labels.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert sorted(r["label"] for r in rows) == sorted(GOOD.values())
    for r in rows:
        assert (out / "images" / r["file"]).is_file() and r["split"] in ("train", "test")
        assert (int(r["width"]), int(r["height"])) == (120, 40)
    stored = {(out / "images" / r["file"]).read_bytes() for r in rows}
    assert stored == {encode_image(name, i) for i, name in enumerate(GOOD)}  # byte-identical

    # every bad file is named with a reason
    reasons = {item["file"]: item["reason"] for item in report["rejected"]}
    assert set(reasons) == set(BAD)
    for name, word in BAD.items():
        assert word in reasons[name], (name, reasons[name])
    assert report["warnings"] == [{"file": "DUPLICATE.jpg", "reason": "exact copy of 34FK4522.jpg: the first copy was kept, this one was left out"}]
    assert report["skipped"] == 3  # __MACOSX, .DS_Store, .hidden.jpg

    # nothing written outside the dataset folder
    assert not outside.exists()
    assert tree(tmp_path) - before == {"datasets", "datasets/plates"} | {f"datasets/plates/{p}" for p in tree(out)}
    assert not any(name.startswith(".") for name in os.listdir(out.parent))  # no temp folder left
    assert all(n.isprintable() and "/" not in n and not n.startswith(".") for n in os.listdir(out / "images"))

    # report, progress, table
    assert load_report(out) == report
    assert report["train"] + report["test"] == len(GOOD)
    assert calls[0] == (0, len(GOOD) + len(BAD) + 1) and calls[-1] == (calls[0][1], calls[0][1])
    frame = report_frame(report)
    assert list(frame.columns) == ["file", "status", "reason"]
    assert sorted(frame["status"].unique()) == ["rejected", "warning"] and len(frame) == len(BAD) + 1
    assert sorted((out / "tfrecords").iterdir()) == [out / "tfrecords/test-00000-of-00001.tfrecords", out / "tfrecords/train-00000-of-00001.tfrecords"]


def test_report_contents(sample_zip: Path, tmp_path: Path) -> None:
    report = import_dataset(sample_zip, tmp_path / "ds", test_fraction=0.25, seed=3)
    assert report["accepted"] == 40 and report["rejected"] == [] and report["warnings"] == []
    assert set(report["charset"]) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert sum(report["char_histogram"].values()) == sum(int(n) * c for n, c in report["label_length_histogram"].items())
    assert 200 <= report["image_size"]["width"]["median"] <= 400
    assert report["test_fraction"] == 0.25 and report["seed"] == 3 and report["max_label_length"] == 16
    assert report["source"] == str(sample_zip) and report["created_at"]
    assert 5 <= report["test"] <= 15 and report["train"] + report["test"] == 40
    with open(tmp_path / "ds" / "labels.csv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    sides: dict[str, set[str]] = {}
    for r in rows:
        sides.setdefault(r["label"], set()).add(r["split"])
    assert all(len(s) == 1 for s in sides.values())  # no plate on both sides


def test_refusals_write_nothing(tmp_path: Path) -> None:
    fake = tmp_path / "photos.zip"
    fake.write_bytes(b"%PDF-1.4 not a zip")
    out = tmp_path / "ds"
    with pytest.raises(UnsafeArchive, match="photos.zip is not a zip file"):
        import_dataset(fake, out)
    many = tmp_path / "many.zip"
    with zipfile.ZipFile(many, "w") as zf:
        for i in range(6):
            zf.writestr(f"A{i}.jpg", jpeg(seed=i))
    with pytest.raises(UnsafeArchive, match="at most 5"):
        import_dataset(many, out, limits=ZipLimits(max_entries=5))
    with pytest.raises(UnsafeArchive, match="unpacks to more than"):
        import_dataset(many, out, limits=ZipLimits(max_total_bytes=2000))
    assert sorted(os.listdir(tmp_path)) == ["many.zip", "photos.zip"]


def test_nothing_usable_is_refused_with_the_reasons(tmp_path: Path) -> None:
    path = tmp_path / "bad.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("A.jpg", b"")
        zf.writestr("B.jpg", b"not an image")
    with pytest.raises(ImportRefused, match="No usable images") as info:
        import_dataset(path, tmp_path / "ds")
    assert {i["file"] for i in info.value.report["rejected"]} == {"A.jpg", "B.jpg"}
    assert not (tmp_path / "ds").exists()


def test_per_file_limit_rejects_only_that_file(tmp_path: Path) -> None:
    path = tmp_path / "p.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("SMALL.jpg", jpeg(40, 16))
        zf.writestr("BIG.jpg", jpeg(600, 300))
    small = len(jpeg(40, 16))
    report = import_dataset(path, tmp_path / "ds", limits=ZipLimits(max_file_bytes=small + 10))
    assert report["accepted"] == 1
    assert report["rejected"][0]["file"] == "BIG.jpg" and "per file" in report["rejected"][0]["reason"]


def test_existing_out_dir_and_overwrite(sample_zip: Path, tmp_path: Path) -> None:
    out = tmp_path / "ds"
    import_dataset(sample_zip, out)
    with pytest.raises(ImportRefused, match="already exists"):
        import_dataset(sample_zip, out)
    (out / "marker").write_text("old")
    report = import_dataset(sample_zip, out, overwrite=True, seed=1)
    assert report["seed"] == 1 and not (out / "marker").exists()
    assert sorted(os.listdir(tmp_path)) == ["ds"]


def test_failure_midway_leaves_no_half_dataset(sample_zip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr("engine.tfrecords.write_tfrecords", boom)
    with pytest.raises(OSError, match="disk full"):
        import_dataset(sample_zip, tmp_path / "ds")
    assert os.listdir(tmp_path) == []


def test_folder_import(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    (src / "day 1" / "cam $(x)").mkdir(parents=True)
    (src / ".git").mkdir()
    (src / "34FK4522.jpg").write_bytes(jpeg(seed=1))
    (src / "day 1" / "34FK4522_1.png").write_bytes(png(seed=2))
    (src / "day 1" / "cam $(x)" / "06XY99.jpg").write_bytes(jpeg(seed=3))
    (src / "day 1" / "cam $(x)" / "broken.jpg").write_bytes(jpeg(seed=4)[:100])
    (src / ".git" / "HEAD.jpg").write_bytes(jpeg(seed=5))
    (src / "Thumbs.db").write_bytes(b"x")
    report = import_dataset(src, tmp_path / "ds", test_fraction=0.0)
    assert report["accepted"] == 3 and report["train"] == 3 and report["test"] == 0
    assert report["rejected"] == [{"file": "day 1/cam $(x)/broken.jpg", "reason": report["rejected"][0]["reason"]}]
    assert "damaged" in report["rejected"][0]["reason"] and report["skipped"] == 2


def test_annotation_and_csv_import(tmp_path: Path) -> None:
    (tmp_path / "imgs").mkdir()
    (tmp_path / "imgs" / "a.jpg").write_bytes(jpeg(seed=1))
    (tmp_path / "imgs" / "b c.png").write_bytes(png(seed=2))
    ann = tmp_path / "annotations.txt"
    ann.write_text(f"imgs/a.jpg 34 fk 4522\n{tmp_path / 'imgs' / 'b c.png'} x\nimgs/missing.jpg ZZ1\nimgs/a.jpg\n", encoding="utf-8")
    report = import_dataset(ann, tmp_path / "ds1", test_fraction=0.0)
    # note: "b c.png" has a space, so an aocr annotation line cannot name it: the path stops at the space
    assert report["accepted"] == 1
    assert {i["file"] for i in report["rejected"]} >= {"imgs/missing.jpg"}

    table = tmp_path / "labels.csv"
    table.write_text('image_path,plate_text\nimgs/a.jpg,34FK4522\n"imgs/b c.png",皖a1\nimgs/missing.jpg,X\n', encoding="utf-8")
    report = import_dataset(table, tmp_path / "ds2", test_fraction=0.0, keep_case=True)
    assert report["accepted"] == 2 and report["charset"] == "".join(sorted(set("34FK4522皖a1")))
    assert report["rejected"] == [{"file": "imgs/missing.jpg", "reason": "file not found"}]


def test_separate_test_source_warns_about_overlap(tmp_path: Path) -> None:
    train, test = tmp_path / "train.zip", tmp_path / "test.zip"
    with zipfile.ZipFile(train, "w") as zf:
        for i, name in enumerate(["AA1.jpg", "BB2.jpg", "CC3.jpg"]):
            zf.writestr(name, jpeg(seed=i))
    with zipfile.ZipFile(test, "w") as zf:
        zf.writestr("DD4.jpg", jpeg(seed=10))
        zf.writestr("AA1_1.jpg", jpeg(seed=11))
        zf.writestr("EMPTY.jpg", b"")
    report = import_dataset(train, tmp_path / "ds", test_source=test)
    assert (report["train"], report["test"]) == (3, 2)
    assert report["warnings"] == [{"file": "AA1_1.jpg (test set)", "reason": report["warnings"][0]["reason"]}]
    assert "also in the training set" in report["warnings"][0]["reason"]
    assert report["rejected"][0]["file"] == "EMPTY.jpg (test set)"


def test_cli_import_subprocess(hostile_zip: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli ds"
    result = subprocess.run(
        [sys.executable, "-m", "engine", "import", str(hostile_zip), "--out", str(out), "--test-fraction", "0.3", "--seed", "2"],
        cwd=ROOT, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert f"Imported {len(GOOD)} images" in result.stdout and "rejected ZERO.jpg: the file is empty" in result.stdout
    assert load_report(out)["seed"] == 2
    again = subprocess.run([sys.executable, "-m", "engine", "import", str(hostile_zip), "--out", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_report_frame_empty() -> None:
    frame = report_frame({"rejected": [], "warnings": []})
    assert list(frame.columns) == ["file", "status", "reason"] and len(frame) == 0


def test_load_report_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not an imported dataset"):
        load_report(tmp_path)


def test_image_checks_directly() -> None:
    assert importer.image_problem(jpeg())[0] is None
    assert "too large" in importer.image_problem(png_claiming(100_000, 100_000))[0]
    assert "too large" in importer.image_problem(png_claiming(7000, 7000))[0]  # 49 megapixels
    assert "damaged" in importer.image_problem(png_claiming(200, 100))[0]  # header fine, pixels missing
