"""Simulate a :class:`SceneSpec` with pymunk and sample the state at every frame time.

Bodies have density 1 (mass = area), no rotation (infinite moment) and no friction, so collisions
exchange momentum along the contact normal only and elastic contacts (elasticity 1) conserve kinetic
energy. Walls are thick static segments whose surfaces lie just inside the world border. The step is
``1 / (fps * substeps)`` with about 120 steps per second; a scene in which nothing can touch anything
and nothing accelerates is stepped once per frame (the motion is exact either way). Everything runs
in a fixed order from the spec alone, so the same spec gives the same trajectory bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tenku.world.spec import SceneSpec, shape_area, shape_vertices

WALL = -1  # the id used for walls and the floor in collision pairs
STEPS_PER_SECOND = 120
_WALL_THICKNESS = 1000.0
WALL_INSET_PX = 0.75  # wall surfaces sit this far inside the frame border, so the anti-aliased edge of
# an object touching a wall (and any sub-step penetration) stays inside the frame


@dataclass
class Trajectory:
    """Per-frame state in world units. ``collisions[k]`` lists contacts that began in (t[k-1], t[k]]
    as (id_a, id_b, side) with id_b = WALL and side in left/right/top/bottom for walls, else None."""

    t: np.ndarray  # (T,) seconds
    pos: np.ndarray  # (T, N, 2)
    vel: np.ndarray  # (T, N, 2)
    angle: np.ndarray  # (T, N)
    camera: np.ndarray  # (T, 2) world position of the frame's top-left corner
    collisions: list[list[tuple[int, int, str | None]]]
    trail_points: list[list[tuple[int, float, float]]]  # per object: (frame index reached, x, y)


def _substeps(spec: SceneSpec) -> int:
    interacting = bool(spec.walls) or len(spec.objects) > 1
    if not interacting and spec.gravity == 0.0:
        return 1
    return max(1, math.ceil(STEPS_PER_SECOND / spec.fps))


def simulate(spec: SceneSpec) -> Trajectory:
    import pymunk

    space = pymunk.Space()
    space.gravity = (0.0, float(spec.gravity))
    space.iterations = 30
    space.collision_slop = 0.0
    bodies = []
    shape_ids: dict = {}
    for i, o in enumerate(spec.objects):
        body = pymunk.Body(shape_area(o.shape, o.radius), float("inf"))
        body.position = (o.x, o.y)
        body.velocity = (o.vx, o.vy)
        body.angle = o.angle
        if o.shape == "circle":
            shape = pymunk.Circle(body, o.radius)
        else:
            shape = pymunk.Poly(body, shape_vertices(o.shape, o.radius))
        shape.elasticity = float(o.elasticity)
        shape.friction = 0.0
        shape.collision_type = 1
        space.add(body, shape)
        bodies.append(body)
        shape_ids[shape] = (i, None)
    w, h, th = spec.world_width, spec.world_height, _WALL_THICKNESS
    e = WALL_INSET_PX / spec.px_per_unit
    wall_geometry = {  # segment end points and radius: the surface sits just inside the world border
        "left": ((e - th, -th), (e - th, h + th)), "right": ((w - e + th, -th), (w - e + th, h + th)),
        "top": ((-th, e - th), (w + th, e - th)), "bottom": ((-th, h - e + th), (w + th, h - e + th)),
    }
    for side in spec.walls:
        a, b = wall_geometry[side]
        seg = pymunk.Segment(space.static_body, a, b, th)
        seg.elasticity = float(spec.floor_elasticity) if side == "bottom" else 1.0
        seg.friction = 0.0
        seg.collision_type = 2
        space.add(seg)
        shape_ids[seg] = (WALL, side)

    events: list[tuple[int, int, str | None]] = []

    def begin(arbiter, _space, _data):
        sa, sb = arbiter.shapes
        (ia, side_a), (ib, side_b) = shape_ids[sa], shape_ids[sb]
        if ia == WALL:
            ia, ib, side_b = ib, ia, side_a
        if ib == WALL:
            events.append((ia, WALL, side_b))
        else:
            events.append((min(ia, ib), max(ia, ib), None))

    space.on_collision(begin=begin)

    n, T = len(spec.objects), spec.num_frames
    sub = _substeps(spec)
    dt = 1.0 / (spec.fps * sub)
    pos = np.zeros((T, n, 2))
    vel = np.zeros((T, n, 2))
    ang = np.zeros((T, n))
    collisions: list[list[tuple[int, int, str | None]]] = []
    trail = [[] for _ in range(n)]
    trailing = set(spec.trail)

    def sample(k: int) -> None:
        for i, b in enumerate(bodies):
            pos[k, i] = b.position
            vel[k, i] = b.velocity
            ang[k, i] = b.angle

    sample(0)
    collisions.append([])
    for i in trailing:
        trail[i].append((0, float(pos[0, i, 0]), float(pos[0, i, 1])))
    for k in range(1, T):
        frame_events: list[tuple[int, int, str | None]] = []
        for _ in range(sub):
            events.clear()
            space.step(dt)
            for e in events:
                if e not in frame_events:
                    frame_events.append(e)
                for i in (e[0], e[1]):
                    if i in trailing:  # a corner of the paint trail at the contact point
                        p = bodies[i].position
                        trail[i].append((k, float(p.x), float(p.y)))
        sample(k)
        collisions.append(sorted(frame_events, key=lambda e: (e[0], e[1], e[2] or "")))
        for i in sorted(trailing):
            trail[i].append((k, float(pos[k, i, 0]), float(pos[k, i, 1])))
    t = np.arange(T) / spec.fps
    camera = np.stack([spec.camera_x + spec.camera_vx * t, spec.camera_y + spec.camera_vy * t], axis=1)
    return Trajectory(t=t, pos=pos, vel=vel, angle=ang, camera=camera, collisions=collisions,
                      trail_points=trail)
