"""Synthetic licence plates: many layouts and fonts, photographed with street-camera damage.

Two users: pretraining renders ~200k plates of every layout with system fonts (docs/FONTS.md), and
the sample data and tests render with OpenCV's built-in faces only, so the same seed gives the same
bytes on any machine with the same OpenCV. Stands alone (numpy, OpenCV, Pillow, stdlib).

    image, label = random_plate(np.random.default_rng(0))
    image = render_plate("34 FK 4522", 0, "tr")

Why one long module: the layout table, the decorations it names and the photo damage are tuned
together (label heights, the margins a crop may eat, how much smaller the decorative text must
be so that a model learns to ignore it); split up, each part would restate the others' numbers.

Reading order: fonts and glyph masks, plate texts, typesetting, the layout table and drawing,
the photograph, the public entry points.
"""
from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from engine.data.labels import MASK_MARKS, PROVINCES

DIGITS = "0123456789"
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
SEPARATORS = " -·"
CONSONANTS = "BCDFGHJKLMNPRSTVWXYZ"  # Spanish plates print no vowels (nor Ñ, Q)
Colour = tuple[int, int, int]  # BGR


# --- fonts ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Font:
    """A face to draw plate characters with: a font file (TTF/OTF/TTC) or an OpenCV face."""

    name: str  # e.g. "hershey-simplex" or "DejaVuSansCondensed-Bold"
    path: str | None  # TTF/OTF/TTC file, None for an OpenCV Hershey face
    hershey: int | None  # cv2.FONT_HERSHEY_* when path is None
    index: int = 0  # face index inside a .ttc collection
    cjk: bool = False  # has glyphs for all Chinese province characters


_HERSHEY = {
    "simplex": cv2.FONT_HERSHEY_SIMPLEX,
    "plain": cv2.FONT_HERSHEY_PLAIN,
    "duplex": cv2.FONT_HERSHEY_DUPLEX,
    "complex": cv2.FONT_HERSHEY_COMPLEX,
    "triplex": cv2.FONT_HERSHEY_TRIPLEX,
    "complex-small": cv2.FONT_HERSHEY_COMPLEX_SMALL,
    "script-simplex": cv2.FONT_HERSHEY_SCRIPT_SIMPLEX,
    "script-complex": cv2.FONT_HERSHEY_SCRIPT_COMPLEX,
}
# Faces unreadable as plates or not plate-like: slanted, hairline, hollow, inverted, symbols, brush.
_SKIP_FACE = re.compile(
    r"italic|oblique|outline|inverted|\bthin\b|light|hairline|math|symbol|emoji|dingbat|icons?\b|awesome"
    r"|braille|barcode|script|hand|pixel|smallcaps|kai|uming|mingti|sung",
    re.IGNORECASE,
)
_NOTDEF = "\U0010fffd"  # a private code point no font maps: draws the font's "missing glyph"


@functools.cache
def _hershey_fonts() -> tuple[Font, ...]:
    fonts = tuple(Font(f"hershey-{name}", None, face) for name, face in _HERSHEY.items())
    # OpenCV 5 falls back to its built-in CJK face for these; older versions print '?'.
    return tuple(replace(f, cjk=all(_glyph(f, ch, 32) is not None for ch in PROVINCES)) for f in fonts)


def hershey_fonts() -> list[Font]:
    """OpenCV's built-in faces: no font files, the same pixels on every machine."""
    return list(_hershey_fonts())


@functools.cache
def _system_fonts(roots: tuple[str, ...]) -> tuple[Font, ...]:
    files = sorted({p for root in roots for p in Path(root).rglob("*") if p.suffix.lower() in (".ttf", ".otf", ".ttc")})
    fonts, seen = [], set()
    for path in files:
        for index in range(16 if path.suffix.lower() == ".ttc" else 1):
            try:
                family, style = _pil_font(str(path), index, 32).getname()
            except OSError:  # past the last face of a collection, or not a font at all
                break
            if (family, style) in seen or _SKIP_FACE.search(f"{family} {style} {path.name}"):
                continue
            seen.add((family, style))
            font = Font(path.stem if index == 0 else f"{path.stem}#{index}", str(path), None, index)
            glyphs = [_glyph(font, ch, 32) for ch in DIGITS + LETTERS]
            # A symbol font maps letters onto a handful of shapes: it must show distinct characters.
            if any(g is None for g in glyphs) or len({g.tobytes() for g in glyphs}) < 30:
                continue
            fonts.append(replace(font, cjk=all(_glyph(font, ch, 32) is not None for ch in PROVINCES)))
    return tuple(fonts)


def system_fonts(roots: Sequence[str] = ("/usr/share/fonts",)) -> list[Font]:
    """Upright plate-usable faces under `roots` that draw all of 0-9 A-Z (cached per process)."""
    return list(_system_fonts(tuple(roots)))


@functools.cache
def _pil_font(path: str, index: int, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(path, size, index=index)


@functools.cache
def _cap_ratio(font: Font, bold: bool) -> float:
    """Capital height per unit of font size (PIL) or of font scale (OpenCV)."""
    if font.path is None:
        probe = np.zeros((200, 200), np.uint8)
        cv2.putText(probe, "H", (20, 150), font.hershey, 4.0, 255, 2 if bold else 1, cv2.LINE_AA)
        rows = np.flatnonzero(probe.max(1))
        return (rows[-1] - rows[0] + 1) / 4.0
    left, top, right, bottom = _pil_font(font.path, font.index, 100).getbbox("H", anchor="ls")
    return max(bottom - top, 1) / 100.0


def _raw(font: Font, ch: str, cap: int, bold: bool) -> np.ndarray:
    """`ch` drawn white on black with capitals `cap` px tall, baseline at row 1.5*cap of 2*cap rows."""
    h, w, base, x = 2 * cap, 3 * cap, int(1.5 * cap), cap // 4
    if font.path is None:
        img = np.zeros((h, w), np.uint8)
        cv2.putText(img, ch, (x, base), font.hershey, cap / _cap_ratio(font, bold), 255, 2 if bold else 1, cv2.LINE_AA)
        return img
    pil = _pil_font(font.path, font.index, max(4, round(cap / _cap_ratio(font, False))))
    img = Image.new("L", (w, h), 0)
    ImageDraw.Draw(img).text((x, base), ch, font=pil, fill=255, anchor="ls")
    return np.asarray(img)


@functools.cache
def _missing(font: Font, bucket: int, bold: bool) -> np.ndarray:
    """What the font draws for a character it lacks: OpenCV a '?', a font file its .notdef box."""
    return _raw(font, "?" if font.path is None else _NOTDEF, bucket, bold)


@functools.cache
def _glyph(font: Font, ch: str, bucket: int, bold: bool = False) -> np.ndarray | None:
    """Mask of one character in a 1.5*bucket tall strip (cap top at bucket/4, baseline at 1.25*bucket),
    cropped to its ink left and right; None when the font lacks it (never draw a '?' or a box)."""
    raw = _raw(font, ch, bucket, bold)
    if not raw.any() or (ch != "?" and np.array_equal(raw, _missing(font, bucket, bold))):
        return None
    cols = np.flatnonzero(raw.max(0))
    if ord(ch) < 0x2E80:
        return np.ascontiguousarray(raw[bucket // 4 : bucket // 4 + bucket * 3 // 2, cols[0] : cols[-1] + 1])
    # CJK ink is taller than Latin capitals: plates print it at the capitals' height.
    rows = np.flatnonzero(raw.max(1))
    ink = raw[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    width = max(1, round(ink.shape[1] * bucket / ink.shape[0]))
    strip = np.zeros((bucket * 3 // 2, width), np.uint8)
    strip[bucket // 4 : bucket // 4 + bucket] = cv2.resize(ink, (width, bucket), interpolation=cv2.INTER_AREA)
    return strip


@functools.cache
def _family(font: Font) -> str:
    """Faces of one design share a family, so a family with many weights is not drawn more often."""
    if font.path is None:
        return "opencv"
    return _pil_font(font.path, font.index, 32).getname()[0].split()[0]


@functools.lru_cache(maxsize=64)
def _families(fonts: tuple[Font, ...], cjk: bool) -> tuple[tuple[Font, ...], ...]:
    pool = [f for f in fonts if f.cjk] if cjk else list(fonts)
    if cjk and not pool:
        pool = [f for f in system_fonts() if f.cjk]
    if not pool:
        raise ValueError("no font in the list (nor on this system) draws the Chinese province characters")
    families: dict[str, list[Font]] = {}
    for f in pool:
        families.setdefault(_family(f), []).append(f)
    return tuple(tuple(members) for members in families.values())


def _pick_font(fonts: Sequence[Font], rng: np.random.Generator, cjk: bool) -> Font:
    """A family first, then one of its faces; CJK text needs a CJK face (the system's if none given)."""
    families = _families(tuple(fonts), cjk)
    members = families[int(rng.integers(len(families)))]
    return members[int(rng.integers(len(members)))]


# --- plate texts ---------------------------------------------------------------------------------
@dataclass
class PlateText:
    """A plate's printed rows and its label."""

    rows: list[str]  # printed rows, with separators as printed (spaces, '-', '·')
    label: str  # what an operator would type: rows joined top to bottom, separators removed

    @classmethod
    def of(cls, rows: Sequence[str]) -> PlateText:
        rows = list(rows)
        return cls(rows, "".join(c for c in "".join(rows) if c not in SEPARATORS))


def _expand(pattern: str, letters: str, rng: np.random.Generator) -> str:
    """D digit, L letter, A letter or digit, C consonant, P province, [..] one of; others printed."""
    pools = {"D": DIGITS, "L": letters, "A": letters + DIGITS, "C": CONSONANTS, "P": PROVINCES}
    out, i = [], 0
    while i < len(pattern):
        pool = pools.get(pattern[i])
        if pattern[i] == "[":
            end = pattern.index("]", i)
            pool, i = pattern[i + 1 : end], end
        out.append(pool[int(rng.integers(len(pool)))] if pool else pattern[i])
        i += 1
    return "".join(out)


def _random_pattern(rng: np.random.Generator, rows: int) -> str:
    """Groups of letters/digits unlike any country: 2-10 characters, random separators."""
    sep = str(rng.choice([" ", " ", "-", "·", ""]))
    lines = []
    for _ in range(rows):
        total = int(rng.integers(2, 11)) if rows == 1 else int(rng.integers(2, 6))
        cuts = sorted(rng.choice(np.arange(1, total), size=min(total - 1, int(rng.integers(0, 4))), replace=False)) if total > 1 else []
        sizes = np.diff([0, *cuts, total])
        lines.append(sep.join(str(rng.choice(["L", "D", "A"])) * int(n) for n in sizes))
    return "\n".join(lines)


def masked(text: PlateText, count: int, rng: np.random.Generator) -> PlateText:
    """`text` with `count` of its characters hidden, as datasets published for privacy hide them: each
    is written '*' (MASK_MARKS[0]) in the rows and the label, and draw_plate covers it."""
    spots = [(r, i) for r, row in enumerate(text.rows) for i, c in enumerate(row) if c not in SEPARATORS]
    rows = [list(row) for row in text.rows]
    for k in rng.choice(len(spots), min(count, len(spots)), replace=False):
        r, i = spots[int(k)]
        rows[r][i] = MASK_MARKS[0]
    return PlateText.of(["".join(row) for row in rows])


def plate_text(layout: str, rng: np.random.Generator) -> PlateText:
    """A plausible plate text for `layout` (see LAYOUTS)."""
    spec = _SPECS[layout]
    if spec.patterns:
        pattern = spec.patterns[int(rng.integers(len(spec.patterns)))]
    else:
        pattern = _random_pattern(rng, spec.rows)
    return PlateText.of(_expand(pattern, spec.letters, rng).split("\n"))


# --- typesetting -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Type:
    """How one plate's characters are set: a font and the spacing, width and weight of its rows."""

    font: Font
    bold: bool = False
    pitch: float = 0.0  # fixed cell width per capital height (0: proportional)
    track: float = 0.12  # gap between characters per capital height
    space: float = 0.5  # width of a printed space per capital height
    stretch: float = 1.0  # horizontal scale of the whole row
    weight: int = 0  # -1 thinner, +1 bolder strokes
    wide: int = -1  # index of a space widened for a seal or logo


@functools.cache
def _separator(ch: str, bucket: int) -> np.ndarray:
    strip = np.zeros((bucket * 3 // 2, int(bucket * (0.45 if ch == "-" else 0.2))), np.uint8)
    mid = bucket // 4 + bucket // 2
    if ch == "-":
        half = max(1, int(bucket * 0.065))
        strip[mid - half : mid + half] = 255
    else:
        cv2.circle(strip, (strip.shape[1] // 2, mid), max(1, int(bucket * 0.08)), 255, -1, cv2.LINE_AA)
    return strip


@functools.cache
def _heavy(font: Font, bucket: int, bold: bool) -> bool:
    """Strokes thick enough to survive thinning: the stems of an 'H' at least 16% of its height."""
    h = _glyph(font, "H", bucket, bold)
    return h is not None and (h[bucket // 2] > 127).sum() / 2 >= 0.16 * bucket


def _bucket(cap: float) -> int:
    """Glyphs are cached at a few sizes; rows are drawn at the nearest and resized."""
    return 16 if cap <= 14 else 32 if cap <= 30 else 64


def _text_mask(text: str, t: _Type, cap: float, strict: bool = True) -> tuple[np.ndarray, list[tuple[str, float, float]]]:
    """Ink mask of one row with capitals `cap` px tall (mask 1.5*cap tall, cap top at 1/6 of it),
    and each printed character's (char, x0, x1). Missing glyphs raise when `strict`, else are left out."""
    b = _bucket(cap)
    parts, boxes, x = [], [], 0.0
    for i, ch in enumerate(text):
        if ch == " ":
            width = (1.3 if i == t.wide else t.space) * b
            boxes.append((ch, x, x + width))
            x += width
            continue
        g = _separator(ch, b) if ch in SEPARATORS else _glyph(t.font, ch, b, t.bold)
        if g is None:
            if strict:
                raise ValueError(f"font {t.font.name} cannot draw {ch!r}")
            continue
        cell = t.pitch * b if t.pitch and ch not in SEPARATORS else g.shape[1]
        if g.shape[1] > cell:  # fixed-pitch plates squeeze wide letters (M, W) into the cell
            g = cv2.resize(g, (max(1, int(cell)), g.shape[0]), interpolation=cv2.INTER_AREA)
        parts.append((int(x + (cell - g.shape[1]) / 2), g))
        boxes.append((ch, x, x + cell))
        x += cell + t.track * b
    if parts and text[-1] != " ":
        x -= t.track * b
    canvas = np.zeros((b * 3 // 2, max(1, int(x)) + 2), np.uint8)
    for left, g in parts:
        view = canvas[:, left : left + g.shape[1]]
        np.maximum(view, g[:, : view.shape[1]], out=view)
    if t.weight > 0:
        canvas = cv2.dilate(canvas, np.ones((3, 3), np.uint8))
    elif t.weight < 0 and _heavy(t.font, b, t.bold) and not any(ord(c) >= 0x2E80 for c in text):
        canvas = cv2.erode(canvas, np.ones((3, 3), np.uint8))  # thinning a light face (or CJK) erases strokes
    k = cap / b
    size = (max(1, round(canvas.shape[1] * k * t.stretch)), max(3, round(canvas.shape[0] * k)))
    mask = cv2.resize(canvas, size, interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_LINEAR)
    return mask, [(c, a * k * t.stretch, e * k * t.stretch) for c, a, e in boxes]


def _paint(img: np.ndarray, mask: np.ndarray, x: float, cap_top: float, colour: Colour) -> None:
    """Blend `colour` into `img` through `mask`, placed so that its capitals' top is at `cap_top`."""
    x, y = round(x), round(cap_top - mask.shape[0] / 6)
    x0, y0 = max(x, 0), max(y, 0)
    x1, y1 = min(x + mask.shape[1], img.shape[1]), min(y + mask.shape[0], img.shape[0])
    if x1 <= x0 or y1 <= y0:
        return
    # Integer maths (OpenCV's scaled multiply rounds differently on different CPUs): the same bytes anywhere.
    m = cv2.cvtColor(np.ascontiguousarray(mask[y0 - y : y1 - y, x0 - x : x1 - x]), cv2.COLOR_GRAY2BGR).astype(np.uint16)
    roi = img[y0:y1, x0:x1]
    out = roi.astype(np.uint16)
    out *= 255 - m
    m *= np.array(colour, np.uint16)
    out += m + 128
    out += out >> 8  # (v + 128 + (v + 128 >> 8)) >> 8 is v / 255 rounded, exactly
    roi[:] = out >> 8


# --- layouts -----------------------------------------------------------------------------------------
WHITE: Colour = (244, 244, 240)
BLACK: Colour = (25, 25, 25)
EU_BLUE: Colour = (153, 51, 0)
STAR_YELLOW: Colour = (0, 204, 255)
UK_YELLOW: Colour = (20, 205, 250)
NL_YELLOW: Colour = (0, 185, 245)
CN_BLUE: Colour = (175, 75, 15)
CN_YELLOW: Colour = (25, 185, 240)
BR_GREY: Colour = (178, 178, 172)
US_INKS: tuple[Colour, ...] = ((110, 40, 10), (35, 30, 160), (40, 100, 20), (25, 25, 25), (100, 25, 80), (20, 60, 120))
EU_CODES = ("D", "F", "I", "NL", "B", "PL", "CZ", "A", "SK", "H", "RO", "L", "P", "LT", "S", "FIN", "DK", "SLO", "HR", "EST", "IRL", "GR", "BG")
US_STATES = ("California", "Texas", "Ohio", "New York", "Florida", "Oregon", "Nevada", "Utah", "Arizona", "Georgia", "Illinois",
             "Michigan", "Virginia", "Colorado", "Montana", "Kansas", "Indiana", "Maine", "Idaho", "Alabama", "New Jersey")
US_SLOGANS = ("SUNSHINE STATE", "GARDEN STATE", "EMPIRE STATE", "LONE STAR STATE", "GRAND CANYON STATE", "FIRST IN FLIGHT",
              "LIVE FREE OR DIE", "GREAT LAKES", "THE NATURAL STATE", "DRIVE SAFELY", "dmv.gov", "Land of Lincoln", "Pure Michigan")
BR_CITIES = ("SAO PAULO - SP", "RIO DE JANEIRO - RJ", "CURITIBA - PR", "BELO HORIZONTE - MG", "SALVADOR - BA", "RECIFE - PE",
             "PORTO ALEGRE - RS", "CAMPINAS - SP", "GOIANIA - GO", "MANAUS - AM")


@dataclass(frozen=True)
class _Spec:
    """One layout: its text grammar (see _expand; none means random groups) and its look."""

    patterns: tuple[str, ...] = ()
    letters: str = LETTERS
    rows: int = 1
    paper: tuple[Colour, ...] = (WHITE,)
    ink: tuple[Colour, ...] = (BLACK,)
    look: str = "flat"  # background: flat | us | green | random
    band: str = ""  # blue band: left | both | top
    band_p: float = 1.0
    codes: tuple[str, ...] = ()  # country code printed small in the (left) band
    right: str = ""  # pattern of the small text in a right band
    char_h: tuple[float, float] = (0.56, 0.7)  # label capital height / plate height (bottom row when two)
    top_h: tuple[float, float] = (0.85, 1.0)  # top row capitals / bottom row capitals
    aspect: tuple[float, float] = (2.2, 6.0)  # width / height
    top: float = 0.0  # plate height kept free of label characters at the top (state names, BRASIL)
    bottom: float = 0.0
    pitch: float = 0.35  # probability of fixed-pitch character cells
    cell: tuple[float, float] = (0.6, 0.8)  # cell width / capital height when fixed pitch
    border: float = 0.5
    emboss: float = 0.3
    extras: tuple[str, ...] = ()  # decorations, see _EXTRAS


_EU = dict(band="left", codes=EU_CODES)
_CN = dict(letters="ABCDEFGHJKLMNPQRSTUVWXYZ", pitch=1.0, cell=(0.48, 0.52), char_h=(0.6, 0.66), aspect=(2.8, 3.8), border=1.0)
_SPECS: dict[str, _Spec] = {
    "tr": _Spec(("DD L DDDD", "DD LL DDD", "DD LL DDDD", "DD LLL DD", "DD LLL DDD"), "ABCDEFGHIJKLMNOPRSTUVYZ", band="left", codes=("TR",)),
    "eu": _Spec(("LL DDD LL", "L LL DDDD", "LLL DDD", "DDD LLL", "LL-DDD-LL", "LL DDDD", "L DDDD LL", "DD-LLL-D", "LLL-DDDD", "D LLL DDD"),
                paper=(WHITE, WHITE, NL_YELLOW), **_EU),
    "de": _Spec(("L L DDDD", "L LL DDDD", "LL L DDD", "LL LL DDDD", "LLL L DDD", "LLL LL DD", "L LL DDD[EH]"), band="left", codes=("D",),
                char_h=(0.62, 0.72), extras=("seal",)),
    "fr": _Spec(("LL-DDD-LL",), "ABCDEFGHJKLMNPQRSTVWXYZ", band="both", codes=("F",), right="DD"),
    "it": _Spec(("LL DDDLL",), "ABCDEFGHJKLMNPRSTVWXYZ", band="both", codes=("I",), right="LL"),
    "uk": _Spec(("LLDD LLL",), "ABCDEFGHJKLMNOPRSTUVWXYZ", paper=(UK_YELLOW, WHITE), band="left", band_p=0.4, codes=("GB", "UK"),
                char_h=(0.66, 0.76), pitch=0.6),
    "yellow": _Spec(("LLDD LLL",), "ABCDEFGHJKLMNOPRSTUVWXYZ", paper=(UK_YELLOW,), band="left", band_p=0.5, codes=("GB",)),  # engine/sample.py's
    "us": _Spec(("LLL DDDD", "DLLLDDD", "LLL-DDDD", "DDD LLL", "LLLDDDD", "DLLDDD", "LL DDDDD", "DDDDDD", "LLL DDD", "DLL DDDD"),
                ink=US_INKS, look="us", char_h=(0.42, 0.52), aspect=(1.9, 2.2), top=0.22, bottom=0.14, pitch=0.5, emboss=0.6, extras=("us",)),
    "cn-blue": _Spec(("PL·AAAAA",), paper=(CN_BLUE,), ink=(WHITE,), **_CN),
    "cn-green": _Spec(("PL [DF]ADDDD", "PL DDDDD[DF]"), look="green", extras=("nev",), **_CN),
    "cn-yellow": _Spec(("PL·AAAAA",), paper=(CN_YELLOW,), **_CN),
    "br-mercosul": _Spec(("LLLDLDD",), band="top", char_h=(0.5, 0.58), aspect=(2.9, 3.3), top=0.26, extras=("mercosul",)),
    "br-old": _Spec(("LLL-DDDD",), paper=(BR_GREY,), char_h=(0.5, 0.58), aspect=(2.9, 3.3), top=0.22, border=0.9, extras=("city",)),
    "es": _Spec(("DDDD CCC",), band="left", codes=("E",)),
    "random": _Spec(look="random", band="left", band_p=0.25, extras=("lines",)),
    "two-row": _Spec(("LL DD\nDDD", "LLL\nDDDD", "DDD\nLL DD", "DD L\nDDDD", "L DDD\nLL", "LL\nDDDD", "DD LL\nDDDD", "LLL\nDD LL"),
                     rows=2, paper=(WHITE, WHITE, UK_YELLOW, (225, 235, 240)), band="left", band_p=0.3, codes=EU_CODES,
                     char_h=(0.3, 0.38), top_h=(0.7, 1.0), aspect=(1.0, 2.0)),
    "cn-yellow-two-row": _Spec(("PL\nAAAAA",), rows=2, paper=(CN_YELLOW,), top_h=(0.55, 0.7), char_h=(0.36, 0.42), aspect=(1.7, 2.1),
                               **{k: v for k, v in _CN.items() if k not in ("char_h", "aspect")}),
    "es-two-row": _Spec(("DDDD\nCCC", "L DDDD\nLL", "LL DDDD\nLL"), rows=2, band="left", codes=("E",), char_h=(0.32, 0.38),
                        top_h=(0.9, 1.0), aspect=(1.2, 1.7)),
    "eu-two-row": _Spec(("LL DDD\nLL", "L LL\nDDDD", "LL\nDDDD", "LLL\nDDD", "DD LL\nDDD"), rows=2, char_h=(0.3, 0.38),
                        aspect=(1.2, 1.8), **_EU),
    "random-two-row": _Spec(rows=2, look="random", band="left", band_p=0.2, char_h=(0.28, 0.36), top_h=(0.6, 1.0), aspect=(1.0, 2.2),
                            extras=("lines",)),
}
LAYOUTS: tuple[str, ...] = tuple(_SPECS)
ONE_ROW: tuple[str, ...] = tuple(n for n, s in _SPECS.items() if s.rows == 1)
TWO_ROW: tuple[str, ...] = tuple(n for n, s in _SPECS.items() if s.rows == 2)
_CJK_LAYOUTS = frozenset(n for n, s in _SPECS.items() if any("P" in p for p in s.patterns))
ROW_HEIGHT = 100  # drawing resolution of a one-row plate; photographs are resized afterwards


@dataclass
class _Plate:
    """A plate being drawn, for the decorations: where things are and what they look like."""

    img: np.ndarray
    spec: _Spec
    rng: np.random.Generator
    ink: Colour
    deco: _Type  # small decorative text: any font, never part of the label
    cap: float  # label capital height
    text: tuple[float, float, float, float] = (0, 0, 0, 0)  # x0, y0, x1, y1 of the label characters
    gap: tuple[float, float] | None = None  # x range of the widened space (seal, logo)
    stack: tuple[float, float] | None = None  # x range kept for small stacked letters
    band_h: int = 0  # height of a top band (Mercosul)
    rows: list[tuple[float, float]] = field(default_factory=list)  # (cap top, cap height) per row


def _u(rng: np.random.Generator, span: tuple[float, float]) -> float:
    return float(rng.uniform(*span))


def _jitter(colour: Colour, rng: np.random.Generator, amount: int = 12) -> Colour:
    return tuple(min(255, max(0, int(c) + int(d))) for c, d in zip(colour, rng.integers(-amount, amount + 1, 3)))


def _pick(options: Sequence, rng: np.random.Generator):
    return options[int(rng.integers(len(options)))]


def _colours(spec: _Spec, rng: np.random.Generator) -> tuple[Colour, Colour]:
    if spec.look != "random":
        return _jitter(_pick(spec.paper, rng), rng, 10), _jitter(_pick(spec.ink, rng), rng, 15)
    if rng.random() < 0.3:  # dark plate, light characters
        return tuple(int(v) for v in rng.integers(0, 110, 3)), tuple(int(v) for v in rng.integers(175, 256, 3))
    return tuple(int(v) for v in rng.integers(150, 256, 3)), tuple(int(v) for v in rng.integers(0, 90, 3))


def _background(spec: _Spec, paper: Colour, h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    img = np.empty((h, w, 3), np.uint8)
    img[:] = paper
    if spec.look == "green":  # Chinese new-energy plates: pale at the top, green at the bottom
        top, bottom = np.array(_jitter((225, 245, 225), rng, 10), np.float32), np.array(_jitter((70, 185, 50), rng, 15), np.float32)
        ramp = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        img[:] = (top + (bottom - top) * ramp).astype(np.uint8)
    elif spec.look == "us":
        _us_graphic(img, paper, rng)
    elif spec.look == "random" and rng.random() < 0.3:
        other = np.array(_jitter(paper, rng, 40), np.float32)
        ramp = np.linspace(0, 1, w if rng.random() < 0.5 else h, dtype=np.float32)
        ramp = ramp[None, :, None] if ramp.size == w else ramp[:, None, None]
        img[:] = (np.float32(paper) + (other - np.float32(paper)) * ramp).astype(np.uint8)
    return img


def _us_graphic(img: np.ndarray, paper: Colour, rng: np.random.Generator) -> None:
    """Pale scenery many US plates print behind the characters: sky, hills, a sun, stripes."""
    h, w = img.shape[:2]

    def tint() -> Colour:  # pale: a quarter of a random colour over the paper
        return tuple(int(0.75 * p + 0.25 * v) for p, v in zip(paper, rng.integers(0, 256, 3)))

    kind = int(rng.integers(4))
    if kind == 1:
        sky = np.array(tint(), np.float32)
        ramp = np.linspace(1, 0, h, dtype=np.float32)[:, None, None]
        img[:] = (np.float32(paper) + (sky - np.float32(paper)) * ramp).astype(np.uint8)
    if kind in (1, 2):
        xs = np.linspace(0, w, int(rng.integers(4, 9)))
        ys = h * rng.uniform(0.55, 0.85, xs.size)
        pts = np.array([[0, h], *zip(xs, ys), [w, h]], np.int32)
        cv2.fillPoly(img, [pts], tint(), cv2.LINE_AA)
    if kind == 3:
        sun = (int(w * rng.uniform(0.2, 0.8)), int(h * rng.uniform(0.3, 0.6)))
        cv2.circle(img, sun, int(h * rng.uniform(0.2, 0.4)), tint(), -1, cv2.LINE_AA)
        y = int(h * rng.uniform(0.7, 0.85))
        cv2.rectangle(img, (0, y), (w, y + int(h * 0.06)), tint(), -1)


def _small(p: _Plate, text: str, cap: float, x: float, y: float, colour: Colour, max_w: float, align: str = "c") -> None:
    """Decorative text (never part of the label) with capitals `cap` px tall, its top at `y`."""
    cap = min(cap, 0.45 * p.cap)  # clearly smaller than the label, so a model learns to skip it
    mask, _ = _text_mask(text, p.deco, max(cap, 4), strict=False)
    if mask.shape[1] > max_w:
        mask = cv2.resize(mask, (max(1, int(max_w)), mask.shape[0]), interpolation=cv2.INTER_AREA)
    left = {"c": x - mask.shape[1] / 2, "l": x, "r": x - mask.shape[1]}[align]
    _paint(p.img, mask, left, y, colour)


def _band(p: _Plate, x0: int, x1: int, y0: int, y1: int, code: str, stars: bool) -> None:
    """A blue country band: a ring of stars and a small white code."""
    img, rng = p.img, p.rng
    colour = _jitter(EU_BLUE, rng, 20) if p.spec.look != "random" else _jitter(tuple(int(v) for v in rng.integers(0, 200, 3)), rng)
    cv2.rectangle(img, (x0, y0), (x1 - 1, y1 - 1), colour, -1)
    bw, bh = x1 - x0, y1 - y0
    if stars:
        cx, cy, r = x0 + bw / 2, y0 + min(bh * 0.32, bw * 0.6), bw * 0.28
        for a in np.linspace(0, 2 * np.pi, 12, endpoint=False):
            star = (round(cx + r * math.cos(a)), round(cy + r * math.sin(a)))
            cv2.circle(img, star, max(1, round(bw * 0.045)), STAR_YELLOW, -1, cv2.LINE_AA)
    if code:
        cap = min(bh * 0.22, ROW_HEIGHT * 0.2)
        _small(p, code, cap, x0 + bw / 2, y1 - cap - min(bh * 0.1, 10), (250, 250, 250), bw * 0.85)


def _border(p: _Plate, inset: int) -> None:
    h, w = p.img.shape[:2]
    d = int(p.rng.integers(1, max(2, inset)))
    cv2.rectangle(p.img, (d, d), (w - 1 - d, h - 1 - d), p.ink, int(p.rng.integers(1, 4)), cv2.LINE_AA)


def draw_plate(text: PlateText, layout: str, rng: np.random.Generator, fonts: Sequence[Font]) -> np.ndarray:
    """A clean, flat BGR drawing of `text` in `layout` (no photo damage), one font picked from `fonts`."""
    spec = _SPECS[layout]
    two = len(text.rows) > 1
    font = _pick_font(fonts, rng, cjk=any(c in PROVINCES for c in text.label))
    pitch = _u(rng, spec.cell) if rng.random() < spec.pitch else 0.0
    wide = text.rows[0].find(" ") if set(spec.extras) & {"seal", "nev"} and rng.random() < 0.8 else -1
    t = _Type(font, bold=bool(rng.random() < 0.5), pitch=pitch, track=_u(rng, (0.08, 0.14) if pitch else (0.04, 0.2)),
              space=_u(rng, (0.25, 0.7)), stretch=1.0 if pitch else _u(rng, (0.72, 1.08)), weight=int(rng.choice([-1, 0, 0, 1])), wide=wide)
    deco = _Type(_pick_font(fonts, rng, cjk=False), bool(rng.random() < 0.3), track=0.08, space=0.4)

    # Vertical: capital heights, and the free bands some layouts keep for their small print.
    h = int(ROW_HEIGHT * (1.7 if two else 1.0))
    if two == (spec.rows == 2):
        char_h, top, bottom = spec.char_h, spec.top, spec.bottom
    else:  # render_plate() may ask for two rows in a one-row look, or the reverse
        char_h, top, bottom = ((0.3, 0.36), 0.0, 0.0) if two else ((0.55, 0.68), 0.0, 0.0)
    if "lines" in spec.extras and rng.random() < 0.5:
        top, bottom = (0.2, 0.0) if rng.random() < 0.5 else (0.0, 0.2)
    cap = h * _u(rng, char_h)
    caps = [cap * _u(rng, spec.top_h), cap] if two else [cap]
    fit = (0.76 if two else 0.84) * h * (1 - top - bottom) / sum(caps)  # margins the photo's crop may eat
    caps, cap = [c * min(1.0, fit) for c in caps], cap * min(1.0, fit)
    # A hidden character (a mask mark) is drawn as some character, then covered, as on a published photo.
    drawn = ["".join(_pick(DIGITS + LETTERS, rng) if c in MASK_MARKS else c for c in row) for row in text.rows]
    masks = [_text_mask(row, t, c) for row, c in zip(drawn, caps)]

    # Horizontal: bands, margins, a place for stacked letters, then the width the text needs.
    band = spec.band if rng.random() < spec.band_p else ""
    band_w = round(ROW_HEIGHT * _u(rng, (0.3, 0.4))) if band in ("left", "both") else 0
    right_w = band_w if band == "both" else 0
    margin = ROW_HEIGHT * _u(rng, (0.07, 0.16))
    stack_w = cap * 0.5 if "us" in spec.extras and rng.random() < 0.3 else 0.0
    need = max(m.shape[1] for m, _ in masks) + stack_w
    fixed = band_w + right_w + 2 * margin
    amin, amax = spec.aspect if two == (spec.rows == 2) else ((1.0, 2.2) if two else (2.2, 6.0))
    if fixed + need > amax * h:  # too long for this plate: condense the characters, within reason
        squeeze = max(0.65, (amax * h - fixed) / need)
        masks = [(cv2.resize(m, (max(1, int(m.shape[1] * squeeze)), m.shape[0]), interpolation=cv2.INTER_AREA),
                  [(c, a * squeeze, b * squeeze) for c, a, b in boxes]) for m, boxes in masks]
        stack_w *= squeeze
        need = max(m.shape[1] for m, _ in masks) + stack_w
    w = int(max(fixed + need, amin * h))

    paper, ink = _colours(spec, rng)
    img = _background(spec, paper, h, w, rng)
    p = _Plate(img, spec, rng, ink, deco, cap)
    if band in ("left", "both"):
        code = _pick(spec.codes, rng) if spec.codes else _expand("L" * int(rng.integers(1, 4)), LETTERS, rng)
        _band(p, 0, band_w, 0, h, code, stars=spec.look != "random" and layout != "tr" and rng.random() < 0.85)
    if band == "both":
        _band(p, w - right_w, w, 0, h, _expand(spec.right, LETTERS, rng), stars=False)
    if band == "top":
        p.band_h = round(h * _u(rng, (0.17, 0.21)))
        _band(p, 0, w, 0, p.band_h, "", stars=False)
        top = max(top, (p.band_h + 4) / h)
    if rng.random() < spec.border:
        _border(p, max(2, int(min(margin, h * 0.04))))

    # Rows: centred in the free area, with a little jitter; embossed plates get a soft shadow.
    free_top, free_h = h * top, h * (1 - top - bottom)
    spare = free_h - sum(caps)
    gap = spare * _u(rng, (0.25, 0.45)) if two else 0.0
    y = free_top + (spare - gap) / 2 * _u(rng, (0.85, 1.15))
    area0, area1 = band_w + margin, w - right_w - margin
    emboss = rng.random() < spec.emboss
    shade = tuple(int(v * 0.55) for v in paper)
    hide = _hider(p) if any(c in MASK_MARKS for c in text.label) else None
    lefts, rights = [], []
    for (mask, boxes), c, row in zip(masks, caps, text.rows):
        row_w = mask.shape[1] + (stack_w if not p.rows else 0)
        x = area0 + (area1 - area0 - row_w) / 2 + (area1 - area0 - row_w) / 2 * _u(rng, (-0.3, 0.3))
        if stack_w and not p.rows:
            left = rng.random() < 0.5
            p.stack = (x, x + stack_w) if left else (x + mask.shape[1], x + row_w)
            x += stack_w if left else 0
        if emboss:
            _paint(img, mask, x + 1, y + 1, shade)
        _paint(img, mask, x, y, ink)
        for ch, (_, x0, x1) in zip(row, boxes):  # one box per character of the row, spaces included
            if hide and ch in MASK_MARKS:
                hide(x + x0, x + x1, y, c)
        if wide >= 0 and not p.rows:
            p.gap = (x + boxes[wide][1], x + boxes[wide][2])
        p.rows.append((y, c))
        lefts.append(x)
        rights.append(x + mask.shape[1])
        y += c + gap
    p.text = (min(lefts), p.rows[0][0], max(rights), p.rows[-1][0] + p.rows[-1][1])
    for name in spec.extras:
        _EXTRAS[name](p)
    return img


def _hider(p: _Plate) -> Callable[[float, float, float, float], None]:
    """How this plate's hidden characters are covered (x0, x1, cap top, cap height): one way a plate,
    as one publisher's tool would: a filled box (black, grey, the ink's colour or any), a blur or
    coarse pixels over the character."""
    rng, img = p.rng, p.img
    kind = _pick(("box", "box", "blur", "pixels"), rng)
    grey = int(rng.integers(0, 200))  # not the plate's own colour: a cover must show that something is hidden
    colour = _pick(((0, 0, 0), (grey, grey, grey), p.ink, tuple(int(v) for v in rng.integers(0, 256, 3))), rng)
    pad_x, pad_y, soft = _u(rng, (0.0, 0.15)), _u(rng, (0.0, 0.25)), _u(rng, (0.2, 0.4))
    blocks = (int(rng.integers(2, 4)), int(rng.integers(2, 5)))

    def hide(x0: float, x1: float, top: float, cap: float) -> None:
        h, w = img.shape[:2]
        a, b = max(0, int(x0 - pad_x * cap)), min(w, int(math.ceil(x1 + pad_x * cap)))
        c, d = max(0, int(top - pad_y * cap)), min(h, int(math.ceil(top + cap * (1 + pad_y))))
        if b - a < 2 or d - c < 2:
            return
        region = img[c:d, a:b]
        if kind == "box":
            region[:] = colour
        elif kind == "blur":
            region[:] = cv2.GaussianBlur(region, (0, 0), max(1.0, soft * cap))
        else:
            region[:] = cv2.resize(cv2.resize(region, blocks, interpolation=cv2.INTER_AREA), (b - a, d - c),
                                   interpolation=cv2.INTER_NEAREST)

    return hide


# --- decorations (none of them is part of the label) --------------------------------------------
def _us_extras(p: _Plate) -> None:
    img, rng = p.img, p.rng
    h, w = img.shape[:2]
    colour = p.ink if rng.random() < 0.6 else _jitter(_pick(US_INKS, rng), rng)
    if rng.random() < 0.9:
        state = _pick(US_STATES, rng)
        state = state.upper() if rng.random() < 0.6 else state
        _small(p, state, h * _u(rng, (0.11, 0.16)), w / 2, h * _u(rng, (0.06, 0.08)), colour, w * 0.8)
    if rng.random() < 0.6:
        cap = h * _u(rng, (0.06, 0.09))
        _small(p, _pick(US_SLOGANS, rng), cap, w / 2, h - cap - h * _u(rng, (0.06, 0.08)), colour, w * 0.75)
    for corner in range(int(rng.integers(0, 3))):  # registration stickers
        sw, sh = int(h * _u(rng, (0.16, 0.26))), int(h * _u(rng, (0.1, 0.15)))
        x = int(w * 0.04) if corner == 0 else int(w * 0.96) - sw
        y = int(h * 0.03) if rng.random() < 0.7 else int(h * 0.97) - sh
        colour_s = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.rectangle(img, (x, y), (x + sw, y + sh), colour_s, -1)
        dark = sum(colour_s) < 380
        sticker_text = _expand(_pick(("DD", "DDDD", "LLL"), rng), LETTERS, rng)
        _small(p, sticker_text, sh * 0.55, x + sw / 2, y + sh * 0.22, (240, 240, 240) if dark else BLACK, sw * 0.9)
    if p.stack:  # two small letters one above the other (county / vehicle class), left out of labels
        x0, x1 = p.stack
        cap_top, cap = p.rows[0]
        small = cap * _u(rng, (0.34, 0.42))
        for k, ch in enumerate(_expand(_pick(("LL", "LD", "DD"), rng), LETTERS, rng)):
            _small(p, ch, small, (x0 + x1) / 2, cap_top + k * (cap - small), p.ink, x1 - x0)


def _seal(p: _Plate) -> None:
    """German plates: a round inspection sticker above a state seal, between the first two groups."""
    if not p.gap:
        return
    rng, (x0, x1) = p.rng, p.gap
    cap_top, cap = p.rows[0]
    r = min((x1 - x0) * 0.42, cap * 0.24)
    cx = (x0 + x1) / 2
    sticker = _pick(((0, 140, 255), (200, 120, 0), (0, 215, 255), (50, 80, 140), (180, 120, 255), (60, 170, 60)), rng)
    for k, colour in enumerate((sticker, (200, 200, 195))):
        cy = cap_top + cap * (0.25 if k == 0 else 0.75)
        cv2.circle(p.img, (round(cx), round(cy)), round(r), colour, -1, cv2.LINE_AA)
        cv2.circle(p.img, (round(cx), round(cy)), round(r), (60, 60, 60), 1, cv2.LINE_AA)
        if k == 1:
            cv2.circle(p.img, (round(cx), round(cy)), max(1, round(r * 0.45)), _jitter((40, 40, 160), rng, 40), -1, cv2.LINE_AA)


def _nev(p: _Plate) -> None:
    """Chinese new-energy plates: a small round logo between the second and third character."""
    if not p.gap:
        return
    (x0, x1), (cap_top, cap) = p.gap, p.rows[0]
    r = round(min((x1 - x0) * 0.4, cap * 0.2))
    centre = (round((x0 + x1) / 2), round(cap_top + cap * 0.3))
    cv2.circle(p.img, centre, r, (40, 110, 30), max(1, r // 4), cv2.LINE_AA)
    cv2.ellipse(p.img, centre, (max(1, r // 2), max(1, r // 4)), -45, 0, 360, (40, 110, 30), -1, cv2.LINE_AA)


def _mercosul(p: _Plate) -> None:
    """Brazil's Mercosul plate: BRASIL in the top band, the flag at its right, the logo at its left."""
    img, rng = p.img, p.rng
    h, w = img.shape[:2]
    band_h = p.band_h or int(h * 0.2)
    _small(p, "BRASIL", band_h * 0.55, w / 2, band_h * 0.22, (250, 250, 250), w * 0.4)
    fh = band_h * 0.7
    fx, fy = w - band_h * 0.3 - fh * 1.4, band_h * 0.15
    cv2.rectangle(img, (round(fx), round(fy)), (round(fx + fh * 1.4), round(fy + fh)), (40, 150, 0), -1)
    diamond = np.array([[fx + fh * 0.7, fy + fh * 0.1], [fx + fh * 1.3, fy + fh / 2],
                        [fx + fh * 0.7, fy + fh * 0.9], [fx + fh * 0.1, fy + fh / 2]], np.int32)
    cv2.fillPoly(img, [diamond], (0, 215, 255), cv2.LINE_AA)
    cv2.circle(img, (round(fx + fh * 0.7), round(fy + fh / 2)), max(1, round(fh * 0.22)), (130, 50, 0), -1, cv2.LINE_AA)
    cv2.circle(img, (round(band_h * 0.8), round(band_h / 2)), max(2, round(band_h * 0.3)), (250, 250, 250), 1, cv2.LINE_AA)
    room = p.text[0] - w * 0.03
    if room > band_h * 0.6 and rng.random() < 0.5:  # "BR" under the band, at the left edge
        _small(p, "BR", band_h * 0.5, w * 0.02, band_h + 4, p.ink, room, align="l")


def _city(p: _Plate) -> None:
    h, w = p.img.shape[:2]
    _small(p, _pick(BR_CITIES, p.rng), h * _u(p.rng, (0.1, 0.14)), w / 2, h * 0.05, p.ink, w * 0.7)


def _lines(p: _Plate) -> None:
    """Random plates: small lines of text above or below the label, where the layout left room."""
    rng = p.rng
    h, w = p.img.shape[:2]

    def words() -> str:
        pattern = " ".join(_pick(("LLLLL", "LLL", "DDDD", "LL-DD", "LLLLLLL"), rng) for _ in range(int(rng.integers(1, 4))))
        return _expand(pattern, LETTERS, rng)

    colour = p.ink if rng.random() < 0.7 else _jitter(p.ink, rng, 60)
    if p.text[1] > h * 0.18:
        cap = min(p.text[1] * 0.5, h * 0.12)
        _small(p, words(), cap, w / 2, (p.text[1] - cap) / 2, colour, w * 0.8)
    if h - p.text[3] > h * 0.18:
        cap = min((h - p.text[3]) * 0.5, h * 0.12)
        _small(p, words(), cap, w / 2, p.text[3] + (h - p.text[3] - cap) / 2, colour, w * 0.8)


_EXTRAS: dict[str, Callable[[_Plate], None]] = {
    "us": _us_extras, "seal": _seal, "nev": _nev, "mercosul": _mercosul, "city": _city, "lines": _lines,
}


# --- the photograph ---------------------------------------------------------------------------------
CAR_COLOURS: tuple[Colour, ...] = ((235, 235, 235), (25, 25, 25), (180, 180, 175), (110, 110, 110), (40, 40, 170), (140, 70, 30),
                                   (80, 40, 20), (50, 90, 40), (150, 190, 210), (40, 200, 230), (30, 120, 230), (40, 60, 90))


@functools.cache
def _noise_tile() -> np.ndarray:
    """Sensor noise is cut from one fixed tile: fast, and the same on every machine."""
    return np.random.default_rng(20240601).standard_normal((512, 512, 3), dtype=np.float32)


def _wear(plate: np.ndarray, rng: np.random.Generator, s: float) -> np.ndarray:
    """Dirt, stains and scratches on the plate itself."""
    h, w = plate.shape[:2]
    if rng.random() < 0.3 * s:  # blotches of mud or rust
        coarse = rng.random((max(2, h // 10), max(2, w // 10)), dtype=np.float32)
        blob = cv2.resize(coarse, (w, h), interpolation=cv2.INTER_CUBIC)
        level = rng.uniform(0.55, 0.85)
        alpha = np.clip((blob - level) / (1 - level), 0, 1)[..., None] * np.float32(rng.uniform(0.2, 0.6) * s)
        dirt = np.array(_pick(((40, 70, 100), (60, 60, 60), (30, 50, 70), (140, 150, 150)), rng), np.float32)
        plate = (plate * (1 - alpha) + dirt * alpha).astype(np.uint8)
    if rng.random() < 0.3 * s:
        plate = plate.copy()
        for _ in range(int(rng.integers(1, 5))):  # short, thin, light or dark
            a = rng.uniform(0, 1, 2) * (w, h)
            b = a + rng.uniform(-0.15, 0.15, 2) * (w, w)
            shade = int(rng.choice([70, 200]))
            cv2.line(plate, tuple(int(v) for v in a), tuple(int(v) for v in b), (shade, shade, shade), 1, cv2.LINE_AA)
    return plate


def _mount(plate: np.ndarray, rng: np.random.Generator, night: bool) -> tuple[np.ndarray, np.ndarray]:
    """The car around the plate (body, bumper, plate frame, screws); returns it and the plate corners."""
    h, w = plate.shape[:2]
    pl, pt = int(w * 0.15), int(h * 0.4)  # a loose crop beyond this replicates the car's edge rows
    body = np.array(_jitter(_pick(CAR_COLOURS, rng), rng, 20), np.float32) * (0.35 if night else 1.0)
    canvas = np.empty((h + 2 * pt, w + 2 * pl, 3), np.uint8)
    shading = np.linspace(_u(rng, (0.7, 1.1)), _u(rng, (0.7, 1.1)), canvas.shape[0], dtype=np.float32)[:, None, None]
    canvas[:] = np.clip(body * shading, 0, 255).astype(np.uint8)  # one column, broadcast along the rows
    if rng.random() < 0.5:  # black plastic bumper below (or around) the plate
        y = pt + h + int(h * _u(rng, (-0.6, 0.5)))
        canvas[max(0, y) :] = _jitter((30, 30, 30), rng, 15)
    if rng.random() < 0.35:  # a plate frame, often with a dealer's name on its bottom bar
        f, fb = int(h * _u(rng, (0.03, 0.09))), int(h * _u(rng, (0.05, 0.18)))
        colour = _jitter(_pick(((20, 20, 20), (190, 190, 190), (40, 40, 40), (60, 160, 200)), rng), rng)
        cv2.rectangle(canvas, (pl - f, pt - f), (pl + w + f, pt + h + fb), colour, -1)
        if fb > 8 and rng.random() < 0.5:
            dealer = _expand("LLLLL LLLLL", LETTERS, rng)
            scale = fb * 0.45 / _cap_ratio(_hershey_fonts()[0], False)
            (tw, _), _ = cv2.getTextSize(dealer, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
            origin = (pl + (w - tw) // 2, pt + h + int(fb * 0.75))
            cv2.putText(canvas, dealer, origin, cv2.FONT_HERSHEY_SIMPLEX, scale, (220, 220, 220), 1, cv2.LINE_AA)
    canvas[pt : pt + h, pl : pl + w] = plate
    r = int(min(h, w) * _u(rng, (0.0, 0.1)))
    if r > 1:  # rounded plate corners show the car behind them
        corner = np.zeros((r, r), np.uint8)
        cv2.circle(corner, (r, r), r, 255, -1, cv2.LINE_AA)
        for fy, fx in ((False, False), (False, True), (True, False), (True, True)):
            m = corner[::-1] if fy else corner
            m = (m[:, ::-1] if fx else m)[..., None].astype(np.uint16)
            y0, x0 = (pt + h - r if fy else pt), (pl + w - r if fx else pl)
            roi = canvas[y0 : y0 + r, x0 : x0 + r]
            by = y0 + r if fy else y0 - r  # the car just above (or below) the plate
            back = canvas[by : by + r, x0 : x0 + r]
            roi[:] = (roi * m + back * (255 - m) + 127) // 255
    if rng.random() < 0.6:
        rad = max(2, int(h * _u(rng, (0.025, 0.04))))
        colour = _jitter(_pick(((200, 200, 200), (60, 90, 120), (120, 120, 120)), rng), rng)
        y = pt + max(rad + 1, int(h * _u(rng, (0.03, 0.05) if w / h < 2.5 else (0.05, 0.09))))
        for x in (pl + int(w * _u(rng, (0.05, 0.22))), pl + w - int(w * _u(rng, (0.05, 0.22)))):
            cv2.circle(canvas, (x, y), rad, colour, -1, cv2.LINE_AA)
            cv2.line(canvas, (x - rad + 1, y), (x + rad - 1, y), (40, 40, 40), 1, cv2.LINE_AA)
    corners = np.float32([[pl, pt], [pl + w, pt], [pl + w, pt + h], [pl, pt + h]])
    return canvas, corners


def _shoot(canvas: np.ndarray, quad: np.ndarray, out_w: int, rng: np.random.Generator, s: float) -> tuple[np.ndarray, float]:
    """Perspective, rotation, shear and a loose or tight crop; returns the crop and its character height."""
    (x0, y0), (x1, y1) = quad[0], quad[2]
    pw, ph = x1 - x0, y1 - y0
    centre = quad.mean(0)
    angle = math.radians(rng.uniform(-8, 8) * s * (1.0 if rng.random() < 0.3 else 0.5))
    shear = rng.uniform(-0.15, 0.15) * s
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]) @ np.array([[1, shear], [0, 1]])
    pts = (quad - centre) @ rot.T
    yaw, pitch = rng.uniform(-0.08, 0.08) * s, rng.uniform(-0.06, 0.06) * s
    pts[:, 1] *= 1 + yaw * np.sign(pts[:, 0])  # the nearer side looks taller
    pts[:, 0] *= 1 + pitch * np.sign(pts[:, 1])
    dst = (pts + centre + rng.uniform(-0.015, 0.015, (4, 2)) * s * (pw, ph)).astype(np.float32)
    warp = cv2.getPerspectiveTransform(quad, dst)

    # Crop around the plate: a tight crop cuts at most 0.5% (sides) or 2% (top/bottom) of it, less
    # than the margins every layout keeps around its label characters, so those stay whole.
    tight, loose = rng.random() < 0.3, rng.random() < 0.25 * s
    mx = (-0.005, 0.03) if tight else (0.08, 0.3) if loose else (0.02, 0.12)
    my = (-0.02, 0.05) if tight else (0.2, 0.6) if loose else (0.05, 0.25)
    bx0, by0 = dst.min(0)
    bx1, by1 = dst.max(0)
    cx0, cx1 = bx0 - pw * _u(rng, mx), bx1 + pw * _u(rng, mx)
    cy0, cy1 = by0 - ph * _u(rng, my), by1 + ph * _u(rng, my)
    scale = out_w / (cx1 - cx0)
    out_h = max(16, round((cy1 - cy0) * scale))
    to_crop = np.array([[scale, 0, -cx0 * scale], [0, scale, -cy0 * scale], [0, 0, 1]])
    img = cv2.warpPerspective(canvas, to_crop @ warp, (out_w, out_h), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_REPLICATE)
    return img, ph * scale * (0.34 if pw / ph < 2.5 else 0.6)


def _optics(img: np.ndarray, char_h: float, rng: np.random.Generator, s: float) -> np.ndarray:
    """Low resolution, focus blur and motion blur, each bounded by the character height so that
    the characters stay legible (an unreadable crop would teach the model label noise)."""
    h, w = img.shape[:2]
    sharp = char_h  # character height at full detail
    if rng.random() < 0.35 * s and char_h > 13:  # a far plate: ~12 px characters, upscaled by the crop
        f = rng.uniform(12, char_h) / char_h
        sharp = char_h * f
        small = cv2.resize(img, (max(4, round(w * f)), max(4, round(h * f))), interpolation=cv2.INTER_AREA)
        upscale = int(rng.choice([cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_NEAREST], p=[0.5, 0.4, 0.1]))
        img = cv2.resize(small, (w, h), interpolation=upscale)
    if rng.random() < 0.5 * s:
        img = cv2.GaussianBlur(img, (0, 0), min(rng.uniform(0.3, 0.4 + 1.2 * s), max(0.3, sharp / 12)))
    n = min(int(rng.integers(3, 4 + int(6 * s))), int(sharp / 4))
    if rng.random() < 0.15 * s and n >= 2:  # motion: the mean of shifted copies (integer maths, same on every CPU)
        a = rng.uniform(0, math.pi)
        padded = cv2.copyMakeBorder(img, n, n, n, n, cv2.BORDER_REPLICATE).astype(np.uint16)
        acc = np.zeros_like(img, np.uint16)
        for i in range(n):
            d = i - (n - 1) / 2
            dx, dy = round(d * math.cos(a)), round(d * math.sin(a))
            acc += padded[n + dy : n + dy + h, n + dx : n + dx + w]
        img = ((acc + n // 2) // n).astype(np.uint8)
    return img


def _expose(img: np.ndarray, rng: np.random.Generator, s: float, night: bool) -> np.ndarray:
    """Uneven light, shadows, glare, sensor noise, then exposure, contrast, colour cast and gamma
    as one lookup table; night cameras give grey images with the retroreflective plate bright."""
    if s == 0:
        return img
    h, w = img.shape[:2]
    xs, ys = np.linspace(-1, 1, w, dtype=np.float32)[None, :], np.linspace(-1, 1, h, dtype=np.float32)[:, None]
    light = np.ones((h, w), np.float32)
    if rng.random() < 0.5 * s:  # light falling off across the plate
        a, b = (float(v) * 0.35 * s for v in rng.uniform(-1, 1, 2))
        light *= np.clip(1 + a * xs + b * ys, 0.3, 1.5)
    if rng.random() < 0.25 * s:  # a hard shadow edge (a pole, the car's own body)
        a, offset, soft, depth = rng.uniform(0, 2 * math.pi), rng.uniform(-0.6, 0.6), rng.uniform(0.02, 0.3), rng.uniform(0.3, 0.65)
        light *= 1 - np.float32(depth) * np.clip((math.cos(a) * xs + math.sin(a) * ys - np.float32(offset)) / np.float32(soft), 0, 1)
    f = img.astype(np.float32) * light[..., None]
    if rng.random() < 0.2 * s:  # glare / specular highlight washing part of the plate out
        spot = np.zeros((max(4, h // 8), max(4, w // 8)), np.uint8)  # soft anyway: drawn small, blown up
        sh, sw = spot.shape
        centre = (int(rng.uniform(0, sw)), int(rng.uniform(0, sh)))
        axes = (max(1, int(sw * rng.uniform(0.05, 0.3))), max(1, int(sh * rng.uniform(0.1, 0.5))))
        cv2.ellipse(spot, centre, axes, rng.uniform(0, 180), 0, 360, 255, -1)
        spot = cv2.resize(cv2.GaussianBlur(spot, (0, 0), max(axes) * 0.4 + 0.5), (w, h), interpolation=cv2.INTER_LINEAR)
        f += (255 - f) * (spot[..., None] * np.float32(rng.uniform(0.4, 0.8) / 255))
    sigma = rng.uniform(0, 12) * s
    if sigma > 0.5:
        tile = _noise_tile()
        if h + 64 > tile.shape[0] or w + 64 > tile.shape[1]:
            tile = np.tile(tile, (-(-(h + 64) // 512), -(-(w + 64) // 512), 1))
        oy, ox = int(rng.integers(0, 64)), int(rng.integers(0, 64))
        f += tile[oy : oy + h, ox : ox + w] * np.float32(sigma)
    img = np.clip(f, 0, 255).astype(np.uint8)

    mean = float(np.mean(cv2.mean(img)[:3]))
    contrast, gain, bias = rng.uniform(1 - 0.4 * s, 1 + 0.2 * s), rng.uniform(1 - 0.4 * s, 1 + 0.35 * s), rng.uniform(-20, 20) * s
    cast = rng.uniform(1 - 0.15 * s, 1 + 0.15 * s, 3) if rng.random() < 0.4 * s else np.ones(3)
    gamma = math.exp(rng.uniform(-0.4, 0.4) * s) * (0.7 if night else 1.0)
    # Gamma through Python's math (not numpy's vectorised pow), so every CPU rounds alike.
    curve = np.array([round(255 * (i / 255) ** gamma) for i in range(256)], np.uint8)
    levels = np.arange(256, dtype=np.float64)[:, None]
    affine = ((levels - mean) * contrast + mean) * gain * cast[None, :] + bias * (1.15 if night else 1.0)
    img = cv2.LUT(img, curve[np.clip(np.rint(affine), 0, 255).astype(np.intp)][:, None, :])
    if night:  # infrared / night camera: grey
        img = cv2.cvtColor(cv2.cvtColor(img, cv2.COLOR_BGR2GRAY), cv2.COLOR_GRAY2BGR)
    return img


def photograph(plate: np.ndarray, rng: np.random.Generator | int | None, strength: float = 1.0) -> np.ndarray:
    """A BGR street-camera crop of a clean plate drawing; `strength` in [0, 1] scales the damage
    (0: a straight, clean crop with a little car around it). Widths ~80-400 px."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    s = float(np.clip(strength, 0.0, 1.0))
    night = rng.random() < 0.08 * s
    h, w = plate.shape[:2]
    two_row = w / h < 2.5
    out_w = int(math.exp(rng.uniform(math.log(90 + 90 * (1 - s)), math.log(400))) * (0.75 if two_row else 1.0))
    if w > 1.4 * out_w:  # shrink with area averaging first: cheaper, and a warp alone would alias strokes
        plate = cv2.resize(plate, (round(1.4 * out_w), round(h * 1.4 * out_w / w)), interpolation=cv2.INTER_AREA)
    canvas, quad = _mount(_wear(plate, rng, s), rng, night)
    img, char_h = _shoot(canvas, quad, out_w, rng, s)
    img = _expose(_optics(img, char_h, rng, s), rng, s, night)
    if rng.random() < 0.85 * s:
        quality = int(rng.uniform(95 - 80 * s, 96))
        ok, jpg = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, quality])
        img = cv2.imdecode(jpg, cv2.IMREAD_COLOR) if ok else img
    return img


# --- entry points -------------------------------------------------------------------------------------
def _cjk_possible(fonts: Sequence[Font]) -> bool:
    return any(f.cjk for f in fonts) or any(f.cjk for f in system_fonts())


def render_plate(text: str, rng: np.random.Generator | int | None = None, style: str | None = None,
                 fonts: Sequence[Font] | None = None) -> np.ndarray:
    """A BGR photo of a plate printing `text` as given (spaces included; a "\\n" starts a second row; a
    mask mark such as '*' is a character drawn covered, as on photos published for privacy).

    `style` is one of LAYOUTS (random when None, of the text's row count); `fonts` defaults to
    hershey_fonts(), so the same seed gives the same bytes anywhere.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    rows = text.split("\n")
    if style is None:
        style = _pick(TWO_ROW if len(rows) > 1 else ONE_ROW, rng)
    if style not in _SPECS:
        raise ValueError(f"style must be one of {', '.join(LAYOUTS)} (got {style!r}).")
    plate = draw_plate(PlateText.of(rows), style, rng, hershey_fonts() if fonts is None else fonts)
    return photograph(plate, rng)


def random_plate(rng: np.random.Generator | int | None, *, layouts: Sequence[str] | None = None, fonts: Sequence[Font] | None = None,
                 strength: float = 1.0) -> tuple[np.ndarray, str]:
    """(BGR photo, label) of a random plate. `fonts` defaults to hershey_fonts() + system_fonts()
    (machine-dependent: pass hershey_fonts() for reproducible images); `layouts` may repeat names to weight them."""
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    fonts = hershey_fonts() + system_fonts() if fonts is None else list(fonts)
    layouts = list(layouts or LAYOUTS)
    layout = _pick(layouts, rng)
    if layout in _CJK_LAYOUTS and not _cjk_possible(fonts):  # nothing can draw 皖: a plate of the same shape
        rows = ONE_ROW if layout in ONE_ROW else TWO_ROW
        latin = [n for n in layouts if n in rows and n not in _CJK_LAYOUTS] or [n for n in rows if n not in _CJK_LAYOUTS]
        layout = _pick(latin, rng)
    text = plate_text(layout, rng)
    return photograph(draw_plate(text, layout, rng, fonts), rng, strength), text.label
