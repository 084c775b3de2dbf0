"""World scenes: specs, determinism, physical laws in the ground truth, renderer vs ground truth, splits."""

import json

import numpy as np
import pytest

from tenku.errors import TenkuError
from tenku.world import (BACKGROUNDS, HELD_OUT_COMBOS, SCENARIOS, SceneSpec, render_clip, sample_scene,
                         split_violations)
from tenku.world.spec import OOD_SIZES, OOD_SPEEDS, SIZES, SPEEDS, ObjectSpec, frames_for, shape_area
from tenku.world.splits import held_out_matches


def test_frames_rule():
    assert frames_for(2, 8) == 17
    assert sample_scene(0, "train", "linear", seconds=1.5, fps=10).num_frames == 16


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_spec_json_roundtrip_and_determinism(scenario):
    spec = sample_scene(np.random.default_rng(11), "train", scenario)
    again = SceneSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert sample_scene(np.random.default_rng(11), "train", scenario) == spec
    f1, gt1, _ = render_clip(spec)
    f2, gt2, _ = render_clip(again)
    assert f1.dtype == np.uint8 and f1.shape == (17, 64, 64, 3)
    assert np.array_equal(f1, f2)
    assert json.dumps(gt1) == json.dumps(gt2)
    assert gt1["num_frames"] == 17 and len(gt1["frames"]) == 17 and gt1["units"]["px_per_world_unit"] == 1.0


def test_different_seeds_give_different_scenes():
    a, b = sample_scene(1, "train", "several"), sample_scene(2, "train", "several")
    assert a != b
    assert not np.array_equal(render_clip(a)[0], render_clip(b)[0])


def test_any_size_and_aspect_ratio():
    spec = sample_scene(3, "train", "bounce_walls", width=96, height=48, fps=12, seconds=1.0)
    frames, gt, _ = render_clip(spec)
    assert frames.shape == (13, 48, 96, 3)
    assert gt["units"]["px_per_world_unit"] == 0.75
    for f in gt["frames"]:  # inside the walls at every frame
        o = f["objects"][0]
        assert 0 <= o["x"] <= 96 and 0 <= o["y"] <= 48


def test_bad_specs_are_rejected_clearly():
    d = sample_scene(0, "train", "linear").to_dict()
    with pytest.raises(TenkuError, match="unknown colour 'teal'"):
        SceneSpec.from_dict({**d, "objects": [{**d["objects"][0], "color": "teal"}]})
    with pytest.raises(TenkuError, match="unknown scene spec keys"):
        SceneSpec.from_dict({**d, "gravityy": 3})
    with pytest.raises(TenkuError, match="unknown scenario"):
        sample_scene(0, "train", "juggling")
    with pytest.raises(TenkuError, match="unknown split"):
        sample_scene(0, "validation")


def test_uniform_motion_has_constant_velocity():
    for seed in range(8):
        gt = render_clip(sample_scene(seed, "train", "linear"))[1]
        xs = np.array([[f["objects"][0]["x"], f["objects"][0]["y"]] for f in gt["frames"]])
        vs = np.array([[f["objects"][0]["vx"], f["objects"][0]["vy"]] for f in gt["frames"]])
        assert np.allclose(vs, vs[0], atol=1e-3)
        assert np.allclose(np.diff(xs, axis=0) * gt["fps"], vs[0], atol=2e-3)
        assert np.linalg.norm(vs[0]) > 1.0


def test_throw_accelerates_at_gravity():
    for seed in range(6):
        spec = sample_scene(seed, "train", "throw")
        gt = render_clip(spec)[1]
        g = gt["units"]["gravity_px_per_s2"]
        assert g > 0
        vy = np.array([f["objects"][0]["vy"] for f in gt["frames"]])
        vx = np.array([f["objects"][0]["vx"] for f in gt["frames"]])
        y = np.array([f["objects"][0]["y"] for f in gt["frames"]])
        assert np.allclose(np.diff(vy) * gt["fps"], g, rtol=1e-3)
        assert np.allclose(vx, vx[0], atol=1e-3)
        assert np.allclose(np.diff(y, 2) * gt["fps"] ** 2, g, rtol=2e-2)
        assert vy[0] < 0 < vy[-1]  # up, then down: a parabola


def test_elastic_collision_conserves_momentum_and_energy():
    checked = 0
    for seed in range(12):
        gt = render_clip(sample_scene(seed, "train", "collision"))[1]
        frames = gt["frames"]
        hit = [k for k, f in enumerate(frames) if [0, 1] in f["collisions"]]
        assert hit, f"seed {seed}: the two objects never collide"
        m = np.array([shape_area(o["shape"], o["radius_px"]) for o in gt["objects"]])

        def state(f):
            v = np.array([[o["vx"], o["vy"]] for o in f["objects"]])
            return (m[:, None] * v).sum(0), (0.5 * m * (v ** 2).sum(1)).sum(), v

        p0, e0, v0 = state(frames[hit[0] - 1])
        p1, e1, v1 = state(frames[-1])
        assert not np.allclose(v0, v1)  # velocities really changed
        assert np.linalg.norm(p1 - p0) <= 0.01 * np.linalg.norm(p0)
        assert abs(e1 - e0) <= 0.01 * e0
        checked += 1
    assert checked == 12


def test_floor_bounce_restitution():
    spec = sample_scene(4, "train", "floor_bounce")
    gt = render_clip(spec)[1]
    hits = [k for k, f in enumerate(gt["frames"]) if [0, -1] in f["collisions"]]
    assert hits
    k = hits[0]
    vy = [f["objects"][0]["vy"] for f in gt["frames"]]
    # just before the bounce the ball falls (vy > 0), just after it rises more slowly (restitution < 1)
    assert vy[k - 1] > 0 > vy[k]
    assert abs(vy[k]) < vy[k - 1] + gt["units"]["gravity_px_per_s2"] / gt["fps"]


def test_walls_keep_objects_inside_and_report_contacts():
    for seed in range(6):
        gt = render_clip(sample_scene(seed, "train", "bounce_walls"))[1]
        assert any(c[1] == -1 for f in gt["frames"] for c in f["collisions"])
        for f in gt["frames"]:
            for o, spec_o in zip(f["objects"], gt["objects"]):
                assert o["visible"] == "full"


def _centroid_errors(seed_range, scenario):
    errs = {}
    for seed in seed_range:
        spec = sample_scene(seed, "train", scenario)
        if BACKGROUNDS[spec.background]["kind"] != "plain":
            spec = SceneSpec.from_dict({**spec.to_dict(), "background": "gray"})
        frames, gt, _ = render_clip(spec)
        bg = np.array(BACKGROUNDS[spec.background]["rgb"], float)
        o = gt["objects"][0]
        rgb = np.array(o["rgb"], float)
        ys, xs = np.mgrid[0:spec.height, 0:spec.width] + 0.5
        for k, f in enumerate(gt["frames"]):
            st = f["objects"][0]
            if st["visible"] != "full":
                continue
            img = frames[k].astype(float)
            a = np.clip(((img - bg) @ (rgb - bg)) / ((rgb - bg) @ (rgb - bg)), 0, 1)
            cx, cy = (a * xs).sum() / a.sum(), (a * ys).sum() / a.sum()
            errs.setdefault(o["shape"], []).append(float(np.hypot(cx - st["x"], cy - st["y"])))
    return errs


def test_rendered_centroid_matches_ground_truth_for_every_shape():
    errs = _centroid_errors(range(30), "linear")
    assert set(errs) == {"circle", "square", "triangle"}
    for shape, e in errs.items():
        assert max(e) < 0.5, (shape, max(e))


def test_centroid_check_catches_a_wrong_position():
    spec = sample_scene(0, "train", "linear")
    spec = SceneSpec.from_dict({**spec.to_dict(), "background": "gray"})
    frames, gt, _ = render_clip(spec)
    shifted = SceneSpec.from_dict({**spec.to_dict(), "objects": [
        {**spec.objects[0].to_dict(), "x": spec.objects[0].x + 1.0}]})
    frames2 = render_clip(shifted)[0]
    bg = np.array(BACKGROUNDS["gray"]["rgb"], float)
    rgb = np.array(gt["objects"][0]["rgb"], float)
    a = np.clip(((frames2[0].astype(float) - bg) @ (rgb - bg)) / ((rgb - bg) @ (rgb - bg)), 0, 1)
    cx = (a * (np.arange(64) + 0.5)[None, :]).sum() / a.sum()
    assert abs(cx - gt["frames"][0]["objects"][0]["x"]) > 0.5


def test_occluder_hides_then_shows_and_visibility_is_rendered():
    for seed in range(4):
        gt = render_clip(sample_scene(seed, "train", "occluder"))[1]
        states = [f["objects"][0]["visible"] for f in gt["frames"]]
        fr = [f["objects"][0]["visible_fraction"] for f in gt["frames"]]
        assert states[0] == "full" and states[-1] == "full"
        first = states.index("occluded")
        assert "partial" in states[:first] and fr[first] <= 0.001
        assert all(0 < v < 1 for s, v in zip(states, fr) if s == "partial")


def test_camera_pan_moves_static_objects_across_the_frame():
    spec = sample_scene(5, "train", "pan")
    assert spec.world_width > spec.frame_width_units or spec.world_height > spec.frame_height_units
    gt = render_clip(spec)[1]
    cams = np.array([f["camera"] for f in gt["frames"]])
    d_cam = cams[-1] - cams[0]
    assert np.linalg.norm(d_cam) > 10
    for i in range(len(gt["objects"])):
        p = np.array([[f["objects"][i]["x"], f["objects"][i]["y"]] for f in gt["frames"]])
        assert np.allclose(p[-1] - p[0], -d_cam, atol=1e-3)  # world-static: moves against the camera
    seen = {f["objects"][i]["visible"] for f in gt["frames"] for i in range(len(gt["objects"]))}
    assert "out_of_frame" in seen or "partial" in seen


def test_paint_trail_persists():
    spec = sample_scene(2, "train", "trail")
    plain = SceneSpec.from_dict({**spec.to_dict(), "trail": []})
    with_trail, no_trail = render_clip(spec)[0], render_clip(plain)[0]
    diff = np.abs(with_trail.astype(int) - no_trail.astype(int)).sum(-1) > 20
    counts = diff.reshape(len(diff), -1).sum(1)
    assert counts[0] == 0 and counts[-1] > 20
    # paint stays: what was painted at any frame is still there at the end, except where the object covers it
    area = shape_area(spec.objects[0].shape, spec.objects[0].radius)
    for k in range(len(diff)):
        assert (diff[k] & ~diff[-1]).sum() <= 2 * area + 10, k
    assert counts[-1] > counts[len(counts) // 2] > 0


def test_held_out_combinations_never_in_train():
    seen_attrs = set()
    for seed in range(1500):
        spec = sample_scene(seed, "train")
        assert not split_violations(spec, "train")
        for o in spec.objects:
            assert not held_out_matches(o), (seed, o)
            assert SIZES[o.size][0] <= o.radius <= SIZES[o.size][1]
            if o.speed:
                assert o.speed in SPEEDS
            seen_attrs.update({("color", o.color), ("shape", o.shape), ("direction", o.direction)})
    for combo in HELD_OUT_COMBOS:  # each attribute alone is seen in training
        for k, v in combo.items():
            if k != "size":
                assert (k, v) in seen_attrs


def test_test_splits_hold_what_they_promise():
    comps, oods = set(), set()
    for seed in range(300):
        c = sample_scene(seed, "test_comp")
        assert held_out_matches(c.objects[0]) and not split_violations(c, "test_comp")
        comps.add(json.dumps(held_out_matches(c.objects[0])[0], sort_keys=True))
        o = sample_scene(seed, "test_ood")
        assert not split_violations(o, "test_ood")
        oods.add(o.objects[0].size if o.objects[0].size in OOD_SIZES else o.objects[0].speed)
    assert len(comps) == len(HELD_OUT_COMBOS)
    assert oods >= set(OOD_SIZES) | set(OOD_SPEEDS)
    train_like = sample_scene(0, "train", "linear")
    assert split_violations(train_like, "test_comp")
    bad = SceneSpec.from_dict({**train_like.to_dict(), "objects": [
        ObjectSpec(shape="triangle", color="green", size="small", radius=3.5, x=30, y=30, vy=-8.0,
                   direction="up", speed="slow").to_dict()]})
    assert split_violations(bad, "train") and not split_violations(bad, "test_comp")
