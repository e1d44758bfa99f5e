"""Try it: read new photos (or test photos) with a trained model; text, confidence, attention GIF."""
from __future__ import annotations

import streamlit as st

from dashboard import results as res
from dashboard.common import fmt_pct, run_label, show_error, page_guard

page_guard()
st.title("Try it")
st.write("Read plates the model has never seen: upload photos, or pick some from the test set.")

candidates = res.readable_runs()
if not candidates:
    st.info("There is no trained model yet. Train one on the Train page first.", icon=":material/info:")
    st.page_link("pages/train.py", label="Go to Train", icon=":material/model_training:")
    st.stop()

by_id = {r["id"]: r for r in candidates}
wanted = st.session_state.get("results_run")
if st.session_state.get("try_pick") not in by_id:
    st.session_state["try_pick"] = wanted if wanted in by_id else candidates[0]["id"]
run_id = st.selectbox("Model (training run)", list(by_id), key="try_pick", format_func=lambda i: run_label(by_id[i]))
run = by_id[run_id]
if run.get("active"):
    st.caption("This run is still training: you are trying the best model saved so far.")

upload_tab, test_tab = st.tabs(["Upload photos", "Pick from the test set"])
images: list[tuple[str, bytes, str | None]] = []  # (name, bytes, true label if known)
with upload_tab:
    uploads = st.file_uploader("Plate photos", type=["jpg", "jpeg", "png", "bmp", "webp"],
                               accept_multiple_files=True, key="try_upload",
                               help="One or more photos of a single plate each.")
    for up in uploads or []:
        images.append((up.name, up.getvalue(), None))
with test_tab:
    tests = res.test_images(run)
    if not tests:
        st.caption("The dataset of this run has no test photos here (it may have been deleted).")
        picked = []
    else:
        labels = {f: lab for f, lab in tests}
        picked = st.multiselect("Test photos", [f for f, _ in tests], key=f"try_tests_{run_id}",
                                format_func=lambda f: f"{labels[f]}  ({f})", max_selections=12,
                                placeholder="Choose up to 12 photos")
    for f in picked:
        data = res.image_bytes(run, f)
        if data is not None:
            images.append((f, data, labels.get(f)))

if not images:
    st.caption("Results appear here as soon as you add photos.")
    st.stop()

st.subheader(f"Readings ({len(images)} photo{'s' if len(images) != 1 else ''})")
for name, data, truth in images:
    with st.container(border=True):
        c1, c2, c3 = st.columns([2, 2, 3], vertical_alignment="center")
        with c1:
            try:
                st.image(data, caption=name, width="stretch")
            except Exception:  # noqa: BLE001 - a photo the browser cannot show
                st.caption(f"{name} (cannot be displayed)")
        try:
            with st.spinner(f"Reading {name}..."):
                reading = res.read_plate(run, data)
        except Exception as exc:  # noqa: BLE001
            with c2:
                show_error(f"{name} could not be read. Is it a photo (JPEG, PNG)?", exc)
            continue
        with c2:
            st.markdown(f"### `{reading['text'] or '(nothing)'}`")
            st.metric("Confidence", fmt_pct(reading["confidence"]),
                      help="How sure the model is of the whole plate (0-100 %).")
            if truth is not None:
                st.markdown(":green[:material/check_circle: right]" if reading["text"] == truth
                            else f":red[:material/cancel: the plate says `{truth}`]")
        with c3:
            st.image(reading["gif"], caption="Where the model looks for each character", width="stretch")
