"""VAE side by side: tenku's CausalVAE vs diffusers' AutoencoderKLWan at equal channels and compression.

    python benchmarks/vae_vs_diffusers.py --threads 2 --repeats 5
    python benchmarks/vae_vs_diffusers.py --frames 17 --size 64 --base 32

Both are built from config with random weights (no download): base channels ``--base``, channel
multipliers 1,2,4,4, one residual block per stage (two in the decoder, as both designs do), 16 latent
channels, 8x spatial and 4x temporal compression, float32. Timed interleaved in one process:
encode (posterior mean) + decode of a (1, 3, T, H, W) clip, reported as ms per frame.

Peak memory: each side runs encode + decode once more in a fresh child process of this script
(``--memory-child``), and reports its peak resident memory above the memory held after building the
model (VmHWM after clearing it), so one side's freed-but-kept heap cannot hide the other's peak.
``--channels-last`` also times tenku with channels_last_3d weights and inputs.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import (  # noqa: E402
    base_parser,
    current_rss_mb,
    emit,
    machine_info,
    peak_rss_hwm_mb,
    reset_peak_rss,
    setup_torch,
    time_interleaved,
)


def build(side: str, base: int, latent: int = 16):
    import torch

    if side.startswith("tenku"):
        from tenku.config import VAEConfig
        from tenku.models.vae import CausalVAE

        cfg = VAEConfig(latent_channels=latent, base_channels=base, channel_mult=(1, 2, 4, 4), num_res_blocks=1,
                        spatial_factor=8, temporal_factor=4, patch_size=1)
        m = CausalVAE(cfg)
        with torch.no_grad():  # zero-initialised residual branches: give them weights so all convs do work
            for p in m.parameters():
                if p.ndim >= 2 and not p.any():
                    p.normal_(0.0, 0.02)
        return m.eval()
    from diffusers import AutoencoderKLWan

    return AutoencoderKLWan(base_dim=base, z_dim=latent, dim_mult=[1, 2, 4, 4], num_res_blocks=1,
                            temperal_downsample=[False, True, True]).eval()


def roundtrip_fn(side: str, model, video, channels_last: bool = False):
    """A callable doing encode (posterior mean) + decode of ``video`` without gradients."""
    import torch

    if side.startswith("tenku"):
        if channels_last:
            model = model.to(memory_format=torch.channels_last_3d)
            video = video.contiguous(memory_format=torch.channels_last_3d)

        def run():
            with torch.no_grad():
                return model.decode(model.encode(video))
    else:

        def run():
            with torch.no_grad():
                return model.decode(model.encode(video).latent_dist.mode()).sample

    return run


def memory_child(side: str, base: int, frames: int, size: int, threads: int | None, seed: int) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(seed)
    model = build(side, base)
    video = torch.rand(1, 3, frames, size, size) * 2 - 1
    held = current_rss_mb()
    ok = reset_peak_rss()
    out = roundtrip_fn(side, model, video, side == "tenku_channels_last")()
    peak = peak_rss_hwm_mb()
    return {"side": side, "output_shape": list(out.shape), "held_mb": held, "peak_mb": peak,
            "peak_above_held_mb": peak - held, "hwm_reset": ok}


def run(args) -> dict:
    import torch

    setup_torch(args)
    sides = ["tenku", "diffusers"] + (["tenku_channels_last"] if args.channels_last else [])
    models = {s: build(s, args.base) for s in sides if s != "tenku_channels_last"}
    if args.channels_last:
        models["tenku_channels_last"] = build("tenku", args.base)
        models["tenku_channels_last"].load_state_dict(models["tenku"].state_dict())
    video = torch.rand(1, 3, args.frames, args.size, args.size, generator=torch.Generator().manual_seed(args.seed))
    video = video * 2 - 1
    fns = {s: roundtrip_fn(s, models[s], video, s == "tenku_channels_last") for s in sides}
    shapes = {s: list(fns[s]().shape) for s in sides}
    res = time_interleaved(fns, args.repeats, args.warmup)
    result = {
        "benchmark": "vae_vs_diffusers",
        "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
        "machine": machine_info(),
        "config": {"base_channels": args.base, "channel_mult": [1, 2, 4, 4], "res_blocks": 1, "latent": 16,
                   "spatial_factor": 8, "temporal_factor": 4, "frames": args.frames, "size": args.size,
                   "dtype": "float32"},
        "params": {s: sum(p.numel() for p in models[s].parameters()) for s in sides},
        "output_shape": shapes,
        "roundtrip": res,
        "ms_per_frame": {s: {"wall": res[s]["wall"]["median"] * 1e3 / args.frames,
                             "cpu": res[s]["cpu"]["median"] * 1e3 / args.frames} for s in sides},
        "speedup_vs_diffusers": {s: {"wall": res["diffusers"]["wall"]["median"] / res[s]["wall"]["median"],
                                     "cpu": res["diffusers"]["cpu"]["median"] / res[s]["cpu"]["median"]}
                                 for s in sides if s != "diffusers"},
    }
    if not args.no_memory:
        mem = {}
        for s in sides:
            cmd = [sys.executable, str(Path(__file__).resolve()), "--memory-child", s, "--base", str(args.base),
                   "--frames", str(args.frames), "--size", str(args.size), "--seed", str(args.seed)]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            mem[s] = json.loads(out.stdout)
        result["memory"] = mem
    result["load_average_after"] = machine_info()["load_average"]
    return result


def main(argv: list[str] | None = None) -> dict:
    p = base_parser(__doc__)
    p.add_argument("--base", type=int, default=32, help="base channels (default: %(default)s)")
    p.add_argument("--frames", type=int, default=17, help="frames, 1 + 4k (default: %(default)s)")
    p.add_argument("--size", type=int, default=64, help="square frame size, multiple of 8 (default: %(default)s)")
    p.add_argument("--channels-last", action="store_true", help="also time tenku in channels_last_3d")
    p.add_argument("--no-memory", action="store_true", help="skip the peak-memory child processes")
    p.add_argument("--memory-child", metavar="SIDE", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child, args.base, args.frames, args.size, args.threads, args.seed)))
        return {}
    result = run(args)
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
