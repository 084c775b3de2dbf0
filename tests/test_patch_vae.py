"""Patch VAE (block code + causal refiner): shapes, the block layout, PCA start, chunked == full,
folders, the object map, and that the object-recall measure fails on a reconstruction that drops objects.

Tolerances: chunked == full and round trips in float32 within atol 1e-5 (measured ~1e-7); a code with
as many channels as a block has values reconstructs within atol 1e-4.
"""

import numpy as np
import pytest
import torch

from tenku.config import PatchVAEConfig, read_model_configs, vae_config_from_dict
from tenku.errors import TenkuError, UnsupportedSizeError
from tenku.models.patch_vae import PatchVAE, from_blocks, to_blocks

ATOL = 1e-5
CFG = PatchVAEConfig(latent_channels=8, spatial_factor=4, temporal_factor=2, refine_channels=16, refine_blocks=1)


def _video(t, h, w, b=1, seed=1):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, t, h, w, generator=g) * 2 - 1


def _perturbed(cfg=CFG, seed=0):
    torch.manual_seed(seed)
    vae = PatchVAE(cfg).eval()
    with torch.no_grad():
        for p in vae.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # the zero-initialised refiner takes part too
    return vae


@pytest.mark.parametrize("t,h,w", [(1, 8, 8), (5, 8, 12), (9, 16, 4)])
def test_blocks_round_trip_and_shapes(t, h, w):
    x = _video(t, h, w, b=2)
    x0, xr = to_blocks(x, 4, 2, True)
    assert x0.shape == (2, 3 * 16, 1, h // 4, w // 4)
    assert (xr is None) == (t == 1)
    assert torch.equal(from_blocks(x0, xr, 4, 2), x)  # a pure rearrangement: bitwise
    vae = _perturbed()
    z = vae.encode(x)
    assert z.shape == (2, CFG.latent_channels, 1 + (t - 1) // 2, h // 4, w // 4)
    assert vae.decode(z).shape == x.shape


def test_a_block_holds_the_pixels_of_its_own_place_and_frames():
    x = torch.zeros(1, 3, 5, 8, 8)
    x[0, 1, 3, 4:8, 0:4] = 1.0  # green, frame 3 (group 1: frames 3-4), block row 1, column 0
    x0, xr = to_blocks(x, 4, 2, True)
    assert x0.abs().sum() == 0
    hit = xr[0].abs().sum(0).nonzero().tolist()  # (k, h, w) positions with content
    assert hit == [[1, 1, 0]]


def test_full_rank_code_from_pca_reconstructs_exactly():
    cfg = PatchVAEConfig(latent_channels=3 * 4 * 2, spatial_factor=2, temporal_factor=2, refine_blocks=0)
    vae = PatchVAE(cfg)
    clips = [_video(5, 8, 8, seed=s)[0] for s in range(4)]
    kept = vae.fit_linear_(clips)
    assert kept["group"] == pytest.approx(1.0, abs=1e-6)  # group blocks hold 24 values: all kept
    x = _video(5, 8, 8, seed=9)
    assert torch.allclose(vae.decode(vae.encode(x)), x, atol=1e-4)


def test_pca_keeps_the_main_directions_of_a_low_rank_world():
    # clips made of 2 flat colours per block: a 4-channel code keeps them, a random start does not
    g = torch.Generator().manual_seed(0)
    cfg = PatchVAEConfig(latent_channels=4, spatial_factor=4, temporal_factor=2, refine_blocks=0)
    base = torch.rand(2, 3, generator=g) * 2 - 1

    def clip():
        a = torch.rand(1, 1, 3, 2, 2, generator=g)
        mix = a.repeat_interleave(4, -1).repeat_interleave(4, -2)  # (1, 1, 3, 8, 8)
        v = base[0].view(1, 3, 1, 1, 1) * mix + base[1].view(1, 3, 1, 1, 1) * (1 - mix)
        return v.clamp(-1, 1)

    clips = [clip() for _ in range(16)]
    fresh = PatchVAE(cfg).eval()
    fitted = PatchVAE(cfg).eval()
    fitted.fit_linear_(clips)
    x = clip()
    err_fresh = (fresh.decode(fresh.encode(x)) - x).abs().max()
    err_fit = (fitted.decode(fitted.encode(x)) - x).abs().max()
    assert err_fit < 1e-3 < err_fresh


def test_chunked_decode_equals_one_pass():
    vae = _perturbed()
    z = vae.encode(_video(9, 8, 8))
    full = vae.decode(z)
    for chunk in (1, 2, 3):
        parts = list(vae.decode_iter(z, chunk_size=chunk))
        assert [p.shape[2] for p in parts][0] == 1
        assert torch.allclose(torch.cat(parts, dim=2), full, atol=ATOL)
    assert torch.allclose(vae.decode(z, chunk_size=2), full, atol=ATOL)


def test_decoding_is_causal_in_time():
    vae = _perturbed()
    z = vae.encode(_video(9, 8, 8))
    z2 = z.clone()
    z2[:, :, 3:] += 1.0  # change only the last latent frame
    a, b = vae.decode(z), vae.decode(z2)
    assert torch.allclose(a[:, :, :5], b[:, :, :5], atol=ATOL)  # frames 0..4 come from latents 0..2
    assert not torch.allclose(a[:, :, 5:], b[:, :, 5:], atol=1e-3)


def test_bad_sizes_are_refused_with_what_to_do():
    vae = PatchVAE(CFG)
    with pytest.raises(UnsupportedSizeError, match="1 \\+ 2\\*k"):
        vae.encode(_video(4, 8, 8))
    with pytest.raises(UnsupportedSizeError, match="multiple of 4"):
        vae.encode(_video(5, 10, 8))
    with pytest.raises(UnsupportedSizeError, match="latent must be"):
        vae.decode(torch.zeros(1, 3, 2, 2, 2))


def test_config_dispatch_and_folder_round_trip(tmp_path):
    from tenku.models.hub import load_component, save_pretrained

    assert isinstance(vae_config_from_dict({"_class_name": "PatchVAE"}), PatchVAEConfig)
    assert isinstance(vae_config_from_dict(CFG.to_dict()), PatchVAEConfig)
    assert not isinstance(vae_config_from_dict({"latent_channels": 4}), PatchVAEConfig)
    vae = _perturbed()
    save_pretrained(vae, vae.cfg, tmp_path / "vae")
    back = load_component(tmp_path / "vae", expect=("CausalVAE", "PatchVAE"))
    x = _video(5, 8, 8)
    assert isinstance(back, PatchVAE)
    assert torch.allclose(back.decode(back.encode(x)), vae.decode(vae.encode(x)), atol=ATOL)


def test_a_pipeline_with_a_patch_vae_generates_and_reads_its_geometry(tmp_path):
    from tenku.config import DiTConfig, FlowConfig, SampleConfig, TextEncoderConfig
    from tenku.models.dit import DiT
    from tenku.models.text import ByteTextEncoder
    from tenku.pipeline import TenkuPipeline

    text = ByteTextEncoder(TextEncoderConfig(dim=16, depth=1, num_heads=2, mlp_ratio=2.0, max_length=32))
    dit = DiT(DiTConfig(in_channels=CFG.latent_channels, patch_size=(1, 1, 1), hidden_size=16, depth=1,
                        num_heads=2, mlp_ratio=2.0, text_dim=16))
    pipe = TenkuPipeline(_perturbed(), dit, text, FlowConfig(), SampleConfig(num_frames=5, height=8, width=8,
                                                                              num_steps=2, guidance=1.0))
    pipe.save_pretrained(tmp_path / "p")
    vcfg, _ = read_model_configs(tmp_path / "p")
    assert isinstance(vcfg, PatchVAEConfig)
    back = TenkuPipeline.from_pretrained(tmp_path / "p")
    out = back("a red ball", seed=0)
    frames = np.asarray(out.frames[0] if isinstance(out.frames, list) else out.frames)
    assert frames.shape[-3:] == (8, 8, 3) and frames.shape[-4] == 5


def test_object_map_marks_the_coloured_pixels_of_each_block():
    from tenku.train.latents import object_map

    x = torch.full((1, 3, 5, 8, 8), -0.2)  # a grey floor
    x[0, 0, 0, 0:2, 0:2] = 1.0  # frame 0: 4 red-ish pixels in block (0, 0)
    x[0, 1, 3:5, 4:8, 4:8] = 0.9  # frames 3-4 (group 1): a green block at (1, 1)
    m = object_map(x, 4, 2)
    assert m.shape == (1, 3, 2, 2)
    assert m[0, 0, 0, 0] == pytest.approx(4 / 16)
    assert m[0, 2, 1, 1] == pytest.approx(1.0)
    assert m.sum() == pytest.approx(4 / 16 + 1.0)


def test_object_recall_fails_on_a_reconstruction_that_drops_small_objects():
    from tenku.eval.reconstruction import ObjectRecall
    from tenku.eval.suites import default_parser
    from tenku.world import make_clip, sample_scene

    clip = make_clip(sample_scene(3, "test_id", seconds=1.0))
    frames = clip.frames
    parser = default_parser()
    good, bad = ObjectRecall(), ObjectRecall()
    good.add_clip(frames, frames, parser, clip.meta.get("spec"))
    floor = np.median(frames.reshape(-1, 3), axis=0).astype(np.uint8)
    bad.add_clip(frames, np.broadcast_to(floor, frames.shape).copy(), parser, clip.meta.get("spec"))
    g, b = good.summary(), bad.summary()
    assert g["all"]["objects"] > 0
    assert g["all"]["recall"] == pytest.approx(1.0)
    assert b["all"]["recall"] == pytest.approx(0.0)
    assert g["psnr_db"] > b["psnr_db"]


def test_weighted_flow_loss_counts_the_weighted_positions_more():
    from tenku.flow.loss import flow_matching_loss

    x0 = torch.zeros(2, 3, 4, 4)
    noise = torch.zeros(2, 3, 4, 4)
    pred = torch.zeros(2, 3, 4, 4)
    pred[:, 0, 0, 0] = 1.0  # an error at one position only
    w = torch.ones(3, 4, 4)
    flat = flow_matching_loss([pred], [x0], [noise])
    same = flow_matching_loss([pred], [x0], [noise], positions=[w])
    heavy = w.clone()
    heavy[0, 0, 0] = 9.0
    more = flow_matching_loss([pred], [x0], [noise], positions=[heavy])
    assert same == pytest.approx(float(flat), rel=1e-6)
    assert float(more) > 5 * float(flat)
    with pytest.raises(ValueError, match="position weights"):
        flow_matching_loss([pred], [x0], [noise], positions=[torch.ones(2, 2)])


def test_object_weight_applies_only_to_samples_noised_to_at_most_its_max_t():
    """The DiT objective weights object positions (1 + w * share) only for samples with t <= max_t:
    max_t = 0 gives the plain loss exactly, max_t = 1 the weighted loss of every sample."""
    from tenku.config import DiTConfig, FlowConfig, TextEncoderConfig
    from tenku.models.dit import DiT
    from tenku.models.text import ByteTextEncoder
    from tenku.train.objectives import DiTObjective, object_position_weights
    from tenku.train.presets import TrainConfig, validate

    shares = [torch.full((2, 2, 2), 0.5), torch.ones(2, 2, 2)]
    w = object_position_weights(shares, torch.tensor([0.3, 0.7]), 8.0, 0.5)
    assert w[1] is None and torch.allclose(w[0], torch.full((2, 2, 2), 5.0))
    assert object_position_weights(shares, torch.tensor([0.3, 0.7]), 0.0, 1.0) is None

    torch.manual_seed(0)
    dit = DiT(DiTConfig(in_channels=4, patch_size=(1, 1, 1), hidden_size=32, depth=1, num_heads=2, mlp_ratio=2.0,
                        text_dim=16))
    text = ByteTextEncoder(TextEncoderConfig(dim=16, depth=1, num_heads=2, mlp_ratio=2.0, max_length=32))
    with torch.no_grad():  # a zero-initialised output layer would predict 0 everywhere: no position differs
        for p in dit.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    objective = DiTObjective(dit, text, FlowConfig(), (1, 1, 1)).eval()
    g = torch.Generator().manual_seed(1)
    latents = [torch.randn(4, 2, 4, 4, generator=g) for _ in range(3)]
    objects = [(torch.rand(2, 4, 4, generator=g) > 0.7).float() for _ in range(3)]

    def loss(weight, max_t):
        objective.object_weight, objective.object_max_t = weight, max_t
        gens = [torch.Generator().manual_seed(10 + j) for j in range(3)]
        with torch.no_grad():
            return float(objective(latents, ["a red ball"] * 3, gens, 0.0, objects)[0])

    plain = loss(0.0, 1.0)
    assert loss(8.0, 0.0) == pytest.approx(plain, rel=1e-6)  # every t > 0: no sample weighted
    assert abs(loss(8.0, 1.0) - plain) > 1e-3 * plain  # every sample weighted
    with pytest.raises(TenkuError, match="object_weight_max_t"):
        validate(TrainConfig(object_weight_max_t=1.5))


def test_estimated_objects_weigh_a_false_object_like_a_missed_one():
    """object_weight_from="target+estimate": a position where the model's clean estimate draws an object
    that the target lacks gets the object weight (with the target alone it weighs 1), one where both agree
    keeps it; in the objective the estimate comes from the model's own prediction, so the loss changes
    when the estimate shows objects and not when it shows none."""
    from tenku.config import DiTConfig, FlowConfig, TextEncoderConfig
    from tenku.models.dit import DiT
    from tenku.models.text import ByteTextEncoder
    from tenku.train.objectives import DiTObjective, object_position_weights
    from tenku.train.presets import TrainConfig, validate

    target = [torch.tensor([[[1.0, 0.0], [0.0, 0.0]]])]  # (T=1, 2, 2): an object at (0, 0)
    estimate = [torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])]  # the model draws it, and a false one at (1, 1)
    t = torch.tensor([0.9])
    alone = object_position_weights(target, t, 3.0)[0]
    both = object_position_weights(target, t, 3.0, estimate=estimate)[0]
    assert torch.allclose(alone, torch.tensor([[[4.0, 1.0], [1.0, 1.0]]]))
    assert torch.allclose(both, torch.tensor([[[4.0, 1.0], [1.0, 4.0]]]))

    torch.manual_seed(0)
    dit = DiT(DiTConfig(in_channels=4, patch_size=(1, 1, 1), hidden_size=32, depth=1, num_heads=2, mlp_ratio=2.0,
                        text_dim=16))
    text = ByteTextEncoder(TextEncoderConfig(dim=16, depth=1, num_heads=2, mlp_ratio=2.0, max_length=32))
    with torch.no_grad():
        for p in dit.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    objective = DiTObjective(dit, text, FlowConfig(), (1, 1, 1), object_weight=3.0).eval()
    g = torch.Generator().manual_seed(1)
    latents = [torch.randn(4, 2, 4, 4, generator=g) for _ in range(2)]
    objects = [torch.zeros(2, 4, 4) for _ in range(2)]  # targets without objects: weight 1 everywhere

    def loss(estimate_objects):
        objective.estimate_objects = estimate_objects
        gens = [torch.Generator().manual_seed(10 + j) for j in range(2)]
        with torch.no_grad():
            return float(objective(latents, ["a red ball"] * 2, gens, 0.0, objects)[0])

    seen = []

    def half_left(z):  # (B, C, T, H, W) -> (B, T, H, W): "objects" on the left half
        seen.append(tuple(z.shape))
        share = torch.zeros(z.shape[0], *z.shape[2:])
        share[..., :2] = 1.0
        return share

    plain = loss(None)
    assert loss(lambda z: torch.zeros(z.shape[0], *z.shape[2:])) == pytest.approx(plain, rel=1e-6)
    assert abs(loss(half_left) - plain) > 1e-3 * plain
    assert seen == [(2, 4, 2, 4, 4)]  # one decode for the batch of one grid
    with pytest.raises(TenkuError, match="object_weight_from"):
        validate(TrainConfig(object_weight_from="estimate"))


def test_first_frame_weight_scales_the_loss_of_latent_frame_zero_only():
    """first_frame_weight w: an error only in latent frame 0 costs w times as much (against frames of
    weight 1), an error elsewhere keeps its cost up to the renormalisation; object weights are kept and
    multiplied on frame 0, never changed in place; w <= 0 is refused."""
    from tenku.flow import flow_matching_loss
    from tenku.train.objectives import first_frame_weights
    from tenku.train.presets import TrainConfig, validate

    z = [torch.zeros(2, 3, 2, 2)]
    noise = [torch.zeros(2, 3, 2, 2)]
    err0, err2 = torch.zeros(2, 3, 2, 2), torch.zeros(2, 3, 2, 2)
    err0[:, 0], err2[:, 2] = 1.0, 1.0  # an error of 1 in latent frame 0 / frame 2 only
    assert first_frame_weights(None, z, 1.0) is None
    w = first_frame_weights(None, z, 4.0)
    assert torch.allclose(w[0], torch.tensor([4.0, 1.0, 1.0])[:, None, None].expand(3, 2, 2))
    f0, f2 = (float(flow_matching_loss([e], z, noise, positions=w)) for e in (err0, err2))
    assert f0 == pytest.approx(4 / 6) and f2 == pytest.approx(1 / 6) and f0 == pytest.approx(4 * f2)
    objects = [torch.full((3, 2, 2), 2.0)]
    both = first_frame_weights(objects, z, 4.0)
    assert torch.allclose(both[0][0], torch.full((2, 2), 8.0)) and torch.allclose(both[0][1:], objects[0][1:])
    assert torch.allclose(objects[0], torch.full((3, 2, 2), 2.0))  # the caller's weights are untouched
    with pytest.raises(TenkuError, match="first_frame_weight"):
        validate(TrainConfig(first_frame_weight=0))


def test_a_patch_vae_run_fits_its_code_trains_the_decoder_and_exports(tmp_path):
    """A real run on real mp4 shards: the linear maps start at the blocks' principal components (the first
    loss is already small), the encoder stays fixed with train_encoder=false, ``export`` of the VAE run
    writes a component whose latents equal the end-of-run export's, and a DiT with object weights trains
    on the cached latents and object maps."""
    from test_train_loop import write_shards

    from tenku.train.checkpoint import load_checkpoint, latest_checkpoint
    from tenku.train.tasks import export_run
    from tenku.train.latents import cache_latents
    from tenku.models.hub import load_vae
    from tenku.train.loop import train
    from tenku.train.presets import resolve_config

    data = write_shards(tmp_path / "data", sizes=((9, 16, 16), (9, 16, 16)), per_size=4)
    vae_dict = dict(_class_name="PatchVAE", latent_channels=8, spatial_factor=4, temporal_factor=2,
                    refine_channels=8, refine_blocks=1)
    cfg = resolve_config("vae", "tiny", overrides={"steps": 4}).replace(
        vae=vae_dict, train_encoder=False, linear_fit_clips=8, color_weight=4.0, kl_weight=0.0, flip=False,
        crop_frames=0, crop_size=0)
    summary = train("vae", cfg, data, tmp_path / "vae", progress=False)
    assert summary["metrics"]["psnr"] > 25  # the code was fitted before the first step, not learned in four
    state = load_checkpoint(latest_checkpoint(tmp_path / "vae"))
    assert state["data"] == str(data.resolve())
    end = load_vae(tmp_path / "vae", torch.device("cpu"))
    mid = export_run(tmp_path / "vae", tmp_path / "vae_mid")
    assert mid["kind"] == "vae"
    mid_vae = load_vae(tmp_path / "vae_mid", torch.device("cpu"))
    x = _video(9, 16, 16)
    assert torch.allclose(mid_vae.encode(x), end.encode(x), atol=1e-5)  # the same (held) encoder and scale
    cache_latents(tmp_path / "vae_mid", data, tmp_path / "lat", progress=False, log=lambda *a: None)
    from tenku.train.datasets import LatentSource

    item = LatentSource(tmp_path / "lat").load(0, torch.Generator())
    assert item["objects"].shape == item["latent"].shape[1:] and float(item["objects"].max()) > 0
    kept = LatentSource(tmp_path / "lat", in_memory=True)  # the cache file read whole and kept
    for i in range(len(kept)):
        a, b = kept.load(i, torch.Generator()), LatentSource(tmp_path / "lat").load(i, torch.Generator())
        assert torch.equal(a["latent"], b["latent"]) and torch.equal(a["objects"], b["objects"])
        assert a["captions"] == b["captions"]
    dcfg = resolve_config("dit", "tiny", overrides={"steps": 2}).replace(
        vae=vae_dict, object_weight=8.0, dit={**resolve_config("dit", "tiny").dit, "in_channels": 8})
    out = train("dit", dcfg, tmp_path / "lat", tmp_path / "dit", progress=False, finish=False)
    assert np.isfinite(out["loss"])
    est = train("dit", dcfg.replace(object_weight_from="target+estimate"), tmp_path / "lat", tmp_path / "dit_est",
                progress=False, finish=False)  # the clean estimates decoded by the cache's VAE
    assert np.isfinite(est["loss"]) and est["loss"] != pytest.approx(out["loss"], rel=1e-6)
    first = train("dit", dcfg.replace(first_frame_weight=4.0), tmp_path / "lat", tmp_path / "dit_first",
                  progress=False, finish=False)
    assert np.isfinite(first["loss"]) and first["loss"] != pytest.approx(out["loss"], rel=1e-6)


def test_whitened_code_has_unit_variance_channels_and_the_same_reconstruction():
    cfg = PatchVAEConfig(latent_channels=6, spatial_factor=2, temporal_factor=2, refine_blocks=0)
    g = torch.Generator().manual_seed(0)
    sd = torch.logspace(0, -2, 24)  # every value of a block with its own spread
    clips = [from_blocks(torch.randn(1, 12, 1, 4, 4, generator=g) * sd[:12].view(1, 12, 1, 1, 1),
                         torch.randn(1, 24, 2, 4, 4, generator=g) * sd.view(1, 24, 1, 1, 1), 2, 2)
             for _ in range(8)]
    white, plain = PatchVAE(cfg).eval(), PatchVAE(cfg).eval()
    white.fit_linear_(clips)
    plain.fit_linear_(clips, whiten=False)
    zw = torch.cat([white.encode(c)[:, :, 1:] for c in clips])  # group latents (N, C, k, h, w)
    zp = torch.cat([plain.encode(c)[:, :, 1:] for c in clips])
    var_w = zw.transpose(0, 1).reshape(6, -1).var(1)
    var_p = zp.transpose(0, 1).reshape(6, -1).var(1)
    assert torch.allclose(var_w, torch.ones(6), atol=0.02)  # fitted on these clips: unit variance
    assert var_p.max() / var_p.min() > 5  # unwhitened: the components' own spread (about 7.6 here)
    x = clips[0]
    assert torch.allclose(white.decode(white.encode(x)), plain.decode(plain.encode(x)), atol=1e-4)


def test_scaled_channels_keep_the_reconstruction_and_scale_the_code():
    vae = _perturbed()
    x = _video(5, 8, 12, seed=3)
    z, y = vae.encode(x), vae.decode(vae.encode(x))
    gain = torch.linspace(0.25, 4.0, CFG.latent_channels)
    vae.scale_channels_(gain)
    z2 = vae.encode(x)
    # z is normalised as (mean - shift) * scale with shift 0 here, so each channel scales by its gain
    assert torch.allclose(z2, z * gain.view(1, -1, 1, 1, 1), atol=ATOL)
    assert torch.allclose(vae.decode(z2), y, atol=ATOL)  # the refiner reads the rescaled code exactly
    assert vae.channel_deviations().shape == (CFG.latent_channels,)
    with pytest.raises(ValueError, match="positive"):
        vae.scale_channels_(-gain)


def test_channel_deviations_of_a_whitened_fit_are_the_components_spread():
    cfg = PatchVAEConfig(latent_channels=6, spatial_factor=2, temporal_factor=2, refine_blocks=0)
    vae = PatchVAE(cfg)
    clips = [_video(5, 8, 8, seed=s)[0] * torch.linspace(0.1, 1.0, 8).view(1, 1, 1, 8) for s in range(4)]
    vae.fit_linear_(clips)
    dev = vae.channel_deviations()
    assert bool((dev[:-1] >= dev[1:] - 1e-9).all())  # largest component first
    z = vae.encode(torch.stack(clips))[:, :, 1:]  # group latents: unit variance per channel when whitened
    assert torch.allclose(z.transpose(0, 1).flatten(1).std(1), torch.ones(6), atol=0.05)


def test_rescale_script_writes_a_vae_with_the_same_reconstruction(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    from tenku.models.hub import load_vae, save_pretrained

    cfg = PatchVAEConfig(latent_channels=6, spatial_factor=2, temporal_factor=2, refine_channels=8, refine_blocks=1)
    vae = PatchVAE(cfg)
    clips = [_video(5, 8, 8, seed=s)[0] * torch.linspace(0.1, 1.0, 8).view(1, 1, 1, 8) for s in range(4)]
    vae.fit_linear_(clips)
    save_pretrained(vae, vae.cfg, tmp_path / "vae")
    script = Path(__file__).resolve().parent.parent / "scripts" / "rescale_vae.py"
    r = subprocess.run([sys.executable, str(script), str(tmp_path / "vae"), str(tmp_path / "out"), "--power", "1"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    a, b = load_vae(tmp_path / "vae"), load_vae(tmp_path / "out")
    x = torch.stack(clips)
    with torch.no_grad():
        za, zb = a.encode(x), b.encode(x)
        assert torch.allclose(a.decode(za), b.decode(zb), atol=ATOL)
        dev = a.channel_deviations().float()
        gain = dev / dev.pow(2).mean().sqrt()  # power 1: the components' own spread, mean square 1
        assert torch.allclose(zb, za * gain.view(1, -1, 1, 1, 1), atol=1e-4)


def test_rescale_script_matches_the_code_of_an_earlier_copy(tmp_path):
    # the recipe caches latents from a rescaled copy of the fitted encoder while the decoder trains on;
    # --match gives the finished VAE exactly that copy's code, whatever the decoder became
    import subprocess
    import sys
    from pathlib import Path

    from tenku.models.hub import load_vae, save_pretrained

    cfg = PatchVAEConfig(latent_channels=6, spatial_factor=2, temporal_factor=2, refine_channels=8, refine_blocks=1)
    clips = [_video(5, 8, 8, seed=s)[0] * torch.linspace(0.1, 1.0, 8).view(1, 1, 1, 8) for s in range(4)]
    vae = PatchVAE(cfg)
    vae.fit_linear_(clips)
    save_pretrained(vae, vae.cfg, tmp_path / "encoder")
    with torch.no_grad():  # the decoder trains on: its linear map (and so its channel deviations) moves
        vae.decoder.group.weight.mul_(1.0 + 0.3 * torch.rand_like(vae.decoder.group.weight))
    save_pretrained(vae, vae.cfg, tmp_path / "final")
    script = str(Path(__file__).resolve().parent.parent / "scripts" / "rescale_vae.py")

    def run(*args):
        return subprocess.run([sys.executable, script, *map(str, args)], capture_output=True, text=True, timeout=120)

    assert run(tmp_path / "encoder", tmp_path / "encoder_scaled", "--power", "0.5").returncode == 0
    plain = run(tmp_path / "final", tmp_path / "by_power", "--power", "0.5")
    matched = run(tmp_path / "final", tmp_path / "matched", "--match", tmp_path / "encoder_scaled")
    assert plain.returncode == 0 and matched.returncode == 0, matched.stderr
    x = torch.stack(clips)
    with torch.no_grad():
        z_cache = load_vae(tmp_path / "encoder_scaled").encode(x)
        assert torch.allclose(load_vae(tmp_path / "matched").encode(x), z_cache, atol=1e-5)
        assert not torch.allclose(load_vae(tmp_path / "by_power").encode(x), z_cache, atol=1e-3)  # the defect
        final = load_vae(tmp_path / "final")
        assert torch.allclose(load_vae(tmp_path / "matched").decode(z_cache), final.decode(final.encode(x)),
                              atol=ATOL)

    other = PatchVAE(cfg)
    other.fit_linear_([c.flip(-1) * 0.5 for c in clips])  # another fit: not a rescaled copy
    save_pretrained(other, other.cfg, tmp_path / "other")
    refused = run(tmp_path / "final", tmp_path / "bad", "--match", tmp_path / "other")
    assert refused.returncode != 0 and "not a rescaled copy" in refused.stderr
    assert not (tmp_path / "bad").exists()
