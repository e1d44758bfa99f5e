"""Results: how well a finished run reads the test photos, plate by plate, with attention GIFs."""
from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard import results as res
from dashboard.common import fmt_pct, run_label, show_error, page_guard
from dashboard.training import metrics_of

page_guard()
st.title("Results")

candidates = res.evaluated_runs()
if not candidates:
    st.info("No finished training yet. Results appear here when a training ends "
            "(it scores itself on the test photos it never trained on).", icon=":material/info:")
    st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

by_id = {r["id"]: r for r in candidates}
wanted = st.query_params.get("run") or st.session_state.get("results_run")
if st.session_state.get("results_pick") not in by_id:
    st.session_state["results_pick"] = wanted if wanted in by_id else candidates[0]["id"]
run_id = st.selectbox("Run", list(by_id), key="results_pick", format_func=lambda i: run_label(by_id[i]))
st.session_state["results_run"] = run_id
if st.query_params.get("run") != run_id:
    st.query_params["run"] = run_id
run = by_id[run_id]
evaluation = run["evaluation"]

# headline ---------------------------------------------------------------------------------------
m = st.columns([1, 1, 1, 2])
m[0].metric("Plate accuracy", fmt_pct(evaluation.get("plate_accuracy")),
            help="Share of plates read exactly right, every character.")
m[1].metric("Character accuracy", fmt_pct(evaluation.get("char_accuracy")),
            help="Share of characters read right, over all plates.")
m[2].metric("Test photos", f"{evaluation.get('count', 0)}")
with m[3]:
    st.markdown(
        "**Plate accuracy**: share of plates read exactly right.  \n"
        "**Character accuracy**: share of single characters read right, so one wrong letter on a "
        "7-letter plate still counts 6 right.  \n"
        "Both are measured on test photos the model never saw while training."
    )

metrics = metrics_of(run)
if metrics:
    st.plotly_chart(charts.accuracy_chart(metrics, title="Accuracy per epoch (on held-out validation photos)"),
                    key="results_acc_chart")

# predictions ------------------------------------------------------------------------------------
st.subheader("Every test photo")
frame = res.predictions(run)
if frame.empty:
    st.info("This run has no predictions table (predictions.csv).", icon=":material/info:")
else:
    f1, f2, f3 = st.columns([1, 1, 2])
    wrong_only = f1.toggle("Only wrong readings", key="results_wrong")
    sort = f2.selectbox("Sort by", ["confidence, lowest first", "confidence, highest first", "label", "file"],
                        key="results_sort")
    search = f3.text_input("Search plate text", key="results_search", placeholder="e.g. 34FK")
    view = res.filter_predictions(frame, wrong_only=wrong_only, search=search, sort=sort)
    wrong_count = int((~frame["correct"]).sum()) if "correct" in frame else 0
    st.caption(f"{len(view)} of {len(frame)} photos shown; {wrong_count} read wrong. "
               "Click a row to see the photo and where the model looked.")

    left, right = st.columns([3, 2])
    with left:
        selection = st.dataframe(
            view, hide_index=True, width="stretch", height=min(420, 35 * (len(view) + 1) + 3), key=res.table_key(run_id, wrong_only, search, sort),
            on_select="rerun", selection_mode="single-row-required",
            column_order=["label", "prediction", "confidence", "correct", "file"],
            column_config={
                "label": st.column_config.TextColumn("Plate (true text)"),
                "prediction": st.column_config.TextColumn("Read as"),
                "confidence": st.column_config.ProgressColumn("Confidence", min_value=0.0, max_value=1.0, format="percent"),
                "correct": st.column_config.CheckboxColumn("Right?"),
                "file": st.column_config.TextColumn("File"),
            },
        )
        st.download_button("Download predictions (CSV)", frame.to_csv(index=False).encode("utf-8"),
                           file_name=f"predictions-{run_id}.csv", mime="text/csv", icon=":material/download:",
                           key="results_csv", on_click="ignore")
    with right:
        rows = list(getattr(getattr(selection, "selection", None), "rows", None) or [])
        if view.empty:
            st.caption("No photo matches the filter.")
        else:
            row = view.iloc[rows[0] if rows and rows[0] < len(view) else 0]
            ok = bool(row.get("correct"))
            mark = ":green[:material/check_circle:]" if ok else ":red[:material/cancel:]"
            st.markdown(f"#### {mark} `{row['label']}` read as `{row['prediction'] or '(nothing)'}`")
            st.caption(f"Confidence {fmt_pct(row.get('confidence'))}. File: {row['file']}")
            data = res.image_bytes(run, row["file"])
            if data is None:
                st.warning("The photo is not available (was the dataset deleted?).", icon=":material/warning:")
            else:
                st.image(data, caption="The photo", width="stretch")
                try:
                    with st.spinner("Drawing where the model looks..."):
                        drawn = res.read_plate(run, data)
                except Exception as exc:  # noqa: BLE001
                    show_error("The attention animation could not be made for this photo.", exc)
                else:
                    st.image(drawn["gif"], caption="Where the model looks for each character (animated)",
                             width="stretch")

# confusion --------------------------------------------------------------------------------------
st.subheader("Which characters get mixed up")
conf = res.confusion(run)
top = res.top_confusions(conf) if not conf.empty else conf
if conf.empty or top.empty:
    st.caption("No character was read as another one on the test photos.")
else:
    c1, c2 = st.columns([1, 2])
    with c1:
        st.dataframe(top, hide_index=True, width="stretch", key="results_confusions",
                     column_config={"expected": "Expected", "read as": "Read as", "times": "Times"})
    with c2:
        st.plotly_chart(charts.confusion_heatmap(conf), key="results_confusion_map")
    st.caption("'(none)' as expected: the model read a character that is not on the plate. "
               "'(none)' as read: it missed a character.")
