"""The model download, in one step: the trainer prepares bundle.zip when training ends; when it is
missing, or older than the model, the threshold or the scores it holds, it is made again here
(with a spinner) before the download button appears."""
from __future__ import annotations

import streamlit as st

from dashboard.errors import show_error
from dashboard.live import ACTIVE_EVERY
from dashboard.runinfo import zipping
from engine.reading.export import bundle_is_current
from engine.runs import get_run
from engine.storage.files import human_bytes
from engine.storage.runfolder import RunFolder

ABOUT = ("The download is one zip file with the trained model, its scores, the threshold you chose and a README. "
         "Unzip it on any computer with Python and run `python read_plates.py photos/ > readings.csv` to read a "
         "folder of plate photos (the README also shows how to use it from TensorFlow or TF Serving).")


def download(run: dict, *, key: str) -> None:
    """The note on what the download holds, and the download button (preparing the zip first if needed)."""
    st.markdown(ABOUT)
    if run.get("active"):  # the button appears by itself when the run ends
        st.fragment(_when_ended, run_every=ACTIVE_EVERY)(run["id"])
    else:
        _button(run, key)


def _when_ended(run_id: str) -> None:
    run = get_run(run_id)
    if not run["active"]:
        st.rerun(scope="app")  # the whole page: its scores and verdict may be new too
    elif zipping(run):
        st.caption("Training has ended and the download is being prepared; the button appears here in about a minute.")
    else:
        st.caption("The download is ready when the training ends (or is stopped).")


def _button(run: dict, key: str) -> None:
    if not run.get("has_checkpoint"):
        st.caption("This run has no saved model yet, so there is nothing to download.")
        return
    if not bundle_is_current(run["path"]):
        try:
            with st.spinner("Preparing the download (this takes up to a minute)..."):
                from engine.reading.export import make_bundle

                make_bundle(run["path"])
        except Exception as exc:  # noqa: BLE001
            show_error("The download could not be prepared.", exc)
            return
    bundle = RunFolder(run["path"]).bundle_path
    st.download_button(f"Download the model ({human_bytes(bundle.stat().st_size)})", lambda: bundle.read_bytes(),
                       file_name=f"plate-reader-{run['id']}.zip", mime="application/zip", type="primary",
                       icon=":material/download:", key=key, on_click="ignore")
