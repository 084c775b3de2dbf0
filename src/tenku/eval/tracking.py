"""Turn per-frame detections into per-object tracks, with or without the world's ground truth.

``match_ground_truth`` follows each ground-truth object through a parsed video: in every frame the
detections of the object's colour are assigned to the objects of that colour (Hungarian assignment on
the distance to each object's last tracked position, or its ground-truth position before it has been
seen). An object alone in its colour takes the largest detection of that colour. The result is a
:class:`Tracks` of arrays with NaN where an object was not found.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tenku.eval.parser import Detection


@dataclasses.dataclass
class Tracks:
    """Per frame and object: ``pos`` (T, N, 2) px (NaN: not found), ``area`` (T, N) px^2 (0: not found),
    ``shape`` (T, N) shape class or "", ``border`` (T, N) bool touching the frame edge."""

    pos: np.ndarray
    area: np.ndarray
    shape: np.ndarray
    border: np.ndarray

    @property
    def found(self) -> np.ndarray:
        return ~np.isnan(self.pos[..., 0])


def gt_array(gt: dict, key: str) -> np.ndarray:
    """(T, N) array of one per-object ground-truth field (``x``, ``vx``, ``visible_fraction``...)."""
    ids = [o["id"] for o in gt["objects"]]
    out = []
    for f in gt["frames"]:
        by_id = {o["id"]: o for o in f["objects"]}
        out.append([by_id[i][key] for i in ids])
    return np.array(out)


def gt_positions(gt: dict) -> np.ndarray:
    """(T, N, 2) ground-truth positions in frame pixels."""
    return np.stack([gt_array(gt, "x"), gt_array(gt, "y")], -1).astype(np.float64)


def gt_velocities(gt: dict) -> np.ndarray:
    return np.stack([gt_array(gt, "vx"), gt_array(gt, "vy")], -1).astype(np.float64)


def match_ground_truth(dets: list[list[Detection]], gt: dict) -> Tracks:
    """Assign detections to the ground-truth objects by colour (see the module docstring)."""
    from scipy.optimize import linear_sum_assignment

    T, N = len(dets), len(gt["objects"])
    colors = [o["color"] for o in gt["objects"]]
    gpos = gt_positions(gt)
    pos = np.full((T, N, 2), np.nan)
    area = np.zeros((T, N))
    shape = np.full((T, N), "", dtype=object)
    border = np.zeros((T, N), bool)
    last = np.full((N, 2), np.nan)
    for t in range(min(T, len(gpos))):
        for c in sorted(set(colors)):
            ids = [i for i in range(N) if colors[i] == c]
            cand = [d for d in dets[t] if d.color == c]
            if not cand:
                continue
            if len(ids) == 1:
                pairs = [(ids[0], max(cand, key=lambda d: d.area))]
            else:
                ref = np.array([last[i] if not np.isnan(last[i, 0]) else gpos[t, i] for i in ids])
                xy = np.array([[d.x, d.y] for d in cand])
                cost = np.linalg.norm(ref[:, None] - xy[None], axis=-1)
                rows, cols = linear_sum_assignment(cost)
                pairs = [(ids[r], cand[k]) for r, k in zip(rows, cols)]
            for i, d in pairs:
                pos[t, i] = (d.x, d.y)
                area[t, i] = d.area
                shape[t, i] = d.shape
                border[t, i] = d.touches_border
                last[i] = (d.x, d.y)
    return Tracks(pos=pos, area=area, shape=shape, border=border)


def velocities(pos: np.ndarray, fps: float) -> np.ndarray:
    """Finite-difference velocities (T, N, 2) px/s: central differences inside, one-sided at the ends;
    NaN where a needed position is missing."""
    T = len(pos)
    v = np.full_like(pos, np.nan)
    if T < 2:
        return v
    v[1:-1] = (pos[2:] - pos[:-2]) * fps / 2
    v[0] = (pos[1] - pos[0]) * fps
    v[-1] = (pos[-1] - pos[-2]) * fps
    return v
