"""The one training loop, for every kind of training (:mod:`tenku.train.tasks`: the VAE, the DiT + its
text encoder), on one CPU process, one GPU or ``torchrun --nproc_per_node N``. The loop knows nothing
of the model: the run's task builds the module, the data source, each batch and the export.

Each step takes one global batch from the bucketed sampler; each process handles its slice of each
gradient-accumulation micro-step; DDP (or FSDP2) averages the gradients. AdamW with linear warmup and
cosine decay, gradient clipping, EMA, bf16 autocast on CUDA. Checkpoints every ``ckpt_every`` steps
and at the end (atomic, keep last K); ``resume=True`` continues from the latest one with the same
batch order and random streams, so an interrupted run ends with the same weights.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
from pathlib import Path

import torch

from tenku.errors import TenkuError
from tenku.train import checkpoint as ckpt
from tenku.train.buckets import BucketBatchSampler, check_divisible, sample_generator
from tenku.train.datasets import SafeLoader
from tenku.train.ema import EMA
from tenku.train.monitor import Monitor
from tenku.train.parallel import (DistInfo, all_reduce_mean, autocast, barrier, init_distributed, shutdown,
                                  unwrap, wrap_model)
from tenku.train.presets import TrainConfig
from tenku.train.tasks import task_class

# fields that may change between a run and its resumption (they do not change the weights)
RESUME_FREE = {"steps", "ckpt_every", "keep_last", "log_every", "sample_every", "sample_steps", "threads",
               "eval_data", "latents_in_memory"}


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warmup over ``warmup_steps``, then cosine decay to ``lr * min_lr_ratio`` at ``steps``."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    span = max(cfg.steps - cfg.warmup_steps, 1)
    p = min((step - cfg.warmup_steps) / span, 1.0)
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * p)))


def fit_steps(step: int, run_steps: int, elapsed: float, since_mark: float, time_limit: float, steps: int) -> int:
    """The schedule length that ends the run within ``time_limit`` seconds of its start: ``run_steps``
    steps of this run took ``since_mark`` seconds (the pace; the first step, which builds kernels, is left
    out), ``elapsed`` seconds have passed in all, ``step`` steps are done. Never longer than ``steps``,
    never before the next step."""
    pace = since_mark / max(run_steps, 1)
    return max(step + 1, min(steps, step + int((time_limit - elapsed) / max(pace, 1e-9))))


def make_optimizer(module: torch.nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    decay, no_decay = [], []
    for p in module.parameters():
        if p.requires_grad:
            (decay if p.ndim >= 2 else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    # foreach (one kernel per group of tensors) on CUDA, where a per-parameter loop is launch-bound; the
    # plain loop on the CPU, whose results the tests compare bitwise across process counts
    on_cuda = any(p.is_cuda for p in decay + no_decay)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), foreach=on_cuda)


def _check_resume_config(stored: dict, cfg: TrainConfig) -> None:
    now, defaults = cfg.to_dict(), TrainConfig().to_dict()  # a field added later counts as its default
    diff = sorted(k for k in now if k not in RESUME_FREE and _norm(stored.get(k, defaults[k])) != _norm(now[k]))
    if diff:
        raise TenkuError(f"--resume: the run in this folder was started with different settings for {diff}; "
                         "resume with the same preset and overrides (only steps and logging may change)")


def _norm(v):
    return v if not isinstance(v, (list, tuple)) else [_norm(x) for x in v]


def train(kind: str, cfg: TrainConfig, data: str | Path, out: str | Path, resume: bool = False,
          vae_path: str | Path | None = None, stop_at: int | None = None, device: str | None = None,
          progress: bool = True, finish: bool = True, init: str | Path | None = None,
          time_limit: float | None = None) -> dict:
    """Run (or resume) a training run. Returns a summary dict (step, losses, skipped samples, paths).

    ``stop_at``: stop after this step (checkpointing it) as if interrupted; a later ``resume=True``
    run continues. ``finish``: at the end, export the weights (VAE component or pipeline folder).
    ``time_limit``: seconds the training steps may take (a rented GPU hour, say): the pace of the first
    steps sets the schedule's length (``steps``, at most the configured one), fixed by the end of the
    warmup so the cosine decay runs its whole course; the final export comes on top."""
    out = Path(out)
    if time_limit is not None and not time_limit > 0:
        raise TenkuError(f"--time-limit must be a positive number of seconds, got {time_limit}")
    info = init_distributed(device)
    try:
        return _train(kind, cfg, data, out, resume, vae_path, stop_at, info, progress, finish, init, time_limit)
    finally:
        shutdown(info)


def _train(kind, cfg, data, out, resume, vae_path, stop_at, info: DistInfo, progress, finish, init,
           time_limit) -> dict:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    check_divisible(cfg.batch_size, cfg.grad_accum, info.world_size)
    latest = ckpt.latest_checkpoint(out) if resume else None
    if not resume and ckpt.latest_checkpoint(out) is not None:
        raise TenkuError(f"{out} already holds checkpoints; pass --resume to continue that run, "
                         "or choose an empty --out folder")
    state = ckpt.load_checkpoint(latest) if latest else None
    if state is not None:
        _check_resume_config(state["config"], cfg)
        if kind != state["kind"]:
            raise TenkuError(f"{out} holds a {state['kind']} run, not a {kind} run")
        vae_path = vae_path or state.get("vae_path")

    task = task_class(kind).build(cfg, info.device, vae_path, data)
    raw, mc, vae_path = task.module, task.mc, task.vae_path
    source = task.source(data)
    sampler = BucketBatchSampler(source.keys, cfg.batch_size, seed=cfg.seed)
    monitor = Monitor(out, cfg.steps, state["step"] if state else 0, enabled=info.is_main, progress=progress)
    loader = SafeLoader(source, sampler.bucket_of, log=monitor.message)
    if state is None and init is None:
        task.prepare(source, monitor.message)
    if init is not None and state is None:
        weights, origin = task.init_weights(Path(init))
        try:
            raw.load_state_dict(weights)
        except RuntimeError as e:
            raise TenkuError(f"--init {init}: the weights do not fit this model ({e}); use the same model config") from None
        if info.is_main:
            out.mkdir(parents=True, exist_ok=True)
            (out / "init.json").write_text(json.dumps(origin) + "\n")
    model = wrap_model(raw, info, cfg.parallel)
    optimizer = make_optimizer(raw, cfg)
    ema = EMA(raw, cfg.ema_decay)
    step = 0
    if state is not None:
        ckpt.load_full_state(model, optimizer, state["model"], state["optimizer"])
        ema.load_state_dict(state["ema"])
        sampler.load_state_dict(state["sampler"])
        loader.load_state_dict(state["loader"])
        ckpt.set_rng_state(state["rng"])
        step = int(state["step"])
        monitor.message(f"resumed from {latest} at step {step}")
    elif info.is_main:
        out.mkdir(parents=True, exist_ok=True)
        cfg.save(out / "train_config.json")
    if info.is_main and state is None:
        n = sum(p.numel() for p in raw.parameters() if p.requires_grad)
        monitor.message(f"{kind}: {n / 1e6:.2f}M trainable parameters, {len(source)} samples in "
                        f"{len(sampler.buckets)} bucket(s), {len(sampler)} batches per epoch, "
                        f"{info.world_size} process(es) on {info.device}")

    def save(at: int) -> None:
        model_sd, optim_sd = ckpt.full_state(model, optimizer)
        ema_sd = ema.state_dict()
        if info.is_main:
            ckpt.save_checkpoint(out, at, {
                "kind": kind, "step": at, "config": cfg.to_dict(), "model": model_sd, "optimizer": optim_sd,
                "ema": ema_sd, "sampler": sampler.state_dict(), "loader": loader.state_dict(),
                "rng": ckpt.rng_state(), "vae_path": str(vae_path) if vae_path else None,
                "data": str(Path(data).resolve()),
                "model_configs": {k: v.to_dict() for k, v in mc.items()}}, cfg.keep_last)
        barrier(info)

    end = min(cfg.steps, stop_at) if stop_at is not None else cfg.steps
    last_metrics: dict[str, float] = {}
    history: list[float] = []
    t_start = time.perf_counter()
    first_step, t_mark, max_steps = step, None, cfg.steps  # time_limit: the pace from this run's second step
    calibrate_until = step + max(cfg.warmup_steps - step, 50)
    raw.train()
    while step < end:
        batch = sampler.next_batch()
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss_sum = torch.zeros(1)
        extras: dict[str, float] = {}
        for micro in range(cfg.grad_accum):
            pairs = BucketBatchSampler.local_slice(batch, micro, cfg.grad_accum, info.rank, info.world_size)
            gens = [sample_generator(cfg.seed, step, j) for j, _ in pairs]
            items = [loader.load(i, g) for (_, i), g in zip(pairs, gens)]
            sync = micro == cfg.grad_accum - 1 or not hasattr(model, "no_sync")
            ctx = model.no_sync() if not sync else contextlib.nullcontext()
            with ctx, autocast(info, cfg.mixed_precision):
                args, tokens = task.batch(items, gens)
                loss, metrics = model(*args)
                (loss / cfg.grad_accum).backward()
            loss_sum += loss.detach().float().cpu() / cfg.grad_accum
            for k, v in metrics.items():
                extras[k] = extras.get(k, 0.0) + float(v) / cfg.grad_accum
            monitor.count(tokens * info.world_size, len(items) * info.world_size)
        grad_norm = torch.nn.utils.clip_grad_norm_(raw.parameters(), cfg.grad_clip)
        grad_norm = grad_norm.full_tensor() if hasattr(grad_norm, "full_tensor") else grad_norm
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        ema.update(raw)
        step += 1
        mean_loss = float(all_reduce_mean(loss_sum, info))
        if not math.isfinite(mean_loss):
            raise TenkuError(f"the loss became {mean_loss} at step {step}; lower --lr (now {cfg.lr}) "
                             "and resume from the last checkpoint")
        history.append(mean_loss)
        monitor.advance()
        if time_limit is not None:
            now = time.perf_counter()
            if t_mark is None:
                t_mark = now
            elif step <= calibrate_until and (step - first_step) % 10 == 0:
                fit = fit_steps(step, step - first_step - 1, now - t_start, now - t_mark, time_limit, max_steps)
                fit = int(all_reduce_mean(torch.tensor([float(fit)]), info))  # every process agrees
                if fit != cfg.steps:
                    cfg = cfg.replace(steps=fit)
                    end = min(cfg.steps, stop_at) if stop_at is not None else cfg.steps
                if step + 10 > calibrate_until:  # the last calibration: the length is fixed from here
                    monitor.message(f"--time-limit {time_limit:g}s: the schedule ends at step {cfg.steps}")
        if step % cfg.log_every == 0 or step == end:
            red = all_reduce_mean(torch.tensor([extras[k] for k in sorted(extras)] or [0.0]), info)
            scalars = {"loss": mean_loss, "lr": lr, "grad_norm": float(grad_norm),
                       "skipped": float(loader.skipped), **dict(zip(sorted(extras), red.tolist()))}
            last_metrics = monitor.log(step, scalars)
        if step % cfg.ckpt_every == 0 or step == end:
            save(step)
        if cfg.sample_every and step % cfg.sample_every == 0 and step < cfg.steps:
            ema_state = ema.full_state_dict()  # a collective under FSDP: every process takes part
            if info.is_main:
                task.export(ema_state, source, out, step, monitor, final=False)
            barrier(info)
    wall = time.perf_counter() - t_start
    summary = {"kind": kind, "step": step, "steps": cfg.steps, "loss": history[-1] if history else None,
               "mean_loss_last_50": sum(history[-50:]) / max(len(history[-50:]), 1) if history else None,
               "skipped": loader.skipped, "skipped_ids": [source.sample_id(i) for i in sorted(loader.bad)],
               "wall_s_this_run": wall, "world_size": info.world_size, "metrics": last_metrics,
               "checkpoint": str(ckpt.latest_checkpoint(out)) if info.is_main else None}
    if loader.skipped:
        monitor.message(f"skipped {loader.skipped} bad sample(s): {summary['skipped_ids']}")
    if step >= cfg.steps and finish:
        ema_state = ema.full_state_dict()  # a collective under FSDP: every process takes part
        if info.is_main:
            summary.update(task.export(ema_state, source, out, step, monitor, final=True))
        barrier(info)
    monitor.close()
    return summary


