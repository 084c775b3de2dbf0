"""Captions at three levels, the facts behind them, and a checker that catches false captions.

``caption_facts(spec, ground_truth)`` reads what the clip really shows (bounces, collisions, hiding,
leaving the frame come from the ground truth, never from intentions). ``make_captions`` phrases those
facts with templates chosen by a seed. ``parse_caption`` reads the fixed vocabulary back out of any
text, and ``check_caption`` lists every claim in a caption that the facts do not support, and every
required fact it leaves out. The phrase tables are the shared vocabulary for prompt expansion.
"""

from __future__ import annotations

import random
import re

from tenku.world.spec import BACKGROUNDS, COLORS, SIZES, SceneSpec

DIRECTION_PHRASES = {
    "up": ("upward", "straight up", "toward the top"),
    "up-right": ("up and to the right", "diagonally up-right", "toward the top right"),
    "right": ("to the right", "rightward", "toward the right edge"),
    "down-right": ("down and to the right", "diagonally down-right", "toward the bottom right"),
    "down": ("downward", "straight down", "toward the bottom"),
    "down-left": ("down and to the left", "diagonally down-left", "toward the bottom left"),
    "left": ("to the left", "leftward", "toward the left edge"),
    "up-left": ("up and to the left", "diagonally up-left", "toward the top left"),
}
# user-style forms read by parse_caption ("moving up", "heading down-left", ...); never generated
_DIRECTION_WORDS = {"up": ("up", "upwards"), "up-right": ("up-right", "up right", "up and right"),
                    "right": ("right",), "down-right": ("down-right", "down right", "down and right"),
                    "down": ("down", "downwards"), "down-left": ("down-left", "down left", "down and left"),
                    "left": ("left",), "up-left": ("up-left", "up left", "up and left")}
_MOTION_VERBS = ("moving", "moves", "move", "going", "goes", "heading", "heads", "flying", "flies",
                 "rolling", "rolls", "sliding", "slides", "travelling", "traveling", "travels")
PARSE_DIRECTION_PHRASES = {d: DIRECTION_PHRASES[d] + tuple(f"{v} {w}" for v in _MOTION_VERBS
                                                             for w in _DIRECTION_WORDS[d] + DIRECTION_PHRASES[d])
                           for d in DIRECTION_PHRASES}
CAMERA_PHRASES = {
    "right": ("the camera pans right", "the view pans right"),
    "left": ("the camera pans left", "the view pans left"),
    "down": ("the camera tilts down", "the view slides down"),
    "up": ("the camera tilts up", "the view slides up"),
}
STATIC_CAMERA = ("the camera stays still", "the shot is taken with a fixed camera", "it is filmed with a static camera")
SPEED_PHRASES = {
    "slow": ("slowly", "at a slow pace"),
    "medium": ("at a moderate speed", "at a medium pace"),
    "fast": ("quickly", "fast", "at high speed"),
    "very slow": ("very slowly", "at a crawl"),
    "very fast": ("very fast", "extremely quickly"),
}
SIZE_WORDS = {"small": ("small", "little"), "medium": ("medium-sized", "mid-sized"), "large": ("large", "big"),
              "tiny": ("tiny",), "huge": ("huge", "giant")}
SHAPE_WORDS = {"circle": ("ball", "circle", "disc"), "square": ("square", "box", "block"),
               "triangle": ("triangle",)}
BACKGROUND_PHRASES = {name: ((f"{name} background",) if v["kind"] == "plain" else (name,))
                      for name, v in BACKGROUNDS.items()}
OCCLUDER_WORDS = ("bar", "pillar", "band", "screen")
REGION = {(0, 0): "upper left", (0, 1): "upper middle", (0, 2): "upper right",
          (1, 0): "middle left", (1, 1): "centre", (1, 2): "middle right",
          (2, 0): "lower left", (2, 1): "lower middle", (2, 2): "lower right"}
NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
# event word patterns -> the fact that must hold for the words to be allowed
EVENT_PATTERNS = {
    "bounce": r"\bbounc\w*",
    "wall": r"\bwalls?\b",
    "floor": r"\bfloor\b",
    "collision": r"\b(collid\w*|collision\w*|hits?|strikes?)\b",
    "behind": r"\b(behind|hidden|disappears?)\b",
    "reappear": r"\b(reappears?|emerges?|comes out)\b",
    "occluder": r"\b(bar|pillar|band|screen)\b",
    "trail": r"\b(trail|paint\w*)\b",
    "leaves": r"\b(leaves the frame|out of the frame|out of view|exits?)\b",
    "enters": r"\binto view\b",
    "gravity": r"\b(thrown|throws?|arc|arcs|falls?|drops?|dropped|gravity)\b",
    "still": r"\b(motionless|stationary|at rest)\b",
    "pan": r"\b(pans?|panning|tilts?)\b",
    "static_camera": r"\b(static camera|fixed camera|camera stays still)\b",
}


def _region(x: float, y: float, w: int, h: int) -> str:
    col = min(2, max(0, int(3 * x / w)))
    row = min(2, max(0, int(3 * y / h)))
    return REGION[(row, col)]


def _nearest_side(spec: SceneSpec, gt: dict, k: int, i: int) -> str:
    ppu = spec.px_per_unit
    o = next(o for o in gt["frames"][k]["objects"] if o["id"] == i)
    cam = gt["frames"][k]["camera"]
    x, y = (o["x"] + cam[0]) / ppu, (o["y"] + cam[1]) / ppu
    d = {"left": x, "right": spec.world_width - x, "top": y, "bottom": spec.world_height - y}
    return min(d, key=d.get)


def caption_facts(spec: SceneSpec, gt: dict) -> dict:
    """What the clip shows: per object attributes and events taken from the ground truth."""
    T = gt["num_frames"]
    objs = []
    for i, o in enumerate(spec.objects):
        states = [next(p for p in f["objects"] if p["id"] == i) for f in gt["frames"]]
        vis = [s["visible"] for s in states]
        walls = floors = 0
        hits = set()
        for k, f in enumerate(gt["frames"]):
            for a, b in f["collisions"]:
                if i not in (a, b):
                    continue
                if b == -1:
                    if spec.gravity > 0 and _nearest_side(spec, gt, k, i) == "bottom":
                        floors += 1
                    else:
                        walls += 1
                else:
                    hits.add(b if a == i else a)
        occluded = [k for k, v in enumerate(vis) if v == "occluded"]
        seen = [k for k, v in enumerate(vis) if v in ("full", "partial")]
        if spec.gravity > 0:
            motion = "thrown" if o.direction is not None else "dropped"
        elif o.direction is None:
            motion = "still"  # at rest at the start (it may be set moving by a collision)
        else:
            motion = "moving"
        objs.append({
            "id": i, "color": o.color, "shape": o.shape, "size": o.size,
            "start": _region(states[0]["x"], states[0]["y"], spec.width, spec.height) if vis[0] != "out_of_frame"
            else None,
            "motion": motion, "direction": o.direction, "speed": o.speed,
            "wall_bounces": walls, "floor_bounces": floors, "hits": sorted(hits),
            "hidden": bool(occluded), "reappears": bool(occluded and any(k > occluded[0] for k in seen)),
            "leaves_frame": any(v == "out_of_frame" for v in vis[1:]) and vis[0] != "out_of_frame",
            "enters_frame": vis[0] == "out_of_frame" and bool(seen),
            "trail": i in spec.trail,
        })
    cam_dir = None
    if spec.camera_vx or spec.camera_vy:
        cam_dir = ("right" if spec.camera_vx > 0 else "left") if abs(spec.camera_vx) >= abs(spec.camera_vy) \
            else ("down" if spec.camera_vy > 0 else "up")
    return {"scenario": spec.scenario, "num_objects": len(objs), "num_frames": T, "objects": objs,
            "background": spec.background, "camera": {"moves": cam_dir is not None, "direction": cam_dir},
            "occluder": spec.occluder is not None, "floor": spec.gravity > 0 and "bottom" in spec.walls}


def _events_allowed(facts: dict) -> dict[str, bool]:
    objs = facts["objects"]
    return {
        "bounce": any(o["wall_bounces"] or o["floor_bounces"] or o["hits"] for o in objs),
        "wall": any(o["wall_bounces"] for o in objs),
        "floor": facts["floor"],
        "collision": any(o["hits"] for o in objs),
        "behind": any(o["hidden"] for o in objs),
        "reappear": any(o["reappears"] for o in objs),
        "occluder": facts["occluder"],
        "trail": any(o["trail"] for o in objs),
        "leaves": any(o["leaves_frame"] for o in objs),
        "enters": any(o["enters_frame"] for o in objs),
        "gravity": any(o["motion"] in ("thrown", "dropped") for o in objs),
        "still": any(o["motion"] == "still" for o in objs),
        "pan": facts["camera"]["moves"],
        "static_camera": not facts["camera"]["moves"],
    }


def _alternation(phrases) -> str:
    return "|".join(re.escape(p) for p in sorted(phrases, key=len, reverse=True))


def parse_caption(text: str) -> dict:
    """The vocabulary a caption uses: colours, shapes, sizes, directions, speeds, (colour, shape)
    pairs, camera direction, background, count and event words (phrases matched longest first)."""
    s = " " + text.lower() + " "
    found: dict = {"colors": set(), "shapes": set(), "sizes": set(), "directions": set(), "speeds": set(),
                   "pairs": set(), "camera": set(), "backgrounds": set(), "counts": set(), "events": set()}

    def take(table: dict, key: str) -> None:
        nonlocal s
        inv = {p: name for name, ps in table.items() for p in ps}
        pat = re.compile(r"(?<![\w-])(" + _alternation(inv) + r")(?![\w-])")
        for m in pat.finditer(s):
            found[key].add(inv[m.group(1)])
        s = pat.sub(" ; ", s)

    take(BACKGROUND_PHRASES, "backgrounds")
    take(CAMERA_PHRASES, "camera")
    take(PARSE_DIRECTION_PHRASES, "directions")
    take(SPEED_PHRASES, "speeds")
    colors, sizes = _alternation(COLORS), _alternation([w for ws in SIZE_WORDS.values() for w in ws])
    shape_inv = {w: k for k, ws in SHAPE_WORDS.items() for w in ws}
    shapes = _alternation(shape_inv)
    for m in re.finditer(rf"\b({colors})\s+(?:({sizes})\s+)?({shapes})(?:e?s)?\b", s):
        found["pairs"].add((m.group(1), shape_inv[m.group(3)]))
    for m in re.finditer(rf"\b({colors})\b", s):
        found["colors"].add(m.group(1))
    for m in re.finditer(rf"(?<![\w-])({shapes})(?:e?s)?\b", s):
        found["shapes"].add(shape_inv[m.group(1)])
    size_inv = {w: k for k, ws in SIZE_WORDS.items() for w in ws}
    for m in re.finditer(rf"(?<![\w-])({sizes})(?![\w-])", s):
        found["sizes"].add(size_inv[m.group(1)])
    for m in re.finditer(r"\b(one|two|three|four|five|six) (?:objects|shapes|things)\b", s):
        found["counts"].add({v: k for k, v in NUMBERS.items()}[m.group(1)])
    for name, pat in EVENT_PATTERNS.items():
        if re.search(pat, s):
            found["events"].add(name)
    if found["camera"]:
        found["events"].add("pan")
    return found


def check_caption(text: str, facts: dict, level: str = "long") -> list[str]:
    """Every problem with a caption: false claims (any level) and missing required facts.
    Required: the first object's colour, shape and direction (every object's at level "long")."""
    got = parse_caption(text)
    objs = facts["objects"]
    problems = []
    true = {"colors": {o["color"] for o in objs}, "shapes": {o["shape"] for o in objs},
            "sizes": {o["size"] for o in objs}, "speeds": {o["speed"] for o in objs if o["speed"]},
            "directions": {o["direction"] for o in objs if o["direction"]},
            "backgrounds": {facts["background"]}, "counts": {facts["num_objects"]},
            "camera": {facts["camera"]["direction"]} - {None}}
    for key, allowed in true.items():
        for v in sorted(got[key] - allowed, key=str):
            problems.append(f"states {key[:-1] if key != 'camera' else 'camera pan'} {v!r}, which the clip "
                            f"does not show (true: {sorted(allowed, key=str)})")
    real_pairs = {(o["color"], o["shape"]) for o in objs}
    for pair in sorted(got["pairs"] - real_pairs):
        problems.append(f"describes a {pair[0]} {pair[1]}, but no object is one")
    allowed_events = _events_allowed(facts)
    for ev in sorted(got["events"]):
        if not allowed_events[ev]:
            problems.append(f"uses {ev!r} wording, which the clip does not show")
    required = objs if level == "long" else objs[:1]
    for o in required:
        if o["color"] not in got["colors"]:
            problems.append(f"does not mention the colour {o['color']!r} of object {o['id']}")
        if o["shape"] not in got["shapes"]:
            problems.append(f"does not mention the shape {o['shape']!r} of object {o['id']}")
        if o["direction"] and o["direction"] not in got["directions"]:
            problems.append(f"does not mention the direction {o['direction']!r} of object {o['id']}")
    return problems


# ---------------------------------------------------------------- phrasing


def _noun(rng: random.Random, o: dict, size: bool = True, article: bool = True) -> str:
    words = [rng.choice(SIZE_WORDS[o["size"]])] if size else []
    words += [o["color"], rng.choice(SHAPE_WORDS[o["shape"]])]
    np_ = " ".join(words)
    if not article:
        return np_
    return ("an " if np_[0] in "aeiou" else "a ") + np_


def _the(rng: random.Random, o: dict) -> str:
    return f"the {o['color']} {rng.choice(SHAPE_WORDS[o['shape']])}"


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{NUMBERS.get(n, 'several')} times" if n <= 6 else "many times")


def _clause(rng: random.Random, o: dict, facts: dict, detail: bool) -> str:
    """What one object does, as a verb phrase (present tense)."""
    others = {x["id"]: x for x in facts["objects"]}
    dirp = rng.choice(DIRECTION_PHRASES[o["direction"]]) if o["direction"] else ""
    speed = rng.choice(SPEED_PHRASES[o["speed"]]) if (o["speed"] and detail) else ""
    parts = []
    hits = list(o["hits"])
    if o["motion"] == "still" and hits:
        first = hits.pop(0)
        parts.append(f"sits at rest until {_the(rng, others[first])} hits it and sets it moving")
    elif o["motion"] == "still":
        parts.append(rng.choice(("rests motionless", "stays at rest", "sits stationary")))
    elif o["motion"] == "thrown":
        parts.append(rng.choice((f"is thrown {dirp}, flies in an arc and falls",
                                 f"flies {dirp} in an arc, thrown under gravity")))
    elif o["motion"] == "dropped":
        parts.append(rng.choice(("is dropped and falls onto the floor", "drops onto the floor"))
                     if o["floor_bounces"] else "is dropped and falls")
    else:
        verb = rng.choice(("moves", "travels", "glides", "slides"))
        parts.append(" ".join(w for w in (verb, dirp, speed) if w))
    if o["floor_bounces"]:
        parts.append(f"bounces {_times(o['floor_bounces'])}" + ("" if o["motion"] == "dropped" else " on the floor"))
    if o["wall_bounces"]:
        parts.append(rng.choice(("bounces off the walls", "rebounds off the walls")) if o["wall_bounces"] > 1
                     else rng.choice(("bounces off a wall", "rebounds off a wall")))
    for j in hits:
        parts.append(rng.choice(("collides with ", "hits ", "bounces off ")) + _the(rng, others[j]))
    if o["hidden"]:
        word = rng.choice(OCCLUDER_WORDS)
        parts.append(f"passes behind the {word} and comes out on the other side" if o["reappears"]
                     else f"goes behind the {word}")
    if o["trail"]:
        parts.append(rng.choice((f"leaving a {o['color']} paint trail that stays",
                                 f"painting a {o['color']} trail as it goes")))
    if o["leaves_frame"]:
        parts.append(rng.choice(("leaves the frame", "goes out of view")))
    if o["enters_frame"] and facts["camera"]["moves"]:
        parts.append("comes into view as the camera moves")
    if len(parts) == 1:
        return parts[0]
    return ", ".join(parts[:-1]) + " and " + parts[-1]


def _background(rng: random.Random, facts: dict) -> str:
    bg = BACKGROUND_PHRASES[facts["background"]][0]
    return rng.choice((f"on a {bg}", f"over a {bg}", f"against a {bg}")) if "background" in bg \
        else rng.choice((f"on a {bg}", f"across a {bg}"))


def _camera(rng: random.Random, facts: dict) -> str:
    cam = facts["camera"]
    if cam["moves"]:
        return rng.choice(CAMERA_PHRASES[cam["direction"]])
    return rng.choice(STATIC_CAMERA)


def _occluder_sentence(rng: random.Random, facts: dict, spec: SceneSpec) -> str:
    shade = "dark" if spec.occluder_shade == "dark" else "pale"
    return rng.choice((f"A {shade} bar crosses the scene", f"A {shade} screen spans the view"))


def short_caption(rng: random.Random, facts: dict) -> str:
    o = facts["objects"][0]
    n = facts["num_objects"]
    noun = _noun(rng, o, size=False)
    if facts["camera"]["moves"]:
        rest = "" if n == 1 else f" and {NUMBERS.get(n - 1, 'other')} other {'shape' if n == 2 else 'shapes'}"
        return f"{rng.choice(CAMERA_PHRASES[facts['camera']['direction']])} over {noun}{rest}"
    dirp = rng.choice(DIRECTION_PHRASES[o["direction"]]) if o["direction"] else ""
    if o["motion"] == "thrown":
        return f"{noun} thrown {dirp}"
    if o["motion"] == "dropped":
        return f"{noun} bouncing on the floor" if o["floor_bounces"] else f"{noun} falling"
    if o["motion"] == "still":
        return f"{noun} at rest"
    s = f"{noun} moving {dirp}"
    if o["hits"]:
        s += " and hitting " + _the(rng, facts["objects"][o["hits"][0]])
    elif o["wall_bounces"]:
        s += rng.choice((" and bouncing off the walls", ", bouncing around"))
    if o["hidden"]:
        s += " and passing behind a bar" if o["reappears"] else " behind a bar"
    if o["trail"]:
        s += ", leaving a paint trail"
    return s


def medium_caption(rng: random.Random, facts: dict) -> str:
    clauses = [f"{_noun(rng, o)} {_clause(rng, o, facts, detail=True)}" for o in facts["objects"]]
    body = clauses[0] if len(clauses) == 1 else "; ".join(clauses)
    s = f"{body[0].upper()}{body[1:]} {_background(rng, facts)}"
    if facts["camera"]["moves"]:
        s += f", while {_camera(rng, facts)}"
    return s + "."


def long_caption(rng: random.Random, facts: dict, spec: SceneSpec) -> str:
    objs = facts["objects"]
    n = len(objs)
    sents = []
    setting = _background(rng, facts)
    if n == 1:
        sents.append(rng.choice((f"One object {setting}.", f"A single object {setting}.")))
    else:
        sents.append(rng.choice((f"{NUMBERS[n].capitalize()} objects {setting}.",
                                 f"There are {NUMBERS[n]} objects {setting}.")))
    if facts["occluder"]:
        sents.append(_occluder_sentence(rng, facts, spec) + ".")
    for o in objs:
        where = (rng.choice((f"starts in the {o['start']}", f"begins at the {o['start']} of the frame"))
                 if o["start"] else "starts outside the frame")
        sents.append(f"{_noun(rng, o).capitalize()} {where} and {_clause(rng, o, facts, detail=True)}.")
    cam = _camera(rng, facts)
    sents.append(cam[0].upper() + cam[1:] + ".")
    return " ".join(sents)


def make_captions(spec: SceneSpec, gt: dict, seed: int) -> dict[str, str]:
    """Short, medium and long captions of a clip; the phrasing depends on ``seed`` only."""
    facts = caption_facts(spec, gt)
    rng = random.Random(int(seed) * 7919 + 17)
    return {"short": short_caption(rng, facts), "medium": medium_caption(rng, facts),
            "long": long_caption(rng, facts, spec)}


__all__ = ["DIRECTION_PHRASES", "SPEED_PHRASES", "SIZE_WORDS", "SHAPE_WORDS", "CAMERA_PHRASES", "SIZES",
           "caption_facts", "parse_caption", "check_caption", "make_captions"]
