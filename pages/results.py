"""Results: how well a run reads the test photos it never trained on, plate by plate; labels to fix,
which readings to trust, and the download."""
from __future__ import annotations

import streamlit as st

from dashboard import bundle, charts, review, threshold, training
from dashboard import results as res
from dashboard.common import page_guard
from dashboard.pickers import choose_run, nothing_yet
from dashboard.runinfo import show_verdict
from dashboard.text import fmt_pct
from engine.storage.runfolder import RunFolder

page_guard()
st.title("Results")

candidates = res.evaluated_runs()
if not candidates:
    nothing_yet(*res.nothing_scored())
run = choose_run(candidates, key="results_pick", default=res.newest_finished(candidates), empty="")
evaluation = run["evaluation"]

# how good is it --------------------------------------------------------------------------------
show_verdict(run.get("verdict"))
m = st.columns([1, 1, 1, 2])
m[0].metric("Plate accuracy", fmt_pct(evaluation.get("plate_accuracy")),
            help="Share of test plates read exactly right, every character.")
m[1].metric("Character accuracy", fmt_pct(evaluation.get("char_accuracy")),
            help="Share of single characters read right, over all test plates.")
m[2].metric("Test photos", f"{evaluation.get('count', 0)}",
            help="Photos kept aside when the data was imported: the model never learned from them.")
m[3].markdown(
    "**Plate accuracy**: share of plates read exactly right.  \n"
    "**Character accuracy**: share of single characters read right, so one wrong letter on a "
    "7-letter plate still counts 6 right.  \n"
    "Both are measured on the **test photos**, kept aside at import: the model never saw them."
)
if st.button("Train again from this run", icon=":material/replay:", key="results_again",
             help="A new training on the same dataset that starts from this model: for example after you fixed "
                  "labels below, or to train longer."):
    training.train_again(run)

metrics = RunFolder(run["path"]).metrics()
if metrics:
    with st.expander("How it learned, step by step"):
        st.plotly_chart(charts.accuracy_chart(metrics), key="results_acc_chart")
        st.caption("Held-out photos: a few training photos kept out of learning to check progress while it "
                   "trained (the test photos above were never used during training).")

# every test photo ------------------------------------------------------------------------------
st.subheader("Every test photo")
frame = res.predictions(run)
if frame.empty:
    st.info("This run has no readings of its test photos.", icon=":material/info:")
else:
    res.test_photos(run, frame)

# labels, threshold, confusions, download --------------------------------------------------------
review.section(run)
if not frame.empty:
    threshold.section(run, frame)
confusions = res.top_confusions(run)
with st.expander("Which characters get mixed up"):
    if confusions.empty:
        st.caption("No character was read as another one on the test photos.")
    else:
        st.dataframe(confusions, hide_index=True, key="results_confusions")
        st.caption("“(none)” as expected: the model read a character that is not on the plate. "
                   "“(none)” as read: it missed a character.")
st.subheader("Download the model")
bundle.download(run, key=f"results_download_{run['id']}")
