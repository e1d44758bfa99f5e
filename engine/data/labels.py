"""Plate labels: from file names (`34FK4522_1.jpg` -> `34FK4522`), aocr annotation files and CSVs.

Labels keep every Unicode character (Chinese plates start with e.g. 皖); only the surrounding
spaces go, and letters are upper-cased unless `keep_case` (operators rarely mean `34fk` != `34FK`).
"""
from __future__ import annotations

import csv
import os
import unicodedata
from pathlib import Path
from typing import Callable

from engine.storage.text import has_undecodable_bytes, is_invisible

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")

# CSV column names we accept, first match wins: the issue's `image_path,plate_text`, our own
# labels.csv (`file,label`) and the `filename,label` of the shared benchmark folders.
CSV_PATH_COLUMNS = ("image_path", "file", "filename", "path", "image")
CSV_LABEL_COLUMNS = ("plate_text", "label", "text", "plate")

PROVINCES = "京津沪渝冀豫云辽黑湘皖鲁新苏浙赣鄂桂甘晋蒙陕吉闽贵粤青藏川宁琼"  # the first character of a Chinese plate
CN_PLATE_CHARS = PROVINCES + "警学挂港澳使领临试"  # also on Chinese plates: police, learner, trailer, Hong Kong ...
# Datasets published with some characters hidden for privacy write each hidden one as a mark: the
# Spanish UC3M-LP writes `24*0JV*` for a plate whose third and last characters are covered.
MASK_MARKS = "*#?"

# Zip tools and Excel on Chinese and Korean Windows write names and CSVs in the system's code page,
# not UTF-8. Bytes that are not UTF-8 are read in one of these only when every character that is not
# ASCII comes out as plate text; other bytes are not guessed at. Korean Windows writes cp949, read
# here as its EUC-KR core (the 2,350 common syllables, every plate's among them): cp949's extra
# syllables would also read a German cp437 `MÜAB123` (Ü then A) as Hangul.
_LEGACY_CODE_PAGES = (
    ("gbk", lambda c: c in CN_PLATE_CHARS),
    ("euc_kr", lambda c: "\uac00" <= c <= "\ud7a3"),  # Hangul syllables (12가3456)
)


def normalize_label(text: str, keep_case: bool = False) -> str:
    """NFC-normalized, surrounding whitespace stripped, upper-cased unless `keep_case`."""
    text = unicodedata.normalize("NFC", str(text)).strip()
    return text if keep_case else text.upper()


def base_name(name: str) -> str:
    """The last segment of a path written with '/' or '\\' (zip names use either)."""
    return str(name).replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]


def split_extension(name: str) -> tuple[str, str]:
    """(`stem`, `.ext` lower-cased) of the base name; ext is '' when there is none."""
    base = base_name(name)
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem:
        return base, ""
    return stem, "." + ext.lower()


def is_image_name(name: str) -> bool:
    return split_extension(name)[1] in IMAGE_EXTENSIONS


def legacy_text(raw: bytes, judged: Callable[[str], str] = str) -> str | None:
    """Bytes that are not UTF-8 as text in a Chinese (GBK) or Korean (cp949) Windows code page: the
    first one in which `judged(text)` is plate text (ASCII aside), or None when there is none."""
    for encoding, plate_char in _LEGACY_CODE_PAGES:
        try:
            text = raw.decode(encoding)
        except UnicodeDecodeError:
            continue
        if all(c.isascii() or plate_char(c) for c in judged(text)):
            return text
    return None


def legacy_name(raw: bytes) -> str | None:
    """A path whose bytes are not UTF-8, in the code page in which the file's own name is plate
    text: its folders (`车牌照片/`) are in the same code page but need not be plate text."""
    return legacy_text(raw, lambda path: split_extension(path)[0])


def legacy_file_name(name: str) -> str | None:
    """A name from os.listdir whose bytes were not UTF-8 (lone surrogates), read by `legacy_name`."""
    return legacy_name(os.fsencode(name)) if has_undecodable_bytes(name) else None


def label_from_filename(name: str, keep_case: bool = False) -> str:
    """`34FK4522.jpg`, `34FK4522_2.png`, `dir/34FK4522_1.JPG` -> `34FK4522` (stem up to the first '_')."""
    stem, _ = split_extension(legacy_file_name(name) or name)
    return normalize_label(stem.split("_", 1)[0], keep_case)


def _char_name(char: str) -> str:
    if char == "\ufeff":
        return "BYTE ORDER MARK"
    return unicodedata.name(char, "CONTROL CHARACTER" if unicodedata.category(char) == "Cc" else "UNNAMED")


def label_problem(label: str, max_label_length: int | None) -> str | None:
    """Why a label cannot be trained on, or None.

    Invisible characters are refused, not silently dropped: a zero-width space or a byte order mark
    makes two labels that look the same differ, a right-to-left override makes a label display as
    something else than it is ("Trojan Source"), and a control character breaks every table.
    """
    if not label:
        return "empty label: the file name must start with the plate text, e.g. 34FK4522.jpg or 34FK4522_1.jpg"
    if any(0xD800 <= ord(c) <= 0xDFFF for c in label):  # os.listdir's stand-ins for undecodable bytes
        return "the file name is not valid UTF-8 text, so its label cannot be read; rename the file"
    hidden = sorted({c for c in label if is_invisible(c)})
    if hidden:
        names = ", ".join(f"U+{ord(c):04X} {_char_name(c)}" for c in hidden[:5])
        return f"the label contains invisible characters ({names}); retype the plate text in the file name"
    if max_label_length is not None and len(label) > max_label_length:
        return f"the label '{label}' has {len(label)} characters, more than the maximum of {max_label_length}"
    return None


def _resolve(entry_path: str, folder: Path) -> Path:
    path = Path(os.path.expanduser(entry_path))
    return path if path.is_absolute() else folder / path


def decode_text(raw: bytes, name: str) -> str:
    """A label file's bytes as text: UTF-8 (with or without Excel's BOM), or a Chinese or Korean
    Windows code page when its plate text reads in one; else a ValueError naming the file."""
    try:
        return raw.decode("utf-8-sig")  # -sig: Excel and Notepad write a BOM
    except UnicodeDecodeError as exc:
        text = legacy_text(raw)  # Excel's plain "CSV" on Chinese or Korean Windows
        if text is not None:
            return text
        raise ValueError(f"{name} is not a UTF-8 text file ({exc.reason} at byte {exc.start}). "
                         "Save it as UTF-8 (in Excel: \"CSV UTF-8\").") from None


def annotation_rows(text: str, keep_case: bool = False) -> list[tuple[str, str]]:
    """aocr's annotation file: one `path label` per line -> [(path as written, label)].

    The path runs up to the first whitespace and the label is the rest of the line (it may hold
    spaces). Blank lines are ignored; a line without a label gives an empty label, which the
    importer rejects with a reason.
    """
    rows = []
    for line in text.splitlines():
        if line.strip():
            parts = line.strip().split(None, 1)
            rows.append((parts[0], normalize_label(parts[1] if len(parts) > 1 else "", keep_case)))
    return rows


def _pick_column(fieldnames: list[str], choices: tuple[str, ...]) -> str | None:
    by_name = {name.strip().lower(): name for name in fieldnames if name}
    return next((by_name[c] for c in choices if c in by_name), None)


def csv_rows(text: str, name: str, keep_case: bool = False) -> list[tuple[str, str]]:
    """A CSV with a header naming `image_path` and `plate_text` columns (or `file`/`filename` and
    `label`) -> [(path as written, label)]; a ValueError naming the file when the header lacks them."""
    reader = csv.DictReader(text.splitlines())
    fields = reader.fieldnames or []
    path_col, label_col = _pick_column(fields, CSV_PATH_COLUMNS), _pick_column(fields, CSV_LABEL_COLUMNS)
    if not path_col or not label_col:
        raise ValueError(
            f"{name} needs a header line with the columns image_path,plate_text "
            f"(found: {', '.join(f for f in fields if f) or 'nothing'})."
        )
    return [(row[path_col].strip(), normalize_label(row.get(label_col) or "", keep_case))
            for row in reader if (row.get(path_col) or "").strip()]


def read_annotation_file(path: str | os.PathLike, keep_case: bool = False) -> list[tuple[Path, str]]:
    """aocr's annotation file (`annotation_rows`) -> [(image path, label)], relative paths taken
    from the annotation file's folder."""
    path = Path(path)
    return [(_resolve(p, path.parent), label)
            for p, label in annotation_rows(decode_text(path.read_bytes(), path.name), keep_case)]


def read_label_csv(path: str | os.PathLike, keep_case: bool = False) -> list[tuple[Path, str]]:
    """A labels CSV (`csv_rows`) -> [(image path, label)], relative paths taken from the CSV's folder."""
    path = Path(path)
    return [(_resolve(p, path.parent), label)
            for p, label in csv_rows(decode_text(path.read_bytes(), path.name), path.name, keep_case)]


def read_label_file(path: str | os.PathLike, keep_case: bool = False) -> list[tuple[Path, str]]:
    """A CSV (by extension) or an aocr annotation file (anything else)."""
    if Path(path).suffix.lower() == ".csv":
        return read_label_csv(path, keep_case)
    return read_annotation_file(path, keep_case)
