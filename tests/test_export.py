"""Export (SavedModel bytes->text, Keras, TFLite) and the download bundle, each checked against PlateReader."""
from __future__ import annotations

import csv
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from model_fixtures import ROOT, engine_env, run_engine, tiny_run  # noqa: F401 - fixture


@pytest.fixture(scope="module")
def exported(tiny_run):  # noqa: F811
    run = tiny_run["run"]
    proc = run_engine(["export", "--model-dir", str(run), "--bundle"], tiny_run["home"])
    assert "bundle.zip" in proc.stdout
    return {**tiny_run, "export": run / "export", "bundle": run / "bundle.zip"}


@pytest.fixture(scope="module")
def images(tiny_run):  # noqa: F811
    """(file, bytes) of every dataset image, plus PNG / small (enlarged) / exact-2x variants."""
    folder = tiny_run["dataset"] / "images"
    items = [(p.name, p.read_bytes()) for p in sorted(folder.iterdir())]
    extra = []
    for name, data in items[:12]:
        color = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
        extra.append((name + ".png", cv2.imencode(".png", color)[1].tobytes()))
        small = cv2.resize(color, (color.shape[1] // 6, color.shape[0] // 6), interpolation=cv2.INTER_AREA)
        extra.append((name + ".small.jpg", cv2.imencode(".jpg", small)[1].tobytes()))
        extra.append((name + ".2x.bmp", cv2.imencode(".bmp", cv2.resize(color, (128, 64)))[1].tobytes()))
    return items + extra


@pytest.fixture(scope="module")
def reference(tiny_run, images):  # noqa: F811
    from engine.reading.reader import PlateReader

    reader = PlateReader.load(tiny_run["run"])
    return reader, reader.read([data for _, data in images])


TF_ONLY = r"""
import json, sys
import tensorflow as tf
assert "engine" not in sys.modules
model = tf.saved_model.load(sys.argv[1])
sig = model.signatures["serving_default"]
paths = json.load(open(sys.argv[2]))
out = sig(image_bytes=tf.constant([open(p, "rb").read() for p in paths]))
pre = model.signatures["preprocess"](image_bytes=tf.constant([open(p, "rb").read() for p in paths]))
import numpy as np
np.save(sys.argv[3], pre["images"].numpy())
print(json.dumps({"inputs": {k: [str(v.dtype.name), v.shape.as_list()] for k, v in sig.structured_input_signature[1].items()},
                  "outputs": sorted(sig.structured_outputs),
                  "text": [t.decode("utf-8") for t in out["text"].numpy()],
                  "probability": [float(p) for p in out["probability"].numpy()]}))
"""


def _tf_only_env() -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",)}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    env["CUDA_VISIBLE_DEVICES"] = ""
    return env


def test_export_writes_every_format(exported):
    out = exported["export"]
    assert (out / "saved_model" / "saved_model.pb").exists()
    assert (out / "model.keras").exists() and (out / "model.tflite").stat().st_size > 200_000  # the weights are in it
    cfg = json.loads((out / "reader.json").read_text())
    run_input = json.loads((exported["run"] / "config.json").read_text())["resolved"]["input"]
    assert [cfg["height"], cfg["width"]] == run_input and cfg["slots"] > 1 and cfg["charset"]


def test_saved_model_with_tensorflow_only_matches_the_reader(exported, images, reference, tmp_path):
    """A fresh process with nothing but TensorFlow, raw JPEG/PNG/BMP bytes in: same text as PlateReader."""
    from engine.data.images import decode_gray
    from engine.model.preprocess import fit_views

    reader, readings = reference
    files = []
    for i, (name, data) in enumerate(images):
        path = tmp_path / f"{i:03d}{Path(name).suffix}"
        path.write_bytes(data)
        files.append(str(path))
    (tmp_path / "paths.json").write_text(json.dumps(files))
    saved = tmp_path / "copy_of_saved_model"
    shutil.copytree(exported["export"] / "saved_model", saved)  # nothing of the run folder is needed
    proc = subprocess.run([sys.executable, "-c", TF_ONLY, str(saved), str(tmp_path / "paths.json"), str(tmp_path / "x.npy")],
                          cwd=tmp_path, env=_tf_only_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["inputs"] == {"image_bytes": ["string", [None]]}
    assert result["outputs"] == ["probability", "text"]
    assert result["text"] == [r.text for r in readings]
    np.testing.assert_allclose(result["probability"], [r.confidence for r in readings], rtol=1e-4, atol=1e-30)
    # the in-graph preprocessing, views included, is OpenCV's, pixel for pixel (only float rounding of mean/std differs)
    x = np.load(tmp_path / "x.npy")
    for i, (_, data) in enumerate(images):
        ref, _ = fit_views(decode_gray(data), reader.height, reader.width, reader.views)
        assert x[i].shape == ref.shape and np.abs(x[i] - ref).max() < 1e-5, images[i][0]


def test_keras_export_reads_like_the_run(exported, images, reference):
    from engine.reading.reader import PlateReader

    _, readings = reference
    again = PlateReader.load(exported["export"]).read([data for _, data in images])
    assert [r.text for r in again] == [r.text for r in readings]
    np.testing.assert_allclose([r.confidence for r in again], [r.confidence for r in readings], rtol=1e-5, atol=1e-30)


def test_tflite_reads_batches_and_agrees(exported, images, reference):
    """The TFLite file takes any batch size, each photo alone or in its views, and reads what the TensorFlow reader reads."""
    from ai_edge_litert.interpreter import Interpreter  # TensorFlow's own tf.lite.Interpreter is deprecated

    from engine.data.images import decode_gray
    from engine.model.preprocess import fit_views

    reader, readings = reference
    interpreter = Interpreter(model_path=str(exported["export"] / "model.tflite"))
    run = interpreter.get_signature_runner()
    x = np.stack([fit_views(decode_gray(data), reader.height, reader.width, reader.views)[0] for _, data in images])
    for start in range(0, len(x), 16):
        alone, views = run(images=x[start : start + 16, :1]), run(images=x[start : start + 16])
        for row, want in enumerate(readings[start : start + 16]):
            out = views if alone["confidence"][row] < reader.gate else alone  # the unsure ones in every view
            length = int(out["length"][row])
            assert reader.charset.decode(out["ids"][row], length) == want.text
            assert float(out["confidence"][row]) == pytest.approx(want.confidence, rel=1e-3, abs=1e-6)
            np.testing.assert_allclose(out["attention"][row][: length + 1].reshape(want.attention.shape), want.attention,
                                       atol=1e-4)


def test_unsure_photos_are_read_again_in_every_view(exported, images, reference):
    """A photo read less surely than the gate is read again in all views and averaged; a sure one is
    kept as read. The views change what some photos read, or they would be for nothing."""
    from engine.model.preprocess import VIEWS
    from engine.reading.reader import PlateReader

    reader, readings = reference
    photos = [data for _, data in images]
    alone = PlateReader.load(exported["run"])
    alone.views = VIEWS[:1]
    always = PlateReader.load(exported["run"])
    always.gate = 2.0  # every photo in every view
    first, averaged = alone.read(photos), always.read(photos)
    unsure = [i for i, r in enumerate(first) if r.confidence < reader.gate]
    assert unsure and len(unsure) < len(photos)
    assert any(first[i].text != averaged[i].text for i in unsure)
    for i, (got, one, every) in enumerate(zip(readings, first, averaged)):
        want = every if i in unsure else one
        assert got.text == want.text and got.confidence == pytest.approx(want.confidence, rel=1e-5), images[i][0]


def test_saved_model_reads_batches_with_no_unsure_photo_and_empty_ones(exported, images, tmp_path):
    """Most batches of a good model have no photo to read again, and a folder may hold none: the
    SavedModel reads both (TensorFlow's oneDNN convolution, on AVX-512 CPUs, fails on an empty batch)."""
    import tensorflow as tf

    from engine.model.preprocess import VIEWS
    from engine.reading.reader import PlateReader
    from engine.reading.serving import save_serving_model

    reader = PlateReader.load(exported["run"])
    save_serving_model(reader.model, reader.charset.chars, tmp_path / "never_again", reader.views, gate=0.0)
    serve = tf.saved_model.load(str(tmp_path / "never_again")).signatures["serving_default"]
    photos = [data for _, data in images[:10]]
    out = serve(image_bytes=tf.constant(photos))
    reader.views = VIEWS[:1]  # with a gate of 0 no photo is unsure: each is read as given only
    assert [t.decode("utf-8") for t in out["text"].numpy()] == [r.text for r in reader.read(photos)]
    none = serve(image_bytes=tf.constant([], tf.string))
    assert none["text"].shape == (0,) and none["probability"].shape == (0,)


def test_bundle_alone_reproduces_the_runs_predictions(exported, tmp_path):
    """Copy only bundle.zip elsewhere; a fresh process reads the test split exactly as predictions.csv says."""
    alone = tmp_path / "elsewhere"
    alone.mkdir()
    shutil.copy(exported["bundle"], alone / "bundle.zip")
    script = r"""
import json, sys
from engine.reading.reader import PlateReader
from engine.data.sources import load_examples
reader = PlateReader.load("bundle.zip")
examples = load_examples(sys.argv[1], split="test")
print(json.dumps({e.file: r.text for e, r in zip(examples, reader.read([e.image for e in examples]))}))
"""
    proc = subprocess.run([sys.executable, "-c", script, str(exported["dataset"])], cwd=alone,
                          env=engine_env(tmp_path / "home"), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    rows = list(csv.DictReader((exported["run"] / "predictions.csv").open(encoding="utf-8")))
    assert rows and {r["file"]: r["prediction"] for r in rows} == got


def test_bundle_contents_and_readme_example(exported, tmp_path):
    with zipfile.ZipFile(exported["bundle"]) as zf:
        names = set(zf.namelist())
        assert {"README.md", "config.json", "metrics.jsonl", "evaluation.json", "predictions.csv", "confusion.csv",
                "export/model.keras", "export/reader.json", "export/model.tflite", "read_plates.py",
                "export/saved_model/saved_model.pb"} <= names
        assert not any(n.startswith("/") or ".." in n.split("/") for n in names)
        zf.extractall(tmp_path)
    readme = (tmp_path / "README.md").read_text(encoding="utf-8")
    assert "python read_plates.py photos/ > readings.csv" in readme
    example = re.search(r"```python\n(.*?)```", readme, re.S).group(1)
    assert len(example.strip().splitlines()) <= 5 and "engine" not in example
    first = next((exported["dataset"] / "images").iterdir())
    shutil.copy(first, tmp_path / "plate.jpg")
    proc = subprocess.run([sys.executable, "-c", example], cwd=tmp_path, env=_tf_only_env(),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    # `print(text, probability)`: the text may be empty for this tiny model, so split from the right
    text, probability = proc.stdout.rstrip("\n").splitlines()[-1].rsplit(" ", 1)
    assert 0.0 <= float(probability) <= 1.0


def test_cli_export_single_format_to_a_path(exported, tmp_path):
    out = tmp_path / "only_keras"
    run_engine(["export", str(out), "--model-dir", str(exported["run"]), "--format", "keras"], exported["home"])
    assert (out / "model.keras").exists() and (out / "reader.json").exists()
    assert not (out / "saved_model").exists() and not (out / "model.tflite").exists()
