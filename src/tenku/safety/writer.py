"""The marked writer: the one place a generated result becomes a file.

Each piece of frames is checked (:meth:`tenku.safety.policy.Safety.check_frames`) and watermarked
(:mod:`tenku.safety.watermark`, one payload, its temporal code running on over the pieces) before it is
encoded; at close the file is signed with a C2PA manifest (:mod:`tenku.safety.provenance`) and renamed
into place. A whole output is one piece; a stream writes its pieces as they come, so memory stays flat.
``.png`` keeps the first frame of the first piece. Nothing is left under the final name if any step fails.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np

from tenku import media
from tenku.errors import MediaError
from tenku.safety.policy import Safety
from tenku.safety.provenance import Signing

OUTPUT_SUFFIXES = (".mp4", ".png")
WATERMARK_SCHEME = "tenku-ss-v3"


def check_output_path(path: str | Path) -> Path:
    """Raise MediaError unless ``path`` ends in a suffix the writer writes, in a folder that exists."""
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


class MarkedWriter:
    """``with MarkedWriter(path, fps, metadata, safety) as w: w.write(piece)`` -> ``w.path`` when done.

    ``metadata``: the generation's (prompt, seed, model, ... and ``job_id`` if any, which the watermark
    payload names); ``include_prompt`` (default: the policy's) puts the prompt in the C2PA manifest."""

    def __init__(self, path: str | Path, fps: float, metadata: dict, safety: Safety | None = None,
                 include_prompt: bool | None = None):
        self.path = check_output_path(path)
        self.fps = float(fps)
        self.metadata = metadata
        self.safety = safety or Safety()
        self.include_prompt = self.safety.include_prompt if include_prompt is None else bool(include_prompt)
        self.png = self.path.suffix.lower() == ".png"
        self.marked = self.safety.provenance
        self.target = self.path.with_name(f".{self.path.stem}.unsigned{self.path.suffix}") if self.marked else self.path
        self.written = 0
        self._video: media.VideoWriter | None = None
        self.mark: dict | None = None
        self.strength: float | None = None  # the video's mark strength, once its first frames have read back
        self._held: list[np.ndarray] = []
        if self.marked:
            self.payload, self.mark = watermark_for(metadata)

    def __enter__(self) -> "MarkedWriter":
        return self

    READ_BACK_FRAMES = 16  # a video's first frames, marked together and read back before any is encoded
    READ_BACK_MAX_PIXELS = 256 * 256  # larger frames (e.g. scaled to a requested 720x1280) keep the plain mark:
    # each read-back step marks, encodes, decodes and searches 16 frames, minutes at 720p on a CPU

    def write(self, piece: np.ndarray) -> None:
        """Check, mark and encode (t, H, W, 3) uint8 frames (the next ones in time). A video's first
        ``READ_BACK_FRAMES`` frames are held until they are marked and read back
        (:func:`tenku.safety.watermark.embed_read_back`); later frames take the strength found there."""
        if self.png and self.written:
            return
        piece = media.check_video(piece)
        if self.marked:
            from tenku.safety import watermark

            self.safety.check_frames(piece)
            if self.png:
                piece = watermark.embed(piece, self.payload, start=0)
            elif self.strength is None and piece.shape[1] * piece.shape[2] > self.READ_BACK_MAX_PIXELS:
                self.strength = watermark.STRENGTH  # a large frame: reading it back costs too much, plain mark
                piece = watermark.embed(piece, self.payload, start=self.written)
            elif self.strength is None:
                self._held.append(piece)
                if sum(len(p) for p in self._held) >= self.READ_BACK_FRAMES:
                    self._release()
                return
            else:
                piece = watermark.embed(piece, self.payload, strength=self.strength, start=self.written)
        self._encode(piece)

    def _release(self) -> None:
        """Mark the held first frames with a strength that reads back, and encode them."""
        from tenku.safety import watermark

        held, self._held = np.concatenate(self._held), []
        marked, self.strength = watermark.embed_read_back(held, self.payload, roundtrip=self._roundtrip)
        self._encode(marked)

    def _roundtrip(self, frames: np.ndarray) -> np.ndarray:
        """``frames`` as this file will store them: encoded with the same settings and decoded."""
        probe = self.path.with_name(f".{self.path.stem}.probe.mp4")
        try:
            media.write_video(probe, frames, self.fps)
            return media.read_video(probe)[0]
        finally:
            probe.unlink(missing_ok=True)

    def _encode(self, piece: np.ndarray) -> None:
        if self.png:
            media.write_png(self.target, piece[0])
        else:
            if self._video is None:
                self._video = media.VideoWriter(self.target, self.fps).__enter__()
            for frame in piece:
                self._video.write(frame)
        self.written += len(piece)

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None and self._held:
                self._release()
            if self._video is not None:
                video, self._video = self._video, None
                video.__exit__(exc_type, exc, tb)
            if exc_type is None:
                if not self.written:
                    raise MediaError(f"no frames were written to {self.path}")
                if self.marked:
                    self._sign()
        finally:
            if self.marked:
                self.target.unlink(missing_ok=True)

    def _sign(self) -> Path:
        return sign(self.target, self.path, self.metadata, self.mark, include_prompt=self.include_prompt,
                    signing=self.safety.signing)


def watermark_for(metadata: dict) -> tuple[int, dict]:
    """(payload, what the manifest records of the mark) for a generation: the payload names the model and the
    job (``metadata["job_id"]``, or a fresh id)."""
    from tenku.safety import watermark

    job_id = str(metadata.get("job_id") or uuid.uuid4().hex)
    payload = watermark.make_payload(str(metadata.get("model") or "tenku"), job_id)
    return payload, {"scheme": WATERMARK_SCHEME, "payload": f"{payload:08x}", "job_id": job_id}


def sign(path: str | Path, dest: str | Path, metadata: dict, mark: dict | None, include_prompt: bool = True,
         signing: Signing | None = None) -> Path:
    """Sign the encoded file ``path`` into ``dest`` with a C2PA manifest describing the generation, with the
    credentials ``signing`` names (default: the local CA)."""
    from tenku.safety import provenance

    params = {k: v for k, v in metadata.items() if k not in ("model", "model_path", "tenku_version", "job_id")}
    return provenance.sign_file(path, dest=dest, model=str(metadata.get("model") or "unknown"), parameters=params,
                                include_prompt=include_prompt, watermark=mark, signing=signing)


def write_marked(frames: np.ndarray, path: str | Path, fps: float, metadata: dict, safety: Safety | None = None,
                 include_prompt: bool | None = None) -> Path:
    """Write whole frames (T, H, W, 3) uint8 through :class:`MarkedWriter`; returns the path."""
    with MarkedWriter(path, fps, metadata, safety, include_prompt) as w:
        w.write(frames)
    return w.path
