"""Training-time augmentation of real kinds: the plate crop differs in framing, angle, focus,
light, sensor noise and compression from one photo to the next, so the model must not care.

Works on small grayscale uint8 images (the training loop keeps originals at about twice the
model height, which makes every operation here cheap).
"""
from __future__ import annotations

import cv2
import numpy as np


def _perspective(img: np.ndarray, rng: np.random.Generator, strength: float) -> np.ndarray:
    """Jitter the four corners: small rotation, shear, perspective, zoom, and looser/tighter crops."""
    h, w = img.shape
    src = np.float32([[0, 0], [w, 0], [w, h], [0, h]])
    jitter = rng.uniform(-strength, strength, size=(4, 2)) * np.float32([w, h])
    # a shared shift of the left/right edges and the top/bottom edges changes the crop margin
    margin_x, margin_y = rng.uniform(-0.06, 0.08) * w, rng.uniform(-0.10, 0.15) * h
    dst = src + jitter + np.float32([[-margin_x, -margin_y], [margin_x, -margin_y], [margin_x, margin_y], [-margin_x, margin_y]])
    angle = np.deg2rad(rng.uniform(-4, 4))
    centre = np.float32([w / 2, h / 2])
    rot = np.float32([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = (dst - centre) @ rot.T + centre
    matrix = cv2.getPerspectiveTransform(dst.astype(np.float32), src)  # the output shows the region dst
    return cv2.warpPerspective(img, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def augment(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A randomly altered copy of a grayscale uint8 plate image."""
    out = _perspective(img, rng, 0.035) if rng.random() < 0.9 else img.copy()
    h, w = out.shape
    if rng.random() < 0.3:  # low resolution: the plate was far away
        f = rng.uniform(0.35, 0.8)
        small = cv2.resize(out, (max(4, int(w * f)), max(4, int(h * f))), interpolation=cv2.INTER_AREA)
        out = cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)
    if rng.random() < 0.3:  # out of focus
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 1.4))
    elif rng.random() < 0.1:  # motion blur, horizontal-ish
        k = int(rng.integers(3, 6))
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        out = cv2.filter2D(out, -1, kernel)
    x = out.astype(np.float32)
    if rng.random() < 0.8:  # light and contrast
        x = x * rng.uniform(0.6, 1.4) + rng.uniform(-40, 40)
    if rng.random() < 0.15:  # uneven light: a gradient across the plate
        ramp = np.linspace(rng.uniform(-40, 0), rng.uniform(0, 40), w, dtype=np.float32)
        x = x + (ramp if rng.random() < 0.5 else ramp[::-1])[None, :]
    if rng.random() < 0.3:  # sensor noise
        x = x + rng.normal(0, rng.uniform(3, 12), x.shape).astype(np.float32)
    if rng.random() < 0.05:  # a negative (white on dark plates exist)
        x = 255 - x
    out = np.clip(x, 0, 255).astype(np.uint8)
    if rng.random() < 0.3:  # JPEG artefacts
        ok, enc = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(15, 80))])
        if ok:
            out = cv2.imdecode(enc, cv2.IMREAD_GRAYSCALE)
    return out
