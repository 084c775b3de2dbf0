"""Physics by extension: the model continues the first frames of a world clip; compare with the simulator.

Definitions (all in frame pixels and seconds; ``k`` = number of given frames, the score covers frames
``k .. T-1``):

- **position error**: mean over objects and frames where the ground truth says the object is fully
  visible of ``|p - p_gt|`` (Euclidean), p the parsed centroid. A fully visible object the parser cannot
  find in the generated frame counts as ``miss_penalty`` = half the frame diagonal.
- **velocity error** (PhyWorld): mean of ``|v - v_gt|`` over the same frames whose neighbours are also
  fully visible (not the last frame), v from central differences of the parsed positions
  ``(p[t+1] - p[t-1]) * fps / 2``; a missing object counts as ``miss_penalty * fps``.
- **floor**: the same two errors measured on the ground-truth video itself (the parser's own error);
  a model's error divided by the floor is 1 for a perfect simulator.
- **acceleration residual** (throws): least-squares parabola through the parsed positions of the thrown
  object over frames ``k-1 .. T-1``; ``|a_fit - (0, g)|`` in px/s^2 (g from the ground truth); fewer than
  4 positions found counts as ``|g|`` (no acceleration seen).
- **momentum / energy error** (two-object collisions happening after the given frames): masses are shape
  areas (the world's density is 1); the incoming momentum P and kinetic energy E come from the ground
  truth just before the first contact; the outgoing ones from the slopes of the parsed positions over
  the 4 frames after it. Errors are ``|P_out - P_in| / |P_in|`` and ``|E_out - E_in| / E_in``; an
  object not found after the contact gives error 1 for both.
"""

from __future__ import annotations

import math

import numpy as np

from tenku.eval.parser import Detection
from tenku.eval.tracking import gt_array, gt_positions, gt_velocities, match_ground_truth, velocities


def _mass(obj: dict) -> float:
    from tenku.world.spec import shape_area

    return float(shape_area(obj["shape"], float(obj["radius_px"])))


def trajectory_errors(dets: list[list[Detection]], gt: dict, start: int) -> dict:
    """Position and velocity errors of one parsed video against its ground truth from frame ``start``."""
    T = min(len(dets), gt["num_frames"])
    fps = float(gt["fps"])
    tr = match_ground_truth(dets[:T], gt)
    gpos, gvel = gt_positions(gt)[:T], gt_velocities(gt)[:T]
    vis = gt_array(gt, "visible")[:T]
    full = vis == "full"
    penalty = 0.5 * math.hypot(gt["width"], gt["height"])
    pe, ve = [], []
    vel = velocities(tr.pos, fps)
    for t in range(start, T):
        for i in range(gpos.shape[1]):
            if not full[t, i]:
                continue
            if np.isnan(tr.pos[t, i, 0]):
                pe.append(penalty)
            else:
                pe.append(float(np.linalg.norm(tr.pos[t, i] - gpos[t, i])))
            if 0 < t < T - 1 and full[t - 1, i] and full[t + 1, i]:  # central difference defined
                if np.isnan(vel[t, i, 0]):
                    ve.append(penalty * fps)
                else:
                    ve.append(float(np.linalg.norm(vel[t, i] - gvel[t, i])))
    found = tr.found[start:T][full[start:T]]
    return {"position_error": float(np.mean(pe)) if pe else None,
            "velocity_error": float(np.mean(ve)) if ve else None,
            "found_fraction": float(found.mean()) if found.size else None,
            "frames_scored": len(pe), "positions": tr.pos.tolist()}


def acceleration_residual(dets: list[list[Detection]], gt: dict, start: int, obj: int = 0) -> float:
    """|a_fit - (0, g)| px/s^2 of object ``obj`` over frames ``start-1 .. T-1`` (see module docstring)."""
    T = min(len(dets), gt["num_frames"])
    g = float(gt["units"].get("gravity_px_per_s2", 0.0))
    tr = match_ground_truth(dets[:T], gt)
    ts = np.arange(T) / float(gt["fps"])
    sel = [t for t in range(max(start - 1, 0), T) if tr.found[t, obj] and not tr.border[t, obj]]
    if len(sel) < 4:
        return abs(g)
    tt = ts[sel]
    ax = 2 * np.polyfit(tt, tr.pos[sel, obj, 0], 2)[0]
    ay = 2 * np.polyfit(tt, tr.pos[sel, obj, 1], 2)[0]
    return float(math.hypot(ax, ay - g))


def first_contact(gt: dict, a: int = 0, b: int = 1) -> int | None:
    for k, f in enumerate(gt["frames"]):
        for pair in f["collisions"]:
            if sorted(pair) == sorted([a, b]):
                return k
    return None


def collision_errors(dets: list[list[Detection]], gt: dict, start: int, window: int = 4) -> dict | None:
    """Momentum and energy errors across the first contact of objects 0 and 1, or None when the contact
    is not inside the scored frames (it must come after the given ones, with 2 frames after it)."""
    T = min(len(dets), gt["num_frames"])
    c = first_contact(gt)
    if c is None or c < start or c + 2 > T - 1:
        return None
    m = np.array([_mass(gt["objects"][i]) for i in (0, 1)])
    gvel = gt_velocities(gt)
    v_in = gvel[c - 1, :2]  # (2 objects, 2)
    p_in = (m[:, None] * v_in).sum(0)
    e_in = float((0.5 * m * (v_in ** 2).sum(-1)).sum())
    tr = match_ground_truth(dets[:T], gt)
    frames = list(range(c + 1, min(c + 1 + window, T)))
    ts = np.array(frames) / float(gt["fps"])
    v_out = []
    for i in (0, 1):
        ok = [j for j, t in enumerate(frames) if tr.found[t, i]]
        if len(ok) < 2:
            return {"momentum_error": 1.0, "energy_error": 1.0, "contact_frame": c}
        xy = tr.pos[[frames[j] for j in ok], i]
        v_out.append([np.polyfit(ts[ok], xy[:, d], 1)[0] for d in (0, 1)])
    v_out = np.array(v_out)
    p_out = (m[:, None] * v_out).sum(0)
    e_out = float((0.5 * m * (v_out ** 2).sum(-1)).sum())
    return {"momentum_error": float(np.linalg.norm(p_out - p_in) / max(np.linalg.norm(p_in), 1e-9)),
            "energy_error": float(abs(e_out - e_in) / max(e_in, 1e-9)), "contact_frame": c}


def clip_physics(gen: list[list[Detection]], ref: list[list[Detection]], gt: dict, scenario: str,
                 start: int) -> dict:
    """Every physics number of one clip: the generated video's and the floor (ground-truth video's)."""
    out = {}
    g, f = trajectory_errors(gen, gt, start), trajectory_errors(ref, gt, start)
    out["position_error"], out["velocity_error"] = g["position_error"], g["velocity_error"]
    out["position_floor"], out["velocity_floor"] = f["position_error"], f["velocity_error"]
    out["found_fraction"] = g["found_fraction"]
    out["positions"], out["positions_ref"] = g["positions"], f["positions"]
    if scenario == "throw":
        out["acceleration_residual"] = acceleration_residual(gen, gt, start)
        out["acceleration_floor"] = acceleration_residual(ref, gt, start)
    if scenario == "collision":
        cg, cf = collision_errors(gen, gt, start), collision_errors(ref, gt, start)
        if cg is not None and cf is not None:
            out["momentum_error"], out["energy_error"] = cg["momentum_error"], cg["energy_error"]
            out["momentum_floor"], out["energy_floor"] = cf["momentum_error"], cf["energy_error"]
    return out


FLOOR_EPS = {"position": 1e-3, "velocity": 1e-2, "acceleration": 1e-2, "momentum": 1e-4, "energy": 1e-4}


def summarize_physics(clips: list[dict]) -> dict:
    """Aggregate clip results: per quantity the mean error, the mean floor and their ratio
    (``mean error / max(mean floor, eps)``), and the number of clips."""
    out: dict = {}
    for q in ("position", "velocity", "acceleration", "momentum", "energy"):
        key = f"{q}_error" if q != "acceleration" else "acceleration_residual"
        vals = [(c[key], c[f"{q}_floor"]) for c in clips if c.get(key) is not None
                and c.get(f"{q}_floor") is not None]
        if not vals:
            continue
        e = float(np.mean([v[0] for v in vals]))
        fl = float(np.mean([v[1] for v in vals]))
        out[q] = {"error": e, "floor": fl, "ratio": e / max(fl, FLOOR_EPS[q]), "clips": len(vals)}
    found = [c["found_fraction"] for c in clips if c.get("found_fraction") is not None]
    if found:
        out["found_fraction"] = float(np.mean(found))
    return out
