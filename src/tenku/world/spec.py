"""Scene specs: the fixed vocabulary of the world and small JSON-serialisable scene descriptions.

Units. A spec is written in *world units*. One world unit is ``min(width, height) / 64`` frame
pixels (``px_per_unit``), so at the default 64x64 size world units and pixels coincide, and the same
kind of scene looks the same at any resolution. Positions are world coordinates (x right, y down,
origin at the top-left corner of the world; the world is larger than the frame only when the camera
pans). Velocities are world units per second, gravity world units per second squared (downwards).

``SPEEDS`` and ``SIZES`` (and their out-of-distribution counterparts) are in world units, which are
pixels and pixels/second at 64 px. ``radius`` is the circumscribed radius of every shape: a square's
corners and a triangle's vertices lie on it (a square of radius r has side r * sqrt(2)).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

from tenku.errors import TenkuError

REFERENCE_SIZE = 64  # the frame short side (px) at which one world unit is one pixel

# Object colours: saturated, at least 30 degrees apart in hue. Backgrounds below are all near-grey,
# so a colour parser can always separate objects from the floor.
COLORS: dict[str, tuple[int, int, int]] = {
    "red": (230, 40, 40),
    "orange": (245, 135, 20),
    "yellow": (235, 215, 25),
    "green": (40, 185, 60),
    "cyan": (25, 200, 215),
    "blue": (45, 85, 235),
    "purple": (145, 65, 215),
    "magenta": (225, 45, 175),
}
SHAPES = ("circle", "square", "triangle")
SHAPE_NOUNS = {"circle": ("ball", "circle", "disc"), "square": ("square", "box", "block"),
               "triangle": ("triangle", "triangle", "wedge")}
# Circumscribed radius ranges (world units) of each size class (training ranges).
SIZES: dict[str, tuple[float, float]] = {"small": (3.0, 4.0), "medium": (5.0, 6.5), "large": (8.0, 9.5)}
# Out-of-distribution sizes (only in the test_ood split).
OOD_SIZES: dict[str, tuple[float, float]] = {"tiny": (1.8, 2.4), "huge": (11.5, 13.0)}
# Speed classes (world units per second, i.e. px/s at 64 px): training ranges, with gaps between them.
SPEEDS: dict[str, tuple[float, float]] = {"slow": (6.0, 11.0), "medium": (14.0, 20.0), "fast": (24.0, 30.0)}
OOD_SPEEDS: dict[str, tuple[float, float]] = {"very slow": (2.0, 3.5), "very fast": (36.0, 44.0)}
_S = math.sqrt(0.5)
# 8 directions in frame coordinates (y down): unit vectors.
DIRECTIONS: dict[str, tuple[float, float]] = {
    "up": (0.0, -1.0), "up-right": (_S, -_S), "right": (1.0, 0.0), "down-right": (_S, _S),
    "down": (0.0, 1.0), "down-left": (-_S, _S), "left": (-1.0, 0.0), "up-left": (-_S, -_S),
}
COMPASS = {"up": "north", "up-right": "north-east", "right": "east", "down-right": "south-east",
           "down": "south", "down-left": "south-west", "left": "west", "up-left": "north-west"}
# Backgrounds: plain near-grey colours and textured floors (kind, base rgb, second rgb).
BACKGROUNDS: dict[str, dict] = {
    "black": {"kind": "plain", "rgb": (18, 18, 20)},
    "white": {"kind": "plain", "rgb": (238, 238, 235)},
    "gray": {"kind": "plain", "rgb": (120, 120, 122)},
    "dark gray": {"kind": "plain", "rgb": (62, 62, 66)},
    "checkered floor": {"kind": "checker", "rgb": (150, 150, 150), "rgb2": (105, 105, 108), "cell": 8.0},
    "stone floor": {"kind": "noise", "rgb": (128, 124, 118), "amp": 16.0, "cell": 6.0},
}
TEXTURED_BACKGROUNDS = tuple(k for k, v in BACKGROUNDS.items() if v["kind"] != "plain")
OCCLUDER_RGB = {"dark": (48, 44, 40), "light": (200, 196, 188)}
WALL_SIDES = ("left", "right", "top", "bottom")


def frames_for(seconds: float, fps: float) -> int:
    """Number of frames of a clip: ``round(seconds * fps) + 1`` (both ends included; 2 s at 8 fps = 17)."""
    return int(round(seconds * fps)) + 1


def px_per_unit(width: int, height: int) -> float:
    return min(width, height) / REFERENCE_SIZE


def shape_area(shape: str, radius: float) -> float:
    """Area of a shape with circumscribed radius ``radius``."""
    if shape == "circle":
        return math.pi * radius * radius
    if shape == "square":
        return 2.0 * radius * radius
    return 3.0 * math.sqrt(3.0) / 4.0 * radius * radius


def shape_vertices(shape: str, radius: float, angle: float = 0.0) -> list[tuple[float, float]]:
    """Polygon vertices (body-relative, then rotated by ``angle``), counter-clockwise on screen."""
    if shape == "square":
        base = [(-1, -1), (1, -1), (1, 1), (-1, 1)]
        pts = [(x * radius * _S, y * radius * _S) for x, y in base]
    elif shape == "triangle":  # pointing up on screen (y down)
        pts = [(radius * math.cos(a), radius * math.sin(a))
               for a in (-math.pi / 2, -math.pi / 2 + 2 * math.pi / 3, -math.pi / 2 + 4 * math.pi / 3)]
    else:
        raise TenkuError(f"shape {shape!r} has no vertices (expected square or triangle)")
    c, s = math.cos(angle), math.sin(angle)
    return [(x * c - y * s, x * s + y * c) for x, y in pts]


@dataclass(frozen=True)
class ObjectSpec:
    shape: str
    color: str
    size: str  # a SIZES or OOD_SIZES class name
    radius: float  # circumscribed radius, world units
    x: float
    y: float
    vx: float = 0.0
    vy: float = 0.0
    direction: str | None = None  # the named direction of the initial motion (None: still or dropped)
    speed: str | None = None  # the speed class of the initial motion (None: not a speed-class motion)
    elasticity: float = 1.0
    angle: float = 0.0

    @property
    def rgb(self) -> tuple[int, int, int]:
        return COLORS[self.color]

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "ObjectSpec":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise TenkuError(f"unknown object spec keys {sorted(unknown)}; expected some of {sorted(known)}")
        obj = cls(**d)
        obj.validate()
        return obj

    def validate(self) -> None:
        if self.shape not in SHAPES:
            raise TenkuError(f"unknown shape {self.shape!r}; expected one of {SHAPES}")
        if self.color not in COLORS:
            raise TenkuError(f"unknown colour {self.color!r}; expected one of {tuple(COLORS)}")
        if self.size not in SIZES and self.size not in OOD_SIZES:
            raise TenkuError(f"unknown size {self.size!r}; expected one of {tuple(SIZES) + tuple(OOD_SIZES)}")
        if not self.radius > 0:
            raise TenkuError(f"object radius must be positive, got {self.radius}")
        if self.direction is not None and self.direction not in DIRECTIONS:
            raise TenkuError(f"unknown direction {self.direction!r}; expected one of {tuple(DIRECTIONS)}")
        if self.speed is not None and self.speed not in SPEEDS and self.speed not in OOD_SPEEDS:
            raise TenkuError(f"unknown speed class {self.speed!r}; expected one of "
                             f"{tuple(SPEEDS) + tuple(OOD_SPEEDS)}")


@dataclass(frozen=True)
class SceneSpec:
    """A whole scene. ``world_width``/``world_height`` default to the frame size in world units."""

    scenario: str
    width: int
    height: int
    fps: float
    seconds: float
    background: str
    objects: tuple[ObjectSpec, ...]
    gravity: float = 0.0
    walls: tuple[str, ...] = ()  # subset of WALL_SIDES: elastic static walls at the world border
    floor_elasticity: float = 1.0
    world_width: float = 0.0
    world_height: float = 0.0
    camera_x: float = 0.0  # world position of the frame's top-left corner at t = 0
    camera_y: float = 0.0
    camera_vx: float = 0.0  # camera velocity, world units per second
    camera_vy: float = 0.0
    occluder: tuple[float, float, float, float] | None = None  # x0, y0, x1, y1 in world units
    occluder_shade: str = "dark"
    trail: tuple[int, ...] = ()  # ids of objects that leave a persistent paint trail
    trail_width: float = 1.5  # world units
    texture_seed: int = 0

    def __post_init__(self):
        ppu = px_per_unit(self.width, self.height)
        if not self.world_width:
            object.__setattr__(self, "world_width", self.width / ppu)
        if not self.world_height:
            object.__setattr__(self, "world_height", self.height / ppu)

    @property
    def num_frames(self) -> int:
        return frames_for(self.seconds, self.fps)

    @property
    def px_per_unit(self) -> float:
        return px_per_unit(self.width, self.height)

    @property
    def frame_width_units(self) -> float:
        return self.width / self.px_per_unit

    @property
    def frame_height_units(self) -> float:
        return self.height / self.px_per_unit

    def to_dict(self) -> dict:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["objects"] = [o.to_dict() for o in self.objects]
        d["walls"] = list(self.walls)
        d["trail"] = list(self.trail)
        d["occluder"] = list(self.occluder) if self.occluder is not None else None
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "SceneSpec":
        if not isinstance(d, dict):
            raise TenkuError(f"a scene spec must be a JSON object, got {type(d).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise TenkuError(f"unknown scene spec keys {sorted(unknown)}; expected some of {sorted(known)}")
        missing = {"scenario", "width", "height", "fps", "seconds", "background", "objects"} - set(d)
        if missing:
            raise TenkuError(f"scene spec is missing {sorted(missing)}")
        kw = dict(d)
        kw["objects"] = tuple(ObjectSpec.from_dict(o) for o in d["objects"])
        kw["walls"] = tuple(d.get("walls", ()))
        kw["trail"] = tuple(int(i) for i in d.get("trail", ()))
        if d.get("occluder") is not None:
            kw["occluder"] = tuple(float(v) for v in d["occluder"])
        spec = cls(**kw)
        spec.validate()
        return spec

    def validate(self) -> None:
        if self.width < 8 or self.height < 8:
            raise TenkuError(f"frame size must be at least 8x8, got {self.width}x{self.height}")
        if not self.fps > 0 or not self.seconds > 0:
            raise TenkuError(f"fps and seconds must be positive, got fps={self.fps}, seconds={self.seconds}")
        if self.background not in BACKGROUNDS:
            raise TenkuError(f"unknown background {self.background!r}; expected one of {tuple(BACKGROUNDS)}")
        bad = set(self.walls) - set(WALL_SIDES)
        if bad:
            raise TenkuError(f"unknown wall sides {sorted(bad)}; expected some of {WALL_SIDES}")
        if not self.objects:
            raise TenkuError("a scene needs at least one object")
        for i in self.trail:
            if not 0 <= i < len(self.objects):
                raise TenkuError(f"trail object id {i} is not an object of the scene (0..{len(self.objects) - 1})")
        for o in self.objects:
            o.validate()
