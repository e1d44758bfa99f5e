"""Results and Try it pieces: the run's test photos table, its photos, the cached reader and attention GIFs."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.errors import show_error
from dashboard.pickers import GO_DATA, GO_TRAIN
from dashboard.text import fmt_pct, plain
from engine import runs
from engine.storage.csvfile import read_csv
from engine.storage.runfolder import RunFolder

NONE_CHAR = "(none)"
SORTS = ("confidence, lowest first", "confidence, highest first", "label", "file")


def evaluated_runs() -> list[dict]:
    """Runs with a score on their test photos (evaluation.json), newest first."""
    return [r for r in runs.list_runs() if r.get("evaluation")]


def nothing_scored() -> tuple[str, tuple[str, str, str]]:
    """What Results says when no run has a score, and where it sends the operator: to Train when none
    has finished yet, to Data when the finished ones had no test photos to be scored on."""
    unscored = sum(r["state"] == "finished" for r in runs.list_runs())
    if not unscored:
        return ("No finished training yet. Results appear here when a training ends: it scores itself on the test "
                "photos it never trained on.", GO_TRAIN)
    which = ("the finished one was trained on a dataset that keeps" if unscored == 1
             else f"the {unscored} finished ones were trained on datasets that keep")
    return (f"No training has a score yet: {which} no test photos aside. Import the photos on the Data page, "
            "which keeps a share aside for testing, and train on them; or check a model on *Try it*.", GO_DATA)


def newest_finished(candidates: list[dict]) -> str | None:
    return next((r["id"] for r in candidates if r["state"] == "finished"), None)


def readable_runs() -> list[dict]:
    """Runs with a saved model, newest first."""
    return [r for r in runs.list_runs() if r.get("has_checkpoint")]


# the predictions table -----------------------------------------------------------------------------
def predictions(run: dict) -> pd.DataFrame:
    """predictions.csv (file, label, prediction, confidence, correct), read back as written."""
    path = RunFolder(run["path"]).predictions_path
    columns = ["file", "label", "prediction", "confidence", "correct"]
    if not path.exists():
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(read_csv(path), columns=columns)
    frame["confidence"] = pd.to_numeric(frame["confidence"], errors="coerce")
    frame["correct"] = frame["correct"].astype(str).str.lower().isin(["true", "1", "yes"])
    return frame


def filter_predictions(frame: pd.DataFrame, *, wrong_only: bool = False, search: str = "",
                       sort: str = SORTS[0]) -> pd.DataFrame:
    out = frame[~frame["correct"]] if wrong_only else frame
    text = (search or "").strip().upper()
    if text:
        found = out["label"].str.upper().str.contains(text, regex=False) | \
            out["prediction"].str.upper().str.contains(text, regex=False) | \
            out["file"].str.upper().str.contains(text, regex=False)
        out = out[found]
    if sort in SORTS[:2]:
        out = out.sort_values("confidence", ascending=sort == SORTS[0], kind="stable")
    else:
        out = out.sort_values(sort, kind="stable")
    return out.reset_index(drop=True)


def table_key(run_id: str, wrong_only: bool, search: str, sort: str) -> str:
    """Widget key of the predictions table: a new filter starts a new selection (the first row)."""
    digest = hashlib.sha1(f"{wrong_only}|{(search or '').strip().upper()}|{sort}".encode()).hexdigest()[:10]
    return f"results_table_{run_id}_{digest}"


def top_confusions(run: dict, n: int = 15) -> pd.DataFrame:
    """The characters read as other characters most often (confusion.csv); '(none)' = missed or extra."""
    path = RunFolder(run["path"]).confusion_path
    rows = read_csv(path) if path.exists() else []
    wrong = [r for r in rows if r["label_char"] != r["predicted_char"]]
    frame = pd.DataFrame([{"expected": r["label_char"] or NONE_CHAR, "read as": r["predicted_char"] or NONE_CHAR,
                           "times": int(r["count"] or 0)} for r in wrong], columns=["expected", "read as", "times"])
    return frame.sort_values("times", ascending=False, kind="stable").head(n).reset_index(drop=True)


# photos, the reader, attention GIFs --------------------------------------------------------------------
def photo_bytes(run: dict, file: str) -> bytes | None:
    """The photo behind a predictions row, from what the run was scored on (None when it is gone): its
    dataset folder, or the TFRecords, zip or folder that `engine test` read (aocr's testing.tfrecords)."""
    from engine.data.dataset import DatasetFolder, is_dataset_folder

    source = (run.get("evaluation") or {}).get("dataset") or run.get("dataset")
    if not source or not Path(source).exists():
        return None
    if not is_dataset_folder(source):
        return _photos_of(source, Path(source).stat().st_mtime).get(file)
    try:
        path = DatasetFolder(source).image_path(file)
    except ValueError:
        return None
    return path.read_bytes() if path.is_file() else None


@st.cache_resource(max_entries=1, show_spinner="Reading the test photos...")  # one shared dict, not a copy a click
def _photos_of(source: str, stamp: float) -> dict[str, bytes]:
    """Every photo of a source that is not a dataset folder, by file name: read once, not on each click."""
    from engine.data.sources import load_examples

    try:
        return {example.file: example.image for example in load_examples(source)}
    except (OSError, ValueError):
        return {}


def model_stamp(run: dict) -> tuple[float, float]:
    """Changes whenever the model or the chosen threshold on disk changes (the reader's cache key)."""
    folder = RunFolder(run["path"])
    model = folder.model_checkpoint()
    threshold = folder.threshold_path
    return (model.stat().st_mtime if model else 0.0, threshold.stat().st_mtime if threshold.exists() else 0.0)


@st.cache_resource(max_entries=2, show_spinner="Loading the model...")
def _reader(run_path: str, stamp: tuple[float, float]):
    from engine.reading.reader import PlateReader

    return PlateReader.load(run_path)


def reader(run: dict):
    """The run's model (best save, with its threshold), loaded once per change on disk."""
    return _reader(run["path"], model_stamp(run))


@st.cache_data(max_entries=300, show_spinner=False)
def _read_and_draw(run_path: str, stamp: tuple[float, float], digest: str, _data: bytes) -> dict:
    from engine.reading.attention_gif import attention_gif

    reading = _reader(run_path, stamp).read_one(_data)
    return {"text": reading.text, "confidence": reading.confidence, "accepted": reading.accepted,
            "gif": attention_gif(_data, reading)}


def read_plate(run: dict, data: bytes) -> dict:
    """{text, confidence, accepted, gif} for one photo, cached per model and photo."""
    return _read_and_draw(run["path"], model_stamp(run), hashlib.sha1(data).hexdigest(), data)


def show_photo_and_attention(run: dict, data: bytes | None) -> None:
    """The photo, and the GIF of where the model looked for each character."""
    if data is None:
        st.warning("The photo is not available (was the dataset deleted?).", icon=":material/warning:")
        return
    st.image(data, caption="The photo", width="stretch")
    try:
        with st.spinner("Drawing where the model looks..."):
            drawn = read_plate(run, data)
    except Exception as exc:  # noqa: BLE001
        show_error("The attention animation could not be made for this photo.", exc)
    else:
        st.image(drawn["gif"], caption="Where the model looks for each character (animated)", width="stretch")


def test_photos(run: dict, frame: pd.DataFrame) -> None:
    """Every test photo: filter, sort and search; the table; the chosen photo with its attention GIF."""
    f1, f2, f3 = st.columns([1, 1, 2])
    wrong_only = f1.toggle("Only wrong readings", key="results_wrong")
    sort = f2.selectbox("Sort by", SORTS, key="results_sort")
    search = f3.text_input("Search plate text or file", key="results_search", placeholder="e.g. 34FK")
    view = filter_predictions(frame, wrong_only=wrong_only, search=search, sort=sort)
    st.caption(f"{len(view)} of {len(frame)} photos shown; {int((~frame['correct']).sum())} read wrong. "
               "Click a row to see the photo and where the model looked.")
    left, right = st.columns([3, 2])
    with left:
        selection = st.dataframe(
            view, hide_index=True, width="stretch", height=min(420, 35 * (len(view) + 1) + 3),
            key=table_key(run["id"], wrong_only, search, sort), on_select="rerun",
            selection_mode="single-row-required", column_order=["label", "prediction", "confidence", "correct", "file"],
            column_config={
                "label": st.column_config.TextColumn("Plate (its label)"),
                "prediction": st.column_config.TextColumn("Read as"),
                "confidence": st.column_config.ProgressColumn("Confidence", min_value=0.0, max_value=1.0, format="percent"),
                "correct": st.column_config.CheckboxColumn("Right?"),
                "file": st.column_config.TextColumn("File"),
            },
        )
    with right:
        if view.empty:
            st.caption("No photo matches the filter.")
            return
        rows = list(selection.selection.rows or [])
        row = view.iloc[rows[0] if rows and rows[0] < len(view) else 0]
        mark = ":green[:material/check_circle:]" if row["correct"] else ":red[:material/cancel:]"
        st.markdown(f"#### {mark} {plain(row['label'])} read as {plain(row['prediction'] or '(nothing)')}")
        st.caption(f"Confidence {fmt_pct(row['confidence'])}. File: {plain(row['file'])}")
        show_photo_and_attention(run, photo_bytes(run, row["file"]))
