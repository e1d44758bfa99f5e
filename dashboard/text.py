"""Words and numbers on the page: user text shown as text, percentages, durations, dates.

Streamlit reads Markdown in nearly every string it shows (st.markdown, captions, titles, alerts,
toasts, widget labels, metric labels and values, image captions, progress texts, radio options).
Run names, dataset names, labels and file names come from users: placed in any of those unescaped,
`![t](http://host/t.png)` makes every viewer's browser fetch that address and a backtick ends a
code span. `plain()` is the one place that turns user text into Markdown that shows it literally.
Selectbox and multiselect options, dataframes, st.text and st.code show text as it is.
"""
from __future__ import annotations

import math
import re
import string
from datetime import datetime

from engine.storage.text import printable

# CommonMark lets a backslash escape any ASCII punctuation character, and then shows it literally:
# that disarms emphasis, code spans, links, images, HTML, math ($), directives (:red[...]), tables
# and headings alike.
_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")
# Some of Streamlit's Markdown runs on the text after escapes are resolved: bare addresses become
# links (http://..., www.x.org, a@b.org) and `:name:` an emoji or icon. A word joiner (U+2060,
# invisible, zero width) after every ':' and '@' and inside 'www.' keeps those from matching.
_JOINER = "\u2060"
_AUTOMATIC = re.compile(r"(\\[:@])|(?<=w)(?=\\\.)", re.IGNORECASE)


def plain(text: object) -> str:
    """`text` as Markdown that displays exactly `text` on one line (invisible characters escaped)."""
    shown = printable(" ".join(str(text).splitlines()))
    return _AUTOMATIC.sub(lambda m: (m.group(1) or "") + _JOINER, _PUNCTUATION.sub(r"\\\1", shown))


def quoted(text: object) -> str:
    """User text inside a sentence: “text”, escaped."""
    return f"“{plain(text)}”"


def fmt_pct(value: float | None, digits: int = 1) -> str:
    """0.857 -> '85.7 %'; missing -> '–'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    return f"{100 * float(value):.{digits}f} %"


def fmt_duration(seconds: float | None) -> str:
    """95 -> '1 min 35 s'; missing -> '–'."""
    try:
        seconds = max(0, int(round(float(seconds))))
    except (TypeError, ValueError):
        return "–"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


def fmt_time(iso: str | None) -> str:
    """An ISO timestamp as the local 'YYYY-MM-DD HH:MM'."""
    if not iso:
        return "–"
    try:
        when = datetime.fromisoformat(str(iso))
    except ValueError:
        return str(iso)
    if when.tzinfo is not None:
        when = when.astimezone()
    return when.strftime("%Y-%m-%d %H:%M")


def plural(count: int, word: str, words: str | None = None) -> str:
    """plural(1, 'photo') -> '1 photo'; plural(3, 'photo') -> '3 photos'."""
    return f"{count:,} {word if count == 1 else (words or word + 's')}"
