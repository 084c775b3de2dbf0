"""Helpers for tests of everything that needs a model: a tiny, randomly initialised pipeline folder.

``make_tiny_pipeline(path)`` writes a pipeline that generates 9 frames at 32x32 in well under a second
on a CPU. Its output layers are random (not the usual zero init), so frames depend on the prompt and
the seed instead of being constant.
"""

from __future__ import annotations

from pathlib import Path

import torch

from tenku.config import preset_configs

_TINY = preset_configs("tiny-pipeline")  # tenku.config.MODEL_PRESETS["tiny-pipeline"]
TINY_VAE, TINY_DIT, TINY_TEXT, TINY_FLOW, TINY_SAMPLE = (_TINY[k] for k in ("vae", "dit", "text", "flow", "sample"))


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
    pipe = TenkuPipeline(vae, dit, text, TINY_FLOW, TINY_SAMPLE)
    return pipe.save_pretrained(path)
