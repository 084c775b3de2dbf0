"""Patch VAE: a causal spacetime block code with a learned decoder.

The clip is cut into blocks that keep frame 0 on its own: frame 0 in ``sf x sf`` pixel blocks, then
every group of ``tf`` frames in ``tf x sf x sf`` blocks, so ``1 + tf * k`` frames become ``1 + k``
latent frames of ``(H / sf, W / sf)`` positions, as the conv VAE's latent. Each block is mapped to
``latent_channels`` values by one linear map (one for frame 0, one for the later groups); the decoder
is the transposed linear map plus a refiner: causal 3D convolutions over the latent grid that look at
each block's neighbours in space and its past in time and add a correction to every pixel of the block
(zero at initialisation).

Why a block code: the world's objects are a few pixels across, and a small convolutional VAE trained
briefly erased them (parser recall 0-11% on small and medium objects). The linear maps start as the
principal components of the training blocks (``fit_linear_``), which already keep most objects; the
refiner and the object-weighted training then add what a linear code cannot. Encoding is per block
(chunked and tiled encoding give exactly the full result); decoding is causal in time, so a clip
decodes in temporal chunks with the same result as one pass. There is no posterior noise: ``logvar``
is a constant, so the code is deterministic (the training KL term reduces to a small penalty on the
latent's size).
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from tenku.config import PatchVAEConfig
from tenku.errors import UnsupportedSizeError
from tenku.models.layers import Cache, CausalConv3d, ChannelRMSNorm
from tenku.models.vae import LatentCodec, ResBlock, pixel_shuffle_3d, pixel_unshuffle_3d

LOGVAR = -30.0  # the constant posterior log-variance (a deterministic code)


def to_blocks(x: torch.Tensor, s: int, tf: int, first: bool) -> tuple[torch.Tensor | None, torch.Tensor | None]:
    """(B, c, T, H, W) -> frame-0 blocks (B, c*s*s, 1, h, w) (when ``first``) and group blocks
    (B, c*s*s*tf, k, h, w) of the remaining ``tf * k`` frames."""
    x0 = pixel_unshuffle_3d(x[:, :, :1], s) if first else None  # (B, c*s*s, 1, h, w)
    rest = x[:, :, 1:] if first else x
    if rest.shape[2] == 0:
        return x0, None
    b, c, t, H, W = rest.shape
    if t % tf:
        raise UnsupportedSizeError(f"{t} frames after frame 0 are not whole groups of {tf}; trim or pad the clip")
    r = pixel_unshuffle_3d(rest, s)  # (B, c*s*s, t, h, w)
    h, w = H // s, W // s
    r = r.reshape(b, c * s * s, t // tf, tf, h, w).transpose(2, 3)  # (B, c*s*s, tf, k, h, w)
    return x0, r.reshape(b, c * s * s * tf, t // tf, h, w)


def from_blocks(y0: torch.Tensor | None, yr: torch.Tensor | None, s: int, tf: int) -> torch.Tensor:
    """Inverse of ``to_blocks``: (B, c*s*s, 1, h, w) and (B, c*s*s*tf, k, h, w) -> (B, c, 1 + tf*k, H, W)."""
    parts = []
    if y0 is not None:
        parts.append(pixel_shuffle_3d(y0, s))  # (B, c, 1, H, W)
    if yr is not None:
        b, d, k, h, w = yr.shape
        r = yr.reshape(b, d // tf, tf, k, h, w).transpose(2, 3).reshape(b, d // tf, k * tf, h, w)
        parts.append(pixel_shuffle_3d(r, s))  # (B, c, tf*k, H, W)
    return parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)


def _first(module: nn.Module, cache: Cache | None) -> bool:
    """Whether this call holds frame 0 (one full pass, or the first chunk of a cached pass)."""
    first = cache is None or module not in cache
    if cache is not None:
        cache[module] = True
    return first


class PatchEncoder(nn.Module):
    """(B, 3, 1 + tf*k, H, W) -> moments (B, 2*latent, 1 + k, H/sf, W/sf) (the log-variance is constant)."""

    def __init__(self, cfg: PatchVAEConfig):
        super().__init__()
        s, tf, c, n = cfg.spatial_factor, cfg.temporal_factor, cfg.in_channels, cfg.latent_channels
        self.s, self.tf = s, tf
        self.first = nn.Conv3d(c * s * s, n, 1)  # frame-0 block -> latent
        self.group = nn.Conv3d(c * s * s * tf, n, 1)  # tf-frame block -> latent

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        x0, xr = to_blocks(x, self.s, self.tf, _first(self, cache))
        parts = ([self.first(x0)] if x0 is not None else []) + ([self.group(xr)] if xr is not None else [])
        mean = parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)  # (B, latent, T', h, w)
        return torch.cat([mean, torch.full_like(mean, LOGVAR)], dim=1)  # (B, 2*latent, T', h, w)


class PatchDecoder(nn.Module):
    """(B, latent, 1 + k, h, w) -> (B, 3, 1 + tf*k, h*sf, w*sf): linear block decode + causal refiner."""

    def __init__(self, cfg: PatchVAEConfig):
        super().__init__()
        s, tf, c, n, w = cfg.spatial_factor, cfg.temporal_factor, cfg.in_channels, cfg.latent_channels, cfg.refine_channels
        self.s, self.tf = s, tf
        self.first = nn.Conv3d(n, c * s * s, 1)  # linear decode of frame-0 blocks
        self.group = nn.Conv3d(n, c * s * s * tf, 1)  # linear decode of tf-frame blocks
        self.refine = cfg.refine_blocks > 0
        if self.refine:
            self.conv_in = CausalConv3d(n, w, 3)
            self.blocks = nn.ModuleList(ResBlock(w, w) for _ in range(cfg.refine_blocks))
            self.norm_out = ChannelRMSNorm(w)
            self.head_first = nn.Conv3d(w, c * s * s, 1)
            self.head_group = nn.Conv3d(w, c * s * s * tf, 1)

    def forward(self, z: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        first = _first(self, cache)
        z0, zr = (z[:, :, :1], z[:, :, 1:]) if first else (None, z)
        if zr is not None and zr.shape[2] == 0:
            zr = None
        y0 = self.first(z0) if z0 is not None else None  # (B, 3*s*s, 1, h, w)
        yr = self.group(zr) if zr is not None else None  # (B, 3*s*s*tf, k, h, w)
        if self.refine:
            hdn = self.conv_in(z, cache)  # (B, W, T', h, w)
            for blk in self.blocks:
                hdn = blk(hdn, cache)
            hdn = F.silu(self.norm_out(hdn))
            if y0 is not None:
                y0 = y0 + self.head_first(hdn[:, :, :1])
            if yr is not None:
                yr = yr + self.head_group(hdn[:, :, 1:] if first else hdn)
        return from_blocks(y0, yr, self.s, self.tf)  # (B, 3, T, H, W)


class PatchVAE(LatentCodec, nn.Module):
    """The block code behind the same interface as ``CausalVAE`` (encode/decode, chunks, normalisation)."""

    def __init__(self, cfg: PatchVAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = PatchEncoder(cfg)
        self.decoder = PatchDecoder(cfg)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="linear")
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, ResBlock):
                nn.init.zeros_(m.conv2.conv.weight)
        if self.decoder.refine:  # the refiner starts as no correction: the decoder is the linear map
            for head in (self.decoder.head_first, self.decoder.head_group):
                nn.init.zeros_(head.weight)

    @torch.no_grad()
    def fit_linear_(self, videos: list[torch.Tensor] | torch.Tensor, whiten: bool = True) -> dict[str, float]:
        """Set both linear maps to the principal components of the blocks of ``videos`` (clips
        (3, T, H, W) or batches (N, 3, T, H, W), in [-1, 1], of any valid sizes): the encoder projects a
        block's deviation from the mean block onto the top ``latent_channels`` components, the decoder
        maps back. ``whiten``: each latent channel is divided by its component's deviation, so every
        channel has unit variance on these clips (the reconstruction is the same either way): a
        denoiser's error in a channel of fine detail then decodes as small as that detail is, and the
        floor's few strong components no longer outlast the noise. Returns the share of the block
        variance kept, for frame-0 and for group blocks."""
        s, tf, n = self.cfg.spatial_factor, self.cfg.temporal_factor, self.cfg.latent_channels
        sums: dict[str, list] = {}
        for v in ([videos] if torch.is_tensor(videos) else videos):
            v = v[None] if v.ndim == 4 else v
            self._check_video(v)
            for name, blocks in zip(("first", "group"), to_blocks(v.double(), s, tf, True)):
                if blocks is None:
                    continue
                rows = blocks.permute(0, 2, 3, 4, 1).reshape(-1, blocks.shape[1])  # (n, d)
                acc = sums.setdefault(name, [0, 0.0, 0.0])
                acc[0] += rows.shape[0]
                acc[1] = acc[1] + rows.sum(0)
                acc[2] = acc[2] + rows.T @ rows
        kept = {}
        for name, enc, dec in (("first", self.encoder.first, self.decoder.first),
                               ("group", self.encoder.group, self.decoder.group)):
            if name not in sums:
                continue
            count, total, outer = sums[name]
            mu = total / count
            cov = outer / count - torch.outer(mu, mu)  # (d, d)
            evals, evecs = torch.linalg.eigh(cov)  # ascending
            d = cov.shape[0]
            v = evecs[:, -n:].flip(1)  # (d, min(n, d)), largest first
            sd = evals[-n:].flip(0).clamp_min(1e-8).sqrt()  # (min(n, d),) deviation along each component
            if n > d:  # more channels than a block has values (a small frame-0 block): the rest stay 0
                v = torch.cat([v, v.new_zeros(d, n - d)], dim=1)
                sd = torch.cat([sd, sd.new_ones(n - d)])
            kept[name] = float(evals[-n:].clamp_min(0).sum() / evals.clamp_min(0).sum().clamp_min(1e-12))
            if not whiten:
                sd = torch.ones_like(sd)
            e = (v / sd).T  # (n, d): block -> latent
            enc.weight.copy_(e.reshape(n, d, 1, 1, 1).to(enc.weight))
            enc.bias.copy_((-(e @ mu)).to(enc.bias))
            dec.weight.copy_((v * sd).reshape(d, n, 1, 1, 1).to(dec.weight))
            dec.bias.copy_(mu.to(dec.bias))
        return kept

    def channel_deviations(self) -> torch.Tensor:
        """(latent,) the spread each latent channel stands for in pixels: the norm of its column in the
        linear group decoder (after a whitened ``fit_linear_``, the deviation of its component)."""
        w = self.decoder.group.weight.detach().double()  # (d, latent, 1, 1, 1)
        return w.flatten(2).squeeze(-1).norm(dim=0)  # (latent,)

    @torch.no_grad()
    def scale_channels_(self, gain: torch.Tensor) -> None:
        """Multiply latent channel i by ``gain[i]`` (> 0) in the code, leaving the reconstruction exactly
        as it was: the encoder's rows are scaled by the gain and every map that reads the latent (both
        linear decoders and the refiner's first convolution) by its inverse. ``gain = dev ** p`` with
        ``dev = channel_deviations()`` moves a whitened code part of the way back to its components'
        spread (p = 1: unwhitened), so a denoiser's loss weighs a block's strong components above its
        fine detail."""
        gain = torch.as_tensor(gain, dtype=torch.float64).flatten()
        n = self.cfg.latent_channels
        if gain.numel() != n or not bool((gain > 0).all()) or not bool(torch.isfinite(gain).all()):
            raise ValueError(f"gain must be {n} positive finite values, got {gain.numel()}")
        for enc in (self.encoder.first, self.encoder.group):
            g = gain.to(enc.weight)
            enc.weight.mul_(g.view(n, 1, 1, 1, 1))
            enc.bias.mul_(g)
        convs = [self.decoder.first, self.decoder.group]
        if self.decoder.refine:
            convs.append(self.decoder.conv_in.conv)
        for conv in convs:  # weights (out, latent, ...): divide each input channel by its gain
            g = gain.to(conv.weight)
            conv.weight.div_(g.view(1, n, *([1] * (conv.weight.ndim - 2))))

    # ---- public API (tiles are accepted and need no blending: the code is per block) ----------
    def encode_moments(self, video: torch.Tensor, chunk_size: int | None = None,
                       tile: tuple[int, int] | None = None, tile_overlap: float = 0.25
                       ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw (unnormalised) mean and the constant logvar, each (B, latent, 1 + k, H/sf, W/sf)."""
        self._check_video(video)
        mean, logvar = self.encoder(video).chunk(2, dim=1)
        return mean, logvar

    def encode(self, video: torch.Tensor, chunk_size: int | None = None, tile: tuple[int, int] | None = None,
               sample: bool = False, generator: torch.Generator | None = None, tile_overlap: float = 0.25
               ) -> torch.Tensor:
        """video (B, 3, 1 + tf*k, H, W) in [-1, 1] -> normalised latent (B, latent, 1 + k, H/sf, W/sf)."""
        mean, _ = self.encode_moments(video)
        return self.normalize(mean)

    def decode_iter(self, z: torch.Tensor, chunk_size: int = 1, tile: tuple[int, int] | None = None,
                    tile_overlap: float = 0.25) -> Iterator[torch.Tensor]:
        """Stream a normalised latent as (B, 3, t_i, H, W) chunks: latent frame 0 -> 1 frame, then
        ``chunk_size`` latent frames -> ``tf * chunk_size`` frames (equal to one pass)."""
        self._check_latent(z)
        if chunk_size < 1:
            raise UnsupportedSizeError(f"chunk_size must be >= 1 latent frame, got {chunk_size}")
        x = self.denormalize(z)
        cache: Cache = {}
        bounds = [(0, 1)] + [(s, min(s + chunk_size, z.shape[2])) for s in range(1, z.shape[2], chunk_size)]
        for t0, t1 in bounds:
            yield self.decoder(x[:, :, t0:t1], cache).clamp(-1.0, 1.0)

    def decode(self, z: torch.Tensor, chunk_size: int | None = None, tile: tuple[int, int] | None = None,
               tile_overlap: float = 0.25) -> torch.Tensor:
        """Normalised latent (B, latent, 1 + k, h, w) -> video (B, 3, 1 + tf*k, h*sf, w*sf) in [-1, 1]."""
        self._check_latent(z)
        if chunk_size is None:
            return self.decoder(self.denormalize(z)).clamp(-1.0, 1.0)
        return torch.cat(list(self.decode_iter(z, chunk_size)), dim=2)

    def forward(self, video: torch.Tensor, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass: (recon unclamped, mean, logvar) with raw moments."""
        self._check_video(video)
        mean, logvar = self.encoder(video).chunk(2, dim=1)
        return self.decoder(mean), mean, logvar

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
