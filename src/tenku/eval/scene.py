"""Read what one frame of a world scene shows: its background and its objects (colour, shape, size class).

Used where a description must follow given frames (prompt expansion for image-to-video, extend, connect and
edit): ``read_scene(frame)`` returns None for a frame that is not a world scene (no world background
covers most of it), so a caller can keep the user's words instead of describing a different scene.
"""

from __future__ import annotations

import math

import numpy as np

PLAIN_TOLERANCE = 28.0  # RGB distance within which a pixel counts as a plain background colour
MIN_COVER = 0.5  # the background must cover at least this share of the frame


def _near(frame: np.ndarray, rgb, tol: float = PLAIN_TOLERANCE) -> np.ndarray:
    return np.linalg.norm(frame.astype(np.float32) - np.asarray(rgb, np.float32), axis=-1) < tol


def read_background(frame: np.ndarray) -> str | None:
    """(H, W, 3) uint8 -> the world background name that covers most of the frame, or None."""
    from tenku.world.spec import BACKGROUNDS

    best, cover = None, 0.0
    for name, v in BACKGROUNDS.items():
        if v["kind"] == "plain":
            c = float(_near(frame, v["rgb"]).mean())
        elif v["kind"] == "checker":  # both shades present, together covering the frame
            a, b = _near(frame, v["rgb"], 18.0).mean(), _near(frame, v["rgb2"], 18.0).mean()
            c = float(a + b) if min(a, b) > 0.15 else 0.0
        else:  # noise floor: pixels around the base colour within its amplitude, and not flat
            near = _near(frame, v["rgb"], 2.0 * v["amp"])
            spread = float(frame[near].astype(np.float32).std()) if near.any() else 0.0
            c = float(near.mean()) if spread > 0.25 * v["amp"] else 0.0
        if c > cover:
            best, cover = name, c
    return best if cover >= MIN_COVER else None


def _size_class(shape: str, area_px: float, px_per_unit: float) -> str:
    from tenku.world.spec import SIZES

    unit = {"circle": math.pi, "square": 2.0, "triangle": 3.0 * math.sqrt(3.0) / 4.0}[shape]
    radius = math.sqrt(max(area_px, 0.0) / unit) / px_per_unit
    bounds = sorted(SIZES.items(), key=lambda kv: kv[1][0])  # small, medium, large
    for (name, (_, hi)), (_, (lo_next, _)) in zip(bounds, bounds[1:]):
        if radius < (hi + lo_next) / 2:
            return name
    return bounds[-1][0]


def read_scene(frame: np.ndarray) -> dict | None:
    """(H, W, 3) uint8 -> {"background": name, "objects": [{"color", "shape", "size", "x", "y"}]} (objects
    largest first, at most 6; x, y as fractions of the frame), or None when no world background covers the
    frame."""
    from tenku.eval.suites import default_parser
    from tenku.world.spec import px_per_unit

    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3:
        raise ValueError(f"expected one (H, W, 3) frame, got shape {frame.shape}")
    background = read_background(frame)
    if background is None:
        return None
    h, w = frame.shape[:2]
    ppu = px_per_unit(w, h)
    dets = [d for d in default_parser().parse_frame(frame) if d.area >= 4.0]
    dets.sort(key=lambda d: -d.area)
    objects = [{"color": d.color, "shape": d.shape, "size": _size_class(d.shape, d.area, ppu),
                "x": d.x / w, "y": d.y / h} for d in dets[:6]]
    return {"background": background, "objects": objects}
