"""Typed generation modes on a tiny random pipeline: the conditioning mechanics that must hold for any weights.

Inputs are world clips (tenku.world) at 32x32, 8 fps. The tiny model's window is 3 latent frames
(9 frames), so anything longer than 9 frames runs window by window.
"""

import numpy as np
import pytest
import torch

from tenku.errors import MediaError, TenkuError, UnsupportedSizeError
from tenku.pipeline import TenkuPipeline
from tenku.pipeline import longvideo as lv
from tenku.media import cover_frames as fit_frames
from tenku.media import psnr
from tenku.pipeline.inputs import resample_time
from tenku.pipeline.modes import Connect, Edit, Extend, ImageToVideo, Loop, TextToImage, TextToVideo
from tenku.testing import make_tiny_pipeline

FAST = dict(num_steps=2, progress=False, expand=False)


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    return TenkuPipeline.from_pretrained(make_tiny_pipeline(tmp_path_factory.mktemp("m") / "tiny"))


@pytest.fixture(scope="module")
def clip():
    from tenku.world import make_clip, sample_scene

    spec = sample_scene(3, "train", "bounce_walls", width=32, height=32, fps=8, seconds=2)
    return make_clip(spec).frames  # (17, 32, 32, 3)


def roundtrip(pipe, frames):
    return np.concatenate(list(lv.decode_frames(pipe, pipe.encode_frames(frames))))


def windows_of(pipe, prompt, mode, **kw):
    seen = []
    stream = pipe.stream(prompt, mode=mode, on_window=seen.append, **FAST, **kw)
    return stream.collect(), seen


def assert_clean_held(seen):
    """In every window, the latent frames flagged clean come out of sampling exactly as given."""
    for w in seen:
        if w["cond_mask"] is not None:
            m = w["cond_mask"]
            assert m.any()
            assert torch.equal(w["latents"][:, :, m], w["cond_latents"][:, :, m])
            assert not torch.equal(w["latents"][:, :, ~m], w["cond_latents"][:, :, ~m])


def test_schedules_add_up():
    tf = 4
    for W in (3, 5, 8):
        for k in range(1, W - 1):
            for n in (1, 5, 9, 17, 33, 121, 481):
                s = lv.forward_schedule(n, W, k, tf)
                assert sum(w.new_frames(tf) for w in s) == n and all(w.size <= W for w in s)
                s = lv.backward_schedule(n, W, k, tf)
                assert sum(w.new_frames(tf) for w in s) == n and all(w.size <= W and w.tail == k for w in s)
            for n in (4, 8, 40, 200):
                s = lv.forward_schedule(n, W, k, tf, head_frames=17, tail=1)
                assert sum(w.new_frames(tf) for w in s) == n and s[-1].tail == 1 and all(w.size <= W for w in s)
                assert all(w.tail == 0 for w in s[:-1]) and all(w.head >= 1 for w in s)
    with pytest.raises(TenkuError, match="multiple of 4"):
        lv.forward_schedule(6, 3, 1, 4, head_frames=9)
    with pytest.raises(TenkuError, match="cannot hold"):
        lv.forward_schedule(8, 2, 1, 4, head_frames=9, tail=1)


def test_long_text_to_video_is_windowed_and_matches_one_window_when_short(pipe):
    one = pipe("a red ball", seed=3, **FAST)
    noise = torch.randn((1, *pipe.geometry.latent_shape(9, 32, 32)), generator=torch.Generator().manual_seed(3))
    direct = pipe("a red ball", latents=noise, seed=3, **FAST)  # explicit noise: one window, drawn as the first is
    assert np.array_equal(one.frames, direct.frames) and one.metadata["windows"] == 1
    out, seen = windows_of(pipe, "a red ball", TextToVideo(), seed=3, num_frames=33)
    assert out.frames.shape == (33, 32, 32, 3) and len(seen) == 4 and out.metadata["windows"] == 4
    assert np.array_equal(out.frames[:9], one.frames)  # the first window is the one-window clip
    assert_clean_held(seen)
    assert all(w["cond_mask"].tolist() == [True, False, False] for w in seen[1:])
    # each continuation is conditioned on the last frame made so far (encoded as the start of a clip)
    assert torch.equal(seen[1]["cond_latents"][:, :, :1], pipe.encode_frames(out.frames[8:9]))
    assert torch.equal(seen[3]["cond_latents"][:, :, :1], pipe.encode_frames(out.frames[24:25]))


def test_image_to_video_first_frame_is_the_image(pipe, clip):
    image = clip[0]
    out, seen = windows_of(pipe, "a ball", ImageToVideo(image=image), seed=0, num_frames=17)
    rt = roundtrip(pipe, image[None])[0]
    # seam matching puts the VAE's round-trip error back: frame 0 is the image itself
    assert np.array_equal(out.frames[0], image), psnr(out.frames[0], image)
    raw = pipe("a ball", mode=ImageToVideo(image=image), seed=0, num_frames=17, match_seams=False, **FAST)
    # without it, frame 0 is exactly the round trip (the tiny VAE is random: far from the image)
    assert np.array_equal(raw.frames[0], rt) and psnr(rt, image) < 20, psnr(rt, image)
    assert not np.array_equal(raw.frames, out.frames)
    plain = pipe("a ball", seed=0, num_frames=17, **FAST).frames[0]
    assert psnr(plain, image) < 20  # without the image, frame 0 is far from it (the check can fail)
    assert out.frames.shape == (17, 32, 32, 3) and seen[0]["cond_mask"].tolist() == [True, False, False]
    assert_clean_held(seen)
    assert out.metadata["mode"] == "image_to_video"


def test_images_of_any_size_are_scaled_and_centre_cropped(pipe, clip, tmp_path):
    from PIL import Image

    wide = np.zeros((30, 90, 3), np.uint8)
    wide[:, 30:60] = (200, 40, 40)  # a red centre third
    fitted = fit_frames(wide[None], 32, 32)[0]
    assert fitted.shape == (32, 32, 3) and (np.abs(fitted.astype(int) - (200, 40, 40)).max(axis=-1) < 30).mean() > 0.9
    Image.fromarray(wide).save(tmp_path / "wide.png")
    out = pipe("x", mode=ImageToVideo(image=str(tmp_path / "wide.png")), height=24, width=40, seed=0,
               num_frames=9, **FAST)
    assert out.frames.shape == (9, 24, 40, 3)
    with pytest.raises(MediaError, match="image not found"):
        pipe("x", mode=ImageToVideo(image=str(tmp_path / "missing.png")), **FAST)
    assert np.array_equal(resample_time(clip, 16, 8), clip[0:16:2])  # 17 frames at 16 fps -> 8 at 8 fps


def test_extend_forward_keeps_the_video_and_conditions_on_its_end(pipe, clip):
    out, seen = windows_of(pipe, "a ball", Extend(video=clip, seconds=3), seed=0)
    assert out.frames.shape == (17 + 24, 32, 32, 3)
    assert np.array_equal(out.frames[:17], clip)  # the given frames are kept exactly
    assert torch.equal(seen[0]["cond_latents"][:, :, :1], pipe.encode_frames(clip[-1:]))
    assert_clean_held(seen)
    assert len(seen) == 3 and out.metadata["mode_params"]["seconds"] == 3


def test_extend_backward_keeps_the_video_and_conditions_on_its_start(pipe, clip):
    out, seen = windows_of(pipe, "a ball", Extend(video=clip, seconds=2, backward=True), seed=0)
    assert out.frames.shape == (17 + 17, 32, 32, 3)
    assert np.array_equal(out.frames[17:], clip)
    first = seen[0]
    assert first["cond_mask"].tolist() == [False, False, True]  # the window ends on the video's start
    runner = lv.WindowRunner(pipe, None, None, pipe.request("x", height=32, width=32), None, 1)
    assert torch.equal(first["cond_latents"][:, :, 2:], runner.encode_tail(clip, 1))
    assert_clean_held(seen)


def test_loop_ends_on_its_own_first_frames(pipe):
    out, seen = windows_of(pipe, "a ball", Loop(seconds=3), seed=0)
    assert out.frames.shape == (25, 32, 32, 3)
    last = seen[-1]
    assert last["cond_mask"].tolist() == [True, False, True]
    runner = lv.WindowRunner(pipe, None, None, pipe.request("x", height=32, width=32), None, 1)
    assert torch.equal(last["cond_latents"][:, :, 2:], runner.encode_tail(out.frames, 1))  # the start
    assert torch.equal(last["cond_latents"][:, :, :1], pipe.encode_frames(out.frames[-5:-4]))
    assert_clean_held(seen)
    with pytest.raises(UnsupportedSizeError, match="a loop needs at least 5 frames"):
        pipe("x", mode=Loop(seconds=0.1), **FAST)


def test_connect_keeps_both_clips_and_bridges_them(pipe, clip):
    b = clip[::-1].copy()
    out, seen = windows_of(pipe, "a ball", Connect(a=clip, b=b, seconds=1), seed=0)
    assert out.frames.shape == (17 + 8 + 17, 32, 32, 3)
    assert np.array_equal(out.frames[:17], clip) and np.array_equal(out.frames[-17:], b)
    assert len(seen) == 2 and seen[-1]["cond_mask"].tolist() == [True, False, True]
    assert_clean_held(seen)


def test_match_seams_puts_the_round_trip_error_back():
    rng = np.random.default_rng(0)
    given = rng.integers(60, 200, (9, 8, 8, 3)).astype(np.uint8)  # what the decoded frames should look like
    shift = np.array([-12.0, 5.0, 9.0])  # a VAE colour shift
    detail = rng.normal(0, 3, (9, 8, 8, 3))  # and lost detail
    decoded = np.clip(given + shift + detail, 0, 255).round().astype(np.uint8)
    out = lv.match_seams(decoded, (2, given[2]), None, fade=3)
    assert np.array_equal(out[2], given[2])  # the anchor frame becomes the given frame
    err = lambda a, b: np.abs(a.astype(float) - b.astype(float)).mean(axis=(1, 2, 3))  # noqa: E731
    assert (err(out, given)[6:] < 0.5 * err(decoded, given)[6:]).all()  # the colour shift is gone everywhere
    d = out[6:].astype(int) - decoded[6:]  # beyond the fade: one offset per channel (up to rounding), the shift
    assert (d.max(axis=(0, 1, 2)) - d.min(axis=(0, 1, 2)) <= 1).all() and np.abs(d.mean(axis=(0, 1, 2)) + shift).max() < 1.5
    c = out.astype(float) - decoded  # what was added; its part beyond a per-channel offset is the detail
    ramp = np.abs(c - c.mean(axis=(1, 2), keepdims=True)).mean(axis=(1, 2, 3))[2:7]
    assert (np.diff(ramp) < 0).all() and ramp[-1] < 0.5 < ramp[0], ramp  # fading out over ``fade`` frames
    both = lv.match_seams(decoded, (0, given[0]), (8, given[8] // 2), fade=2)
    assert np.array_equal(both[0], given[0]) and np.array_equal(both[8], given[8] // 2)


def test_seam_matching_removes_the_jump_at_an_extension_seam(pipe, clip):
    """The tiny model's VAE is random, so its round trip is far from the given frames: unmatched, the seam is
    a jump far above the new frames' own differences; matched, it is not (the check can fail both ways)."""
    def seam_and_p90(frames):
        d = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
        return d[16], np.percentile(d[17:], 90)

    raw = pipe("a ball", mode=Extend(video=clip, seconds=2), seed=0, match_seams=False, **FAST)
    matched = pipe("a ball", mode=Extend(video=clip, seconds=2), seed=0, **FAST)
    assert np.array_equal(matched.frames[:17], clip) and matched.metadata["match_seams"] is True
    s_raw, p_raw = seam_and_p90(raw.frames)
    s_m, p_m = seam_and_p90(matched.frames)
    assert s_raw > 1.5 * p_raw + 1, (s_raw, p_raw)  # a jump by the seam check of the default-model test below
    assert s_m <= 1.5 * p_m + 1 and s_m < 0.6 * s_raw, (s_m, p_m, s_raw)


def test_closing_window_gets_room_to_bridge():
    s = lv.forward_schedule(33, 5, 2, 4, tail=1, tail_from_start=True, closing_context=1)
    assert s[-1] == lv.Window(1, 3, 1) and sum(w.new_frames(4) for w in s) == 33
    s = lv.forward_schedule(32, 5, 2, 4, head_frames=17, tail=1, closing_context=1)
    assert s[-1] == lv.Window(1, 3, 1) and all(w.head == 2 for w in s[:-1]) and sum(w.new_frames(4) for w in s) == 32
    old = lv.forward_schedule(33, 5, 2, 4, tail=2, tail_from_start=True)  # 2 + 2 context leaves one new latent
    assert old[-1] == lv.Window(2, 1, 2)


def test_edit_strength_zero_is_the_round_trip_and_distance_grows(pipe, clip):
    video = clip[:17]
    rt = roundtrip(pipe, video)
    d = {}
    for s in (0.0, 0.3, 0.6, 1.0):
        out = pipe("a ball", mode=Edit(video=video, strength=s), seed=5, num_steps=8, progress=False, expand=False)
        assert out.frames.shape == video.shape
        d[s] = np.abs(out.frames.astype(int) - rt).mean()
        if s == 0.0:
            assert np.array_equal(out.frames, rt)
    assert d[0.0] == 0 < d[0.3] < d[0.6] < d[1.0], d
    with pytest.raises(TenkuError, match=r"strength must be a number in \[0, 1\]"):
        Edit(video=video, strength=1.5)


def test_long_edit_is_windowed_and_continuous_in_latent_space(pipe, clip):
    video = np.concatenate([clip, clip[1:]])  # 33 frames -> 9 latent frames -> 4 windows
    out, seen = windows_of(pipe, "a ball", Edit(video=video, strength=0.5), seed=0)
    assert out.frames.shape == (33, 32, 32, 3) and len(seen) == 4
    for a, b in zip(seen, seen[1:]):  # each window starts from the previous window's edited last frame
        assert torch.equal(b["latents"][:, :, 0], a["latents"][:, :, -1])
    assert_clean_held(seen)


def test_text_to_image_and_sizes(pipe):
    out = pipe("a ball", mode=TextToImage(), seed=0, height=16, width=48, **FAST)
    assert out.frames.shape == (1, 16, 48, 3)
    with pytest.raises(UnsupportedSizeError, match=r"width 2048 is above the limit of 1024.*multiples of 8"):
        pipe("x", width=2048, num_frames=1, **FAST)
    with pytest.raises(UnsupportedSizeError, match="fps 120 is outside"):
        pipe("x", fps=120, **FAST)
    with pytest.raises(UnsupportedSizeError, match="above the limit of 600 s"):
        pipe("x", num_frames=4 * 1300 + 1, **FAST)
    with pytest.raises(UnsupportedSizeError, match="width 30 is not a positive multiple of 8"):
        pipe("x", mode=ImageToVideo(image=np.zeros((8, 8, 3), np.uint8)), width=30, **FAST)
    with pytest.raises(TenkuError, match="mode must be one of"):
        pipe("x", mode="image_to_video", **FAST)
    with pytest.raises(TenkuError, match="seconds must be a number"):
        Extend(video=np.zeros((1, 8, 8, 3), np.uint8), seconds=-1)
    with pytest.raises(TenkuError, match="uint8 RGB frames"):
        Connect(a=np.zeros((4, 4)), b="b.mp4")


def test_callback_counts_steps_across_windows(pipe):
    seen = []
    pipe("x", num_frames=25, seed=0, callback=seen.append, **FAST)  # windows of 9, 8 and 8 frames
    assert [d["i"] for d in seen] == [0, 1, 2, 3, 4, 5] and {d["total"] for d in seen} == {6}
    assert [d["window"] for d in seen] == [0, 0, 1, 1, 2, 2]


def test_sixty_second_run_keeps_memory_flat(pipe, tmp_path):
    """481 frames (60 s at 8 fps) in 60 windows at 16x16, streamed into an mp4: the peak of traced
    allocations stays at the level of a 6-window run, while collecting the frames grows it. (Watermark
    and C2PA signing are off here: tests/test_safety_* cover them on the same save path.)"""
    import tracemalloc

    from tenku.media import probe
    from tenku.pipeline.output import save_output_stream
    from tenku.safety.policy import Safety

    def peak(n, collect=False):
        stream = pipe.stream("a ball", num_frames=n, height=16, width=16, seed=0, num_steps=1, guidance=1.0,
                             progress=False, expand=False)
        tracemalloc.start()
        if collect:
            held = list(stream.frames)
            assert sum(len(p) for p in held) == n
        else:
            save_output_stream(stream, tmp_path / f"{n}.mp4", safety=Safety(provenance=False))
        p = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        return p, stream

    peak(9)  # imports and first-use caches outside the measurement
    p6, _ = peak(49)
    p60, s60 = peak(481)
    assert s60.metadata["windows"] == 60 and probe(tmp_path / "481.mp4")["num_frames"] == 481
    held, _ = peak(241, collect=True)
    assert held > p6 + 0.6 * 241 * 16 * 16 * 3  # holding the frames shows up (the check can fail)
    assert p60 < 1.2 * p6 + 256 * 1024, (p6, p60)


def test_guidance_interval_and_negative_prompt(pipe):
    calls = []
    hook = pipe.transformer.register_forward_hook(lambda m, args, out: calls.append(len(args[0])))
    try:
        kw = dict(seed=0, num_steps=4, guidance=3.0, progress=False, expand=False)
        full = pipe("a ball", **kw)
        assert calls == [2, 2, 2, 2]
        calls.clear()
        inside = pipe("a ball", guidance_interval=(0.0, 1.0), **kw)
        assert calls == [2, 2, 2, 2] and np.array_equal(inside.frames, full.frames)
        calls.clear()
        late = pipe("a ball", guidance_interval=(0.0, 0.6), **kw)  # t = 1 and 0.75 run unguided
        assert calls == [1, 1, 2, 2] and not np.array_equal(late.frames, full.frames)
    finally:
        hook.remove()
    assert late.metadata["guidance_interval"] == (0.0, 0.6)
    neg = pipe("a ball", negative_prompt="a blue square", **kw)
    assert not np.array_equal(neg.frames, full.frames) and neg.metadata["negative_prompt"] == "a blue square"
    with pytest.raises(TenkuError, match="guidance_interval must be"):
        pipe("a ball", guidance_interval=(0.9, 0.1), **kw)


def test_run_mode_adapter_for_named_modes(pipe, clip):
    from tenku.serve.modes import run_mode

    out = run_mode(pipe, mode="extend", prompt="a ball", source=clip, num_frames=8, height=32, width=32, fps=8,
                   seed=0, progress=False, num_steps=1)
    assert out.frames.shape == (25, 32, 32, 3) and np.array_equal(out.frames[:17], clip)
    out = run_mode(pipe, mode="image_to_video", prompt="a ball", image=clip[0], num_frames=9, seed=0,
                   progress=False, num_steps=1)
    assert out.frames.shape == (9, 32, 32, 3)
    with pytest.raises(TenkuError, match="unknown mode 'zoom'"):
        run_mode(pipe, mode="zoom", prompt="x")


# The default models trained 2026-12-03 (partially whitened latent, one token per position) continue
# backward extension and loops; they still jump at connect's first seam (at 3000 steps 18.1 vs the limit
# 1.5 x 9.4 + 1 = 15.1; the model before them: 46.1 vs 16.5, and forward 37.0 vs 16.5; MODEL_CARD.md).
# Forward extension sits at the limit: the 5550-step model's jump was 14.1 vs 14.1 on this seed (and
# 17.4 vs 16.4 on seed 2), the shipped 6550-step one's is 10.6 vs 10.3 (seeds 1, 2: 12.4 vs 13.1, 11.9
# vs 10.7): a smaller jump, in a clip whose other frames also change less. Strict: the mark must go when
# a model passes.
_SEAM_KNOWN_FAIL = pytest.mark.xfail(strict=True, reason="the shipped model does not yet continue given frames")


@pytest.mark.skipif(not __import__("tenku.pipeline", fromlist=["x"]).default_model_path().exists(),
                                    reason="needs the shipped default model (src/tenku/assets/tenku-world-tiny)")
@pytest.mark.parametrize("kind", [pytest.param("forward", marks=_SEAM_KNOWN_FAIL), "backward", "loop",
                                  pytest.param("connect", marks=_SEAM_KNOWN_FAIL)])
def test_default_model_is_continuous_at_the_seam(kind):
    """With trained weights: the frame difference across a seam is within the clip's typical frame differences
    (a cut or a jump would be many times larger). Without seam matching the shipped model fails this
    (forward 8.0 vs 3.8, backward 12.1 vs 4.6, loop 19.9 vs 3.8): its VAE's round trip shifts colours."""
    from tenku.pipeline import default_model_path
    from tenku.world import make_clip, sample_scene

    pipe = TenkuPipeline.from_pretrained(default_model_path())
    sc = pipe.sample_config
    n = sc.num_frames

    def clip(seconds):
        return make_clip(sample_scene(11, "test_id", "bounce_walls", width=sc.width, height=sc.height, fps=sc.fps,
                                      seconds=seconds))

    c = clip((n - 1) / sc.fps)
    prompt = c.captions["long"]
    if kind == "connect":  # the same scene 1 s later: the transition has a true answer
        gap, c = int(sc.fps), clip(2 * (n - 1) / sc.fps + 1)
        a, b = c.frames[:n], c.frames[n + gap: 2 * n + gap]
        prompt = c.captions["long"]
        frames = pipe(prompt, mode=Connect(a=a, b=b, seconds=1), seed=0, progress=False).frames
        d = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))
        seams = [n - 1, len(frames) - n - 1]
        p90 = np.percentile(np.delete(d, seams), 90)
        assert all(d[s] <= 1.5 * p90 + 1.0 for s in seams), (d[seams], p90)
        return
    given = c.frames
    if kind == "loop":
        out = pipe(prompt, mode=Loop(seconds=4), seed=0, progress=False)
        frames = np.concatenate([out.frames, out.frames[:1]])  # played on repeat
        seam = len(out.frames) - 1
    else:
        out = pipe(prompt, mode=Extend(video=given, seconds=2, backward=kind == "backward"), seed=0,
                   progress=False)
        frames = out.frames
        seam = n - 1 if kind == "forward" else len(frames) - n - 1
    d = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))  # d[i]: frame i -> i + 1
    others = np.delete(d, seam)
    assert d[seam] <= 1.5 * np.percentile(others, 90) + 1.0, (kind, d[seam], np.percentile(others, 90))
