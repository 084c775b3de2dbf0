"""From a source video to candidate clips: decode once, detect scene cuts, resample, bucket.

Scene cuts follow PySceneDetect's adaptive content detector: each frame gets a content score, the
mean absolute difference of its HSV channels from the previous frame (0..255), and a cut is
declared where that score is at least ``min_score`` *and* at least ``ratio`` times the mean score of
the ``window`` frames on each side. A camera pan or an object crossing the frame raises the scores
of its neighbours too, so it does not count as a cut; a hard cut is one isolated spike.

Frames are resized so the bucket is covered, then centre-cropped to the bucket whose aspect ratio
is closest to the source (see :func:`make_buckets`). Output frames sit on a regular clock of
``fps``: each takes the source frame nearest in time. Long scenes are cut into clips of at most
``max_frames``. Everything streams: memory holds at most one clip plus a few frames.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from tenku import geometry
from tenku.errors import MediaError, TenkuError

BUCKET_STEP = 16
PREVIEW_SIDE = 384  # long side of the frames sent to a captioner
FEATURE_SIDE = 128  # cut detection runs on frames no larger than this


def parse_size(text: str) -> tuple[int, int]:
    """``"WxH"`` -> (W, H), both positive multiples of 16."""
    w, h = geometry.parse_size(str(text), "--size")
    if w < BUCKET_STEP or h < BUCKET_STEP or w % BUCKET_STEP or h % BUCKET_STEP:
        raise TenkuError(f"--size {text}: width and height must be multiples of {BUCKET_STEP} "
                         f"and at least {BUCKET_STEP} (e.g. 64x64, 96x48)")
    return w, h


def make_buckets(width: int, height: int, step: int = BUCKET_STEP, max_aspect: float = 4.0) -> list[tuple[int, int]]:
    """Sizes (W, H), multiples of ``step``, with about the area of ``width x height`` (within 25%)
    and aspect ratios up to ``max_aspect``; mirrored, so portrait and landscape are both present.
    For 64x64: 32x128, 32x112, 48x96, 48x80, 64x64, 80x48, 96x48, 112x32, 128x32."""
    area = width * height
    out = {(width, height), (height, width)}
    w = step
    while w <= int(math.sqrt(area) * math.sqrt(max_aspect)) + step:
        h = max(step, int(round(area / w / step)) * step)
        if 1 / max_aspect <= w / h <= max_aspect and 0.75 <= w * h / area <= 1.34:
            out.add((w, h))
            out.add((h, w))
        w += step
    return sorted(out, key=lambda b: (b[0] / b[1], b[0]))


def closest_bucket(width: int, height: int, buckets: list[tuple[int, int]]) -> tuple[int, int]:
    """The bucket whose aspect ratio is closest to width/height (in log ratio; ties go to the larger area)."""
    ar = math.log(width / height)
    return min(buckets, key=lambda b: (round(abs(math.log(b[0] / b[1]) - ar), 9), -b[0] * b[1]))


def cover_size(width: int, height: int, bw: int, bh: int) -> tuple[int, int]:
    """Size that keeps the source aspect and just covers a bw x bh crop."""
    scale = max(bw / width, bh / height)
    return max(bw, int(round(width * scale))), max(bh, int(round(height * scale)))


def center_crop(frame: np.ndarray, bw: int, bh: int) -> np.ndarray:
    h, w = frame.shape[:2]
    y, x = (h - bh) // 2, (w - bw) // 2
    return np.ascontiguousarray(frame[y:y + bh, x:x + bw])


def content_score(a_hsv: np.ndarray, b_hsv: np.ndarray) -> float:
    """Mean absolute HSV difference of two frames (0..255), PySceneDetect's content value."""
    return float(np.abs(a_hsv.astype(np.int16) - b_hsv.astype(np.int16)).mean())


def hsv(frame: np.ndarray) -> np.ndarray:
    from PIL import Image

    step = max(1, -(-max(frame.shape[:2]) // FEATURE_SIDE))
    return np.asarray(Image.fromarray(np.ascontiguousarray(frame[::step, ::step])).convert("HSV"))


class CutDetector:
    """Streaming adaptive cut detector. ``push(i, score)`` feeds the score of frame ``i`` (its
    difference from frame i-1) and returns the cuts it can now decide (frame indices that start a
    new scene); ``flush()`` decides the last frames. A frame is decided ``window`` frames later."""

    def __init__(self, window: int = 2, ratio: float = 3.0, min_score: float = 15.0, min_gap: int = 12):
        self.window, self.ratio, self.min_score, self.min_gap = window, ratio, min_score, min_gap
        self.buf: deque[tuple[int, float]] = deque()
        self.pos = 0  # position in buf of the next frame to decide
        self.last_cut = 0
        self.scores: list[tuple[int, float, float]] = []  # (frame, score, ratio) of decided frames

    def _decide(self, k: int) -> int | None:
        i, s = self.buf[k]
        lo, hi = max(0, k - self.window), min(len(self.buf), k + self.window + 1)
        nb = [self.buf[j][1] for j in range(lo, hi) if j != k]
        avg = sum(nb) / len(nb) if nb else 0.0
        ratio = s / avg if avg > 1e-4 else (255.0 if s >= self.min_score else 0.0)
        self.scores.append((i, s, ratio))
        if ratio >= self.ratio and s >= self.min_score and i - self.last_cut >= self.min_gap:
            self.last_cut = i
            return i
        return None

    def push(self, index: int, score: float) -> list[int]:
        self.buf.append((index, score))
        cuts = []
        while self.pos < len(self.buf) - self.window:
            c = self._decide(self.pos)
            if c is not None:
                cuts.append(c)
            self.pos += 1
            if self.pos > self.window:
                self.buf.popleft()
                self.pos -= 1
        return cuts

    def flush(self) -> list[int]:
        cuts = []
        while self.pos < len(self.buf):
            c = self._decide(self.pos)
            if c is not None:
                cuts.append(c)
            self.pos += 1
        return cuts


@dataclass
class RawClip:
    """A candidate clip before filtering. Times are source seconds."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    start: float
    end: float
    scene: int
    part: int
    previews: list[np.ndarray] = field(default_factory=list)


@dataclass
class _Out:
    src: int
    t: float
    frame: np.ndarray
    preview: np.ndarray | None


class _Geometry:
    """Display rotation, pixel aspect, bucket and scaling of one source. Frames are scaled in their
    coded orientation (cheaper) to their display size (non-square pixels, e.g. anamorphic DV, are
    stretched by the sample aspect ratio), then turned upright as the container's display matrix
    says (``rotation``: degrees counter-clockwise, as ffmpeg's players apply it)."""

    def __init__(self, coded_w: int, coded_h: int, rotation: int, size: tuple[int, int], previews: bool,
                 sample_aspect: float = 1.0):
        self.k = int(round((rotation or 0) / 90.0)) % 4
        self.rotation = self.k * 90
        if sample_aspect and sample_aspect > 0 and abs(sample_aspect - 1.0) > 1e-3:  # non-square pixels
            coded_w = max(1, int(round(coded_w * sample_aspect)))
        self.width, self.height = (coded_h, coded_w) if self.k % 2 else (coded_w, coded_h)
        self.bucket = closest_bucket(self.width, self.height, make_buckets(*size))
        bw, bh = self.bucket
        self._cover = cover_size(self.width, self.height, bw, bh)
        if previews:  # the same crop at up to PREVIEW_SIDE pixels on its long side
            s = max(bw / self.width, bh / self.height)
            ps = min(1.0, PREVIEW_SIDE * s / max(bw, bh))
            self.preview_size = (max(2, round(bw / s * ps)), max(2, round(bh / s * ps)))
            self._preview_cover = cover_size(self.width, self.height, *self.preview_size)

    def _scaled(self, frame, w: int, h: int) -> np.ndarray:
        if self.k % 2:
            w, h = h, w
        a = frame.to_ndarray(format="rgb24", width=w, height=h, interpolation="AREA")
        return np.ascontiguousarray(np.rot90(a, self.k)) if self.k else a

    def cover(self, frame) -> np.ndarray:
        return self._scaled(frame, *self._cover)

    def preview(self, frame) -> np.ndarray:
        return center_crop(self._scaled(frame, *self._preview_cover), *self.preview_size)


def _frame_time(frame, index: int, fps: float) -> float:
    t = frame.time
    return float(t) if t is not None else index / (fps or 25.0)


def extract_clips(path: str | Path, size: tuple[int, int], fps: float, max_frames: int,
                  start: float = 0.0, end: float | None = None, previews: int = 0,
                  detector: dict | None = None, stats: dict | None = None) -> Iterator[RawClip]:
    """Decode ``path`` from ``start`` to ``end`` seconds and yield candidate clips.

    ``size`` is the base (W, H) from which the bucket list is derived. ``previews`` > 0 keeps that
    many evenly spaced larger frames (same crop) per clip for captioning. ``stats``, if given,
    receives source facts (size, fps, bucket, decoded frames, cut scores). Raises MediaError for
    a file that cannot be decoded or that ends much earlier than its container says (truncated).
    """
    import av

    from tenku.media import probe

    path = Path(path)
    info = probe(path)  # raises MediaError for missing, empty and non-video files
    if not info["width"] or not info["height"]:
        raise MediaError(f"{path} has a video stream without a frame size")
    src_fps = info["fps"] or 25.0
    det = CutDetector(min_gap=max(1, round(0.5 * src_fps)), **(detector or {}))
    geo: _Geometry | None = None  # set from the first frame (its display rotation)

    buf: list[_Out] = []
    scene, part = 0, 0
    step = 1.0 / fps

    def make_clip(items: list[_Out], scene: int, part: int) -> RawClip:
        pv = []
        if previews and items:
            idx = np.linspace(0, len(items) - 1, previews + 2)[1:-1].round().astype(int)
            pv = [items[i].preview for i in sorted(set(idx.tolist()))]
        return RawClip(np.stack([o.frame for o in items]), items[0].t, items[-1].t + step, scene, part, pv)

    container = av.open(str(path))
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if start > 0 and stream.time_base:
            container.seek(int(start / stream.time_base), stream=stream, backward=True)
        prev = None  # (src index, t, av frame, cover ndarray)
        prev_hsv = None
        next_t = None
        n = 0
        last_t = start
        times: list[float] = []
        cuts_seen: list[int] = []
        try:
            for i, frame in enumerate(container.decode(stream)):
                t = _frame_time(frame, i, src_fps)
                if t < start - 1e-6:
                    continue
                if end is not None and t >= end - 1e-6:
                    break
                if geo is None:
                    geo = _Geometry(info["width"], info["height"], getattr(frame, "rotation", 0), size,
                                    previews > 0, float(stream.sample_aspect_ratio or 1))
                cover = geo.cover(frame)
                times.append(t)
                f_hsv = hsv(cover)
                cuts = det.push(n, content_score(prev_hsv, f_hsv)) if prev_hsv is not None else []
                prev_hsv = f_hsv
                cur = (n, t, frame, cover)
                if next_t is None:
                    next_t = t
                while next_t <= t + 1e-6:
                    use = cur if prev is None or abs(t - next_t) <= abs(next_t - prev[1]) else prev
                    pv = None
                    if previews:
                        pv = geo.preview(use[2])
                    buf.append(_Out(use[0], next_t, center_crop(use[3], *geo.bucket), pv))
                    next_t += step
                prev = cur
                for c in cuts:
                    cuts_seen.append(c)
                    done = [o for o in buf if o.src < c]
                    buf = [o for o in buf if o.src >= c]
                    if done:
                        yield make_clip(done, scene, part)
                    scene, part = scene + 1, 0
                settled = n - det.window  # no cut can fall at or before this frame any more
                while sum(1 for o in buf if o.src < settled) >= max_frames:
                    yield make_clip(buf[:max_frames], scene, part)
                    buf = buf[max_frames:]
                    part += 1
                n += 1
                last_t = t
        except av.error.FFmpegError as e:
            raise MediaError(f"corrupt video data in {path} after {n} frames: {e}") from None
    finally:
        container.close()
    if n == 0:
        raise MediaError(f"{path} contains no decodable frames"
                         + (f" after {start:.1f} s" if start > 0 else ""))
    expected_end = min(end, info["duration"]) if end is not None else info["duration"]
    if expected_end and last_t + 1.0 / src_fps < 0.9 * expected_end - 0.5:
        raise MediaError(f"{path} looks truncated: frames end at {last_t:.2f} s but the container "
                         f"says {info['duration']:.2f} s")
    for c in det.flush():
        cuts_seen.append(c)
        done = [o for o in buf if o.src < c]
        buf = [o for o in buf if o.src >= c]
        if done:
            yield make_clip(done, scene, part)
        scene, part = scene + 1, 0
    while buf:
        yield make_clip(buf[:max_frames], scene, part)
        buf = buf[max_frames:]
        part += 1
    if stats is not None:
        stats.update({"width": geo.width, "height": geo.height, "rotation": geo.rotation, "fps": src_fps,
                      "bucket": list(geo.bucket), "decoded_frames": n,
                      "cuts": [round(times[c], 3) for c in cuts_seen],
                      "scores": [(i, round(sc, 2), round(r, 2)) for i, sc, r in det.scores]})
