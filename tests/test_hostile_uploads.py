"""Hostile uploads through engine.data.importer.import_dataset (what the dashboard's Data page calls).

tests/test_import.py and tests/test_safezip.py already cover the basic cases (one `../`, one absolute
path, a symlink member, a PNG claiming 100000x100000, two truncations, a zip bomb and 100k entries
at the safezip level). This file adds the cases an attacker or an unlucky operator would try next,
pixel bombs that pass every archive check included (entries sharing one tiny 40-megapixel PNG,
hundreds of real 16-megapixel ones), each imported in a real subprocess that measures, per case:

* a clear message (a refusal is an ImportRefused/UnsafeArchive naming the upload, no traceback);
* bounded memory: the peak RSS growth during the import (VmHWM reset through /proc/self/clear_refs)
  stays under MAX_MB;
* bounded time: under MAX_SECONDS;
* nothing written outside the dataset folder: the whole temp tree is snapshotted before and after;
* and the import never loads TensorFlow.
"""
from __future__ import annotations

import io
import json
import os
import stat
import struct
import subprocess
import sys
import uuid
import zipfile
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_MB = 150
MAX_SECONDS = 20
ESCAPE_DIR = Path(f"/tmp/plate-escape-{uuid.uuid4().hex[:10]}")  # absolute entries aim here


# --- files ---------------------------------------------------------------------------------------
def picture(w: int = 120, h: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), (5, 5), 0)


def jpeg(w: int = 120, h: int = 40, seed: int = 0, progressive: bool = False) -> bytes:
    params = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1] if progressive else []
    return cv2.imencode(".jpg", picture(w, h, seed), params)[1].tobytes()


def png(w: int = 120, h: int = 40, seed: int = 0) -> bytes:
    return cv2.imencode(".png", picture(w, h, seed))[1].tobytes()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int, extra: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + extra + _chunk(b"IDAT", zlib.compress(b"\0" * 64))
            + _chunk(b"IEND", b""))


def png_text_bomb() -> bytes:
    """A 120x40 PNG header followed by a zTXt chunk that inflates to 64 MiB (Pillow allows 1 MiB)."""
    bomb = zlib.compress(bytes(64 * 1024 * 1024), 9)
    return png_claiming(120, 40, _chunk(b"zTXt", b"Comment\0\0" + bomb))


def jpeg_claiming(width: int, height: int) -> bytes:
    data = bytearray(jpeg(64, 32))
    sof = data.index(b"\xff\xc0")
    data[sof + 5 : sof + 9] = struct.pack(">HH", height, width)
    return bytes(data)


def jpeg_header_only(width: int, height: int) -> bytes:
    """SOI, the tables and a frame header claiming width x height, then nothing (a cut-off download)."""
    data = jpeg_claiming(width, height)
    return data[: data.index(b"\xff\xda")]


def bmp_claiming(width: int, height: int) -> bytes:
    header = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 2835, 2835, 0, 0)
    pixels = b"\0" * 64
    return b"BM" + struct.pack("<IHHI", 14 + len(header) + len(pixels), 0, 0, 14 + len(header)) + header + pixels


def webp_claiming(width: int, height: int) -> bytes:
    vp8x = bytes([0, 0, 0, 0]) + (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    body = b"WEBP" + b"VP8X" + struct.pack("<I", len(vp8x)) + vp8x
    return b"RIFF" + struct.pack("<I", len(body)) + body


def symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def write_zip(path: Path, members: dict, compression: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


# --- the cases: name -> builder(folder) returning the source to import ----------------------------
def case_paths(folder: Path) -> Path:
    return write_zip(folder / "paths.zip", {
        "AB12CD.jpg": jpeg(seed=1),
        "sub/dir/XY34ZZ.png": png(seed=2),
        "../../../../../../slip1.jpg": jpeg(seed=3),
        "a/b/../../../slip2.jpg": jpeg(seed=4),
        "./../slip3.jpg": jpeg(seed=5),
        "..\\..\\slip4.jpg": jpeg(seed=6),
        f"{ESCAPE_DIR}/abs1.jpg": jpeg(seed=7),
        "C:\\Windows\\abs2.jpg": jpeg(seed=8),
        "C:/abs3.jpg": jpeg(seed=9),
        "\\\\server\\share\\abs4.jpg": jpeg(seed=10),
        "//abs5.jpg": jpeg(seed=11),
    })


def case_symlinks(folder: Path) -> Path:
    return write_zip(folder / "links.zip", {
        "GOOD12.jpg": jpeg(seed=1),
        symlink_info("LINK1.jpg"): "/etc/passwd",
        symlink_info("LINK2.jpg"): "../../../../etc/shadow",
        symlink_info("linkdir"): "/",
        "linkdir/GOOD34.jpg": jpeg(seed=2),  # just a name: the importer never extracts by path
    })


def case_folder_symlinks(folder: Path) -> Path:
    """A folder source (CLI import) with links to secrets, devices, fifos, loops and a link to '/'."""
    src = folder / "photos"
    src.mkdir()
    (src / "GOOD12.jpg").write_bytes(jpeg(seed=1))
    (src / "PASSWD1.jpg").symlink_to("/etc/passwd")
    (src / "ZERO1.jpg").symlink_to("/dev/zero")
    (src / "URANDOM1.jpg").symlink_to("/dev/urandom")
    os.mkfifo(src / "FIFO1.jpg")
    (src / "LOOP1.jpg").symlink_to(src / "LOOP1.jpg")
    (src / "DANGLING1.jpg").symlink_to(src / "nowhere.jpg")
    (src / "root").symlink_to("/")
    return src


def case_zip_bomb(folder: Path) -> Path:
    path = folder / "bomb.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("GOOD12.jpg", jpeg(seed=1))
        with zf.open("BOMB1.jpg", "w") as f:
            chunk = bytes(16 * 1024 * 1024)
            for _ in range(16):  # 256 MiB of zeros in ~250 KiB
                f.write(chunk)
    return path


def case_lying_bomb(folder: Path) -> Path:
    """A member whose headers say 1000 bytes but whose stream inflates to 64 MiB."""
    path = folder / "liar.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("GOOD12.jpg", jpeg(seed=1))
        zf.writestr("LIAR1.jpg", bytes(64 * 1024 * 1024))
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("LIAR1.jpg")
    real = struct.pack("<I", info.file_size)
    local = info.header_offset
    assert raw[local + 22 : local + 26] == real
    raw[local + 22 : local + 26] = struct.pack("<I", 1000)
    pos = raw.index(b"LIAR1.jpg", raw.index(b"PK\x01\x02"))  # the central record's name
    start = pos - 46
    assert raw[start : start + 4] == b"PK\x01\x02" and raw[start + 24 : start + 28] == real
    raw[start + 24 : start + 28] = struct.pack("<I", 1000)
    path.write_bytes(bytes(raw))
    return path


def case_many_small_bombs(folder: Path) -> Path:
    """300 members of exactly 1 MiB of zeros: each under the ratio check's size floor."""
    path = folder / "many-zeros.zip"
    one = bytes(1024 * 1024)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        zf.writestr("GOOD12.jpg", jpeg(seed=1))
        for i in range(300):
            zf.writestr(f"Z{i:03d}.jpg", one)
    return path


_HUNDRED_THOUSAND: list[bytes] = []


def _hundred_thousand(path: Path) -> Path:
    if not _HUNDRED_THOUSAND:  # built once, copied for the second case
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zf:
            for i in range(100_000):
                zf.writestr(zipfile.ZipInfo(f"A{i}.jpg"), b"")
        _HUNDRED_THOUSAND.append(buffer.getvalue())
    path.write_bytes(_HUNDRED_THOUSAND[0])
    return path


def case_100k_entries(folder: Path) -> Path:
    return _hundred_thousand(folder / "many.zip")


def case_100k_entries_lying_count(folder: Path) -> Path:
    """100,000 entries, but the (zip64) end record claims 3: the real directory is still counted."""
    path = _hundred_thousand(folder / "many-liar.zip")
    raw = bytearray(path.read_bytes())
    pos = raw.rindex(b"PK\x06\x06")
    assert struct.unpack("<Q", raw[pos + 32 : pos + 40])[0] == 100_000
    raw[pos + 24 : pos + 40] = struct.pack("<QQ", 3, 3)
    path.write_bytes(bytes(raw))
    return path


def case_not_zip_png(folder: Path) -> Path:
    path = folder / "holiday photos.zip"
    path.write_bytes(png(seed=1))
    return path


def case_not_zip_empty(folder: Path) -> Path:
    path = folder / "empty.zip"
    path.write_bytes(b"")
    return path


def case_not_zip_truncated(folder: Path) -> Path:
    full = write_zip(folder / "full.zip", {f"AB{i}CD.jpg": jpeg(seed=i) for i in range(10)})
    path = folder / "cut-off.zip"
    path.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    full.unlink()
    return path


def case_not_zip_corrupt_directory(folder: Path) -> Path:
    path = write_zip(folder / "scrambled.zip", {f"AB{i}CD.jpg": jpeg(seed=i) for i in range(5)})
    raw = bytearray(path.read_bytes())
    start = raw.index(b"PK\x01\x02")
    end = raw.rindex(b"PK\x05\x06")
    raw[start:end] = os.urandom(end - start)
    path.write_bytes(bytes(raw))
    return path


def case_huge_dimensions(folder: Path) -> Path:
    return write_zip(folder / "huge.zip", {
        "GOOD12.jpg": jpeg(seed=1),
        "PNG60K.png": png_claiming(60_000, 60_000),
        "JPEG60K.jpg": jpeg_claiming(60_000, 60_000),
        "JPEGMAX.jpg": jpeg_claiming(65_535, 65_535),
        "PNG8K.png": png_claiming(8_000, 8_000),
        "BMP60K.bmp": bmp_claiming(60_000, 60_000),
        "WEBP16K.webp": webp_claiming(16_383, 16_383),
        "PNGTEXT.png": png_text_bomb(),
    })


def flat_png(width: int, height: int) -> bytes:
    """A valid, all-black PNG: width x height pixels in a few KiB (a 'pixel flood')."""
    return cv2.imencode(".png", np.zeros((height, width), np.uint8), [cv2.IMWRITE_PNG_COMPRESSION, 9])[1].tobytes()


def case_pixel_flood(folder: Path) -> Path:
    """A valid PNG just under the limits (4000x4000, 16 megapixels), and one of 40 megapixels."""
    return write_zip(folder / "flood.zip", {"FLOOD1.png": flat_png(4000, 4000), "FLOOD2.png": flat_png(6324, 6324),
                                            "GOOD12.jpg": jpeg(seed=1)})


def case_shared_pixel_bomb(folder: Path) -> Path:
    """The probe's zip: 200 directory entries all pointing at one ~400-byte deflated 40-megapixel
    PNG (10 KB in all; it took 38 s of CPU to import), plus one good photo."""
    path = write_zip(folder / "shared.zip", {"BOMB1.png": flat_png(6324, 6324), "GOOD12.jpg": jpeg(seed=1)})
    raw = path.read_bytes()
    start, end = raw.index(b"PK\x01\x02"), raw.index(b"PK\x05\x06")
    bomb_record = raw[start : raw.index(b"PK\x01\x02", start + 4)]
    central = bomb_record * 200 + raw[start + len(bomb_record) : end]
    record = bytearray(raw[end:])
    record[8:16] = struct.pack("<HHI", 201, 201, len(central))
    path.write_bytes(raw[:start] + central + bytes(record))
    return path


def case_separate_40mp(folder: Path) -> Path:
    """200 separate copies of the 40-megapixel PNG: no overlap, each refused from its header."""
    bomb = flat_png(6324, 6324)
    return write_zip(folder / "forty.zip", {"GOOD12.jpg": jpeg(seed=1), **{f"B{i:03d}.png": bomb for i in range(200)}})


BUDGET = 200_000_000  # pixels: the budget case imports with 12 photos' worth instead of 10 gigapixels


def case_pixel_budget(folder: Path) -> Path:
    """2,000 separate 16-megapixel PNGs (0.7 MB zip): under every per-file limit, 32 gigapixels in all."""
    flood = flat_png(4000, 4000)
    return write_zip(folder / "budget.zip", {"GOOD12.jpg": jpeg(seed=1), **{f"F{i:04d}.png": flood for i in range(2000)}})


def case_truncated(folder: Path) -> Path:
    j, p, pj = jpeg(600, 200, 1), png(600, 200, 2), jpeg(600, 200, 3, progressive=True)
    return write_zip(folder / "truncated.zip", {
        "GOOD12.jpg": jpeg(seed=9),
        "HALF1.jpg": j[: len(j) // 2],
        "NOEOI1.jpg": j[:-2],
        "HALF2.png": p[: len(p) // 2],
        "NOIEND2.png": p[:-12],
        "PROG3.jpg": pj[: int(len(pj) * 0.9)],
        "HEADER4.jpg": jpeg_header_only(4000, 3000),
        "MAGIC5.jpg": b"\xff\xd8\xff",
        "MAGIC6.png": b"\x89PNG\r\n\x1a\n",
    })


GOOD_NAMES = {  # member name -> label
    "皖A12345.jpg": "皖A12345",
    "京B6789.jpg": "京B6789",
    "مصر١٢٣.jpg": "مصر١٢٣",
    "שלום12.jpg": "שלום12",
    "Москва77.jpg": "МОСКВА77",
    "नमस्ते12.jpg": "नमस्ते12",
    "🚗🚓12.jpg": "🚗🚓12",
    "AB 12 CD.jpg": "AB 12 CD",
    "$(touch PWNED).jpg": "$(TOUCH PWNED)",
    "`touch PWNED2`.jpg": "`TOUCH PWNED2`",
    "a;rm -rf ~.jpg": "A;RM -RF ~",
    "x|y&z>w.jpg": "X|Y&Z>W",
    "'q' \"dq\".jpg": "'Q' \"DQ\"",
    "-rf.jpg": "-RF",
    "%s%n%x.jpg": "%S%N%X",
    "CON.jpg": "CON",
    "nul.png": "NUL",
    "E\u0301X1.jpg": "\u00c9X1",  # NFD, stored and labelled NFC
    "\u00c9X1.jpg": "\u00c9X1",  # the same label in NFC (different photo)
    "ab12.jpg": "AB12",
    "AB12.jpg": "AB12",  # same name but for case: both kept under unique file names
    "d/" * 60 + "DEEP12.jpg": "DEEP12",
    "=CMD()|A1.jpg": "=CMD()|A1",  # a spreadsheet formula: stored as text
    "@SUM(A1).jpg": "@SUM(A1)",
}
BAD_NAMES = {  # member name -> a word of the reason
    "NEW\nLINE.jpg": "control characters",
    "TAB\tX.jpg": "control characters",
    "A" * 250 + ".jpg": "more than the maximum",
    "AB12\u202eGPJ.jpg": "U+202E RIGHT-TO-LEFT OVERRIDE",  # a label that displays reversed
    "\u2066XY12\u2069.jpg": "U+2066 LEFT-TO-RIGHT ISOLATE",  # bidi isolates
    "👨\u200d👩\u200d👧12.jpg": "U+200D ZERO WIDTH JOINER",
    "ZW\u200bSP12.jpg": "U+200B ZERO WIDTH SPACE",  # looks exactly like ZWSP12
    "\ufeffBOM12.jpg": "U+FEFF BYTE ORDER MARK",
    "SOFT\u00adHY12.jpg": "U+00AD SOFT HYPHEN",
}


def case_names(folder: Path) -> Path:
    members = {name: jpeg(seed=i) for i, name in enumerate(GOOD_NAMES)}
    members.update({name: jpeg(seed=100 + i) for i, name in enumerate(BAD_NAMES)})
    return write_zip(folder / "names €$&;.zip", members)


CASES = {
    "paths": case_paths,
    "symlinks": case_symlinks,
    "folder_symlinks": case_folder_symlinks,
    "zip_bomb": case_zip_bomb,
    "lying_bomb": case_lying_bomb,
    "many_small_bombs": case_many_small_bombs,
    "100k_entries": case_100k_entries,
    "100k_entries_lying_count": case_100k_entries_lying_count,
    "not_zip_png": case_not_zip_png,
    "not_zip_empty": case_not_zip_empty,
    "not_zip_truncated": case_not_zip_truncated,
    "not_zip_corrupt_directory": case_not_zip_corrupt_directory,
    "huge_dimensions": case_huge_dimensions,
    "pixel_flood": case_pixel_flood,
    "shared_pixel_bomb": case_shared_pixel_bomb,
    "separate_40mp": case_separate_40mp,
    "pixel_budget": case_pixel_budget,
    "truncated": case_truncated,
    "names": case_names,
}


# --- the subprocess: import every case, measure each ----------------------------------------------
CHILD = r"""
import json, os, sys, time
sys.path.insert(0, sys.argv[1])
import cv2, numpy, PIL.Image  # noqa: F401  (loaded before any measurement)
from engine.data.importer import import_dataset

def status_kb(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])

results = {}
for case in json.loads(sys.stdin.read()):
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak RSS (VmHWM) to the current RSS
    before = status_kb("VmRSS")
    started = time.perf_counter()
    out = {}
    try:
        report = import_dataset(case["source"], case["out"], **case.get("options", {}))
        out["report"] = {k: report[k] for k in ("accepted", "rejected", "warnings", "skipped")}
    except BaseException as exc:
        out["error"] = [c.__name__ for c in type(exc).__mro__]
        out["message"] = str(exc)
    out["seconds"] = time.perf_counter() - started
    out["peak_mb"] = (status_kb("VmHWM") - before) / 1024
    results[case["name"]] = out
results["tensorflow loaded"] = "tensorflow" in sys.modules
print("RESULTS " + json.dumps(results))
"""


def snapshot(root: Path) -> dict[str, tuple]:
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(folder) / name
            st = path.lstat()
            out[path.relative_to(root).as_posix()] = (st.st_mode, st.st_size, st.st_mtime_ns)
    return out


@pytest.fixture(scope="module")
def outcome(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("hostile")
    uploads, home, cwd = root / "uploads", root / "home", root / "cwd"
    for folder in (uploads, home / "datasets", cwd):
        folder.mkdir(parents=True)
    cases = []
    for name, build in CASES.items():
        folder = uploads / name
        folder.mkdir()
        options = {"max_total_pixels": BUDGET} if name == "pixel_budget" else {}
        cases.append({"name": name, "source": str(build(folder)), "out": str(home / "datasets" / name), "options": options})
    before = snapshot(root)
    env = {**os.environ, "PLATE_STUDIO_HOME": str(home), "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run([sys.executable, "-c", CHILD, str(ROOT)], input=json.dumps(cases), cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULTS ")]
    assert proc.returncode == 0 and lines, proc.stderr[-4000:]
    after = snapshot(root)
    return {"root": root, "home": home, "cwd": cwd, "results": json.loads(lines[-1][8:]),
            "before": before, "after": after, "cases": {c["name"]: c for c in cases}}


def reasons(result: dict) -> dict[str, str]:
    return {item["file"]: item["reason"] for item in result["report"]["rejected"]}


def assert_refused(result: dict, names: str | tuple, *words: str) -> None:
    """Refused as a whole with a short message that names the upload (or the guilty member)."""
    assert "error" in result, result
    assert "UnsafeArchive" in result["error"] and "ValueError" in result["error"], result
    message = result["message"]
    names = (names,) if isinstance(names, str) else names
    assert any(Path(n).name in message for n in names), (names, message)
    assert "Traceback" not in message and "\n" not in message and len(message) < 400, message
    for word in words:
        assert word in message, (word, message)


# --- every case: bounded, contained ---------------------------------------------------------------
@pytest.mark.parametrize("name", list(CASES))
def test_every_case_is_bounded_and_writes_only_its_dataset_folder(outcome: dict, name: str) -> None:
    result = outcome["results"][name]
    assert result["seconds"] < MAX_SECONDS, result
    assert result["peak_mb"] < MAX_MB, result
    prefix = f"home/datasets/{name}"
    changed = {p for p in set(outcome["before"]) | set(outcome["after"])
               if outcome["before"].get(p) != outcome["after"].get(p)}
    outside = {p for p in changed if p != prefix and not p.startswith(prefix + "/")
               and not any(p == f"home/datasets/{c}" or p.startswith(f"home/datasets/{c}/") for c in CASES)}
    assert outside <= {"home/datasets"}, sorted(outside)[:20]  # the folder's own mtime, nothing else
    assert not [n for n in os.listdir(outcome["home"] / "datasets") if n.startswith(".")], "temp folder left"
    dataset = outcome["home"] / "datasets" / name
    if "error" in result:
        assert not dataset.exists(), "a refused import must leave no dataset folder"
    else:
        for path in dataset.rglob("*"):
            assert not path.is_symlink(), path
            assert path.resolve().is_relative_to(dataset.resolve()), path
    assert not ESCAPE_DIR.exists()
    assert os.listdir(outcome["cwd"]) == [], "something was written in the working directory"


# --- what each case says ----------------------------------------------------------------------------
def test_zip_slip_and_absolute_paths(outcome: dict) -> None:
    result = outcome["results"]["paths"]
    assert result["report"]["accepted"] == 2
    got = reasons(result)
    assert len(got) == 9
    for name, reason in got.items():
        assert any(w in reason for w in ("outside", "absolute", "backslash")), (name, reason)
    root = outcome["root"]
    assert not any(p.name.startswith(("slip", "abs")) for p in root.rglob("*") if "uploads" not in p.parts)


def test_symlink_members_are_rejected(outcome: dict) -> None:
    result = outcome["results"]["symlinks"]
    assert result["report"]["accepted"] == 2  # GOOD12 and linkdir/GOOD34 (a plain name, never a path)
    got = reasons(result)
    assert set(got) == {"LINK1.jpg", "LINK2.jpg", "linkdir"}
    assert all("symbolic link" in r or "not an image" in r for r in got.values()), got


def test_folder_with_links_devices_and_fifos(outcome: dict) -> None:
    result = outcome["results"]["folder_symlinks"]
    assert result["report"]["accepted"] == 1
    got = reasons(result)
    assert "not an image" in got["PASSWD1.jpg"]  # read, found not to be a picture, never copied
    assert got["ZERO1.jpg"] == got["URANDOM1.jpg"] == got["FIFO1.jpg"] == "not a file"
    assert "cannot be opened" in got["LOOP1.jpg"] and got["DANGLING1.jpg"] == "file not found"
    assert not any(k.startswith("root/") for k in got)  # a link to '/' is not walked into
    images = outcome["home"] / "datasets" / "folder_symlinks" / "images"
    assert len(list(images.iterdir())) == 1


def test_zip_bomb_is_refused_from_the_header(outcome: dict) -> None:
    result = outcome["results"]["zip_bomb"]
    assert_refused(result, "BOMB1.jpg", "zip bomb", "256.0 MiB")
    assert result["seconds"] < 2 and result["peak_mb"] < 50


def test_bomb_with_lying_headers_is_stopped_while_reading(outcome: dict) -> None:
    """Headers say 1000 bytes, the stream inflates to 64 MiB: reading stops at 1000 (CRC mismatch)."""
    result = outcome["results"]["lying_bomb"]
    assert result["report"]["accepted"] == 1
    assert "damaged" in reasons(result)["LIAR1.jpg"]
    assert result["peak_mb"] < 50


def test_many_one_mib_members_stay_within_memory(outcome: dict) -> None:
    result = outcome["results"]["many_small_bombs"]
    assert result["report"]["accepted"] == 1
    assert len(result["report"]["rejected"]) == 300
    assert all("not an image" in r["reason"] for r in result["report"]["rejected"])


@pytest.mark.parametrize("name", ["100k_entries", "100k_entries_lying_count"])
def test_100k_entries_refused(outcome: dict, name: str) -> None:
    result = outcome["results"][name]
    assert_refused(result, outcome["cases"][name]["source"], "100,000 entries", "at most 50,000")
    if name == "100k_entries":
        assert result["seconds"] < 1 and result["peak_mb"] < 20  # from the end record alone


@pytest.mark.parametrize("name", ["not_zip_png", "not_zip_empty", "not_zip_truncated", "not_zip_corrupt_directory"])
def test_not_a_zip(outcome: dict, name: str) -> None:
    result = outcome["results"][name]
    assert_refused(result, outcome["cases"][name]["source"], "zip")
    assert "not a zip file" in result["message"] or "not a readable zip" in result["message"]


def test_images_claiming_huge_dimensions(outcome: dict) -> None:
    result = outcome["results"]["huge_dimensions"]
    assert result["report"]["accepted"] == 1
    got = reasons(result)
    assert set(got) == {"PNG60K.png", "JPEG60K.jpg", "JPEGMAX.jpg", "PNG8K.png", "BMP60K.bmp", "WEBP16K.webp", "PNGTEXT.png"}
    for name in ("PNG60K.png", "JPEG60K.jpg", "JPEGMAX.jpg", "PNG8K.png", "BMP60K.bmp"):
        assert "too large" in got[name], (name, got[name])
    assert "too large" in got["WEBP16K.webp"] or "damaged" in got["WEBP16K.webp"], got["WEBP16K.webp"]
    assert "damaged" in got["PNGTEXT.png"] or "too large" in got["PNGTEXT.png"], got["PNGTEXT.png"]


def test_pixel_flood_under_the_limits_is_accepted_within_memory(outcome: dict) -> None:
    result = outcome["results"]["pixel_flood"]
    assert result["report"]["accepted"] == 2
    reason = reasons(result)["FLOOD2.png"]
    assert "too large" in reason and "40.0 megapixels" in reason and "16 megapixels" in reason, reason


def test_no_import_loads_tensorflow(outcome: dict) -> None:
    assert outcome["results"]["tensorflow loaded"] is False


def test_entries_sharing_one_pixel_bomb_are_refused_unread(outcome: dict) -> None:
    result = outcome["results"]["shared_pixel_bomb"]
    assert result["report"]["accepted"] == 1
    got = result["report"]["rejected"]
    assert len(got) == 200 and {item["file"] for item in got} == {"BOMB1.png"}
    assert all("overlaps" in item["reason"] and "crafted" in item["reason"] for item in got)
    assert result["seconds"] < 2, result  # nothing decoded (it used to take 38 s)


def test_many_separate_40_megapixel_photos_are_refused_from_their_headers(outcome: dict) -> None:
    result = outcome["results"]["separate_40mp"]
    assert result["report"]["accepted"] == 1 and len(result["report"]["rejected"]) == 200
    assert all("too large" in item["reason"] and "16 megapixels" in item["reason"] for item in result["report"]["rejected"])
    assert result["seconds"] < 3, result  # headers only, no decoding


def test_the_pixel_budget_refuses_the_rest_of_an_import(outcome: dict) -> None:
    """2,000 valid 16-megapixel photos: the first 12 fit the budget, the rest are refused undecoded."""
    result = outcome["results"]["pixel_budget"]
    report = result["report"]
    assert report["accepted"] == 2  # GOOD12 and the first flood photo (the other 11 are exact copies)
    copies, refused = report["rejected"][:BUDGET // 16_000_000 - 1], report["rejected"][BUDGET // 16_000_000 - 1:]
    assert all(item["reason"].startswith("exact copy of F0000.png") for item in copies)
    assert len(refused) == 2000 - BUDGET // 16_000_000
    assert [item["file"] for item in refused][:1] == [f"F{BUDGET // 16_000_000:04d}.png"]
    assert all("reached its limit of 0.2 gigapixels" in item["reason"] for item in refused)
    assert result["seconds"] < 6, result  # ~13 decodes, not 2,000 (which take ~140 s)


def test_truncated_images(outcome: dict) -> None:
    result = outcome["results"]["truncated"]
    assert result["report"]["accepted"] == 1
    got = reasons(result)
    assert set(got) == {"HALF1.jpg", "NOEOI1.jpg", "HALF2.png", "NOIEND2.png", "PROG3.jpg", "HEADER4.jpg", "MAGIC5.jpg", "MAGIC6.png"}
    assert all("damaged" in r for r in got.values()), got


def test_names_in_many_scripts_and_shell_metacharacters(outcome: dict) -> None:
    import csv
    import unicodedata

    from engine.data.dataset import DatasetFolder

    result = outcome["results"]["names"]
    got = reasons(result)
    assert set(got) == set(BAD_NAMES), got
    for name, word in BAD_NAMES.items():
        assert word in got[name], (name, got[name])
    assert result["report"]["accepted"] == len(GOOD_NAMES)
    dataset = outcome["home"] / "datasets" / "names"
    rows = DatasetFolder(dataset).rows()
    assert sorted(r["label"] for r in rows) == sorted(GOOD_NAMES.values())
    with open(dataset / "labels.csv", encoding="utf-8", newline="") as f:  # as a spreadsheet sees it
        assert not [c for row in csv.reader(f) for c in row if c.startswith(("=", "+", "-", "@"))]
    stored = [r["file"] for r in rows]
    assert len(set(s.casefold() for s in stored)) == len(stored)  # unique even on case-insensitive disks
    for file in stored:
        assert file.isprintable() and "/" not in file and "\\" not in file and not file.startswith((".", "-"))
        assert len(file.encode("utf-8")) < 255 and unicodedata.is_normalized("NFC", file)
        assert (dataset / "images" / file).is_file()
    assert not any(p.name.startswith("PWNED") for p in outcome["root"].rglob("*"))
