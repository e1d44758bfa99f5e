"""Label review on the Results page: photos whose label looks wrong, most suspicious first, fixed or
left out right there; every change listed; and the full label check, run in the background.

The list is engine.reading.review.review_rows: the run's readings of its test photos (the model never
trained on them) and, once a label check ran, a reading of every photo by a model that never saw it.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import streamlit as st

from dashboard.errors import attempt, show_error
from dashboard.results import photo_bytes
from dashboard.text import fmt_duration, fmt_time, plain, plural, quoted
from engine import runs
from engine.data.dataset import DatasetFolder, is_dataset_folder
from engine.reading.review import review_rows

CHECK_HELP = ("The label check trains two models from the starter, each on one half of the photos, and reads the "
              "other half with it: every photo is read by a model that never saw it. It runs in the background like "
              "a training (one at a time), for a few minutes.")


def section(run: dict) -> None:
    """The whole label review of `run`'s dataset."""
    st.subheader("Labels that look wrong")
    dataset = _dataset(run)
    if dataset is None:
        st.caption(_no_review(run))
        return
    check = runs.latest_label_check(dataset.path)
    flagged = review_rows(dataset.path, run_dir=run["path"], check_dir=check["path"] if check else None)
    covered = "every photo (label check of " + fmt_time(check["created_at"]) + ")" if check else "the test photos"
    st.write(f"Photos a model read confidently as something else than their label, or whose label breaks the "
             f"pattern of the others, most suspicious first. Checked: {covered}. Fix the label, or leave the photo "
             "out if it is unreadable; then press **Train again from this run** above.")
    if flagged:
        _flagged(run, dataset, flagged)
    else:
        st.success("No label looks wrong.", icon=":material/check_circle:")
    _history(dataset)
    _check(run, dataset, check)


def _no_review(run: dict) -> str:
    """Why the labels of a run's dataset cannot be reviewed here."""
    if run.get("dataset") and Path(run["dataset"]).exists():
        return (f"Labels are reviewed and fixed in a dataset imported on the Data page; this run was trained on "
                f"{quoted(run['dataset_name'])}, which is not one.")
    return "The dataset of this run is gone, so its labels cannot be reviewed."


def _dataset(run: dict) -> DatasetFolder | None:
    return DatasetFolder(run["dataset"]) if run.get("dataset") and is_dataset_folder(run["dataset"]) else None


def _flagged(run: dict, dataset: DatasetFolder, flagged: list[dict]) -> None:
    table = pd.DataFrame(flagged, columns=["label", "reading", "confidence", "reason", "file", "split"])
    left, right = st.columns([3, 2])
    with left:
        picked = st.dataframe(
            table, hide_index=True, width="stretch", height=min(360, 35 * (len(table) + 1) + 3),
            key=f"review_table_{run['id']}_{len(table)}", on_select="rerun", selection_mode="single-row-required",
            column_config={
                "label": st.column_config.TextColumn("Label now"),
                "reading": st.column_config.TextColumn("Read as"),
                "confidence": st.column_config.ProgressColumn("How sure", min_value=0.0, max_value=1.0, format="percent"),
                "reason": st.column_config.TextColumn("Why it is listed", width="large"),
                "file": st.column_config.TextColumn("File"),
                "split": st.column_config.TextColumn("Used for"),
            },
        )
        st.caption(f"{plural(len(table), 'photo')} listed. Click a row to fix it.")
    rows = list(picked.selection.rows or [])
    row = flagged[rows[0] if rows and rows[0] < len(flagged) else 0]
    with right:
        _fix(run, dataset, row)


def _fix(run: dict, dataset: DatasetFolder, row: dict) -> None:
    st.markdown(f"#### Label {plain(row['label'])}, read as {plain(row['reading'] or '(nothing)')}")
    st.caption(plain(row["reason"]))
    data = photo_bytes(run, row["file"])
    if data is not None:
        st.image(data, caption=plain(row["file"]), width="stretch")
    key = f"review_{row['file']}"
    new = st.text_input("Correct label", value=row["reading"] or row["label"], key=f"{key}_label", max_chars=32,
                        help="The plate text exactly as written on the plate.")
    buttons = st.container(horizontal=True)
    if buttons.button("Save label", type="primary", key=f"{key}_save", icon=":material/edit:",
                      disabled=not new.strip() or new.strip() == row["label"]):
        _change(lambda: dataset.edit_label(row["file"], new), f"Label of {quoted(row['file'])} changed to {quoted(new.strip())}.")
    if buttons.button("Leave this photo out", key=f"{key}_exclude", icon=":material/block:",
                      help="Unreadable or not a plate: training and scoring will skip it."):
        _change(lambda: dataset.exclude(row["file"]), f"{quoted(row['file'])} is left out from now on.")


def _change(action, done: str) -> None:
    try:
        action()
    except ValueError as exc:
        show_error(f"That label cannot be used: {plain(exc)}")
        return
    st.toast(done, icon=":material/check_circle:")
    st.rerun()


def _history(dataset: DatasetFolder) -> None:
    changes = dataset.history()
    with st.expander(f"Changes made to the labels ({len(changes)})"):
        if not changes:
            st.caption("No label was changed and no photo left out yet.")
            return
        words = {"relabel": "label changed", "exclude": "left out", "include": "taken back"}
        table = pd.DataFrame([{"when": fmt_time(c.get("when")), "who": c.get("who", ""), "file": c.get("file", ""),
                               "change": words.get(c.get("action"), c.get("action", "")), "old label": c.get("old", ""),
                               "new label": c.get("new", "")} for c in reversed(changes)])
        st.dataframe(table, hide_index=True, width="stretch", key=f"review_history_{dataset.path.name}")


def _check(run: dict, dataset: DatasetFolder, check: dict | None) -> None:
    active = runs.active_run()
    if active and active.get("kind") == "label-check":
        st.fragment(_check_progress, run_every=2)(active["id"])
        return
    _last_check_outcome(dataset, check)
    st.caption(CHECK_HELP + (f" The last one finished {fmt_time(check['created_at'])}." if check else ""))
    if st.button("Check every label", icon=":material/fact_check:", key=f"review_check_{run['id']}",
                 disabled=active is not None,
                 help="Busy while a training runs." if active else "Reads every photo with a model that never saw it."):
        done, _ = attempt(lambda: runs.start_label_check(dataset.path), "The label check could not start.")
        if done:
            st.rerun()


def _last_check_outcome(dataset: DatasetFolder, finished: dict | None) -> None:
    """Say so when the newest label check of this dataset did not finish (failed or stopped)."""
    checks = [r for r in runs.list_runs(include_checks=True) if r.get("kind") == "label-check"
              and r["dataset"] and Path(r["dataset"]).resolve() == dataset.path.resolve()]
    newest = checks[0] if checks else None
    if newest is None or (finished and newest["id"] == finished["id"]):
        return
    if newest["state"] == "failed":
        show_error(f"The last label check failed: {plain(newest['status'].get('error') or 'no reason given')}",
                   details=newest["status"].get("details"))
    elif newest["state"] == "stopped":
        st.info("The last label check was stopped before it finished.", icon=":material/pause_circle:")


def _check_progress(check_id: str) -> None:
    try:
        check = runs.get_run(check_id)
    except runs.RunNotFound:
        return
    if not check["active"]:
        st.rerun(scope="app")  # finished: the list now covers every photo
    status = check["status"]
    percent = float(status.get("percent") or 0)
    eta = status.get("eta_seconds")
    left = "working out the time left" if eta is None else f"about {fmt_duration(eta)} left"
    st.progress(min(1.0, percent / 100), text=f"Label check: **{percent:.0f} %** · {left} · {plain(status.get('phase') or '')}")
    if st.button("Stop the label check", icon=":material/stop:", key="review_check_stop"):
        try:
            st.info(plain(runs.stop_run(check_id)), icon=":material/info:")
        except runs.NothingToStop as exc:
            st.warning(f"Nothing to stop: {plain(exc)}", icon=":material/warning:")
    st.caption(CHECK_HELP)
