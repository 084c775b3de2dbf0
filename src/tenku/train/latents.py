"""Latent caching: encode every clip of a shard folder once, so DiT training does not re-encode.

Layout of the output folder::

    OUT/latents.json               {"format": "tenku-latents", "version": 1, "vae": VAEConfig dict, ...}
    OUT/latents-00000.safetensors  one fp16 tensor (C, T', h, w) per clip, keyed by its index, and its
                                   object map (T', h, w) under KEY.objects (see ``object_map``)
    OUT/latents-00000.jsonl        one record per clip: id, key, file, shape, captions (written last)

A part is complete when its ``.jsonl`` exists; an interrupted run is resumed by skipping complete
parts. A clip that cannot be decoded is skipped, counted and reported.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tenku.errors import TenkuError
from tenku.media import atomic_path
from tenku.progress import progress_enabled
from tenku.train.datasets import BadSample, ClipSource, LATENT_FORMAT


OBJECT_CHROMA = 0.3  # chroma (max - min of RGB in [-1, 1]) from which a pixel counts as an object's


def object_map(video: torch.Tensor, spatial_factor: int, temporal_factor: int) -> torch.Tensor:
    """(B, 3, 1 + tf*k, H, W) in [-1, 1] -> (B, 1 + k, H/sf, W/sf): the share of object pixels in the
    pixel block behind each latent position (frame 0 alone, then groups of ``tf`` frames). On the world
    every floor, texture and occluder is grey and every object colour saturated, so chroma is its exact
    object (and paint-trail) mask; on other footage it marks coloured regions."""
    chroma = (video.amax(1) - video.amin(1) > OBJECT_CHROMA).float()  # (B, T, H, W)
    b, T, H, W = chroma.shape
    sf, tf = spatial_factor, temporal_factor
    first = chroma[:, :1].reshape(b, 1, H // sf, sf, W // sf, sf).mean((3, 5))  # (B, 1, h, w)
    rest = chroma[:, 1:].reshape(b, (T - 1) // tf, tf, H // sf, sf, W // sf, sf).mean((2, 4, 6))  # (B, k, h, w)
    return torch.cat([first, rest], dim=1)


def cache_latents(vae_path: str | Path, data: str | Path, out: str | Path, split: str = "train",
                  batch_size: int = 8, part_size: int = 250, device: str = "cpu", progress: bool = True,
                  limit: int | None = None, shard: str | None = None, log=print) -> dict:
    """Encode the clips of ``data`` (split ``split``; the first ``limit`` when given) with the VAE at
    ``vae_path``; returns a summary. ``shard="i/n"`` writes only parts p with p % n == i, so n
    processes (or machines) can share the work; each part is complete when its .jsonl exists."""
    from tenku.data.shards import parse_shard_spec

    mine, n_shards = parse_shard_spec(shard)
    from safetensors.torch import save_file

    from tenku.models.hub import load_vae

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
    if progress_enabled(progress):
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
                    batch = torch.stack(videos).to(device)
                    z = vae.encode(batch).float().cpu()  # (b, C, T', h, w)
                    objects = object_map(batch, vcfg.spatial_factor, vcfg.temporal_factor).cpu()  # (b, T', h, w)
                for i, zi, oi in zip(chunk, z, objects):
                    k = f"{i:07d}"
                    tensors[k] = zi.half().contiguous()
                    tensors[k + ".objects"] = oi.half().contiguous()
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
