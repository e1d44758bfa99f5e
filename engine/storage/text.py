"""Text from users shown on a terminal: file names and labels come from uploads, not from us.

A file name may hold a terminal escape (`\\x1b]0;...`), a carriage return that overwrites the line,
or a right-to-left override that makes it read as something else. `printable` escapes exactly those
characters, repr-style, and leaves every other character (any script, emoji) as it is.
"""
from __future__ import annotations

import os
import unicodedata

# Controls, invisible format characters (bidi overrides, zero-width, BOM), line/paragraph
# separators, and lone surrogates (undecodable bytes of a file name, as os.listdir returns them).
INVISIBLE_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs"})


def is_invisible(char: str) -> bool:
    """True for a character a terminal or a table would not show as itself."""
    return unicodedata.category(char) in INVISIBLE_CATEGORIES


def printable(text: str) -> str:
    """`text` with invisible and control characters escaped (`\\x1b`, `\\u202e`), the rest unchanged."""
    return "".join(_escape(c) if is_invisible(c) else c for c in str(text))


def _escape(char: str) -> str:
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def has_undecodable_bytes(name: str) -> bool:
    """True for a name from os.listdir/os.walk with bytes that were not UTF-8 (held as lone surrogates)."""
    return any("\udc80" <= c <= "\udcff" for c in name)


def decoded_file_name(name: str) -> str:
    """A name from os.listdir/os.walk as text that can be written anywhere (JSON, CSV, a page):
    bytes that were not UTF-8 (held as lone surrogates) are shown as `\\xff`."""
    if not has_undecodable_bytes(name):
        return name
    return os.fsencode(name).decode("utf-8", "backslashreplace")
