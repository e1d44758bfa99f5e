"""Which readings to trust: the confidence threshold, chosen on the test photos and saved with the run.

The curve and the words come from engine.reading.threshold (tradeoff, suggest, describe); the
choice is saved with save_threshold, and from then on the reader marks readings as accepted or
not (Try it, its CSV, the download bundle).
"""
from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts
from dashboard.text import fmt_pct
from engine.reading.threshold import describe, load_threshold, save_threshold, suggest, tradeoff

MAX_WRONG = 0.01  # the suggestion: as many plates as possible with at most 1 in 100 wrong
EVERYTHING = -1.0  # the slider's "accept every reading" position


def section(run: dict, predictions: pd.DataFrame) -> None:
    st.subheader("Which readings to trust")
    st.write("Every reading comes with a confidence: how sure the model is of the whole plate. Readings above a "
             "threshold are **accepted**; the others should be checked by a person. A higher threshold accepts "
             "fewer plates, and fewer of the accepted ones are wrong. The curve shows this on the test photos.")
    rows = tradeoff(predictions["confidence"].fillna(0.0).tolist(), predictions["correct"].tolist())
    if not rows:
        st.caption("There are no test photos to choose a threshold from.")
        return
    saved = load_threshold(run["path"])
    by_threshold = {r["threshold"]: r for r in rows}
    options = [EVERYTHING] + sorted(by_threshold)
    key = f"threshold_{run['id']}"
    if st.session_state.get(key) not in options:
        st.session_state[key] = _start_position(saved, rows, options)
    left, right = st.columns([3, 2])
    with right:
        digits = _distinct_digits(options[1:])
        chosen = st.select_slider("Accept readings with a confidence of at least", options, key=key,
                                  format_func=lambda t: "any" if t == EVERYTHING else fmt_pct(t, digits))
        row = by_threshold.get(chosen)
        st.info(_in_words(row, rows), icon=":material/rule:")
        st.caption(_now(saved))
        if st.button("Save this threshold", type="primary", key=f"threshold_save_{run['id']}",
                     disabled=_same(row, saved), icon=":material/save:"):
            save_threshold(run["path"], None if row is None else row["threshold"])
            st.toast("Threshold saved: Try it and the download use it now.", icon=":material/check_circle:")
            st.rerun()
    with left:
        st.plotly_chart(charts.threshold_chart(rows, row), key=f"threshold_chart_{run['id']}")


def _distinct_digits(thresholds: list[float]) -> int:
    """Decimals that give every slider position its own label (two stops both reading "93.1 %"
    would look like one, and could not be told apart)."""
    for digits in (1, 2, 3):
        if len({fmt_pct(t, digits) for t in thresholds}) == len(thresholds):
            return digits
    return 4


def _start_position(saved: float | None, rows: list[dict], options: list[float]) -> float:
    """The saved threshold (or the nearest possible one), else the suggestion, else accept everything."""
    if saved is not None:
        return min(options[1:], key=lambda t: abs(t - saved))
    suggestion = suggest(rows, MAX_WRONG)
    return suggestion["threshold"] if suggestion else EVERYTHING


def _in_words(row: dict | None, rows: list[dict]) -> str:
    if row is None:
        wrong = rows[0]["wrong"]  # the lowest threshold accepts every plate
        return f"Accept every reading: all plates accepted, {fmt_pct(wrong)} of them wrong; nothing goes to a person."
    text = describe(row)
    return text[0].upper() + text[1:] + "."


def _same(row: dict | None, saved: float | None) -> bool:
    return (row is None and saved is None) or (row is not None and saved is not None and abs(row["threshold"] - saved) < 1e-9)


def _now(saved: float | None) -> str:
    if saved is None:
        return "Saved now: every reading is accepted (no threshold chosen yet)."
    return f"Saved now: readings with a confidence of at least {fmt_pct(saved)} are accepted."
