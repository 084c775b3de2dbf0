"""Turning a run into usable weights, samples and numbers.

- VAE runs: the EMA weights, with ``latent_shift`` / ``latent_scale`` measured on training clips so
  the latents have zero mean and unit variance, saved as a component folder ``OUT/export/vae``;
  reconstructions (original | reconstruction side by side) of a few clips as mp4 + a contact sheet;
  PSNR on held-out clips.
- DiT runs: the EMA DiT + text encoder + the frozen VAE saved as a pipeline folder
  ``OUT/export/pipeline``; one sample per prompt of a fixed list, as mp4 + a contact sheet PNG.
"""

from __future__ import annotations

import copy
import json
import math
from pathlib import Path

import numpy as np
import torch

from tenku.data.dataset import tensor_to_frames
from tenku.train.datasets import BadSample, ClipSource

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


def ema_copy(kind: str, mc: dict, cfg, ema_state: dict[str, torch.Tensor]) -> torch.nn.Module:
    """A fresh, plain (unwrapped, unsharded) training module on the CPU holding the EMA weights."""
    from tenku.models.hub import build_vae
    from tenku.train.objectives import DiTObjective, VAEObjective

    if kind == "vae":
        m = VAEObjective(build_vae(mc["vae"]), cfg.l1_weight, cfg.l2_weight, cfg.edge_weight, cfg.kl_weight,
                         cfg.posterior_noise, cfg.color_weight, cfg.motion_weight)
    else:
        from tenku.models.dit import DiT
        from tenku.models.text import ByteTextEncoder

        m = DiTObjective(DiT(mc["dit"]), ByteTextEncoder(mc["text"]), mc["flow"], mc["dit"].patch_size)
    params = dict(m.named_parameters())
    with torch.no_grad():
        for n, t in ema_state.items():
            params[n].copy_(t)
    return m.eval()


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


def export_and_sample(kind, ema_state, mc, vae, source, cfg, out: Path, step: int, monitor, final: bool) -> dict:
    from tenku.media import write_png, write_video
    from tenku.train.monitor import contact_sheet

    sample_dir = out / "samples" / f"step-{step:07d}"
    sample_dir.mkdir(parents=True, exist_ok=True)
    model = ema_copy(kind, mc, cfg, ema_state)
    result: dict = {}
    if kind == "vae":
        vae_ema = model.vae
        data = source.root
        if final:
            full = ClipSource(data, cfg.split, vae_ema.cfg.temporal_factor, vae_ema.cfg.spatial_factor)
            vae_ema = calibrate_vae(vae_ema, full)
            from tenku.models.hub import save_pretrained

            save_pretrained(vae_ema, vae_ema.cfg, out / "export" / "vae")
            result["export"] = str(out / "export" / "vae")
        full = ClipSource(data, cfg.split, vae_ema.cfg.temporal_factor, vae_ema.cfg.spatial_factor)
        videos = []
        gen = torch.Generator().manual_seed(0)
        with torch.no_grad():
            for i in range(min(4, len(full))):
                try:
                    video = full.load(i, gen)["video"]
                except BadSample:
                    continue
                recon = vae_ema.decode(vae_ema.encode(video[None]))[0]
                pair = np.concatenate([tensor_to_frames(video), tensor_to_frames(recon)], axis=2)  # side by side
                write_video(sample_dir / f"recon-{i}.mp4", pair, 8)
                videos.append(pair)
        if videos:
            sheet = contact_sheet(videos)
            write_png(sample_dir / "contact_sheet.png", sheet)
            monitor.add_image("samples/contact_sheet", sheet, step)
        if cfg.eval_data:
            held = vae_psnr(vae_ema, cfg.eval_data, None, max_clips=64 if final else 16)
        else:
            held = vae_psnr(vae_ema, data, cfg.split, max_clips=16)
        result["vae_psnr"] = held
        monitor.message(f"step {step}: VAE PSNR {held}")
    else:
        from tenku.config import FlowConfig, SampleConfig
        from tenku.pipeline.pipeline import TenkuPipeline

        dit = model.dit
        dit.cfg = dit.cfg.replace(grad_checkpointing=False)
        sample_cfg = SampleConfig.from_dict(dict(cfg.sample))
        flow_cfg = mc["flow"] if isinstance(mc["flow"], FlowConfig) else FlowConfig.from_dict(mc["flow"])
        pipe = TenkuPipeline(copy.deepcopy(vae).cpu().eval(), dit, model.text_encoder, flow_cfg, sample_cfg,
                             name="tenku-world-tiny")
        target = out / "export" / "pipeline"
        pipe.save_pretrained(target)
        result["export"] = str(target)
        videos = []
        for k, prompt in enumerate(SAMPLE_PROMPTS):
            o = pipe(prompt, seed=k, num_steps=cfg.sample_steps, progress=False)
            write_video(sample_dir / f"sample-{k}.mp4", o.frames, o.fps)
            videos.append(o.frames)
        (sample_dir / "prompts.json").write_text(json.dumps(list(SAMPLE_PROMPTS), indent=2) + "\n")
        sheet = contact_sheet(videos)
        write_png(sample_dir / "contact_sheet.png", sheet)
        monitor.add_image("samples/contact_sheet", sheet, step)
        monitor.message(f"step {step}: exported {target}; samples in {sample_dir}")
    result["samples"] = str(sample_dir)
    return result


def export_vae_run(run: str | Path, state: dict, out: str | Path, path: Path) -> dict:
    """Write a VAE component folder from the EMA weights of a VAE run's checkpoint ``state``, its latents
    normalised on the run's training data (as at the run's end)."""
    from tenku.config import vae_config_from_dict
    from tenku.errors import TenkuError
    from tenku.models.hub import build_vae, save_pretrained

    vae = build_vae(vae_config_from_dict(state["model_configs"]["vae"]))
    shadow = state["ema"]["shadow"]
    vae.load_state_dict({k[len("vae."):]: v for k, v in shadow.items() if k.startswith("vae.")})
    if not state.get("data"):
        raise TenkuError(f"{path} does not record its training data (written by an older tenku); "
                         f"the VAE of a finished run is in {Path(run) / 'export' / 'vae'}")
    source = ClipSource(state["data"], state["config"].get("split", "train"), vae.cfg.temporal_factor,
                        vae.cfg.spatial_factor)
    vae = calibrate_vae(vae, source)
    save_pretrained(vae, vae.cfg, out)
    return {"out": str(out), "checkpoint": str(path), "step": state["step"], "kind": "vae"}


def export_run(run: str | Path, out: str | Path, vae_path: str | Path | None = None, fp16: bool = False) -> dict:
    """Write a pipeline folder from the EMA weights of a DiT run's latest checkpoint (a VAE run: its VAE
    component folder)."""
    from tenku.config import DiTConfig, FlowConfig, SampleConfig, TextEncoderConfig
    from tenku.errors import TenkuError
    from tenku.models.dit import DiT
    from tenku.models.text import ByteTextEncoder
    from tenku.pipeline.pipeline import TenkuPipeline
    from tenku.train.checkpoint import latest_checkpoint, load_checkpoint
    from tenku.models.hub import load_vae

    path = latest_checkpoint(run)
    if path is None:
        raise TenkuError(f"{run} holds no checkpoints (checkpoints/step-NNNNNNN.pt); pass a training run folder")
    state = load_checkpoint(path)
    if state["kind"] == "vae":
        return export_vae_run(run, state, out, path)
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
    cfg = state["config"]
    pipe = TenkuPipeline(vae, dit.eval(), text.eval(), FlowConfig.from_dict(mc["flow"]),
                         SampleConfig.from_dict(dict(cfg.get("sample") or {})), name=Path(out).name)
    pipe.save_pretrained(out, dtype=torch.float16 if fp16 else None)
    size = sum(f.stat().st_size for f in Path(out).rglob("*") if f.is_file())
    return {"out": str(out), "checkpoint": str(path), "step": state["step"], "bytes": size}
