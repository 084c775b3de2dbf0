"""Samplers for rectified flow, as pure functions over a denoiser callable (k-diffusion style).

``denoise(x, t) -> v`` takes the current latents ``x`` (B, ...) and timesteps ``t`` (B,) and returns
the predicted velocity ``v = noise - x0``. A sampler integrates ``dx/dt = v`` from ``ts[0]`` (1 = noise)
down to ``ts[-1]`` (0 = data). ``ts`` comes from :mod:`tenku.flow.schedule`.

Conditioning frames: ``clean_mask`` (bool, (B, T) over latent frames of a (B, C, T, H, W) tensor, or
any shape broadcastable to ``x``) marks entries held fixed at ``x_clean`` during the whole integration.
``callback`` receives ``{"i", "t", "t_next", "x", "v", "total"}`` after every step.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Denoiser = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Callback = Callable[[dict], None]


def _mask_like(mask: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    mask = mask.to(device=x.device, dtype=torch.bool)
    if mask.ndim == 2 and x.ndim == 5:  # (B, T) over latent frames -> (B, 1, T, 1, 1)
        mask = mask[:, None, :, None, None]
    return mask


def _hold(x: torch.Tensor, mask: torch.Tensor | None, x_clean: torch.Tensor | None) -> torch.Tensor:
    return x if mask is None else torch.where(mask, x_clean.to(x.dtype), x)


def _prepare(x, clean_mask, x_clean):
    if clean_mask is None:
        return None, None
    if x_clean is None:
        raise ValueError("clean_mask needs x_clean (the values to hold fixed)")
    mask = _mask_like(clean_mask, x)
    return mask, x_clean.to(device=x.device)


def _t_batch(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    return t.to(device=x.device, dtype=x.dtype).expand(x.shape[0])  # (B,)


@torch.no_grad()
def sample_euler(
    denoise: Denoiser,
    x: torch.Tensor,
    ts: torch.Tensor,
    callback: Callback | None = None,
    clean_mask: torch.Tensor | None = None,
    x_clean: torch.Tensor | None = None,
) -> torch.Tensor:
    """Euler: ``x <- x + (t_next - t) * v(x, t)``. One model call per step."""
    mask, x_clean = _prepare(x, clean_mask, x_clean)
    x = _hold(x, mask, x_clean)
    total = len(ts) - 1
    for i in range(total):
        t, t_next = ts[i], ts[i + 1]
        v = denoise(x, _t_batch(t, x))
        x = _hold(x + (t_next - t).to(x.dtype) * v, mask, x_clean)
        if callback is not None:
            callback({"i": i, "t": float(t), "t_next": float(t_next), "x": x, "v": v, "total": total})
    return x


@torch.no_grad()
def sample_heun(
    denoise: Denoiser,
    x: torch.Tensor,
    ts: torch.Tensor,
    callback: Callback | None = None,
    clean_mask: torch.Tensor | None = None,
    x_clean: torch.Tensor | None = None,
) -> torch.Tensor:
    """Heun (2nd order): an Euler predictor, then the average of both slopes. The last step into
    ``t = 0`` is plain Euler (as in k-diffusion), so ``n`` steps cost ``2n - 1`` model calls."""
    mask, x_clean = _prepare(x, clean_mask, x_clean)
    x = _hold(x, mask, x_clean)
    total = len(ts) - 1
    for i in range(total):
        t, t_next = ts[i], ts[i + 1]
        dt = (t_next - t).to(x.dtype)
        v = denoise(x, _t_batch(t, x))
        x_pred = _hold(x + dt * v, mask, x_clean)
        if float(t_next) > 0.0:
            v_next = denoise(x_pred, _t_batch(t_next, x))
            v = (v + v_next) / 2
            x = _hold(x + dt * v, mask, x_clean)
        else:
            x = x_pred
        if callback is not None:
            callback({"i": i, "t": float(t), "t_next": float(t_next), "x": x, "v": v, "total": total})
    return x


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {"euler": sample_euler, "heun": sample_heun}
