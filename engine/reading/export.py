"""Model export and the download bundle: `python -m engine export [EXPORT_PATH] --model-dir RUN [--format ...] [--bundle]`.

The export folder (default RUN/export) holds:

    saved_model/     TensorFlow SavedModel, signature `serving_default`: image_bytes [None] tf.string
                     (any JPEG/PNG/BMP/GIF) -> text [None] tf.string, probability [None] float32.
                     Preprocessing, views included, runs inside the graph (engine/reading/serving.py).
    model.keras      the Keras model; with reader.json it is what PlateReader reads
    reader.json      {"height", "width", "slots", "charset", "threshold", "views", "view_gate"}
    model.tflite     images [N, V, H, W, 1] float32: V views of each of N photos (standardised, see
                     engine/model/preprocess.py fit_views) -> ids, probs, length, confidence,
                     attention; any N and V (V = 1: the photo alone, fastest)

`make_bundle(run)` zips the export with the run's results, a README and the standalone reader
(read_plates.py: TFLite through LiteRT, numpy and Pillow only) into RUN/bundle.zip.
"""
from __future__ import annotations

import argparse
import io
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable

from engine.storage.files import atomic_write_bytes, atomic_write_json, now_iso, read_json, zip_add
from engine.storage.runfolder import RunFolder

log = logging.getLogger(__name__)

FORMATS = ("savedmodel", "keras", "tflite")
RUN_FILES = ("config_path", "metrics_path", "evaluation_path", "predictions_path", "confusion_path", "threshold_path")
STANDALONE = Path(__file__).resolve().parent / "standalone"


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


def reader_info(reader) -> dict:
    model = reader.model
    return {"height": int(model.height), "width": int(model.width), "slots": int(model.slots),
            "charset": reader.charset.chars, "threshold": reader.threshold,
            "views": [list(v) for v in reader.views], "view_gate": reader.gate}


def export_keras(model, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder) as tmp:
        path = Path(tmp) / "model.keras"
        model.save(path)
        os.replace(path, folder / "model.keras")


def export_saved_model(model, chars: str, folder: Path, views: tuple[tuple[int, int], ...], gate: float) -> None:
    from engine.reading.serving import save_serving_model

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        save_serving_model(model, chars, tmp, views, gate)
        tmp.chmod(0o755)
        _replace_dir(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def tflite_bytes(model, quantize: str | None = None, representative: Iterable | None = None) -> bytes:
    """TFLite flatbuffer, builtin ops only: images [N, V, H, W, 1] float32 -> read_outputs (any N, V).

    `quantize`: None (float32, what the export ships: it reads exactly like PlateReader), "dynamic"
    (int8 weights, activations quantised on the fly), "int8" (int8 throughout, float input and
    outputs; `representative` yields the [1, V, H, W, 1] inputs it is calibrated on) or "int8-conv"
    (calibrated like "int8", but only the convolutions in int8, the attention decoder in float).
    bench/bench_read.py measures what each costs in accuracy and buys in speed.
    """
    import tensorflow as tf

    from engine.model.network import read_views

    @tf.function(input_signature=[tf.TensorSpec([None, None, model.height, model.width, 1], tf.float32, name="images")])
    def infer(images):
        return read_views(model, images)

    # The converter freezes the variables it finds tracked by this object: Keras 3 variables wrap the
    # tf.Variables the graph reads, so hand it those (given the Keras model, it leaves them unset).
    holder = tf.Module()
    holder.variables_read = [getattr(v, "value", v) for v in model.weights]
    converter = tf.lite.TFLiteConverter.from_concrete_functions([infer.get_concrete_function()], holder)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize not in (None, "dynamic", "int8", "int8-conv"):
        raise ValueError(f"quantize must be None, 'dynamic', 'int8' or 'int8-conv' (got {quantize!r}).")
    if quantize:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize in ("int8", "int8-conv"):
        if representative is None:
            raise ValueError("int8 quantisation needs representative inputs (a few hundred training photos).")
        converter.representative_dataset = lambda: ([x] for x in representative)
    if quantize == "int8-conv":
        # The converter leaves the op types it is told to in float only through its quantisation debugger.
        from ai_edge_litert.interpreter import Interpreter

        float_ops = {op["op_name"] for op in Interpreter(model_content=tflite_bytes(model))._get_ops_details()}
        options = tf.lite.experimental.QuantizationDebugOptions(
            denylisted_ops=sorted(float_ops - {"CONV_2D", "DEPTHWISE_CONV_2D"}))
        debugger = tf.lite.experimental.QuantizationDebugger(
            converter=converter, debug_dataset=lambda: ([x] for x in list(representative)[:8]), debug_options=options)
        return debugger.get_nondebug_quantized_model()
    return converter.convert()


def export_model(model_dir: str | os.PathLike, export_path: str | os.PathLike | None = None,
                 formats: Iterable[str] = FORMATS, checkpoint: str = "best") -> Path:
    """Write the chosen formats into `export_path` (default MODEL_DIR/export); returns the folder."""
    from engine.reading.reader import PlateReader

    model_dir = Path(model_dir)
    formats = tuple(formats)
    unknown = set(formats) - set(FORMATS)
    if unknown:
        raise ValueError(f"Unknown export format(s): {', '.join(sorted(unknown))} (choose from {', '.join(FORMATS)}).")
    out = Path(export_path) if export_path else model_dir / "export"
    reader = PlateReader.load(model_dir, checkpoint=checkpoint)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(out / "reader.json", reader_info(reader))
    if "keras" in formats:
        export_keras(reader.model, out)
    if "savedmodel" in formats:
        export_saved_model(reader.model, reader.charset.chars, out / "saved_model", reader.views, reader.gate)
    if "tflite" in formats:
        atomic_write_bytes(out / "model.tflite", tflite_bytes(reader.model))
    atomic_write_json(out / "export.json", {"formats": list(formats), "checkpoint": checkpoint,
                                           "model_dir": str(model_dir), "exported_at": now_iso()})
    return out


# --- the download bundle --------------------------------------------------------------------------
README = """# Plate OCR Studio model bundle

Run: {run}   exported: {exported}   input: {height}x{width} (height x width), up to {max_text} characters
Characters: {chars}
{accuracy}{threshold}
## Read a folder of photos, without TensorFlow
```bash
pip install ai-edge-litert==2.3.0 numpy==2.4.6 pillow==13.0.0
python read_plates.py photos/ > readings.csv      # a folder, a zip, or photo files
```
`readings.csv` has one row per photo: file, reading, confidence, accepted (confidence at or above
the threshold chosen for this model, when one was chosen: the rest should be checked by a person;
empty when none was), name_says and matches_name (when the file name is a plate text, e.g.
`34FK4522_1.jpg`: whether the reading agrees), and problem (why a photo could not be read).
It prepares each photo exactly as training did and reads the test photos as `predictions.csv`
says: a photo whose reading is less than {gate:.0%} sure is read again cropped tighter and framed
looser, averaging what the three views read (`--fast` reads the photo as given only: a little faster,
a little less accurate). It reads on every core (`--threads 1` for one); `python read_plates.py
--help` for the rest.

## Contents
- `read_plates.py` the standalone reader (LiteRT + numpy + Pillow), with `export/model.tflite`
  and `export/reader.json` (input size, characters, threshold).
- `export/saved_model/` TensorFlow SavedModel. Signature `serving_default`: `image_bytes` (encoded
  JPEG/PNG/BMP/GIF, a batch of strings) -> `text` and `probability`. Preprocessing is in the graph.
- `export/model.keras` the Keras model (for `python -m engine predict --model-dir bundle.zip`).
- `config.json`, `metrics.jsonl`, `evaluation.json`, `predictions.csv`, `confusion.csv` the run
  that made this model (when present).

## With TensorFlow only
```python
import tensorflow as tf
read = tf.saved_model.load("export/saved_model").signatures["serving_default"]
out = read(image_bytes=tf.constant([open("plate.jpg", "rb").read()]))
print(out["text"][0].numpy().decode(), float(out["probability"][0]))
```

## With TF Serving
`docker run -p 8501:8501 -v $PWD/export/saved_model:/models/plates/1 -e MODEL_NAME=plates tensorflow/serving`
then POST `{{"instances": [{{"image_bytes": {{"b64": "<base64 of the JPEG>"}}}}]}}` to
`http://localhost:8501/v1/models/plates:predict`.
"""


def _export_is_current(model_dir: Path, export_dir: Path, checkpoint: str) -> bool:
    """True if every format exists and is newer than the checkpoint and the threshold it was made from."""
    made = export_dir / "export.json"
    if not (made.exists() and (export_dir / "saved_model").is_dir() and (export_dir / "model.tflite").exists()):
        return False
    run = RunFolder(model_dir)
    sources = [run.checkpoint(checkpoint), run.threshold_path]
    return all(not p.exists() or p.stat().st_mtime <= made.stat().st_mtime for p in sources)


def bundle_is_current(model_dir: str | os.PathLike) -> bool:
    """bundle.zip exists and is newer than everything it is made from (model, threshold, scores)."""
    run = RunFolder(model_dir)
    if not run.bundle_path.exists():
        return False
    made = run.bundle_path.stat().st_mtime
    sources = [run.model_checkpoint(), run.threshold_path, run.evaluation_path]
    return all(p is None or not p.exists() or p.stat().st_mtime <= made for p in sources)


def _summary(model_dir: Path) -> tuple[str, str]:
    from engine.reading.threshold import describe, load_threshold, threshold_row

    evaluation = read_json(model_dir / "evaluation.json", {}) or {}
    accuracy = ""
    if "plate_accuracy" in evaluation:
        accuracy = (f"Test accuracy: {evaluation['plate_accuracy']:.1%} of plates exactly right, "
                    f"{evaluation.get('char_accuracy', 0):.1%} of characters ({evaluation.get('count', '?')} photos)\n")
    verdict = evaluation.get("verdict") or {}
    if verdict.get("level") == "poor":
        accuracy += "\n**Warning: " + verdict["headline"] + "**\n" + "".join(f"- {a}\n" for a in verdict.get("advice", []))
    threshold = load_threshold(model_dir)
    chosen = ""
    if threshold is not None:
        chosen = f"Threshold: readings with confidence >= {threshold:.1%} are accepted.\n"
        row = threshold_row(model_dir)
        if row:
            chosen += f"On the test photos: {describe(row)}.\n"
    return accuracy, chosen


def make_bundle(model_dir: str | os.PathLike, export_dir: str | os.PathLike | None = None,
                checkpoint: str = "best") -> Path:
    """MODEL_DIR/bundle.zip: the export (made now if missing or stale) plus the run's files, a README
    and the standalone reader."""
    model_dir = Path(model_dir)
    export_dir = Path(export_dir) if export_dir else model_dir / "export"
    if not _export_is_current(model_dir, export_dir, checkpoint):
        export_model(model_dir, export_dir, checkpoint=checkpoint)
    info = read_json(export_dir / "reader.json", {})
    accuracy, threshold = _summary(model_dir)
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zip_add(zf, "README.md", README.format(
            run=model_dir.name, exported=now_iso(), chars=info["charset"], accuracy=accuracy, threshold=threshold,
            height=info["height"], width=info["width"], max_text=info["slots"] - 1,
            gate=info.get("view_gate", 1.0)).encode("utf-8"))
        if (STANDALONE / "read_plates.py").is_file():
            zip_add(zf, "read_plates.py", (STANDALONE / "read_plates.py").read_bytes())
        for attribute in RUN_FILES:
            path = getattr(RunFolder(model_dir), attribute)
            if path.is_file():
                zip_add(zf, path.name, path.read_bytes())
        for path in sorted(p for p in export_dir.rglob("*") if p.is_file()):
            rel = path.relative_to(export_dir).as_posix()
            if any(part.startswith(".") for part in Path(rel).parts):
                continue  # temp files of an export in progress
            zip_add(zf, f"export/{rel}", path.read_bytes())
    target = RunFolder(model_dir).bundle_path
    atomic_write_bytes(target, buf.getvalue())
    return target


def cli_export(args: argparse.Namespace) -> int:
    formats = FORMATS if args.format in (None, "all") else (args.format,)
    out = export_model(args.model_dir, args.export_path, formats=formats,
                       checkpoint=getattr(args, "checkpoint", "best") or "best")
    print(f"exported {', '.join(formats)} to {out}")
    if args.bundle:
        bundle = make_bundle(args.model_dir, out if set(formats) == set(FORMATS) else None)
        print(f"wrote {bundle}")
    return 0
