"""The dataset and run pickers: they keep the operator's choice across pages and page reloads.

A choice is remembered twice: in the session (it follows the operator from page to page) and in
the page address (`?dataset=...`, `?run=...`, so a reload or a bookmark opens the same one). A new
dataset or run appearing never moves a picker away from what the operator chose.
"""
from __future__ import annotations

from typing import Callable, Sequence

import streamlit as st

from dashboard.runinfo import run_choice

GO_TRAIN = ("pages/train.py", "Go to Train", ":material/model_training:")
GO_DATA = ("pages/data.py", "Go to Data", ":material/photo_library:")


def remembered_choice(label: str, options: Sequence[str], *, key: str, memory: str, default: str | None = None,
                      format_func: Callable[[str], str] = str, **widget: object) -> str:
    """A selectbox (widget `key`) that starts on the remembered `memory` choice ("dataset", "run"):
    this page's address, else this session, else `default` (else the first option)."""
    options = list(options)
    if st.session_state.get(key) not in options:
        wanted = st.query_params.get(memory) or st.session_state.get(f"chosen_{memory}")
        st.session_state[key] = wanted if wanted in options else (default if default in options else options[0])
    value = st.selectbox(label, options, key=key, format_func=format_func, **widget)
    remember(memory, value)
    return value


def remember(memory: str, value: str) -> None:
    """Make `value` the remembered choice (e.g. the dataset just imported, the run just started)."""
    st.session_state[f"chosen_{memory}"] = value
    if st.query_params.get(memory) != value:
        st.query_params[memory] = value


def choose_run(candidates: list[dict], *, key: str, empty: str, label: str = "Run",
               default: str | None = None, go: tuple[str, str, str] = GO_TRAIN) -> dict:
    """The run picker of Results, Try it and Runs; with no candidate, `nothing_yet(empty)`."""
    if not candidates:
        nothing_yet(empty, go)
    by_id = {run["id"]: run for run in candidates}
    run_id = remembered_choice(label, list(by_id), key=key, memory="run", default=default,
                               format_func=lambda i: run_choice(by_id[i]))
    return by_id[run_id]


def nothing_yet(message: str, go: tuple[str, str, str] = GO_TRAIN) -> None:
    """Say there is nothing to show yet, link to the page that makes it, and stop the page here."""
    st.info(message, icon=":material/info:")
    st.page_link(go[0], label=go[1], icon=go[2])
    st.stop()
