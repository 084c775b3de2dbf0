"""Conditioning sensitivity: does changing one word of the prompt change that attribute of the clip?

With the same seed (the same initial noise), prompts that differ in one word are generated and compared:

- background: the background word alone changes ("... on a white background." vs "... on a black
  background."): the clips' mean brightness (0-255, every pixel of every frame) must differ by more
  than ``min_brightness_gap`` (100 by default; the world's white and black floors are 220 apart);
- colour: the colour word alone changes ("a large red ball" vs "a large blue ball"): the colour the
  eval's object parser finds most of (coverage summed over the frames) must change with it, to the
  colour asked for in each clip (a change to some other colour, such as green and orange for red and
  blue, is noise, not conditioning; ``changed`` reports the weaker reading).

A model that ignores its text makes the same clip from the same noise and fails both. Every seed
must pass. :func:`pipeline_sensitivity` runs the check on a pipeline folder; :func:`sensitivity` on
any ``generate(prompt, seed) -> frames (T, H, W, 3) uint8``.

    python -m tenku.eval.sensitivity --model src/tenku/assets/tenku-world-tiny
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

Generate = Callable[[str, int], np.ndarray]

# the world's medium-caption style (tenku.world.captions): one still object on a plain background
TEMPLATE = "A large {color} ball rests motionless on a {background} background."


def mean_brightness(frames: np.ndarray) -> float:
    """Mean of every channel of every pixel of every frame, 0-255."""
    return float(np.asarray(frames, dtype=np.float64).mean())


def dominant_color(frames: np.ndarray, parser=None) -> str | None:
    """The palette colour with the most parsed coverage over all frames (None: no object found)."""
    if parser is None:
        from tenku.eval.suites import default_parser

        parser = default_parser()
    area: dict[str, float] = {}
    for dets in parser.parse_video(np.asarray(frames)):
        for d in dets:
            area[d.color] = area.get(d.color, 0.0) + d.area
    return max(sorted(area), key=area.get) if area else None


def sensitivity(
    generate: Generate,
    seeds: Sequence[int] = (0,),
    template: str = TEMPLATE,
    backgrounds: tuple[str, str] = ("white", "black"),
    background_color: str = "red",
    colors: tuple[str, str] = ("red", "blue"),
    color_background: str = "gray",
    min_brightness_gap: float = 100.0,
    parser=None,
) -> dict:
    """Run the check (module docstring). Returns a JSON-ready dict: ``passed`` (both parts, every seed),
    ``background`` and ``color`` parts, each with ``passed`` and one entry per seed (prompts,
    brightness or parsed colours), and ``seconds``."""
    if parser is None:
        from tenku.eval.suites import default_parser

        parser = default_parser()
    start = time.perf_counter()
    bg_rows, col_rows = [], []
    for seed in seeds:
        prompts = [template.format(color=background_color, background=b) for b in backgrounds]
        bright = [mean_brightness(generate(p, seed)) for p in prompts]
        gap = abs(bright[0] - bright[1])
        bg_rows.append({"seed": seed, "prompts": prompts, "brightness": [round(b, 2) for b in bright],
                        "gap": round(gap, 2), "passed": gap > min_brightness_gap})
        prompts = [template.format(color=c, background=color_background) for c in colors]
        found = [dominant_color(generate(p, seed), parser) for p in prompts]
        matched = [f == c for f, c in zip(found, colors)]
        col_rows.append({"seed": seed, "prompts": prompts, "parsed": found, "matched": matched,
                         "changed": found[0] != found[1], "passed": all(matched)})
    bg_ok = all(r["passed"] for r in bg_rows)
    col_ok = all(r["passed"] for r in col_rows)
    return {"passed": bg_ok and col_ok,
            "background": {"passed": bg_ok, "min_gap": min_brightness_gap, "seeds": bg_rows},
            "color": {"passed": col_ok, "seeds": col_rows},
            "seconds": round(time.perf_counter() - start, 2)}


def one_step_gaps(pipe, ts: Sequence[float] = (0.95, 0.98, 1.0), seeds: Sequence[int] = (0,),
                  template: str = TEMPLATE, backgrounds: tuple[str, str] = ("white", "black"),
                  background_color: str = "red") -> dict:
    """The one-step probe: from the same noised latent at each ``t`` (from pure noise at t = 1), the
    model's estimate of the clean clip (``x_t - t v``, decoded) under two prompts that differ only in
    the background word. Returns the brightness gap (0-255) per ``t``, averaged over ``seeds``: where
    the caption decides the clip (t near 1) a model that follows its text shows a large gap, one that
    ignores it none. Runs one DiT call per prompt and t (no sampling loop)."""
    import torch

    sc = pipe.sample_config
    vae, dit, text = pipe.vae, pipe.transformer, pipe.text_encoder
    shape = (vae.cfg.latent_channels, vae.num_latent_frames(sc.num_frames),
             sc.height // vae.cfg.spatial_factor, sc.width // vae.cfg.spatial_factor)
    prompts = [template.format(color=background_color, background=b) for b in backgrounds]
    gaps: dict[str, list[float]] = {f"{t:g}": [] for t in ts}
    with torch.no_grad():
        emb, mask = text.encode(prompts)  # (2, L, D), (2, L)
        for seed in seeds:
            g = torch.Generator().manual_seed(seed)
            noise = torch.randn(shape, generator=g)
            start = torch.randn(shape, generator=g) * 0.5  # a neutral clean latent the noise is mixed into
            for t in ts:
                xt = (1 - t) * start + t * noise
                tv = torch.full((2,), float(t))
                v = dit([xt, xt], tv, emb, mask)  # 2 x (C, T', h, w)
                x0 = torch.stack([xt - t * vi for vi in v])  # (2, C, T', h, w)
                frames = vae.decode(x0)  # (2, 3, T, H, W) in [-1, 1]
                bright = ((frames + 1) * 127.5).mean(dim=(1, 2, 3, 4))
                gaps[f"{t:g}"].append(float((bright[0] - bright[1]).abs()))
    return {"prompts": prompts, "seeds": list(seeds),
            "brightness_gap": {k: round(float(np.mean(v)), 2) for k, v in gaps.items()}}


def pipeline_sensitivity(model: str | Path | object, seeds: Sequence[int] = (0,), num_steps: int | None = None,
                         guidance: float | None = None, **kwargs) -> dict:
    """:func:`sensitivity` through a pipeline (a loaded backend, or its folder: tenku's or a diffusers one) at
    its sample defaults, prompts used as written (no prompt expansion). ``kwargs`` go to
    :func:`sensitivity`. The result also names the model, steps and guidance; ``one_step`` (the DiT's own
    one-call gaps) is None for a diffusers folder."""
    from tenku.pipeline.backend import Backend
    from tenku.pipeline.loading import load_pipeline

    pipe = model if isinstance(model, Backend) else load_pipeline(model)

    def generate(prompt: str, seed: int) -> np.ndarray:
        return pipe(prompt, seed=seed, num_steps=num_steps, guidance=guidance, progress=False,
                    expand=False).frames

    out = sensitivity(generate, seeds=seeds, **kwargs)
    sc = pipe.sample_config
    return {"model": str(pipe.path or pipe.name), "num_steps": num_steps or sc.num_steps,
            "guidance": sc.guidance if guidance is None else guidance, **out,
            "one_step": one_step_gaps(pipe, seeds=seeds) if pipe.backend == "tenku" else None}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="a pipeline folder")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--steps", type=int, default=None, help="sampling steps (default: the folder's)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    out = pipeline_sensitivity(args.model, seeds=args.seeds, num_steps=args.steps)
    print(json.dumps(out, indent=2))
    return 0 if out["passed"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
