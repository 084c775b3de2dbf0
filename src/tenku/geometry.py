"""A model's geometry: which frame counts and sizes it makes and what latent they become, from its configs.

One home for these facts, torch-free, so the command line and the server can check a request before any
weights load, and the pipeline and the window engine use the same rules:

    geo = Geometry.of_folder("my-model")          # reads the folder's JSON only
    geo.nearest_num_frames(4 * 8)                 # 33 (1 + 4k for a temporal factor of 4)
    geo.check_size(33, 64, 64)                    # raises UnsupportedSizeError listing valid nearby values
    parse_size("64x48")                           # (width 64, height 48)
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from pathlib import Path

from tenku.config import DiTConfig, VAEConfig, read_model_configs
from tenku.errors import UnsupportedSizeError


def parse_size(text: str, what: str = "a size") -> tuple[int, int]:
    """``"64x48"`` (also ``64X48``, ``64×48``, spaces around) -> (width 64, height 48). ``what`` names the
    value in the error (``"--size"``)."""
    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text) if isinstance(text, str) else None
    if not m:
        raise UnsupportedSizeError(f"{what} must look like WIDTHxHEIGHT, e.g. 64x64; got {text!r}")
    return int(m.group(1)), int(m.group(2))


def nearby(value: int, valid: Callable[[int], bool], step: int, count: int = 2) -> list[int]:
    """Up to ``count`` valid values on each side of ``value`` (closest first)."""
    below = [v for v in range(value - 1, max(value - step * (count + 1), 0), -1) if valid(v)][:count]
    above = [v for v in range(value + 1, value + step * (count + 1) + 1) if valid(v)][:count]
    return sorted(below + above, key=lambda v: (abs(v - value), v))[: 2 * count]


def frame_size_problems(height: int, width: int, multiple: tuple[int, int]) -> list[str]:
    """What is wrong with a frame size for a model whose sizes are multiples of ``multiple`` (h, w)."""
    problems = []
    for what, v, m in (("height", height, multiple[0]), ("width", width, multiple[1])):
        if not isinstance(v, int) or v < m or v % m:
            near = nearby(int(v), lambda x, m=m: x >= m and x % m == 0, m)
            problems.append(f"{what} {v} is not a positive multiple of {m}; valid nearby: {', '.join(map(str, near))}")
    return problems


@dataclasses.dataclass(frozen=True)
class Geometry:
    """Frame and latent arithmetic of a VAE + DiT pair. ``temporal_factor`` frames per latent frame after the
    first, ``spatial_factor`` pixels per latent pixel, ``patch`` = the DiT's (pt, ph, pw) patch."""

    temporal_factor: int
    spatial_factor: int
    latent_channels: int
    patch: tuple[int, int, int]

    @classmethod
    def of(cls, vae: VAEConfig, dit: DiTConfig) -> "Geometry":
        return cls(vae.temporal_factor, vae.spatial_factor, vae.latent_channels, tuple(dit.patch_size))

    @classmethod
    def of_folder(cls, folder: str | Path) -> "Geometry":
        """From a pipeline folder's JSON alone (ModelFolderError when it cannot be read)."""
        return cls.of(*read_model_configs(folder))

    @property
    def spatial_multiple(self) -> tuple[int, int]:
        """(height, width) must be multiples of these: VAE spatial factor x DiT patch size."""
        return self.spatial_factor * self.patch[1], self.spatial_factor * self.patch[2]

    def latent_frames(self, num_frames: int) -> int:
        return 1 + (num_frames - 1) // self.temporal_factor

    def frames_of_latents(self, latent_frames: int) -> int:
        return 1 + self.temporal_factor * (latent_frames - 1)

    def is_valid_num_frames(self, n: int) -> bool:
        tf = self.temporal_factor
        return n >= 1 and (n - 1) % tf == 0 and (1 + (n - 1) // tf) % self.patch[0] == 0

    def nearest_num_frames(self, n: float) -> int:
        """The valid frame count closest to ``n`` (ties go to the longer clip)."""
        best = 1
        for cand in range(1, int(n) + 4 * self.temporal_factor * self.patch[0] + 2):
            if self.is_valid_num_frames(cand) and abs(cand - n) <= abs(best - n):
                best = cand
        return best

    def frames_for_seconds(self, seconds: float, fps: float) -> int:
        """The valid frame count closest to ``seconds`` at ``fps``."""
        return self.nearest_num_frames(float(seconds) * float(fps))

    def size_problems(self, height: int, width: int) -> list[str]:
        return frame_size_problems(height, width, self.spatial_multiple)

    def check_size(self, num_frames: int, height: int, width: int) -> None:
        """Raise UnsupportedSizeError (listing valid nearby values) unless the model can make this size."""
        tf = self.temporal_factor
        problems = []
        if not isinstance(num_frames, int) or not self.is_valid_num_frames(num_frames):
            near = nearby(int(num_frames), self.is_valid_num_frames, tf * self.patch[0])
            problems.append(f"{num_frames} frames is not a valid length (1 + {tf}*k frames); "
                            f"valid nearby: {', '.join(map(str, near))}")
        problems += self.size_problems(height, width)
        if problems:
            raise UnsupportedSizeError("; ".join(problems))

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        """(C, T', h, w) of the latent of a clip of this size."""
        sf = self.spatial_factor
        return (self.latent_channels, self.latent_frames(num_frames), height // sf, width // sf)

    def num_tokens(self, latent_shape: tuple[int, ...]) -> int:
        """DiT tokens of a latent (C, T', h, w) (or (T', h, w))."""
        return math.prod(s // p for s, p in zip(tuple(latent_shape)[-3:], self.patch))
