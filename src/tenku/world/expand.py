"""The world's prompt expander: short prompts in, the detailed caption style of the world's captions out.

It reads what the user said with the world's caption vocabulary (:mod:`tenku.world.captions`: colours,
shapes, sizes, directions, speeds, backgrounds, camera moves and event words), keeps every attribute it
finds, fills the rest from a generator seeded by (generation seed, prompt), and phrases the result like
a long world caption:

    "a red ball bouncing"  ->  "One object on a stone floor. A large red ball starts in the middle left
    and moves to the right at a moderate speed and bounces off the walls. The camera stays still."

A prompt that already names every slot (each object's colour and shape, its motion, the background and
the camera) is returned unchanged, and so is one that uses none of the vocabulary (the world has nothing
to add to "a cat on a sofa"). The empty prompt stays empty (it is the unconditional prompt). A model
folder names it in its ``sample.json`` (``"expander": "world"``); see :mod:`tenku.pipeline.prompt`.
"""

from __future__ import annotations

import random
import re

import numpy as np

from tenku.world.captions import (BACKGROUND_PHRASES, CAMERA_PHRASES, DIRECTION_PHRASES, NUMBERS, REGION,
                                  SHAPE_WORDS, SIZE_WORDS, SPEED_PHRASES, STATIC_CAMERA, parse_caption)
from tenku.world.spec import COLORS, DIRECTIONS, SHAPES

FILL_SIZES = ("small", "medium", "large")
FILL_SPEEDS = ("slow", "medium", "fast")
FILL_BACKGROUNDS = tuple(BACKGROUND_PHRASES)


def _alt(words) -> str:
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


_SIZE_INV = {w: k for k, ws in SIZE_WORDS.items() for w in ws}
_SHAPE_INV = {w: k for k, ws in SHAPE_WORDS.items() for w in ws}
_NUM_INV = {v: k for k, v in NUMBERS.items()}
_OBJECT_RE = re.compile(
    rf"\b(?:(?P<num>{_alt(_NUM_INV)})\s+)?(?:(?P<size1>{_alt(_SIZE_INV)})\s+)?(?:(?P<color>{_alt(COLORS)})\s+)?"
    rf"(?:(?P<size2>{_alt(_SIZE_INV)})\s+)?(?P<shape>{_alt(_SHAPE_INV)})(?:e?s)?\b"
    rf"|\b(?P<lone>{_alt(COLORS)})\b")


def find_objects(prompt: str) -> list[dict]:
    """Objects the prompt names, in order: {"color", "shape", "size"} (None where unsaid); "two red balls"
    gives two."""
    objs: list[dict] = []
    for m in _OBJECT_RE.finditer(prompt.lower()):
        if m.group("lone"):
            objs.append({"color": m.group("lone"), "shape": None, "size": None})
            continue
        size = m.group("size1") or m.group("size2")
        o = {"color": m.group("color"), "shape": _SHAPE_INV[m.group("shape")],
             "size": _SIZE_INV[size] if size else None}
        objs.extend(dict(o) for _ in range(_NUM_INV.get(m.group("num") or "", 1)))
    return objs[:6]


def _start_region(direction: str | None, rng: random.Random) -> str:
    """Where an object starts so that its motion crosses the frame (moving right: start on the left)."""
    if direction is None:
        return rng.choice(list(REGION.values()))
    dx, dy = DIRECTIONS[direction]
    col = 0 if dx > 0.1 else 2 if dx < -0.1 else 1
    row = 0 if dy > 0.1 else 2 if dy < -0.1 else 1
    return REGION[(row, col)]


def _article(np_: str) -> str:
    return ("an " if np_[0] in "aeiou" else "a ") + np_


class BuiltinExpander:
    """Deterministic (seeded) expansion into the long world-caption style. See the module docstring."""

    name = "builtin"

    def expand(self, prompt: str, seed: int, frames=None) -> tuple[str, str]:
        """``frames``: the given frame (H, W, 3) the video continues from, if any (image-to-video, extend,
        connect). Then the objects and the background are the ones that frame shows (read by
        :func:`tenku.eval.scene.read_scene`), never invented; a frame that is not a world scene keeps the
        prompt as given."""
        text = prompt.strip()
        if not text:
            return prompt, self.name
        scene = None
        if frames is not None:
            from tenku.eval.scene import read_scene

            scene = read_scene(np.asarray(frames))
            if scene is None:
                return prompt, f"{self.name} (the given frames are not a world scene: kept as given)"
        got = parse_caption(text)
        objs = find_objects(text)
        vocab = any(got[k] for k in ("colors", "shapes", "sizes", "directions", "speeds", "backgrounds", "camera",
                                     "counts", "events"))
        if not vocab and scene is None:
            return prompt, f"{self.name} (no world vocabulary: kept as given)"
        events = got["events"]
        moving = bool(got["directions"]) or bool(events & {"gravity", "still", "bounce"})
        complete = (objs and all(o["color"] and o["shape"] for o in objs) and moving and got["backgrounds"]
                    and (got["camera"] or "static_camera" in events))
        if complete and scene is None:
            return prompt, f"{self.name} (complete: kept as given)"
        source = self.name
        if scene is not None:
            got["backgrounds"] = {scene["background"]}
            if scene["objects"]:
                objs = [{k: o[k] for k in ("color", "shape", "size", "x", "y")} for o in scene["objects"]]
                got["counts"] = set()
            source = f"{self.name} (objects and background read from the given frames)"
        rng = random.Random(f"{int(seed)}\x00{text}")
        n = max(len(objs), max(got["counts"], default=1), 1)
        objs = objs + [{"color": None, "shape": None, "size": None} for _ in range(n - len(objs))]
        free = [c for c in COLORS if c not in {o["color"] for o in objs}]
        rng.shuffle(free)
        for o in objs:
            o["color"] = o["color"] or (free.pop() if free else rng.choice(list(COLORS)))
            o["shape"] = o["shape"] or rng.choice(SHAPES)
            o["size"] = o["size"] or rng.choice(FILL_SIZES)
        dirs = sorted(got["directions"])
        speeds = sorted(got["speeds"])
        bg = sorted(got["backgrounds"])[0] if got["backgrounds"] else rng.choice(FILL_BACKGROUNDS)
        sents = [self._setting(rng, n, bg)]
        if events & {"behind", "occluder"}:
            sents.append(rng.choice(("A dark bar stands across the middle of the scene.",
                                     "A pale screen stands in the middle of the view.")))
        for i, o in enumerate(objs):
            direction = dirs[i] if i < len(dirs) else (dirs[0] if dirs else rng.choice(list(DIRECTIONS)))
            speed = speeds[0] if speeds else rng.choice(FILL_SPEEDS)
            thrown = bool(dirs) or bool(re.search(r"\bthrow", text.lower()))
            sents.append(self._object(rng, o, objs, i, direction, speed, events, thrown))
        if got["camera"]:
            cam = rng.choice(CAMERA_PHRASES[sorted(got["camera"])[0]])
        else:
            cam = rng.choice(STATIC_CAMERA)
        sents.append(cam[0].upper() + cam[1:] + ".")
        return " ".join(sents), source

    @staticmethod
    def _setting(rng: random.Random, n: int, bg: str) -> str:
        phrase = BACKGROUND_PHRASES[bg][0]
        where = rng.choice((f"on a {phrase}", f"against a {phrase}")) if "background" in phrase \
            else f"on a {phrase}"
        if n == 1:
            return rng.choice((f"One object {where}.", f"A single object {where}."))
        return f"{NUMBERS.get(n, str(n)).capitalize()} objects {where}."

    @staticmethod
    def _object(rng: random.Random, o: dict, objs: list[dict], i: int, direction: str, speed: str,
                events: set, thrown: bool = True) -> str:
        noun = _article(f"{rng.choice(SIZE_WORDS[o['size']])} {o['color']} {rng.choice(SHAPE_WORDS[o['shape']])}")
        dirp = rng.choice(DIRECTION_PHRASES[direction])
        speedp = rng.choice(SPEED_PHRASES[speed])
        gravity = "gravity" in events or "floor" in events
        if "still" in events and i == len(objs) - 1:  # "... at rest": the last object named
            return f"{noun.capitalize()} starts in the {rng.choice(list(REGION.values()))} and rests motionless."
        parts = []
        if gravity and not thrown:
            parts.append(rng.choice(("is dropped and falls onto the floor", "drops onto the floor")))
            if "bounce" in events:
                parts.append(rng.choice(("bounces twice", "bounces once")))
        elif gravity:
            parts.append(rng.choice((f"is thrown {dirp}, flies in an arc and falls",
                                     f"flies {dirp} in an arc, thrown under gravity")))
            if "bounce" in events:
                parts.append(rng.choice(("bounces twice on the floor", "bounces once on the floor")))
        else:
            parts.append(f"{rng.choice(('moves', 'travels', 'glides'))} {dirp} {speedp}")
            if "bounce" in events or "wall" in events:
                parts.append(rng.choice(("bounces off the walls", "rebounds off the walls")))
        if "collision" in events and len(objs) > 1:
            other = objs[1 if i == 0 else 0]
            parts.append(f"hits the {other['color']} {SHAPE_WORDS[other['shape']][0]}")
        if events & {"behind", "occluder"}:
            parts.append("passes behind the bar and comes out on the other side")
        if "trail" in events:
            parts.append(f"leaving a {o['color']} paint trail that stays")
        clause = parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
        if "x" in o:  # where the given frame shows it
            start = REGION[(min(2, int(o["y"] * 3)), min(2, int(o["x"] * 3)))]
        elif thrown or not gravity:
            start = _start_region(direction, rng)
        else:
            start = rng.choice(("upper left", "upper middle", "upper right"))
        return f"{noun.capitalize()} starts in the {start} and {clause}."
