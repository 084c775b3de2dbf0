"""Latent caching: encode every clip of a shard folder once, so DiT training does not re-encode.

Layout of the output folder::

    OUT/latents.json               {"format": "tenku-latents", "version": 1, "vae": VAEConfig dict, ...}
    OUT/latents-00000.safetensors  one fp16 tensor (C, T', h, w) per clip, keyed by its index
    OUT/latents-00000.jsonl        one record per clip: id, key, file, shape, captions (written last)

A part is complete when its ``.jsonl`` exists; an interrupted run is resumed by skipping complete
parts. A clip that cannot be decoded is skipped, counted and reported.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from tenku.errors import TenkuError
from tenku.media import atomic_path
from tenku.train.datasets import BadSample, ClipSource, LATENT_FORMAT


def cache_latents(vae_path: str | Path, data: str | Path, out: str | Path, split: str = "train",
                  batch_size: int = 8, part_size: int = 250, device: str = "cpu", progress: bool = True,
                  limit: int | None = None, shard: str | None = None, log=print) -> dict:
    """Encode the clips of ``data`` (split ``split``; the first ``limit`` when given) with the VAE at
    ``vae_path``; returns a summary. ``shard="i/n"`` writes only parts p with p % n == i, so n
    processes (or machines) can share the work; each part is complete when its .jsonl exists."""
    from tenku.data.shards import parse_shard_spec

    mine, n_shards = parse_shard_spec(shard)
    from safetensors.torch import save_file

    from tenku.train.loop import load_vae

    vae = load_vae(vae_path, torch.device(device))
    vcfg = vae.cfg
    source = ClipSource(data, split, vcfg.temporal_factor, vcfg.spatial_factor)
    if limit is not None:
        if limit < 1:
            raise TenkuError(f"--limit must be at least 1, got {limit}")
        del source.records[limit:], source.keys[limit:]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    info = {"format": LATENT_FORMAT, "version": 1, "vae": vcfg.to_dict(), "vae_path": str(Path(vae_path).resolve()),
            "data": str(Path(data).resolve()), "split": split, "num_clips": len(source)}
    with atomic_path(out / "latents.json") as tmp:
        tmp.write_text(json.dumps(info, indent=2, sort_keys=True) + "\n")
    bar = None
    if progress and not os.environ.get("TENKU_NO_PROGRESS"):
        from tqdm import tqdm

        bar = tqdm(total=len(source), desc="cache-latents", dynamic_ncols=True)
    written, skipped, done_parts = 0, [], 0
    gen = torch.Generator().manual_seed(0)
    for p, start in enumerate(range(0, len(source), part_size)):
        idx = list(range(start, min(start + part_size, len(source))))
        jsonl = out / f"latents-{p:05d}.jsonl"
        if p % n_shards != mine:
            continue
        if jsonl.exists():  # complete from an earlier run
            written += sum(1 for line in jsonl.read_text().splitlines() if line.strip())
            done_parts += 1
            if bar is not None:
                bar.update(len(idx))
            continue
        tensors, records = {}, []
        by_key: dict[tuple, list[int]] = {}
        for i in idx:
            by_key.setdefault(source.keys[i], []).append(i)
        for key, members in by_key.items():
            for b in range(0, len(members), batch_size):
                chunk, videos = [], []
                for i in members[b:b + batch_size]:
                    try:
                        videos.append(source.load(i, gen)["video"])
                        chunk.append(i)
                    except BadSample as e:
                        skipped.append(source.sample_id(i))
                        log(f"skipped bad clip {source.sample_id(i)}: {e}")
                if not chunk:
                    continue
                with torch.no_grad():
                    z = vae.encode(torch.stack(videos).to(device)).float().cpu()  # (b, C, T', h, w)
                for i, zi in zip(chunk, z):
                    k = f"{i:07d}"
                    tensors[k] = zi.half().contiguous()
                    rec = source.records[i]
                    records.append({"id": source.sample_id(i), "key": k, "file": f"latents-{p:05d}.safetensors",
                                    "shape": list(zi.shape), "captions": rec.get("captions") or {},
                                    "fps": rec.get("fps"), "split": rec.get("split")})
                if bar is not None:
                    bar.update(len(members[b:b + batch_size]))
        with atomic_path(out / f"latents-{p:05d}.safetensors") as tmp:
            save_file(tensors, str(tmp)) if tensors else save_file({"_empty": torch.zeros(1)}, str(tmp))
        records.sort(key=lambda r: r["key"])
        with atomic_path(jsonl) as tmp:
            tmp.write_text("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in records))
        written += len(records)
    if bar is not None:
        bar.close()
    if written == 0 and not skipped and n_shards > 1:
        return {"out": str(out), "latents": 0, "skipped": 0, "skipped_ids": [], "parts_reused": done_parts}
    if written == 0:
        raise TenkuError(f"no clip of {data} could be encoded ({len(skipped)} unreadable)")
    return {"out": str(out), "latents": written, "skipped": len(skipped), "skipped_ids": skipped,
            "parts_reused": done_parts}
