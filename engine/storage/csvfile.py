"""CSV files people open in a spreadsheet: every CSV the engine writes goes through `write_csv`.

A cell starting with `=`, `+`, `-`, `@` (or a tab/carriage return) is a formula to Excel and
LibreOffice: a label such as `=CMD()|A1` would run when the file is opened. Such cells get a
leading apostrophe, which spreadsheets show as plain text; `read_csv` removes it again, so the
engine reads back exactly what it wrote.
"""
from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any, Iterable, Sequence, TextIO

from engine.storage.files import atomic_writer

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The value as a spreadsheet will show it as text (numbers are left alone)."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def plain_cell(value: str) -> str:
    """Undo `safe_cell` for a text cell read back."""
    if value.startswith("'") and value[1:].startswith(FORMULA_START):
        return value[1:]
    return value


def _write_rows(text: TextIO, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    writer = csv.writer(text)
    writer.writerow(header)
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    buf = io.StringIO()
    _write_rows(buf, header, rows)
    return buf.getvalue().encode("utf-8")


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Write a CSV atomically, formula-looking cells neutralised; rows are streamed to disk (a
    dataset's labels.csv may have 100k of them)."""
    with atomic_writer(path) as f:
        text = io.TextIOWrapper(f, encoding="utf-8", newline="")
        _write_rows(text, header, rows)
        text.flush()
        text.detach()  # the binary file stays open for atomic_writer to sync and rename


def read_csv(path: str | os.PathLike) -> list[dict[str, str]]:
    """Rows of a CSV written by `write_csv`, as dicts of plain text."""
    with open(Path(path), encoding="utf-8-sig", newline="") as f:
        return [{k: plain_cell(v or "") for k, v in row.items()} for row in csv.DictReader(f)]
