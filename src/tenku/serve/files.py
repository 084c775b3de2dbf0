"""Where a job's files live under the data folder, and the preview images made from a finished video."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np

VIDEO_ID = re.compile(r"^video_[0-9a-f]{32}$")

VARIANTS = {
    "video": ("video.mp4", "video/mp4"),
    "thumbnail": ("thumbnail.webp", "image/webp"),
    "spritesheet": ("spritesheet.webp", "image/webp"),  # the spec's content types: video/mp4, image/webp
}


def is_video_id(value: str) -> bool:
    return bool(VIDEO_ID.match(value or ""))


def job_dir(data_dir: str | Path, job_id: str) -> Path:
    if not is_video_id(job_id):  # ids come from the store; this keeps any other string out of the path
        raise ValueError(f"not a video id: {job_id!r}")
    return Path(data_dir) / "videos" / job_id


def variant_path(data_dir: str | Path, job_id: str, variant: str) -> Path:
    return job_dir(data_dir, job_id) / VARIANTS[variant][0]


def uploads_dir(data_dir: str | Path) -> Path:
    return Path(data_dir) / "uploads"


def remove_job_files(data_dir: str | Path, job_id: str, input_path: str | None = None) -> None:
    shutil.rmtree(job_dir(data_dir, job_id), ignore_errors=True)
    if input_path:
        p = Path(input_path)
        if p.parent.resolve() == uploads_dir(data_dir).resolve():
            p.unlink(missing_ok=True)


SPRITE_TILE = 256  # longest side of one spritesheet tile, in pixels


def write_previews(frames: np.ndarray, out_dir: Path) -> dict[str, Path]:
    """A thumbnail (middle frame, WebP) and a spritesheet (up to 16 frames in a 4-column grid, each tile at most
    SPRITE_TILE pixels on its longest side, WebP)."""
    from PIL import Image

    from tenku.media import atomic_path

    t, h, w, _ = frames.shape
    thumb = out_dir / VARIANTS["thumbnail"][0]
    with atomic_path(thumb) as tmp:
        Image.fromarray(frames[t // 2]).save(tmp, format="WEBP", quality=90)
    n = min(16, t)
    idx = np.linspace(0, t - 1, n).round().astype(int)
    cols = min(4, n)
    rows = (n + cols - 1) // cols
    s = min(1.0, SPRITE_TILE / max(h, w))
    tw, th = max(1, round(w * s)), max(1, round(h * s))
    sheet = np.zeros((rows * th, cols * tw, 3), np.uint8)
    for k, i in enumerate(idx):
        r, c = divmod(k, cols)
        tile = frames[i]
        if (tw, th) != (w, h):
            tile = np.asarray(Image.fromarray(tile).resize((tw, th), Image.BILINEAR))
        sheet[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = tile
    sprite = out_dir / VARIANTS["spritesheet"][0]
    with atomic_path(sprite) as tmp:
        Image.fromarray(sheet).save(tmp, format="WEBP", quality=90)
    return {"thumbnail": thumb, "spritesheet": sprite}
