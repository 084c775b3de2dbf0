"""TenkuPipeline on a tiny random model: determinism, sizes, callbacks, guidance, conditioning, outputs."""

import numpy as np
import pytest
import torch

from tenku.errors import MediaError, TenkuError, UnsupportedSizeError
from tenku.pipeline import PipelineOutput, TenkuPipeline, default_model_path, save_output
from tenku.testing import make_tiny_pipeline


@pytest.fixture(scope="module")
def pipe(tmp_path_factory):
    return TenkuPipeline.from_pretrained(make_tiny_pipeline(tmp_path_factory.mktemp("m") / "tiny"))


def test_same_seed_same_frames_different_seed_different(pipe):
    a = pipe("a red ball rolls to the right", seed=1)
    b = pipe("a red ball rolls to the right", seed=1)
    c = pipe("a red ball rolls to the right", seed=2)
    assert a.frames.shape == (9, 32, 32, 3) and a.frames.dtype == np.uint8
    assert np.array_equal(a.frames, b.frames)
    assert not np.array_equal(a.frames, c.frames)
    assert a.frames.std() > 1  # not a constant image
    g = torch.Generator().manual_seed(1)
    assert np.array_equal(pipe("a red ball rolls to the right", generator=g).frames, a.frames)
    d = pipe("a blue square", seed=1)
    assert not np.array_equal(a.frames, d.frames)  # the prompt matters


def test_metadata(pipe):
    out = pipe("ein grüner Ball 🙂", negative_prompt="blur", seed=5, num_steps=3, guidance=3.0, fps=12)
    m = out.metadata
    assert m["prompt"] == "ein grüner Ball 🙂" and m["negative_prompt"] == "blur" and m["seed"] == 5
    assert (m["num_steps"], m["guidance"], m["sampler"], m["fps"]) == (3, 3.0, "euler", 12.0)
    assert (m["num_frames"], m["width"], m["height"]) == (9, 32, 32)
    assert m["model"] == "tiny" and m["model_path"].endswith("tiny") and m["tenku_version"]
    assert out.fps == 12.0
    assert isinstance(pipe("x", progress=False).metadata["seed"], int)  # a random seed is recorded


def test_bad_sizes_list_valid_ones(pipe):
    with pytest.raises(UnsupportedSizeError, match=r"10 frames .*valid nearby: 9, 13"):
        pipe("x", num_frames=10)
    with pytest.raises(UnsupportedSizeError, match=r"height 30 .*multiple of 8; valid nearby: 32, 24"):
        pipe("x", height=30)
    with pytest.raises(UnsupportedSizeError, match=r"width 0 .*valid nearby: 8"):
        pipe("x", width=0)
    with pytest.raises(UnsupportedSizeError, match="fps must be positive"):
        pipe("x", fps=0)
    assert pipe.geometry.nearest_num_frames(16) == 17 and pipe.geometry.nearest_num_frames(10.9) == 9
    assert pipe.geometry.nearest_num_frames(0.2) == 1


def test_other_sizes_single_frame_and_heun(pipe):
    out = pipe("x", num_frames=1, height=16, width=40, seed=0, sampler="heun", guidance=1.0)
    assert out.frames.shape == (1, 16, 40, 3)
    out = pipe("x", num_frames=13, height=24, width=24, seed=0)
    assert out.frames.shape == (13, 24, 24, 3)


def test_callback_receives_every_step(pipe):
    seen = []
    pipe("x", num_steps=4, seed=0, callback=seen.append)
    assert [d["i"] for d in seen] == [0, 1, 2, 3] and all(d["total"] == 4 for d in seen)
    ts = [d["t"] for d in seen]
    assert ts[0] == 1.0 and all(a > b for a, b in zip(ts, ts[1:]))


def test_guidance_one_skips_the_unconditional_pass(pipe):
    calls = []
    hook = pipe.transformer.register_forward_hook(lambda m, args, out: calls.append(len(args[0])))
    try:
        pipe("x", num_steps=2, guidance=1.0, seed=0)
        assert calls == [1, 1]
        calls.clear()
        pipe("x", num_steps=2, guidance=4.0, seed=0)
        assert calls == [2, 2]  # conditional and unconditional halves in one packed call
    finally:
        hook.remove()
    a = pipe("x", guidance=1.0, seed=0).frames
    b = pipe("x", guidance=4.0, seed=0).frames
    assert not np.array_equal(a, b)


def test_conditioning_frames_are_held(pipe):
    cond, uncond = pipe.encode_prompt("x", None, 2.0)
    g = torch.Generator().manual_seed(0)
    shape = (1, *pipe.geometry.latent_shape(9, 32, 32))
    noise = torch.randn(shape, generator=g)
    given = torch.randn(shape, generator=g)
    mask = torch.tensor([True, False, False])
    steps = lambda n: pipe.sample_config.resolve(num_steps=n, guidance=2.0)  # noqa: E731
    z = pipe.denoise(cond, uncond, noise, steps(3), cond_latents=given, cond_mask=mask, progress=False)
    assert torch.equal(z[:, :, 0], given[:, :, 0]) and not torch.allclose(z[:, :, 1:], given[:, :, 1:])
    # editing: partial denoising of given latents stays closer to them than a fresh sample
    edit = pipe.denoise(cond, uncond, noise, steps(8), init_latents=given, strength=0.3, progress=False)
    fresh = pipe.denoise(cond, uncond, noise, steps(8), progress=False)
    assert (edit - given).abs().mean() < (fresh - given).abs().mean()


def test_run_with_conditioning_frames_from_a_video(pipe):
    first = pipe("a red ball", seed=0)
    given = pipe.encode_frames(first.frames)  # (1, C, 3, 8, 8)
    assert given.shape == (1, 4, 3, 8, 8)
    # the first frame, given (image-to-video): its latent frame is held as encoded
    from tenku.pipeline.modes import ImageToVideo

    out = pipe("a red ball", seed=1, mode=ImageToVideo(image=first.frames[0]), match_seams=False)
    head = pipe.encode_frames(first.frames[:1])
    assert torch.equal(out.latents[:, :, 0], head[:, :, 0]) and out.metadata["mode"] == "image_to_video"
    with pytest.raises(TenkuError, match=r"latents must have shape \(1, 4, 3, 8, 8\)"):
        pipe("x", latents=given[:, :, :2])


def test_save_pretrained_round_trip_gives_identical_frames(pipe, tmp_path):
    path = pipe.save_pretrained(tmp_path / "copy")
    again = TenkuPipeline.from_pretrained(path)
    assert np.array_equal(pipe("a ball", seed=3).frames, again("a ball", seed=3).frames)


def test_save_output(pipe, tmp_path):
    from tenku.media import probe, read_image, read_video

    out = pipe("x", seed=0)
    mp4 = save_output(out, tmp_path / "v.mp4")
    frames, fps = read_video(mp4)
    assert frames.shape == (9, 32, 32, 3) and fps == 8
    png = save_output(out, tmp_path / "v.png")
    img = read_image(png)
    # the saved image is the generated one plus the invisible watermark (RMS ~2.4 levels, PSNR ~40 dB)
    mse = np.mean((img.astype(np.float64) - out.frames[0].astype(np.float64)) ** 2)
    assert img.shape == (32, 32, 3) and 0 < mse < 255.0**2 / 10 ** (35 / 10)
    assert probe(mp4)["num_frames"] == 9
    with pytest.raises(MediaError, match=r"\.mp4 or \.png"):
        save_output(out, tmp_path / "v.gif")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v.mp4", "v.png"]  # nothing half-written
    bad = PipelineOutput(frames=out.frames.astype(np.float32), fps=8, metadata={})
    with pytest.raises(MediaError):
        save_output(bad, tmp_path / "bad.mp4")
    assert not (tmp_path / "bad.mp4").exists()


def test_progress_bar_and_its_switches(pipe, capsys, monkeypatch):
    monkeypatch.delenv("TENKU_NO_PROGRESS", raising=False)
    pipe("x", seed=0, num_steps=3)
    assert "denoising" in capsys.readouterr().err
    pipe("x", seed=0, num_steps=3, progress=False)
    monkeypatch.setenv("TENKU_NO_PROGRESS", "1")
    pipe("x", seed=0, num_steps=3)
    assert "denoising" not in capsys.readouterr().err


def test_default_model_path():
    p = default_model_path()
    assert p.name == "tenku-world-tiny" and p.parent.name == "assets"
