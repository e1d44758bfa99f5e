"""Labels from file names, annotation files and CSVs; the grouped train/test split; labels with
invisible characters refused; names from users printed escaped."""
from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from engine.data.labels import (
    is_image_name,
    label_from_filename,
    label_problem,
    normalize_label,
    read_annotation_file,
    read_label_csv,
)
from engine.data.split import grouped_split
from engine.storage.text import printable


@pytest.mark.parametrize(
    "name, label",
    [
        ("34FK4522.jpg", "34FK4522"),
        ("34FK4522_1.jpg", "34FK4522"),
        ("34FK4522_2.png", "34FK4522"),
        ("34fk4522_2.JPEG", "34FK4522"),
        ("dir/sub/06ABC12.BMP", "06ABC12"),
        ("dir\\06ABC12_3.webp", "06ABC12"),
        ("皖A12345.jpg", "皖A12345"),
        ("  AB 12 CD  .jpg", "AB 12 CD"),
        ("$(rm -rf ~);x.jpg", "$(RM -RF ~);X"),
        ("_1.jpg", ""),
        ("A.B.C_9.jpg", "A.B.C"),
    ],
)
def test_label_from_filename(name: str, label: str) -> None:
    assert label_from_filename(name) == label


def test_keep_case_and_unicode() -> None:
    assert label_from_filename("ab12cd_1.jpg", keep_case=True) == "ab12cd"
    assert normalize_label("  مصر 123 ") == "مصر 123"
    assert normalize_label("e\u0301") == "\u00c9"  # NFC, then upper-case


@pytest.mark.parametrize("name, ok", [("a.jpg", True), ("a.JPEG", True), ("a.png", True), ("a.bmp", True), ("a.WebP", True), ("a.gif", False), ("a.txt", False), ("jpg", False)])
def test_is_image_name(name: str, ok: bool) -> None:
    assert is_image_name(name) is ok


def test_read_annotation_file(tmp_path: Path) -> None:
    (tmp_path / "ann").mkdir()
    absolute = tmp_path / "elsewhere.jpg"
    text = f"\ufeffimgs/a.jpg 34fk4522\n\n imgs/b.png   AB 12 CD \n{absolute} 皖a12345\nimgs/nolabel.jpg\n"
    ann = tmp_path / "ann" / "annotations.txt"
    ann.write_text(text, encoding="utf-8")
    entries = read_annotation_file(ann)
    assert entries == [
        (tmp_path / "ann" / "imgs/a.jpg", "34FK4522"),
        (tmp_path / "ann" / "imgs/b.png", "AB 12 CD"),
        (absolute, "皖A12345"),
        (tmp_path / "ann" / "imgs/nolabel.jpg", ""),
    ]


def test_read_label_csv(tmp_path: Path) -> None:
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text('image_path,plate_text,extra\na.jpg,34fk4522,x\n"dir/b c.jpg","AB, 12",y\n,ignored,z\n', encoding="utf-8")
    assert read_label_csv(csv_path) == [(tmp_path / "a.jpg", "34FK4522"), (tmp_path / "dir/b c.jpg", "AB, 12")]


def test_read_label_csv_needs_columns(tmp_path: Path) -> None:
    csv_path = tmp_path / "labels.csv"
    csv_path.write_text("name,value\na.jpg,x\n", encoding="utf-8")
    with pytest.raises(ValueError, match="image_path,plate_text"):
        read_label_csv(csv_path)


def test_grouped_split_keeps_plates_on_one_side_and_is_deterministic() -> None:
    labels = [f"P{i % 300}" for i in range(1000)]  # 300 plates, 3-4 photos each
    sides = grouped_split(labels, 0.2, seed=7)
    by_label: dict[str, set[str]] = {}
    for label, side in zip(labels, sides):
        by_label.setdefault(label, set()).add(side)
    assert all(len(s) == 1 for s in by_label.values())
    assert abs(Counter(sides)["test"] - 200) <= 5
    assert grouped_split(labels, 0.2, seed=7) == sides
    assert grouped_split(labels, 0.2, seed=8) != sides
    # order-independent: the same plates land in test whatever order the files came in
    shuffled = list(reversed(labels))
    test_a = {l for l, s in zip(labels, sides) if s == "test"}
    test_b = {l for l, s in zip(shuffled, grouped_split(shuffled, 0.2, seed=7)) if s == "test"}
    assert test_a == test_b


def test_grouped_split_edge_cases() -> None:
    assert grouped_split([], 0.2, 0) == []
    assert grouped_split(["A", "A", "A"], 0.5, 0) == ["train"] * 3  # one plate: nothing to test on
    assert grouped_split(["A", "B"], 0.0, 0) == ["train", "train"]
    assert sorted(grouped_split(["A", "B"], 0.5, 0)) == ["test", "train"]
    with pytest.raises(ValueError):
        grouped_split(["A"], 1.0, 0)


# --- invisible characters in labels, and printing names from users ------------------------------------------


@pytest.mark.parametrize("label, named", [
    ("AB\u200b12", "U+200B ZERO WIDTH SPACE"),
    ("\ufeffAB12", "U+FEFF BYTE ORDER MARK"),
    ("AB\u200d12", "U+200D ZERO WIDTH JOINER"),
    ("AB\u00ad12", "U+00AD SOFT HYPHEN"),
    ("AB12\u202eGPJ", "U+202E RIGHT-TO-LEFT OVERRIDE"),
    ("\u2066XY12\u2069", "U+2066 LEFT-TO-RIGHT ISOLATE"),
    ("AB\u206012", "U+2060 WORD JOINER"),
    ("AB\U000e0041", "U+E0041 TAG LATIN CAPITAL LETTER A"),
    ("AB\t12", "U+0009 CONTROL CHARACTER"),
    ("AB\x1b[31m", "U+001B CONTROL CHARACTER"),
    ("AB\u202812", "U+2028 LINE SEPARATOR"),
])
def test_labels_with_invisible_characters_are_refused_naming_them(label: str, named: str) -> None:
    reason = label_problem(label, 16)
    assert reason and "invisible characters" in reason and named in reason, reason
    assert not any(c in reason for c in "\u200b\ufeff\u200d\u202e\u2066\t\x1b")  # the reason itself is plain


def test_labels_from_undecodable_file_names_are_refused() -> None:
    name = b"\xff\xfeAB12.jpg".decode("utf-8", "surrogateescape")  # as os.listdir returns it
    assert "not valid UTF-8" in label_problem(label_from_filename(name), 16)


@pytest.mark.parametrize("label", ["34FK4522", "皖A12345", "مصر 123", "שלום12", "नमस्ते12", "МОСКВА77", "AB 12 CD",
                                   "=CMD()|A1", "-RF", "🚗🚓12"])
def test_visible_labels_in_any_script_are_fine(label: str) -> None:
    assert label_problem(label, 16) is None


def test_printable_escapes_only_what_a_terminal_would_not_show() -> None:
    assert printable("皖A12345 مصر 🚗 AB-12.jpg") == "皖A12345 مصر 🚗 AB-12.jpg"
    assert printable("\x1b]0;pwned\x07AB.jpg") == "\\x1b]0;pwned\\x07AB.jpg"
    assert printable("ok\rEVIL\n") == "ok\\x0dEVIL\\x0a"
    assert printable("AB12\u202egpj.exe") == "AB12\\u202egpj.exe"
    assert printable("\ufeff\u200bX") == "\\ufeff\\u200bX"
    assert printable("\udcff") == "\\udcff" and printable("\x9b") == "\\x9b"  # surrogate, C1 CSI


def test_undecodable_file_names_are_shown_by_their_bytes() -> None:
    from engine.storage.text import decoded_file_name

    assert decoded_file_name(b"caf\xe9/\xff\xfeAB12.jpg".decode("utf-8", "surrogateescape")) == "caf\\xe9/\\xff\\xfeAB12.jpg"
    assert decoded_file_name("皖A12345.jpg") == "皖A12345.jpg"
