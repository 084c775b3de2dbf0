"""DiT side by side: tenku's packed DiT vs diffusers' WanTransformer3DModel at equal size.

    python benchmarks/dit_vs_diffusers.py --threads 2 --repeats 7
    python benchmarks/dit_vs_diffusers.py --width 256 --depth 6 --heads 4 --batch 8 --latent 16x5x16x16

Both models are built from config with random weights (no download), at equal width, depth, heads,
MLP width, patch size, text width and token count, in float32 on the CPU. One process times, interleaved:

* training step: forward + MSE loss + backward + AdamW step (tokens/s = batch * tokens / step time);
* inference step: one forward under ``torch.no_grad`` (one sampler step, ms); ``tenku_text_cached`` is
  tenku as its pipeline samples, with the prompt's projections computed once (``DiT.encode_text``).

``--compile`` adds a side: tenku's DiT under ``torch.compile`` (tenku.models.dit.compile_dit).
``--baseline-commit REV`` adds ``tenku_baseline``: the DiT source (``tenku/models/dit.py`` and ``layers.py``) as it
was at git revision REV, loaded beside the current one with the same weights, so a change is timed before and
after in one process (with ``--compile``, also ``tenku_baseline_compiled``).
``--wan-pipeline-text N`` (N = 512 as diffusers' ``WanPipeline`` runs) adds ``diffusers_pipeline_text``: Wan with
its text as its pipeline feeds it, the prompt's ``--text-len`` embeddings followed by zeros up to N tokens and no
mask (``WanPipeline._get_t5_prompt_embeds`` pads to ``max_sequence_length=512`` with ``new_zeros``; the
transformer's cross-attention gets ``attention_mask=None``), while tenku keeps the prompt's real length (it packs
text without padding). The equal-token ``diffusers`` side stays the main comparison; ratios against the padded
side are reported separately (``*_speedup_vs_pipeline_text``).
Prints JSON with per-side wall and CPU seconds (median, min, max, spread) and the tenku/diffusers ratios.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import base_parser, emit, machine_info, setup_torch, time_interleaved  # noqa: E402


def parse_latent(text: str) -> tuple[int, int, int, int]:
    parts = tuple(int(v) for v in text.lower().split("x"))
    if len(parts) != 4:
        raise SystemExit(f"--latent must be CxTxHxW, e.g. 16x5x16x16; got {text!r}")
    return parts  # type: ignore[return-value]


def build_models(width: int, depth: int, heads: int, text_dim: int, channels: int, mlp_ratio: float = 4.0):
    """(tenku DiT, diffusers WanTransformer3DModel) at equal size, float32, train mode."""
    import torch
    from diffusers import WanTransformer3DModel

    from tenku.config import DiTConfig
    from tenku.models.dit import DiT

    cfg = DiTConfig(in_channels=channels, patch_size=(1, 2, 2), hidden_size=width, depth=depth, num_heads=heads,
                    mlp_ratio=mlp_ratio, text_dim=text_dim, qk_norm=True, shared_adaln=True)
    tenku = DiT(cfg)
    wan = WanTransformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=heads, attention_head_dim=width // heads, in_channels=channels,
        out_channels=channels, text_dim=text_dim, freq_dim=256, ffn_dim=int(width * mlp_ratio), num_layers=depth,
        cross_attn_norm=True, qk_norm="rms_norm_across_heads",
    )
    # adaLN-Zero leaves tenku's output at 0 (gradients still flow); give both models nonzero outputs so
    # the measured backward does the same work whatever the initialisation.
    with torch.no_grad():
        for m in (tenku, wan):
            for p in m.parameters():
                if p.ndim >= 2 and not p.any():
                    p.normal_(0.0, 0.02)
    return tenku, wan


def make_inputs(batch: int, latent: tuple[int, int, int, int], text_len: int, text_dim: int, seed: int,
                padded_text: bool = False):
    """Random latents, targets, t, text and text mask; ``padded_text``: every second sample's prompt is a
    quarter of ``text_len`` long and padded (as the empty prompt beside the real one in a CFG batch)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, *latent, generator=g)  # (B, C, T, H, W)
    target = torch.randn(batch, *latent, generator=g)
    t = torch.rand(batch, generator=g)  # (B,) in [0, 1]
    text = torch.randn(batch, text_len, text_dim, generator=g)  # (B, L, text_dim)
    mask = torch.ones(batch, text_len, dtype=torch.bool)
    if padded_text:
        mask[1::2, max(1, text_len // 4):] = False
    return x, target, t, text, mask


def load_baseline_dit(rev: str, cfg_model):
    """A DiT built from ``src/tenku/models/{layers,dit}.py`` at git revision ``rev`` (the rest of tenku is the
    current one), with ``cfg_model``'s config and weights."""
    import subprocess
    import tempfile
    import types

    repo = Path(__file__).resolve().parent.parent
    sources = {}
    for name in ("layers", "dit"):
        try:
            sources[name] = subprocess.run(["git", "show", f"{rev}:src/tenku/models/{name}.py"], cwd=repo, check=True,
                                           capture_output=True, text=True).stdout
        except (OSError, subprocess.CalledProcessError) as e:
            raise SystemExit(f"--baseline-commit {rev!r}: cannot read src/tenku/models/{name}.py at that revision "
                             f"({getattr(e, 'stderr', '') or e}); give a commit of this repository") from None
    pkg = "tenku_baseline_" + "".join(c if c.isalnum() else "_" for c in rev)
    mods = {}
    for name in ("layers", "dit"):
        src = sources[name].replace("from tenku.models.layers import", f"from {pkg}_layers import")
        mod = types.ModuleType(f"{pkg}_{name}")
        mod.__file__ = str(Path(tempfile.gettempdir()) / f"{pkg}_{name}.py")
        sys.modules[mod.__name__] = mod
        exec(compile(src, f"{rev}:src/tenku/models/{name}.py", "exec"), mod.__dict__)
        mods[name] = mod
    model = mods["dit"].DiT(cfg_model.cfg)
    model.load_state_dict(cfg_model.state_dict())
    return model


def pad_text_as_wan_pipeline(text, mask, length: int):
    """Text as ``WanPipeline`` gives it to the transformer: each prompt's real embeddings (``mask``), zeros after
    them, up to ``length`` tokens (B, length, D); the transformer gets no mask."""
    B, L, D = text.shape
    if length < L:
        raise SystemExit(f"--wan-pipeline-text {length} is shorter than --text-len {L}; give at least {L}")
    out = text.new_zeros(B, length, D)
    for i in range(B):
        n = int(mask[i].sum())
        out[i, :n] = text[i][mask[i]]
    return out


def tenku_call(model):
    import torch

    def fwd(x, t, text, mask):  # the packed API takes a list of (C, T, H, W) latents
        return torch.stack(model(list(x.unbind(0)), t, text, mask))

    return fwd


def wan_call(model, pipeline_text: int | None = None):
    """Wan takes timesteps on the 0..1000 scale and unmasked text; with ``pipeline_text`` the text is padded
    with zeros to that many tokens first, as ``WanPipeline`` does (once, outside the timed step)."""
    padded: dict = {}

    def fwd(x, t, text, mask):
        if pipeline_text:
            key = (id(text), id(mask))
            if key not in padded:
                padded.clear()
                padded[key] = (pad_text_as_wan_pipeline(text, mask, pipeline_text), text, mask)
            text = padded[key][0]
        return model(x, t * 1000.0, text, return_dict=False)[0]

    return fwd


def train_step_fn(fwd, model, x, target, t, text, mask):
    import torch
    import torch.nn.functional as F

    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.0)

    def step():
        opt.zero_grad(set_to_none=True)
        loss = F.mse_loss(fwd(x, t, text, mask), target)
        loss.backward()
        opt.step()
        return loss

    return step


def infer_step_fn(fwd, x, t, text, mask):
    import torch

    def step():
        with torch.no_grad():
            return fwd(x, t, text, mask)

    return step


def run(args) -> dict:
    import torch

    setup_torch(args)
    latent = parse_latent(args.latent)
    c, T, H, W = latent
    tokens = T * (H // 2) * (W // 2)
    tenku, wan = build_models(args.width, args.depth, args.heads, args.text_dim, c)
    fwds = {"tenku": tenku_call(tenku), "diffusers": wan_call(wan)}
    models = {"tenku": tenku, "diffusers": wan}
    if args.compile:
        from tenku.models.dit import compile_dit

        tenku_c, _ = build_models(args.width, args.depth, args.heads, args.text_dim, c)
        tenku_c.load_state_dict(tenku.state_dict())
        fwds["tenku_compiled"] = tenku_call(compile_dit(tenku_c))
        models["tenku_compiled"] = tenku_c
    if args.baseline_commit:
        base = load_baseline_dit(args.baseline_commit, tenku)
        fwds["tenku_baseline"] = tenku_call(base)
        models["tenku_baseline"] = base
        if args.compile:  # the baseline under torch.compile too, with its own compile_dit
            base_c = load_baseline_dit(args.baseline_commit, tenku)
            fwds["tenku_baseline_compiled"] = tenku_call(sys.modules[type(base_c).__module__].compile_dit(base_c))
            models["tenku_baseline_compiled"] = base_c
    if args.wan_pipeline_text:  # the same Wan model, fed as its pipeline feeds it (text padded with zeros)
        if args.wan_pipeline_text < args.text_len:
            raise SystemExit(f"--wan-pipeline-text {args.wan_pipeline_text} is shorter than --text-len "
                             f"{args.text_len}; give at least {args.text_len} (WanPipeline pads to 512)")
        fwds["diffusers_pipeline_text"] = wan_call(wan, args.wan_pipeline_text)
        models["diffusers_pipeline_text"] = wan
    if args.sides:  # time only these (diffusers always: the ratios are against it)
        unknown = set(args.sides) - set(fwds)
        if unknown:
            raise SystemExit(f"--sides: unknown {sorted(unknown)}; with these options the sides are {sorted(fwds)}")
        keep = {"diffusers", *args.sides}
        fwds = {k: v for k, v in fwds.items() if k in keep}
        models = {k: v for k, v in models.items() if k in keep}
    x, target, t, text, mask = make_inputs(args.batch, latent, args.text_len, args.text_dim, args.seed,
                                           args.padded_text)
    result = {
        "benchmark": "dit_vs_diffusers",
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "machine": machine_info(),
        "config": {"width": args.width, "depth": args.depth, "heads": args.heads, "mlp": 4 * args.width,
                   "patch": [1, 2, 2], "text_dim": args.text_dim, "text_len": args.text_len, "padded_text": args.padded_text,
                   "wan_pipeline_text_len": args.wan_pipeline_text, "batch": args.batch,
                   "latent": list(latent), "tokens_per_sample": tokens, "dtype": "float32"},
        "params": {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()},
        "load": "1-minute load average before (machine.load_average) and after (load_average_after)",
        "baseline_commit": args.baseline_commit,
    }
    if args.mode in ("train", "both"):
        for m in models.values():
            m.train()
        steps = {k: train_step_fn(fwds[k], models[k], x, target, t, text, mask) for k in fwds}
        res = time_interleaved(steps, args.repeats, args.warmup)
        n_tok = args.batch * tokens
        result["train"] = {k: {**v, "tokens_per_s": n_tok / v["wall"]["median"],
                               "tokens_per_cpu_s": n_tok / v["cpu"]["median"]} for k, v in res.items()}
        result["train_speedup"] = _ratios(res)
        if "diffusers_pipeline_text" in res:
            result["train_speedup_vs_pipeline_text"] = _ratios(res, "diffusers_pipeline_text")
        if "tenku_baseline" in res:
            result["train_vs_baseline"] = _ratios(res, "tenku_baseline")
    if args.mode in ("infer", "both"):
        for m in models.values():
            m.eval()
        steps = {k: infer_step_fn(fwds[k], x, t, text, mask) for k in fwds}
        with torch.no_grad():  # as the pipeline samples: text projections and K/V once, reused every step
            tc = tenku.encode_text(text, mask)

        def cached(x, t, text, mask):
            return torch.stack(tenku(list(x.unbind(0)), t, text, mask, text_context=tc))

        if "tenku" in fwds:
            steps["tenku_text_cached"] = infer_step_fn(cached, x, t, text, mask)
        res = time_interleaved(steps, args.repeats, args.warmup)
        result["infer"] = res
        result["infer_speedup"] = _ratios(res)
        if "diffusers_pipeline_text" in res:
            result["infer_speedup_vs_pipeline_text"] = _ratios(res, "diffusers_pipeline_text")
        if "tenku_baseline" in res:
            result["infer_vs_baseline"] = _ratios(res, "tenku_baseline")
    if args.profile:
        result["profile_train"] = {k: top_ops(train_step_fn(fwds[k], models[k], x, target, t, text, mask))
                                   for k in fwds}
    result["load_average_after"] = machine_info()["load_average"]
    torch.set_grad_enabled(True)
    return result


def top_ops(step, n: int = 8) -> list[list]:
    """[op, share of self CPU time in %] for the ``n`` costliest operators of two training steps."""
    from torch.profiler import ProfilerActivity, profile

    step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
        step()
    ev = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in ev) or 1
    return [[e.key, round(100 * e.self_cpu_time_total / total, 1)] for e in ev[:n]]


def _ratios(res: dict, ref: str = "diffusers") -> dict:
    """``ref``'s time / each other side's time (> 1: that side is faster), by wall clock and by CPU time."""
    base = res[ref]
    return {f"{k}_vs_{ref}": {"wall": base["wall"]["median"] / v["wall"]["median"],
                              "cpu": base["cpu"]["median"] / v["cpu"]["median"]}
            for k, v in res.items() if k != ref}


def main(argv: list[str] | None = None) -> dict:
    p = base_parser(__doc__)
    p.add_argument("--width", type=int, default=256)
    p.add_argument("--depth", type=int, default=6)
    p.add_argument("--heads", type=int, default=4)
    p.add_argument("--text-dim", type=int, default=256)
    p.add_argument("--text-len", type=int, default=32, help="text tokens per sample (default: %(default)s)")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--padded-text", action="store_true", help="every second prompt a quarter as long, padded "
                   "(tenku masks the padding; diffusers' Wan takes no text mask and attends to all of it)")
    p.add_argument("--latent", default="16x5x16x16", help="latent CxTxHxW per sample; patch 1x2x2 "
                   "(default: %(default)s = 320 tokens)")
    p.add_argument("--mode", choices=("train", "infer", "both"), default="both")
    p.add_argument("--compile", action="store_true", help="also time tenku under torch.compile")
    p.add_argument("--profile", action="store_true", help="also list each side's costliest operators (training)")
    p.add_argument("--baseline-commit", metavar="REV", help="also time tenku's DiT as it was at this git revision")
    p.add_argument("--wan-pipeline-text", type=int, metavar="N", help="also time Wan with its text padded with "
                   "zeros to N tokens and no mask, as diffusers' WanPipeline runs it (N=512), beside tenku at "
                   "--text-len real tokens (side diffusers_pipeline_text; the equal-token side stays)")
    p.add_argument("--sides", nargs="+", metavar="SIDE", help="time only these sides (and diffusers): tenku, "
                   "tenku_compiled, tenku_baseline, tenku_baseline_compiled, diffusers_pipeline_text "
                   "(default: all that the options add)")
    args = p.parse_args(argv)
    result = run(args)
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
