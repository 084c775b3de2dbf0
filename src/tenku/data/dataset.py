"""A PyTorch dataset over shards (world clips or ingested real video; see :mod:`tenku.data.shards`).

Each item is ``{"video": (3, T, H, W) float in [-1, 1], "caption": str, "record": dict}``. A clip that
is missing, corrupt or shorter than it should be is skipped: it is logged, appended to ``.skipped``
as ``(record id, reason)`` and the next good clip is returned instead, so one bad file never stops
training. (With DataLoader workers each worker keeps its own ``.skipped``; the log shows them all.)
"""

from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from tenku.data.shards import CAPTION_LEVELS, iter_records
from tenku.errors import MediaError, TenkuError

log = logging.getLogger("tenku.data")
CAPTION_CHOICES = CAPTION_LEVELS + ("random",)


def frames_to_tensor(frames: np.ndarray) -> "torch.Tensor":
    """(T, H, W, 3) uint8 -> (3, T, H, W) float32 in [-1, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(frames)).float()
    return x.permute(3, 0, 1, 2).div_(127.5).sub_(1.0)


def tensor_to_frames(video: "torch.Tensor") -> np.ndarray:
    """(3, T, H, W) float in [-1, 1] (any device or dtype) -> (T, H, W, 3) uint8, the inverse of
    :func:`frames_to_tensor` (values outside [-1, 1] are clipped)."""
    v = ((video.float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)  # (3, T, H, W)
    return np.ascontiguousarray(v.permute(1, 2, 3, 0).cpu().numpy())


def read_clip_frames(path: str | Path, count: int | None = None, start: int = 0) -> np.ndarray:
    """Frames ``start .. start + count`` of a video file as (count, H, W, 3) uint8 (all frames when
    ``count`` is None). Raises :class:`MediaError` when the file cannot be decoded or is truncated."""
    from tenku.media import iter_frames

    want = None if count is None else start + count
    frames = list(iter_frames(path, max_frames=want))
    if want is not None and len(frames) < want:
        raise MediaError(f"{path} is truncated: decoded {len(frames)} frames, expected {want}")
    if not frames:
        raise MediaError(f"{path} holds no frames")
    return np.stack(frames[start:])


class ShardDataset(Dataset):
    """Map-style dataset over every complete shard of ``root`` (optionally one ``split``).

    ``caption``: "short" | "medium" | "long" | "random" (a level drawn per item from ``seed``).
    ``num_frames``: keep the first ``num_frames`` frames; clips with fewer frames are skipped.
    """

    def __init__(self, root: str | Path, split: str | None = None, caption: str = "long",
                 num_frames: int | None = None, seed: int = 0):
        if caption not in CAPTION_CHOICES:
            raise TenkuError(f"caption must be one of {CAPTION_CHOICES}, got {caption!r}")
        if num_frames is not None and num_frames < 1:
            raise TenkuError(f"num_frames must be at least 1, got {num_frames}")
        self.root = Path(root)
        self.caption = caption
        self.num_frames = num_frames
        self.skipped: list[tuple[str, str]] = []
        self._rng = random.Random(seed)
        self.records = []
        for rec in iter_records(self.root, split):
            reason = self._static_problem(rec)
            if reason:
                self._skip(rec, reason)
            else:
                self.records.append(rec)
        if not self.records:
            where = f" with split {split!r}" if split else ""
            raise TenkuError(f"{self.root} holds no usable clips{where} "
                             f"({len(self.skipped)} skipped: {self.skipped[:3]})")

    def _static_problem(self, rec: dict) -> str | None:
        path = Path(rec["video"])
        if not path.is_file():
            return f"video file missing: {path}"
        if path.stat().st_size == 0:
            return f"video file is empty: {path}"
        if self.num_frames is not None and int(rec.get("num_frames", 0)) < self.num_frames:
            return f"clip has {rec.get('num_frames')} frames, fewer than num_frames={self.num_frames}"
        return None

    def _skip(self, rec: dict, reason: str) -> None:
        self.skipped.append((rec.get("id", "?"), reason))
        log.warning("skipping clip %s: %s", rec.get("id", "?"), reason)

    def __len__(self) -> int:
        return len(self.records)

    def _caption(self, rec: dict) -> str:
        level = self._rng.choice(CAPTION_LEVELS) if self.caption == "random" else self.caption
        caps = rec.get("captions") or {}
        return caps.get(level) or caps.get("long") or caps.get("medium") or caps.get("short") or ""

    def _load(self, rec: dict) -> np.ndarray:
        return read_clip_frames(rec["video"], self.num_frames or int(rec.get("num_frames") or 0) or None)

    def __getitem__(self, index: int) -> dict:
        n = len(self.records)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} clips")
        index %= n
        for step in range(n):
            rec = self.records[(index + step) % n]
            try:
                frames = self._load(rec)
            except MediaError as e:
                self._skip(rec, str(e))
                continue
            return {"video": frames_to_tensor(frames), "caption": self._caption(rec), "record": rec}
        raise TenkuError(f"every clip in {self.root} failed to decode; see .skipped ({self.skipped[:3]})")
