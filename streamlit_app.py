"""Plate OCR Studio dashboard: `streamlit run streamlit_app.py` (or `make run`).

This file only routes: it sets the page up, asks for the password when one is configured
(PLATE_STUDIO_PASSWORD or st.secrets["password"]), and hands over to one of the pages in pages/.
It serves no page at all when the server listens beyond this machine without a password
(dashboard.common.server_address_problem), and at start-up it removes what killed imports and
uploads left behind.
"""
from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:  # `engine` and `dashboard` live next to this file
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboard.common import authenticated, login_page  # noqa: E402

st.set_page_config(page_title="Plate OCR Studio", page_icon=":material/directions_car:", layout="wide")


@st.cache_resource(show_spinner=False, ttl=600)
def _clean_leftovers_once(home: str | None) -> None:
    """At start-up, then at most every 10 minutes (a leftover must be a few minutes old to go):
    what imports and uploads killed earlier left in the data folder."""
    from engine.data.importer import clean_leftovers

    try:
        clean_leftovers()
    except OSError as exc:  # an unusable data folder: every page says so, with what to do
        logging.getLogger("plate_studio.dashboard").warning("start-up clean-up skipped: %s", exc)


_clean_leftovers_once(os.environ.get("PLATE_STUDIO_HOME"))

PAGES = [
    st.Page(str(ROOT / "pages" / "data.py"), title="Data", icon=":material/photo_library:", default=True),
    st.Page(str(ROOT / "pages" / "train.py"), title="Train", icon=":material/model_training:"),
    st.Page(str(ROOT / "pages" / "results.py"), title="Results", icon=":material/fact_check:"),
    st.Page(str(ROOT / "pages" / "try_it.py"), title="Try it", icon=":material/center_focus_strong:"),
    st.Page(str(ROOT / "pages" / "runs.py"), title="Runs", icon=":material/history:"),
]

if authenticated():
    page = st.navigation(PAGES, position="sidebar")
    with st.sidebar:
        st.caption("Plate OCR Studio: import plate photos, train a reader, check it, download it.")
else:  # only the sign-in page (or the refusal to serve) exists until the password is entered
    page = st.navigation([st.Page(login_page, title="Sign in", icon=":material/lock:")], position="hidden")
page.run()
