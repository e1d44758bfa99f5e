"""Results / Try it / Runs helpers: predictions and confusion tables, images, the cached reader and GIFs."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.data import image_file, labels_frame
from engine import runs
from engine.storage.runfolder import RunFolder

PREDICTION_COLUMNS = ["file", "label", "prediction", "confidence", "correct"]
NONE_CHAR = "(none)"


def evaluated_runs() -> list[dict]:
    """Runs that have an evaluation (evaluation.json), newest first."""
    return [r for r in runs.list_runs() if r.get("evaluation")]


def readable_runs() -> list[dict]:
    """Runs with a saved model (best or last checkpoint), newest first."""
    return [r for r in runs.list_runs() if r.get("has_checkpoint")]


def pick_default(candidates: list[dict], *preferred: str | None) -> int:
    ids = [r["id"] for r in candidates]
    for want in preferred:
        if want and want in ids:
            return ids.index(want)
    return 0


def predictions(run: dict) -> pd.DataFrame:
    path = RunFolder(run["path"]).predictions_path
    if not path.exists():
        return pd.DataFrame(columns=PREDICTION_COLUMNS)
    frame = pd.read_csv(path, dtype={"file": str, "label": str, "prediction": str}, keep_default_na=False)
    if "confidence" in frame:
        frame["confidence"] = pd.to_numeric(frame["confidence"], errors="coerce")
    if "correct" in frame:
        frame["correct"] = frame["correct"].astype(str).str.lower().isin(["true", "1", "yes"])
    return frame


def filter_predictions(frame: pd.DataFrame, *, wrong_only: bool = False, search: str = "",
                       sort: str = "confidence, lowest first") -> pd.DataFrame:
    out = frame
    if wrong_only and "correct" in out:
        out = out[~out["correct"]]
    text = (search or "").strip().upper()
    if text:
        mask = out["label"].str.upper().str.contains(text, regex=False) | out["prediction"].str.upper().str.contains(text, regex=False)
        out = out[mask]
    if sort == "confidence, lowest first":
        out = out.sort_values("confidence", ascending=True, kind="stable")
    elif sort == "confidence, highest first":
        out = out.sort_values("confidence", ascending=False, kind="stable")
    elif sort in ("label", "file"):
        out = out.sort_values(sort, kind="stable")
    return out.reset_index(drop=True)


def table_key(run_id: str, wrong_only: bool, search: str, sort: str) -> str:
    """Widget key of the predictions table: a new filter starts a new selection (the first row)."""
    digest = hashlib.sha1(f"{wrong_only}|{(search or '').strip().upper()}|{sort}".encode()).hexdigest()[:10]
    return f"results_table_{run_id}_{digest}"


def confusion(run: dict) -> pd.DataFrame:
    path = Path(run["path"]) / "confusion.csv"
    if not path.exists():
        return pd.DataFrame(columns=["label_char", "predicted_char", "count"])
    frame = pd.read_csv(path, dtype={"label_char": str, "predicted_char": str}, keep_default_na=False)
    frame["count"] = pd.to_numeric(frame["count"], errors="coerce").fillna(0).astype(int)
    for column in ("label_char", "predicted_char"):  # an empty side means a missed or an extra character
        frame[column] = frame[column].replace("", NONE_CHAR)
    return frame


def top_confusions(frame: pd.DataFrame, n: int = 15) -> pd.DataFrame:
    wrong = frame[frame["label_char"] != frame["predicted_char"]]
    wrong = wrong.sort_values("count", ascending=False).head(n)
    return wrong.rename(columns={"label_char": "expected", "predicted_char": "read as", "count": "times"}).reset_index(drop=True)


def dataset_dir(run: dict) -> Path | None:
    text = run.get("dataset")
    if not text:
        return None
    path = Path(text)
    return path if path.is_dir() else None


def image_bytes(run: dict, file: str) -> bytes | None:
    """The original photo behind a predictions.csv row (dataset images/ folder)."""
    folder = dataset_dir(run)
    if folder is None:
        return None
    path = image_file(folder, file)
    return path.read_bytes() if path else None


def test_images(run: dict, limit: int = 200) -> list[tuple[str, str]]:
    """(file, label) of the run's dataset test split."""
    folder = dataset_dir(run)
    if folder is None:
        return []
    frame = labels_frame(folder)
    if "split" in frame:
        frame = frame[frame["split"] == "test"]
    return [(str(r.file), str(r.label)) for r in frame.head(limit).itertuples(index=False)]


def checkpoint_stamp(run_path: str) -> float:
    """Changes whenever the model on disk changes (cache key for the reader)."""
    folder = RunFolder(run_path)
    for which in ("best", "last"):
        path = folder.checkpoint(which)
        if path.exists():
            return path.stat().st_mtime
    return 0.0


@st.cache_resource(max_entries=2, show_spinner="Loading the model...")
def _reader(run_path: str, stamp: float):
    from engine.reading.reader import PlateReader

    folder = RunFolder(run_path)
    which = "best" if folder.checkpoint("best").exists() else "last"
    return PlateReader.load(run_path, checkpoint=which)


def reader_for(run: dict):
    return _reader(run["path"], checkpoint_stamp(run["path"]))


@st.cache_data(max_entries=300, show_spinner=False)
def _read_and_draw(run_path: str, stamp: float, digest: str, _data: bytes) -> dict:
    from engine.reading.attention_gif import attention_gif

    reader = _reader(run_path, stamp)
    reading = reader.read([_data])[0]
    gif = attention_gif(_data, reading)
    chars = [float(c) for c in (getattr(reading, "char_confidences", None) or [])]
    return {"text": reading.text, "confidence": float(reading.confidence), "char_confidences": chars, "gif": gif}


def read_plate(run: dict, data: bytes) -> dict:
    """{text, confidence, char_confidences, gif} for one image, cached per model and image."""
    digest = hashlib.sha1(data).hexdigest()
    return _read_and_draw(run["path"], checkpoint_stamp(run["path"]), digest, data)


def bundle_path(run: dict) -> Path | None:
    """The run's download bundle if it exists and is newer than its model."""
    path = Path(run["path"]) / "bundle.zip"
    if not path.exists():
        return None
    if path.stat().st_mtime < checkpoint_stamp(run["path"]):
        return None
    return path


def make_bundle(run: dict) -> Path:
    """The run's download bundle (the engine re-exports first when the model changed since)."""
    from engine.reading import export

    return Path(export.make_bundle(Path(run["path"])))
