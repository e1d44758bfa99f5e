"""Train page pieces: where a training starts from, the generated settings form, Start/Stop/Resume.

The advanced form is generated from engine.training.settings.offered_settings(): every setting
declared there with `advanced` metadata gets a widget (its label, help, bounds and type from the
declaration), so a setting added to TrainConfig appears here without any other edit.
"""
from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.errors import attempt, log, reason
from dashboard.pickers import remember
from dashboard.runinfo import run_title
from dashboard.text import fmt_pct, fmt_time, plain
from engine import runs
from engine.training import settings as training_settings

PRESET_ORDER = tuple(training_settings.PRESETS)
STARTER, SCRATCH = "starter", "none"


# where it starts from ------------------------------------------------------------------------------
def start_options() -> tuple[list[str], dict[str, str]]:
    """(choices for "Start from": "starter", previous runs' folders, "none"; how each reads)."""
    from engine.model.starter import starter_available

    words = {}
    if starter_available():
        words[STARTER] = ("The starter model: the model shipped with Plate OCR Studio, which already reads "
                          "many kinds of plates (recommended)")
    for run in runs.list_runs():
        if run["has_checkpoint"] and not run["active"]:
            score = f", reads {fmt_pct(run['plate_accuracy'], 0)} of its test plates" if run["plate_accuracy"] is not None else ""
            words[run["path"]] = f"Continue from run “{run_title(run)}” ({fmt_time(run['created_at'])}{score})"
    words[SCRATCH] = "Nothing: learn from scratch (slower; for plates unlike any the starter knows)"
    return list(words), words


# the generated settings form --------------------------------------------------------------------------
def advanced_settings() -> list[tuple[str, dict, Any]]:
    """(name, metadata, default) of every setting the form offers, in declaration order."""
    return [(name, meta, default) for name, meta, default in training_settings.offered_settings() if meta.get("advanced")]


def setting_label(name: str, meta: dict) -> str:
    return meta.get("label") or name.replace("_", " ").capitalize()


def _shown_default(value: Any) -> str:
    if value is None:
        return "automatic"
    if isinstance(value, (tuple, list)):
        return ", ".join(map(str, value)) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def settings_form(preset: str, columns: int = 3) -> dict[str, Any]:
    """One widget per advanced setting, empty unless the operator types a value (the preset's value,
    shown greyed out, is used otherwise). Returns the settings that were filled in."""
    preset_values = training_settings.config_for(preset).to_dict()
    filled: dict[str, Any] = {}
    cols = st.columns(columns)
    for i, (name, meta, _default) in enumerate(advanced_settings()):
        with cols[i % columns]:
            value = setting_widget(name, meta, preset_values.get(name))
        if value is not None and value != "":
            filled[name] = value
    return filled


def setting_widget(name: str, meta: dict, shown: Any) -> Any:
    """The widget of one setting, chosen by its type: numbers, a list of choices, yes/no, a list of numbers."""
    kind = training_settings.setting_type(name)
    label, help_text, key = setting_label(name, meta), meta.get("help"), f"train_{name}"
    placeholder = _shown_default(shown)
    if meta.get("choices"):
        return st.selectbox(label, list(meta["choices"]), index=None, key=key, help=help_text, placeholder=placeholder)
    if kind is bool:
        return st.selectbox(label, [True, False], index=None, key=key, help=help_text, placeholder=placeholder,
                            format_func=lambda v: "Yes" if v else "No")
    if kind is int:
        return st.number_input(label, min_value=_bound(meta.get("low"), int), max_value=_bound(meta.get("high"), int),
                               value=None, step=int(meta.get("step") or 1), key=key, help=help_text,
                               placeholder=placeholder)
    if kind is float:
        return st.number_input(label, min_value=_bound(meta.get("low"), float), max_value=_bound(meta.get("high"), float),
                               value=None, step=float(meta.get("step") or 0.1), format="%g", key=key, help=help_text,
                               placeholder=placeholder)
    text = st.text_input(label, key=key, help=help_text, placeholder=placeholder)
    if kind is tuple and text.strip():
        return tuple(int(part) for part in text.replace(" ", "").split(",") if part)
    return text.strip() or None


def _bound(value: Any, kind: type) -> Any:
    return None if value is None else kind(value)


# Start / Stop / Resume ---------------------------------------------------------------------------------
def start(dataset_path: str, preset: str, name: str, init_from: str, settings: dict[str, Any]) -> str | None:
    """Start a training; on success remember and show it (returns its id), else say why."""
    done, run_id = attempt(lambda: runs.start_run(dataset_path, preset=preset, name=name or None, init_from=init_from,
                                                  **settings), "The training could not start.")
    if done:
        watch(run_id)
    return run_id


def watch(run_id: str) -> None:
    """Make `run_id` the run the Train page shows at its top (this session, and the page address)."""
    st.session_state["train_watch"] = run_id
    remember("run", run_id)


def watched_run() -> str | None:
    """The run this session started or watched (kept in the address too, so a reload keeps it)."""
    wanted = st.session_state.get("train_watch") or st.query_params.get("run")
    try:
        return runs.get_run(wanted)["id"] if wanted else None
    except runs.RunNotFound:
        return None


def stop(run_id: str) -> None:
    """Press Stop: say what it did, or that there was nothing to stop (shown after the page reruns)."""
    try:
        message = runs.stop_run(run_id)
    except runs.NothingToStop as exc:
        note("warning", f"Nothing to stop: {plain(exc)}")
    except Exception as exc:  # noqa: BLE001
        log.warning("Stop failed: %s", exc, exc_info=exc)
        note("error", f"The training could not be stopped: {reason(exc)}")
    else:
        note("info", plain(message))


def resume(run_id: str) -> None:
    done, _ = attempt(lambda: runs.resume_run(run_id), "The training could not be resumed.")
    if done:
        watch(run_id)
        note("info", "Resumed: training continues from the last save.")
        st.rerun()


def note(kind: str, message: str) -> None:
    """A message that survives the rerun after a button (shown once by `show_notes`)."""
    st.session_state.setdefault("train_notes", []).append((kind, message))


NOTE_ICONS = {"info": ":material/info:", "warning": ":material/warning:", "error": ":material/error:"}


def show_notes() -> None:
    for kind, message in st.session_state.pop("train_notes", []):
        getattr(st, kind)(message, icon=NOTE_ICONS[kind])


def train_again(run: dict) -> None:
    """A new training on the run's dataset that starts from this run's model (e.g. after labels were
    fixed), with the run's own settings; the Train page then shows it."""
    offered = {name for name, _, _ in training_settings.offered_settings()} - {"init_from"}
    settings = {k: v for k, v in (run.get("settings") or {}).items() if k in offered}
    name = f"{run_title(run)[:50]} (again)"
    if start(run["dataset"], run.get("preset"), name, run["path"], settings):
        st.switch_page("pages/train.py", query_params={"run": st.session_state["train_watch"]})
