"""Small building blocks shared by the VAE and the DiT.

* ``CausalConv3d``: a 3D convolution padded only with past frames in time, with an optional
  cache that carries the last ``kernel_t - 1`` input frames from one temporal chunk to the next.
* ``ChannelRMSNorm``: RMS norm over the channel axis of a (B, C, T, H, W) tensor; it looks at one
  voxel at a time, so it is causal, chunk-exact and tile-friendly (GroupNorm is none of these).
* ``TimestepEmbedder``: sinusoidal embedding of t in [0, 1] followed by an MLP (DiT style).
* RoPE helpers for 3D (t, h, w) rotary position embeddings.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

# A causal cache maps a module to what it must remember between temporal chunks.
# ``None`` means "one full pass": every module sees frame 0 in this call.
Cache = dict


def conv3d(x: torch.Tensor, conv: nn.Conv3d) -> torch.Tensor:
    """``conv(x)``, but on CPU float32 always through oneDNN. PyTorch's CPU heuristic sends batch-1
    conv3d with few channels to ``slow_conv3d`` (vol2col: ~6x slower and a 27x input-sized buffer),
    which is exactly the case of chunked inference; oneDNN supports autograd as well."""
    if x.device.type == "cpu" and x.dtype == torch.float32 and torch.backends.mkldnn.is_available():
        return torch.ops.aten.mkldnn_convolution(
            x.contiguous(), conv.weight, conv.bias, list(conv.padding), list(conv.stride), list(conv.dilation),
            conv.groups,
        )
    return conv(x)


class CausalConv3d(nn.Module):
    """Conv3d with causal time padding (replicate frame 0 into the past) and symmetric space padding.

    ``stride`` applies to (H, W) only; time stride is always 1 (temporal resampling is done by
    dedicated blocks that keep frame 0 separate). With ``cache`` the input of the previous chunk's
    last ``kt - 1`` frames is prepended instead of the padding, so chunked == full.
    """

    def __init__(self, cin: int, cout: int, kernel: int | tuple[int, int, int] = 3, stride: int = 1):
        super().__init__()
        kt, kh, kw = (kernel,) * 3 if isinstance(kernel, int) else kernel
        self.kt = kt
        self.stride = stride
        if stride == 1:  # symmetric space padding inside the conv (no extra copy of the input)
            self.space_pad = (0, 0, 0, 0)
            padding = (0, kh // 2, kw // 2)
        else:  # stride 2: pad right/bottom only, so H, W halve exactly
            self.space_pad = ((kw - 1) // 2, kw // 2, (kh - 1) // 2, kh // 2)
            padding = (0, 0, 0)
        self.conv = nn.Conv3d(cin, cout, (kt, kh, kw), stride=(1, stride, stride), padding=padding)

    def forward(self, x: torch.Tensor, cache: Cache | None = None) -> torch.Tensor:
        # x: (B, C, T, H, W)
        if self.kt > 1:
            prev = None if cache is None else cache.get(self)
            if prev is None:  # start of the clip: the past is frame 0 held still
                prev = x[:, :, :1].expand(-1, -1, self.kt - 1, -1, -1)
            x = torch.cat([prev, x], dim=2)  # (B, C, kt-1+T, H, W)
            if cache is not None:
                cache[self] = x[:, :, -(self.kt - 1) :].detach().clone()
        if any(self.space_pad):
            x = F.pad(x, self.space_pad)
        return conv3d(x, self.conv)  # (B, Cout, T, H/stride, W/stride)


class ChannelRMSNorm(nn.Module):
    """RMS norm over channels of (B, C, T, H, W), with a learned per-channel gain."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        x32 = x.float()
        x32 = x32 * torch.rsqrt(x32.pow(2).mean(dim=1, keepdim=True) + self.eps)
        return (x32.to(dtype)) * self.weight.view(1, -1, 1, 1, 1).to(dtype)


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of t in [0, 1] (scaled by 1000 as in DiT). t: (N,) -> (N, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = (t.float() * 1000.0)[:, None] * freqs[None]  # (N, half)
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)  # (N, 2*half)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimestepEmbedder(nn.Module):
    """t in [0, 1] -> (N, hidden): sinusoidal features then a two-layer MLP."""

    def __init__(self, hidden: int, freq_dim: int = 256):
        super().__init__()
        self.freq_dim = freq_dim
        self.mlp = nn.Sequential(nn.Linear(freq_dim, hidden), nn.SiLU(), nn.Linear(hidden, hidden))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        emb = timestep_embedding(t, self.freq_dim).to(self.mlp[0].weight.dtype)  # (N, freq_dim)
        return self.mlp(emb)  # (N, hidden)


def rope_axes_split(head_dim: int, axes: tuple[int, int, int]) -> tuple[int, int, int]:
    """Head-dim split over (t, h, w). ``(0, 0, 0)`` = automatic: h and w get 2*(d//6) each, t the rest."""
    if head_dim % 2:
        raise ValueError(f"RoPE needs an even head dim, got {head_dim}")
    if tuple(axes) == (0, 0, 0):
        hw = 2 * (head_dim // 6)
        axes = (head_dim - 2 * hw, hw, hw)
    if sum(axes) != head_dim or any(a % 2 for a in axes):
        raise ValueError(f"rope_axes {tuple(axes)} must be even and sum to the head dim {head_dim}")
    return tuple(axes)  # type: ignore[return-value]


def _rope_angles(grid: tuple[int, int, int], axes: tuple[int, int, int], theta: float, device: torch.device) -> torch.Tensor:
    """Rotation angle of every channel pair for the tokens of one (Tp, Hp, Wp) grid in t-major order,
    float64: (Tp*Hp*Wp, head_dim/2). Pair j of a head covers channels (2j, 2j+1)."""
    parts = []
    for n, d in zip(grid, axes):
        inv = 1.0 / (theta ** (torch.arange(0, d, 2, device=device, dtype=torch.float64) / d))  # (d/2,)
        parts.append(torch.arange(n, device=device, dtype=torch.float64)[:, None] * inv[None])  # (n, d/2)
    tp, hp, wp = grid
    return torch.cat(
        [
            parts[0][:, None, None, :].expand(tp, hp, wp, -1),
            parts[1][None, :, None, :].expand(tp, hp, wp, -1),
            parts[2][None, None, :, :].expand(tp, hp, wp, -1),
        ],
        dim=-1,
    ).reshape(tp * hp * wp, -1)  # (N, head_dim/2)


def rope_freqs_3d(grid: tuple[int, int, int], axes: tuple[int, int, int], theta: float, device: torch.device) -> torch.Tensor:
    """Complex rotations for the tokens of one (Tp, Hp, Wp) grid in t-major order: (Tp*Hp*Wp, head_dim/2).
    The DiT uses the real table of :func:`rope_table_3d` (same rotations); both work with :func:`apply_rope`."""
    ang = _rope_angles(grid, axes, theta, device)
    return torch.polar(torch.ones_like(ang), ang).to(torch.complex64)


def rope_table_3d(grid: tuple[int, int, int], axes: tuple[int, int, int], theta: float, device: torch.device) -> torch.Tensor:
    """The rotations of :func:`rope_freqs_3d` as a real table (Tp*Hp*Wp, 2, head_dim), float32:
    ``[:, 0]`` the cosine of each channel's pair angle, ``[:, 1]`` the sine signed for its slot in the pair
    (-sin on the even channel, +sin on the odd one). Real tensors trace and fuse under torch.compile,
    where complex ones fall back to eager."""
    ang = _rope_angles(grid, axes, theta, device).repeat_interleave(2, dim=-1)  # (N, head_dim)
    sign = torch.tensor([-1.0, 1.0], device=device, dtype=torch.float64).repeat(ang.shape[-1] // 2)  # (head_dim,)
    return torch.stack([torch.cos(ang), torch.sin(ang) * sign], dim=1).to(torch.float32)  # (N, 2, head_dim)


def apply_rope(x: torch.Tensor, rope: torch.Tensor) -> torch.Tensor:
    """Rotate channel pairs (2j, 2j+1) of x: (N, heads, head_dim) by the per-token angles in ``rope``:
    a real table (N, 2, head_dim) from :func:`rope_table_3d`, or complex (N, head_dim/2) from
    :func:`rope_freqs_3d`. Both give (a, b) -> (a cos - b sin, a sin + b cos), computed in float32."""
    n, h, d = x.shape
    if rope.is_complex():
        xc = torch.view_as_complex(x.float().reshape(n, h, d // 2, 2))  # (N, H, d/2)
        return torch.view_as_real(xc * rope[:, None]).reshape(n, h, d).to(x.dtype)
    cos, sin = rope[:, None].unbind(2)  # each (N, 1, d): broadcast over heads
    xf = x.float()
    swapped = xf.unflatten(-1, (d // 2, 2)).flip(-1).flatten(-2)  # (N, H, d): pairs (b, a)
    return torch.addcmul(xf * cos, swapped, sin).to(x.dtype)  # (a cos - b sin, b cos + a sin)
