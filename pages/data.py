"""Data: import a zip of plate photos (or the sample data), check what was accepted, manage datasets."""
from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard import data as ddata
from dashboard.common import page_guard
from dashboard.errors import attempt
from dashboard.pickers import remembered_choice
from dashboard.text import fmt_time, plain, quoted
from engine import runs

page_guard()
st.title("Data")
st.write(
    "Upload a **zip of plate photos** whose file names are the plate text, like `34FK4522.jpg` "
    "(a second photo of the same plate: `34FK4522_1.jpg`), or with a CSV inside that gives each photo's "
    "plate text (columns `file,label`). Photos without a plate text are listed with the reason and left out."
)

# 1. import --------------------------------------------------------------------------------------
with st.container(border=True):
    st.subheader("Add plate photos")
    uploaded = st.file_uploader("Zip of plate photos", type=["zip"], key="data_upload", help=ddata.upload_help())
    upload_name = getattr(uploaded, "name", None)
    if upload_name and st.session_state.get("_data_upload_seen") != upload_name:
        st.session_state["_data_upload_seen"] = upload_name
        st.session_state["data_name"] = ddata.default_name(upload_name)
    st.session_state.setdefault("data_name", "plates")

    left, right = st.columns([2, 1])
    with left:
        name = st.text_input("Dataset name", key="data_name", max_chars=64,
                             help="Letters, digits, '-' and '_'. Used to find this dataset later.")
    with right:
        test_percent = st.slider("Kept aside for testing", min_value=5, max_value=50, value=20, step=5,
                                 format="%d %%", key="data_test_percent",
                                 help="Test photos: a share of the plates the model never learns from. "
                                      "The final score on the Results page is measured on them.")
    replace = st.checkbox(ddata.REPLACE_LABEL, key="data_replace")

    buttons = st.container(horizontal=True)
    import_clicked = buttons.button("Import", type="primary", disabled=uploaded is None, key="data_import",
                                    icon=":material/upload:")
    sample_clicked = buttons.button("Use sample data", key="data_sample", icon=":material/auto_awesome:",
                                    help="A few hundred generated plates, to try the whole flow in minutes.")

    if import_clicked and uploaded is not None:
        ddata.import_upload(uploaded, name, test_fraction=test_percent / 100, replace=replace)
    if sample_clicked:
        ddata.use_sample()

# 2. datasets ------------------------------------------------------------------------------------
st.subheader("Your datasets")
datasets = runs.list_datasets()
if not datasets:
    st.info("No datasets yet. Upload a zip above, or press **Use sample data**.", icon=":material/info:")
    st.stop()

by_name = {d["name"]: d for d in datasets}
pick = remembered_choice(
    "Dataset", list(by_name), key="data_pick", memory="dataset",
    format_func=lambda n: f"{n}  ({by_name[n]['accepted']} photos, imported {fmt_time(by_name[n]['created_at'])})",
)
info = by_name[pick]
report = info["report"]

m = st.columns(5)
m[0].metric("Accepted photos", f"{report.get('accepted', 0):,}")
m[1].metric("Left out", f"{len(report.get('rejected') or []):,}", help="Files that were not imported; reasons below.")
m[2].metric("Warnings", f"{len(report.get('warnings') or []):,}", help="Imported, but worth a look.")
m[3].metric("For training", f"{report.get('train', 0):,}",
            help="The model learns from these (a few of them are held out to check its progress while it trains).")
m[4].metric("For testing", f"{report.get('test', 0):,}",
            help="Test photos: never learned from; the final score on the Results page is measured on them.")

rejected, warnings = ddata.report_tables(report)
if not rejected.empty:
    st.markdown("**Files left out, and why**")
    st.dataframe(rejected, hide_index=True, width="stretch", key="data_rejected",
                 column_config={"file": "File", "reason": "Why it was left out"})
if not warnings.empty:
    with st.expander(f"Warnings ({len(warnings)})"):
        st.dataframe(warnings, hide_index=True, width="stretch", key="data_warnings",
                     column_config={"file": "File", "reason": "Note"})

c1, c2 = st.columns(2)
with c1:
    st.plotly_chart(charts.length_histogram(report.get("label_length_histogram") or {}), key="data_len_hist")
with c2:
    st.plotly_chart(charts.char_histogram(report.get("char_histogram") or {}), key="data_char_hist")
size = report.get("image_size") or {}
if size.get("width") and size.get("height"):
    w, h = size["width"], size["height"]
    st.caption(f"Image sizes: width {w.get('min', 0):.0f}-{w.get('max', 0):.0f} px (median {w.get('median', 0):.0f} px), "
               f"height {h.get('min', 0):.0f}-{h.get('max', 0):.0f} px (median {h.get('median', 0):.0f} px). "
               f"Characters: {plain(report.get('charset', ''))}")

st.markdown(f"**Some accepted photos** (label taken from {ddata.label_source(report)})")
thumbs = ddata.thumbnails(info["path"], count=12)
if thumbs:
    cols = st.columns(6)
    for i, (path, label) in enumerate(thumbs):
        cols[i % 6].image(str(path), caption=plain(label), width="stretch")
else:
    st.caption("No images to show.")

actions = st.container(horizontal=True)
if actions.button("Train on this dataset", type="primary", icon=":material/model_training:", key="data_to_train"):
    st.switch_page("pages/train.py", query_params={"dataset": pick})
with actions.popover("Delete dataset", icon=":material/delete:"):
    st.write(f"Delete {quoted(pick)} and its imported photos? Runs trained on it are kept.")
    if st.button("Yes, delete it", type="primary", key="data_delete_confirm"):
        done, _ = attempt(lambda: runs.delete_dataset(pick), "The dataset could not be deleted.")
        if done:
            st.session_state.pop("data_pick", None)
            st.session_state.pop("chosen_dataset", None)
            st.query_params.pop("dataset", None)
            st.rerun()
