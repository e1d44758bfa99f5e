"""The importer: every bad file rejected with a reason, every good one kept, nothing written outside;
labels.csv safe to open in a spreadsheet; no TensorFlow; leftovers of killed imports cleaned up."""
from __future__ import annotations

import contextlib
import csv
import json
import os
import stat
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from engine.data import images
from engine.data.dataset import DatasetFolder, FolderClaim, photo_digest
from engine.data.importer import ImportRefused, UnsafeArchive, clean_leftovers, import_dataset, load_report, report_frame
from engine.data.safezip import ZipLimits

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
    rows = DatasetFolder(out).rows()
    assert sorted(r["label"] for r in rows) == sorted(GOOD.values())
    assert sorted(r["original"] for r in rows) == sorted(GOOD)
    for r in rows:
        assert (out / "images" / r["file"]).is_file() and r["split"] in ("train", "test")
        assert (r["width"], r["height"]) == (120, 40)
        assert r["digest"] == photo_digest((out / "images" / r["file"]).read_bytes())
    stored = {(out / "images" / r["file"]).read_bytes() for r in rows}
    assert stored == {encode_image(name, i) for i, name in enumerate(GOOD)}  # byte-identical

    # every bad file is named with a reason
    reasons = {item["file"]: item["reason"] for item in report["rejected"]}
    assert set(reasons) == set(BAD) | {"DUPLICATE.jpg"}  # an exact copy is left out too, and counted so
    for name, word in BAD.items():
        assert word in reasons[name], (name, reasons[name])
    assert reasons["DUPLICATE.jpg"] == "exact copy of 34FK4522.jpg: the first copy was kept"
    assert report["warnings"] == []
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
    assert list(frame["status"].unique()) == ["rejected"] and len(frame) == len(BAD) + 1  # the copy among them
    assert sorted(os.listdir(out)) == ["images", "labels.csv", "report.json"]  # TFRecords: on demand only
    assert "tfrecords" not in report


def test_a_zip_or_folder_brings_its_labels_in_a_csv_or_an_annotation_file(tmp_path: Path) -> None:
    """Photos with camera names and a CSV giving each one's plate text, as a parking system exports
    them: the CSV's labels are used, and every row or photo that cannot be matched is told why."""
    from engine.data.labels import label_from_filename
    from engine.reading.batch import list_photos

    plates = {f"IMG_{1000 + i}.jpg": f"34AB{100 + i}" for i in range(8)}
    source = tmp_path / "camera export.zip"
    with zipfile.ZipFile(source, "w") as zf:
        for i, name in enumerate([*plates, "IMG_1010.jpg"]):
            zf.writestr(f"photos/{name}", jpeg(seed=i))
        zf.writestr("more/PIC1.jpg", jpeg(seed=20))
        zf.writestr("labels.csv", "filename,plate_text\n" + "".join(f"{n},{t}\n" for n, t in plates.items())
                    + "IMG_9999.jpg,34ZZ999\n")  # named without the folder; one photo is missing
        zf.writestr("more/annotations.txt", "PIC1.jpg 06 XY 42\n../photos/IMG_1001.jpg 34AB999\n"
                                            "../photos/IMG_1007.jpg\n")  # a line without its plate text
        zf.writestr("readme.txt", "Exported by the gate camera.\n")

    report = import_dataset(source, tmp_path / "ds")
    labels = {r["original"]: r["label"] for r in DatasetFolder(tmp_path / "ds").rows()}
    assert labels == {**{f"photos/{n}": t for n, t in plates.items() if n not in ("IMG_1001.jpg", "IMG_1007.jpg")},
                      "more/PIC1.jpg": "06 XY 42"}
    reasons = {item["file"]: item["reason"] for item in report["rejected"]}
    assert reasons["IMG_9999.jpg"] == "listed in labels.csv, but there is no such photo"
    assert reasons["photos/IMG_1010.jpg"].startswith("not listed in labels.csv or annotations.txt")
    assert "'34AB101'" in reasons["photos/IMG_1001.jpg"] and "'34AB999'" in reasons["photos/IMG_1001.jpg"]
    assert reasons["readme.txt"].startswith("not an image file")  # text that names no photo is no label file
    assert reasons["photos/IMG_1007.jpg"] == "annotations.txt gives it no plate text"
    assert len(reasons) == 5 and report["labels_from"] == ["labels.csv", "more/annotations.txt"]
    assert report["warnings"] == []

    # the same files in a folder (the command line's import) give the same dataset
    folder = tmp_path / "unzipped"
    zipfile.ZipFile(source).extractall(folder)
    again = import_dataset(folder, tmp_path / "ds-from-folder")
    assert {r["original"]: r["label"] for r in DatasetFolder(tmp_path / "ds-from-folder").rows()} == labels
    assert {item["file"]: item["reason"] for item in again["rejected"]} == reasons
    assert again["labels_from"] == report["labels_from"]

    # a reader (Try it, predict) reads every photo of such a zip: labels there are file names only
    with contextlib.ExitStack() as stack:
        photos = {c.name: c for c in list_photos([source], stack)}
    assert not any(photos[f"photos/{n}"].problem for n in [*plates, "IMG_1010.jpg"])
    assert photos["photos/IMG_1010.jpg"].label == label_from_filename("IMG_1010.jpg")
    assert photos["labels.csv"].problem.startswith("not an image file")


def test_a_csv_without_the_columns_is_named_and_camera_names_are_warned_about(tmp_path: Path) -> None:
    source = tmp_path / "camera.zip"
    with zipfile.ZipFile(source, "w") as zf:
        for i in range(10):
            zf.writestr(f"IMG_{1000 + i}.jpg", jpeg(seed=i))
        zf.writestr("plates.csv", "photo;number\nIMG_1000.jpg;34AB100\n")  # semicolons, other names
    report = import_dataset(source, tmp_path / "ds")
    reasons = {item["file"]: item["reason"] for item in report["rejected"]}
    assert reasons == {"plates.csv": reasons["plates.csv"]} and "image_path,plate_text" in reasons["plates.csv"]
    assert report["labels_from"] == [] and report["accepted"] == 10
    (warning,) = report["warnings"]  # every photo is "IMG": the names are a camera's, not plate text
    assert "10 of the 10 photos got the same label 'IMG'" in warning["reason"]
    assert "file,label" in warning["reason"]


def test_a_label_file_longer_than_a_zip_may_be_is_refused(tmp_path: Path) -> None:
    source = tmp_path / "huge labels.zip"
    with zipfile.ZipFile(source, "w") as zf:
        zf.writestr("IMG_1.jpg", jpeg())
        zf.writestr("labels.csv", "file,label\n" + "".join(f"IMG_{i}.jpg,34AB{i}\n" for i in range(21)))
    with pytest.raises(ImportRefused, match=r"labels.csv lists more than 20 photos; import it in parts"):
        import_dataset(source, tmp_path / "ds", limits=ZipLimits(max_entries=20))
    assert not (tmp_path / "ds").exists()


def test_report_contents(sample_zip: Path, tmp_path: Path) -> None:
    report = import_dataset(sample_zip, tmp_path / "ds", test_fraction=0.25, seed=3)
    assert report["accepted"] == 40 and report["rejected"] == [] and report["warnings"] == []
    assert set(report["charset"]) <= set("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    assert sum(report["char_histogram"].values()) == sum(int(n) * c for n, c in report["label_length_histogram"].items())
    assert 200 <= report["image_size"]["width"]["median"] <= 400
    assert report["test_fraction"] == 0.25 and report["seed"] == 3 and report["max_label_length"] == 16
    assert report["source"] == str(sample_zip) and report["created_at"]
    assert 5 <= report["test"] <= 15 and report["train"] + report["test"] == 40
    rows = DatasetFolder(tmp_path / "ds").rows()
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


def test_failure_midway_leaves_no_half_dataset(sample_zip: Path, tmp_path: Path) -> None:
    def progress(done: int, total: int) -> None:  # e.g. the dashboard's progress bar failing
        if done >= 20:
            raise RuntimeError("the page went away")

    with pytest.raises(RuntimeError, match="went away"):
        import_dataset(sample_zip, tmp_path / "ds", progress=progress)
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
    # rows in the folder's order, each with the name the operator knows; nothing of the import left behind
    with open(tmp_path / "ds" / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(r["original"], r["label"]) for r in rows] == [
        ("34FK4522.jpg", "34FK4522"), ("day 1/34FK4522_1.png", "34FK4522"), ("day 1/cam $(x)/06XY99.jpg", "06XY99")]
    assert all((tmp_path / "ds" / "images" / r["file"]).is_file() for r in rows)
    assert sorted(os.listdir(tmp_path / "ds")) == ["images", "labels.csv", "report.json"]


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


def test_cli_import_takes_big_sets_up_to_max_files(tmp_path: Path) -> None:
    """The command line is the way in for sets bigger than an upload: its file limit is a flag."""
    folder = tmp_path / "plates"
    folder.mkdir()
    for i in range(5):
        (folder / f"AB{i}CD.jpg").write_bytes(jpeg(120, 40, seed=i))
    command = [sys.executable, "-m", "engine", "import", str(folder), "--test-fraction", "0"]
    refused = subprocess.run([*command, "--out", str(tmp_path / "a"), "--max-files", "4"], cwd=ROOT,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2 and "plates holds more than 4 files" in refused.stderr
    taken = subprocess.run([*command, "--out", str(tmp_path / "b"), "--max-files", "5"], cwd=ROOT,
                           capture_output=True, text=True, timeout=120)
    assert taken.returncode == 0 and "Imported 5 images" in taken.stdout, taken.stderr


def test_report_frame_empty() -> None:
    frame = report_frame({"rejected": [], "warnings": []})
    assert list(frame.columns) == ["file", "status", "reason"] and len(frame) == 0


def test_load_report_missing(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="not an imported dataset"):
        load_report(tmp_path)


def test_image_checks_directly() -> None:
    assert images.image_problem(jpeg())[0] is None
    assert "too large" in images.image_problem(png_claiming(100_000, 100_000))[0]
    assert "too large" in images.image_problem(png_claiming(7000, 7000))[0]  # 49 megapixels
    assert "damaged" in images.image_problem(png_claiming(200, 100))[0]  # header fine, pixels missing
    reason = images.image_problem(png_claiming(6324, 6324))[0]  # the 40-megapixel "pixel bomb"
    assert "too large" in reason and "40.0 megapixels" in reason and "16 megapixels" in reason
    assert "damaged" in images.image_problem(png_claiming(4032, 3024))[0]  # a phone photo's size is fine


# --- text from users is text -----------------------------------------------------------------------------
FORMULAS = {"=CMD()|A1.jpg": "=CMD()|A1", "+SUM(1)_1.jpg": "+SUM(1)", "-RF.png": "-RF", "@A1.jpg": "@A1"}


def test_labels_csv_neutralises_formulas(tmp_path: Path) -> None:
    path = tmp_path / "formulas.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i, name in enumerate(FORMULAS):
            zf.writestr(name, encode_image(name, i))
    out = tmp_path / "ds"
    assert import_dataset(path, out, test_fraction=0.0)["accepted"] == len(FORMULAS)
    with open(out / "labels.csv", encoding="utf-8", newline="") as f:
        cells = [cell for row in csv.reader(f) for cell in row]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@"))], cells  # a spreadsheet shows text
    assert "'=CMD()|A1" in cells and "'=CMD()|A1.jpg" in cells  # label and original name
    rows = DatasetFolder(out).rows()
    assert sorted(r["label"] for r in rows) == sorted(FORMULAS.values())  # read back exactly
    assert sorted(r["original"] for r in rows) == sorted(FORMULAS)


def test_invisible_characters_in_labels_are_rejected_with_their_names(tmp_path: Path) -> None:
    names = {"AB\u200b12.jpg": "U+200B ZERO WIDTH SPACE", "\ufeffCD34.jpg": "U+FEFF BYTE ORDER MARK",
             "EF\u00ad56.jpg": "U+00AD SOFT HYPHEN", "GH78\u202egpj.jpg": "U+202E RIGHT-TO-LEFT OVERRIDE"}
    path = tmp_path / "invisible.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("GOOD12.jpg", jpeg(seed=1))
        for i, name in enumerate(names):
            zf.writestr(name, jpeg(seed=10 + i))
    report = import_dataset(path, tmp_path / "ds")
    assert report["accepted"] == 1
    reasons = {item["file"]: item["reason"] for item in report["rejected"]}
    assert set(reasons) == set(names)
    for name, named in names.items():
        assert "invisible characters" in reasons[name] and named in reasons[name], reasons[name]


def test_a_file_name_that_is_not_utf8_is_rejected_not_fatal(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    src.mkdir()
    (src / "GOOD12.jpg").write_bytes(jpeg(seed=1))
    with open(os.path.join(os.fsencode(src), b"\xff\xfeAB12.jpg"), "wb") as f:  # Latin-1 era names
        f.write(jpeg(seed=2))
    os.mkdir(os.path.join(os.fsencode(src), b"caf\xe9"))
    with open(os.path.join(os.fsencode(src), b"caf\xe9", b"CD34.jpg"), "wb") as f:
        f.write(jpeg(seed=3))
    report = import_dataset(src, tmp_path / "ds")
    assert report["accepted"] == 2
    assert report["rejected"] == [{"file": "\\xff\\xfeAB12.jpg", "reason": report["rejected"][0]["reason"]}]
    assert "not valid UTF-8" in report["rejected"][0]["reason"]
    assert sorted(r["original"] for r in DatasetFolder(tmp_path / "ds").rows()) == ["GOOD12.jpg", "caf\\xe9/CD34.jpg"]


def zip_with_raw_names(path: Path, photos: dict[bytes, bytes]) -> None:
    """A zip as Windows' own zip tool writes it: names in the system's code page, no UTF-8 flag
    (Python's zipfile always writes UTF-8, so the names are patched in afterwards)."""
    stand_ins = {raw: b"qwxyzvkj"[i:i + 1] * len(raw) for i, raw in enumerate(photos)}  # same length
    with zipfile.ZipFile(path, "w") as zf:
        for raw, data in photos.items():
            zf.writestr(stand_ins[raw].decode(), data)
    data = path.read_bytes()
    for raw, stand_in in stand_ins.items():
        assert data.count(stand_in) == 2  # the local header and the central directory
        data = data.replace(stand_in, raw)
    path.write_bytes(data)


def test_names_from_chinese_and_korean_windows_keep_their_plate_text(tmp_path: Path) -> None:
    """Windows' zip and Excel's plain CSV on a Chinese (Korean) system write GBK (cp949), not UTF-8:
    the labels are the plates' text, not mojibake (which would train on characters no plate has)."""
    names = {"皖A12345.jpg": "gbk", "京N9Z83C_1.jpg": "gbk", "车牌照片/苏E12345.jpg": "gbk", "12가3456.jpg": "cp949",
             "MÜ1234.jpg": "cp437", "MÜAB123.jpg": "cp437", "AB12CD.jpg": "ascii"}
    upload = tmp_path / "plates.zip"
    zip_with_raw_names(upload, {name.encode(enc): jpeg(seed=i) for i, (name, enc) in enumerate(names.items())})
    report = import_dataset(upload, tmp_path / "from-zip")
    rows = DatasetFolder(tmp_path / "from-zip").rows()
    assert report["accepted"] == 7 and not report["rejected"]
    assert sorted((r["original"], r["label"]) for r in rows) == sorted(
        [("皖A12345.jpg", "皖A12345"), ("京N9Z83C_1.jpg", "京N9Z83C"), ("车牌照片/苏E12345.jpg", "苏E12345"),
         ("12가3456.jpg", "12가3456"), ("MÜ1234.jpg", "MÜ1234"), ("MÜAB123.jpg", "MÜAB123"),
         ("AB12CD.jpg", "AB12CD")])

    # the same photos unzipped byte for byte into a folder (`unzip` keeps the bytes it finds)
    folder = os.fsencode(tmp_path / "unzipped")
    os.mkdir(folder)
    for i, (name, enc) in enumerate(names.items()):
        path = os.path.join(folder, name.encode(enc if enc != "cp437" else "utf-8"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(jpeg(seed=i))
    import_dataset(Path(os.fsdecode(folder)), tmp_path / "from-folder")
    unzipped = DatasetFolder(tmp_path / "from-folder").rows()
    assert sorted((r["original"], r["label"]) for r in unzipped) == sorted((r["original"], r["label"]) for r in rows)

    # Excel's plain "CSV" on a Chinese system, beside photos named in UTF-8
    (tmp_path / "csv").mkdir()
    for i, name in enumerate(["皖A12345.jpg", "AB12CD.jpg"]):
        (tmp_path / "csv" / name).write_bytes(jpeg(seed=i))
    table = tmp_path / "csv" / "labels.csv"
    table.write_bytes("image_path,plate_text\n皖A12345.jpg,皖A12345\nAB12CD.jpg,AB12CD\n".encode("gbk"))
    import_dataset(table, tmp_path / "from-csv")
    assert sorted(r["label"] for r in DatasetFolder(tmp_path / "from-csv").rows()) == ["AB12CD", "皖A12345"]

    # bytes that are plate text in no code page are not guessed at: the file is named and the way out given
    table.write_bytes("image_path,plate_text\n车牌.jpg,皖A12345\n".encode("gbk"))
    with pytest.raises(ValueError, match=r"labels.csv is not a UTF-8 text file .*CSV UTF-8"):
        import_dataset(table, tmp_path / "from-bad-csv")


def test_cli_prints_file_names_escaped(tmp_path: Path) -> None:
    src = tmp_path / "photos"
    src.mkdir()
    (src / "GOOD12.jpg").write_bytes(jpeg(seed=1))
    (src / "AB12_\x1b]0;pwned\x07.jpg").write_bytes(b"not a picture")  # a terminal title escape
    (src / "CD34_\x1b[2J\r.jpg").write_bytes(b"not a picture")  # clear screen, carriage return
    result = subprocess.run([sys.executable, "-m", "engine", "import", str(src), "--out", str(tmp_path / "ds")],
                            cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\r" not in result.stdout and "\x07" not in result.stdout
    assert "rejected AB12_\\x1b]0;pwned\\x07.jpg: not an image" in result.stdout
    assert "rejected CD34_\\x1b[2J\\x0d.jpg: not an image" in result.stdout


# --- the split fingerprint ---------------------------------------------------------------------------------
def test_split_fingerprint_follows_the_split_not_the_labels(sample_zip: Path, tmp_path: Path) -> None:
    dataset = DatasetFolder(tmp_path / "ds")
    import_dataset(sample_zip, dataset.path)
    rows = dataset.rows()
    first = dataset.split_fingerprint()
    assert len(first) == 16 and first == dataset.split_fingerprint()

    dataset.write_rows([{**rows[0], "label": "CORRECTED1"}] + rows[1:])  # a label correction
    assert dataset.split_fingerprint() == first
    dataset.write_rows([{**r, "digest": ""} for r in rows])  # an older dataset: hashed from the photos
    assert dataset.split_fingerprint() == first
    moved = {**rows[0], "split": "test" if rows[0]["split"] == "train" else "train"}
    dataset.write_rows([moved] + rows[1:])
    assert dataset.split_fingerprint() != first
    dataset.write_rows([{**r, "digest": ""} for r in rows])
    dataset.image_path(rows[0]["file"]).write_bytes(jpeg(seed=99))  # same name, another photo
    assert dataset.split_fingerprint() != first


def test_dataset_rows_refuse_names_outside_images(tmp_path: Path) -> None:
    dataset = DatasetFolder(tmp_path)
    for name in ("../../etc/passwd", "/etc/passwd", "..", "a\\b"):
        with pytest.raises(ValueError, match="outside images"):
            dataset.image_path(name)


# --- no TensorFlow, small memory -------------------------------------------------------------------------
IMPORT_PROBE = r"""
import json, sys
from pathlib import Path
sys.path.insert(0, sys.argv[1])

def peak_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024

from dashboard.data import run_import
loaded = peak_mb()  # the dashboard's own libraries (Streamlit, pandas, plotly), before any photo
run_import(Path(sys.argv[2]), "warm")  # small photos: whatever an import loads once (codecs, modules, arenas)
warm = peak_mb()
report = run_import(Path(sys.argv[3]), "big")
print(json.dumps({"accepted": report["accepted"], "tensorflow": "tensorflow" in sys.modules,
                  "keras": "keras" in sys.modules, "loaded_mb": loaded, "warm_up_mb": warm - loaded,
                  "growth_mb": peak_mb() - warm}))
"""


def test_an_import_from_the_dashboard_loads_no_tensorflow_and_stays_small(tmp_path: Path) -> None:
    small, big = tmp_path / "small.zip", tmp_path / "big.zip"
    with zipfile.ZipFile(small, "w") as zf:
        for i in range(6):
            zf.writestr(f"XY{i}CD.jpg", jpeg(160, 40, seed=i))
    with zipfile.ZipFile(big, "w") as zf:
        for i in range(6):
            zf.writestr(f"AB{i}CD.jpg", jpeg(3000, 2000, seed=i))  # 18 MB each once decoded in colour, 108 MB all
    env = {**os.environ, "PLATE_STUDIO_HOME": str(tmp_path / "home")}
    result = subprocess.run([sys.executable, "-c", IMPORT_PROBE, str(ROOT), str(small), str(big)], env=env,
                            cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    assert seen["accepted"] == 6
    assert not seen["tensorflow"] and not seen["keras"]
    # Each import worker holds one photo's file bytes (3.4 MB here) and decodes it shrunk: 7 MB over the warm-up
    # with 2 workers, 13 MB with 4. Decoded at full size in colour, each worker would hold 18 MB more; with
    # TensorFlow writing TFRecords an import took ~600 MB.
    assert seen["growth_mb"] < 30, seen


# --- leftovers ----------------------------------------------------------------------------------------------
def test_clean_leftovers_removes_only_dead_and_old_ones(studio_home: Path) -> None:
    datasets, uploads = studio_home / "datasets", studio_home / "uploads"
    old = time.time() - 3600
    made = {}
    for name in ("datasets/.plates.importing-0123abcd", "datasets/.plates.old-89abcdef", "uploads/upload-x1y2z3",
                 "datasets/.busy.importing-00000000", "datasets/.young.importing-11111111", "datasets/plates",
                 "datasets/.sample-zip-abc"):
        made[name] = studio_home / name
        (made[name] / "images").mkdir(parents=True)
        (made[name] / "images" / "A.jpg").write_bytes(b"x")
        if "young" not in name:
            os.utime(made[name], (old, old))
    (datasets / ".sample.lock").write_text("")
    with FolderClaim(made["datasets/.busy.importing-00000000"]):  # an import still writing it
        removed = clean_leftovers()
    assert sorted(p.relative_to(studio_home).as_posix() for p in removed) == [
        "datasets/.plates.importing-0123abcd", "datasets/.plates.old-89abcdef", "uploads/upload-x1y2z3"]
    assert sorted(os.listdir(datasets)) == [".busy.importing-00000000", ".sample-zip-abc", ".sample.lock",
                                            ".young.importing-11111111", "plates"]
    assert os.listdir(uploads) == []
    assert sorted(p.name for p in clean_leftovers(min_age=0)) == [".busy.importing-00000000", ".young.importing-11111111"]
    assert [p.name for p in clean_leftovers(datasets, min_age=0)] == []


# --- decoding within bounded memory (engine.data.images, used by training, the reader and predict) -------
def test_decode_gray_matches_opencv_and_refuses_before_allocating() -> None:
    data = jpeg(400, 300, seed=4)
    assert np.array_equal(images.decode_gray(data), cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_GRAYSCALE))
    color = image(120, 40, seed=5)
    assert np.array_equal(images.decode_gray(color), cv2.cvtColor(color, cv2.COLOR_BGR2GRAY))
    started = time.perf_counter()
    with pytest.raises(ValueError, match=r"too large .*16 megapixels"):
        images.decode_gray(png_claiming(20_000, 20_000))  # decoding it would take 400 MB
    assert time.perf_counter() - started < 0.5
    for bad, words in ((b"", "empty"), (b"GIF89a" + bytes(20), "GIF files are not supported"),
                       (b"<html>", "not an image"), (jpeg(seed=1)[:200], "damaged"), (png_claiming(200, 100), "damaged")):
        with pytest.raises(ValueError, match=words):
            images.decode_gray(bad)
    with pytest.raises(ValueError, match="too large"):
        images.decode_to_fit(np.zeros((5000, 5000), np.uint8), 32, 128)


@pytest.mark.parametrize("width, height, box, expected", [
    (4000, 3000, (32, 128), (32, 43)),  # much larger: reduced decode, then resized
    (1000, 100, (32, 128), (13, 128)),  # wide: the width binds
    (100, 40, (64, 256), (40, 100)),  # smaller than the box: never upscaled
    (300, 200, (200, 300), (200, 300)),  # exactly the box
])
def test_decode_to_fit_keeps_the_aspect_ratio_within_the_box(width: int, height: int, box: tuple, expected: tuple) -> None:
    for data in (jpeg(width, height, seed=6), png(width, height, seed=6)):
        small = images.decode_to_fit(data, *box)
        assert small.dtype == np.uint8 and small.shape == expected, (small.shape, expected)
        reference = cv2.resize(images.decode_gray(data), expected[::-1], interpolation=cv2.INTER_AREA)
        assert np.abs(small.astype(int) - reference.astype(int)).mean() < 4  # the same picture


def test_decode_to_fit_follows_exif_rotation() -> None:
    import io

    from PIL import Image

    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    buffer = io.BytesIO()
    Image.fromarray(image(2000, 400, seed=7)[:, :, ::-1]).save(buffer, "JPEG", exif=exif)
    data = buffer.getvalue()
    assert images.decode_gray(data).shape == (2000, 400)  # shown upright, as OpenCV decodes it
    assert images.decode_to_fit(data, 256, 256).shape == (256, 51)


FIT_PROBE = r"""
import json, sys
sys.path.insert(0, sys.argv[1])
from engine.data.images import decode_gray, decode_to_fit
data = open(sys.argv[2], "rb").read()

def peak_growth(decode):
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak (VmHWM) starts again from the current RSS
    status = lambda key: next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key + ":"))
    before = status("VmRSS")
    decode()
    return (status("VmHWM") - before) / 1024

decode_gray(data)  # warm up the codec
print(json.dumps({"fit": peak_growth(lambda: decode_to_fit(data, 64, 256)), "full": peak_growth(lambda: decode_gray(data))}))
"""


def test_decode_to_fit_never_holds_the_full_photo(tmp_path: Path) -> None:
    """A 12-megapixel JPEG: decode_gray needs 12 MB for its pixels, decode_to_fit a 1/8 of each side."""
    path = tmp_path / "big.jpg"
    path.write_bytes(cv2.imencode(".jpg", cv2.resize(image(400, 300, seed=8), (4000, 3000)))[1].tobytes())
    result = subprocess.run([sys.executable, "-c", FIT_PROBE, str(ROOT), str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    peaks = json.loads(result.stdout)
    assert peaks["full"] > 11 and peaks["fit"] < 4, peaks
