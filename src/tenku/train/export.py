"""Measuring and normalising a trained VAE, for a run's export (see :mod:`tenku.train.tasks`).

- ``calibrate_vae``: a copy whose ``latent_shift`` / ``latent_scale`` make the latents of training clips
  zero-mean and unit-variance.
- ``vae_psnr``: the mean PSNR of whole-clip reconstructions of a shard folder's split.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from tenku.data.dataset import tensor_to_frames
from tenku.train.datasets import BadSample, ClipSource


@torch.no_grad()
def calibrate_vae(vae, source: ClipSource, max_clips: int = 64) -> "torch.nn.Module":
    """A copy of ``vae`` whose config normalises latents to zero mean, unit variance (over all
    channels and positions of up to ``max_clips`` clips)."""
    from tenku.models.hub import build_vae

    gen = torch.Generator().manual_seed(0)
    means = []
    for i in range(min(max_clips, len(source))):
        try:
            video = source.load(i, gen)["video"]
        except BadSample:
            continue
        m, _ = vae.encode_moments(video[None])
        means.append(m.flatten())
    z = torch.cat(means)
    shift, std = float(z.mean()), float(z.std())
    cfg = vae.cfg.replace(latent_shift=round(shift, 6), latent_scale=round(1.0 / max(std, 1e-6), 6))
    out = build_vae(cfg)
    out.load_state_dict(vae.state_dict())
    return out.eval()


@torch.no_grad()
def vae_psnr(vae, data: str | Path, split: str | None, max_clips: int = 64) -> dict:
    """Mean PSNR (dB, frames in [0, 255]) of whole-clip reconstructions on ``split`` of ``data``
    (None: every split in the folder)."""
    try:
        source = ClipSource(data, split, vae.cfg.temporal_factor, vae.cfg.spatial_factor)
    except Exception as e:  # no such split in this folder
        return {"split": split, "error": str(e)}
    gen = torch.Generator().manual_seed(0)
    psnrs = []
    for i in range(min(max_clips, len(source))):
        try:
            video = source.load(i, gen)["video"][None]
        except BadSample:
            continue
        recon = vae.decode(vae.encode(video))
        a, b = tensor_to_frames(video[0]).astype(np.float64), tensor_to_frames(recon[0]).astype(np.float64)
        mse = float(np.mean((a - b) ** 2))
        psnrs.append(10 * math.log10(255.0**2 / max(mse, 1e-10)))
    if not psnrs:
        return {"split": split, "error": "no readable clips"}
    cf = 3 * vae.cfg.temporal_factor * vae.cfg.spatial_factor**2 / vae.cfg.latent_channels
    return {"data": str(data), "split": split, "clips": len(psnrs), "psnr_db": float(np.mean(psnrs)),
            "psnr_min_db": float(np.min(psnrs)), "compression": cf}
