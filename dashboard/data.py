"""Data page pieces: saving an upload, the import with a progress bar, the sample data, showing a dataset."""
from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import pandas as pd
import streamlit as st

from dashboard.errors import friendly_errors, show_error
from dashboard.pickers import remember
from dashboard.text import plain, plural, quoted
from engine.storage.paths import UnsafeName, child_path, data_home, datasets_dir, safe_name

CHUNK = 8 * 1024 * 1024


class ImportProblem(Exception):
    """An import that could not be done, with a message meant for the operator."""

    def __init__(self, message: str, details: str = ""):
        super().__init__(message)
        self.message = message
        self.details = details


def default_name(filename: str | None) -> str:
    """A dataset name suggested from the uploaded file name ('plates 2024.zip' -> 'plates-2024')."""
    stem = Path(filename or "").stem
    try:
        return safe_name(stem)
    except UnsafeName:
        return "plates"


def dataset_dir_for(name: str) -> Path:
    return child_path(datasets_dir(), name)


def upload_limit_mb() -> int:
    """The largest upload the server accepts, in MB (server.maxUploadSize in .streamlit/config.toml)."""
    from streamlit import config

    return int(config.get_option("server.maxUploadSize"))


def upload_help() -> str:
    """The Data page uploader's help text, with the server's real limit."""
    return (f"One .zip file, up to {upload_limit_mb()} MB. Folders inside the zip are fine. Photos with other "
            "names (IMG_1234.jpg) can bring their plate text in a CSV inside the zip, with the columns "
            "file,label (or an aocr annotation file: one `path label` a line).")


def label_source(report: dict) -> str:
    """Where a dataset's labels came from, as text: the zip's label files, or the file names."""
    return ", ".join(plain(name) for name in report.get("labels_from") or []) or "the file name"


_UPLOAD_CLAIMS: dict[Path, Any] = {}  # upload folder -> its FolderClaim, until remove_upload


def save_upload(uploaded: Any) -> Path:
    """Copy an st.file_uploader file to data/uploads/<random>/<its name> (removed by remove_upload).

    The file keeps its own (sanitised) name so that messages from the importer mention the name
    the operator knows. The folder is claimed until remove_upload, so clean_leftovers at start-up
    removes only uploads whose server died; a failed save (disk full) leaves nothing.
    """
    from engine.data.dataset import FolderClaim
    from engine.storage.files import is_out_of_space

    folder = data_home() / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    own = Path(getattr(uploaded, "name", "") or "upload.zip")
    try:
        name = safe_name(own.stem) + (own.suffix.lower() or ".zip")
    except UnsafeName:
        name = "upload.zip"
    tmp_dir = Path(tempfile.mkdtemp(prefix="upload-", dir=folder))
    target = tmp_dir / name
    _UPLOAD_CLAIMS[target] = FolderClaim(tmp_dir)
    try:
        with open(target, "wb") as out:
            if hasattr(uploaded, "seek"):
                uploaded.seek(0)
            while chunk := uploaded.read(CHUNK):
                out.write(chunk)
    except BaseException as exc:
        remove_upload(target)
        if is_out_of_space(exc):
            raise ImportProblem(f"Not enough disk space to save the upload in {plain(folder)}; nothing was kept. Free some "
                                "disk space and upload again.", f"{type(exc).__name__}: {exc}") from exc
        raise
    return target


def import_progress(show: Callable[[float, str], None]) -> Callable[[int, int], None]:
    """The importer's `progress(done, total)` as a fraction and words for a progress bar."""
    def progress(done: int, total: int) -> None:
        show(min(1.0, done / total) if total else 0.0, f"Checking photos: {done:,} of {total:,}")
    return progress


REPLACE_LABEL = "Replace a dataset with the same name"


def run_import(source: Path, name: str, *, test_fraction: float = 0.2, overwrite: bool = False,
               progress: Callable[[int, int], None] | None = None) -> dict:
    """engine.data.importer.import_dataset into datasets/<name>, with errors turned into ImportProblem.

    A dataset that runs were trained on is never replaced (engine.runs.check_replace): its new
    split could put their training photos into their test scores.
    """
    from engine import runs
    from engine.data import importer  # imported here: the page loads fast without it

    out_dir = dataset_dir_for(name)
    if out_dir.exists() and not overwrite:
        raise ImportProblem(f"A dataset called {quoted(out_dir.name)} already exists. Choose another name, "
                            f"or tick “{REPLACE_LABEL}” to import over it.")
    if out_dir.exists():
        try:
            runs.check_replace(out_dir)
        except ValueError as exc:
            raise ImportProblem(plain(exc)) from exc
    try:
        return importer.import_dataset(source, out_dir, test_fraction=test_fraction, progress=progress, overwrite=overwrite)
    except importer.ImportRefused as exc:
        raise ImportProblem(f"This file was refused: {_first_line(exc)}", _details(exc)) from exc
    except zipfile.BadZipFile as exc:
        raise ImportProblem("This file is not a zip archive (or it is damaged). Upload a .zip of plate photos.",
                            _details(exc)) from exc
    except (FileNotFoundError, ValueError, OSError) as exc:
        raise ImportProblem(f"The import did not work: {_first_line(exc)}", _details(exc)) from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return plain(text.splitlines()[0] if text else type(exc).__name__)


def _details(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    report = getattr(exc, "report", None) or {}
    rejected = report.get("rejected") or []
    if rejected:
        lines = [f"  {item.get('file')}: {item.get('reason')}" for item in rejected[:50]]
        more = f"\n  ... and {len(rejected) - 50} more" if len(rejected) > 50 else ""
        text += "\n\nFiles left out:\n" + "\n".join(lines) + more
    return text


def remove_upload(path: Path | None) -> None:
    """Delete a file written by save_upload, and its private folder."""
    if not path:
        return
    path = Path(path)
    uploads = (data_home() / "uploads").resolve()
    claim = _UPLOAD_CLAIMS.pop(path, None)
    try:
        if path.parent.resolve().parent == uploads:
            shutil.rmtree(path.parent, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    finally:
        if claim is not None:
            claim.release()


def thumbnails(dataset_dir: Path, count: int = 12, seed: int = 0) -> list[tuple[Path, str]]:
    """Some accepted photos with their labels, spread over the dataset (labels.csv read through
    DatasetFolder.rows(), so a formula-looking label shows as typed)."""
    import random

    from engine.data.dataset import DatasetFolder

    folder = DatasetFolder(dataset_dir)
    try:
        rows = folder.rows()
    except FileNotFoundError:
        return []
    picked = random.Random(seed).sample(rows, count) if len(rows) > count else rows
    out = []
    for row in picked:
        try:
            path = folder.image_path(row["file"])
        except ValueError:  # a hand-edited labels.csv naming a file outside images/
            continue
        if path.is_file():
            out.append((path, row["label"]))
    return out


def report_tables(report: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rejected, warnings) as DataFrames with columns file, reason."""
    def frame(items):
        rows = [{"file": i.get("file", ""), "reason": i.get("reason", "")} for i in (items or [])]
        return pd.DataFrame(rows, columns=["file", "reason"])
    return frame(report.get("rejected")), frame(report.get("warnings"))


# the page's two ways in ---------------------------------------------------------------------------
def import_upload(uploaded: Any, name: str, *, test_fraction: float, replace: bool) -> None:
    """Save the upload, import it with a progress bar, say what happened; the new dataset is picked."""
    bar = st.progress(0.0, text="Saving the upload...")
    tmp = None
    try:
        tmp = save_upload(uploaded)
        report = run_import(tmp, name, test_fraction=test_fraction, overwrite=replace,
                            progress=import_progress(lambda f, t: bar.progress(f, text=t)))
    except ImportProblem as exc:
        bar.empty()
        show_error(exc.message, details=exc.details)
    except UnsafeName as exc:
        bar.empty()
        show_error(f"That dataset name cannot be used: {plain(exc)}")
    except Exception as exc:  # noqa: BLE001
        bar.empty()
        show_error("The import stopped because of an unexpected problem.", exc)
    else:
        bar.progress(1.0, text="Done")
        imported = dataset_dir_for(name).name
        _pick(imported)
        left_out, warned = len(report.get("rejected") or []), len(report.get("warnings") or [])
        labels = f" Labels taken from {label_source(report)}." if report.get("labels_from") else ""
        st.success(f"Imported {plural(report.get('accepted', 0), 'photo')} into {quoted(imported)}.{labels} "
                   + (f"{plural(left_out, 'file')} {'was' if left_out == 1 else 'were'} left out: why is listed below."
                      if left_out else "No file was left out.")
                   + (f" Read the {plural(warned, 'warning')} below before training." if warned else ""),
                   icon=":material/check_circle:")
    finally:
        remove_upload(tmp)


def use_sample() -> None:
    """The built-in sample data, made once and picked."""
    from engine.data import sample

    with friendly_errors("The sample data could not be made."):
        with st.spinner("Drawing sample plates..."):
            path = Path(sample.ensure_sample_dataset())
        _pick(path.name)
        st.success(f"Sample data is ready as {quoted(path.name)}.", icon=":material/check_circle:")


def _pick(dataset: str) -> None:
    remember("dataset", dataset)
    st.session_state["data_pick"] = dataset


