"""What a pipeline returns (:class:`PipelineOutput`, :class:`GenerationStream`), and saving it through the
marked writer (:mod:`tenku.safety.writer`: frame check and watermark per piece, C2PA manifest at close)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tenku.errors import TenkuError
from tenku.safety.writer import OUTPUT_SUFFIXES, MarkedWriter, check_output_path, write_marked

__all__ = ["OUTPUT_SUFFIXES", "GenerationStream", "PipelineOutput", "check_output_path", "save_output",
           "save_output_stream"]


@dataclasses.dataclass
class PipelineOutput:
    """frames: (T, H, W, 3) uint8 RGB; fps; metadata (prompt, seed, steps, ... see TenkuPipeline);
    latents: the final latent (1, C, T', h, w) on CPU, for modes that continue from it; safety: the policy
    of the pipeline that made it (None: the defaults), which :func:`save_output` follows."""

    frames: np.ndarray
    fps: float
    metadata: dict[str, Any]
    latents: Any = dataclasses.field(default=None, repr=False)
    safety: Any = dataclasses.field(default=None, repr=False, compare=False)


@dataclasses.dataclass
class GenerationStream:
    """A generation under way: ``frames`` yields (t, H, W, 3) uint8 pieces in time order (consume it once);
    ``num_frames``, ``fps``, ``width``, ``height`` are known up front; ``metadata`` gains
    ``seconds_taken`` when the stream is exhausted."""

    frames: Iterator[np.ndarray]
    num_frames: int
    fps: float
    width: int
    height: int
    metadata: dict[str, Any]
    state: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)
    safety: Any = dataclasses.field(default=None, repr=False)

    def collect(self) -> PipelineOutput:
        """Run the stream to the end and return a :class:`PipelineOutput`."""
        frames = np.concatenate(list(self.frames)) if self.num_frames else np.zeros((0, self.height, self.width, 3))
        if len(frames) != self.num_frames:
            raise TenkuError(f"internal: made {len(frames)} frames, expected {self.num_frames}")
        return PipelineOutput(frames=frames, fps=self.fps, metadata=self.metadata, latents=self.state.get("latents"),
                              safety=self.safety)


def save_output(output: PipelineOutput, path: str | Path, include_prompt: bool | None = None,
                safety=None) -> Path:
    """Write ``output`` to ``path`` atomically: .mp4 (every frame, H.264) or .png (the first frame), checked,
    watermarked and signed by ``safety`` (default: the output's pipeline's policy). ``include_prompt``: the
    prompt in the C2PA manifest (default: the policy's). Returns the path."""
    return write_marked(output.frames, path, output.fps, output.metadata, safety or output.safety,
                        include_prompt=include_prompt)


def save_output_stream(stream: GenerationStream, path: str | Path, include_prompt: bool | None = None,
                       safety=None) -> Path:
    """Write a :class:`GenerationStream` to ``path`` as its pieces arrive: .mp4 encodes piece by piece (memory
    does not grow with length), .png writes the first frame and stops the stream. The steps of
    :func:`save_output` apply to every piece. Atomic like :func:`save_output`. Returns the path."""
    path = check_output_path(path)
    with MarkedWriter(path, stream.fps, stream.metadata, safety or stream.safety, include_prompt) as w:
        pieces = iter(stream.frames)
        try:
            for piece in pieces:
                w.write(piece[:1] if w.png else piece)
                if w.png:
                    break
        finally:
            if w.png and hasattr(pieces, "close"):
                pieces.close()
    return w.path
