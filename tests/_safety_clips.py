"""Synthetic 64x64 clips for the safety tests and benchmark: moving shapes on flat or graded backgrounds."""

import numpy as np


def synthetic_clip(seed: int, frames: int = 17, size: int = 64) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    bg = rng.integers(0, 256, 3)
    base = np.broadcast_to(bg, (size, size, 3)).astype(float)
    if rng.random() < 0.5:
        base = base + rng.integers(-60, 60, 3)[None, None] * (yy[..., None] / size)
    objs = [(rng.uniform(8, size - 8, 2), rng.uniform(-3, 3, 2), rng.uniform(4, 12), rng.integers(0, 256, 3),
             rng.integers(0, 2)) for _ in range(rng.integers(1, 4))]
    out = []
    for t in range(frames):
        f = base.copy()
        for p, v, r, col, square in objs:
            c = p + v * t
            if square:
                m = (np.abs(xx - c[0]) < r) & (np.abs(yy - c[1]) < r)
            else:
                m = (xx - c[0]) ** 2 + (yy - c[1]) ** 2 < r * r
            f[m] = col
        out.append(f)
    return np.clip(np.stack(out), 0, 255).astype(np.uint8)
