"""Try it: read new photos with a trained model: a table, a CSV, and where it looked on each plate."""
from __future__ import annotations

import streamlit as st

from dashboard import results as res
from dashboard import tryit
from dashboard.common import page_guard
from dashboard.pickers import choose_run
from dashboard.runinfo import zipping
from dashboard.text import fmt_pct, plain
from engine.reading import batch

page_guard()
st.title("Try it")
st.write("Read plates the model has never seen: upload photos, or a zip of them. Name a photo by its plate text "
         "(`34FK4522.jpg`) and the table also says whether the reading is right.")

run = choose_run(res.readable_runs(), key="try_pick", label="Model (training run)",
                 empty="There is no trained model yet. Train one on the Train page first.")
if run.get("active") and not zipping(run):  # zipping: trained and scored, the model is final
    st.caption("This run is still training: you are trying the best model saved so far.")
files = st.file_uploader("Plate photos, or zips of them", type=["jpg", "jpeg", "png", "bmp", "webp", "zip"],
                         accept_multiple_files=True, key="try_upload",
                         help="Photos of one plate each, or .zip files of them (checked like on the Data page).")
if not files:
    st.caption("Readings appear here as soon as you add photos.")
    st.stop()

reader = res.reader(run)
threshold = reader.threshold
rows = tryit.readings(run, reader, files)
if rows is None:
    st.stop()  # the reading failed: the error is shown above

st.markdown(tryit.summary(rows, threshold))
if threshold is None:
    st.caption("No threshold is chosen for this model yet, so every reading counts as accepted. Choose one on the "
               "Results page (“Which readings to trust”).")
left, right = st.columns([2, 1])
with left:
    picked = st.dataframe(
        tryit.table(rows), hide_index=True, width="stretch", key=f"try_table_{st.session_state['try_signature'][:10]}",
        on_select="rerun", selection_mode="single-row-required", height=min(420, 35 * (len(rows) + 1) + 3),
        column_order=tryit.columns_shown(rows),
        column_config={
            "file": st.column_config.TextColumn("File", width="small"),
            "reading": st.column_config.TextColumn("Read as", width="small"),
            "confidence": st.column_config.NumberColumn("Confidence", format="percent", width="small"),
            "accepted": st.column_config.TextColumn("Accepted?", width="small",
                                                    help="Confidence at or above the threshold chosen on the Results page."),
            "right": st.column_config.TextColumn("Right?", width="small"),
            "name_says": st.column_config.TextColumn("File name says", width="small"),
            "problem": st.column_config.TextColumn("Could not be read because", width="medium"),
        },
    )
    st.download_button("Download the readings (CSV)", batch.rows_csv(rows), file_name="readings.csv",
                       mime="text/csv", icon=":material/download:", key="try_csv", on_click="ignore")
with right:
    chosen = list(picked.selection.rows or [])
    row = rows[chosen[0] if chosen and chosen[0] < len(rows) else 0]
    if row["problem"]:
        st.warning(f"{plain(row['file'])} could not be read: {plain(row['problem'])}", icon=":material/warning:")
    else:
        verdict = {True: " :green[(right)]", False: f" :red[(the file name says {plain(row['name_says'])})]"}
        st.markdown(f"#### {plain(row['reading'] or '(nothing)')}{verdict.get(row['matches_name'], '')}")
        st.caption(f"{plain(row['file'])} · confidence {fmt_pct(row['confidence'])}")
        res.show_photo_and_attention(run, tryit.photo_bytes(files, row["file"]))
