"""Every metric is at its best on ground truth and clearly worse on the video meant to break it:
frozen, recoloured, reversed, vanishing and pure noise (margins asserted)."""

import dataclasses

import numpy as np
import pytest

from tenku.eval import metrics, physics
from tenku.eval.suites import build_suite, default_parser
from tenku.world.clip import render_clip
from tenku.world.spec import COLORS, SceneSpec


@pytest.fixture(scope="module")
def suite():
    _, items = build_suite("smoke")
    return {it.id: it for it in items}


@pytest.fixture(scope="module")
def parser():
    return default_parser()


def _render(spec_dict, **obj_changes):
    spec = SceneSpec.from_dict(spec_dict)
    objs = [dataclasses.replace(o, **obj_changes) if i == 0 else o for i, o in enumerate(spec.objects)]
    return render_clip(dataclasses.replace(spec, objects=tuple(objs)))[0]


def _empty(item):
    """The same scene with its objects far outside the frame: floor (and occluder) only."""
    spec = SceneSpec.from_dict(item.spec)
    objs = tuple(dataclasses.replace(o, x=-500.0 - 40 * i, y=-500.0) for i, o in enumerate(spec.objects))
    return render_clip(dataclasses.replace(spec, objects=objs))[0]


def _noise(like, seed=0):
    return np.random.default_rng(seed).integers(0, 256, like.shape, dtype=np.uint8)


def _adh(parser, item, frames):
    return metrics.adherence(parser.parse_video(frames), item.facts, item.ground_truth)


def test_adherence(suite, parser):
    lin = suite["t2v-test_id-linear-0"]
    best = _adh(parser, lin, lin.frames)
    assert best == {"color": 1.0, "shape": 1.0, "count": 1.0, "direction": 1.0, "speed": 1.0}
    frozen = np.repeat(lin.frames[:1], len(lin.frames), axis=0)
    a = _adh(parser, lin, frozen)
    assert a["direction"] == 0.0 and a["speed"] == 0.0 and a["color"] == 1.0
    assert _adh(parser, lin, lin.frames[::-1].copy())["direction"] == 0.0
    other = next(c for c in COLORS if c != lin.facts["objects"][0]["color"])
    assert _adh(parser, lin, _render(lin.spec, color=other))["color"] == 0.0
    shape = "square" if lin.facts["objects"][0]["shape"] != "square" else "triangle"
    assert _adh(parser, lin, _render(lin.spec, shape=shape))["shape"] == 0.0
    noise = _adh(parser, lin, _noise(lin.frames))
    assert noise["color"] == 0.0 and noise["count"] == 0.0
    held = suite["t2v-test_comp-occluder-0"]
    assert all(v in (None, 1.0) for v in _adh(parser, held, held.frames).values())


def test_permanence(suite, parser):
    occ = suite["t2v-test_comp-occluder-0"]
    gt, spec = occ.ground_truth, occ.spec
    best = metrics.permanence(parser.parse_video(occ.frames), gt, spec)
    assert best == {"count_accuracy": 1.0, "appearances": 0, "disappearances": 0, "reemerged": 1.0}
    # the object vanishes behind the occluder and never comes out
    hidden = next(t for t, f in enumerate(gt["frames"]) if f["objects"][0]["visible"] == "occluded")
    never = np.concatenate([occ.frames[:hidden], _empty(occ)[hidden:]])
    p = metrics.permanence(parser.parse_video(never), gt, spec)
    assert p["reemerged"] == 0.0 and p["count_accuracy"] <= 0.8  # 1.0 on the ground truth
    # the object vanishes in the open
    lin = suite["t2v-test_id-linear-0"]
    gone = np.concatenate([lin.frames[:6], _empty(lin)[6:]])
    p = metrics.permanence(parser.parse_video(gone), lin.ground_truth, lin.spec)
    assert p["disappearances"] == 1 and p["count_accuracy"] <= 0.5
    # and pops up again: one appearance
    flick = np.concatenate([lin.frames[:6], _empty(lin)[6:9], lin.frames[9:]])
    p = metrics.permanence(parser.parse_video(flick), lin.ground_truth, lin.spec)
    assert p["appearances"] == 1 and p["disappearances"] == 1
    p = metrics.permanence(parser.parse_video(_noise(lin.frames)), lin.ground_truth, lin.spec)
    assert p["count_accuracy"] <= 0.2


def _extension(item, rest):
    """A model's output: the given frames, then ``rest`` for the remaining frames."""
    k = item.cond_frames
    return np.concatenate([item.frames[:k], rest[k:]])


def _phys(parser, item, frames):
    ref = parser.parse_video(item.frames)
    return physics.clip_physics(parser.parse_video(frames), ref, item.ground_truth, item.scenario, item.cond_frames)


def test_physics_collision(suite, parser):
    col = suite["physics-test_id-collision-0"]
    best = _phys(parser, col, col.frames)
    s = physics.summarize_physics([best])
    assert s["position"]["ratio"] == 1.0 and s["velocity"]["ratio"] == 1.0
    assert best["momentum_error"] < 0.15 and best["energy_error"] < 0.15  # the parser's own floor
    frozen = _extension(col, np.repeat(col.frames[col.cond_frames - 1:col.cond_frames], len(col.frames), 0))
    s = physics.summarize_physics([_phys(parser, col, frozen)])
    assert s["velocity"]["ratio"] > 5 and s["position"]["ratio"] > 10  # these objects move slowly
    assert s["momentum"]["error"] >= 0.9 and s["energy"]["error"] >= 0.9
    s = physics.summarize_physics([_phys(parser, col, _extension(col, col.frames[::-1].copy()))])
    assert s["position"]["ratio"] > 10 and s["velocity"]["ratio"] > 10
    s = physics.summarize_physics([_phys(parser, col, _extension(col, _noise(col.frames)))])
    assert s["position"]["error"] > 5 and s["velocity"]["ratio"] > 10


def test_physics_throw(suite, parser):
    th = suite["physics-test_ood-throw-0"]
    best = _phys(parser, th, th.frames)
    assert best["acceleration_residual"] == best["acceleration_floor"] < 1.0
    g = th.ground_truth["units"]["gravity_px_per_s2"]
    frozen = _extension(th, np.repeat(th.frames[th.cond_frames - 1:th.cond_frames], len(th.frames), 0))
    r = _phys(parser, th, frozen)
    assert r["acceleration_residual"] == pytest.approx(g, rel=0.05) and g > 20
    # a throw that goes on in a straight line (no gravity): the residual is about g
    spec = dataclasses.replace(SceneSpec.from_dict(th.spec), gravity=0.0)
    straight = render_clip(spec)[0]
    r = _phys(parser, th, _extension(th, straight))
    assert r["acceleration_residual"] > 0.5 * g


def test_quality():
    from scipy.ndimage import gaussian_filter

    frames = build_suite("smoke", clips=1)[1][0].frames
    noise = _noise(frames)
    assert metrics.flicker_score(frames) > 0.99
    assert metrics.flicker_score(noise) < 0.75
    assert metrics.flicker_score(np.repeat(frames[:1], 5, 0)) == 1.0
    assert metrics.psnr(frames, frames) == 100.0 and metrics.ssim(frames, frames) == pytest.approx(1.0, abs=1e-6)
    blur = gaussian_filter(frames.astype(float), (0, 1.5, 1.5, 0)).round().astype(np.uint8)
    assert 20 < metrics.psnr(blur, frames) < 40 and 0.5 < metrics.ssim(blur, frames) < 0.99
    assert metrics.psnr(noise, frames) < 12 and metrics.ssim(noise, frames) < 0.1
