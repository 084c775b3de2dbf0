"""tenku: an open, trainable, runnable text-to-video system.

A causal 3D VAE compresses video into a spacetime latent; a diffusion transformer denoises
packed spacetime patches of that latent conditioned on text. ``import tenku`` stays light:
heavy and optional modules are imported where they are used.
"""

__version__ = "0.1.0"

from tenku.errors import TenkuError  # noqa: E402  (tiny, no heavy imports)

__all__ = ["__version__", "TenkuError"]
