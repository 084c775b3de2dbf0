"""Media a mode is given (images, videos, frames), read and fitted to the size and fps of a generation.

Images and videos of any size are scaled to cover the target size and centre-cropped
(:func:`tenku.media.cover_frames`); videos are resampled in time to the output fps by taking the
nearest frame.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from tenku import media
from tenku.errors import MediaError, TenkuError, TenkuWarning

Media = Any  # a path (str | Path) or frames: (H, W, 3) / (T, H, W, 3) uint8 RGB


def check_media(value: Any, what: str) -> None:
    if isinstance(value, (str, Path)):
        return
    if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim in (3, 4) and value.shape[-1] == 3:
        return
    raise TenkuError(f"{what} must be a file path or uint8 RGB frames ((H, W, 3) or (T, H, W, 3)), "
                     f"got {type(value).__name__}{getattr(value, 'shape', '')}")


def check_seconds(seconds: Any, what: str, limit: float, allow_none: bool = False) -> None:
    if seconds is None and allow_none:
        return
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or seconds <= 0 or seconds > limit:
        raise TenkuError(f"{what} must be a number of seconds in (0, {limit:g}], got {seconds!r}")


def resample_time(frames: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Nearest-frame resampling from ``fps_in`` to ``fps_out`` (same duration)."""
    if not fps_in or abs(fps_in - fps_out) < 1e-6:
        return frames
    n = max(1, int(round(len(frames) * fps_out / fps_in)))
    idx = np.minimum(np.round(np.arange(n) * fps_in / fps_out).astype(int), len(frames) - 1)
    return frames[idx]


def load_image(image: Media, width: int, height: int) -> np.ndarray:
    """A path or (H, W, 3) / (1, H, W, 3) uint8 -> (1, height, width, 3), fitted."""
    if isinstance(image, (str, Path)):
        arr = media.read_image(image)[None]
    else:
        arr = image if image.ndim == 4 else image[None]
    return media.cover_frames(np.ascontiguousarray(arr[:1]), width, height)


def load_video(video: Media, width: int, height: int, fps: float) -> np.ndarray:
    """A video file (any size/fps PyAV reads) or (T, H, W, 3) uint8 frames at ``fps`` -> fitted frames at ``fps``."""
    if isinstance(video, (str, Path)):
        path = Path(video)
        if path.suffix.lower() in media.IMAGE_SUFFIXES:
            warnings.warn(f"{path.name} is an image: it is used as a video of one frame (for image-to-video "
                          "from it, use generate --image)", TenkuWarning, stacklevel=2)
            return load_image(path, width, height)
        frames, fps_in = media.read_video(path)
        frames = resample_time(frames, fps_in, fps)
    else:
        frames = video if video.ndim == 4 else video[None]
    if not len(frames):
        raise MediaError("the given video has no frames")
    return media.cover_frames(np.ascontiguousarray(frames), width, height)


def media_size(value: Media) -> tuple[int, int]:
    """(width, height) of an image/video path or frames."""
    if isinstance(value, np.ndarray):
        return int(value.shape[-2]), int(value.shape[-3])
    path = Path(value)
    if path.suffix.lower() in media.IMAGE_SUFFIXES:
        from PIL import Image

        if not path.is_file():
            raise MediaError(f"image not found: {path}")
        try:
            with Image.open(path) as im:
                return im.size
        except OSError as e:
            raise MediaError(f"cannot read image {path}: {e}") from None
    info = media.probe(path)
    return int(info["width"]), int(info["height"])


def mode_params(mode: Any) -> dict[str, Any]:
    """A mode's fields as metadata: paths as strings, frames as their shape."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(mode):
        v = getattr(mode, f.name)
        out[f.name] = str(v) if isinstance(v, (str, Path)) else (
            f"<frames {tuple(v.shape)}>" if isinstance(v, np.ndarray) else v)
    return out
