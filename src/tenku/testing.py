"""Helpers for tests of everything that needs a model: a tiny, randomly initialised pipeline folder.

``make_tiny_pipeline(path)`` writes a pipeline that generates 9 frames at 32x32 in well under a second
on a CPU. Its output layers are random (not the usual zero init), so frames depend on the prompt and
the seed instead of being constant.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tenku.config import DiTConfig, FlowConfig, SampleConfig, TextEncoderConfig, VAEConfig

TINY_VAE = VAEConfig(latent_channels=4, base_channels=8, channel_mult=(1, 2, 2), spatial_factor=4, temporal_factor=4)
TINY_DIT = DiTConfig(in_channels=4, patch_size=(1, 2, 2), hidden_size=32, depth=2, num_heads=2, text_dim=32)
TINY_TEXT = TextEncoderConfig(dim=32, depth=1, num_heads=2, max_length=64)
TINY_SAMPLE = SampleConfig(num_frames=9, height=32, width=32, fps=8, num_steps=2, guidance=2.0, sampler="euler")


def _randomize_zero_params(module: torch.nn.Module, generator: torch.Generator, std: float = 0.05) -> None:
    """Give every all-zero weight matrix/kernel (zero-initialised output and adaLN layers) random values."""
    with torch.no_grad():
        for p in module.parameters():
            if p.ndim >= 2 and not p.any():
                p.copy_(torch.randn(p.shape, generator=generator) * std)


def make_tiny_models(seed: int = 0):
    """(vae, dit, text_encoder): tiny random modules (see the module docstring), in eval mode."""
    from tenku.models.dit import DiT
    from tenku.models.text import ByteTextEncoder
    from tenku.models.vae import CausalVAE

    g = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae, dit, text = CausalVAE(TINY_VAE), DiT(TINY_DIT), ByteTextEncoder(TINY_TEXT)
    for m in (vae, dit):
        _randomize_zero_params(m, g)
    return vae.eval(), dit.eval(), text.eval()


def make_tiny_pipeline(path: str | Path, seed: int = 0) -> Path:
    """Write a tiny randomly initialised pipeline folder at ``path`` and return ``path``."""
    from tenku.pipeline.pipeline import TenkuPipeline

    vae, dit, text = make_tiny_models(seed)
    pipe = TenkuPipeline(vae, dit, text, FlowConfig(shift_ref_tokens=64), TINY_SAMPLE)
    return pipe.save_pretrained(path)
