"""Per-clip statistics and the filters ingest applies: too short, nearly static, black/blank, duplicate.

All statistics work on the bucketed uint8 clip (T, H, W, 3) and are on the 0..255 luma scale:

- motion: mean absolute luma difference between consecutive frames (at the clip's fps);
- brightness: mean luma;
- blank fraction: share of frames that are black (mean luma < ``dark``) or flat (luma std < ``flat``);
- perceptual hash: 64-bit DCT hash (pHash) of the first, middle and last frame.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class FilterConfig:
    min_motion: float = 0.6  # below: "static"
    max_blank_fraction: float = 0.5  # above: "blank"
    dark: float = 16.0  # a frame whose mean luma is below this is black
    flat: float = 5.0  # a frame whose luma std is below this is blank (one flat colour)
    max_hash_distance: int = 10  # every one of the 3 frame hashes within this many bits: "duplicate"

    def to_dict(self) -> dict:
        return asdict(self)


def luma(frames: np.ndarray) -> np.ndarray:
    """(T, H, W, 3) uint8 -> (T, H, W) float32 luma (BT.601)."""
    f = frames.astype(np.float32)
    return f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114


def motion_score(frames: np.ndarray) -> float:
    if len(frames) < 2:
        return 0.0
    y = luma(frames)
    return float(np.abs(np.diff(y, axis=0)).mean())


def brightness(frames: np.ndarray) -> float:
    return float(luma(frames).mean())


def blank_fraction(frames: np.ndarray, dark: float = 16.0, flat: float = 5.0) -> float:
    y = luma(frames).reshape(len(frames), -1)
    blank = (y.mean(1) < dark) | (y.std(1) < flat)
    return float(blank.mean())


def _dct_matrix(n: int) -> np.ndarray:
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * np.sqrt(2.0 / n)
    m[0] /= np.sqrt(2.0)
    return m


_DCT32 = _dct_matrix(32)


def phash(frame: np.ndarray) -> int:
    """64-bit perceptual hash: luma at 32x32, 2D DCT, the 8x8 lowest frequencies against their median."""
    from PIL import Image

    y = np.asarray(Image.fromarray(np.ascontiguousarray(frame)).convert("L").resize((32, 32), Image.BILINEAR),
                   dtype=np.float64)
    d = (_DCT32 @ y @ _DCT32.T)[:8, :8].ravel()
    bits = d > np.median(d[1:])
    return int(sum(1 << i for i, b in enumerate(bits) if b))


def clip_hashes(frames: np.ndarray) -> list[int]:
    idx = sorted({0, len(frames) // 2, len(frames) - 1})
    while len(idx) < 3:
        idx.append(idx[-1])
    return [phash(frames[i]) for i in idx]


def clip_stats(frames: np.ndarray, cfg: FilterConfig) -> dict:
    return {"motion": round(motion_score(frames), 4), "brightness": round(brightness(frames), 3),
            "blank_fraction": round(blank_fraction(frames, cfg.dark, cfg.flat), 4),
            "phash": [f"{h:016x}" for h in clip_hashes(frames)]}


def reject_reason(stats: dict, cfg: FilterConfig) -> str | None:
    """"blank" or "static" (checked in that order), or None for a clip that passes."""
    if stats["blank_fraction"] > cfg.max_blank_fraction:
        return "blank"
    if stats["motion"] < cfg.min_motion:
        return "static"
    return None


class DuplicateIndex:
    """Hashes of the clips kept so far. A clip duplicates an earlier one when each of its three
    frame hashes is within ``max_distance`` bits of the other's. Only clips of the same or a lower
    shard count as earlier (so the result does not depend on the order shards finish in), and
    clips of the same scene of the same source (consecutive pieces of one long shot) are never
    compared with each other."""

    def __init__(self, max_distance: int = 10):
        self.max_distance = max_distance
        self._buf = np.zeros((64, 3), dtype=np.uint64)  # grows by doubling
        self.shards: list[int] = []
        self.groups: list[str] = []
        self.ids: list[str] = []

    @staticmethod
    def _parse(hashes: list[int | str]) -> np.ndarray:
        return np.array([int(x, 16) if isinstance(x, str) else int(x) for x in hashes], dtype=np.uint64)

    def find(self, hashes: list[int | str], group: str, shard: int) -> str | None:
        """The id of an earlier near-identical clip, or None."""
        if not self.ids:
            return None
        x = self._buf[:len(self.ids)] ^ self._parse(hashes)[None, :]
        dist = np.unpackbits(x.view(np.uint8).reshape(len(self.ids), 3, 8), axis=2).sum(2)  # (N, 3)
        for i in np.nonzero((dist <= self.max_distance).all(1))[0]:
            if self.shards[i] <= shard and self.groups[i] != group:
                return self.ids[i]
        return None

    def add(self, hashes: list[int | str], group: str, shard: int, clip_id: str) -> None:
        n = len(self.ids)
        if n == len(self._buf):
            self._buf = np.concatenate([self._buf, np.zeros_like(self._buf)])
        self._buf[n] = self._parse(hashes)
        self.shards.append(shard)
        self.groups.append(group)
        self.ids.append(clip_id)
