"""Runs: every training with its settings and scores, accuracy curves side by side, download, delete."""
from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard import results as res
from dashboard.common import fmt_bytes, fmt_pct, run_label, show_error, state_label, page_guard
from dashboard.training import metrics_of
from engine import runs

page_guard()
st.title("Runs")

all_runs = runs.list_runs()
if not all_runs:
    st.info("No trainings yet. Start one on the Train page.", icon=":material/info:")
    st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

by_id = {r["id"]: r for r in all_runs}
table = charts.runs_frame(all_runs)
table["state"] = table["state"].map(state_label)
st.dataframe(
    table, hide_index=True, width="stretch", key="runs_table",
    column_order=["run", "state", "plate accuracy", "char accuracy", "dataset", "started", "preset", "epochs",
                  "training time", "image size", "batch", "learning rate", "time budget (min)", "id"],
    column_config={
        "run": st.column_config.TextColumn("Run"),
        "id": st.column_config.TextColumn("Folder"),
        "state": st.column_config.TextColumn("State"),
        "dataset": st.column_config.TextColumn("Dataset"),
        "started": st.column_config.TextColumn("Started"),
        "preset": st.column_config.TextColumn("Preset"),
        "epochs": st.column_config.NumberColumn("Epochs"),
        "plate accuracy": st.column_config.NumberColumn("Plate accuracy", format="percent",
                                                        help="Share of test plates read exactly right."),
        "char accuracy": st.column_config.NumberColumn("Character accuracy", format="percent"),
        "image size": st.column_config.TextColumn("Image size"),
        "batch": st.column_config.NumberColumn("Batch size"),
        "learning rate": st.column_config.NumberColumn("Learning rate", format="%g"),
        "time budget (min)": st.column_config.NumberColumn("Time budget", format="%g min"),
        "training time": st.column_config.NumberColumn("Training time", format="%d s"),
    },
)

# curves -----------------------------------------------------------------------------------------
st.subheader("Compare accuracy curves")
with_metrics = [r for r in all_runs if metrics_of(r)]
if not with_metrics:
    st.caption("Curves appear once a run has finished its first epoch.")
else:
    ids = [r["id"] for r in with_metrics]
    chosen = st.multiselect("Runs to compare", ids, default=ids[:4], key="runs_compare",
                            format_func=lambda i: run_label(by_id[i]))
    curves = {run_label(by_id[i]): metrics_of(by_id[i]) for i in chosen}
    st.plotly_chart(charts.overlay_chart(curves), key="runs_overlay")

# one run ----------------------------------------------------------------------------------------
st.subheader("Download or delete a run")
if st.session_state.get("runs_pick") not in by_id:
    st.session_state["runs_pick"] = all_runs[0]["id"]
run_id = st.selectbox("Run", list(by_id), key="runs_pick", format_func=lambda i: run_label(by_id[i]))
run = by_id[run_id]
ev = run.get("evaluation") or {}
st.caption(f"Folder {run['path']}. State: {state_label(run['state'])}. "
           f"Plate accuracy {fmt_pct(ev.get('plate_accuracy'))}, character accuracy {fmt_pct(ev.get('char_accuracy'))}.")

c1, c2 = st.columns(2)
with c1:
    with st.container(border=True):
        st.markdown("**Download the model**")
        st.caption("A zip with the trained model (SavedModel, Keras file, TFLite), its settings, scores "
                   "and a short README on how to use it.")
        if not run.get("has_checkpoint"):
            st.caption("This run has no saved model yet.")
        elif run.get("active"):
            st.caption("Wait for the training to end (or stop it) to download its model.")
        else:
            bundle = res.bundle_path(run)
            if bundle is None:
                if st.button("Prepare download", icon=":material/inventory_2:", key=f"runs_prepare_{run_id}"):
                    try:
                        with st.spinner("Packing the model (this can take a minute)..."):
                            res.make_bundle(run)
                    except Exception as exc:  # noqa: BLE001
                        show_error("The download could not be prepared.", exc)
                    else:
                        st.rerun()
            else:
                st.download_button(
                    f"Download model bundle ({fmt_bytes(bundle.stat().st_size)})", lambda path=bundle: path.read_bytes(),
                    file_name=f"plate-reader-{run_id}.zip", mime="application/zip", type="primary",
                    icon=":material/download:", key=f"runs_download_{run_id}", on_click="ignore",
                )
with c2:
    with st.container(border=True):
        st.markdown("**Delete this run**")
        st.caption("Removes its folder: model, charts and results. The dataset is kept.")
        if run.get("active"):
            st.caption("A run cannot be deleted while it trains. Stop it on the Train page first.")
        else:
            confirm = st.checkbox("Yes, delete this run for good", key=f"runs_confirm_{run_id}")
            if st.button("Delete run", icon=":material/delete:", disabled=not confirm, key=f"runs_delete_{run_id}"):
                try:
                    runs.delete_run(run_id)
                except runs.TrainingBusy as exc:
                    show_error(str(exc))
                except Exception as exc:  # noqa: BLE001
                    show_error("The run could not be deleted.", exc)
                else:
                    st.session_state.pop("runs_pick", None)
                    st.toast(f"Deleted {run.get('name') or run_id}.", icon=":material/delete:")
                    st.rerun()
