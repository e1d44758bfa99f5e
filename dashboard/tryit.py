"""Try it: read many photos (files, or zips checked like the Data page's) in batches, into a table and
a CSV; engine.reading.batch does the reading, this module the uploads and the display."""
from __future__ import annotations

import contextlib
import hashlib
from typing import Any, Callable, Sequence

import pandas as pd
import streamlit as st

from dashboard import data as ddata
from dashboard.errors import friendly_errors
from dashboard.results import model_stamp
from engine.data.labels import label_from_filename
from engine.data.listing import Candidate
from engine.reading import batch

BATCH = 64  # photos per model call: big enough to be fast, small enough for a lively progress bar


def readings(run: dict, reader: Any, files: Sequence[Any]) -> list[dict] | None:
    """The rows of the uploaded photos, read once (with a progress bar) and kept in the session until
    the model, its threshold or the uploads change. None when they could not be read (said on the page)."""
    signature = _signature(run, files)
    if st.session_state.get("try_signature") != signature:
        bar = st.progress(0.0, text="Reading...")
        with friendly_errors("The photos could not be read."):
            rows = read_all(reader, files, lambda done, total: bar.progress(
                done / max(total, 1), text=f"Reading: {done:,} of {total:,} photos"))
            st.session_state.update(try_signature=signature, try_rows=rows)
        bar.empty()
    return st.session_state["try_rows"] if st.session_state.get("try_signature") == signature else None


def _signature(run: dict, files: Sequence[Any]) -> str:
    parts = [run["id"], repr(model_stamp(run))] + [f"{f.file_id}:{f.name}:{f.size}" for f in files]
    return hashlib.sha1("|".join(parts).encode()).hexdigest()


def photos(files: Sequence[Any], stack: contextlib.ExitStack) -> list[Candidate]:
    """Every photo of the uploads: photo files as they are, zips through the Data page's safety checks
    (the saved zips are removed when `stack` closes)."""
    out: list[Candidate] = []
    for upload in files:
        if upload.name.lower().endswith(".zip"):
            path = ddata.save_upload(upload)
            stack.callback(ddata.remove_upload, path)
            out.extend(batch.list_photos([path], stack))
        else:
            out.append(Candidate(upload.name, label_from_filename(upload.name), upload.getvalue))
    return out


def read_all(reader: Any, files: Sequence[Any], progress: Callable[[int, int], None]) -> list[dict]:
    """Read every uploaded photo, BATCH at a time: one row per photo (engine.reading.batch.COLUMNS)."""
    with contextlib.ExitStack() as stack:
        found = photos(files, stack)
        return list(batch.read_photos(reader, found, total=len(found), batch_size=BATCH, progress=progress))


def photo_bytes(files: Sequence[Any], name: str) -> bytes | None:
    """One photo of the uploads by its name in the table (from a zip: read again, checked again)."""
    with contextlib.ExitStack() as stack:
        for cand in photos(files, stack):
            if cand.name == name and cand.load and not cand.problem:
                return cand.load()
    return None


def table(rows: list[dict]) -> pd.DataFrame:
    """The rows in words: no empty 'None' cells, accepted and right/wrong spelled out."""
    words = {True: "yes", False: "no"}
    return pd.DataFrame([{"file": r["file"], "reading": r["reading"], "confidence": r["confidence"],
                          "accepted": "" if r["problem"] else words[r["accepted"] is not False],
                          "right": {True: "right", False: "wrong"}.get(r["matches_name"], ""),
                          "name_says": r["name_says"], "problem": r["problem"]} for r in rows])


def columns_shown(rows: list[dict]) -> list[str]:
    """The table's columns, less those with nothing to say (no file named by its plate, no failure)."""
    named = any(r["name_says"] for r in rows)
    return ["file", "reading", "confidence", "accepted"] + (["right", "name_says"] if named else []) + \
        (["problem"] if any(r["problem"] for r in rows) else [])


def summary(rows: list[dict], threshold: float | None) -> str:
    """Markdown: how many were read, accepted, and right where the file name says the plate."""
    read = [r for r in rows if not r["problem"]]
    named = [r for r in read if r["matches_name"] is not None]
    parts = [f"**{len(read)}** of {len(rows)} photos read"]
    if threshold is not None:
        parts.append(f"**{sum(bool(r['accepted']) for r in read)}** accepted (confidence at least {threshold:.0%})")
    if named:
        parts.append(f"**{sum(r['matches_name'] for r in named)}** of {len(named)} right where the file name is the plate text")
    return "; ".join(parts) + "."
