"""Timesteps for rectified flow: training draws, the resolution/length shift, sampling schedules.

Convention: ``x_t = (1 - t) * x0 + t * noise`` with ``t`` in [0, 1]; ``t = 1`` is pure noise.
Every function here is pure: it takes numbers (and a generator) and returns tensors.
"""

from __future__ import annotations

import math

import torch

from tenku.config import FlowConfig


def logit_normal_timesteps(
    n: int,
    mean: float = 0.0,
    std: float = 1.0,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """``n`` training timesteps ``sigmoid(N(mean, std))``, strictly inside (0, 1). Returns (n,) float32."""
    gen_device = generator.device if generator is not None else "cpu"
    z = torch.randn(n, generator=generator, device=gen_device)
    # sigmoid saturates to exactly 0/1 in float32 for |z| > ~17; keep t strictly inside (0, 1)
    t = torch.sigmoid(z * std + mean).clamp(1e-6, 1.0 - 1e-6)
    return t if device is None else t.to(device)


def compute_shift(num_tokens: int, cfg: FlowConfig) -> float:
    """Shift for a sequence of ``num_tokens`` latent patches:
    ``clamp(base_shift * sqrt(num_tokens / shift_ref_tokens), 1, max_shift)``.
    More tokens carry more redundant signal, so noise must stay longer to destroy it."""
    if num_tokens <= 0:
        raise ValueError(f"num_tokens must be positive, got {num_tokens}")
    s = cfg.base_shift * math.sqrt(num_tokens / cfg.shift_ref_tokens)
    return float(min(max(s, 1.0), cfg.max_shift))


def shift_timesteps(t: torch.Tensor, shift: float) -> torch.Tensor:
    """Warp timesteps toward noise: ``t' = s t / (1 + (s - 1) t)``; 0 and 1 stay fixed, s = 1 is identity."""
    if shift == 1.0:
        return t
    return shift * t / (1.0 + (shift - 1.0) * t)


def linear_schedule(num_steps: int, start: float = 1.0, end: float = 0.0) -> torch.Tensor:
    """``num_steps + 1`` evenly spaced timesteps from ``start`` down to ``end`` (float64 for exact ends)."""
    if num_steps < 1:
        raise ValueError(f"num_steps must be at least 1, got {num_steps}")
    return torch.linspace(start, end, num_steps + 1, dtype=torch.float64)


def shifted_schedule(num_steps: int, shift: float = 1.0) -> torch.Tensor:
    """The sampling schedule: ``num_steps + 1`` timesteps from 1 to 0, shifted by ``shift``. Returns float64."""
    return shift_timesteps(linear_schedule(num_steps), shift)


def truncate_schedule(ts: torch.Tensor, strength: float) -> torch.Tensor:
    """Keep the tail of ``ts`` that starts at or below ``strength`` (partial denoising of given latents,
    as in editing: strength 1 keeps everything, small strengths keep few steps). Always keeps >= 1 step."""
    if not 0.0 < strength <= 1.0:
        raise ValueError(f"strength must be in (0, 1], got {strength}")
    idx = int(torch.nonzero(ts <= strength + 1e-9)[0])
    return ts[min(idx, len(ts) - 2):]
