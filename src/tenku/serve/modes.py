"""The modes the server runs, as job records name them, and the one place a named mode becomes a typed one.

The app queues a job with ``kind`` (create, remix, extend, edit) and, for conditioned jobs,
``params["mode"]`` (one of :data:`CONDITIONED_MODES`); the worker runs it through :func:`run_mode`.
Both read the names from here.
"""

from __future__ import annotations

from tenku.errors import TenkuError

IMAGE_TO_VIDEO, EXTEND, EDIT = "image_to_video", "extend", "edit"
CONDITIONED_MODES = (IMAGE_TO_VIDEO, EXTEND, EDIT)  # what params["mode"] may name


def typed_mode(pipe, mode: str, source: str | None = None, image: str | None = None, num_frames: int | None = None,
               fps: float | None = None, strength: float = 0.6):
    """(typed mode, num_frames for the call): ``num_frames`` is the new segment's length for "extend"."""
    from tenku.pipeline.modes import Edit, Extend, ImageToVideo  # here: the API process imports this module, not torch

    fps_out = float(fps if fps is not None else pipe.sample_config.fps)
    if mode == IMAGE_TO_VIDEO:
        return ImageToVideo(image=image), num_frames
    if mode == EXTEND:
        return Extend(video=source, seconds=(num_frames or pipe.sample_config.num_frames) / fps_out), None
    if mode == EDIT:
        return Edit(video=source, strength=strength), None
    raise TenkuError(f"unknown mode {mode!r}; this adapter knows {', '.join(CONDITIONED_MODES)}")


def run_mode(pipe, mode: str, prompt: str, source: str | None = None, image: str | None = None,
             num_frames: int | None = None, fps: float | None = None, strength: float = 0.6, **kwargs):
    """Run a mode named in data (a job record) and return the finished PipelineOutput; ``kwargs`` go to the
    pipeline call."""
    typed, n = typed_mode(pipe, mode, source, image, num_frames, fps, strength)
    fps_out = float(fps if fps is not None else pipe.sample_config.fps)
    return pipe(prompt, mode=typed, num_frames=n, fps=fps_out, **kwargs)
