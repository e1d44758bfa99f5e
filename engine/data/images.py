"""What a plate photo may be, and decoding one within bounded memory.

Every decode reads the header first (Pillow parses only the header), so a file claiming
20000x20000 pixels is refused before a single pixel is allocated. The limits are far above any
plate photo: a 12-megapixel phone photo (4032x3024) passes, a 40-megapixel "pixel bomb" does not.

The importer, training, the reader, "Try it" and `predict` all decode through this module:
`decode_gray` for the whole photo, `decode_to_fit` for a photo no larger than a given box (JPEGs
are decoded at 1/2, 1/4 or 1/8 scale by libjpeg itself, so a big photo never exists at full size).
"""
from __future__ import annotations

import io

import cv2
import numpy as np

MIN_WIDTH, MIN_HEIGHT = 16, 8
MAX_SIDE = 8000
MAX_PIXELS = 16_000_000  # per photo: 4032x3024 phone photos fit, 40 MP bombs do not
# Decoded pixels per import: 50,000 photos of 0.2 MP (640x320; a plate crop is ~0.03 MP). It caps
# the CPU an upload can cost (~45 s of decoding on one core) whatever the number of entries.
PIXELS_PER_PHOTO = 200_000  # what the budget allows each photo: 640x320
MAX_TOTAL_PIXELS = 50_000 * PIXELS_PER_PHOTO
SUPPORTED_FORMATS = ("JPEG", "PNG", "BMP", "WEBP")
SUPPORTED = "only .jpg, .jpeg, .png, .bmp and .webp pictures are read"  # by imports and readers alike
LIMIT_TEXT = f"at most {MAX_SIDE} pixels a side and {MAX_PIXELS // 1_000_000} megapixels, far more than a plate needs"

_REDUCED = {2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4, 8: cv2.IMREAD_REDUCED_GRAYSCALE_8}


def sniff_format(data: bytes) -> str | None:
    """The picture format from the first bytes (never trust the extension)."""
    if data[:3] == b"\xff\xd8\xff":
        return "JPEG"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "PNG"
    if data[:2] == b"BM":
        return "BMP"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    for magic, name in ((b"GIF8", "GIF"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"), (b"%PDF", "PDF")):
        if data.startswith(magic):
            return name
    if data[4:12] in (b"ftypheic", b"ftypheix", b"ftypmif1", b"ftypavif"):
        return "HEIC/AVIF"
    return None


def header_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from the header only: Pillow's open is lazy and decodes no pixels.

    None when Pillow itself refuses the header as a decompression bomb (> ~180 megapixels).
    Raises (any exception) when the header cannot be parsed.
    """
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as im:
            return im.size
    except Image.DecompressionBombError:
        return None


def too_large(width: int, height: int) -> str | None:
    """The reason a photo of this size is refused, or None."""
    if width > MAX_SIDE or height > MAX_SIDE or width * height > MAX_PIXELS:
        return f"the image is too large ({width}x{height} pixels, {width * height / 1e6:.1f} megapixels; {LIMIT_TEXT})"
    return None


def format_problem(data: bytes) -> tuple[str | None, str | None]:
    """(reason or None, format) from the first bytes."""
    if not data:
        return "the file is empty (0 bytes)", None
    kind = sniff_format(data)
    if kind is None:
        return f"not an image: the content is not a JPEG, PNG, BMP or WebP picture ({SUPPORTED})", None
    if kind not in SUPPORTED_FORMATS:
        return f"{kind} files are not supported: save it as JPEG or PNG", kind
    return None, kind


def size_problem(data: bytes, kind: str) -> tuple[str | None, int, int]:
    """(reason or None, width, height) from the header: damaged or over the limits."""
    try:
        size = header_size(data)
    except Exception:  # Pillow raises many types for a broken header
        return f"the {kind} image is damaged or incomplete: its header cannot be read", 0, 0
    if size is None:
        return f"the image is too large (its header claims more than 180 megapixels; {LIMIT_TEXT})", 0, 0
    return too_large(*size), size[0], size[1]


def image_problem(data: bytes) -> tuple[str | None, int, int]:
    """(reason or None, width, height) for the bytes of one file offered for training.

    Besides the limits, the whole stream is decoded once, so a cut-off file is caught here.
    """
    reason, kind = format_problem(data)
    if reason:
        return reason, 0, 0
    reason, width, height = size_problem(data, kind)
    if reason:
        return reason, width, height
    if width < MIN_WIDTH or height < MIN_HEIGHT:
        return f"the image is too small ({width}x{height} pixels; at least {MIN_WIDTH}x{MIN_HEIGHT} needed)", width, height
    if not _decodes(data, kind):
        return f"the {kind} image is damaged or incomplete (e.g. a cut-off download) and cannot be decoded", width, height
    return None, width, height


def _decodes(data: bytes, kind: str) -> bool:
    # For JPEG, libjpeg's 1/8 scaled decode still entropy-decodes the whole stream (so truncated or
    # corrupt files fail just the same) but skips most of the inverse DCT: 3x faster.
    flags = cv2.IMREAD_REDUCED_GRAYSCALE_8 if kind == "JPEG" else cv2.IMREAD_GRAYSCALE
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags | cv2.IMREAD_IGNORE_ORIENTATION)
    except cv2.error:
        return False
    return image is not None and image.size > 0


def _checked_header(data: bytes) -> tuple[str, int, int]:
    """(format, width, height) of a photo about to be decoded; ValueError with the reason otherwise."""
    reason, kind = format_problem(bytes(data[:16]))
    if reason:
        raise ValueError(reason)
    reason, width, height = size_problem(data, kind)
    if reason:
        raise ValueError(reason)
    return kind, width, height


def _gray(array: np.ndarray) -> np.ndarray:
    """An already decoded array (gray, BGR or BGRA) as 2-D grayscale, within the limits."""
    reason = too_large(array.shape[1], array.shape[0]) if array.ndim >= 2 else "the array is not an image"
    if reason:
        raise ValueError(reason)
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_BGRA2GRAY if array.shape[2] == 4 else cv2.COLOR_BGR2GRAY)
    return array


def _imdecode(data: bytes, flags: int, kind: str) -> np.ndarray:
    try:
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags)
    except cv2.error:
        image = None
    if image is None or image.size == 0:
        raise ValueError(f"the {kind} image is damaged or incomplete and cannot be decoded")
    return image


def decode_gray(data: bytes | np.ndarray) -> np.ndarray:
    """Encoded bytes (or an already decoded array) -> 2-D uint8 grayscale, at full size.

    Raises ValueError with a plain reason for anything that is not a supported, decodable picture
    within the limits (checked from the header before decoding).
    """
    if isinstance(data, np.ndarray):
        return _gray(data)
    kind, _, _ = _checked_header(data)
    return _imdecode(data, cv2.IMREAD_GRAYSCALE, kind)


def _fit_scale(width: int, height: int, max_height: int, max_width: int) -> float:
    return min(1.0, max_height / height, max_width / width)


def _shrink(gray: np.ndarray, max_height: int, max_width: int) -> np.ndarray:
    height, width = gray.shape[:2]
    scale = _fit_scale(width, height, max_height, max_width)
    if scale >= 1.0:
        return gray
    size = (min(max_width, max(1, round(width * scale))), min(max_height, max(1, round(height * scale))))
    return cv2.resize(gray, size, interpolation=cv2.INTER_AREA)


def decode_to_fit(data: bytes | np.ndarray, max_height: int, max_width: int) -> np.ndarray:
    """The photo as 2-D uint8 grayscale no larger than max_height x max_width (aspect ratio kept,
    never upscaled), with peak memory bounded per photo.

    A JPEG at least twice the box is decoded at the largest 1/2, 1/4 or 1/8 scale that still covers
    the box, then resized; other photos are resized right after decoding. Same refusals as
    `decode_gray`.
    """
    if max_height < 1 or max_width < 1:
        raise ValueError(f"the box must be at least 1x1 pixels (got {max_width}x{max_height}).")
    if isinstance(data, np.ndarray):
        return _shrink(_gray(data), max_height, max_width)
    kind, width, height = _checked_header(data)
    flags = cv2.IMREAD_GRAYSCALE
    if kind == "JPEG":
        # EXIF may rotate the photo by 90 degrees while decoding: take the scale that fits either
        # way round, so the reduced image always still covers the box.
        scale = max(_fit_scale(width, height, max_height, max_width), _fit_scale(height, width, max_height, max_width))
        factor = max((f for f in _REDUCED if f * scale <= 1.0), default=1)
        flags = _REDUCED.get(factor, cv2.IMREAD_GRAYSCALE)
    return _shrink(_imdecode(data, flags, kind), max_height, max_width)
