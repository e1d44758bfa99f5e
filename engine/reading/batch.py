"""Reading many photos at once: files, folders and zips (with the Data page's safety checks), in
batches, into rows for a table or a CSV. Used by `python -m engine predict` and the Try it page.

A photo whose file name is a plate text (`34FK4522.jpg`) also gets that text and whether the
reading matches it; a photo that cannot be read gets the reason, and the others go on.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from engine.data.labels import IMAGE_EXTENSIONS, label_from_filename
from engine.data.listing import Candidate, list_source
from engine.storage.csvfile import csv_bytes, write_csv

COLUMNS = ["file", "reading", "confidence", "accepted", "name_says", "matches_name", "problem"]
Progress = Callable[[int, int], None]


def _file_candidate(path: Path) -> Candidate:
    return Candidate(path.name, label_from_filename(path.name), lambda p=path: p.read_bytes())


def list_photos(sources: Sequence[str | os.PathLike], stack: contextlib.ExitStack) -> list[Candidate]:
    """Every photo of the given files, folders and zips (zip handles stay open in `stack`)."""
    out: list[Candidate] = []
    for source in sources:
        path = Path(source).expanduser()
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            out.append(_file_candidate(path))
        else:
            out.extend(list_source(path, stack, with_label_files=False).candidates)
    return out


def _looks_like_plate(label: str) -> bool:
    return bool(label) and label.isalnum() and any(c.isdigit() for c in label) and len(label) <= 16


def read_photos(reader, photos: Iterable[Candidate], total: int | None = None, batch_size: int = 64,
                progress: Progress | None = None) -> Iterator[dict]:
    """One row per photo (COLUMNS), in order, read `batch_size` at a time."""
    batch: list[tuple[Candidate, bytes]] = []
    done = 0

    def flush() -> Iterator[dict]:
        nonlocal done
        if not batch:
            return
        try:
            readings = reader.read([data for _, data in batch])
        except ValueError:  # one photo spoiled the batch: read them one by one to tell which
            readings = []
            for _, data in batch:
                try:
                    readings.append(reader.read_one(data))
                except ValueError as exc:
                    readings.append(exc)
        for (cand, _), reading in zip(batch, readings):
            yield _row(cand, reading)
        done += len(batch)
        batch.clear()
        if progress:
            progress(done, total or done)

    for cand in photos:
        if cand.problem:
            yield _row(cand, ValueError(cand.problem))
            done += 1
            continue
        try:
            batch.append((cand, cand.load()))
        except (OSError, ValueError) as exc:
            yield _row(cand, exc)
            done += 1
            continue
        if len(batch) >= batch_size:
            yield from flush()
    yield from flush()


def _row(cand: Candidate, reading) -> dict:
    named = cand.label if _looks_like_plate(cand.label) else ""
    if isinstance(reading, Exception):
        return {"file": cand.name, "reading": "", "confidence": None, "accepted": None, "name_says": named,
                "matches_name": None, "problem": str(reading)}
    return {"file": cand.name, "reading": reading.text, "confidence": round(reading.confidence, 4),
            "accepted": reading.accepted, "name_says": named,
            "matches_name": (reading.text == named) if named else None, "problem": ""}


def _cells(rows: Iterable[dict]) -> Iterator[list]:
    return ([("" if r[c] is None else r[c]) for c in COLUMNS] for r in rows)


def write_rows(path: str | os.PathLike, rows: Iterable[dict]) -> None:
    write_csv(path, COLUMNS, _cells(rows))


def rows_csv(rows: Iterable[dict]) -> bytes:
    """The same CSV as `write_rows`, for a download button."""
    return csv_bytes(COLUMNS, _cells(rows))
