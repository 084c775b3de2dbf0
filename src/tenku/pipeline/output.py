"""What a pipeline returns, and the one place a generated result becomes a file."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

from tenku.errors import MediaError

OUTPUT_SUFFIXES = (".mp4", ".png")


@dataclasses.dataclass
class PipelineOutput:
    """frames: (T, H, W, 3) uint8 RGB; fps; metadata (prompt, seed, steps, ... see TenkuPipeline);
    latents: the final latent (1, C, T', h, w) on CPU, for modes that continue from it."""

    frames: np.ndarray
    fps: float
    metadata: dict[str, Any]
    latents: Any = dataclasses.field(default=None, repr=False)


def check_output_path(path: str | Path) -> Path:
    """Raise MediaError unless ``path`` ends in a suffix :func:`save_output` writes."""
    path = Path(path)
    if path.suffix.lower() not in OUTPUT_SUFFIXES:
        raise MediaError(f"cannot write {path.name!r}: the output must end in {' or '.join(OUTPUT_SUFFIXES)} "
                         "(.png writes the first frame as an image)")
    if path.is_dir():
        raise MediaError(f"{path} is a folder; give a file name ending in .mp4 or .png")
    return path


def save_output(output: PipelineOutput, path: str | Path) -> Path:
    """Write ``output`` to ``path`` atomically: .mp4 (every frame, H.264) or .png (the first frame).
    Returns the path. Nothing is left under ``path`` if writing fails."""
    from tenku import media

    path = check_output_path(path)
    frames = output.frames
    if path.suffix.lower() == ".png":
        return media.write_png(path, frames[0])
    return media.write_video(path, frames, fps=output.fps)
