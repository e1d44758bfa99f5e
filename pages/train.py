"""Train: pick a dataset and a preset, start a training, watch it live, stop or resume it."""
from __future__ import annotations

import streamlit as st

from dashboard import charts, training
from dashboard.common import STATE_LABELS, fmt_duration, fmt_pct, show_error, state_label, page_guard
from engine.storage import locks
from engine import runs
from engine.training.settings import PRESET_HELP
from engine.storage.paths import UnsafeName

STATE_COLORS = {"queued": "orange", "running": "blue", "finished": "green", "stopped": "gray", "failed": "red"}

page_guard()
st.title("Train")
st.write("Train a plate reader on one of your datasets. Training runs in the background: you can "
         "leave this page, close the browser or reload, and come back to watch it.")

datasets = runs.list_datasets()
busy = runs.active_run()

outside = not busy and locks.is_held("training")
if outside:
    st.warning("Another training is running on this machine (started outside the dashboard, e.g. from the "
               "command line). Wait for it to finish before starting one here.", icon=":material/hourglass_top:")
if busy:
    st.warning(f"**{busy.get('name') or busy['id']}** is training now. One training runs at a time: "
               "wait for it to finish, or stop it below.", icon=":material/hourglass_top:")

# new training -------------------------------------------------------------------------------------
with st.container(border=True):
    st.subheader("New training")
    if not datasets:
        st.info("There is no dataset yet. Import plate photos on the Data page first.", icon=":material/info:")
        st.page_link("pages/data.py", label="Go to Data", icon=":material/photo_library:")
    names = [d["name"] for d in datasets]
    by_name = {d["name"]: d for d in datasets}
    wanted = st.session_state.get("train_dataset") or st.session_state.get("current_dataset")
    if names and st.session_state.get("train_pick") not in by_name:
        st.session_state["train_pick"] = wanted if wanted in by_name else names[0]

    c1, c2 = st.columns([2, 1])
    with c1:
        dataset_name = st.selectbox(
            "Dataset", names, key="train_pick", disabled=not names,
            format_func=lambda n: f"{n}  ({by_name[n]['train']} training photos, {by_name[n]['test']} test photos)",
        ) if names else None
    with c2:
        run_name = st.text_input("Run name (optional)", key="train_name", max_chars=40,
                                 placeholder="e.g. first-try", help="Helps you find this run later.")

    preset = st.radio(
        "How long to train", list(training.PRESET_ORDER), index=0, key="train_preset", horizontal=True,
        format_func=lambda p: p.title(), captions=[PRESET_HELP[p] for p in training.PRESET_ORDER],
    )
    defaults = training.preset_defaults(preset)
    values = {}
    with st.expander("Advanced settings (aocr flags)"):
        st.caption("Leave a box empty to use the preset's value, shown greyed out.")
        cols = st.columns(4)
        for i, (key, label, help_text, kind, lo, hi, step) in enumerate(training.ADVANCED):
            default = getattr(defaults, key)
            placeholder = f"{default}" if default is not None else "automatic"
            with cols[i % 4]:
                if kind is int:
                    values[key] = st.number_input(label, min_value=int(lo), max_value=int(hi), value=None, step=int(step),
                                                  key=f"train_{key}", placeholder=placeholder, help=help_text)
                else:
                    values[key] = st.number_input(label, min_value=float(lo), max_value=float(hi), value=None,
                                                  step=float(step), format="%g", key=f"train_{key}",
                                                  placeholder=placeholder, help=help_text)

    start = st.button("Start training", type="primary", icon=":material/play_arrow:", key="train_start",
                      disabled=bool(busy) or outside or not names)
    if start and dataset_name:
        try:
            run_id = runs.start_run(by_name[dataset_name]["path"], preset=preset, name=run_name or None,
                                    **training.overrides_from(values))
        except runs.TrainingBusy as exc:
            show_error(str(exc))
        except UnsafeName as exc:
            show_error(f"That run name cannot be used: {exc}")
        except (FileNotFoundError, ValueError) as exc:
            show_error(f"The training could not start: {exc}")
        except Exception as exc:  # noqa: BLE001
            show_error("The training could not start because of an unexpected problem.", exc)
        else:
            st.session_state["train_run_id"] = run_id
            st.rerun()


# live panel ---------------------------------------------------------------------------------------
def live_panel() -> None:
    run = training.run_to_show(st.session_state.get("train_run_id"))
    if run is None:
        st.caption("No training has been started yet.")
        return
    status = run["status"]
    state = run["state"]
    config = run.get("config") or {}
    was_active = st.session_state.get("_train_active_id")
    if run["active"]:
        st.session_state["_train_active_id"] = run["id"]
        if was_active != run["id"] and not busy:  # started elsewhere (another tab): refresh the whole page
            st.rerun()
    elif was_active:
        st.session_state.pop("_train_active_id", None)
        st.rerun()  # it just ended: re-enable Start, stop polling

    with st.container(border=True):
        head, badge = st.columns([4, 1])
        head.subheader(run.get("name") or run["id"])
        label, icon = STATE_LABELS.get(state, (state_label(state), None))
        with badge:
            st.badge(label, icon=icon, color=STATE_COLORS.get(state, "gray"))
        st.caption(f"Run {run['id']} on dataset '{run.get('dataset_name') or '?'}'")

        epochs = status.get("epochs") or config.get("num_epoch")
        epoch = status.get("epoch")
        m = st.columns(4)
        m[0].metric("Epoch", f"{epoch if epoch is not None else 0} / {epochs or '?'}",
                    help="An epoch is one pass over all training photos.")
        m[1].metric("Elapsed", fmt_duration(status.get("elapsed_seconds")))
        m[2].metric("Time left (estimate)", fmt_duration(status.get("eta_seconds")) if run["active"] else "-")
        m[3].metric("Best validation plate accuracy", fmt_pct(status.get("best_val_plate_accuracy")),
                    help="Share of held-out plates read exactly right, best epoch so far.")
        if run["active"]:
            st.progress(training.progress_fraction(status, config),
                        text=status.get("message") or ("Starting..." if state == "queued" else "Training..."))
        elif state == "finished" and epochs and epoch is not None and epoch < epochs:
            st.caption(f"Training ended after {epoch} of {epochs} epochs: it used its time budget "
                       f"({config.get('max_minutes', '?')} min) or stopped improving. The best epoch is kept.")

        if state == "failed":
            show_error(status.get("error") or "The training stopped with an error.", details=status.get("details"))
        elif state == "stopped":
            st.info("Stopped. The model so far is kept; press **Resume** to continue training it.",
                    icon=":material/pause_circle:")
        elif state == "finished":
            st.success("Finished. See how well it reads on the Results page.", icon=":material/check_circle:")

        metrics = training.metrics_of(run)
        if metrics:
            g1, g2 = st.columns(2)
            g1.plotly_chart(charts.loss_chart(metrics), key="train_loss_chart")
            g2.plotly_chart(charts.accuracy_chart(metrics), key="train_acc_chart")
        elif run["active"]:
            st.caption("The charts appear after the first epoch.")

        b = st.container(horizontal=True)
        if run["active"]:
            if b.button("Stop", icon=":material/stop:", key="train_stop",
                           help="Stops after saving: the model so far is kept and can be resumed."):
                try:
                    runs.stop_run(run["id"])
                except Exception as exc:  # noqa: BLE001
                    show_error("Could not stop the training.", exc)
                else:
                    st.toast("Stopping: saving the model so far...", icon=":material/stop:")
        elif state in ("stopped", "failed") and run.get("has_checkpoint"):
            if b.button("Resume", icon=":material/play_arrow:", key="train_resume", disabled=bool(runs.active_run()),
                           help="Continue training from the last saved point."):
                try:
                    runs.resume_run(run["id"])
                except runs.TrainingBusy as exc:
                    show_error(str(exc))
                except Exception as exc:  # noqa: BLE001
                    show_error("The training could not be resumed.", exc)
                else:
                    st.session_state["train_run_id"] = run["id"]
                    st.rerun()
        if state == "finished" or run.get("evaluation"):
            if b.button("See results", type="primary", icon=":material/fact_check:", key="train_results"):
                st.session_state["results_run"] = run["id"]
                st.switch_page("pages/results.py", query_params={"run": run["id"]})


st.subheader("Progress")
st.fragment(live_panel, run_every=2 if busy else 15)()
