"""Prompt adherence, object permanence and video quality. Every metric is defined here.

**Prompt adherence** (text-to-video; one clip per prompt; the prompt describes a world scene whose
facts come from :func:`tenku.world.captions.caption_facts`). Per clip and attribute, 1 if right:

- colour: every prompted object's colour is found in at least half of the frames where the ground
  truth shows that object at least half visible, and no other palette colour is found in half of
  the frames or more;
- shape: the majority shape class of the first object's colour (largest detection, over frames where
  the ground truth shows it fully and it does not touch the frame edge) is the prompted shape;
- count: the most common number of detections, over the frames where the ground-truth rendering of
  the same scene shows every object fully, equals the number of prompted objects;
- direction (objects that move in a named direction): the displacement of the first object's colour
  from its first to its last detection before its first contact in the ground truth (frames where
  the ground truth shows it fully), snapped to the nearest of the 8 compass directions, is the
  prompted one;
- speed class: the median frame-to-frame speed over the same frames (world units/s) falls in the
  prompted class's range, or is nearer to it than to any other class's range.

Accuracy is the mean over clips where the attribute applies, reported separately for in-distribution
prompts (``test_id``), held-out attribute combinations (``test_comp``) and out-of-range sizes/speeds
(``test_ood``).

**Object permanence** (every generated clip, from its first scored frame):

- count accuracy: fraction of frames whose number of detections equals the number of objects the
  ground truth shows with a visible fraction >= 0.5 (frames where an object is less than 95% visible
  but shows at least 1 px^2 are ambiguous and skipped);
- appearances / disappearances: per clip, the number of times the count of one colour goes up / down
  between consecutive frames where the detection that appeared / vanished does not touch the frame
  edge, is not next to the scene's occluder, and would not cross the frame edge if moved on by its
  own last displacement (a fast object can leave between two frames) (best 0);
- re-emergence: over clips where an object passes behind an occluder and comes out, the fraction where
  the generated video shows it again past the occluder's far edge (a detection of its colour with
  0.5-2x its area, in at least 2 frames from the ground-truth re-emergence on) (best 1).

**Video quality**: VAE reconstruction PSNR (dB, of uint8 frames, capped at 100 for identical frames)
and SSIM (Gaussian window 11, sigma 1.5, on each RGB channel, averaged) on held-out world clips;
temporal flicker as in VBench: ``1 - mean |frame_t+1 - frame_t| / 255`` (1 = no change at all; a
static video scores 1, so read it with the other metrics).
"""

from __future__ import annotations

import math
from collections import Counter

import numpy as np

from tenku import media
from tenku.eval.parser import Detection
from tenku.eval.tracking import gt_array

# --------------------------------------------------------------------------- prompt adherence
ATTRIBUTES = ("color", "shape", "count", "direction", "speed")


def _main_track(dets: list[list[Detection]], color: str) -> list[Detection | None]:
    return [max((d for d in f if d.color == color), key=lambda d: d.area, default=None) for f in dets]


def _motion_window(gt: dict, obj: int = 0) -> int:
    """Last frame index before the object's first contact (wall, floor or object) in the ground truth."""
    for k, f in enumerate(gt["frames"]):
        if any(obj in pair for pair in f["collisions"]):
            return max(k - 1, 1)
    return gt["num_frames"] - 1


def snap_direction(dx: float, dy: float) -> str | None:
    from tenku.world.spec import DIRECTIONS

    n = math.hypot(dx, dy)
    if n < 1e-9:
        return None
    return max(DIRECTIONS, key=lambda k: (dx * DIRECTIONS[k][0] + dy * DIRECTIONS[k][1]) / n)


def speed_class(speed: float) -> str:
    """The class whose range holds ``speed`` (world units/s), else the one with the nearest range."""
    from tenku.world.spec import OOD_SPEEDS, SPEEDS

    ranges = {**SPEEDS, **OOD_SPEEDS}
    return min(ranges, key=lambda k: max(ranges[k][0] - speed, 0.0, speed - ranges[k][1]))


def adherence(dets: list[list[Detection]], facts: dict, gt: dict) -> dict[str, float | None]:
    """Per attribute 1.0 (right), 0.0 (wrong) or None (does not apply) for one generated clip.

    Frames are read where the ground-truth rendering of the prompt's scene shows the object (fully, for
    shape, direction and speed), so objects that enter, leave or hide are judged where they are seen.
    Shape, direction and speed are not judged when another object shares the first object's colour."""
    T = min(len(dets), gt["num_frames"])
    objs = facts["objects"]
    o = objs[0]
    vf = gt_array(gt, "visible_fraction")[:T].astype(np.float64)
    vis = gt_array(gt, "visible")[:T]
    res: dict[str, float | None] = {}
    present = []
    for i, p in enumerate(objs):
        frames = [t for t in range(T) if vf[t, i] >= 0.5] or list(range(T))
        present.append(sum(any(d.color == p["color"] for d in dets[t]) for t in frames) >= 0.5 * len(frames))
    prompted = {p["color"] for p in objs}
    extra = Counter(c for t in range(T) for c in {d.color for d in dets[t]} - prompted)
    res["color"] = float(all(present) and not any(n >= 0.5 * T for n in extra.values()))
    full_frames = [t for t in range(T) if (vis[t] == "full").all()]
    res["count"] = None
    if full_frames:
        counts = Counter(len(dets[t]) for t in full_frames)
        res["count"] = float(counts.most_common(1)[0][0] == len(objs))
    res["shape"] = res["direction"] = res["speed"] = None
    if sum(p["color"] == o["color"] for p in objs) > 1:
        return res
    track = _main_track(dets[:T], o["color"])
    shown = [t for t in range(T) if vis[t, 0] == "full"]
    shapes = [track[t].shape for t in shown if track[t] is not None and not track[t].touches_border]
    res["shape"] = float(bool(shapes) and Counter(shapes).most_common(1)[0][0] == o["shape"])
    if o["motion"] == "moving" and o["direction"] and not facts["camera"]["moves"]:
        end = min(_motion_window(gt, 0), T - 1)
        seen = [(t, track[t]) for t in shown if t <= end and track[t] is not None]
        if len(seen) >= 2:
            d0, d1 = seen[0][1], seen[-1][1]
            res["direction"] = float(snap_direction(d1.x - d0.x, d1.y - d0.y) == o["direction"])
        else:
            res["direction"] = 0.0
        if o["speed"]:
            ppu = float(gt["units"].get("px_per_world_unit", 1.0))
            ok = set(shown)
            steps = [math.hypot(track[t + 1].x - track[t].x, track[t + 1].y - track[t].y) * float(gt["fps"]) / ppu
                     for t in range(end) if t in ok and t + 1 in ok and track[t] is not None
                     and track[t + 1] is not None]
            res["speed"] = float(bool(steps) and speed_class(float(np.median(steps))) == o["speed"])
    return res


def summarize_adherence(clips: list[dict]) -> dict:
    """Accuracy per attribute for ``in_distribution`` (test_id), ``held_out`` (test_comp: held-out
    attribute combinations) and ``out_of_distribution`` (test_ood) prompts, with clip counts."""
    out = {}
    for group, split in (("in_distribution", "test_id"), ("held_out", "test_comp"), ("out_of_distribution", "test_ood")):
        g = {}
        for a in ATTRIBUTES:
            vals = [c["adherence"][a] for c in clips if c["split"] == split and c["adherence"].get(a) is not None]
            if vals:
                g[a] = {"accuracy": float(np.mean(vals)), "clips": len(vals)}
        if g:
            out[group] = g
    return out


# --------------------------------------------------------------------------- object permanence
def _occluder_px(spec: dict | None, gt: dict, t: int, margin: float = 2.0):
    if not spec or spec.get("occluder") is None:
        return None
    ppu = float(gt["units"].get("px_per_world_unit", 1.0))
    cx, cy = gt["frames"][t]["camera"]
    x0, y0, x1, y1 = spec["occluder"]
    return (x0 * ppu - cx - margin, y0 * ppu - cy - margin, x1 * ppu - cx + margin, y1 * ppu - cy + margin)


def _near(d: Detection, box) -> bool:
    if box is None:
        return False
    x0, y0, x1, y1 = d.bbox
    return not (x1 < box[0] or x0 > box[2] or y1 < box[1] or y0 > box[3])


def permanence(dets: list[list[Detection]], gt: dict, spec: dict | None, start: int = 0) -> dict:
    """Count accuracy, appearances, disappearances and re-emergence of one clip (see module docstring)."""
    from tenku.world.spec import shape_area

    T = min(len(dets), gt["num_frames"])
    vf = gt_array(gt, "visible_fraction")[:T].astype(np.float64)
    full_area = np.array([shape_area(o["shape"], float(o["radius_px"])) for o in gt["objects"]])
    good = total = 0
    for t in range(start, T):
        if ((vf[t] < 0.95) & (vf[t] * full_area >= 1.0)).any():
            continue  # an object is partly visible: how many to expect is ambiguous
        total += 1
        good += int(len(dets[t]) == int((vf[t] >= 0.5).sum()))
    H, W = gt["height"], gt["width"]
    appear = vanish = 0
    for t in range(max(start, 1), T):
        box = _occluder_px(spec, gt, t)
        for c in {d.color for d in dets[t]} | {d.color for d in dets[t - 1]}:
            now = [d for d in dets[t] if d.color == c]
            before = [d for d in dets[t - 1] if d.color == c]
            if len(now) > len(before):
                nxt = _largest(dets[t + 1], c) if t + 1 < T else None
                if not any(d.touches_border or _near(d, box) or _leaves(d, nxt, W, H) for d in now):
                    appear += len(now) - len(before)
            if len(now) < len(before):
                prev = _largest(dets[t - 2], c) if t >= 2 else None
                if not any(d.touches_border or _near(d, box) or _leaves(d, prev, W, H) for d in before):
                    vanish += len(before) - len(now)
    out = {"count_accuracy": good / total if total else None, "appearances": appear, "disappearances": vanish,
           "reemerged": None}
    re = _reemergence(dets, gt, spec, start)
    if re is not None:
        out["reemerged"] = re
    return out


def _largest(frame: list[Detection], color: str) -> Detection | None:
    return max((d for d in frame if d.color == color), key=lambda d: d.area, default=None)


def _leaves(d: Detection, other: Detection | None, W: int, H: int) -> bool:
    """Whether d, moved on by its displacement from ``other`` (the frame on the far side in time),
    would lie outside the frame: a fast object can leave or enter between two frames."""
    if other is None:
        return False
    dx, dy = d.x - other.x, d.y - other.y
    x0, y0, x1, y1 = d.bbox
    return x1 + dx <= 0 or y1 + dy <= 0 or x0 + dx >= W or y0 + dy >= H or \
        x0 + dx <= 0 or y0 + dy <= 0 or x1 + dx >= W or y1 + dy >= H


def _reemergence(dets, gt, spec, start) -> float | None:
    if not spec or spec.get("occluder") is None:
        return None
    T = min(len(dets), gt["num_frames"])
    vis = gt_array(gt, "visible")[:T, 0]
    hidden = [t for t in range(T) if vis[t] == "occluded"]
    if not hidden:
        return None
    back = [t for t in range(hidden[0], T) if vis[t] == "full"]
    if not back or back[0] < start:
        return None
    from tenku.world.spec import shape_area

    o = spec["objects"][0]
    box = _occluder_px(spec, gt, back[0], margin=0.0)
    color = gt["objects"][0]["color"]
    area = shape_area(o["shape"], float(gt["objects"][0]["radius_px"]))
    past = 0
    for t in range(back[0], T):
        if any(d.color == color and 0.5 * area <= d.area <= 2.0 * area and (
                (o["vx"] > 0 and d.x > box[2]) or (o["vx"] < 0 and d.x < box[0])
                or (o["vy"] > 0 and d.y > box[3]) or (o["vy"] < 0 and d.y < box[1])) for d in dets[t]):
            past += 1
    return float(past >= min(2, T - back[0]))


def summarize_permanence(clips: list[dict]) -> dict:
    p = [c["permanence"] for c in clips if c.get("permanence")]
    out: dict = {"clips": len(p)}
    ca = [x["count_accuracy"] for x in p if x["count_accuracy"] is not None]
    if ca:
        out["count_accuracy"] = float(np.mean(ca))
    if p:
        out["appearances_per_clip"] = float(np.mean([x["appearances"] for x in p]))
        out["disappearances_per_clip"] = float(np.mean([x["disappearances"] for x in p]))
    re = [x["reemerged"] for x in p if x["reemerged"] is not None]
    if re:
        out["reemergence_rate"] = float(np.mean(re))
        out["reemergence_clips"] = len(re)
    return out


# --------------------------------------------------------------------------- video quality
def flicker_score(frames: np.ndarray) -> float:
    """VBench temporal flicker: 1 - mean |f_t+1 - f_t| / 255 over all pixels and consecutive pairs."""
    f = np.asarray(frames, dtype=np.float64)
    if len(f) < 2:
        return 1.0
    return float(1.0 - np.abs(np.diff(f, axis=0)).mean() / 255.0)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB of two uint8 videos/images, capped at 100 (identical): :func:`tenku.media.psnr`."""
    return media.psnr(a, b, cap=100.0)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Gaussian window 11, sigma 1.5, per channel) of two uint8 (..., H, W, 3) arrays."""
    from scipy.ndimage import gaussian_filter

    x = np.asarray(a, np.float64).reshape(-1, *np.shape(a)[-3:])
    y = np.asarray(b, np.float64).reshape(-1, *np.shape(b)[-3:])
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    sig = (0, 1.5, 1.5, 0)

    def blur(z):
        return gaussian_filter(z, sigma=sig, truncate=3.5)

    mx, my = blur(x), blur(y)
    vx, vy, cxy = blur(x * x) - mx * mx, blur(y * y) - my * my, blur(x * y) - mx * my
    s = ((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())
