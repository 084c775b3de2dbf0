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
    parent = path.parent
    if not parent.is_dir():
        what = "is not a folder" if parent.exists() else "does not exist"
        raise MediaError(f"cannot write {path}: the folder {parent} {what}; create it first (mkdir -p {parent}) "
                         "or choose another output path")
    return path


def save_output(output: PipelineOutput, path: str | Path, include_prompt: bool = True) -> Path:
    """Write ``output`` to ``path`` atomically: .mp4 (every frame, H.264) or .png (the first frame).
    Returns the path. Nothing is left under ``path`` if writing fails.

    Safety steps (tenku.safety.outputs): output-frame check and invisible watermark before encoding,
    C2PA manifest (prompt included only if ``include_prompt``) signed as the very last step."""
    from tenku import media
    from tenku.safety import outputs as safety

    path = check_output_path(path)
    frames = media.check_video(output.frames)
    if not safety.provenance_enabled():
        if path.suffix.lower() == ".png":
            return media.write_png(path, frames[0])
        return media.write_video(path, frames, fps=output.fps)
    frames, mark = safety.prepare_frames(frames, output.metadata)
    unsigned = path.with_name(f".{path.stem}.unsigned{path.suffix}")
    try:
        if path.suffix.lower() == ".png":
            media.write_png(unsigned, frames[0])
        else:
            media.write_video(unsigned, frames, fps=output.fps)
        return safety.sign_output(unsigned, output.metadata, mark, include_prompt=include_prompt, dest=path)
    finally:
        unsigned.unlink(missing_ok=True)


def save_output_stream(stream, path: str | Path, include_prompt: bool = True) -> Path:
    """Write a :class:`tenku.pipeline.modes.GenerationStream` to ``path`` as its pieces arrive: .mp4 encodes
    piece by piece (memory does not grow with length), .png writes the first frame. The safety steps of
    :func:`save_output` apply to every piece (frame check, the same watermark payload throughout) and the
    C2PA manifest is signed last. Atomic like :func:`save_output`. Returns the path."""
    from tenku import media
    from tenku.safety import outputs as safety

    path = check_output_path(path)
    if path.suffix.lower() == ".png":
        pieces = iter(stream.frames)
        first = next(pieces)[:1]
        pieces.close()
        return save_output(PipelineOutput(frames=first, fps=stream.fps, metadata=stream.metadata), path,
                           include_prompt=include_prompt)
    if not safety.provenance_enabled():
        with media.VideoWriter(path, stream.fps) as w:
            for piece in stream.frames:
                for frame in piece:
                    w.write(frame)
        return path
    import uuid

    from tenku.safety import moderation, watermark

    job_id = str(stream.metadata.get("job_id") or uuid.uuid4().hex)
    payload = watermark.make_payload(str(stream.metadata.get("model") or "tenku"), job_id)
    mark = {"scheme": safety.WATERMARK_SCHEME, "payload": f"{payload:08x}", "job_id": job_id}
    unsigned = path.with_name(f".{path.stem}.unsigned{path.suffix}")
    try:
        with media.VideoWriter(unsigned, stream.fps) as w:
            written = 0
            for piece in stream.frames:
                moderation.check_frames(piece)
                for frame in watermark.embed(piece, payload, start=written):  # the mark's code runs on over pieces
                    w.write(frame)
                written += len(piece)
        return safety.sign_output(unsigned, stream.metadata, mark, include_prompt=include_prompt, dest=path)
    finally:
        unsigned.unlink(missing_ok=True)
