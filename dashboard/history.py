"""The Runs page's pieces: the table of every training in words (no empty 'None' cells), deleting a
run, and the technical details kept out of the main view."""
from __future__ import annotations

import json

import pandas as pd
import streamlit as st

from dashboard.errors import attempt
from dashboard.runinfo import run_title, state_word, verdict_word, zipping
from dashboard.text import fmt_duration, fmt_pct, fmt_time, quoted
from engine import runs
from engine.storage.runfolder import RunFolder


def runs_table(all_runs: list[dict]) -> pd.DataFrame:
    """One row per run: name, state, plate accuracy, verdict, dataset, when, how long (all text); `id` for picking."""
    rows = []
    for run in all_runs:
        status = run.get("status") or {}
        rows.append({
            "id": run["id"],
            "name": run_title(run),
            "state": state_word(run),
            "plate accuracy": fmt_pct(run.get("plate_accuracy")) if run.get("plate_accuracy") is not None else "not scored",
            "verdict": verdict_word(run) or "–",
            "dataset": run.get("dataset_name") or "–",
            "started": fmt_time(run.get("created_at")),
            "took": fmt_duration(status.get("elapsed_seconds")),
        })
    return pd.DataFrame(rows, columns=["id", "name", "state", "plate accuracy", "verdict", "dataset", "started", "took"])


def delete_box(run: dict) -> None:
    st.markdown("**Delete this run**")
    st.caption("Removes its model, charts and results. The dataset is kept.")
    if zipping(run):
        st.caption("It can be deleted in about a minute, once its download is ready.")
        return
    if run["active"]:
        st.caption("A run cannot be deleted while it trains. Stop it on the Train page first.")
        return
    confirm = st.checkbox("Yes, delete this run for good", key=f"runs_confirm_{run['id']}")
    if st.button("Delete run", icon=":material/delete:", disabled=not confirm, key=f"runs_delete_{run['id']}"):
        done, _ = attempt(lambda: runs.delete_run(run["id"]), "The run could not be deleted.")
        if done:
            st.session_state.pop("runs_pick", None)
            st.toast(f"Deleted {quoted(run_title(run))}.", icon=":material/delete:")
            st.rerun()


def technical_details(run: dict) -> None:
    """The run's folder, id, settings and the end of its log, shown as literal text in an expander."""
    with st.expander("Technical details"):
        st.text(f"Run folder: {run['path']}")
        st.text(f"Preset: {run['preset'] or 'none (settings given one by one)'}")
        st.code(json.dumps({"settings": run["settings"], "resolved": run["resolved"]}, indent=2, ensure_ascii=False),
                language="json")
        log = RunFolder(run["path"]).process_log_tail()
        if log:
            st.code(log, language=None)
