"""The bundle's standalone reader (read_plates.py): in a fresh venv holding only LiteRT, numpy and
Pillow it reads the run's test photos exactly as predictions.csv says, and its decoding and fitting
are OpenCV's (engine/data/images.decode_gray + engine/model/preprocess.fit_to_box) pixel for pixel."""
from __future__ import annotations

import csv
import importlib.util
import io
import json
import os
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image, PngImagePlugin

from model_fixtures import ROOT, run_engine, tiny_run  # noqa: F401 - fixture

SCRIPT = ROOT / "engine" / "reading" / "standalone" / "read_plates.py"
# pip's words when it could not reach the package index (anything else is a real failure)
UNREACHABLE = ("NewConnectionError", "Temporary failure in name resolution", "Network is unreachable",
               "Max retries exceeded", "ConnectTimeoutError", "No route to host", "ProxyError")


def _standalone_module():
    spec = importlib.util.spec_from_file_location("read_plates", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules["read_plates"] = module  # dataclasses look their module up while the file loads
    spec.loader.exec_module(module)
    return module


read_plates = _standalone_module()


def _bare_env() -> dict:
    """No PYTHONPATH: nothing of the checkout can leak into the fresh venv's process."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}


@pytest.fixture(scope="module")
def reader_python(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The python of a fresh venv with nothing but read_plates.REQUIREMENTS (pinned) installed."""
    venv = tmp_path_factory.mktemp("standalone") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
    python = venv / "bin" / "python"
    proc = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                           *read_plates.REQUIREMENTS], capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    if proc.returncode != 0 and any(word in output for word in UNREACHABLE):
        pytest.skip(f"the package registry is unreachable, so no fresh venv can be made: {output.strip().splitlines()[-1]}")
    assert proc.returncode == 0, output[-3000:]
    heavy = subprocess.run([str(python), "-c", "import importlib.util as u; "
                              "print([m for m in ('tensorflow', 'cv2', 'keras') if u.find_spec(m)])"],
                           capture_output=True, text=True, env=_bare_env(), timeout=60)
    assert heavy.stdout.strip() == "[]", heavy.stdout + heavy.stderr  # truly without TensorFlow or OpenCV
    return python


def _read(python: Path, bundle: Path, *args: str) -> tuple[int, list[dict], str]:
    proc = subprocess.run([str(python), "read_plates.py", *args], cwd=bundle, env=_bare_env(),
                          capture_output=True, text=True, encoding="utf-8", timeout=300)
    return proc.returncode, list(csv.DictReader(io.StringIO(proc.stdout))), proc.stderr


def test_fresh_venv_reads_the_test_photos_as_predictions_csv(tiny_run, reader_python, tmp_path):  # noqa: F811
    run = tiny_run["run"]
    run_engine(["export", "--model-dir", str(run), "--bundle"], tiny_run["home"])
    bundle = tmp_path / "bundle"
    with zipfile.ZipFile(run / "bundle.zip") as zf:
        zf.extractall(bundle)
    assert " ".join(read_plates.REQUIREMENTS) in (bundle / "README.md").read_text(encoding="utf-8")
    with open(run / "predictions.csv", encoding="utf-8") as f:
        predictions = {r["file"]: r for r in csv.DictReader(f)}
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in predictions:
        shutil.copy(tiny_run["dataset"] / "images" / name, photos / name)
    (photos / "cut_off.jpg").write_bytes((photos / next(iter(predictions))).read_bytes()[:200])

    code, rows, stderr = _read(reader_python, bundle, str(photos))
    assert code == 1, stderr  # one photo could not be read; the others are
    by_file = {r["file"]: r for r in rows}
    assert "damaged" in by_file.pop("cut_off.jpg")["problem"]
    assert {f: r["reading"] for f, r in by_file.items()} == {f: r["prediction"] for f, r in predictions.items()}
    for name, r in by_file.items():
        assert abs(float(r["confidence"]) - float(predictions[name]["confidence"])) <= 1e-4, name
        assert r["name_says"] in ("", predictions[name]["label"])
        assert r["matches_name"] == ("" if not r["name_says"] else str(r["reading"] == r["name_says"]))
    info = json.loads((bundle / "export" / "reader.json").read_text())
    assert info["threshold"] is None and all(r["accepted"] == "" for r in by_file.values())  # none chosen

    # --fast reads each photo as given only, as the engine reads it in its first view alone
    from engine.model.preprocess import VIEWS
    from engine.reading.reader import PlateReader

    alone = PlateReader.load(run)
    alone.views = VIEWS[:1]
    want = {name: r.text for name, r in zip(predictions, alone.read([(photos / name).read_bytes() for name in predictions]))}
    code, rows, stderr = _read(reader_python, bundle, str(photos), "--fast")
    assert {r["file"]: r["reading"] for r in rows if r["file"] != "cut_off.jpg"} == want, stderr

    # with a threshold in reader.json, accepted is confidence >= threshold (this time from a zip)
    shutil.make_archive(str(tmp_path / "photos"), "zip", photos)
    confidences = sorted(float(r["confidence"]) for r in by_file.values())
    for threshold in (0.0, confidences[len(confidences) // 2], 1.01):
        (bundle / "export" / "reader.json").write_text(json.dumps({**info, "threshold": threshold}))
        code, rows, stderr = _read(reader_python, bundle, str(tmp_path / "photos.zip"))
        accepted = {r["file"]: r["accepted"] for r in rows if r["file"] != "cut_off.jpg"}
        assert len(accepted) == len(predictions), stderr
        for r in rows:
            if r["file"] != "cut_off.jpg" and abs(float(r["confidence"]) - threshold) > 1e-4:  # the 4th decimal hides the rest
                assert r["accepted"] == str(float(r["confidence"]) >= threshold), (threshold, r)
        assert threshold != 0.0 or set(accepted.values()) == {"True"}
        assert threshold != 1.01 or set(accepted.values()) == {"False"}


def _encoded_variants(color: np.ndarray) -> dict[str, bytes]:
    """The kinds of file an operator may hand over, made from one BGR photo."""
    rgb = Image.fromarray(color[..., ::-1])

    def save(image: Image.Image, fmt: str, **options) -> bytes:
        buf = io.BytesIO()
        image.save(buf, fmt, **options)
        return buf.getvalue()

    srgb = PngImagePlugin.PngInfo()
    srgb.add(b"sRGB", b"\x00")
    gamma = PngImagePlugin.PngInfo()
    gamma.add(b"gAMA", struct.pack(">I", 45455))
    small = cv2.resize(color, (max(8, color.shape[1] // 6), max(4, color.shape[0] // 6)), interpolation=cv2.INTER_AREA)
    variants = {
        "png": cv2.imencode(".png", color)[1].tobytes(),
        "small.jpg": cv2.imencode(".jpg", small)[1].tobytes(),  # enlarged to fit: INTER_LINEAR
        "2x.bmp": cv2.imencode(".bmp", cv2.resize(color, (256, 96)))[1].tobytes(),  # whole-factor INTER_AREA
        "gray.png": save(rgb.convert("L"), "PNG"),
        "palette.png": save(rgb.quantize(40), "PNG"),
        "rgba.png": save(rgb.convert("RGBA"), "PNG"),
        "srgb.png": save(rgb, "PNG", pnginfo=srgb),
        "gamma.png": save(rgb, "PNG", pnginfo=gamma),
        "16bit.png": save(Image.fromarray(cv2.cvtColor(color, cv2.COLOR_BGR2GRAY).astype(np.uint16) * 257), "PNG"),
        "lossy.webp": save(rgb, "WEBP", quality=80),
        "lossless.webp": save(rgb, "WEBP", lossless=True),
        "progressive.jpg": save(rgb, "JPEG", progressive=True, subsampling=0),
        "cmyk.jpg": save(rgb.convert("CMYK"), "JPEG"),
    }
    for orientation in range(2, 9):  # phone photos: OpenCV turns them upright while decoding
        exif = Image.Exif()
        exif[read_plates.ORIENTATION] = orientation
        variants[f"exif{orientation}.jpg"] = save(rgb, "JPEG", exif=exif.tobytes())
        variants[f"exif{orientation}.webp"] = save(rgb, "WEBP", exif=exif.tobytes())
    return variants


def test_decoding_and_fitting_are_opencvs_pixel_for_pixel(tiny_run):  # noqa: F811
    from engine.data.images import decode_gray
    from engine.model.preprocess import VIEWS, fit_views

    images = sorted((tiny_run["dataset"] / "images").iterdir())
    cases = [(p.name, p.read_bytes()) for p in images]
    for path in images[:3]:
        color = cv2.imread(str(path), cv2.IMREAD_COLOR)
        cases += [(f"{path.name}.{kind}", data) for kind, data in _encoded_variants(color).items()]
    for name, data in cases:
        want = decode_gray(data)
        got = read_plates.decode_gray(data)
        assert got.shape == want.shape and np.array_equal(got, want), name
        for height, width in ((32, 128), (48, 128), (80, 160)):
            assert np.array_equal(read_plates.fit_views(got, height, width, VIEWS), fit_views(want, height, width)[0]), (name, height)


def test_views_are_the_engines_for_any_size():
    from engine.model.preprocess import VIEWS, view

    rng = np.random.default_rng(3)
    for _ in range(200):
        gray = rng.integers(0, 256, (int(rng.integers(1, 120)), int(rng.integers(1, 400))), dtype=np.uint8)
        for rows, columns in VIEWS:
            assert np.array_equal(read_plates.view(gray, rows, columns), view(gray, rows, columns)), (gray.shape, rows)


def test_resizing_is_opencvs_for_any_size():
    rng = np.random.default_rng(7)
    for _ in range(400):
        h, w = int(rng.integers(1, 300)), int(rng.integers(1, 700))
        gray = rng.integers(0, 256, (h, w), dtype=np.uint8)
        new_h, new_w = int(rng.integers(1, h + 1)), int(rng.integers(1, w + 1))
        want = cv2.resize(gray, (new_w, new_h), interpolation=cv2.INTER_AREA)
        assert np.array_equal(read_plates._resize_area(gray, new_h, new_w), want), ("area", h, w, new_h, new_w)
        new_h, new_w = int(rng.integers(h, 2 * h + 2)), int(rng.integers(w, 2 * w + 2))
        want = cv2.resize(gray, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        assert np.array_equal(read_plates._resize_linear(gray, new_h, new_w), want), ("linear", h, w, new_h, new_w)
    for fy, fx in ((2, 2), (3, 3), (2, 3), (1, 4), (5, 1), (6, 6)):  # whole factors take OpenCV's fast path
        gray = rng.integers(0, 256, (17 * fy, 31 * fx), dtype=np.uint8)
        want = cv2.resize(gray, (31, 17), interpolation=cv2.INTER_AREA)
        assert np.array_equal(read_plates._resize_area(gray, 17, 31), want), (fy, fx)


def test_refusals_are_plain_reasons():
    gif = io.BytesIO()
    Image.new("L", (90, 40)).save(gif, "GIF")
    jpeg = cv2.imencode(".jpg", np.zeros((40, 90), np.uint8))[1].tobytes()
    for data, reason in ((b"", "empty"), (b"not a picture at all", "not an image"),
                         (gif.getvalue(), "GIF files are not supported"), (jpeg[:150], "damaged")):
        with pytest.raises(ValueError, match=reason):
            read_plates.decode_gray(data)
    assert read_plates.name_says("dir/34FK4522_1.jpg") == "34FK4522" and read_plates.name_says("photo.jpg") == ""
