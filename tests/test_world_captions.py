"""World captions: true to the clip at every level, varied, and checkable (wrong captions are caught)."""

import numpy as np

from tenku.world import (COLORS, DIRECTIONS, SCENARIOS, SHAPES, SPEEDS, caption_facts, check_caption,
                         make_captions, parse_caption, render_clip, sample_scene)
from tenku.world.captions import DIRECTION_PHRASES


def _clip(seed, split="train", scenario=None):
    spec = sample_scene(seed, split, scenario)
    gt = render_clip(spec)[1]
    return spec, gt, caption_facts(spec, gt)


def test_vocabulary_constants():
    assert len(COLORS) >= 8 and set(SHAPES) == {"circle", "square", "triangle"}
    assert len(DIRECTIONS) == 8 and all(abs(np.hypot(*v) - 1) < 1e-9 for v in DIRECTIONS.values())
    assert set(SPEEDS) == {"slow", "medium", "fast"} and all(lo < hi for lo, hi in SPEEDS.values())
    assert set(DIRECTION_PHRASES) == set(DIRECTIONS)


def test_captions_are_true_for_many_scenes():
    n = 0
    for split in ("train", "test_comp", "test_ood"):
        for scenario in SCENARIOS:
            for seed in range(4):
                spec, gt, facts = _clip(seed * 31 + 7, split, scenario)
                caps = make_captions(spec, gt, seed)
                for level, text in caps.items():
                    assert text and text == text.strip()
                    problems = check_caption(text, facts, level)
                    assert not problems, (split, scenario, level, text, problems)
                    n += 1
                long = parse_caption(caps["long"])
                assert long["colors"] == {o.color for o in spec.objects}
                assert long["shapes"] == {o.shape for o in spec.objects}
                assert long["directions"] == {o.direction for o in spec.objects if o.direction}
                assert long["counts"] <= {len(spec.objects)}
    assert n == 3 * len(SCENARIOS) * 4 * 3


def test_events_only_when_the_ground_truth_shows_them():
    for seed in range(12):
        spec, gt, facts = _clip(seed, "train", "linear")
        caps = make_captions(spec, gt, seed)
        hit_wall = any(c for f in gt["frames"] for c in f["collisions"])
        assert not hit_wall
        assert all("bounc" not in c and "collid" not in c for c in caps.values())
        left = any(o["visible"] == "out_of_frame" for f in gt["frames"] for o in f["objects"])
        assert ("leaves the frame" in caps["long"] or "out of view" in caps["long"]) == left
    for seed in range(6):
        spec, gt, facts = _clip(seed, "train", "bounce_walls")
        o = facts["objects"][0]
        assert o["wall_bounces"] == sum(f["collisions"].count([0, -1]) for f in gt["frames"])
        assert ("bounc" in make_captions(spec, gt, 0)["long"]) == (o["wall_bounces"] > 0)


def test_phrasing_varies_with_the_seed_but_facts_do_not():
    spec, gt, facts = _clip(3, "train", "collision")
    longs = {make_captions(spec, gt, s)["long"] for s in range(12)}
    assert len(longs) >= 6
    assert make_captions(spec, gt, 5) == make_captions(spec, gt, 5)
    assert caption_facts(spec, gt) == facts


def test_wrong_captions_are_caught():
    spec, gt, facts = _clip(0, "train", "linear")
    o = facts["objects"][0]
    good = make_captions(spec, gt, 1)["long"]
    assert check_caption(good, facts) == []
    other_color = next(c for c in COLORS if c != o["color"])
    other_dir = next(d for d in DIRECTIONS if d != o["direction"])
    shape_word = {"circle": "ball", "square": "square", "triangle": "triangle"}[o["shape"]]
    other_shape = {"circle": "square", "square": "triangle", "triangle": "ball"}[o["shape"]]
    wrong = {
        "colour": good.replace(o["color"], other_color),
        "shape": f"a {o['color']} {other_shape} moving {DIRECTION_PHRASES[o['direction']][0]}",
        "direction": f"a {o['color']} {shape_word} moving {DIRECTION_PHRASES[other_dir][0]}",
        "bounce": good + " It bounces off the walls.",
        "collision": good + " It collides with another object.",
        "camera": good + " The camera pans right.",
        "count": good.replace("object", "objects").replace("One objects", "Three objects")
        .replace("A single objects", "Three objects"),
        "missing direction": f"a {o['color']} {shape_word}",
        "missing colour": f"a {shape_word} moving {DIRECTION_PHRASES[o['direction']][0]}",
    }
    for what, text in wrong.items():
        assert check_caption(text, facts, "short"), (what, text)


def test_pairing_errors_are_caught():
    spec, gt, facts = _clip(1, "train", "collision")
    a, b = facts["objects"]
    if a["shape"] == b["shape"] or a["color"] == b["color"]:
        spec, gt, facts = _clip(2, "train", "collision")
        a, b = facts["objects"]
    assert a["shape"] != b["shape"] and a["color"] != b["color"]
    word = {"circle": "ball", "square": "square", "triangle": "triangle"}
    swapped = f"a {a['color']} {word[b['shape']]} hits a {b['color']} {word[a['shape']]}"
    assert any("no object is one" in p for p in check_caption(swapped, facts, "short"))


def test_parse_caption_reads_user_prompts():
    got = parse_caption("A green triangle moving up, then a small red ball thrown to the right on a stone floor")
    assert got["colors"] == {"green", "red"} and got["shapes"] == {"triangle", "circle"}
    assert got["directions"] == {"up", "right"} and got["sizes"] == {"small"}
    assert got["backgrounds"] == {"stone floor"} and {"gravity"} <= got["events"]
    assert ("green", "triangle") in got["pairs"] and ("red", "circle") in got["pairs"]
    got = parse_caption("blue box moving down and to the left very fast; the camera pans left")
    assert got["directions"] == {"down-left"} and got["speeds"] == {"very fast"} and got["camera"] == {"left"}
