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
    x0: Latents, noise: Latents, t: torch.Tensor, clean: Sequence[torch.Tensor] | None = None,
    batched: bool | None = None,
) -> list[torch.Tensor]:
    """``x_t = (1 - t) x0 + t noise`` per sample (t: (B,)); frames flagged clean keep ``x0``.
    ``batched``: see ``flow_matching_loss``."""
    x0s, noises = _as_list(x0), _as_list(noise)
    if _batch_them(batched, x0s, noises):  # one set of kernels for the batch (the same values as the loop)
        a, n = torch.stack(x0s), torch.stack(noises)  # (B, C, T, H, W)
        tb = t.to(device=a.device, dtype=a.dtype).view(-1, 1, 1, 1, 1)
        xt = (1 - tb) * a + tb * n
        if clean is not None and any(c is not None for c in clean):
            m = _frame_masks(clean, a)  # (B, T)
            xt = torch.where(m[:, None, :, None, None], a, xt)
        return list(xt.unbind(0))
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
    batched: bool | None = None,
) -> torch.Tensor:
    """Mean squared error between the predicted and true velocity ``noise - x0``.

    Each sample's error is averaged over its own elements (only non-clean frames when ``clean`` is
    given: a list of (T_i,) bool), so a large clip does not outweigh a small one; samples are then
    combined as ``sum(w_i * l_i) / sum(w_i)`` with ``weight`` (B,) (uniform when None).
    ``positions``: per-sample weights (T_i, H_i, W_i) of the latent positions (shared by all channels);
    a sample's error is then their weighted mean, e.g. more weight where the objects are.
    A sample whose frames are all clean contributes nothing.
    ``batched``: score samples of one shape stacked, in one set of kernels (True), or one at a time
    (False); None (the default) stacks them on a GPU, where one kernel per sample is launch-bound, and
    not on the CPU, where the copies cost more than the loop (``benchmarks/train_host.py``).
    """
    preds, x0s, noises = _as_list(pred), _as_list(x0), _as_list(noise)
    if not (len(preds) == len(x0s) == len(noises)):
        raise ValueError(f"batch sizes differ: pred {len(preds)}, x0 {len(x0s)}, noise {len(noises)}")
    if _batch_them(batched, preds, x0s, noises):
        per_sample, keep = _uniform_losses(preds, x0s, noises, clean, positions)
    else:
        per_sample, keep = _sample_losses(preds, x0s, noises, clean, positions)
    w = torch.ones_like(per_sample) if weight is None else weight.to(per_sample)
    w = w * keep.to(per_sample)
    return (w * per_sample).sum() / w.sum().clamp(min=1e-12)


def _batch_them(batched: bool | None, *lists: list[torch.Tensor]) -> bool:
    """Whether to take the stacked path: asked for (None: on a GPU), and every tensor of one shape."""
    if batched is False or not lists[0] or (batched is None and not lists[0][0].is_cuda):
        return False
    shape = lists[0][0].shape
    return len(lists[0]) > 1 and all(x.shape == shape for xs in lists for x in xs)


def _frame_masks(clean: Sequence[torch.Tensor | None], like: torch.Tensor) -> torch.Tensor:
    """B masks (T,) or None -> (B, T) bool for a batch ``like`` (B, C, T, H, W); None: no clean frame."""
    T = like.shape[2]
    rows = []
    for i, c in enumerate(clean):
        if c is None:
            rows.append(torch.zeros(T, dtype=torch.bool, device=like.device))
        else:
            rows.append(_frame_mask(c, like[i]).view(T))
    return torch.stack(rows)


def _uniform_losses(preds, x0s, noises, clean, positions) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample losses (B,) and which samples count (B,) bool, for samples of one shape, batched."""
    p, a, n = torch.stack(preds).float(), torch.stack(x0s).float(), torch.stack(noises).float()
    err = (p - (n - a)) ** 2  # (B, C, T, H, W)
    B, C, T, H, W = err.shape
    mw = torch.ones(B, 1, T, H, W, device=err.device, dtype=err.dtype)
    if positions is not None:
        for i, pw in enumerate(positions):
            if pw is not None:
                if pw.shape != (T, H, W):
                    raise ValueError(f"sample {i}: position weights of shape {tuple(pw.shape)}, expected {(T, H, W)}")
                mw[i, 0] = pw.to(err)
    count = torch.full((B,), float(T), device=err.device)
    if clean is not None:
        m = ~_frame_masks(clean, a)  # (B, T): the frames that carry loss
        mw = mw * m[:, None, :, None, None].to(err)
        count = m.sum(1).to(err)
    dims = (1, 2, 3, 4)
    per_sample = (err * mw).sum(dims) / (mw.sum(dims) * C).clamp(min=1e-12)  # mw is shared by the C channels
    return per_sample, count > 0


def _sample_losses(preds, x0s, noises, clean, positions) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample losses (B,) and which samples count (B,) bool, one sample at a time (mixed shapes)."""
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
    return torch.stack(losses), torch.stack(keep)  # (B,), (B,)
