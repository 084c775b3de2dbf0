"""Host work of one DiT training step, per batch: reading the latents, the per-sample draws, noising and
the loss, done per sample against batched (everything but the DiT itself, which is the same either way):
the cache read from its files per sample or kept in memory; per-sample kernels or one set for the batch.

    python benchmarks/train_host.py --latents LATENT_CACHE [--batch 128] [--batches 20] [--device cpu|cuda]

Both paths give the same values (tests/test_flow.py, tests/test_train_loop.py); this measures their time.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from tenku.config import FlowConfig
from tenku.flow import add_noise, flow_matching_loss
from tenku.flow.loss import _sample_losses
from tenku.train.datasets import LatentSource
from tenku.train.objectives import draw_noise, sample_clean_mask, sample_t, to_device


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_host(source: LatentSource, ids: list[int], device: torch.device, batched: bool, flow: FlowConfig) -> dict:
    """Seconds of each host stage for one batch ``ids``; ``batched``: the stacked paths."""
    gens = [torch.Generator().manual_seed(i) for i in ids]
    t0 = time.perf_counter()
    items = [source.load(i, g) for i, g in zip(ids, gens)]
    t1 = time.perf_counter()
    if batched:
        latents = to_device([it["latent"] for it in items], device)
        objects = to_device([it["objects"] for it in items], device)
    else:
        latents = [it["latent"].to(device) for it in items]
        objects = [it["objects"].to(device) for it in items]
    ts, noises, cleans = [], [], []
    for z, g in zip(latents, gens):
        ts.append(sample_t(g, z[0].numel(), flow))
        noises.append(draw_noise(z.shape, g, device) if batched else torch.randn(z.shape, generator=g).to(device))
        cleans.append(sample_clean_mask(g, z.shape[1], 0.1)[0] if batched else
                      sample_clean_mask(g, z.shape[1], 0.1)[0].to(device))
    if batched:
        noises, cleans = to_device(noises, device), to_device(cleans, device)
    t_vec = torch.cat(ts).to(device)
    _sync(device)
    t2 = time.perf_counter()
    positions = [1 + 3 * o for o in objects]
    if batched:
        xs = add_noise(latents, noises, t_vec, clean=cleans, batched=True)
        loss = flow_matching_loss(xs, latents, noises, clean=cleans, positions=positions,  # xs: the DiT's place
                                  batched=True)
    else:
        xs = [add_noise([z], [n], t_vec[i:i + 1], clean=[c])[0] for i, (z, n, c) in enumerate(zip(latents, noises, cleans))]
        per, keep = _sample_losses(xs, latents, noises, cleans, positions)
        loss = (per * keep).sum() / keep.sum()
    float(loss)
    t3 = time.perf_counter()
    return {"load": t1 - t0, "draws_and_copies": t2 - t1, "noise_and_loss": t3 - t2}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--latents", required=True)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--batches", type=int, default=20)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    flow = FlowConfig(base_shift=3.0, max_shift=3.0, tail_prob=0.2, uniform_prob=0.2)
    results = {}
    for name, in_memory, batched in (("file read per sample, per-sample kernels", False, False),
                                     ("cache in memory, per-sample kernels (the CPU default)", True, False),
                                     ("cache in memory, batched (the GPU default)", True, True)):
        source = LatentSource(args.latents, in_memory=in_memory)
        g = torch.Generator().manual_seed(0)
        order = torch.randperm(len(source), generator=g).tolist()
        if in_memory:  # the whole cache is read once, before the run's first steps (not part of a step)
            t = time.perf_counter()
            for i in range(len(source)):
                source.load(i, g)
            results[f"{name}: first read of the whole cache, s"] = round(time.perf_counter() - t, 2)
        runs = []
        for b in range(args.batches + 1):
            ids = [order[(b * args.batch + j) % len(order)] for j in range(args.batch)]
            r = step_host(source, ids, device, batched, flow)
            if b:  # the first batch builds kernels and opens files
                runs.append(r)
        for stage in runs[0]:
            results[f"{name}: {stage}, ms"] = round(1000 * statistics.median(r[stage] for r in runs), 2)
        results[f"{name}: total, ms"] = round(1000 * statistics.median(sum(r.values()) for r in runs), 2)
    print(json.dumps({"batch": args.batch, "batches": args.batches, "device": str(device), "threads": args.threads,
                      **results}, indent=1))


if __name__ == "__main__":
    main()
