"""Frozen dataclass configs for every component, and the named presets.

A config is stored next to the weights it built (``config.json``), so a folder rebuilds the
model exactly. ``from_dict`` rejects unknown keys with a message that names them.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, TypeVar

from tenku.errors import ModelFolderError, TenkuError, UnsupportedSizeError

C = TypeVar("C", bound="ConfigBase")


@dataclasses.dataclass(frozen=True)
class ConfigBase:
    """Helpers shared by every config: dict/json round trip and ``replace``."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls: type[C], d: dict[str, Any]) -> C:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names - {"_class_name", "_tenku_version"})
        if unknown:
            raise ModelFolderError(
                f"{cls.__name__}: unknown field(s) {unknown}; expected some of {sorted(names)}. "
                "The folder was probably written by a different version of tenku."
            )
        kwargs = {}
        for f in dataclasses.fields(cls):
            if f.name in d:
                v = d[f.name]
                # JSON has no tuples: restore them for tuple-typed fields
                if isinstance(v, list) and "tuple" in str(f.type):
                    v = tuple(v)
                kwargs[f.name] = v
        return cls(**kwargs)

    def replace(self: C, **changes: Any) -> C:
        return dataclasses.replace(self, **changes)

    def save(self, path: str | Path) -> None:
        d = {"_class_name": type(self).__name__, **self.to_dict()}
        Path(path).write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls: type[C], path: str | Path) -> C:
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise ModelFolderError(f"missing {path}: not a tenku component folder") from None
        except json.JSONDecodeError as e:
            raise ModelFolderError(f"{path} is not valid JSON ({e}); the folder is corrupted") from None
        name = d.get("_class_name")
        if name is not None and name != cls.__name__:
            raise ModelFolderError(f"{path} holds a {name}, expected a {cls.__name__}")
        return cls.from_dict(d)


@dataclasses.dataclass(frozen=True)
class VAEConfig(ConfigBase):
    """Causal 3D VAE. A clip of ``1 + temporal_factor * k`` frames becomes ``1 + k`` latent frames;
    H and W shrink by ``spatial_factor``. Latents are normalised as ``(z - latent_shift) * latent_scale``."""

    in_channels: int = 3
    latent_channels: int = 16
    base_channels: int = 32
    channel_mult: tuple[int, ...] = (1, 2, 4, 4)  # one stage per entry; len-1 spatial downsamples
    num_res_blocks: int = 1
    spatial_factor: int = 8  # must equal patch_size * 2 ** (len(channel_mult) - 1)
    temporal_factor: int = 4  # 1, 2 or 4; temporal downsamples happen in the deepest stages
    latent_scale: float = 1.0
    latent_shift: float = 0.0
    patch_size: int = 1  # p x p pixels folded into channels before the first conv (space-to-depth)


@dataclasses.dataclass(frozen=True)
class PatchVAEConfig(ConfigBase):
    """Patch VAE (``tenku.models.patch_vae``): frame 0 in ``spatial_factor``-pixel blocks, then groups of
    ``temporal_factor`` frames in blocks, each block linearly coded to ``latent_channels`` values; the
    decoder adds a causal refiner of ``refine_blocks`` residual blocks ``refine_channels`` wide over the
    latent grid. Same geometry fields and normalisation as ``VAEConfig``."""

    in_channels: int = 3
    latent_channels: int = 64
    spatial_factor: int = 8
    temporal_factor: int = 4
    refine_channels: int = 192
    refine_blocks: int = 2
    latent_scale: float = 1.0
    latent_shift: float = 0.0


def vae_config_from_dict(d: dict[str, Any]) -> VAEConfig | PatchVAEConfig:
    """The VAE config a dict describes: a ``PatchVAEConfig`` when it is named so (``_class_name``
    "PatchVAE" or "PatchVAEConfig") or carries the refiner fields, else a ``VAEConfig``."""
    name = d.get("_class_name")
    if name in ("PatchVAE", "PatchVAEConfig") or (name is None and "refine_channels" in d):
        return PatchVAEConfig.from_dict(d)
    return VAEConfig.from_dict(d)


@dataclasses.dataclass(frozen=True)
class DiTConfig(ConfigBase):
    """Spacetime-patch diffusion transformer over VAE latents."""

    in_channels: int = 16  # = VAEConfig.latent_channels
    patch_size: tuple[int, int, int] = (1, 2, 2)  # (pt, ph, pw)
    hidden_size: int = 256
    depth: int = 6
    num_heads: int = 4
    mlp_ratio: float = 4.0
    text_dim: int = 256  # width of the text encoder's output
    rope_theta: float = 10000.0
    rope_axes: tuple[int, int, int] = (0, 0, 0)  # head-dim split over (t, h, w); (0,0,0) = automatic
    qk_norm: bool = True
    grad_checkpointing: bool = False
    shared_adaln: bool = False  # adaLN-single (PixArt-alpha/Wan): one shared modulation Linear + per-block offsets


@dataclasses.dataclass(frozen=True)
class TextEncoderConfig(ConfigBase):
    """Built-in text encoder (any Unicode prompt). ``tokenizer="bytes"``: one token per UTF-8 byte, no
    vocabulary. ``tokenizer="words"``: one token per word of ``vocab`` (matched lower-case; the world's
    caption words are ``tenku.world.vocabulary.world_vocabulary()``), every other word as its UTF-8 bytes.
    The vocabulary is stored with the weights, so a folder rebuilds exactly."""

    dim: int = 256
    depth: int = 2
    num_heads: int = 4
    mlp_ratio: float = 4.0
    max_length: int = 256  # tokens kept per prompt (plus BOS/EOS); with "bytes", UTF-8 bytes
    tokenizer: str = "bytes"  # "bytes" | "words"
    vocab: tuple[str, ...] = ()  # the word table of tokenizer "words" (lower-case words and punctuation)


@dataclasses.dataclass(frozen=True)
class FlowConfig(ConfigBase):
    """Rectified flow: ``x_t = (1 - t) x_0 + t * noise``, the model predicts ``v = noise - x_0``.

    Timesteps are logit-normal in training and shifted toward noise, in training and sampling alike.
    The shift is ``shift`` when it is set (> 0), else it grows with the token count:
    ``clamp(base_shift * sqrt(tokens / shift_ref_tokens), 1, max_shift)``. A share ``tail_prob`` of the
    training timesteps is drawn uniform on ``[tail_start, 1)`` instead: near pure noise the latent says
    little and the caption decides the clip, and a logit-normal draw rarely lands there. A share
    ``uniform_prob`` is drawn uniform on ``[0, 1)``: a shifted logit-normal rarely lands near clean
    latents either, where the sampler's last steps remove the last of the noise. The defaults (no fixed
    shift, no tail, no uniform share) are the rule every model before these fields was trained with."""

    logit_mean: float = 0.0
    logit_std: float = 1.0
    base_shift: float = 1.0
    shift_ref_tokens: int = 256
    max_shift: float = 6.0
    shift: float = 0.0  # > 0: this shift for every sequence length (the token-count rule is not used)
    tail_prob: float = 0.0  # share of training timesteps drawn uniform on [tail_start, 1)
    tail_start: float = 0.95
    uniform_prob: float = 0.0  # share of training timesteps drawn uniform on [0, 1)


@dataclasses.dataclass(frozen=True)
class SampleConfig(ConfigBase):
    """Defaults a pipeline uses when the caller gives none (stored in the pipeline folder)."""

    num_frames: int = 17
    height: int = 64
    width: int = 64
    fps: int = 8
    num_steps: int = 16
    guidance: float = 4.0
    sampler: str = "euler"  # key of tenku.flow.samplers.SAMPLERS
    expander: str = "world"  # prompt expander the model was trained for (tenku.pipeline.prompt.EXPANDERS); "" none

    def resolve(self, **overrides: Any) -> "SampleConfig":
        """These settings with the given overrides (None keeps a setting), checked: fps positive, num_steps
        a positive integer, guidance >= 0. The model's geometry checks the size (tenku.geometry)."""
        unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            raise TypeError(f"SampleConfig.resolve() got unknown settings {unknown}")
        r = dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})
        if not r.fps or float(r.fps) <= 0:
            raise UnsupportedSizeError(f"fps must be positive, got {r.fps}")
        if not isinstance(r.num_steps, int) or isinstance(r.num_steps, bool) or r.num_steps < 1:
            raise TenkuError(f"num_steps must be a positive integer, got {r.num_steps}")
        if float(r.guidance) < 0:
            raise TenkuError(f"guidance must be >= 0 (1 = no guidance), got {r.guidance}")
        return r


def read_model_configs(folder: str | Path) -> tuple[VAEConfig | PatchVAEConfig, DiTConfig]:
    """The VAE and DiT configs of a pipeline folder, read from its JSON alone (no weights, no torch), for
    what the geometry decides before anything loads. A folder that cannot be read raises ModelFolderError."""
    folder = Path(folder)
    try:
        names = json.loads((folder / "model_index.json").read_text())["components"]
        vae = json.loads((folder / names["vae"] / "config.json").read_text())
        dit = json.loads((folder / names["transformer"] / "config.json").read_text())
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelFolderError(f"{folder}: cannot read the VAE and transformer configs ({type(e).__name__}: {e}); "
                               "pass a pipeline folder written by save_pretrained") from None
    return vae_config_from_dict(vae), DiTConfig.from_dict(dit)


# The one table of named model configurations, as plain field dicts per component (what checkpoints and
# sample.json store). "world-tiny" is the default model shipped in tenku/assets/tenku-world-tiny (trains on
# a CPU: 64x64x17 clips -> 5x8x8 latents); "tiny" is what the training recipes of tenku.train.presets
# "tiny" train (tests); "tiny-test" runs in milliseconds for unit tests of the models; "tiny-pipeline" is
# the random pipeline of tenku.testing.make_tiny_pipeline (9 frames at 32x32).
MODEL_PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "world-tiny": dict(
        vae=dict(latent_channels=16, base_channels=16, channel_mult=(1, 2, 4, 8), num_res_blocks=1,
                 spatial_factor=8, temporal_factor=4),
        dit=dict(in_channels=16, patch_size=(1, 2, 2), hidden_size=192, depth=6, num_heads=4,
                 mlp_ratio=3.0, text_dim=128),
        text=dict(dim=128, depth=2, num_heads=4, mlp_ratio=3.0, max_length=256),
        flow=dict(base_shift=1.0, shift_ref_tokens=256),
        sample=dict(num_frames=17, height=64, width=64, fps=8, num_steps=16, guidance=4.0),
    ),
    "tiny": dict(
        vae=dict(latent_channels=4, base_channels=8, channel_mult=(1, 2), num_res_blocks=1, spatial_factor=2,
                 temporal_factor=2),
        dit=dict(in_channels=4, patch_size=(1, 2, 2), hidden_size=32, depth=2, num_heads=2, mlp_ratio=2.0,
                 text_dim=32),
        text=dict(dim=32, depth=1, num_heads=2, mlp_ratio=2.0, max_length=64),
        sample=dict(num_frames=5, height=16, width=16, fps=8, num_steps=2, guidance=2.0),
    ),
    "tiny-test": dict(
        vae=dict(latent_channels=4, base_channels=8, channel_mult=(1, 1, 2), patch_size=2, spatial_factor=8,
                 temporal_factor=4),
        dit=dict(in_channels=4, patch_size=(1, 2, 2), hidden_size=32, depth=2, num_heads=2, text_dim=32),
        text=dict(dim=32, depth=1, num_heads=2, max_length=64),
    ),
    "tiny-pipeline": dict(
        vae=dict(latent_channels=4, base_channels=8, channel_mult=(1, 2, 2), spatial_factor=4, temporal_factor=4),
        dit=dict(in_channels=4, patch_size=(1, 2, 2), hidden_size=32, depth=2, num_heads=2, text_dim=32),
        text=dict(dim=32, depth=1, num_heads=2, max_length=64),
        flow=dict(shift_ref_tokens=64),
        sample=dict(num_frames=9, height=32, width=32, fps=8, num_steps=2, guidance=2.0, sampler="euler"),
    ),
}
WORLD_TINY_MODEL = MODEL_PRESETS["world-tiny"]  # the default model's configuration

_CONFIG_CLASSES = {"vae": VAEConfig, "dit": DiTConfig, "text": TextEncoderConfig, "flow": FlowConfig,
                   "sample": SampleConfig}


def preset_configs(name: str) -> dict[str, ConfigBase]:
    """The config objects of the model preset ``name`` (see :data:`MODEL_PRESETS`), by component."""
    return {k: (vae_config_from_dict(d) if k == "vae" else _CONFIG_CLASSES[k].from_dict(d))
            for k, d in MODEL_PRESETS[name].items()}


# The model presets as config objects (PRESETS["tiny-test"]["dit"] is a DiTConfig).
PRESETS: dict[str, dict[str, ConfigBase]] = {name: preset_configs(name) for name in MODEL_PRESETS}
