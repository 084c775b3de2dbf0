"""One world clip: simulate, render, and assemble the ground truth and captions of a scene spec."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tenku.world.physics import Trajectory, simulate
from tenku.world.render import render
from tenku.world.spec import SceneSpec

FULL = 0.999  # visible fraction at or above which an object counts as fully visible
GONE = 0.001  # fraction at or below which nothing of it is seen


@dataclass
class Clip:
    frames: np.ndarray  # (T, H, W, 3) uint8
    ground_truth: dict
    captions: dict[str, str]
    meta: dict
    trajectory: Trajectory


def visibility_state(visible: float, in_frame: float) -> str:
    if in_frame <= GONE:
        return "out_of_frame"
    if visible >= FULL:
        return "full"
    if visible <= GONE:
        return "occluded"
    return "partial"


def units(spec: SceneSpec) -> dict:
    ppu = spec.px_per_unit
    return {
        "t": "seconds from the first frame",
        "x, y": "pixels in frame coordinates: x right, y down, origin at the top-left corner of the frame, "
                "pixel centres at +0.5, after subtracting the camera offset",
        "vx, vy": "pixels per second in frame coordinates (the time derivative of x, y; add the camera "
                  "velocity to get motion over the floor)",
        "angle": "radians, clockwise on screen",
        "radius_px": "circumscribed radius in pixels (a square's corners and a triangle's vertices lie on it)",
        "camera": "pixels: world position of the frame's top-left corner (world x = x + camera x)",
        "collisions": "pairs [id_a, id_b] of contacts that began since the previous frame; id_b = -1 is a "
                      "wall or the floor",
        "visible_fraction": "rendered coverage of the object inside the frame and not hidden by anything "
                            "drawn over it, divided by its whole coverage",
        "world_unit": f"1 world unit = {ppu:g} px (min(width, height) / 64 px); scene specs are in world units",
        "px_per_world_unit": ppu,
        "gravity_px_per_s2": float(spec.gravity * ppu),
        "world_size_px": [float(spec.world_width * ppu), float(spec.world_height * ppu)],
    }


def _r(v: float, nd: int = 4) -> float:
    return float(round(float(v), nd))


def ground_truth(spec: SceneSpec, traj: Trajectory, visible: np.ndarray, in_frame: np.ndarray) -> dict:
    ppu = spec.px_per_unit
    cam_v = np.array([spec.camera_vx, spec.camera_vy])
    objects = [{"id": i, "shape": o.shape, "color": o.color, "rgb": list(o.rgb), "size": o.size,
                "radius_px": _r(o.radius * ppu)} for i, o in enumerate(spec.objects)]
    frames = []
    for k in range(len(traj.t)):
        cam = traj.camera[k]
        objs = []
        for i in range(len(spec.objects)):
            x, y = (traj.pos[k, i] - cam) * ppu
            vx, vy = (traj.vel[k, i] - cam_v) * ppu
            objs.append({"id": i, "x": _r(x), "y": _r(y), "vx": _r(vx), "vy": _r(vy),
                         "angle": _r(traj.angle[k, i]),
                         "visible": visibility_state(visible[k, i], in_frame[k, i]),
                         "visible_fraction": _r(visible[k, i])})
        frames.append({"t": _r(traj.t[k], 6), "camera": [_r(cam[0] * ppu), _r(cam[1] * ppu)],
                       "objects": objs, "collisions": [[a, b] for a, b, _ in traj.collisions[k]]})
    return {"units": units(spec), "width": spec.width, "height": spec.height, "fps": spec.fps,
            "num_frames": len(traj.t), "objects": objects, "frames": frames}


def render_clip(spec: SceneSpec) -> tuple[np.ndarray, dict, Trajectory]:
    """Frames (T, H, W, 3) uint8, ground truth dict and trajectory of a spec (no captions)."""
    spec.validate()
    traj = simulate(spec)
    frames, visible, in_frame = render(spec, traj)
    return frames, ground_truth(spec, traj, visible, in_frame), traj


def make_clip(spec: SceneSpec, seed: int = 0) -> Clip:
    """Everything a shard record needs. ``seed`` picks the caption phrasing; frames depend on the spec only."""
    from tenku.world.captions import make_captions

    frames, gt, traj = render_clip(spec)
    captions = make_captions(spec, gt, seed)
    meta = {"scenario": spec.scenario, "spec": spec.to_dict(), "seed": int(seed)}
    return Clip(frames=frames, ground_truth=gt, captions=captions, meta=meta, trajectory=traj)
