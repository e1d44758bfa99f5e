"""Data: import a zip of plate photos (or the sample data), check what was accepted, manage datasets."""
from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard import data as ddata
from dashboard.common import fmt_time, friendly_errors, show_error, page_guard
from engine import runs
from engine.storage.paths import UnsafeName



def _px(value) -> str:
    try:
        return f"{float(value):.0f}"
    except (TypeError, ValueError):
        return "?"


page_guard()
st.title("Data")
st.write(
    "Upload a **zip of plate photos** whose file names are the plate text, like `34FK4522.jpg` "
    "(a second photo of the same plate: `34FK4522_1.jpg`). Photos whose names are not plate text "
    "are listed with the reason and left out."
)

# 1. import --------------------------------------------------------------------------------------
with st.container(border=True):
    st.subheader("Add plate photos")
    uploaded = st.file_uploader("Zip of plate photos", type=["zip"], key="data_upload",
                                help="One .zip file, up to 1 GB. Folders inside the zip are fine.")
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
                                 help="Share of plates the model never trains on; the Results page scores it on them.")
    replace = st.checkbox("Replace a dataset with the same name", key="data_replace")

    buttons = st.container(horizontal=True)
    import_clicked = buttons.button("Import", type="primary", disabled=uploaded is None, key="data_import",
                               icon=":material/upload:")
    sample_clicked = buttons.button("Use sample data", key="data_sample", icon=":material/auto_awesome:",
                               help="A few hundred generated plates, to try the whole flow in minutes.")

    if import_clicked and uploaded is not None:
        bar = st.progress(0.0, text="Saving the upload...")
        tmp = None
        try:
            tmp = ddata.save_upload(uploaded)
            bar.progress(0.02, text="Checking the zip...")
            report = ddata.run_import(
                tmp, name, test_fraction=test_percent / 100, overwrite=replace,
                progress=ddata.progress_adapter(lambda f, t: bar.progress(f, text=t)),
            )
            bar.progress(1.0, text="Done")
            st.session_state["current_dataset"] = ddata.dataset_dir_for(name).name
            st.session_state["data_pick"] = st.session_state["current_dataset"]
            st.success(f"Imported {report.get('accepted', 0)} photos into '{st.session_state['current_dataset']}'. "
                       f"{len(report.get('rejected') or [])} were left out.", icon=":material/check_circle:")
        except ddata.ImportProblem as exc:
            bar.empty()
            show_error(exc.message, details=exc.details)
        except UnsafeName as exc:
            bar.empty()
            show_error(f"That dataset name cannot be used: {exc}")
        except Exception as exc:  # noqa: BLE001
            bar.empty()
            show_error("The import stopped because of an unexpected problem.", exc)
        finally:
            ddata.remove_upload(tmp)

    if sample_clicked:
        with friendly_errors("The sample data could not be made."):
            with st.spinner("Drawing sample plates..."):
                path = ddata.sample_dataset()
            st.session_state["current_dataset"] = path.name
            st.session_state["data_pick"] = path.name
            st.success(f"Sample data is ready as '{path.name}'.", icon=":material/check_circle:")

# 2. datasets ------------------------------------------------------------------------------------
st.subheader("Your datasets")
datasets = runs.list_datasets()
if not datasets:
    st.info("No datasets yet. Upload a zip above, or press **Use sample data**.", icon=":material/info:")
    st.stop()

by_name = {d["name"]: d for d in datasets}
names = list(by_name)
current = st.session_state.get("current_dataset")
if st.session_state.get("data_pick") not in by_name:
    st.session_state["data_pick"] = current if current in by_name else names[0]
pick = st.selectbox(
    "Dataset", names, key="data_pick",
    format_func=lambda n: f"{n}  ({by_name[n]['accepted']} photos, imported {fmt_time(by_name[n]['created_at'])})",
)
st.session_state["current_dataset"] = pick
info = by_name[pick]
report = info["report"]

m = st.columns(5)
m[0].metric("Accepted photos", f"{report.get('accepted', 0)}")
m[1].metric("Left out", f"{len(report.get('rejected') or [])}", help="Files that were not imported; reasons below.")
m[2].metric("Warnings", f"{len(report.get('warnings') or [])}", help="Imported, but worth a look.")
m[3].metric("For training", f"{report.get('train', 0)} photos")
m[4].metric("For testing", f"{report.get('test', 0)} photos", help="Never used for training; used to score the model.")

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
    st.caption(f"Image sizes: width {_px(w.get('min'))}-{_px(w.get('max'))} px (median {_px(w.get('median'))} px), "
               f"height {_px(h.get('min'))}-{_px(h.get('max'))} px (median {_px(h.get('median'))} px). "
               f"Characters: {report.get('charset', '')}")

st.markdown("**Some accepted photos** (label taken from the file name)")
thumbs = ddata.thumbnails(info["path"], count=12)
if thumbs:
    cols = st.columns(6)
    for i, (path, label) in enumerate(thumbs):
        cols[i % 6].image(str(path), caption=label, width="stretch")
else:
    st.caption("No images to show.")

actions = st.container(horizontal=True)
if actions.button("Train on this dataset", type="primary", icon=":material/model_training:", key="data_to_train"):
    st.session_state["train_dataset"] = pick
    st.switch_page("pages/train.py")
with actions.popover("Delete dataset", icon=":material/delete:"):
    st.write(f"Delete **{pick}** and its imported photos? Runs trained on it are kept.")
    if st.button("Yes, delete it", type="primary", key="data_delete_confirm"):
        try:
            runs.delete_dataset(pick)
        except runs.TrainingBusy as exc:
            show_error(str(exc))
        except Exception as exc:  # noqa: BLE001
            show_error("The dataset could not be deleted.", exc)
        else:
            st.session_state.pop("current_dataset", None)
            st.session_state.pop("data_pick", None)
            st.rerun()
