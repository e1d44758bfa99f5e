"""Runs: every training at a glance; one run's verdict, download, technical details and delete;
accuracy curves side by side."""
from __future__ import annotations

import streamlit as st

from dashboard import bundle, charts, history
from dashboard.common import page_guard
from dashboard.pickers import choose_run, nothing_yet
from dashboard.runinfo import run_title, score_sentence, show_verdict, started_from, state_badge
from dashboard.text import fmt_duration, fmt_time, plain, quoted
from engine import runs
from engine.storage.runfolder import RunFolder

page_guard()
st.title("Runs")

all_runs = runs.list_runs()
if not all_runs:
    nothing_yet("No trainings yet. Start one on the Train page.")

st.dataframe(
    history.runs_table(all_runs), hide_index=True, width="stretch", key="runs_table",
    column_order=["name", "state", "plate accuracy", "verdict", "dataset", "started", "took"],
    column_config={
        "name": st.column_config.TextColumn("Run", width="medium"),
        "state": st.column_config.TextColumn("State", width="small"),
        "plate accuracy": st.column_config.TextColumn("Plate accuracy", width="small",
                                                      help="Share of its test plates read exactly right."),
        "verdict": st.column_config.TextColumn("Verdict", width="small"),
        "dataset": st.column_config.TextColumn("Dataset", width="small"),
        "started": st.column_config.TextColumn("Started", width="small"),
        "took": st.column_config.TextColumn("Took", width="small"),
    },
)

# one run ----------------------------------------------------------------------------------------
st.subheader("One run")
run = choose_run(all_runs, key="runs_pick", empty="No trainings yet.")
with st.container(border=True):
    head, badge = st.columns([5, 1], vertical_alignment="center")
    head.markdown(f"#### {plain(run_title(run))}")
    with badge:
        state_badge(run)
    status = run["status"]
    st.markdown(f"Trained on {quoted(run['dataset_name'] or '?')}, started from {started_from(run)}, "
                f"{fmt_time(run['created_at'])}; it took {fmt_duration(status.get('elapsed_seconds'))}. "
                + score_sentence(run))
    show_verdict(run.get("verdict"))
    download, delete = st.columns([3, 2])
    with download:
        bundle.download(run, key=f"runs_download_{run['id']}")
    with delete:
        history.delete_box(run)
    history.technical_details(run)

# curves -----------------------------------------------------------------------------------------
st.subheader("Compare how runs learned")
by_id = {r["id"]: r for r in all_runs}
with_metrics = [r["id"] for r in all_runs if RunFolder(r["path"]).metrics_path.exists()]
if not with_metrics:
    st.caption("Curves appear once a run has made its first check on held-out photos.")
else:
    chosen = st.multiselect("Runs to compare", with_metrics, default=with_metrics[:4], key="runs_compare",
                            format_func=lambda i: run_title(by_id[i]))
    st.plotly_chart(charts.overlay_chart([(run_title(by_id[i]), RunFolder(by_id[i]["path"]).metrics()) for i in chosen]),
                    key="runs_overlay")
    st.caption("Held-out photos: a few training photos kept out of learning to check progress during training.")
