"""Train: the running (or just finished) training at the top, live; below, a new training's form."""
from __future__ import annotations

import streamlit as st

from dashboard import live, training
from dashboard.common import page_guard
from dashboard.pickers import GO_DATA, nothing_yet, remembered_choice
from dashboard.runinfo import run_title
from dashboard.text import quoted
from engine import runs
from engine.storage.locks import training_holder
from engine.training.settings import preset_help

page_guard()
st.title("Train")
# Notes and warnings come and go; one container for them keeps the live panel in the same place on the
# page, so a rerun replaces it instead of leaving the old one (and its buttons) drawn beside the new.
notices = st.container()
with notices:
    training.show_notes()

active = runs.active_run()
outside = training_holder() if not active else None  # a command-line training holds the machine
if active:
    training.watch(active["id"])
watched = training.watched_run()

if outside:
    notices.warning("Another training is running on this machine (started outside the dashboard, e.g. from the "
               "command line). Wait for it to finish before starting one here.", icon=":material/hourglass_top:")
if active:
    notices.warning(f"{quoted(run_title(active))} is running now. One training runs at a time: wait for it to "
               "finish, or stop it below.", icon=":material/hourglass_top:")
if watched:
    live.panel(watched)

# a new training -----------------------------------------------------------------------------------
form = st.expander("Start a new training", icon=":material/add_circle:") if watched else st.container(border=True)
with form:
    if not watched:
        st.subheader("New training")
        st.write("Training runs in the background: you can leave this page, close the browser or reload, "
                 "and come back to watch it.")
    datasets = runs.list_datasets()
    if not datasets:
        nothing_yet("There is no dataset yet. Import plate photos on the Data page first.", GO_DATA)
    by_name = {d["name"]: d for d in datasets}
    left, right = st.columns([2, 1])
    with left:
        dataset_name = remembered_choice(
            "Dataset", list(by_name), key="train_pick", memory="dataset",
            format_func=lambda n: f"{n}  ({by_name[n]['train']} training photos, {by_name[n]['test']} test photos)")
    with right:
        if st.session_state.pop("_train_name_used", False):  # the name was the last run's: the next starts unnamed
            st.session_state["train_name"] = ""  # (set before the box is drawn: popping the key left the browser's text)
        run_name = st.text_input("Run name (optional)", key="train_name", max_chars=80, placeholder="e.g. first try",
                                 help="Helps you find this training later.")
    choices, words = training.start_options()
    init_from = st.selectbox("Start from", choices, key="train_from", format_func=words.get,
                             help="Starting from a model that already reads plates learns faster than from "
                                  "scratch. Continuing from a run carries on from what it learned, e.g. "
                                  "after you fixed labels.")
    preset = st.radio("How long to train", list(training.PRESET_ORDER), key="train_preset", horizontal=True,
                      format_func=str.title, captions=[preset_help(p) for p in training.PRESET_ORDER])
    with st.expander("Advanced settings", icon=":material/tune:"):
        st.caption("Leave a box empty to use the preset's value (shown greyed out). **Photos per step** (the "
                   "batch size) is how many photos the model learns from at once; the **learning rate** is how "
                   "big each learning step is: too high and training jumps around, too low and it crawls.")
        filled = training.settings_form(preset)
    if st.button("Start training", type="primary", icon=":material/play_arrow:", key="train_start",
                 disabled=bool(active or outside)):
        if training.start(by_name[dataset_name]["path"], preset, run_name, init_from, filled):
            st.session_state["_train_name_used"] = True
            st.rerun()

latest = None if watched else next(iter(runs.list_runs()), None)
if latest:
    st.subheader("Latest training")
    live.panel(latest["id"])
