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
    """Shift for a sequence of ``num_tokens`` latent patches: ``cfg.shift`` when it is set (> 0), else
    ``clamp(base_shift * sqrt(num_tokens / shift_ref_tokens), 1, max_shift)``.
    More tokens carry more redundant signal, so noise must stay longer to destroy it; a latent that is
    redundant for other reasons (a floor colour spread over every channel and position) needs a fixed
    shift that the token count does not give."""
    if num_tokens <= 0:
        raise ValueError(f"num_tokens must be positive, got {num_tokens}")
    if cfg.shift < 0:
        raise ValueError(f"FlowConfig.shift must be > 0 (or 0 for the token-count rule), got {cfg.shift}")
    if cfg.shift > 0:
        return float(cfg.shift)
    s = cfg.base_shift * math.sqrt(num_tokens / cfg.shift_ref_tokens)
    return float(min(max(s, 1.0), cfg.max_shift))


def _check_tail(cfg: FlowConfig) -> None:
    if not 0.0 <= cfg.tail_prob <= 1.0:
        raise ValueError(f"FlowConfig.tail_prob must lie in [0, 1], got {cfg.tail_prob}")
    if not 0.0 <= cfg.tail_start < 1.0:
        raise ValueError(f"FlowConfig.tail_start must lie in [0, 1), got {cfg.tail_start}")
    if not 0.0 <= cfg.uniform_prob <= 1.0 - cfg.tail_prob:
        raise ValueError(f"FlowConfig.uniform_prob must lie in [0, 1 - tail_prob], got {cfg.uniform_prob}")


def training_timesteps(
    n: int,
    num_tokens: int,
    cfg: FlowConfig,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """``n`` training timesteps for sequences of ``num_tokens`` tokens: logit-normal
    (``logit_mean``, ``logit_std``) warped by :func:`compute_shift`; with probability ``tail_prob`` each
    is replaced by a uniform draw on ``[tail_start, 1)``, with probability ``uniform_prob`` by one on
    ``[0, 1)``. Returns (n,) float32 on the CPU, inside (0, 1).

    With ``tail_prob == uniform_prob == 0`` the generator gives exactly the draws it always gave (one
    normal per timestep), and with ``uniform_prob == 0`` those it gave before that field existed, so
    earlier runs resume unchanged."""
    _check_tail(cfg)
    t = shift_timesteps(logit_normal_timesteps(n, cfg.logit_mean, cfg.logit_std, generator=generator),
                        compute_shift(num_tokens, cfg))
    if cfg.tail_prob > 0 or cfg.uniform_prob > 0:
        gen_device = generator.device if generator is not None else "cpu"
        u = torch.rand(n, generator=generator, device=gen_device)
        tail = cfg.tail_start + (1.0 - cfg.tail_start) * torch.rand(n, generator=generator, device=gen_device)
        t = torch.where(u < cfg.tail_prob, tail.clamp(max=1.0 - 1e-6), t)
        if cfg.uniform_prob > 0:
            flat = torch.rand(n, generator=generator, device=gen_device).clamp(1e-6, 1.0 - 1e-6)
            t = torch.where((u >= cfg.tail_prob) & (u < cfg.tail_prob + cfg.uniform_prob), flat, t)
    return t


def timestep_tail_mass(threshold: float, num_tokens: int, cfg: FlowConfig) -> float:
    """``P(t > threshold)`` under :func:`training_timesteps` (exact, for planning and for tests).

    The shift is monotone, so ``t' > a`` exactly when the unshifted ``t > a / (s - (s - 1) a)``; a
    logit-normal ``t`` exceeds ``b`` with probability ``Q((logit b - mean) / std)``."""
    _check_tail(cfg)
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must lie in (0, 1), got {threshold}")
    s = compute_shift(num_tokens, cfg)
    b = threshold / (s - (s - 1.0) * threshold)
    z = (math.log(b / (1.0 - b)) - cfg.logit_mean) / cfg.logit_std
    p_ln = 0.5 * math.erfc(z / math.sqrt(2.0))
    p_tail = min(1.0, (1.0 - max(threshold, cfg.tail_start)) / (1.0 - cfg.tail_start))
    rest = 1.0 - cfg.tail_prob - cfg.uniform_prob
    return rest * p_ln + cfg.tail_prob * p_tail + cfg.uniform_prob * (1.0 - threshold)


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
