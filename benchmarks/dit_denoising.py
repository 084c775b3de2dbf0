"""How much of the noise does a pipeline's DiT remove? The clean-latent estimate's error on real latents.

From cached latents x0 of world clips (``tenku data cache-latents`` with the folder's VAE), noised to
x_t = (1 - t) x0 + t n, the DiT's estimate x0_hat = x_t - t v is compared with x0. The error energy is
given as a ratio to the added noise's energy: 0 removes it all; a model that leaves x_t as it is scores
1 + |x0|^2 / |n|^2 (about 2 for unit-variance latents). Where the DiT's width is below one patch's values
the last layer's output spans only part of each token's space, and the ratio is also given inside and
outside that span (outside, nothing can be removed: about 2), and per latent frame (frame 0 is the first
pixel frame, coded alone).

    python benchmarks/dit_denoising.py --model src/tenku/assets/tenku-world-tiny --latents runs/latents
"""

from __future__ import annotations

import argparse
import json

import torch


def token_rows(z: torch.Tensor, patch: tuple[int, int, int]) -> torch.Tensor:
    """(B, C, T, H, W) -> (B * tokens, C * pt * ph * pw) in the DiT's patch layout."""
    B, C, T, H, W = z.shape
    pt, ph, pw = patch
    z = z.reshape(B, C, T // pt, pt, H // ph, ph, W // pw, pw).permute(0, 2, 4, 6, 1, 3, 5, 7)
    return z.reshape(-1, C * pt * ph * pw).double()


@torch.no_grad()
def denoising_error(pipe, latents: torch.Tensor, captions: list[str], ts=(0.05, 0.2, 0.5, 0.8),
                    seed: int = 0) -> dict:
    dit = pipe.transformer.float()
    patch = tuple(dit.cfg.patch_size)
    W = dit.final_layer.linear.weight.detach().double()  # (patch values, hidden)
    span = None
    if W.shape[1] < W.shape[0]:
        U = torch.linalg.svd(W, full_matrices=False)[0]  # (values, hidden)
        span = U @ U.T  # projector onto what the last layer can output
    emb, mask = pipe.text_encoder.encode(captions)
    g = torch.Generator().manual_seed(seed)
    out = {"patch_values": W.shape[0], "hidden_size": W.shape[1]}
    for t in ts:
        n = torch.randn(latents.shape, generator=g)
        xt = (1 - t) * latents + t * n
        v = torch.stack(dit(list(xt.unbind(0)), torch.full((len(latents),), float(t)), emb, mask))
        err, noise = token_rows(xt - t * v - latents, patch), token_rows(t * n, patch)
        row = {"all": float(err.pow(2).sum() / noise.pow(2).sum())}
        e_t = (xt - t * v - latents).double().pow(2).sum((0, 1, 3, 4))  # (T,): per latent frame
        per_frame = (e_t / (t * n).double().pow(2).sum((0, 1, 3, 4))).tolist()
        if span is not None:
            e_in, n_in = err @ span, noise @ span
            row["inside_span"] = float(e_in.pow(2).sum() / n_in.pow(2).sum())
            row["outside_span"] = float((err - e_in).pow(2).sum() / (noise - n_in).pow(2).sum())
        out[f"t={t}"] = {**{k: round(v, 3) for k, v in row.items()}, "per_latent_frame": [round(x, 3) for x in per_frame]}
    return out


def main() -> None:
    from tenku.pipeline.pipeline import TenkuPipeline
    from tenku.train.datasets import LatentSource

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="pipeline folder")
    ap.add_argument("--latents", required=True, help="latent cache written with the folder's VAE")
    ap.add_argument("--clips", type=int, default=16)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    pipe = TenkuPipeline.from_pretrained(a.model)
    src = LatentSource(a.latents)
    g = torch.Generator().manual_seed(0)
    items = [src.load(i, g) for i in range(min(a.clips, len(src)))]
    x0 = torch.stack([it["latent"] for it in items])
    caps = [it["captions"].get("long") or "" for it in items]
    print(json.dumps({"model": a.model, **denoising_error(pipe, x0, caps)}, indent=1))


if __name__ == "__main__":
    main()
