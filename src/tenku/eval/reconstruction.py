"""What a video compression network keeps: objects found again in its reconstructions, by size class.

For each frame, every object the parser finds in the original is looked for in the reconstruction: it
is *found* when the reconstruction has a detection whose centroid lies within ``max(2, r)`` pixels of
it (``r`` the object's radius estimated from its area), and *found in colour* when that nearest
detection also has the original's colour. Size classes follow the scene spec's object sizes (small,
medium, large); an object whose colour the spec does not name uniquely is classed by its area.
PSNR is over whole clips, frames in 0..255.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from tenku.eval.metrics import psnr

SIZE_CLASSES = ("small", "medium", "large")


def _size_by_area(area: float) -> str:
    r = math.sqrt(max(area, 0.0) / math.pi)  # radius of a disc of that area
    return "small" if r < 4.6 else "medium" if r < 7.0 else "large"


def _size_of(det, spec: dict | None) -> str:
    sizes = {o["size"] for o in (spec or {}).get("objects", []) if o.get("color") == det.color}
    return next(iter(sizes)) if len(sizes) == 1 else _size_by_area(det.area)


@dataclass
class ObjectRecall:
    """Counts per size class: objects in the originals, found again, found in their colour."""

    total: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIZE_CLASSES, 0))
    found: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIZE_CLASSES, 0))
    same_color: dict[str, int] = field(default_factory=lambda: dict.fromkeys(SIZE_CLASSES, 0))
    psnrs: list[float] = field(default_factory=list)

    def add_clip(self, original: np.ndarray, recon: np.ndarray, parser, spec: dict | None = None) -> None:
        """Count one clip: ``original`` and ``recon`` (T, H, W, 3) uint8."""
        self.psnrs.append(psnr(original, recon))
        for fo, fr in zip(parser.parse_video(original), parser.parse_video(recon)):
            for d in fo:
                size = _size_of(d, spec)
                self.total[size] += 1
                reach = max(2.0, math.sqrt(max(d.area, 0.0) / math.pi))
                near = [(math.hypot(e.x - d.x, e.y - d.y), e) for e in fr]
                near = [(dist, e) for dist, e in near if dist <= reach]
                if not near:
                    continue
                self.found[size] += 1
                if any(e.color == d.color for _, e in near):
                    self.same_color[size] += 1

    def summary(self) -> dict:
        out = {"clips": len(self.psnrs), "psnr_db": float(np.mean(self.psnrs)) if self.psnrs else None}
        for s in SIZE_CLASSES:
            n = self.total[s]
            out[s] = {"objects": n, "found": self.found[s], "found_in_color": self.same_color[s],
                      "recall": self.same_color[s] / n if n else None,
                      "color_right": self.same_color[s] / self.found[s] if self.found[s] else None}
        n = sum(self.total.values())
        out["all"] = {"objects": n, "recall": sum(self.same_color.values()) / n if n else None,
                      "color_right": (sum(self.same_color.values()) / sum(self.found.values())
                                      if sum(self.found.values()) else None)}
        return out
