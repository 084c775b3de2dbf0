"""Causal 3D VAE: shapes, causality, chunked == full, tiling, training stability, bad input.

Tolerances: chunked/prefix equality atol 1e-5 in float32 (measured differences are ~1e-7).
The zero-initialised residual branches are perturbed first so every conv takes part in the checks.
"""

import math

import pytest
import torch

from tenku.config import PRESETS, VAEConfig
from tenku.errors import UnsupportedSizeError
from tenku.models.vae import CausalVAE

ATOL = 1e-5


def _vae(cfg: VAEConfig | None = None, seed: int = 0) -> CausalVAE:
    torch.manual_seed(seed)
    vae = CausalVAE(cfg or PRESETS["tiny-test"]["vae"]).eval()
    with torch.no_grad():
        for p in vae.parameters():
            p.add_(torch.randn_like(p) * 0.02)
    return vae


def _video(t: int, h: int, w: int, b: int = 1, seed: int = 1) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(b, 3, t, h, w, generator=g) * 2 - 1


@pytest.fixture(scope="module")
def vae() -> CausalVAE:
    return _vae()


@pytest.mark.parametrize("t,h,w", [(1, 8, 8), (5, 48, 80), (9, 40, 24), (1, 40, 24), (13, 16, 32)])
def test_shapes(vae, t, h, w):
    cfg = vae.cfg
    x = _video(t, h, w, b=2)
    with torch.no_grad():
        z = vae.encode(x)
        k = (t - 1) // cfg.temporal_factor
        assert z.shape == (2, cfg.latent_channels, 1 + k, h // 8, w // 8)
        assert vae.num_latent_frames(t) == 1 + k and vae.num_frames(1 + k) == t
        y = vae.decode(z)
        assert y.shape == x.shape
        assert y.min() >= -1 and y.max() <= 1
        recon, mean, logvar = vae(x)
    assert recon.shape == x.shape and mean.shape == logvar.shape == z.shape


@pytest.mark.parametrize("tf,mult,patch", [(1, (1, 1, 2), 2), (2, (1, 2), 2), (2, (1, 2), 1), (4, (1, 1, 2), 1)])
def test_temporal_factors(tf, mult, patch):
    sf = patch * 2 ** (len(mult) - 1)
    cfg = VAEConfig(latent_channels=4, base_channels=8, channel_mult=mult, patch_size=patch,
                    spatial_factor=sf, temporal_factor=tf)
    vae = _vae(cfg)
    x = _video(1 + 2 * tf, sf * 2, sf * 3)
    with torch.no_grad():
        z = vae.encode(x)
        assert z.shape == (1, 4, 3, 2, 3)
        assert torch.allclose(vae.encode(x, chunk_size=1), z, atol=ATOL)
        assert vae.decode(z).shape == x.shape


def test_bad_sizes_are_clear_errors(vae):
    with pytest.raises(UnsupportedSizeError, match="1 \\+ 4\\*k"):
        vae.encode(_video(4, 16, 16))
    with pytest.raises(UnsupportedSizeError, match="multiple of 8"):
        vae.encode(_video(5, 20, 16))
    with pytest.raises(UnsupportedSizeError, match="video must be"):
        vae.encode(torch.zeros(1, 1, 5, 16, 16))
    with pytest.raises(UnsupportedSizeError, match="latent must be"):
        vae.decode(torch.zeros(1, 3, 2, 2, 2))
    with pytest.raises(UnsupportedSizeError, match="chunk_size"):
        vae.decode(torch.zeros(1, 4, 2, 2, 2), chunk_size=0)
    with pytest.raises(ValueError, match="spatial_factor"):
        CausalVAE(VAEConfig(channel_mult=(1, 2), spatial_factor=8))
    with pytest.raises(ValueError, match="downsampling stages"):
        CausalVAE(VAEConfig(channel_mult=(1, 2), spatial_factor=4, patch_size=2, temporal_factor=4))


def test_encode_is_causal(vae):
    x = _video(13, 16, 24)
    with torch.no_grad():
        z_full = vae.encode(x)  # 4 latent frames
        for k in range(3):
            z_prefix = vae.encode(x[:, :, : 1 + 4 * k])
            assert torch.allclose(z_prefix, z_full[:, :, : 1 + k], atol=ATOL)
        # the check can fail: changing a late frame must change the late latents, not the early ones
        x2 = x.clone()
        x2[:, :, 9:] = -x2[:, :, 9:]
        z2 = vae.encode(x2)
    assert torch.allclose(z2[:, :, :3], z_full[:, :, :3], atol=ATOL)
    assert (z2[:, :, 3] - z_full[:, :, 3]).abs().max() > 1e-3


def test_decode_is_causal(vae):
    z = torch.randn(1, 4, 4, 2, 3)
    with torch.no_grad():
        full = vae.decode(z)
        prefix = vae.decode(z[:, :, :2])
    assert torch.allclose(prefix, full[:, :, :5], atol=ATOL)


def test_chunked_equals_full(vae):
    x = _video(17, 16, 24)
    with torch.no_grad():
        z = vae.encode(x)
        for cs in (1, 2, 3):
            assert torch.allclose(vae.encode(x, chunk_size=cs), z, atol=ATOL), cs
        y = vae.decode(z)
        for cs in (1, 2, 4):
            assert torch.allclose(vae.decode(z, chunk_size=cs), y, atol=ATOL), cs
        parts = list(vae.decode_iter(z, chunk_size=2))
        assert [p.shape[2] for p in parts] == [1, 8, 8]
        assert torch.allclose(torch.cat(parts, 2), y, atol=ATOL)
        # the check can fail: dropping the carried conv frames between chunks changes the result
        cache, parts = {}, []
        for sl in (slice(0, 1), slice(1, 9), slice(9, 17)):
            parts.append(vae.encoder(x[:, :, sl], cache))
            cache = {k: v for k, v in cache.items() if not isinstance(v, torch.Tensor)}
        mean = torch.cat(parts, 2).chunk(2, dim=1)[0]
    assert (mean[:, :, 1:] - z[:, :, 1:]).abs().max() > 1e-3


def test_tiled_close_to_untiled(vae):
    torch.manual_seed(3)
    z = torch.randn(1, 4, 2, 6, 32)
    with torch.no_grad():
        y = vae.decode(z)
        errs = {}
        for tile, ov in [((6, 8), 0.5), ((6, 16), 0.0), ((6, 16), 0.5), ((6, 24), 0.5)]:
            yt = vae.decode(z, tile=tile, tile_overlap=ov)
            assert yt.shape == y.shape
            errs[tile, ov] = (yt - y).abs().mean().item()
        # chunked and tiled together stream the same as tiled alone
        yc = vae.decode(z, tile=(6, 16), tile_overlap=0.5, chunk_size=1)
        assert torch.allclose(yc, vae.decode(z, tile=(6, 16), tile_overlap=0.5), atol=ATOL)
        zt = vae.encode(y, tile=(48, 128), tile_overlap=0.5)
        z0 = vae.encode(y)
    scale = y.abs().mean().item()
    assert errs[(6, 16), 0.5] < 0.05 * scale  # measured ~0.014 / 0.47
    assert errs[(6, 24), 0.5] < errs[(6, 16), 0.5] < errs[(6, 8), 0.5]  # bigger tiles -> closer
    assert errs[(6, 16), 0.5] < errs[(6, 16), 0.0]  # overlap + blending beats hard seams
    assert (zt - z0).abs().mean() < 0.1 * z0.abs().mean()  # measured ~0.023 / 0.60
    with pytest.raises(UnsupportedSizeError, match="tile"):
        vae.encode(y, tile=(12, 16))


def test_latent_normalisation_round_trip():
    cfg = PRESETS["tiny-test"]["vae"].replace(latent_scale=0.5, latent_shift=0.25)
    vae = _vae(cfg)
    ref = _vae()  # same weights (same seed), no normalisation
    x = _video(5, 16, 16)
    with torch.no_grad():
        z, z_ref = vae.encode(x), ref.encode(x)
        assert torch.allclose(z, (z_ref - 0.25) * 0.5, atol=ATOL)
        assert torch.allclose(vae.decode(z), ref.decode(z_ref), atol=ATOL)


def test_default_init_trains_stably():
    torch.manual_seed(0)
    vae = CausalVAE(PRESETS["tiny-test"]["vae"])
    x = _video(5, 8, 16, b=2)
    x = torch.nn.functional.avg_pool3d(x, (1, 3, 3), 1, (0, 1, 1))  # smooth, learnable content
    opt = torch.optim.Adam(vae.parameters(), lr=2e-3)
    losses = []
    for _ in range(15):
        recon, mean, logvar = vae(x)
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()
        loss = (recon - x).pow(2).mean() + 1e-4 * kl
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert all(math.isfinite(v) for v in losses)
    assert losses[-1] < 0.3 * losses[0], losses[::4]  # measured ~0.28 -> ~0.04


def test_presets_build():
    for name in ("tiny-test", "world-tiny"):
        vae = CausalVAE(PRESETS[name]["vae"])
        assert vae.num_latent_frames(17) == 5
    wt = PRESETS["world-tiny"]["vae"]
    ratio = (3 * 17 * 64 * 64) / (wt.latent_channels * 5 * 8 * 8)
    assert ratio > 40  # 64x64x17 RGB -> 16x5x8x8 latent
