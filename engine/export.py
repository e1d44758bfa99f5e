"""Model export and the download bundle: `python -m engine export [EXPORT_PATH] --model-dir RUN [--format ...] [--bundle]`.

The export folder (default RUN/export) holds:

    saved_model/     TensorFlow SavedModel, signature `serving_default`: image_bytes [None] tf.string
                     (any JPEG/PNG/BMP/GIF) -> text [None] tf.string, probability [None] float32.
                     Preprocessing runs inside the graph (engine/serving.py), so TF Serving or a
                     plain tf.saved_model.load needs nothing else.
    model.keras      the Keras model; with charset.json and reader.json it is what PlateReader reads
    charset.json     {"chars": "..."}
    reader.json      {"height", "width", "max_prediction"}
    model.tflite     float input images [1,H,W,1] + widths [1] -> ids, probs, attention

`make_bundle(run)` zips the export with the run's config, metrics and evaluation into RUN/bundle.zip.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable

from engine.runfolder import RunFolder, atomic_write_bytes, atomic_write_json, now_iso

log = logging.getLogger(__name__)

FORMATS = ("savedmodel", "keras", "tflite")
RUN_FILES = ("config.json", "metrics.jsonl", "evaluation.json", "predictions.csv", "confusion.csv")
ZIP_DATE = (2024, 1, 1, 0, 0, 0)


def _load(model_dir: Path, checkpoint: str):
    from engine.reader import PlateReader

    return PlateReader.load(model_dir, checkpoint=checkpoint)


def _replace_dir(tmp: Path, target: Path) -> None:
    """Move a finished folder into place (the old one is removed only once the new one is complete)."""
    if target.exists():
        old = target.with_name(f".{target.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        target.rename(old)
        tmp.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        tmp.rename(target)


def export_keras(model, chars: str, folder: Path) -> None:
    """model.keras + charset.json + reader.json: the folder PlateReader.from_keras reads."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        os.replace(path, folder / "model.keras")
    atomic_write_json(folder / "charset.json", {"chars": chars})
    atomic_write_json(folder / "reader.json", {"height": int(model.height), "width": int(model.width),
                                              "max_prediction": int(model.max_prediction)})


def export_saved_model(model, chars: str, folder: Path) -> None:
    from engine.serving import save_serving_model

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        save_serving_model(model, chars, tmp)
        tmp.chmod(0o755)
        _replace_dir(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def tflite_bytes(model) -> bytes:
    """TFLite flatbuffer: images [1,H,W,1] float32, widths [1] int32 -> ids, probs, attention."""
    import tensorflow as tf

    @tf.function(input_signature=[tf.TensorSpec([1, model.height, model.width, 1], tf.float32, name="images"),
                                  tf.TensorSpec([1], tf.int32, name="widths")])
    def infer(images, widths):
        ids, probs, attention = model((images, widths), training=False)
        return {"ids": ids, "probs": probs, "attention": attention}

    # Freeze first: the converter itself leaves the variables the LSTM loops read (inside WHILE
    # bodies) as resource reads that the TFLite interpreter cannot resolve.
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    frozen = convert_variables_to_constants_v2(infer.get_concrete_function(), lower_control_flow=False)
    converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    try:
        return converter.convert()
    except Exception as exc:  # noqa: BLE001 - some TF ops may need the Flex delegate
        log.info("Builtin-only TFLite conversion failed (%s); retrying with SELECT_TF_OPS", exc)
        converter = tf.lite.TFLiteConverter.from_concrete_functions([frozen])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        return converter.convert()


def run_tflite(interpreter, images, widths):
    """Run an allocated tf.lite.Interpreter of model.tflite: images [1,H,W,1], widths [1] -> (ids, probs, attention)."""
    import numpy as np

    inputs = {d["name"]: d["index"] for d in interpreter.get_input_details()}
    interpreter.set_tensor(inputs["images"], np.asarray(images, np.float32))
    interpreter.set_tensor(inputs["widths"], np.asarray(widths, np.int32))
    interpreter.invoke()
    out = {}
    for d in interpreter.get_output_details():  # names are lost in the frozen graph: tell them by type
        value = interpreter.get_tensor(d["index"])
        key = "ids" if value.dtype == np.int32 else ("attention" if value.ndim == 3 else "probs")
        out[key] = value
    return out["ids"], out["probs"], out["attention"]


def export_model(model_dir: str | os.PathLike, export_path: str | os.PathLike | None = None,
                 formats: Iterable[str] = FORMATS, checkpoint: str = "best") -> Path:
    """Write the chosen formats into `export_path` (default MODEL_DIR/export); returns the folder."""
    model_dir = Path(model_dir)
    formats = tuple(formats)
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"Unknown export format(s): {', '.join(sorted(unknown))} (choose from {', '.join(FORMATS)}).")
    out = Path(export_path) if export_path else model_dir / "export"
    reader = _load(model_dir, checkpoint)
    model, chars = reader.model, reader.charset.chars
    out.mkdir(parents=True, exist_ok=True)
    if "keras" in formats:
        export_keras(model, chars, out)
    else:  # charset/config travel with every format
        atomic_write_json(out / "charset.json", {"chars": chars})
        atomic_write_json(out / "reader.json", {"height": int(model.height), "width": int(model.width),
                                               "max_prediction": int(model.max_prediction)})
    if "savedmodel" in formats:
        export_saved_model(model, chars, out / "saved_model")
    if "tflite" in formats:
        atomic_write_bytes(out / "model.tflite", tflite_bytes(model))
    atomic_write_json(out / "export.json", {"formats": list(formats), "checkpoint": checkpoint,
                                           "model_dir": str(model_dir), "exported_at": now_iso()})
    return out


# --- the download bundle --------------------------------------------------------------------------
README = """# Plate OCR Studio model bundle

Run: {run}   exported: {exported}   input: {height}x{width} (height x width), up to {max_prediction} characters
Characters: {chars}
{accuracy}
## Contents
- `export/saved_model/` TensorFlow SavedModel. Signature `serving_default`: `image_bytes` (encoded
  JPEG/PNG/BMP/GIF, a batch of strings) -> `text` (string) and `probability` (float). All
  preprocessing happens inside the graph, so nothing but TensorFlow is needed.
- `export/model.keras`, `export/charset.json`, `export/reader.json` the Keras model for the engine.
- `export/model.tflite` TFLite: float input `images` [1,{height},{width},1] standardised as in
  engine/preprocess.py plus `widths` [1]; outputs token ids (0 pad, 1 go, 2 end, 3+ = charset index + 3).
- `config.json`, `metrics.jsonl`, `evaluation.json`, `predictions.csv`, `confusion.csv` the run
  that made this model (when present).

## Read a plate with TensorFlow only (unzip the bundle first)
```python
import tensorflow as tf
model = tf.saved_model.load("export/saved_model")
read = model.signatures["serving_default"]
out = read(image_bytes=tf.constant([open("plate.jpg", "rb").read()]))
print(out["text"][0].numpy().decode(), float(out["probability"][0]))
```

## With TF Serving
`docker run -p 8501:8501 -v $PWD/export/saved_model:/models/plates/1 -e MODEL_NAME=plates tensorflow/serving`
then POST `{{"instances": [{{"image_bytes": {{"b64": "<base64 of the JPEG>"}}}}]}}` to
`http://localhost:8501/v1/models/plates:predict`.

## With the Plate OCR Studio engine (no need to unzip)
`python -m engine predict --model-dir bundle.zip img.jpg`
or in Python: `PlateReader.load("bundle.zip").read([open("img.jpg", "rb").read()])[0].text`
"""


def _zip_add(zf: zipfile.ZipFile, name: str, data: bytes) -> None:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    zf.writestr(info, data)


def _export_is_current(model_dir: Path, export_dir: Path, checkpoint: str) -> bool:
    """True if the export exists and is newer than the checkpoint it was made from (a resumed run is re-exported)."""
    keras_file = export_dir / "model.keras"
    if not (keras_file.exists() and (export_dir / "saved_model").is_dir()):
        return False
    source = RunFolder(model_dir).checkpoint(checkpoint)
    return not source.exists() or source.stat().st_mtime <= keras_file.stat().st_mtime


def make_bundle(model_dir: str | os.PathLike, export_dir: str | os.PathLike | None = None,
                checkpoint: str = "best") -> Path:
    """MODEL_DIR/bundle.zip: the export (made now if missing) plus the run's files and a README."""
    model_dir = Path(model_dir)
    export_dir = Path(export_dir) if export_dir else model_dir / "export"
    if not _export_is_current(model_dir, export_dir, checkpoint):
        export_model(model_dir, export_dir, checkpoint=checkpoint)
    reader_cfg = json.loads((export_dir / "reader.json").read_text(encoding="utf-8"))
    chars = json.loads((export_dir / "charset.json").read_text(encoding="utf-8"))["chars"]
    evaluation = {}
    if (model_dir / "evaluation.json").exists():
        evaluation = json.loads((model_dir / "evaluation.json").read_text(encoding="utf-8"))
    accuracy = ""
    if "plate_accuracy" in evaluation:
        accuracy = (f"Test accuracy: {evaluation['plate_accuracy']:.1%} of plates exactly right, "
                    f"{evaluation.get('char_accuracy', 0):.1%} of characters ({evaluation.get('count', '?')} images)\n")
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        _zip_add(zf, "README.md", README.format(run=model_dir.name, exported=now_iso(), chars=chars, accuracy=accuracy,
                                                **reader_cfg).encode("utf-8"))
        for name in RUN_FILES:
            if (model_dir / name).is_file():
                _zip_add(zf, name, (model_dir / name).read_bytes())
        for path in sorted(p for p in export_dir.rglob("*") if p.is_file()):
            rel = path.relative_to(export_dir).as_posix()
            if any(part.startswith(".") for part in Path(rel).parts):
                continue  # temp files of an export in progress
            _zip_add(zf, f"export/{rel}", path.read_bytes())
    target = model_dir / "bundle.zip"
    atomic_write_bytes(target, buf.getvalue())
    return target


def cli_export(args: argparse.Namespace) -> int:
    formats = FORMATS if args.format in (None, "all") else (args.format,)
    out = export_model(args.model_dir, args.export_path, formats=formats,
                       checkpoint=getattr(args, "checkpoint", "best") or "best")
    print(f"exported {', '.join(formats)} to {out}")
    if args.bundle:
        bundle = make_bundle(args.model_dir, out if "keras" in formats and "savedmodel" in formats else None)
        print(f"wrote {bundle}")
    return 0
