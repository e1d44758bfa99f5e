"""Hostile zips: refused as a whole (bomb, too many entries, too big, not a zip) or member by member."""
from __future__ import annotations

import stat
import struct
import time
import zipfile
from pathlib import Path

import pytest

from engine.data.safezip import (
    ImportRefused,
    UnsafeArchive,
    ZipLimits,
    declared_entry_count,
    open_zip,
    read_member,
    safe_extract,
    scan_zip,
)


def symlink_info(name: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def write_zeros(zf: zipfile.ZipFile, name: str, mib: int) -> None:
    """A member of `mib` MiB of zeros, streamed so the test never holds it in memory."""
    assert zf.compression == zipfile.ZIP_DEFLATED
    chunk = bytes(1024 * 1024)
    with zf.open(name, "w") as f:  # the zip's own compression (DEFLATED, level 9)
        for _ in range(mib):
            f.write(chunk)


def test_unsafe_archive_is_a_value_error() -> None:
    assert issubclass(UnsafeArchive, ImportRefused) and issubclass(ImportRefused, ValueError)


def test_not_a_zip(tmp_path: Path) -> None:
    fake = tmp_path / "plates.zip"
    fake.write_bytes(b"this is a text file renamed to .zip\n" * 10)
    with pytest.raises(UnsafeArchive, match="plates.zip is not a zip file"):
        open_zip(fake)


def test_zip_bomb_refused_from_the_header(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("ok.jpg", b"x" * 100)
        write_zeros(zf, "BOMB.jpg", 20)  # ~20 KiB on disk, 1000:1
    assert bomb.stat().st_size < 100_000
    with open_zip(bomb) as zf, pytest.raises(UnsafeArchive, match="zip bomb"):
        scan_zip(zf)


def test_too_many_entries_with_lowered_limit(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(11):
            zf.writestr(f"{i}.jpg", b"")
    with pytest.raises(UnsafeArchive, match="11 entries; at most 10"):
        open_zip(path, ZipLimits(max_entries=10))


def test_100k_entries_refused_fast_with_default_limits(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(100_000):
            zf.writestr(zipfile.ZipInfo(f"{i}.jpg"), b"")
    assert declared_entry_count(path) == 100_000
    started = time.perf_counter()
    with pytest.raises(UnsafeArchive, match="100,000 entries"):
        open_zip(path)
    assert time.perf_counter() - started < 0.5  # from the end record, without parsing 100k entries


def test_total_size_limit(tmp_path: Path) -> None:
    path = tmp_path / "big.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("a.jpg", b"a" * 600)
        zf.writestr("b.jpg", b"b" * 600)
    with open_zip(path) as zf, pytest.raises(UnsafeArchive, match="unpacks to more than"):
        scan_zip(zf, ZipLimits(max_total_bytes=1000))


def test_single_bad_members_get_a_problem(tmp_path: Path) -> None:
    path = tmp_path / "mixed.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("good.jpg", b"1")
        zf.writestr("../evil.jpg", b"2")
        zf.writestr("/tmp/evil.jpg", b"3")
        zf.writestr("..\\evil.jpg", b"4")
        zf.writestr("C:/evil.jpg", b"5")
        zf.writestr(symlink_info("link.jpg"), "/etc/passwd")
        zf.writestr("large.jpg", b"6" * 2000)
        zf.writestr("dir/", b"")
    with open_zip(path) as zf:
        problems = {m.name: m.problem for m in scan_zip(zf, ZipLimits(max_file_bytes=1000))}
    assert problems["good.jpg"] is None and problems["dir/"] is None
    assert "outside" in problems["../evil.jpg"]
    assert "absolute" in problems["/tmp/evil.jpg"]
    assert "backslash" in problems["..\\evil.jpg"]
    assert "absolute" in problems["C:/evil.jpg"]
    assert "symbolic link" in problems["link.jpg"]
    assert "per file" in problems["large.jpg"]


def test_utf8_names_without_the_flag_are_recovered(tmp_path: Path) -> None:
    path = tmp_path / "names.zip"
    with zipfile.ZipFile(path, "w") as zf:
        info = zipfile.ZipInfo("皖A12345.jpg")
        zf.writestr(info, b"1")
    raw = path.read_bytes()
    # clear the UTF-8 flag (bit 11) in both headers, as old zip tools do
    raw = raw.replace(b"PK\x03\x04\x14\x00\x00\x08", b"PK\x03\x04\x14\x00\x00\x00").replace(b"PK\x01\x02\x14\x03\x14\x00\x00\x08", b"PK\x01\x02\x14\x03\x14\x00\x00\x00")
    path.write_bytes(raw)
    with open_zip(path) as zf:
        assert not zf.infolist()[0].flag_bits & 0x800
        assert [m.name for m in scan_zip(zf)] == ["皖A12345.jpg"]


def test_read_member_is_capped(tmp_path: Path) -> None:
    path = tmp_path / "a.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("a.jpg", b"abc" * 1000)
    with open_zip(path) as zf:
        member = scan_zip(zf)[0]
        assert read_member(zf, member) == b"abc" * 1000


def test_safe_extract_writes_only_inside(tmp_path: Path) -> None:
    good = tmp_path / "bundle.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("model/saved_model.pb", b"pb")
        zf.writestr("model/variables/", b"")
        zf.writestr("config.json", b"{}")
    files = safe_extract(good, tmp_path / "out")
    assert sorted(p.relative_to(tmp_path / "out").as_posix() for p in files) == ["config.json", "model/saved_model.pb"]
    assert (tmp_path / "out/model/variables").is_dir()

    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("fine.txt", b"x")
        zf.writestr("../escaped.txt", b"x")
    with pytest.raises(UnsafeArchive, match="unsafe entry"):
        safe_extract(evil, tmp_path / "out2")
    assert not (tmp_path / "escaped.txt").exists() and not (tmp_path / "out2").exists()


# --- entries sharing their bytes: one small picture unpacked hundreds of times ---------------------------
def same_data_zip(path: Path, copies: int, data: bytes = b"x" * 500, name: str = "A.png") -> Path:
    """`copies` central-directory entries that all point at the one local header of a single file
    (what a crafted zip does; no zip tool writes it)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(name, data)
    raw = path.read_bytes()
    start, end = raw.index(b"PK\x01\x02"), raw.index(b"PK\x05\x06")
    central, record = raw[start:end], bytearray(raw[end:])
    record[8:12] = struct.pack("<HH", copies, copies)
    record[12:16] = struct.pack("<I", len(central) * copies)
    path.write_bytes(raw[:start] + central * copies + bytes(record))
    return path


def quoted_overlap_zip(path: Path) -> Path:
    """Two stored entries where the first one's sizes are stretched over the second's header and
    data (the 'quoted' overlap of the non-recursive zip bombs)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("FIRST.jpg", b"1" * 100)
        zf.writestr("SECOND.jpg", b"2" * 100)
    raw = bytearray(path.read_bytes())
    second = raw.index(b"PK\x03\x04", 1)
    stretched = struct.pack("<II", second + 150, second + 150)  # compressed and uncompressed size
    central = raw.index(b"PK\x01\x02")
    raw[18:26] = stretched  # the first local header
    raw[central + 20 : central + 28] = stretched  # and its central record
    path.write_bytes(bytes(raw))
    return path


def test_entries_pointing_at_the_same_data_are_rejected(tmp_path: Path) -> None:
    path = same_data_zip(tmp_path / "same.zip", 200)
    with open_zip(path) as zf:
        members = scan_zip(zf)
    assert len(members) == 200
    assert all(m.problem and "overlaps that of A.png" in m.problem and "crafted" in m.problem for m in members)


def test_quoted_overlap_is_rejected_for_both_entries(tmp_path: Path) -> None:
    with open_zip(quoted_overlap_zip(tmp_path / "quoted.zip")) as zf:
        problems = {m.name: m.problem for m in scan_zip(zf)}
    assert "overlaps that of SECOND.jpg" in problems["FIRST.jpg"]
    assert "overlaps that of FIRST.jpg" in problems["SECOND.jpg"]


def test_zips_written_by_ordinary_tools_never_overlap(tmp_path: Path) -> None:
    path = tmp_path / "ordinary.zip"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("stored.jpg", b"s" * 3000, compress_type=zipfile.ZIP_STORED)
        zf.writestr("deflated.jpg", b"d" * 3000)
        with zf.open("streamed.jpg", "w") as f:  # sizes in a data descriptor after the data
            f.write(b"streamed" * 1000)
        with zf.open("zip64.jpg", "w", force_zip64=True) as f:
            f.write(b"z" * 5000)
        zf.writestr("empty.jpg", b"")
        zf.writestr("dir/", b"")
        zf.comment = b"a comment"
    with zipfile.ZipFile(tmp_path / "prefixed.zip", "w") as zf:
        zf.writestr("inner.jpg", b"i" * 100)
    (tmp_path / "sfx.zip").write_bytes(b"#!/bin/sh\nexit 0\n" * 50 + (tmp_path / "prefixed.zip").read_bytes())
    for zip_path in (path, tmp_path / "sfx.zip"):  # a self-extracting prefix shifts every offset
        with open_zip(zip_path) as zf:
            assert [m.problem for m in scan_zip(zf)] == [None] * len(zf.infolist()), zip_path


def test_overlap_check_is_fast_on_50k_entries(tmp_path: Path) -> None:
    path = tmp_path / "many.zip"
    with zipfile.ZipFile(path, "w") as zf:
        for i in range(50_000):
            zf.writestr(zipfile.ZipInfo(f"{i}.jpg"), b"x")
    with open_zip(path) as zf:
        started = time.perf_counter()
        members = scan_zip(zf)
        seconds = time.perf_counter() - started
    assert not any(m.problem for m in members) and seconds < 3, seconds


def test_safe_extract_refuses_overlapping_entries(tmp_path: Path) -> None:
    with pytest.raises(UnsafeArchive, match="overlaps"):
        safe_extract(quoted_overlap_zip(tmp_path / "quoted.zip"), tmp_path / "out")
    assert not (tmp_path / "out").exists()
