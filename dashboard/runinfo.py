"""How a run is named and described on every page: its title, state, verdict, where it started from.

Run ids (folder names) are technical: a run is shown by the name the operator gave it, else by
when it started. Titles are user text: `run_title` is for places that show text as it is
(selectbox options, dataframes); Markdown places use `plain(run_title(run))`.
"""
from __future__ import annotations

from pathlib import Path

import streamlit as st

from dashboard.text import fmt_pct, fmt_time, plain, quoted

STATES = {  # state -> (word, icon, badge colour)
    "queued": ("Starting", ":material/hourglass_top:", "orange"),
    "running": ("Training", ":material/model_training:", "blue"),
    "zipping": ("Finishing", ":material/archive:", "blue"),  # trained and scored, the download being made
    "finished": ("Finished", ":material/check_circle:", "green"),
    "stopped": ("Stopped", ":material/pause_circle:", "gray"),
    "failed": ("Failed", ":material/error:", "red"),
    "unknown": ("Unknown", ":material/help:", "gray"),
}
VERDICT_WORDS = {"good": "Good", "poor": "Poor", "unknown": "No score"}
# A finished run without a score: its dataset kept no photos aside (an aocr recipe's training.tfrecords,
# or an import with no test share from the command line).
NOT_SCORED = ("It has no final score: its dataset kept no test photos aside. *Try it* reads photos named by "
              "their plate text and counts how many it read right.")


def run_title(run: dict) -> str:
    """The operator's name for the run, else 'Training of <when>'."""
    return run.get("name") or f"Training of {fmt_time(run.get('created_at'))}"


def _shown_state(run: dict) -> tuple[str, str, str]:
    state = "zipping" if zipping(run) else run.get("state") or "unknown"
    return STATES.get(state, STATES["unknown"])


def state_word(run: dict) -> str:
    return _shown_state(run)[0]


def run_choice(run: dict) -> str:
    """One line for a run picker (selectbox options show text as it is): name, when, how it went."""
    parts = [run_title(run)]
    if run.get("name"):
        parts.append(fmt_time(run.get("created_at")))
    if run.get("plate_accuracy") is not None:
        parts.append(f"reads {fmt_pct(run['plate_accuracy'], 0)} of test plates")
    else:
        parts.append(state_word(run).lower())
    return " · ".join(parts)


def score_sentence(run: dict) -> str:
    """Markdown: how a run scored on its test photos, why a finished one has no score, or nothing yet."""
    evaluation = run.get("evaluation") or {}
    if evaluation:
        return (f"Plate accuracy {fmt_pct(evaluation.get('plate_accuracy'))}, character accuracy "
                f"{fmt_pct(evaluation.get('char_accuracy'))} on its {evaluation.get('count', 0)} test photos.")
    return NOT_SCORED if run.get("state") == "finished" else ""


def verdict_word(run: dict) -> str:
    return VERDICT_WORDS.get(((run.get("verdict") or {}).get("level")) or "", "")


def zipping(run: dict) -> bool:
    """Scored but still running: training has ended and the trainer is zipping the download."""
    return bool(run.get("active") and run.get("evaluation"))


def state_badge(run: dict) -> None:
    word, icon, color = _shown_state(run)
    st.badge(word, icon=icon, color=color)


def show_verdict(verdict: dict | None) -> None:
    """Is this model any good, in plain words: good (green), poor (a warning with what to do), or no score."""
    if not verdict:
        return
    headline = verdict.get("headline") or ""
    advice = "".join(f"\n- {tip}" for tip in verdict.get("advice") or [])
    level = verdict.get("level")
    if level == "good":
        st.success(f"**Good.** {headline}" + (f"\n\nTo do better:{advice}" if advice else ""),
                   icon=":material/thumb_up:")
    elif level == "poor":
        st.warning(f"**Poor model: do not rely on it yet.** {headline}\n\nWhat to do:{advice}",
                   icon=":material/warning:")
    else:
        st.info(headline, icon=":material/info:")


def started_from(run: dict) -> str:
    """Markdown: what the training started from, in words."""
    origin = (run.get("resolved") or {}).get("started_from") or {}
    source = origin.get("from") or (run.get("settings") or {}).get("init_from") or "starter"
    if source == "starter":
        return "the starter model"
    if source == "none":
        return "scratch"
    from engine import runs

    try:
        return f"the run {quoted(run_title(runs.get_run(Path(str(source)).name)))}"
    except runs.RunNotFound:  # deleted since: its folder name is all that is left
        return f"a deleted run ({plain(Path(str(source)).name)})"
