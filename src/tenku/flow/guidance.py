"""Classifier-free guidance as a wrapper that turns a conditional model into a denoiser.

``model(x, t, cond) -> v`` takes a batch; ``cfg_denoiser`` returns ``denoise(x, t)`` that runs the
conditional and unconditional halves in ONE call (the batch doubled, so the DiT packs both into a
single token sequence) and combines ``v_u + g (v_c - v_u)``. With ``g == 1`` it is exactly the
conditional model (no unconditional pass at all).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

Model = Callable[[torch.Tensor, torch.Tensor, Any], torch.Tensor]


def _pad_seq(x: torch.Tensor, length: int) -> torch.Tensor:
    """Pad dim 1 (sequence) to ``length`` with zeros (False for bool masks)."""
    if x.shape[1] == length:
        return x
    pad = [0, 0] * (x.ndim - 2) + [0, length - x.shape[1]]
    return F.pad(x, pad) if x.dtype != torch.bool else F.pad(x.to(torch.uint8), pad).bool()


def concat_conditions(a: Any, b: Any) -> Any:
    """Concatenate two conditionings along the batch: tensors (dim 0; sequences of different length
    in dim 1 are right-padded with zeros / False), tuples, lists and dicts of those, or None."""
    if a is None and b is None:
        return None
    if isinstance(a, torch.Tensor):
        if a.ndim >= 2 and a.shape[1] != b.shape[1]:
            n = max(a.shape[1], b.shape[1])
            a, b = _pad_seq(a, n), _pad_seq(b, n)
        return torch.cat([a, b], dim=0)
    if isinstance(a, dict):
        return {k: concat_conditions(a[k], b[k]) for k in a}
    if isinstance(a, (tuple, list)):
        return type(a)(concat_conditions(x, y) for x, y in zip(a, b, strict=True))
    raise TypeError(f"cannot batch conditionings of type {type(a).__name__}")


def cfg_denoiser(
    model: Model,
    cond: Any,
    uncond: Any,
    guidance: float,
    combine: Callable[[Any, Any], Any] = concat_conditions,
) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    """Build ``denoise(x, t)`` with classifier-free guidance of strength ``guidance``."""
    if guidance == 1.0 or uncond is None:
        def denoise_cond(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
            return model(x, t, cond)

        return denoise_cond

    both = combine(cond, uncond)

    def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        v = model(torch.cat([x, x]), torch.cat([t, t]), both)  # (2B, ...)
        v_c, v_u = v.chunk(2)
        return v_u + guidance * (v_c - v_u)

    return denoise
