"""Which objects a video compression network keeps, against the block-PCA baseline at equal latent size.

    python benchmarks/vae_objects.py --train runs/w/world --test runs/w/world_test_id \
        --vae src/tenku/assets/tenku-world-tiny --pca 64 128 --clips 32 --fit-clips 200

For every VAE folder given and for a block-PCA code (``PatchVAE`` with no refiner, its linear maps the
principal components of ``--fit-clips`` training clips: frame 0 alone, then 4-frame x 8x8-pixel
blocks) with each ``--pca`` channel count, it reconstructs ``--clips`` held-out clips and reports PSNR
and, per size class, the share of the objects the parser finds in the originals that it finds again
in the reconstruction in their colour (``tenku.eval.reconstruction``). Prints one JSON document.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402

from common import machine_info  # noqa: E402


def load_clips(folder: str, split: str | None, n: int, tf: int = 4, sf: int = 8):
    from tenku.train.datasets import BadSample, ClipSource

    source = ClipSource(folder, split, tf, sf)
    gen = torch.Generator().manual_seed(0)
    videos, specs = [], []
    for i in range(min(n, len(source))):
        try:
            videos.append(source.load(i, gen)["video"])
        except BadSample:
            continue
        specs.append(((source.records[i].get("meta") or {}).get("spec")))
    return videos, specs


def block_pca(train_videos: list[torch.Tensor], channels: int, sf: int = 8, tf: int = 4):
    from tenku.config import PatchVAEConfig
    from tenku.models.patch_vae import PatchVAE

    vae = PatchVAE(PatchVAEConfig(latent_channels=channels, spatial_factor=sf, temporal_factor=tf, refine_blocks=0))
    by_shape: dict[tuple, list[torch.Tensor]] = {}
    for v in train_videos:
        by_shape.setdefault(tuple(v.shape), []).append(v)
    biggest = max(by_shape.values(), key=len)
    vae.fit_linear_(torch.stack(biggest))
    return vae.eval()


@torch.no_grad()
def measure(vae, videos, specs) -> dict:
    from tenku.data.dataset import tensor_to_frames
    from tenku.eval.reconstruction import ObjectRecall
    from tenku.eval.suites import default_parser

    parser = default_parser()
    rec = ObjectRecall()
    t0 = time.perf_counter()
    for v, spec in zip(videos, specs):
        recon = vae.decode(vae.encode(v[None]))[0]
        rec.add_clip(tensor_to_frames(v), tensor_to_frames(recon), parser, spec)
    out = rec.summary()
    cfg = vae.cfg
    out["latent_channels"] = cfg.latent_channels
    out["latent_grid"] = f"(1 + k) x H/{cfg.spatial_factor} x W/{cfg.spatial_factor}"
    out["compression"] = round(3 * cfg.temporal_factor * cfg.spatial_factor ** 2 / cfg.latent_channels, 2)
    out["seconds"] = round(time.perf_counter() - t0, 1)
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--train", required=True, help="world clips to fit the block-PCA baseline on")
    ap.add_argument("--test", required=True, help="held-out world clips (e.g. a test_id folder)")
    ap.add_argument("--vae", nargs="*", default=[], help="VAE component, pipeline or VAE run folders")
    ap.add_argument("--pca", nargs="*", type=int, default=[64, 128], help="block-PCA channel counts")
    ap.add_argument("--clips", type=int, default=32, help="held-out clips to reconstruct")
    ap.add_argument("--fit-clips", type=int, default=200, help="training clips to fit the PCA on")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    from tenku.models.hub import load_vae

    test, specs = load_clips(args.test, None, args.clips)
    results = {"machine": machine_info(), "test": args.test, "clips": len(test), "models": {}}
    if args.pca:
        train, _ = load_clips(args.train, "train", args.fit_clips)
        for c in args.pca:
            results["models"][f"block-pca-{c}"] = measure(block_pca(train, c), test, specs)
    for folder in args.vae:
        results["models"][folder] = measure(load_vae(folder, torch.device("cpu")), test, specs)
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
