"""Peak resident memory of `tenku generate` against video length: windowed generation keeps it flat.

    python benchmarks/memory_vs_length.py                       # 4, 16 and 60 s
    python benchmarks/memory_vs_length.py --preset world-tiny   # random weights, the default model's size
    python benchmarks/memory_vs_length.py --model PATH --seconds 4 60 --steps 8 --size 256x256

Each length runs `tenku generate PROMPT --seconds S -o out.mp4` in its own child process (the real
command: windows, VAE decode in chunks, watermark, streaming H.264 encode, C2PA signing); its peak RSS
comes from ``os.wait4``. Goal: the 60 s clip within 1.2x of the 4 s clip.

Model: ``--model`` if given; else ``--preset world-tiny`` (a randomly initialised pipeline with the
default model's architecture, 64x64, 17-frame window); else the shipped default model
(src/tenku/assets/tenku-world-tiny) when it exists; else a tiny test pipeline
(tenku.testing.make_tiny_pipeline, 32x32, 9-frame window). The output says which.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import load_average, machine_info  # noqa: E402


def preset_pipeline(path: Path, preset: str) -> Path:
    """A random-weight pipeline folder of ``preset`` (64x64, 17-frame window, 8 fps)."""
    import torch

    from tenku.config import PRESETS, FlowConfig, SampleConfig
    from tenku.models.dit import DiT
    from tenku.models.text import ByteTextEncoder
    from tenku.models.vae import CausalVAE
    from tenku.pipeline import TenkuPipeline
    from tenku.testing import _randomize_zero_params

    cfg = PRESETS[preset]
    torch.manual_seed(0)
    vae, dit, text = CausalVAE(cfg["vae"]), DiT(cfg["dit"]), ByteTextEncoder(cfg["text"])
    g = torch.Generator().manual_seed(0)
    for m in (vae, dit):
        _randomize_zero_params(m, g)
    sample = SampleConfig(num_frames=17, height=64, width=64, fps=8, num_steps=16, guidance=4.0)
    return TenkuPipeline(vae, dit, text, FlowConfig(), sample).save_pretrained(path)


def choose_model(args, tmp: Path) -> tuple[Path, str]:
    from tenku.pipeline import default_model_path
    from tenku.testing import make_tiny_pipeline

    if args.model:
        return Path(args.model), f"given: {args.model}"
    if args.preset:
        return preset_pipeline(tmp / args.preset, args.preset), f"random weights, preset {args.preset}"
    if default_model_path().exists():
        return default_model_path(), "shipped default model (tenku-world-tiny)"
    return make_tiny_pipeline(tmp / "tiny"), "tiny test pipeline (tenku.testing.make_tiny_pipeline)"


def run_one(model: Path, seconds: float, steps: int, out: Path, prompt: str, size: str | None = None) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TENKU_NO_PROGRESS": "1"}
    cmd = [sys.executable, "-m", "tenku", "generate", prompt, "--seconds", str(seconds), "-o", str(out),
           "--model", str(model), "--steps", str(steps), "--seed", "0", "--no-progress"]
    if size:
        cmd += ["--size", size]
    t0 = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _, status, usage = os.wait4(p.pid, 0)
    p.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = p.stdout.read(), p.stderr.read()
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed ({p.returncode}):\n{stderr}")
    from tenku.media import probe

    info = probe(out)
    return {"seconds": seconds, "frames": info["num_frames"], "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
            "wall_s": round(wall, 2), "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
            "cli": stdout.strip().splitlines()[-1]}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seconds", type=float, nargs="+", default=[4, 16, 60])
    p.add_argument("--model", metavar="PATH")
    p.add_argument("--preset", choices=["world-tiny"], help="random weights of a preset instead of a model folder")
    p.add_argument("--steps", type=int, default=4, help="sampling steps (memory does not depend on them)")
    p.add_argument("--prompt", default="a red ball bouncing off the walls")
    p.add_argument("--size", metavar="WxH", help="frame size (default: the model's)")
    p.add_argument("--json", metavar="PATH")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        model, which = choose_model(args, tmp)
        rows = [run_one(model, s, args.steps, tmp / f"{s:g}s.mp4", args.prompt, args.size) for s in args.seconds]
    base = rows[0]["peak_rss_mib"]
    for r in rows:
        r["ratio_to_first"] = round(r["peak_rss_mib"] / base, 3)
    result = {"model": which, "steps": args.steps, "size": args.size, "rows": rows, "machine": machine_info(),
              "load_average_after": load_average()}
    print(f"model: {which}; steps {args.steps}; size {args.size or 'the model default'}")
    print("| seconds | frames | peak RSS (MiB) | vs first | wall (s) | CPU (s) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for r in rows:
        print(f"| {r['seconds']:g} | {r['frames']} | {r['peak_rss_mib']} | {r['ratio_to_first']:.3f} | {r['wall_s']} "
              f"| {r['cpu_s']} |")
    m = result["machine"]
    print(f"machine: {m['cpu']}, {m['cores']} cores, load {m['load_average']}, {m['date_utc']} UTC, "
          f"commit {m.get('commit')}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
