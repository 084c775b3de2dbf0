"""Causal 3D VAE: the video compression network.

An image is a 1-frame video. A clip of ``1 + tf * k`` frames becomes ``1 + k`` latent frames and
H, W shrink by ``sf = patch_size * 2 ** (len(channel_mult) - 1)`` (``patch_size`` folds p x p pixels
into channels before the first convolution, which keeps full-resolution work small). Every convolution is causal in time (padded only
with the past: frame 0 held still), normalisation is per voxel (channel RMS norm), and temporal
down/upsampling keeps frame 0 on its own. So encoding the first frames of a clip gives the first
latents of the whole clip, and a clip can be processed in temporal chunks (first chunk: one latent
frame; then ``chunk_size`` latent frames) carrying each causal conv's last ``kt - 1`` input frames
forward: memory stays flat in the clip length and the result equals the full pass.

Spatial tiling (``tile=(th, tw)``: pixels for ``encode``, latents for ``decode``) splits big frames into
overlapping tiles blended linearly; it is close to, not equal to, the untiled result.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
import torch.nn as nn
import torch.nn.functional as F

from tenku.config import VAEConfig
from tenku.errors import UnsupportedSizeError
from tenku.models.layers import Cache, CausalConv3d, ChannelRMSNorm


def pixel_shuffle_3d(x: torch.Tensor, r: int) -> torch.Tensor:
    """(B, C*r*r, T, H, W) -> (B, C, T, H*r, W*r), channel order as ``F.pixel_shuffle``."""
    b, c, t, h, w = x.shape
    x = x.reshape(b, c // (r * r), r, r, t, h, w).permute(0, 1, 4, 5, 2, 6, 3)  # (B, C, T, H, r, W, r)
    return x.reshape(b, c // (r * r), t, h * r, w * r)


def pixel_unshuffle_3d(x: torch.Tensor, r: int) -> torch.Tensor:
    """(B, C, T, H, W) -> (B, C*r*r, T, H/r, W/r), the inverse of ``pixel_shuffle_3d``."""
    b, c, t, h, w = x.shape
    x = x.reshape(b, c, t, h // r, r, w // r, r).permute(0, 1, 4, 6, 2, 3, 5)  # (B, C, r, r, T, H/r, W/r)
    return x.reshape(b, c * r * r, t, h // r, w // r)


class ResBlock(nn.Module):
    """norm-SiLU-conv, norm-SiLU-conv, plus a (1x1x1 if needed) shortcut. Zero-init last conv: identity."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.norm1 = ChannelRMSNorm(cin)
        self.conv1 = CausalConv3d(cin, cout, 3)
        self.norm2 = ChannelRMSNorm(cout)
        self.conv2 = CausalConv3d(cout, cout, 3)
        self.skip = nn.Conv3d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)), cache)  # (B, cout, T, H, W)
        h = self.conv2(F.silu(self.norm2(h)), cache)  # (B, cout, T, H, W)
        return self.skip(x) + h


class Downsample(nn.Module):
    """Halve H, W with a strided conv; if ``temporal``, also halve time keeping frame 0 alone.

    Time: frame 0 is paired with a copy of itself, later frames in pairs (1,2), (3,4), ...;
    each pair is folded into channels and mixed back by a 1x1x1 conv: (1 + 2k) -> (1 + k) frames.
    """

    def __init__(self, channels: int, temporal: bool):
        super().__init__()
        self.temporal = temporal
        self.space = CausalConv3d(channels, channels, (1, 3, 3), stride=2)
        if temporal:
            self.time = nn.Conv3d(2 * channels, channels, 1)

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        x = self.space(x)  # (B, C, T, H/2, W/2)
        if not self.temporal:
            return x
        first = cache is None or self not in cache
        if cache is not None:
            cache[self] = True
        if first:
            x = torch.cat([x[:, :, :1], x], dim=2)  # (B, C, 2 + 2k, h, w)
        b, c, t, h, w = x.shape
        if t % 2:
            raise UnsupportedSizeError(
                f"temporal chunk of {t} frames cannot be halved; chunks after the first need "
                "a multiple of temporal_factor frames"
            )
        x = x.view(b, c, t // 2, 2, h, w).transpose(2, 3).reshape(b, 2 * c, t // 2, h, w)  # (B, 2C, t/2, h, w)
        return self.time(x)  # (B, C, t/2, h, w)


class Upsample(nn.Module):
    """Mirror of ``Downsample``: if ``temporal``, double time (frame 0 -> one frame), then 2x space
    by conv + pixel shuffle (initialised as nearest-neighbour upsampling, ICNR)."""

    def __init__(self, channels: int, temporal: bool):
        super().__init__()
        self.temporal = temporal
        if temporal:
            self.time = nn.Conv3d(channels, 2 * channels, 1)
        self.space = CausalConv3d(channels, 4 * channels, (1, 3, 3))

    def icnr_(self) -> None:
        """Start as repeat-in-time and nearest-in-space (no checkerboard at init)."""
        with torch.no_grad():
            w = self.space.conv.weight  # (4C, C, 1, 3, 3)
            c = w.shape[1]
            base = w[:c].clone()
            w.copy_(base.repeat_interleave(4, dim=0))
            self.space.conv.bias.copy_(self.space.conv.bias[:c].repeat_interleave(4))
            if self.temporal:
                wt = self.time.weight  # (2C, C, 1, 1, 1)
                wt.copy_(wt[:c].repeat(2, 1, 1, 1, 1))
                self.time.bias.copy_(self.time.bias[:c].repeat(2))

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        if self.temporal:
            first = cache is None or self not in cache
            if cache is not None:
                cache[self] = True
            b, c, t, h, w = x.shape
            x = self.time(x)  # (B, 2C, t, h, w)
            x = x.view(b, 2, c, t, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b, c, 2 * t, h, w)  # (B, C, 2t, h, w)
            if first:
                x = x[:, :, 1:]  # frame 0 decodes to one frame: (B, C, 2t-1, h, w)
        x = self.space(x, cache)  # (B, 4C, T, h, w)
        return pixel_shuffle_3d(x, 2)  # (B, C, T, 2h, 2w)


def _stage_plan(cfg: VAEConfig) -> tuple[list[int], list[bool]]:
    """Channels per stage and, per downsample, whether it also halves time (the deepest ones do)."""
    n = len(cfg.channel_mult)
    if cfg.patch_size < 1 or cfg.spatial_factor != cfg.patch_size * 2 ** (n - 1):
        raise ValueError(
            f"spatial_factor {cfg.spatial_factor} must be patch_size * 2 ** (len(channel_mult) - 1) "
            f"= {cfg.patch_size * 2 ** (n - 1)}"
        )
    if cfg.temporal_factor not in (1, 2, 4):
        raise ValueError(f"temporal_factor must be 1, 2 or 4, got {cfg.temporal_factor}")
    nt = int(math.log2(cfg.temporal_factor))
    if nt > n - 1:
        raise ValueError(f"temporal_factor {cfg.temporal_factor} needs at least {nt} downsampling stages")
    chans = [cfg.base_channels * m for m in cfg.channel_mult]
    temporal = [i >= (n - 1) - nt for i in range(n - 1)]
    return chans, temporal


class Encoder(nn.Module):
    """(B, 3, 1 + tf*k, H, W) -> moments (B, 2*latent, 1 + k, H/sf, W/sf)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans, temporal = _stage_plan(cfg)
        self.patch = cfg.patch_size
        self.conv_in = CausalConv3d(cfg.in_channels * self.patch**2, chans[0], 3)
        layers: list[nn.Module] = []
        c = chans[0]
        for i, co in enumerate(chans):
            for _ in range(cfg.num_res_blocks):
                layers.append(ResBlock(c, co))
                c = co
            if i < len(chans) - 1:
                layers.append(Downsample(c, temporal[i]))
        layers += [ResBlock(c, c), ResBlock(c, c)]
        self.layers = nn.ModuleList(layers)
        self.norm_out = ChannelRMSNorm(c)
        self.conv_out = CausalConv3d(c, 2 * cfg.latent_channels, 3)

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        if self.patch > 1:  # space-to-depth: (B, 3, T, H, W) -> (B, 3*p*p, T, H/p, W/p)
            x = pixel_unshuffle_3d(x, self.patch)
        x = self.conv_in(x, cache)  # (B, C0, T, H/p, W/p)
        for layer in self.layers:
            x = layer(x, cache)
        return self.conv_out(F.silu(self.norm_out(x)), cache)  # (B, 2*latent, T', H/sf, W/sf)


class Decoder(nn.Module):
    """(B, latent, 1 + k, h, w) -> (B, 3, 1 + tf*k, h*sf, w*sf)."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        chans, temporal = _stage_plan(cfg)
        c = chans[-1]
        self.conv_in = CausalConv3d(cfg.latent_channels, c, 3)
        layers: list[nn.Module] = [ResBlock(c, c), ResBlock(c, c)]
        for i in reversed(range(len(chans))):
            for _ in range(cfg.num_res_blocks + 1):
                layers.append(ResBlock(c, chans[i]))
                c = chans[i]
            if i > 0:
                layers.append(Upsample(c, temporal[i - 1]))
        self.layers = nn.ModuleList(layers)
        self.norm_out = ChannelRMSNorm(c)
        self.patch = cfg.patch_size
        self.conv_out = CausalConv3d(c, cfg.in_channels * self.patch**2, 3)

    def forward(self, z: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        x = self.conv_in(z, cache)  # (B, C_last, T', h, w)
        for layer in self.layers:
            x = layer(x, cache)
        x = self.conv_out(F.silu(self.norm_out(x)), cache)  # (B, 3*p*p, T, H/p, W/p)
        if self.patch > 1:  # depth-to-space
            x = pixel_shuffle_3d(x, self.patch)
        return x  # (B, 3, T, H, W)


def _tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    if length <= tile:
        return [0]
    stride = max(tile - overlap, 1)
    starts = list(range(0, length - tile, stride))
    return starts + [length - tile]


def _ramp(n: int, overlap: int, up: bool, down: bool, device: torch.device) -> torch.Tensor:
    """1D blend weight of one tile: linear ramps (never 0) over the overlaps shared with neighbours."""
    w = torch.ones(n, device=device)
    ov = min(overlap, n)
    if ov > 0:
        r = torch.arange(1, ov + 1, device=device, dtype=torch.float32) / (ov + 1)
        if up:
            w[:ov] = torch.minimum(w[:ov], r)
        if down:
            w[n - ov :] = torch.minimum(w[n - ov :], r.flip(0))
    return w


class LatentCodec:
    """Sizes, input checks and latent normalisation shared by the VAEs (``self.cfg`` holds
    ``in_channels``, ``latent_channels``, ``spatial_factor``, ``temporal_factor``, ``latent_scale`` and
    ``latent_shift``): a clip of ``1 + tf * k`` frames is ``1 + k`` latent frames."""

    # ---- sizes -------------------------------------------------------------------------------
    @property
    def spatial_factor(self) -> int:
        return self.cfg.spatial_factor

    @property
    def temporal_factor(self) -> int:
        return self.cfg.temporal_factor

    def num_latent_frames(self, num_frames: int) -> int:
        tf = self.cfg.temporal_factor
        if num_frames < 1 or (num_frames - 1) % tf:
            lo = 1 + tf * max((num_frames - 1) // tf, 0)
            raise UnsupportedSizeError(
                f"{num_frames} frames cannot be encoded: the VAE needs 1 + {tf}*k frames "
                f"(e.g. {lo} or {lo + tf}); trim or pad the clip"
            )
        return 1 + (num_frames - 1) // tf

    def num_frames(self, num_latent_frames: int) -> int:
        if num_latent_frames < 1:
            raise UnsupportedSizeError(f"need at least 1 latent frame, got {num_latent_frames}")
        return 1 + self.cfg.temporal_factor * (num_latent_frames - 1)

    def _check_video(self, video: torch.Tensor) -> None:
        if video.ndim != 5 or video.shape[1] != self.cfg.in_channels:
            raise UnsupportedSizeError(
                f"video must be (B, {self.cfg.in_channels}, T, H, W), got shape {tuple(video.shape)}"
            )
        self.num_latent_frames(video.shape[2])
        sf = self.cfg.spatial_factor
        h, w = video.shape[-2:]
        if h % sf or w % sf:
            raise UnsupportedSizeError(
                f"frame size {w}x{h} is not a multiple of {sf}; resize or crop to e.g. "
                f"{max(sf, w // sf * sf)}x{max(sf, h // sf * sf)}"
            )

    def _check_latent(self, z: torch.Tensor) -> None:
        if z.ndim != 5 or z.shape[1] != self.cfg.latent_channels:
            raise UnsupportedSizeError(
                f"latent must be (B, {self.cfg.latent_channels}, T, h, w), got shape {tuple(z.shape)}"
            )

    # ---- normalisation -----------------------------------------------------------------------
    def normalize(self, mean: torch.Tensor) -> torch.Tensor:
        return (mean - self.cfg.latent_shift) * self.cfg.latent_scale

    def denormalize(self, z: torch.Tensor) -> torch.Tensor:
        return z / self.cfg.latent_scale + self.cfg.latent_shift


class CausalVAE(LatentCodec, nn.Module):
    """Causal 3D VAE with chunked (exact) and tiled (blended) encode/decode. See the module docstring."""

    def __init__(self, cfg: VAEConfig):
        super().__init__()
        self.cfg = cfg
        self.encoder = Encoder(cfg)
        self.decoder = Decoder(cfg)
        self.initialize_weights()

    def initialize_weights(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="linear")  # std = 1/sqrt(fan_in)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, ResBlock):  # residual branches start at zero: a fresh block is the identity
                nn.init.zeros_(m.conv2.conv.weight)
            if isinstance(m, Upsample):
                m.icnr_()

    # ---- chunk/tile machinery ----------------------------------------------------------------
    @staticmethod
    def _chunks(n: int, first: int, size: int | None) -> list[tuple[int, int]]:
        """(start, stop) along time: [0, first), then pieces of ``size`` (None: one piece)."""
        if size is None:
            return [(0, n)]
        if size < 1:
            raise UnsupportedSizeError(f"chunk_size must be >= 1 latent frame, got {size}")
        out = [(0, min(first, n))]
        s = first
        while s < n:
            out.append((s, min(s + size, n)))
            s += size
        return out

    def _run_tiled(
        self,
        net: nn.Module,
        x: torch.Tensor,
        time_chunks: list[tuple[int, int]],
        tile: tuple[int, int] | None,
        scale: int,
        up: bool,
        overlap: float = 0.25,
    ) -> Iterator[torch.Tensor]:
        """Run ``net`` over time chunks (outer) and spatial tiles (inner, one causal cache per tile).

        ``scale`` is the spatial ratio between input and output (``up``: output is larger)."""
        H, W = x.shape[-2:]
        if tile is None:
            tiles = [(0, H, 0, W)]
            ov_out = (0, 0)
        else:
            th, tw = int(tile[0]), int(tile[1])
            unit = 1 if up else scale
            if th < unit or tw < unit or th % unit or tw % unit:
                raise UnsupportedSizeError(f"tile {tile} must be positive multiples of {unit}")
            if not 0.0 <= overlap < 1.0:
                raise UnsupportedSizeError(f"tile_overlap must be in [0, 1), got {overlap}")
            ovh = int(th * overlap) // unit * unit
            ovw = int(tw * overlap) // unit * unit
            tiles = [
                (y, min(y + th, H), x0, min(x0 + tw, W))
                for y in _tile_starts(H, th, ovh)
                for x0 in _tile_starts(W, tw, ovw)
            ]
            ov_out = (ovh * scale, ovw * scale) if up else (ovh // scale, ovw // scale)
        caches: list[Cache | None] = [None if len(time_chunks) == 1 else {} for _ in tiles]
        r = (lambda n: n * scale) if up else (lambda n: n // scale)
        for t0, t1 in time_chunks:
            xc = x[:, :, t0:t1]
            if len(tiles) == 1:
                yield net(xc, caches[0])
                continue
            out = None
            wsum = None
            for (y0, y1, x0, x1), cache in zip(tiles, caches):
                y = net(xc[..., y0:y1, x0:x1], cache)  # (B, C, t, r(y1-y0), r(x1-x0))
                if out is None:
                    out = y.new_zeros(*y.shape[:3], r(H), r(W))
                    wsum = torch.zeros(r(H), r(W), device=y.device, dtype=torch.float32)
                wy = _ramp(y.shape[-2], ov_out[0], y0 > 0, y1 < H, y.device)
                wx = _ramp(y.shape[-1], ov_out[1], x0 > 0, x1 < W, y.device)
                wt = wy[:, None] * wx[None, :]  # (h, w)
                out[..., r(y0) : r(y1), r(x0) : r(x1)] += y * wt.to(y.dtype)
                wsum[r(y0) : r(y1), r(x0) : r(x1)] += wt
            yield out / wsum.to(out.dtype)

    # ---- public API --------------------------------------------------------------------------
    def encode_moments(
        self,
        video: torch.Tensor,
        chunk_size: int | None = None,
        tile: tuple[int, int] | None = None,
        tile_overlap: float = 0.25,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Raw (unnormalised) posterior mean and logvar, each (B, latent, 1 + k, H/sf, W/sf)."""
        self._check_video(video)
        tf = self.cfg.temporal_factor
        chunks = self._chunks(video.shape[2], 1, None if chunk_size is None else tf * chunk_size)
        parts = list(
            self._run_tiled(self.encoder, video, chunks, tile, self.cfg.spatial_factor, False, tile_overlap)
        )
        moments = parts[0] if len(parts) == 1 else torch.cat(parts, dim=2)
        mean, logvar = moments.chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def encode(
        self,
        video: torch.Tensor,
        chunk_size: int | None = None,
        tile: tuple[int, int] | None = None,
        sample: bool = False,
        generator: torch.Generator | None = None,
        tile_overlap: float = 0.25,
    ) -> torch.Tensor:
        """video (B, 3, 1 + tf*k, H, W) in [-1, 1] -> normalised latent (B, latent, 1 + k, H/sf, W/sf).

        ``chunk_size``: latent frames per chunk after the first (None: one pass). ``tile``: (th, tw)
        pixels, multiples of sf, overlapping by ``tile_overlap`` of a tile. ``sample``: draw from the
        posterior instead of taking its mean."""
        mean, logvar = self.encode_moments(video, chunk_size, tile, tile_overlap)
        if sample:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
            mean = mean + torch.exp(0.5 * logvar) * noise
        return self.normalize(mean)

    def decode_iter(
        self,
        z: torch.Tensor,
        chunk_size: int = 1,
        tile: tuple[int, int] | None = None,
        tile_overlap: float = 0.25,
    ) -> Iterator[torch.Tensor]:
        """Stream a normalised latent (B, latent, T', h, w) as (B, 3, t_i, H, W) chunks in time order:
        latent frame 0 -> 1 frame, then ``chunk_size`` latent frames -> ``tf * chunk_size`` frames."""
        self._check_latent(z)
        chunks = self._chunks(z.shape[2], 1, chunk_size)
        sf = self.cfg.spatial_factor
        for part in self._run_tiled(self.decoder, self.denormalize(z), chunks, tile, sf, True, tile_overlap):
            yield part.clamp(-1.0, 1.0)

    def decode(
        self,
        z: torch.Tensor,
        chunk_size: int | None = None,
        tile: tuple[int, int] | None = None,
        tile_overlap: float = 0.25,
    ) -> torch.Tensor:
        """Normalised latent (B, latent, 1 + k, h, w) -> video (B, 3, 1 + tf*k, h*sf, w*sf) in [-1, 1].

        ``chunk_size``: latent frames per chunk after the first (None: one pass); ``tile``: (th, tw) latents."""
        self._check_latent(z)
        if chunk_size is None:
            chunks = [(0, z.shape[2])]
            sf = self.cfg.spatial_factor
            parts = list(self._run_tiled(self.decoder, self.denormalize(z), chunks, tile, sf, True, tile_overlap))
            return parts[0].clamp(-1.0, 1.0)
        return torch.cat(list(self.decode_iter(z, chunk_size, tile, tile_overlap)), dim=2)

    def forward(
        self, video: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Training pass: (recon (B,3,T,H,W) unclamped, mean, logvar) with raw (unnormalised) moments."""
        self._check_video(video)
        mean, logvar = self.encoder(video).chunk(2, dim=1)  # each (B, latent, T', h, w)
        logvar = logvar.clamp(-30.0, 20.0)
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        z = mean + torch.exp(0.5 * logvar) * noise
        return self.decoder(z), mean, logvar

    def num_params(self) -> int:
        return sum(p.numel() for p in self.parameters())
