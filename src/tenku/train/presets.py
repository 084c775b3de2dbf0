"""Training configuration: one frozen :class:`TrainConfig` for VAE and DiT runs, and named presets.

A preset fixes the model configs (as plain dicts of VAEConfig / DiTConfig / TextEncoderConfig /
FlowConfig fields) and the optimisation recipe. The command line picks a preset and overrides any
field with ``--steps/--batch-size/--lr`` or ``--set key=value`` (``--set vae.base_channels=16`` reaches
into a model config). The resolved config is stored in every checkpoint, so a run rebuilds exactly.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from tenku.config import MODEL_PRESETS, ConfigBase
from tenku.errors import TenkuError

KINDS = ("vae", "dit")


OBJECT_WEIGHT_SOURCES = ("target", "target+estimate")


@dataclasses.dataclass(frozen=True)
class TrainConfig(ConfigBase):
    """Everything a training run needs besides the data folder and the output folder."""

    # optimisation
    steps: int = 1000
    batch_size: int = 8  # global batch (all processes, all accumulation micro-steps together)
    grad_accum: int = 1
    lr: float = 3e-4
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    warmup_steps: int = 100
    weight_decay: float = 0.01
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    seed: int = 0
    # hardware
    mixed_precision: str = "auto"  # auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32
    grad_checkpointing: bool = False
    parallel: str = "ddp"  # ddp | fsdp (FSDP2 fully_shard per transformer block) when WORLD_SIZE > 1
    threads: int = 0  # torch CPU threads; 0 leaves torch's default
    # DiT on a latent cache: read each cache file whole once and keep it in memory (about 2 bytes per
    # cached value: 370 MB for the default model's 6,000 clips), not one file read per sample
    latents_in_memory: bool = True
    # checkpoints and watching
    ckpt_every: int = 200
    keep_last: int = 3
    log_every: int = 10
    sample_every: int = 0  # 0: samples only at the end
    sample_steps: int = 16
    # data
    split: str = "train"
    eval_data: str = ""  # held-out shard folder for the final numbers (VAE PSNR); "" = the training data
    crop_frames: int = 0  # VAE: random crops of this many frames (1 + temporal_factor * k); 0 = whole clip
    crop_size: int = 0  # VAE: random square crops of this many pixels; 0 = whole frame
    flip: bool = True  # random horizontal flip (VAE only: DiT captions name directions)
    # VAE objective
    kl_weight: float = 1e-6
    posterior_noise: float = 1.0  # scale of the posterior sample the decoder sees (0: decode the mean)
    l2_weight: float = 1.0
    l1_weight: float = 1.0
    edge_weight: float = 0.5
    # extra weight of a pixel in the L1/L2 terms: 1 + color_weight * chroma + motion_weight * |x - mean over
    # time| (chroma = max - min of its RGB in [-1, 1]); weights are normalised to mean 1 per clip. Small
    # coloured and moving objects otherwise count for little against large grey textured floors.
    color_weight: float = 0.0
    motion_weight: float = 0.0
    # VAE: False holds the encoder fixed (and with it the latent space), so a DiT trained on its latents
    # stays valid: a decoder-only fine-tune
    train_encoder: bool = True
    # VAE with linear maps (PatchVAE): a fresh run starts them at the principal components of the blocks of
    # this many training clips (every process fits the same clips, so the weights agree)
    linear_fit_clips: int = 256
    # DiT objective
    caption_dropout: float = 0.1  # fraction of samples trained with the empty prompt (for guidance)
    caption_levels: tuple[str, ...] = ("short", "medium", "long")
    cond_prob: float = 0.4  # fraction of samples with clean (given) latent frames
    # extra loss weight of a latent position by the share of object pixels in its block (1 + w * share,
    # then the weighted mean): a flow loss that is otherwise almost all floor (see train.latents.object_map)
    object_weight: float = 0.0
    # ... applied only to samples noised to t <= this (1: every sample): read from the target, the weight
    # biases the estimate toward "object here" where x_t does not yet show the objects (see
    # objectives.object_position_weights)
    object_weight_max_t: float = 1.0
    # where the weight comes from: "target" (the clip's object share) or "target+estimate" (the larger of
    # the target's share and that of the model's own clean estimate, decoded by the frozen VAE): a false
    # object then costs as much as a missed one, so the weight no longer rewards oversized objects
    object_weight_from: str = "target"
    # DiT loss weight of latent frame 0 (the first pixel frame, coded alone) against 1 for the others
    first_frame_weight: float = 1.0
    # models (dicts of the model config fields; the empty dict means the config's defaults)
    vae: dict = dataclasses.field(default_factory=dict)
    dit: dict = dataclasses.field(default_factory=dict)
    text: dict = dataclasses.field(default_factory=dict)
    flow: dict = dataclasses.field(default_factory=dict)
    sample: dict = dataclasses.field(default_factory=dict)


_WORLD_TINY = MODEL_PRESETS["world-tiny"]  # the models are defined once, in tenku.config.MODEL_PRESETS
_TINY = MODEL_PRESETS["tiny"]
WORLD_PATCH_VAE = dict(_class_name="PatchVAE", latent_channels=96, spatial_factor=8, temporal_factor=4,
                       refine_channels=192, refine_blocks=2)

PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    # tiny models for tests and smoke runs (seconds on one CPU core)
    "tiny": {
        "vae": dict(steps=4, batch_size=2, lr=1e-3, warmup_steps=1, ckpt_every=2, log_every=1,
                    crop_frames=5, crop_size=16, vae=_TINY["vae"]),
        "dit": dict(steps=4, batch_size=2, lr=1e-3, warmup_steps=1, ckpt_every=2, log_every=1,
                    sample_steps=2, **_TINY),
    },
    # the default model shipped in src/tenku/assets/tenku-world-tiny (2 CPU cores, about 2 hours)
    "world-tiny": {
        "vae": dict(steps=3000, batch_size=8, lr=1.5e-4, warmup_steps=50, ema_decay=0.995,
                    ckpt_every=100, keep_last=3, log_every=10, crop_frames=5, crop_size=32, threads=1,
                    kl_weight=1e-6, edge_weight=0.5, posterior_noise=0.0, **{k: _WORLD_TINY[k] for k in ("vae",)}),
        "dit": dict(steps=3000, batch_size=16, lr=6e-4, warmup_steps=100, ema_decay=0.995,
                    ckpt_every=50, keep_last=3, log_every=10, sample_every=0, threads=1,
                    caption_dropout=0.1, cond_prob=0.4, **_WORLD_TINY),
    },
    # the world-tiny models with text that conditions (issue "The default model follows its prompt"):
    # word tokens over the world's caption words (the vocabulary is filled in by resolve_config), a fixed
    # timestep shift of 3 with a fifth of the training timesteps uniform on [0.95, 1), where the caption
    # decides the clip, and fewer samples with given frames (from which colour could be copied)
    # the patch VAE (a 96-channel block code started at the blocks' principal components, with a causal
    # refiner; weight on coloured pixels, which on the world are exactly the objects) and a DiT over its
    # 80 tokens of 384 values, with the world-words text and timesteps
    "world-patch": {
        "vae": dict(steps=1500, batch_size=8, lr=4e-4, warmup_steps=30, ema_decay=0.99,
                    ckpt_every=50, keep_last=3, log_every=10, threads=1, flip=True,
                    kl_weight=0.0, l1_weight=0.2, l2_weight=1.0, edge_weight=0.2, posterior_noise=0.0,
                    color_weight=8.0, motion_weight=2.0, linear_fit_clips=256, vae=WORLD_PATCH_VAE),
        "dit": dict(steps=6000, batch_size=16, lr=6e-4, warmup_steps=100, ema_decay=0.995,
                    ckpt_every=50, keep_last=3, log_every=10, sample_every=0, threads=1,
                    caption_dropout=0.1, cond_prob=0.1, object_weight=8.0,
                    **{**_WORLD_TINY, "vae": WORLD_PATCH_VAE,
                       # one token per latent position: 96 values on a width of 192 (2x2 patches would
                       # be 384 values, more than the width can predict: see tasks.check_token_width)
                       "dit": {**_WORLD_TINY["dit"], "in_channels": WORLD_PATCH_VAE["latent_channels"],
                               "patch_size": (1, 1, 1)},
                       "text": {**_WORLD_TINY["text"], "tokenizer": "words"},
                       "flow": {**_WORLD_TINY["flow"], "shift": 3.0, "tail_prob": 0.2, "tail_start": 0.95,
                                "uniform_prob": 0.2}}),
    },
    "world-words": {
        "vae": dict(steps=3000, batch_size=8, lr=1.5e-4, warmup_steps=50, ema_decay=0.995,
                    ckpt_every=100, keep_last=3, log_every=10, crop_frames=5, crop_size=32, threads=1,
                    kl_weight=1e-6, edge_weight=0.5, posterior_noise=0.0, vae=_WORLD_TINY["vae"]),
        "dit": dict(steps=6000, batch_size=16, lr=6e-4, warmup_steps=100, ema_decay=0.995,
                    ckpt_every=50, keep_last=3, log_every=10, sample_every=0, threads=1,
                    caption_dropout=0.1, cond_prob=0.1,
                    **{**_WORLD_TINY, "text": {**_WORLD_TINY["text"], "tokenizer": "words"},
                       "flow": {**_WORLD_TINY["flow"], "shift": 3.0, "tail_prob": 0.2, "tail_start": 0.95}}),
    },
}


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _coerce(name: str, value: Any, current: Any) -> Any:
    if isinstance(current, bool):
        if isinstance(value, bool):
            return value
        if str(value).lower() in ("1", "true", "yes", "on"):
            return True
        if str(value).lower() in ("0", "false", "no", "off"):
            return False
        raise TenkuError(f"--set {name}: expected true/false, got {value!r}")
    if isinstance(current, (int, float)) and not isinstance(value, (int, float)):
        raise TenkuError(f"--set {name}: expected a number, got {value!r}")
    if isinstance(current, int) and isinstance(value, float) and not value.is_integer():
        raise TenkuError(f"--set {name}: expected an integer, got {value!r}")
    if isinstance(current, int) and not isinstance(current, bool):
        return int(value)
    if isinstance(current, float):
        return float(value)
    if isinstance(current, tuple):
        if not isinstance(value, list):
            raise TenkuError(f"--set {name}: expected a JSON list such as [1,2,2], got {value!r}")
        return tuple(value)
    return value


def resolve_config(kind: str, preset: str, overrides: dict[str, Any] | None = None,
                   sets: list[str] | None = None) -> TrainConfig:
    """Build the TrainConfig for ``kind`` from a preset, explicit overrides and ``key=value`` strings."""
    if kind not in KINDS:
        raise TenkuError(f"unknown training kind {kind!r}; expected one of {list(KINDS)}")
    if preset not in PRESETS:
        raise TenkuError(f"unknown preset {preset!r}; available presets: {sorted(PRESETS)}")
    base = TrainConfig()
    d = base.to_dict()
    for k, v in PRESETS[preset][kind].items():
        d[k] = dict(v) if isinstance(v, dict) else v
    for k, v in (overrides or {}).items():
        if v is not None:
            d[k] = v
    for item in sets or []:
        if "=" not in item:
            raise TenkuError(f"--set expects key=value (e.g. --set lr=1e-4 or --set dit.depth=4), got {item!r}")
        key, raw = item.split("=", 1)
        key, value = key.strip(), _parse_value(raw.strip())
        if "." in key:
            group, field = key.split(".", 1)
            if group not in ("vae", "dit", "text", "flow", "sample"):
                raise TenkuError(f"--set {key}: unknown group {group!r}; expected vae, dit, text, flow or sample")
            cls = model_config_classes()[group]
            names = {f.name: f for f in dataclasses.fields(cls)}
            if field not in names:
                raise TenkuError(f"--set {key}: {cls.__name__} has no field {field!r}; fields: {sorted(names)}")
            current = d[group].get(field, getattr(cls(), field))
            d[group] = {**d[group], field: _coerce(key, value, current)}
        else:
            if key not in d or key in ("vae", "dit", "text", "flow", "sample"):
                raise TenkuError(f"--set {key}: unknown TrainConfig field; fields: "
                                 f"{sorted(k for k in d if k not in ('vae', 'dit', 'text', 'flow', 'sample'))}")
            d[key] = _coerce(key, value, d[key])
    if d["text"].get("tokenizer") == "words" and not d["text"].get("vocab"):
        from tenku.world.vocabulary import world_vocabulary

        d["text"] = {**d["text"], "vocab": world_vocabulary()}  # stored in every checkpoint from here on
    cfg = TrainConfig.from_dict(d)
    validate(cfg)
    return cfg


def model_config_classes() -> dict[str, type]:
    from tenku.config import DiTConfig, FlowConfig, SampleConfig, TextEncoderConfig, VAEConfig

    return {"vae": VAEConfig, "dit": DiTConfig, "text": TextEncoderConfig, "flow": FlowConfig,
            "sample": SampleConfig}


def model_configs(cfg: TrainConfig) -> dict[str, ConfigBase]:
    """The model config objects a TrainConfig describes."""
    from tenku.config import vae_config_from_dict

    out = {}
    for group, cls in model_config_classes().items():
        d = dict(getattr(cfg, group))
        out[group] = vae_config_from_dict(d) if group == "vae" else cls.from_dict(d)
    return out


def validate(cfg: TrainConfig) -> None:
    problems = []
    if cfg.steps < 1:
        problems.append(f"steps must be >= 1 (got {cfg.steps})")
    if cfg.batch_size < 1 or cfg.grad_accum < 1:
        problems.append("batch_size and grad_accum must be >= 1")
    if cfg.batch_size % cfg.grad_accum:
        problems.append(f"batch_size {cfg.batch_size} must be a multiple of grad_accum {cfg.grad_accum}")
    if cfg.lr <= 0:
        problems.append(f"lr must be positive (got {cfg.lr})")
    if cfg.mixed_precision not in ("auto", "bf16", "fp32"):
        problems.append(f"mixed_precision must be auto, bf16 or fp32 (got {cfg.mixed_precision!r})")
    if cfg.parallel not in ("ddp", "fsdp"):
        problems.append(f"parallel must be ddp or fsdp (got {cfg.parallel!r})")
    if not 0 <= cfg.caption_dropout <= 1 or not 0 <= cfg.cond_prob <= 1:
        problems.append("caption_dropout and cond_prob must lie in [0, 1]")
    if not cfg.first_frame_weight > 0:
        problems.append(f"first_frame_weight must be > 0 (got {cfg.first_frame_weight})")
    if cfg.object_weight_from not in OBJECT_WEIGHT_SOURCES:
        problems.append(f"object_weight_from must be one of {OBJECT_WEIGHT_SOURCES}, got {cfg.object_weight_from!r}")
    if cfg.object_weight < 0 or not 0 <= cfg.object_weight_max_t <= 1:
        problems.append(f"object_weight must be >= 0 and object_weight_max_t in [0, 1] (got {cfg.object_weight}, "
                        f"{cfg.object_weight_max_t})")
    bad_levels = [c for c in cfg.caption_levels if c not in ("short", "medium", "long")]
    if bad_levels or not cfg.caption_levels:
        problems.append(f"caption_levels must be a non-empty subset of short/medium/long (got {cfg.caption_levels})")
    if cfg.keep_last < 1 or cfg.ckpt_every < 1:
        problems.append("keep_last and ckpt_every must be >= 1")
    if problems:
        raise TenkuError("invalid training config: " + "; ".join(problems))
