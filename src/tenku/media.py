"""Media I/O through PyAV: H.264 mp4 (yuv420p, faststart) and PNG out, any PyAV-readable video in.

Every write goes to a temporary name in the target folder and is renamed into place only when it
is complete, so a crash never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterable, Iterator
from fractions import Fraction
from pathlib import Path

import numpy as np

from tenku.errors import MediaError

VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".webm", ".avi", ".gif", ".m4v")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=path.suffix + ".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _check_frame(frame: np.ndarray) -> np.ndarray:
    if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
        raise MediaError(f"expected an RGB frame of shape (H, W, 3), got {getattr(frame, 'shape', type(frame))}")
    if frame.dtype != np.uint8:
        raise MediaError(f"expected uint8 frames, got {frame.dtype}; convert with (x * 255).round().clip(0, 255)")
    return np.ascontiguousarray(frame)


def check_video(frames: np.ndarray) -> np.ndarray:
    """Raise MediaError unless ``frames`` is a (T, H, W, 3) uint8 RGB array with T >= 1."""
    if not isinstance(frames, np.ndarray) or frames.ndim != 4 or len(frames) == 0:
        raise MediaError(f"expected frames of shape (T, H, W, 3) with T >= 1, got {getattr(frames, 'shape', type(frames))}")
    _check_frame(frames[0])
    return frames


class VideoWriter:
    """Streaming H.264 writer: ``with VideoWriter(path, fps) as w: w.write(frame)``.

    Frames are (H, W, 3) uint8 RGB. Memory does not grow with length. yuv420p needs even sizes;
    odd widths or heights are written as yuv444p (still H.264, decodable by PyAV and ffmpeg).
    """

    def __init__(self, path: str | Path, fps: float, crf: int = 18, preset: str = "medium"):
        if fps <= 0:
            raise MediaError(f"fps must be positive, got {fps}")
        self.path = Path(path)
        self.fps = fps
        self.crf = crf
        self.preset = preset
        self.frames_written = 0
        self._ctx: contextlib.AbstractContextManager | None = None
        self._container = None
        self._stream = None

    def __enter__(self) -> "VideoWriter":
        import av

        self._ctx = atomic_path(self.path)
        tmp = self._ctx.__enter__()
        self._container = av.open(str(tmp), mode="w", format="mp4", options={"movflags": "+faststart"})
        return self

    def _open_stream(self, h: int, w: int) -> None:
        rate = Fraction(self.fps).limit_denominator(1001)
        s = self._container.add_stream("libx264", rate=rate)
        s.width, s.height = w, h
        s.pix_fmt = "yuv420p" if (w % 2 == 0 and h % 2 == 0) else "yuv444p"
        s.options = {"crf": str(self.crf), "preset": self.preset}
        self._stream = s

    def write(self, frame: np.ndarray) -> None:
        import av

        frame = _check_frame(frame)
        if self._stream is None:
            self._open_stream(*frame.shape[:2])
        elif frame.shape[:2] != (self._stream.height, self._stream.width):
            raise MediaError(
                f"frame size {frame.shape[1]}x{frame.shape[0]} differs from the video's "
                f"{self._stream.width}x{self._stream.height}"
            )
        vf = av.VideoFrame.from_ndarray(frame, format="rgb24")
        for packet in self._stream.encode(vf):
            self._container.mux(packet)
        self.frames_written += 1

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                if self._stream is None:
                    raise MediaError(f"no frames were written to {self.path}")
                for packet in self._stream.encode():
                    self._container.mux(packet)
        finally:
            self._container.close()
        if exc_type is None:
            self._ctx.__exit__(None, None, None)
        else:
            self._ctx.__exit__(exc_type, exc, tb)


def write_video(path: str | Path, frames: Iterable[np.ndarray] | np.ndarray, fps: float, crf: int = 18,
                preset: str = "medium") -> Path:
    """Write frames (T, H, W, 3) uint8 or an iterable of (H, W, 3) frames as an H.264 mp4."""
    with VideoWriter(path, fps, crf=crf, preset=preset) as w:
        for f in frames:
            w.write(f)
    return Path(path)


def write_png(path: str | Path, frame: np.ndarray) -> Path:
    """Write one RGB frame (H, W, 3) uint8 as PNG, atomically."""
    from PIL import Image

    frame = _check_frame(frame)
    with atomic_path(path) as tmp:
        Image.fromarray(frame).save(tmp, format="PNG")
    return Path(path)


def read_image(path: str | Path) -> np.ndarray:
    """Read any image Pillow reads as (H, W, 3) uint8 RGB."""
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"image not found: {path}")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except (UnidentifiedImageError, OSError) as e:
        raise MediaError(f"cannot read image {path}: {e}") from None


def _open_input(path: str | Path):
    import av

    path = Path(path)
    if not path.is_file():
        raise MediaError(f"video not found: {path}")
    if path.stat().st_size == 0:
        raise MediaError(f"video file is empty: {path}")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, UnicodeDecodeError, ValueError) as e:
        raise MediaError(f"cannot open {path} as a video: {e}") from None
    if not container.streams.video:
        container.close()
        raise MediaError(f"{path} has no video stream")
    return container


def probe(path: str | Path) -> dict:
    """Width, height, fps, frame count (exact if the container says, else estimated) and duration."""
    container = _open_input(path)
    try:
        s = container.streams.video[0]
        fps = float(s.average_rate or s.guessed_rate or 0) or 0.0
        duration = float(s.duration * s.time_base) if s.duration and s.time_base else (
            container.duration / 1e6 if container.duration else 0.0
        )
        frames = s.frames or (round(duration * fps) if fps else 0)
        return {"width": s.codec_context.width, "height": s.codec_context.height, "fps": fps,
                "num_frames": int(frames), "duration": duration}
    finally:
        container.close()


def iter_frames(path: str | Path, max_frames: int | None = None) -> Iterator[np.ndarray]:
    """Decode a video frame by frame as (H, W, 3) uint8 RGB. Raises MediaError on corrupt data."""
    import av

    container = _open_input(path)
    try:
        n = 0
        try:
            for frame in container.decode(video=0):
                yield frame.to_ndarray(format="rgb24")
                n += 1
                if max_frames is not None and n >= max_frames:
                    return
        except av.error.FFmpegError as e:
            raise MediaError(f"corrupt video data in {path} after {n} frames: {e}") from None
        if n == 0:
            raise MediaError(f"{path} contains no decodable frames")
    finally:
        container.close()


def read_video(path: str | Path, max_frames: int | None = None) -> tuple[np.ndarray, float]:
    """Decode a whole video: returns (frames (T, H, W, 3) uint8, fps)."""
    fps = probe(path)["fps"]
    frames = list(iter_frames(path, max_frames=max_frames))
    return np.stack(frames), fps


def cover_frames(frames: np.ndarray, width: int, height: int, resample: str = "lanczos") -> np.ndarray:
    """Scale (T, h, w, 3) uint8 frames to cover ``width`` x ``height`` (aspect kept; ``resample`` "lanczos"
    or "bicubic"), then crop the centre. Frames already of that size are returned unchanged."""
    if frames.shape[1:3] == (height, width):
        return frames
    from PIL import Image

    method = {"lanczos": Image.LANCZOS, "bicubic": Image.BICUBIC}[resample]
    h, w = frames.shape[1:3]
    scale = max(width / w, height / h)
    sw, sh = max(width, round(w * scale)), max(height, round(h * scale))
    x0, y0 = (sw - width) // 2, (sh - height) // 2
    out = np.empty((len(frames), height, width, 3), np.uint8)
    for i, f in enumerate(frames):
        out[i] = np.asarray(Image.fromarray(f).resize((sw, sh), method))[y0:y0 + height, x0:x0 + width]
    return out


def psnr(a: np.ndarray, b: np.ndarray, cap: float | None = None) -> float:
    """PSNR in dB of two uint8 images or videos (infinite when equal, or ``cap`` at most when given)."""
    mse = float(np.mean((np.asarray(a, np.float64) - np.asarray(b, np.float64)) ** 2))
    value = float("inf") if mse <= 1e-10 else 10 * math.log10(255.0**2 / mse)
    return value if cap is None else min(cap, value)
