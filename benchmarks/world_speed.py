"""World clip throughput: clips/s for render + encode (64x64, 17 frames, 8 fps by default).

    python benchmarks/world_speed.py --clips 400 --workers 1 2

Prints a per-stage breakdown (one process, ms per clip) and the end-to-end rate of
``tenku world make`` (simulate, render, ground truth, captions, H.264 encode, manifest) for each
worker count, plus the machine's load average, since the machine may be shared. On a loaded machine
the wall-clock rate measures the share of the CPUs the run got; ``clips_per_cpu_s`` (clips per
CPU-second, all processes and threads) is what one otherwise idle core would sustain, so
``cores * clips_per_cpu_s`` estimates the unloaded rate.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time


def stage_breakdown(n: int, width: int, height: int, fps: float, seconds: float) -> dict:
    import numpy as np

    from tenku.media import write_video
    from tenku.world.captions import make_captions
    from tenku.world.clip import ground_truth
    from tenku.world.make import clip_seed
    from tenku.world.physics import simulate
    from tenku.world.render import render
    from tenku.world.scenarios import sample_scene

    stages = ("sample", "simulate", "render", "ground_truth", "captions", "encode")
    out = {}
    for clock_name, clock in (("wall", time.perf_counter), ("cpu", time.process_time)):
        tot = dict.fromkeys(stages, 0.0)
        with tempfile.TemporaryDirectory() as d:
            for j in range(n):
                s = clip_seed(0, "train", j)
                t0 = clock()
                spec = sample_scene(np.random.default_rng(s), "train", None, width, height, fps, seconds)
                t1 = clock()
                traj = simulate(spec)
                t2 = clock()
                frames, vis, inf = render(spec, traj)
                t3 = clock()
                gt = ground_truth(spec, traj, vis, inf)
                t4 = clock()
                make_captions(spec, gt, s)
                t5 = clock()
                write_video(os.path.join(d, "c.mp4"), frames, fps, preset="veryfast")  # as world make
                t6 = clock()
                for k, (a, b) in zip(stages, ((t0, t1), (t1, t2), (t2, t3), (t3, t4), (t4, t5), (t5, t6))):
                    tot[k] += b - a
        ms = {k: round(v / n * 1000, 2) for k, v in tot.items()}
        ms["total"] = round(sum(tot.values()) / n * 1000, 2)
        out[clock_name] = ms
    return out


def end_to_end(n: int, workers: int, width: int, height: int, fps: float, seconds: float) -> dict:
    from tenku.world.make import MakeConfig, make_dataset

    out = tempfile.mkdtemp(prefix="tenku-world-bench-")
    try:
        cfg = MakeConfig(out=out, clips=n, seconds=seconds, width=width, height=height, fps=fps,
                         workers=workers, clips_per_shard=max(1, n // (4 * workers)))
        c0, t = _cpu(), time.perf_counter()
        make_dataset(cfg, progress=False)
        dt, cpu = time.perf_counter() - t, _cpu() - c0
    finally:
        shutil.rmtree(out, ignore_errors=True)
    return {"workers": workers, "clips": n, "seconds": round(dt, 2), "clips_per_s": round(n / dt, 1),
            "cpu_seconds": round(cpu, 2), "clips_per_cpu_s": round(n / cpu, 1)}


def _cpu() -> float:
    """CPU seconds used by this process, its threads and its finished child processes."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def compare_presets(presets: list[str], n: int = 20) -> dict:
    """CPU ms per clip, PSNR and file size of each x264 preset on the same world clips (crf 18)."""
    import numpy as np

    from tenku.media import read_video, write_video
    from tenku.world.make import make_world_clip

    clips = [make_world_clip(0, "train", j).frames for j in range(n)]
    res = {}
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "c.mp4")
        for preset in presets:
            cpu, psnr, size = 0.0, [], []
            for frames in clips:
                t = time.process_time()
                write_video(path, frames, 8.0, preset=preset)
                cpu += time.process_time() - t
                dec, _ = read_video(path)
                mse = float(((dec.astype(np.float64) - frames) ** 2).mean())
                psnr.append(10 * np.log10(255.0 ** 2 / max(mse, 1e-12)))
                size.append(os.path.getsize(path))
            res[preset] = {"cpu_ms_per_clip": round(cpu / n * 1000, 2), "psnr_db": round(float(np.mean(psnr)), 2),
                           "bytes_per_clip": int(np.mean(size))}
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=400)
    ap.add_argument("--breakdown-clips", type=int, default=150)
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--size", default="64x64")
    ap.add_argument("--fps", type=float, default=8.0)
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--presets", nargs="*", default=[], metavar="PRESET",
                    help="also compare these x264 presets (CPU time, PSNR, size on 20 clips), e.g. medium veryfast")
    args = ap.parse_args()
    w, h = (int(v) for v in args.size.lower().split("x"))
    load0 = os.getloadavg()
    res = {"machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs, {platform.python_version()}",
           "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
           "size": f"{w}x{h}", "fps": args.fps, "seconds": args.seconds,
           "breakdown_ms_per_clip": stage_breakdown(args.breakdown_clips, w, h, args.fps, args.seconds),
           "make": [end_to_end(args.clips, k, w, h, args.fps, args.seconds) for k in args.workers]}
    if args.presets:
        res["presets"] = compare_presets(args.presets)
    res["loadavg_1min_before_after"] = [round(load0[0], 2), round(os.getloadavg()[0], 2)]
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
