"""Data page helpers: saving an upload, running the import with a progress bar, reading a dataset."""
from __future__ import annotations

import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import pandas as pd

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
    return f"One .zip file, up to {upload_limit_mb()} MB. Folders inside the zip are fine."


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
            raise ImportProblem(f"Not enough disk space to save the upload in {folder}; nothing was kept. Free some "
                                "disk space and upload again.", f"{type(exc).__name__}: {exc}") from exc
        raise
    return target


def progress_adapter(update: Callable[[float, str], None]) -> Callable[..., None]:
    """A progress callback for engine.data.importer that accepts the usual shapes.

    (fraction), (done, total), (done, total, message), (message, fraction) or keywords
    done=/total=/fraction=/message= all end up as update(fraction in [0, 1], text).
    """
    def callback(*args: Any, **kwargs: Any) -> None:
        numbers = [a for a in args if isinstance(a, (int, float)) and not isinstance(a, bool)]
        texts = [a for a in args if isinstance(a, str)]
        done = kwargs.get("done", kwargs.get("current"))
        total = kwargs.get("total")
        fraction = kwargs.get("fraction")
        message = kwargs.get("message") or kwargs.get("stage") or (texts[0] if texts else "")
        if fraction is None:
            if done is None and numbers:
                done = numbers[0]
                total = numbers[1] if len(numbers) > 1 else total
            if done is not None and total:
                fraction = float(done) / float(total)
                if not message:
                    message = f"{int(done)} of {int(total)} files"
            elif done is not None and float(done) <= 1.0:
                fraction = float(done)
        try:
            fraction = min(1.0, max(0.0, float(fraction if fraction is not None else 0.0)))
        except (TypeError, ValueError):
            fraction = 0.0
        update(fraction, str(message or "Importing..."))
    return callback


def run_import(source: Path, name: str, *, test_fraction: float = 0.2, overwrite: bool = False,
               progress: Callable[..., None] | None = None) -> dict:
    """engine.data.importer.import_dataset into datasets/<name>, with errors turned into ImportProblem."""
    from engine.data import importer  # imported here: the page loads fast without it

    out_dir = dataset_dir_for(name)
    if out_dir.exists() and not overwrite:
        raise ImportProblem(f"A dataset called '{out_dir.name}' already exists. Choose another name, "
                            "or tick 'Replace it' to import over it.")
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
    return text.splitlines()[0] if text else type(exc).__name__


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


def labels_frame(dataset_dir: Path) -> pd.DataFrame:
    """labels.csv (file, label, split, width, height); empty frame if missing."""
    path = Path(dataset_dir) / "labels.csv"
    if not path.exists():
        return pd.DataFrame(columns=["file", "label", "split", "width", "height"])
    return pd.read_csv(path, dtype={"file": str, "label": str, "split": str}, keep_default_na=False)


def image_file(dataset_dir: Path, file: str) -> Path | None:
    """images/<file> of a dataset, refusing anything that would leave the images folder."""
    base = (Path(dataset_dir) / "images").resolve()
    path = (base / str(file)).resolve()
    if base not in path.parents or not path.is_file():
        return None
    return path


def thumbnails(dataset_dir: Path, count: int = 12, seed: int = 0) -> list[tuple[Path, str]]:
    """Some accepted images with their labels, spread over the dataset."""
    frame = labels_frame(dataset_dir)
    if frame.empty:
        return []
    picked = frame.sample(n=min(count, len(frame)), random_state=seed) if len(frame) > count else frame
    out = []
    for row in picked.itertuples(index=False):
        path = image_file(dataset_dir, row.file)
        if path is not None:
            out.append((path, str(row.label)))
    return out


def report_tables(report: dict) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rejected, warnings) as DataFrames with columns file, reason."""
    def frame(items):
        rows = [{"file": i.get("file", ""), "reason": i.get("reason", "")} for i in (items or [])]
        return pd.DataFrame(rows, columns=["file", "reason"])
    return frame(report.get("rejected")), frame(report.get("warnings"))


def sample_dataset() -> Path:
    from engine.data import sample

    return Path(sample.ensure_sample_dataset())


