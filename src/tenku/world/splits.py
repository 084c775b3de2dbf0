"""Splits for generalisation tests (PhyWorld-style).

- ``train``: every object uses training sizes/speeds and matches no held-out combination.
- ``test_id``: the same distribution as train, with clip seeds train never uses.
- ``test_comp``: the first object matches one held-out attribute combination (each attribute is seen
  in training, never this combination); everything else as in train.
- ``test_ood``: the first object has a size or speed outside the training ranges (``OOD_SIZES``,
  ``OOD_SPEEDS``); no held-out combination.
"""

from __future__ import annotations

from tenku.errors import TenkuError
from tenku.world.spec import OOD_SIZES, OOD_SPEEDS, SIZES, SPEEDS, ObjectSpec, SceneSpec

SPLITS = ("train", "test_id", "test_comp", "test_ood")

# An object matches a combination when every listed attribute is equal.
HELD_OUT_COMBOS: tuple[dict[str, str], ...] = (
    {"color": "green", "shape": "triangle", "direction": "up"},
    {"color": "red", "shape": "square", "direction": "left"},
    {"color": "blue", "shape": "circle", "direction": "down-right"},
    {"color": "yellow", "shape": "triangle", "direction": "right"},
    {"color": "purple", "shape": "square", "size": "large"},
    {"color": "cyan", "shape": "circle", "size": "small"},
)


def check_split_name(split: str) -> str:
    if split not in SPLITS:
        raise TenkuError(f"unknown split {split!r}; expected one of {SPLITS}")
    return split


def combo_matches(obj: ObjectSpec | dict, combo: dict[str, str]) -> bool:
    get = obj.get if isinstance(obj, dict) else (lambda k: getattr(obj, k))
    return all(get(k) == v for k, v in combo.items())


def held_out_matches(obj: ObjectSpec | dict) -> list[dict[str, str]]:
    return [c for c in HELD_OUT_COMBOS if combo_matches(obj, c)]


def is_ood(obj: ObjectSpec) -> bool:
    return obj.size in OOD_SIZES or (obj.speed is not None and obj.speed in OOD_SPEEDS)


def in_training_ranges(obj: ObjectSpec) -> bool:
    lo, hi = SIZES.get(obj.size, (None, None))
    if lo is None or not lo <= obj.radius <= hi:
        return False
    if obj.speed is not None:
        lo, hi = SPEEDS.get(obj.speed, (None, None))
        if lo is None or not lo - 1e-9 <= (obj.vx ** 2 + obj.vy ** 2) ** 0.5 <= hi + 1e-9:
            return False
    return True


def split_violations(spec: SceneSpec, split: str) -> list[str]:
    """Reasons a spec does not belong to ``split`` (empty when it does)."""
    check_split_name(split)
    problems = []
    for i, o in enumerate(spec.objects):
        combos = held_out_matches(o)
        first = i == 0
        if combos and not (split == "test_comp" and first):
            problems.append(f"object {i} ({o.color} {o.shape}) matches held-out combination {combos[0]}")
        if not in_training_ranges(o) and not (split == "test_ood" and first):
            problems.append(f"object {i} has size/speed outside the training ranges ({o.size}, {o.speed})")
    if split == "test_comp" and not held_out_matches(spec.objects[0]):
        problems.append("test_comp: the first object matches no held-out combination")
    if split == "test_ood" and not is_ood(spec.objects[0]):
        problems.append("test_ood: the first object has neither an OOD size nor an OOD speed")
    return problems
