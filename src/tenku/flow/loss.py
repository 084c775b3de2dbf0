"""Rectified-flow training objective: noise the clean latents, regress the velocity ``v = noise - x0``.

Works on a batched tensor (B, C, T, H, W) or on a packed list of per-sample tensors (C, T_i, H_i, W_i),
as the DiT takes them. Latent frames flagged clean (given conditioning frames) stay un-noised and
carry no loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

Latents = torch.Tensor | Sequence[torch.Tensor]


def _as_list(x: Latents) -> list[torch.Tensor]:
    return list(x.unbind(0)) if isinstance(x, torch.Tensor) else list(x)


def _frame_mask(clean: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """(T,) bool -> (1, T, 1, 1) bool, broadcastable to a (C, T, H, W) sample."""
    if clean.shape != (like.shape[1],):
        raise ValueError(f"clean mask has shape {tuple(clean.shape)}, expected ({like.shape[1]},) for a sample "
                         f"of shape {tuple(like.shape)}")
    return clean.to(device=like.device, dtype=torch.bool).view(1, -1, 1, 1)


def add_noise(
    x0: Latents, noise: Latents, t: torch.Tensor, clean: Sequence[torch.Tensor] | None = None
) -> list[torch.Tensor]:
    """``x_t = (1 - t) x0 + t noise`` per sample (t: (B,)); frames flagged clean keep ``x0``."""
    x0s, noises = _as_list(x0), _as_list(noise)
    out = []
    for i, (a, n) in enumerate(zip(x0s, noises, strict=True)):
        ti = t[i].to(a.dtype)
        xt = (1 - ti) * a + ti * n  # (C, T, H, W)
        if clean is not None and clean[i] is not None:
            xt = torch.where(_frame_mask(clean[i], a), a, xt)
        out.append(xt)
    return out


def flow_matching_loss(
    pred: Latents,
    x0: Latents,
    noise: Latents,
    weight: torch.Tensor | None = None,
    clean: Sequence[torch.Tensor] | None = None,
    positions: Sequence[torch.Tensor | None] | None = None,
) -> torch.Tensor:
    """Mean squared error between the predicted and true velocity ``noise - x0``.

    Each sample's error is averaged over its own elements (only non-clean frames when ``clean`` is
    given: a list of (T_i,) bool), so a large clip does not outweigh a small one; samples are then
    combined as ``sum(w_i * l_i) / sum(w_i)`` with ``weight`` (B,) (uniform when None).
    ``positions``: per-sample weights (T_i, H_i, W_i) of the latent positions (shared by all channels);
    a sample's error is then their weighted mean, e.g. more weight where the objects are.
    A sample whose frames are all clean contributes nothing.
    """
    preds, x0s, noises = _as_list(pred), _as_list(x0), _as_list(noise)
    if not (len(preds) == len(x0s) == len(noises)):
        raise ValueError(f"batch sizes differ: pred {len(preds)}, x0 {len(x0s)}, noise {len(noises)}")
    losses, keep = [], []
    for i, (p, a, n) in enumerate(zip(preds, x0s, noises)):
        if p.shape != a.shape:
            raise ValueError(f"sample {i}: prediction shape {tuple(p.shape)} != target shape {tuple(a.shape)}")
        err = (p.float() - (n.float() - a.float())) ** 2  # (C, T, H, W)
        pw = None if positions is None else positions[i]
        if pw is not None:
            if pw.shape != a.shape[1:]:
                raise ValueError(f"sample {i}: position weights of shape {tuple(pw.shape)}, expected "
                                 f"{tuple(a.shape[1:])}")
            pw = pw.to(err)[None].expand_as(err)  # (C, T, H, W)
        if clean is not None and clean[i] is not None:
            m = (~_frame_mask(clean[i], a)).expand_as(err).to(err)
            count = m.sum()
            mw = m if pw is None else m * pw
            losses.append((err * mw).sum() / mw.sum().clamp(min=1e-12))
            keep.append(count > 0)
        else:
            losses.append(err.mean() if pw is None else (err * pw).sum() / pw.sum().clamp(min=1e-12))
            keep.append(torch.tensor(True, device=err.device))
    per_sample = torch.stack(losses)  # (B,)
    w = torch.ones_like(per_sample) if weight is None else weight.to(per_sample)
    w = w * torch.stack(keep).to(per_sample)
    return (w * per_sample).sum() / w.sum().clamp(min=1e-12)
