"""What one kind of training brings to the loop: its model, its data, its batch and its export.

The loop (:mod:`tenku.train.loop`) is model-agnostic: it asks the run's :class:`Task` for a training
module, a data source and, each micro-step, the module's arguments; it never branches on the kind.

    task = TASKS["dit"].build(cfg, device, vae_path)   # the module to train (+ anything frozen it needs)
    source = task.source(data)                          # ClipSource or LatentSource
    task.prepare(source, log)                           # once, on a fresh run (the patch VAE's PCA start)
    args, tokens = task.batch(items, gens)              # module(*args) -> (loss, metrics)
    task.export(ema_module, source, out, step, monitor, final)   # samples, and at the end the weights
    TASKS[state["kind"]].export_checkpoint(...)         # `tenku train export RUN`

Adding a kind of training is one class here and its entry in ``TASKS``.
"""

from __future__ import annotations

import copy
import json
from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
import torch.nn as nn

from tenku.data.dataset import tensor_to_frames
from tenku.errors import TenkuError
from tenku.models.hub import build_vae, load_vae, save_pretrained
from tenku.train import checkpoint as ckpt
from tenku.train.datasets import BadSample, ClipSource, LatentSource, is_latent_dir
from tenku.train.latents import object_map
from tenku.train.objectives import DiTObjective, VAEObjective, choose_caption, to_device
from tenku.train.presets import TrainConfig, model_configs

# a fixed prompt list in the world's caption vocabulary (short and long forms)
SAMPLE_PROMPTS = (
    "a red circle moving to the right",
    "a blue square moving upward",
    "a green triangle moving down and to the left",
    "two yellow circles moving to the left",
    "There is one object on a gray floor. A large orange circle starts on the left and moves to the right "
    "at a moderate speed. The camera stays still.",
    "",
)


class Task(ABC):
    """One kind of training. ``module`` is what the optimiser, DDP/FSDP and the EMA see; ``mc`` the model
    configs stored in checkpoints; ``vae_path`` the frozen VAE a run depends on (None: none)."""

    kind: ClassVar[str]
    init_sources: ClassVar[str] = "a step-NNNNNNN.pt file or a run folder"  # what --init accepts

    def __init__(self, cfg: TrainConfig, mc: dict, module: nn.Module, device: torch.device,
                 vae_path: str | Path | None = None):
        self.cfg, self.mc, self.module, self.device, self.vae_path = cfg, mc, module, device, vae_path

    @classmethod
    @abstractmethod
    def build(cls, cfg: TrainConfig, device: torch.device, vae_path: str | Path | None = None,
              data: str | Path | None = None) -> "Task":
        """The task of a run: its module (seeded by ``cfg.seed``), model configs and anything frozen."""

    @abstractmethod
    def fresh_module(self) -> nn.Module:
        """A new, plain training module of the same shape on the CPU (holds the EMA weights for export)."""

    @abstractmethod
    def source(self, data: str | Path):
        """The run's data source (``ClipSource`` or ``LatentSource``) for ``data``."""

    def prepare(self, source, log: Callable[[str], None]) -> None:
        """Work done once at the start of a fresh run (not on resume or --init)."""

    @abstractmethod
    def batch(self, items: list[dict], gens: list[torch.Generator]) -> tuple[tuple, int]:
        """(the module's positional arguments, tokens this slice counts for throughput)."""

    @abstractmethod
    def export(self, ema_state: dict[str, torch.Tensor], source, out: Path, step: int, monitor,
               final: bool) -> dict:
        """Samples of the EMA weights (and at the end the exported weights); what to add to the summary."""

    @classmethod
    @abstractmethod
    def export_checkpoint(cls, run: Path, state: dict, path: Path, out: str | Path,
                          vae_path: str | Path | None = None, fp16: bool = False) -> dict:
        """``tenku train export RUN``: usable weights from a checkpoint ``state`` of this kind."""

    def init_weights(self, path: Path) -> tuple[dict[str, torch.Tensor], dict]:
        """``--init PATH``: (the module's weights, what to record of where they came from) from a checkpoint
        file or a run folder's latest checkpoint (its EMA weights)."""
        src = path if path.is_file() else ckpt.latest_checkpoint(path)
        if src is None:
            raise TenkuError(f"--init {path}: no checkpoint there ({self.init_sources})")
        state = ckpt.load_checkpoint(src)
        if state["kind"] != self.kind:
            raise TenkuError(f"--init {path} is a {state['kind']} checkpoint, this is a {self.kind} run")
        return {**state["model"], **state["ema"]["shadow"]}, {"init": str(src.resolve()), "step": state["step"]}

    def ema_module(self, ema_state: dict[str, torch.Tensor]) -> nn.Module:
        m = self.fresh_module()
        params = dict(m.named_parameters())
        with torch.no_grad():
            for n, t in ema_state.items():
                params[n].copy_(t)
        return m.eval()


def _object_shares(vae) -> Callable[[torch.Tensor], torch.Tensor]:
    """Clean latents (B, C, T, h, w) -> the object share of each latent position in their decoded pixels
    (B, T, h, w), by the frozen ``vae`` (``latents.object_map``)."""
    vae.requires_grad_(False).eval()

    def shares(z: torch.Tensor) -> torch.Tensor:
        return object_map(vae.decode(z), vae.cfg.spatial_factor, vae.cfg.temporal_factor)

    return shares


class VAETask(Task):
    """The VAE (causal conv or patch code) on video clips: reconstruction + edge + KL losses."""

    kind = "vae"

    @classmethod
    def build(cls, cfg, device, vae_path=None, data=None):
        mc = model_configs(cfg)
        torch.manual_seed(cfg.seed)  # the same initial weights in every process
        task = cls(cfg, mc, nn.Module(), device)
        task.module = task.fresh_module()
        if not cfg.train_encoder:
            task.module.vae.encoder.requires_grad_(False)  # decoder-only: the latent space stays as it is
        return task

    def fresh_module(self):
        c = self.cfg
        return VAEObjective(build_vae(self.mc["vae"]), c.l1_weight, c.l2_weight, c.edge_weight, c.kl_weight,
                            c.posterior_noise, c.color_weight, c.motion_weight)

    def source(self, data):
        v, c = self.mc["vae"], self.cfg
        return ClipSource(data, c.split, v.temporal_factor, v.spatial_factor, c.crop_frames, c.crop_size, c.flip)

    def prepare(self, source, log):
        if hasattr(self.module.vae, "fit_linear_"):
            fit_linear(self.module.vae, source, self.cfg.linear_fit_clips, log)

    def batch(self, items, gens):
        video = torch.stack([it["video"] for it in items]).to(self.device)  # (b, 3, T, H, W)
        v = self.mc["vae"]
        _, _, T, H, W = video.shape
        return (video, gens), len(items) * (1 + (T - 1) // v.temporal_factor) * (H // v.spatial_factor) * (
            W // v.spatial_factor)

    def export(self, ema_state, source, out, step, monitor, final):
        from tenku.media import write_png, write_video
        from tenku.train.export import calibrate_vae, vae_psnr
        from tenku.train.monitor import contact_sheet

        sample_dir = _sample_dir(out, step)
        vae = self.ema_module(ema_state).vae
        result: dict = {}
        full = ClipSource(source.root, self.cfg.split, vae.cfg.temporal_factor, vae.cfg.spatial_factor)
        if final:
            vae = calibrate_vae(vae, full)
            save_pretrained(vae, vae.cfg, out / "export" / "vae")
            result["export"] = str(out / "export" / "vae")
        videos = []
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for i in range(min(4, len(full))):
                try:
                    video = full.load(i, gen)["video"]
                except BadSample:
                    continue
                recon = vae.decode(vae.encode(video[None]))[0]
                pair = np.concatenate([tensor_to_frames(video), tensor_to_frames(recon)], axis=2)  # side by side
                write_video(sample_dir / f"recon-{i}.mp4", pair, 8)
                videos.append(pair)
        if videos:
            sheet = contact_sheet(videos)
            write_png(sample_dir / "contact_sheet.png", sheet)
            monitor.add_image("samples/contact_sheet", sheet, step)
        if self.cfg.eval_data:
            held = vae_psnr(vae, self.cfg.eval_data, None, max_clips=64 if final else 16)
        else:
            held = vae_psnr(vae, source.root, self.cfg.split, max_clips=16)
        result.update(vae_psnr=held, samples=str(sample_dir))
        monitor.message(f"step {step}: VAE PSNR {held}")
        return result

    @classmethod
    def export_checkpoint(cls, run, state, path, out, vae_path=None, fp16=False):
        """A VAE component folder from the EMA weights, its latents normalised on the run's training data
        (as at the run's end)."""
        from tenku.config import vae_config_from_dict
        from tenku.train.export import calibrate_vae

        vae = build_vae(vae_config_from_dict(state["model_configs"]["vae"]))
        shadow = state["ema"]["shadow"]
        vae.load_state_dict({k[len("vae."):]: v for k, v in shadow.items() if k.startswith("vae.")})
        if not state.get("data"):
            raise TenkuError(f"{path} does not record its training data (written by an older tenku); "
                             f"the VAE of a finished run is in {Path(run) / 'export' / 'vae'}")
        src = ClipSource(state["data"], state["config"].get("split", "train"), vae.cfg.temporal_factor,
                         vae.cfg.spatial_factor)
        vae = calibrate_vae(vae, src)
        save_pretrained(vae, vae.cfg, out)
        return {"out": str(out), "checkpoint": str(path), "step": state["step"], "kind": "vae"}


class DiTTask(Task):
    """The DiT + its text encoder on cached latents (or on clips, encoded here by a frozen VAE): the
    rectified-flow loss with given-frame tasks, weighted by the latent positions of objects."""

    kind = "dit"
    init_sources = "a step-NNNNNNN.pt file, a run folder or a pipeline folder"

    @classmethod
    def build(cls, cfg, device, vae_path=None, data=None):
        if vae_path is None and data is not None and is_latent_dir(data):
            vae_path = LatentSource(data).info.get("vae_path")  # the VAE the cache was written with
        mc = model_configs(cfg)
        torch.manual_seed(cfg.seed)
        vae = load_vae(vae_path, device) if vae_path else None
        if vae is not None:
            mc["vae"] = vae.cfg
            if mc["dit"].in_channels != vae.cfg.latent_channels:
                raise TenkuError(f"the DiT expects {mc['dit'].in_channels} latent channels but the VAE makes "
                                 f"{vae.cfg.latent_channels}; set --set dit.in_channels={vae.cfg.latent_channels}")
        mc["dit"] = mc["dit"].replace(grad_checkpointing=cfg.grad_checkpointing or mc["dit"].grad_checkpointing,
                                      text_dim=mc["text"].dim)
        check_token_width(mc["dit"])
        task = cls(cfg, mc, nn.Module(), device, vae_path)
        task.vae = vae  # frozen: not part of the trained module, its optimiser or its checkpoint
        task.module = task.fresh_module()
        if cfg.object_weight_from == "target+estimate" and cfg.object_weight:
            if vae is None:
                raise TenkuError("object_weight_from=target+estimate decodes the model's clean estimates: it needs "
                                 "the VAE (--vae PATH, or a latent cache that records its VAE)")
            task.module.estimate_objects = _object_shares(vae)
        return task

    def init_weights(self, path):
        """Also a pipeline folder (e.g. the shipped default model): its transformer and text encoder, to
        fine-tune them."""
        if not (path / "model_index.json").is_file():
            return super().init_weights(path)
        from tenku.models.hub import load_pipeline_folder

        components = load_pipeline_folder(path)[0]
        if "transformer" not in components or "text_encoder" not in components:
            raise TenkuError(f"--init {path}: the pipeline folder has no tenku transformer and text encoder")
        weights = {f"dit.{k}": v.float() for k, v in components["transformer"].state_dict().items()}
        weights.update({f"text_encoder.{k}": v.float() for k, v in components["text_encoder"].state_dict().items()})
        return weights, {"init": str(path.resolve()), "step": None}

    def fresh_module(self):
        from tenku.models.dit import DiT
        from tenku.models.text import ByteTextEncoder

        return DiTObjective(DiT(self.mc["dit"]), ByteTextEncoder(self.mc["text"]), self.mc["flow"],
                            self.mc["dit"].patch_size, self.cfg.object_weight, self.cfg.object_weight_max_t,
                            self.cfg.first_frame_weight)

    def source(self, data):
        if is_latent_dir(data):
            return LatentSource(data, in_memory=self.cfg.latents_in_memory)
        if self.vae is None:
            raise TenkuError(f"{data} holds video clips; DiT training on clips needs --vae PATH to encode them "
                             "(or cache latents first with `tenku data cache-latents`)")
        v = self.mc["vae"]
        return ClipSource(data, self.cfg.split, v.temporal_factor, v.spatial_factor)

    def batch(self, items, gens):
        dev, w = self.device, self.cfg.object_weight
        objects = None  # the object share of each latent position, for the objective's loss weights
        if "latent" in items[0]:
            latents = to_device([it["latent"] for it in items], dev)  # b x (C, T, h, w)
            if w and all(it.get("objects") is not None for it in items):
                objects = to_device([it["objects"] for it in items], dev)  # b x (T, h, w)
            elif w:
                objects = [None if it.get("objects") is None else it["objects"].to(dev) for it in items]
        else:  # clips: encode them with the frozen VAE
            with torch.no_grad():
                video = torch.stack([it["video"] for it in items]).to(dev)  # (b, 3, T, H, W)
                latents = list(self.vae.encode(video).float().unbind(0))
                if w:
                    shares = object_map(video, self.vae.cfg.spatial_factor, self.vae.cfg.temporal_factor)
                    objects = list(shares.unbind(0))  # b x (T, h, w)
        prompts = [choose_caption(g, it["captions"], self.cfg.caption_levels, self.cfg.caption_dropout)
                   for it, g in zip(items, gens)]
        tokens = sum(self.module.tokens(z) for z in latents)
        return (latents, prompts, gens, self.cfg.cond_prob, objects), tokens

    def export(self, ema_state, source, out, step, monitor, final):
        from tenku.config import FlowConfig, SampleConfig
        from tenku.media import write_png, write_video
        from tenku.pipeline.pipeline import TenkuPipeline
        from tenku.train.monitor import contact_sheet

        sample_dir = _sample_dir(out, step)
        model = self.ema_module(ema_state)
        dit = model.dit
        dit.cfg = dit.cfg.replace(grad_checkpointing=False)
        flow = self.mc["flow"] if isinstance(self.mc["flow"], FlowConfig) else FlowConfig.from_dict(self.mc["flow"])
        pipe = TenkuPipeline(copy.deepcopy(self.vae).cpu().eval(), dit, model.text_encoder, flow,
                             SampleConfig.from_dict(dict(self.cfg.sample)), name="tenku-world-tiny")
        target = out / "export" / "pipeline"
        pipe.save_pretrained(target)
        videos = []
        for k, prompt in enumerate(SAMPLE_PROMPTS):
            o = pipe(prompt, seed=k, num_steps=self.cfg.sample_steps, progress=False)
            write_video(sample_dir / f"sample-{k}.mp4", o.frames, o.fps)
            videos.append(o.frames)
        (sample_dir / "prompts.json").write_text(json.dumps(list(SAMPLE_PROMPTS), indent=2) + "\n")
        sheet = contact_sheet(videos)
        write_png(sample_dir / "contact_sheet.png", sheet)
        monitor.add_image("samples/contact_sheet", sheet, step)
        monitor.message(f"step {step}: exported {target}; samples in {sample_dir}")
        return {"export": str(target), "samples": str(sample_dir)}

    @classmethod
    def export_checkpoint(cls, run, state, path, out, vae_path=None, fp16=False):
        """A pipeline folder: the EMA DiT and text encoder with the run's (or the given) VAE."""
        from tenku.config import DiTConfig, FlowConfig, SampleConfig, TextEncoderConfig
        from tenku.models.dit import DiT
        from tenku.models.text import ByteTextEncoder
        from tenku.pipeline.pipeline import TenkuPipeline

        mc = state["model_configs"]
        dit = DiT(DiTConfig.from_dict(mc["dit"]).replace(grad_checkpointing=False))
        text = ByteTextEncoder(TextEncoderConfig.from_dict(mc["text"]))
        shadow = state["ema"]["shadow"]
        for prefix, module in (("dit.", dit), ("text_encoder.", text)):
            sd = module.state_dict()
            for k in sd:
                if prefix + k in shadow:
                    sd[k] = shadow[prefix + k]
                elif prefix + k in state["model"]:  # buffers are not averaged
                    sd[k] = state["model"][prefix + k]
            module.load_state_dict(sd)
        vae_src = vae_path or state.get("vae_path")
        if not vae_src:
            raise TenkuError("the run does not record its VAE; pass --vae PATH")
        vae = load_vae(vae_src, torch.device("cpu"))
        pipe = TenkuPipeline(vae, dit.eval(), text.eval(), FlowConfig.from_dict(mc["flow"]),
                             SampleConfig.from_dict(dict(state["config"].get("sample") or {})), name=Path(out).name)
        pipe.save_pretrained(out, dtype=torch.float16 if fp16 else None)
        size = sum(f.stat().st_size for f in Path(out).rglob("*") if f.is_file())
        return {"out": str(out), "checkpoint": str(path), "step": state["step"], "bytes": size}


TASKS: dict[str, type[Task]] = {t.kind: t for t in (VAETask, DiTTask)}


def task_class(kind: str) -> type[Task]:
    if kind not in TASKS:
        raise TenkuError(f"unknown training kind {kind!r}; choose one of {sorted(TASKS)}")
    return TASKS[kind]


def export_run(run: str | Path, out: str | Path, vae_path: str | Path | None = None, fp16: bool = False) -> dict:
    """Export a run's latest checkpoint: of a DiT run a pipeline folder (its EMA weights), of a VAE run its
    VAE component folder (``tenku train export RUN``)."""
    from tenku.train.checkpoint import latest_checkpoint, load_checkpoint

    path = latest_checkpoint(run)
    if path is None:
        raise TenkuError(f"{run} holds no checkpoints (checkpoints/step-NNNNNNN.pt); pass a training run folder")
    state = load_checkpoint(path)
    return task_class(state["kind"]).export_checkpoint(Path(run), state, path, out, vae_path=vae_path, fp16=fp16)


def check_token_width(dit_cfg) -> None:
    """Refuse a DiT whose width is below the values of one patch. Its last layer maps ``hidden_size`` values
    to the patch's ``in_channels x pt x ph x pw``, so per token the predicted velocity lies in a subspace
    of at most ``hidden_size`` dimensions: the noise outside it is never removed and every sample keeps
    it (the 96-channel patch code with 2x2 patches is 384 values on a width of 192: samples came out as
    independent blocks of noise)."""
    pt, ph, pw = dit_cfg.patch_size
    values = dit_cfg.in_channels * pt * ph * pw
    if dit_cfg.hidden_size < values:
        raise TenkuError(f"the DiT's hidden_size {dit_cfg.hidden_size} is below the {values} values of one patch "
                         f"({dit_cfg.in_channels} channels x patch {tuple(dit_cfg.patch_size)}): it could not "
                         "predict the noise of the other dimensions; use a smaller patch (--set "
                         "dit.patch_size=[1,1,1]) or a wider model (--set dit.hidden_size=N)")


def fit_linear(vae, source: ClipSource, clips: int, log: Callable[[str], None]) -> None:
    """Start a VAE's linear maps at the principal components of the first ``clips`` training samples."""
    gen = torch.Generator().manual_seed(0)
    videos = []
    for i in range(min(clips, len(source))):
        try:
            videos.append(source.load(i, gen)["video"])
        except BadSample:
            continue
    if not videos:
        raise TenkuError("no readable training clip to fit the VAE's linear maps on")
    kept = vae.fit_linear_(videos)
    log(f"linear maps fitted on {len(videos)} clips: variance kept " +
        ", ".join(f"{k} {v:.4f}" for k, v in kept.items()))


def _sample_dir(out: Path, step: int) -> Path:
    d = Path(out) / "samples" / f"step-{step:07d}"
    d.mkdir(parents=True, exist_ok=True)
    return d


