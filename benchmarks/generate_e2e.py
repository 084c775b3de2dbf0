"""End-to-end generation time by stage: what `tenku generate` spends on a clip, and peak memory.

    python benchmarks/generate_e2e.py --seconds 4 --repeats 3
    python benchmarks/generate_e2e.py --model PATH --seconds 8 --no-sign --text-cache-ablation

Stages, as `tenku generate` runs them (tenku.pipeline.TenkuPipeline and the marked writer, tenku.safety.writer):
``load`` (pipeline folder), ``text`` (text encoder, once per generation), ``denoise`` (all sampler
steps, CFG batched), ``decode`` (VAE, streamed in time chunks), ``mark`` (output-frame check and
invisible watermark), ``encode`` (H.264 .mp4), ``sign`` (C2PA manifest). ``cli`` is the wall time of
the whole `tenku generate` command in a child process (Python start-up and imports included).

Model: ``--model`` if given, else the shipped default (src/tenku/assets/tenku-world-tiny) when it
exists, else a randomly initialised pipeline of the same size (the "world-tiny" preset: the default
model's architecture), written to a temporary folder; the output says which. The run also reports
this process's peak resident memory.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import base_parser, emit, machine_info, peak_rss_mb, setup_torch, summary  # noqa: E402

STAGES = ("text", "denoise", "decode", "mark", "encode", "sign")


def make_preset_pipeline(path: Path, preset: str, seed: int = 0) -> Path:
    """A random-weight pipeline folder with the architecture of ``preset`` (zero-initialised output layers
    get random values, so the work and the frames are those of a trained model of that size)."""
    import torch

    from tenku.config import PRESETS, FlowConfig, SampleConfig
    from tenku.models.dit import DiT
    from tenku.models.text import ByteTextEncoder
    from tenku.models.vae import CausalVAE
    from tenku.pipeline.pipeline import TenkuPipeline
    from tenku.testing import _randomize_zero_params

    p = PRESETS[preset]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        vae, dit, text = CausalVAE(p["vae"]), DiT(p["dit"]), ByteTextEncoder(p["text"])
    g = torch.Generator().manual_seed(seed)
    for m in (vae, dit):
        _randomize_zero_params(m, g)
    pipe = TenkuPipeline(vae, dit, text, FlowConfig(), SampleConfig())
    return pipe.save_pretrained(path)


def resolve_model(model: str | None, tmp: Path, preset: str) -> tuple[Path, str]:
    from tenku.pipeline import default_model_path

    if model:
        return Path(model), f"given: {model}"
    default = default_model_path()
    if default.exists():
        return default, "shipped default model (tenku-world-tiny)"
    path = make_preset_pipeline(tmp / f"random-{preset}", preset)
    return path, (f"default model not shipped yet: random-weight pipeline of the {preset!r} preset "
                  "(same architecture and size)")


class _Stopwatch:
    """Wall and CPU (this process, all threads) seconds per named stage."""

    def __init__(self):
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}
        self._t = (time.perf_counter(), time.process_time())

    def lap(self, name: str) -> None:
        now = (time.perf_counter(), time.process_time())
        self.wall[name] = self.wall.get(name, 0.0) + now[0] - self._t[0]
        self.cpu[name] = self.cpu.get(name, 0.0) + now[1] - self._t[1]
        self._t = now

    def skip(self) -> None:
        self._t = (time.perf_counter(), time.process_time())


def one_generation(pipe, prompt: str, request, out: Path, sign: bool) -> tuple[dict, dict]:
    """Run every stage once, through the pipeline's public steps; returns (wall seconds, CPU seconds) per stage."""
    import torch

    from tenku import media
    from tenku.safety import watermark, writer

    s = request.sample
    gen = torch.Generator().manual_seed(request.seed)
    noise = torch.randn((1, *pipe.geometry.latent_shape(s.num_frames, s.height, s.width)), generator=gen)
    sw = _Stopwatch()
    cond, uncond = pipe.encode_prompt(prompt, None, float(s.guidance))
    sw.lap("text")
    z = pipe.denoise(cond, uncond, noise, s, progress=False)
    sw.lap("denoise")
    frames = pipe.decode(z)
    sw.lap("decode")
    meta = pipe.metadata(request)
    if sign:
        sw.skip()
        payload, mark = writer.watermark_for(meta)
        pipe.safety.check_frames(frames)
        frames = watermark.embed(frames, payload)
        sw.lap("mark")
        unsigned = out.with_name(f".{out.stem}.unsigned{out.suffix}")
        media.write_video(unsigned, frames, fps=s.fps)
        sw.lap("encode")
        writer.sign(unsigned, out, meta, mark)
        sw.lap("sign")
        unsigned.unlink(missing_ok=True)
    else:
        sw.skip()
        media.write_video(out, frames, fps=s.fps)
        sw.lap("encode")
        sw.wall.update(mark=0.0, sign=0.0)
        sw.cpu.update(mark=0.0, sign=0.0)
    for d in (sw.wall, sw.cpu):
        d["total"] = sum(d[s] for s in STAGES)
    return sw.wall, sw.cpu


def _request(pipe, seconds: float, args, seed: int):
    """The request `tenku generate --seconds S` makes (prompt as given, no expansion)."""
    return pipe.request(args.prompt, seconds=seconds, fps=args.fps, num_steps=args.steps, guidance=args.guidance,
                        seed=seed, expand=False)


def stage_run(model: Path, seconds: float, args) -> dict:
    import torch

    from tenku.pipeline import TenkuPipeline

    t0 = time.perf_counter()
    pipe = TenkuPipeline.from_pretrained(model)
    load = time.perf_counter() - t0
    sign = not args.no_sign
    runs, cpu_runs = [], []
    with tempfile.TemporaryDirectory() as d:
        with torch.no_grad():
            for i in range(args.warmup + args.repeats):
                request = _request(pipe, seconds, args, args.seed + i)
                wall, cpu = one_generation(pipe, args.prompt, request, Path(d) / f"clip{i}.mp4", sign)
                if i >= args.warmup:
                    runs.append(wall)
                    cpu_runs.append(cpu)
    r = request.sample
    stages = {s: summary([run[s] for run in runs]) for s in (*STAGES, "total")}
    cpu_stages = {s: summary([run[s] for run in cpu_runs]) for s in (*STAGES, "total")}
    return {"seconds": seconds, "num_frames": r.num_frames, "fps": r.fps, "size": [r.width, r.height],
            "steps": r.num_steps, "guidance": r.guidance, "sampler": r.sampler,
            "tokens": pipe.geometry.num_tokens(pipe.geometry.latent_shape(r.num_frames, r.height, r.width)),
            "load_s": load, "signed": sign, "stages": stages, "cpu_stages": cpu_stages,
            "realtime_factor": (r.num_frames / r.fps) / stages["total"]["median"],
            "realtime_factor_cpu": (r.num_frames / r.fps) / cpu_stages["total"]["median"],
            "peak_rss_mb": peak_rss_mb()}


def text_cache_ablation(model: Path, seconds: float, args) -> dict:
    """Denoising time with the DiT's text context computed once per generation (the default) vs every
    step (``pipe.cache_text = False``), interleaved in this process; also checks both give equal latents."""
    import torch

    from common import time_interleaved
    from tenku.pipeline import TenkuPipeline

    pipe = TenkuPipeline.from_pretrained(model)
    r = _request(pipe, seconds, args, args.seed).sample
    shape = (1, *pipe.geometry.latent_shape(r.num_frames, r.height, r.width))
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(args.seed))
    cond, uncond = pipe.encode_prompt(args.prompt, None, float(r.guidance))
    outs = {}

    def denoise(flag: bool):
        def run():
            pipe.cache_text = flag
            outs[flag] = pipe.denoise(cond, uncond, noise, r, progress=False)
        return run

    with torch.no_grad():
        res = time_interleaved({"cached": denoise(True), "per_step": denoise(False)}, args.repeats, args.warmup)
    return {"text_tokens": int(cond[1].sum()), "steps": r.num_steps, "denoise": res,
            "speedup": {k: res["per_step"][k]["median"] / res["cached"][k]["median"] for k in ("wall", "cpu")},
            "max_abs_diff": float((outs[True] - outs[False]).abs().max())}


def cli_run(model: Path, seconds: float, args) -> dict:
    """Wall time of the whole `tenku generate` command (fresh process)."""
    with tempfile.TemporaryDirectory() as d:
        cmd = [sys.executable, "-m", "tenku", "generate", args.prompt, "-o", str(Path(d) / "cli.mp4"),
               "--model", str(model), "--seconds", str(seconds), "--seed", str(args.seed), "--no-progress"]
        if args.steps:
            cmd += ["--steps", str(args.steps)]
        if args.threads:
            env = {**os.environ, "OMP_NUM_THREADS": str(args.threads)}
        else:
            env = dict(os.environ)
        t0 = time.perf_counter()
        p = subprocess.run(cmd, capture_output=True, text=True, env=env)
        wall = time.perf_counter() - t0
    return {"command": " ".join(cmd[2:]), "wall_s": wall, "rc": p.returncode, "stdout": p.stdout.strip()[-300:],
            "stderr": p.stderr.strip()[-300:]}


def run(args) -> dict:
    setup_torch(args)
    with tempfile.TemporaryDirectory() as tmp:
        model, which = resolve_model(args.model, Path(tmp), args.preset)
        result = {"benchmark": "generate_e2e", "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
                  "machine": machine_info(), "model": which, "prompt": args.prompt}
        if args.text_cache_ablation:
            result["text_cache_ablation"] = text_cache_ablation(model, args.seconds, args)
        else:
            result["run"] = stage_run(model, args.seconds, args)
            if not args.no_cli:
                result["cli"] = cli_run(model, args.seconds, args)
        result["load_average_after"] = machine_info()["load_average"]
    return result


def main(argv: list[str] | None = None) -> dict:
    p = base_parser(__doc__)
    p.set_defaults(repeats=3)
    p.add_argument("--model", help="pipeline folder (default: the shipped model, else a random world-tiny one)")
    p.add_argument("--preset", default="world-tiny", help="architecture of the random stand-in (default: %(default)s)")
    p.add_argument("--seconds", type=float, default=4.0, help="clip length (default: %(default)s)")
    p.add_argument("--fps", type=float, default=None)
    p.add_argument("--steps", type=int, default=None, help="sampling steps (default: the model's)")
    p.add_argument("--guidance", type=float, default=None)
    p.add_argument("--prompt", default="a red ball rolls to the right")
    p.add_argument("--no-sign", action="store_true", help="skip the watermark and C2PA steps")
    p.add_argument("--text-cache-ablation", action="store_true",
                   help="instead: time denoising with the text context cached vs recomputed every step")
    p.add_argument("--no-cli", action="store_true", help="skip the `tenku generate` child-process timing")
    args = p.parse_args(argv)
    result = run(args)
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
