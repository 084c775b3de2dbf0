"""Scenarios: seeded samplers of scene specs, one per kind of motion or world-simulator case.

``sample_scene(rng, split, scenario=None, width=64, height=64, fps=8, seconds=2)`` draws a spec that
belongs to ``split`` (see :mod:`tenku.world.splits`). Everything is drawn from the given numpy
Generator in a fixed order, so the same seed gives the same spec.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from tenku.errors import TenkuError
from tenku.world.spec import (BACKGROUNDS, COLORS, DIRECTIONS, OOD_SIZES, OOD_SPEEDS, SHAPES, SIZES, SPEEDS,
                              TEXTURED_BACKGROUNDS, WALL_SIDES, ObjectSpec, SceneSpec, px_per_unit)
from tenku.world.splits import HELD_OUT_COMBOS, check_split_name, held_out_matches, split_violations

ALL_DIRS = tuple(DIRECTIONS)
AXIS_DIRS = ("left", "right", "up", "down")
DARK_BACKGROUNDS = ("black", "dark gray")


def _pick(rng: np.random.Generator, seq):
    seq = list(seq)
    return seq[int(rng.integers(len(seq)))]


@dataclass
class _Ctx:
    rng: np.random.Generator
    split: str
    fw: float  # frame width, world units
    fh: float
    seconds: float
    fps: float
    combo: dict | None  # test_comp: forced on object 0
    ood: str | None  # test_ood: "size" or "speed", forced on object 0

    def u(self, lo: float, hi: float) -> float:
        return float(self.rng.uniform(lo, hi))

    def obj(self, idx: int, shapes=SHAPES, directions=(), speeds=tuple(SPEEDS), direction: str | None = None,
            ood_speeds=tuple(OOD_SPEEDS), colors=tuple(COLORS)) -> dict:
        """Attributes of one object: shape, color, size, radius, direction, speed (class), speed_value."""
        forced = dict(self.combo) if (idx == 0 and self.combo) else {}
        ood = self.ood if idx == 0 else None
        for _ in range(1000):
            a = {"shape": forced.get("shape") or _pick(self.rng, shapes),
                 "color": forced.get("color") or _pick(self.rng, colors)}
            d = forced.get("direction") or direction or (_pick(self.rng, directions) if directions else None)
            a["direction"] = d
            if "size" in forced:
                a["size"] = forced["size"]
            else:
                a["size"] = _pick(self.rng, OOD_SIZES if ood == "size" else SIZES)
            lo, hi = {**SIZES, **OOD_SIZES}[a["size"]]
            a["radius"] = self.u(lo, hi)
            if d is not None and speeds:
                cls = _pick(self.rng, ood_speeds if ood == "speed" else speeds)
                a["speed"] = cls
                lo, hi = {**SPEEDS, **OOD_SPEEDS}[cls]
                a["speed_value"] = self.u(lo, hi)
            else:
                a["speed"], a["speed_value"] = None, 0.0
            if forced or not held_out_matches(a):
                return a
        raise TenkuError("could not draw an object outside the held-out combinations")

    def background(self, textured_only: bool = False) -> str:
        return _pick(self.rng, TEXTURED_BACKGROUNDS if textured_only else BACKGROUNDS)

    def place(self, radii: list[float], w: float, h: float, tries: int = 500) -> list[tuple[float, float]]:
        """Non-overlapping positions fully inside a w x h area (1 unit margin)."""
        for _ in range(tries):
            pts = []
            for r in radii:
                for _ in range(100):
                    p = (self.u(r + 1, w - r - 1), self.u(r + 1, h - r - 1))
                    if all(math.hypot(p[0] - q[0], p[1] - q[1]) > r + s + 2 for q, s in zip(pts, radii)):
                        pts.append(p)
                        break
                else:
                    break
            if len(pts) == len(radii):
                return pts
        raise TenkuError(f"could not place {len(radii)} objects without overlap in a {w:.0f}x{h:.0f} area; "
                         "use a larger frame or fewer objects")


def _velocity(a: dict) -> tuple[float, float]:
    if a["direction"] is None:
        return 0.0, 0.0
    dx, dy = DIRECTIONS[a["direction"]]
    return a["speed_value"] * dx, a["speed_value"] * dy


def _object(a: dict, x: float, y: float, vx: float | None = None, vy: float | None = None,
            elasticity: float = 1.0) -> ObjectSpec:
    if vx is None:
        vx, vy = _velocity(a)
    return ObjectSpec(shape=a["shape"], color=a["color"], size=a["size"], radius=a["radius"], x=x, y=y,
                      vx=vx, vy=vy, direction=a["direction"], speed=a["speed"], elasticity=elasticity)


def _start_on_path(c: _Ctx, lo: float, hi: float, travel: float) -> float:
    """A start coordinate in [lo, hi] such that start + travel stays in [lo, hi] when possible."""
    a, b = lo - min(0.0, travel), hi - max(0.0, travel)
    if a <= b:
        return c.u(a, b)
    return lo if travel > 0 else hi


def _linear(c: _Ctx) -> dict:
    a = c.obj(0, directions=ALL_DIRS)
    vx, vy = _velocity(a)
    m = a["radius"] + 1
    x = _start_on_path(c, m, c.fw - m, vx * c.seconds)
    y = _start_on_path(c, m, c.fh - m, vy * c.seconds)
    return {"objects": (_object(a, x, y),), "background": c.background()}


def _bounce_walls(c: _Ctx) -> dict:
    a = c.obj(0, directions=ALL_DIRS, speeds=("medium", "fast"), ood_speeds=("very fast",))
    vx, vy = _velocity(a)
    r = a["radius"]
    best = None
    for _ in range(200):  # prefer a start from which the first wall is reached early in the clip
        x, y = c.u(r + 1, c.fw - r - 1), c.u(r + 1, c.fh - r - 1)
        hits = [((c.fw - r - x) / vx) if vx > 0 else ((x - r) / -vx) if vx < 0 else math.inf,
                ((c.fh - r - y) / vy) if vy > 0 else ((y - r) / -vy) if vy < 0 else math.inf]
        best = (x, y)
        if 0.15 * c.seconds <= min(hits) <= 0.6 * c.seconds:
            break
    return {"objects": (_object(a, *best),), "background": c.background(), "walls": WALL_SIDES}


def _throw(c: _Ctx) -> dict:
    a = c.obj(0, directions=("left", "right"), speeds=())
    r = a["radius"]
    m = r + 1
    ta = c.u(0.4, 0.55) * c.seconds  # time of the apex
    y0 = c.fh - m - c.u(0.0, 0.1) * c.fh
    h = min(c.u(0.35, 0.6) * c.fh, y0 - m)
    g = 2.0 * h / (ta * ta)
    span = (c.fw - 2 * m) * c.u(0.55, 0.95)
    vx = span / c.seconds
    x0 = c.u(m, c.fw - m - span)
    if a["direction"] == "left":
        x0, vx = c.fw - x0, -vx
    return {"objects": (_object(a, x0, y0, vx, -g * ta),), "background": c.background(), "gravity": g}


def _floor_bounce(c: _Ctx) -> dict:
    a = c.obj(0, shapes=("circle",), speeds=())
    r = a["radius"]
    y0 = r + 1 + c.u(0.0, 0.2) * c.fh
    t1 = c.u(0.25, 0.45) * c.seconds  # time of the first impact
    g = 2.0 * ((c.fh - r) - y0) / (t1 * t1)
    x0 = c.u(r + 1, c.fw - r - 1)
    return {"objects": (_object(a, x0, y0, 0.0, 0.0, elasticity=1.0),), "background": c.background(),
            "gravity": g, "walls": ("left", "right", "bottom"), "floor_elasticity": c.u(0.55, 0.9)}


def _collision(c: _Ctx) -> dict:
    for _ in range(300):
        a = c.obj(0, directions=ALL_DIRS)
        still = c.rng.random() < 0.3
        opposite = {"up": "down", "down": "up", "left": "right", "right": "left", "up-right": "down-left",
                    "down-left": "up-right", "up-left": "down-right", "down-right": "up-left"}[a["direction"]]
        b = c.obj(1, direction=None if still else opposite, directions=(), speeds=() if still else tuple(SPEEDS))
        if still:
            b["direction"], b["speed"], b["speed_value"] = None, None, 0.0
        ux, uy = DIRECTIONS[a["direction"]]
        tc = c.u(0.3, 0.55) * c.seconds
        offset = c.u(-0.3, 0.3) * min(a["radius"], b["radius"])  # impact parameter, across the motion
        cx, cy = c.fw / 2 + c.u(-0.1, 0.1) * c.fw, c.fh / 2 + c.u(-0.1, 0.1) * c.fh
        gap = a["radius"] + b["radius"] + 0.5
        va, vb = _velocity(a), _velocity(b)
        pa = (cx - ux * gap / 2 - va[0] * tc, cy - uy * gap / 2 - va[1] * tc)
        pb = (cx + ux * gap / 2 - uy * offset - vb[0] * tc, cy + uy * gap / 2 + ux * offset - vb[1] * tc)
        ok = all(rad + 1 <= p[0] <= c.fw - rad - 1 and rad + 1 <= p[1] <= c.fh - rad - 1
                 for p, rad in ((pa, a["radius"]), (pb, b["radius"])))
        if ok:
            return {"objects": (_object(a, *pa), _object(b, *pb)), "background": c.background()}
    raise TenkuError(f"could not fit a two-object collision in a {c.fw:.0f}x{c.fh:.0f} frame over "
                     f"{c.seconds} s; use a larger frame or a longer clip")


def _several(c: _Ctx) -> dict:
    n = int(c.rng.integers(2, 5))
    attrs = [c.obj(i, directions=ALL_DIRS) for i in range(n)]
    pts = c.place([a["radius"] for a in attrs], c.fw, c.fh)
    objs = tuple(_object(a, x, y) for a, (x, y) in zip(attrs, pts))
    return {"objects": objs, "background": c.background(), "walls": WALL_SIDES}


def _occluder(c: _Ctx) -> dict:
    fallback = None
    for _ in range(300):
        a = c.obj(0, directions=AXIS_DIRS, speeds=("medium", "fast"))
        r, v = a["radius"], a["speed_value"]
        horizontal = a["direction"] in ("left", "right")
        extent = c.fw if horizontal else c.fh
        across = c.fh if horizontal else c.fw
        travel = v * c.seconds
        bw = 2 * r + v / c.fps + 1.0
        m = r + 1
        if 2 * r + 1 + bw <= travel <= extent - 2 * m:
            s = c.u(m, extent - m - travel)
            centre = c.u(s + r + 0.5 + bw / 2, s + travel - r - 0.5 - bw / 2)
            fallback = None
            break
        fallback = fallback or (a, r, horizontal, extent, across, travel, bw, m)
    else:
        a, r, horizontal, extent, across, travel, bw, m = fallback
        s, centre = m, extent / 2
    if a["direction"] in ("left", "up"):
        s = extent - s
    pos = c.u(r + 1, across - r - 1)
    x, y = (s, pos) if horizontal else (pos, s)
    occ = ((centre - bw / 2, -1.0, centre + bw / 2, c.fh + 1.0) if horizontal
           else (-1.0, centre - bw / 2, c.fw + 1.0, centre + bw / 2))
    if a["direction"] in ("left", "up"):  # mirror the bar with the start
        occ = ((extent - occ[2], occ[1], extent - occ[0], occ[3]) if horizontal
               else (occ[0], extent - occ[3], occ[2], extent - occ[1]))
    bg = c.background()
    return {"objects": (_object(a, x, y),), "background": bg, "occluder": occ,
            "occluder_shade": "light" if bg in DARK_BACKGROUNDS else "dark"}


def _trail(c: _Ctx) -> dict:
    a = c.obj(0, directions=ALL_DIRS)
    r = a["radius"]
    x, y = c.u(r + 1, c.fw - r - 1), c.u(r + 1, c.fh - r - 1)
    return {"objects": (_object(a, x, y),), "background": c.background(), "walls": WALL_SIDES,
            "trail": (0,)}


def _pan(c: _Ctx) -> dict:
    n = int(c.rng.integers(2, 5))
    attrs = [c.obj(i, speeds=()) for i in range(n)]
    horizontal = c.rng.random() < 0.7
    scale = c.u(1.6, 2.2)
    ww, wh = (c.fw * scale, c.fh) if horizontal else (c.fw, c.fh * scale)
    pts = c.place([a["radius"] for a in attrs], ww, wh)
    forward = c.rng.random() < 0.5  # right / down, else left / up
    dist = (ww - c.fw) if horizontal else (wh - c.fh)
    v = dist / c.seconds
    cam = {"camera_x": 0.0 if forward else ww - c.fw, "camera_y": 0.0} if horizontal else \
        {"camera_x": 0.0, "camera_y": 0.0 if forward else wh - c.fh}
    vel = {"camera_vx": v if forward else -v, "camera_vy": 0.0} if horizontal else \
        {"camera_vx": 0.0, "camera_vy": v if forward else -v}
    objs = tuple(_object(a, x, y, 0.0, 0.0) for a, (x, y) in zip(attrs, pts))
    return {"objects": objs, "background": c.background(textured_only=True), "world_width": ww,
            "world_height": wh, **cam, **vel}


@dataclass(frozen=True)
class Scenario:
    name: str
    build: Callable[[_Ctx], dict]
    shapes: tuple[str, ...]  # shapes object 0 may have
    directions: tuple[str, ...]  # directions object 0 may move in (empty: none)
    uses_speed: bool  # test_ood may give object 0 an out-of-range speed (else only an OOD size)
    description: str


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("linear", _linear, SHAPES, ALL_DIRS, True, "uniform linear motion in one of 8 directions"),
    Scenario("bounce_walls", _bounce_walls, SHAPES, ALL_DIRS, True, "an object bouncing off the walls"),
    Scenario("throw", _throw, SHAPES, ("left", "right"), False, "a parabolic throw under gravity"),
    Scenario("floor_bounce", _floor_bounce, ("circle",), (), False,
             "a ball dropped on a floor, bouncing with restitution"),
    Scenario("collision", _collision, SHAPES, ALL_DIRS, True, "a perfectly elastic collision of two objects"),
    Scenario("several", _several, SHAPES, ALL_DIRS, True, "2-4 objects moving and bouncing at once"),
    Scenario("occluder", _occluder, SHAPES, AXIS_DIRS, False, "an object passing behind an occluder"),
    Scenario("trail", _trail, SHAPES, ALL_DIRS, True, "an object leaving a paint trail that stays"),
    Scenario("pan", _pan, SHAPES, (), False, "a camera panning over still objects on a larger floor"),
)}


def _compatible(combo: dict, sc: Scenario) -> bool:
    if "shape" in combo and combo["shape"] not in sc.shapes:
        return False
    if "direction" in combo and combo["direction"] not in sc.directions:
        return False
    return True


def sample_scene(rng: np.random.Generator | int, split: str = "train", scenario: str | None = None,
                 width: int = 64, height: int = 64, fps: float = 8.0, seconds: float = 2.0) -> SceneSpec:
    """Draw a scene spec of ``split`` (and ``scenario``, else a uniformly chosen one)."""
    check_split_name(split)
    if not isinstance(rng, np.random.Generator):
        rng = np.random.default_rng(rng)
    if scenario is not None and scenario not in SCENARIOS:
        raise TenkuError(f"unknown scenario {scenario!r}; expected one of {tuple(SCENARIOS)}")
    if width < 16 or height < 16:
        raise TenkuError(f"world clips need at least 16x16 pixels, got {width}x{height}")
    if not fps > 0 or not seconds > 0:
        raise TenkuError(f"fps and seconds must be positive, got fps={fps}, seconds={seconds}")
    sc = SCENARIOS[scenario] if scenario else _pick(rng, SCENARIOS.values())
    combo = ood = None
    if split == "test_comp":
        combos = [c for c in HELD_OUT_COMBOS if _compatible(c, sc)]
        if not combos:
            raise TenkuError(f"scenario {sc.name!r} has no held-out combination to test")
        combo = _pick(rng, combos)
    elif split == "test_ood":
        ood = "speed" if (sc.uses_speed and rng.random() < 0.5) else "size"
    ppu = px_per_unit(width, height)
    ctx = _Ctx(rng=rng, split=split, fw=width / ppu, fh=height / ppu, seconds=float(seconds), fps=float(fps),
               combo=combo, ood=ood)
    parts = sc.build(ctx)
    spec = SceneSpec(scenario=sc.name, width=int(width), height=int(height), fps=float(fps),
                     seconds=float(seconds), texture_seed=int(rng.integers(2 ** 31)), **parts)
    spec.validate()
    problems = split_violations(spec, split)
    if problems:
        raise TenkuError(f"internal: sampled a {sc.name} scene outside split {split}: {problems}")
    return spec
