"""The live panel of one training: what it does now, a percentage and the time left from the first
seconds, step x of about y, the best score on held-out photos, charts by step, Stop / Resume, and
at the end the verdict with the way to Results.

It redraws itself every 2 seconds while the run is active (an st.fragment), and reruns the whole
page when the run starts or ends, so the Start button and the layout follow.
"""
from __future__ import annotations

import streamlit as st

from dashboard import charts, training
from dashboard.errors import show_error
from dashboard.runinfo import NOT_SCORED, run_title, show_verdict, started_from, state_badge, zipping
from dashboard.text import fmt_duration, fmt_pct, plain, quoted
from engine import runs
from engine.storage.runfolder import RunFolder
from engine.training.schedule import PASSES, PASSES_MIN_STEPS

ACTIVE_EVERY, IDLE_EVERY = 2, 10  # seconds between redraws: while training, and while watching a finished run
VALIDATION_HELP = ("Held-out photos: a few of the training photos kept out of learning, to check progress while "
                   "it trains. (The final score on Results uses the test photos, kept aside at import.)")


def panel(run_id: str) -> None:
    """The panel of `run_id`, redrawn on its own while the run is active."""
    active = _is_active(run_id)
    st.fragment(_draw, run_every=ACTIVE_EVERY if active else IDLE_EVERY)(run_id)


def _is_active(run_id: str) -> bool:
    try:
        return runs.get_run(run_id)["active"]
    except runs.RunNotFound:
        return False


def _draw(run_id: str) -> None:
    try:
        run = runs.get_run(run_id)
    except runs.RunNotFound:
        st.info("This training was deleted.", icon=":material/info:")
        return
    _follow(run)
    with st.container(border=True, key="live_panel"):
        head, badge = st.columns([5, 1], vertical_alignment="center")
        head.subheader(plain(run_title(run)))
        with badge:
            state_badge(run)
        st.caption(f"Dataset {quoted(run['dataset_name'] or '?')}, started from {started_from(run)}.")
        _progress(run)
        _outcome(run)
        _buttons(run)
        _charts(run)


def _follow(run: dict) -> None:
    """Rerun the whole page when this run starts or ends (Start button, layout), or another starts."""
    key = f"_live_active_{run['id']}"
    was = st.session_state.get(key)
    st.session_state[key] = run["active"]
    other = None if run["active"] else runs.active_run()
    if (was is not None and was != run["active"]) or other is not None:
        if other is not None:
            training.watch(other["id"])
        st.rerun(scope="app")


def _progress(run: dict) -> None:
    status = run["status"]
    step, planned = status.get("step") or 0, status.get("planned_steps") or status.get("max_steps")
    m = st.columns(4)
    # the total goes in the label: "3,000 of about 3,000" does not fit a quarter of a laptop's page
    m[0].metric(f"Step (of about {planned:,})" if planned else "Step", f"{step:,}",
                help="One step learns from one batch of photos. The total is an estimate: the time limit can end "
                     f"training earlier, and a small set of photos ends it after {PASSES} passes over them, at least "
                     f"{PASSES_MIN_STEPS:,} steps (more would learn them by heart).")
    m[1].metric("Time so far", fmt_duration(status.get("elapsed_seconds")))
    eta = status.get("eta_seconds")
    m[2].metric("Time left", ("estimating" if eta is None else fmt_duration(eta)) if run["active"] else "–",
                help="An estimate, updated as it trains.")
    best = status.get("best_val_plate_accuracy")
    m[3].metric("Best check on held-out photos", fmt_pct(best),
                help=f"Share of held-out photos read exactly right, best check so far. {VALIDATION_HELP}")
    if run["active"]:
        percent = float(status.get("percent") or 0.0)
        phase = status.get("phase") or ("Starting" if run["state"] == "queued" else "Training")
        st.progress(min(1.0, percent / 100), text=f"**{percent:.0f} %** · {_time_left(run)} · {plain(phase)}")


def _time_left(run: dict) -> str:
    eta = run["status"].get("eta_seconds")
    return "working out the time left" if eta is None else f"about {fmt_duration(eta)} left"


def _outcome(run: dict) -> None:
    """What happened, in true words: finished (and how good), stopped (and whether anything was kept), failed."""
    status, state = run["status"], run["state"]
    if state == "finished":
        show_verdict(run.get("verdict"))
    elif state == "stopped":
        if run["resumable"]:
            st.info("Stopped. The model so far is kept: press **Resume** to continue training it.",
                    icon=":material/pause_circle:")
        else:
            st.info("Stopped before anything was learned; nothing was kept. Start a new training.",
                    icon=":material/pause_circle:")
    elif state == "failed":
        more = " The last save is kept: press **Resume** to continue." if run["resumable"] else ""
        show_error(plain(status.get("error") or "The training stopped with an error.") + more,
                   details=status.get("details"))


def _charts(run: dict) -> None:
    metrics = RunFolder(run["path"]).metrics()
    if not metrics:
        if run["active"]:
            st.caption("The charts appear after the first check on held-out photos (about half a minute).")
        return
    left, right = st.columns(2)
    left.plotly_chart(charts.accuracy_chart(metrics), key=f"live_acc_{run['id']}")
    right.plotly_chart(charts.loss_chart(metrics), key=f"live_loss_{run['id']}")
    st.caption(VALIDATION_HELP)


def _buttons(run: dict) -> None:
    row = st.container(horizontal=True)
    if run["active"] and not zipping(run):  # zipping: trained and scored, nothing left to stop
        if row.button("Stop", icon=":material/stop:", key="train_stop",
                      help="Ends the training. What it learned so far is saved, and Resume can continue it."):
            training.stop(run["id"])
            st.rerun(scope="app")
    elif run["resumable"] and run["state"] in ("stopped", "failed"):
        if row.button("Resume", icon=":material/play_arrow:", key="train_resume",
                      help="Continue this training from its last save."):
            training.resume(run["id"])
    if run.get("evaluation"):
        if row.button("See results", type="primary", icon=":material/fact_check:", key="train_results"):
            st.switch_page("pages/results.py", query_params={"run": run["id"]})
    elif run["state"] == "finished":  # no test photos to score it on: Results does not list it, Try it reads with it
        if row.button("Try it", type="primary", icon=":material/center_focus_strong:", key="train_try",
                      help=NOT_SCORED):
            st.switch_page("pages/try_it.py", query_params={"run": run["id"]})
