"""Quality vs sampling steps: `tenku eval` adherence and physics at several step counts.

    python benchmarks/quality_vs_steps.py --steps 4 8 16 32 50 --suite default
    python benchmarks/quality_vs_steps.py --steps 4 8 16 32 50 --seeds 0 1 2
    python benchmarks/quality_vs_steps.py --model PATH --suite smoke --steps 4 8

Runs tenku.eval.runner.evaluate (what `tenku eval` runs) once per step count and seed, with the same suite
and model (the sampler and shift are the model's own, from its sample.json and flow config; both are
recorded) and collects the headline numbers of each run: adherence accuracy per attribute and their mean
(in-distribution prompts, in points, 0-100; also the mean over every split and the number of right
answers), physics velocity/position error (px/s, px), its ratio to the parser floor and the fraction of
objects the parser found (when it finds none, the errors are the miss penalty: half the frame diagonal),
permanence and flicker, plus the wall and CPU time of each run. With several ``--seeds`` each step count
also gets the mean, min and max over seeds, so a difference between step counts can be set against the
spread between seeds. Each run's full report is kept under ``--out``/steps_N (steps_N_seed_S with several
seeds). Without ``--model`` it uses the shipped default model and says so if there is none (it then exits
2: quality needs a trained model).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import base_parser, emit, machine_info, setup_torch  # noqa: E402


def headline(report: dict) -> dict:
    """The numbers a steps comparison needs, from one eval report."""
    m = report.get("metrics", {})
    out: dict = {}
    ad = m.get("adherence", {}).get("in_distribution", {})
    if ad:
        out["adherence"] = {k: round(100 * v["accuracy"], 2) for k, v in ad.items()}
        out["adherence_mean"] = round(100 * sum(v["accuracy"] for v in ad.values()) / len(ad), 2)
    ph = m.get("physics", {}).get("in_distribution", {})
    for q in ("velocity", "position"):
        if q in ph:
            out[f"{q}_error"] = ph[q]["error"]
            out[f"{q}_ratio_to_floor"] = ph[q]["ratio"]
    hits = checks = 0
    for split in m.get("adherence", {}).values():
        for v in split.values():
            hits += round(v["accuracy"] * v["clips"])
            checks += v["clips"]
    if checks:
        out["adherence_all_splits_mean"] = round(100 * hits / checks, 2)
        out["adherence_right_answers"] = f"{hits}/{checks}"
    for name, key in (("in_distribution", "found_fraction"), ("out_of_distribution", "found_fraction_ood")):
        f = m.get("physics", {}).get(name, {}).get("found_fraction")
        if f is not None:
            out[key] = round(f, 4)
    if "permanence" in m:
        out["permanence"] = m["permanence"]
    q = m.get("quality", {})
    for k in ("flicker", "reconstruction_psnr"):
        if k in q:
            out[k] = q[k]
    out["clips"] = len(report.get("clips", []))
    return out


SUMMARY_KEYS = ("adherence_mean", "adherence_all_splits_mean", "velocity_error", "position_error",
                "found_fraction", "found_fraction_ood", "flicker", "seconds", "cpu_seconds")


def sampling_settings(model: Path, suite: str) -> dict:
    """The sampler and the shift the pipeline uses for the suite's clip size (from the model's own configs)."""
    from tenku.eval.suites import SUITES
    from tenku.flow import compute_shift
    from tenku.pipeline import TenkuPipeline

    pipe = TenkuPipeline.from_pretrained(model)
    cfg = SUITES[suite]
    T = int(round(cfg.seconds * cfg.fps)) + 1  # the suite's clips: 2 s at 8 fps = 17 frames
    tokens = pipe.geometry.num_tokens(pipe.geometry.latent_shape(T, cfg.height, cfg.width))
    return {"sampler": pipe.sample_config.sampler, "guidance": pipe.sample_config.guidance,
            "flow": pipe.flow_config.to_dict(), "frames": T, "size": [cfg.height, cfg.width], "tokens": tokens,
            "shift": compute_shift(tokens, pipe.flow_config)}


def summarize_seeds(rows: list[dict]) -> dict:
    """{steps: {key: {mean, min, max}}} over the seeds of each step count."""
    out: dict = {}
    for steps in sorted({r["steps"] for r in rows}):
        sel = [r for r in rows if r["steps"] == steps]
        d: dict = {"seeds": [r["seed"] for r in sel]}
        for k in SUMMARY_KEYS + ("count_adherence", "permanence_count_accuracy"):
            vals = [_get(r, k) for r in sel]
            vals = [v for v in vals if v is not None]
            if vals:
                d[k] = {"mean": sum(vals) / len(vals), "min": min(vals), "max": max(vals)}
        out[steps] = d
    return out


def _get(row: dict, key: str):
    if key == "count_adherence":
        return row.get("adherence", {}).get("count")
    if key == "permanence_count_accuracy":
        return row.get("permanence", {}).get("count_accuracy")
    return row.get(key)


def run(args) -> dict:
    from tenku.eval.runner import evaluate
    from tenku.pipeline import default_model_path

    setup_torch(args)
    model = Path(args.model) if args.model else default_model_path()
    if not model.exists():
        print(f"error: no model at {model}: the default model is not shipped yet; pass --model PATH", file=sys.stderr)
        raise SystemExit(2)
    out = Path(args.out)
    seeds = args.seeds if args.seeds is not None else [args.seed]
    rows = []
    for seed in seeds:
        for steps in args.steps:
            sub = out / (f"steps_{steps}" if len(seeds) == 1 else f"steps_{steps}_seed_{seed}")
            c0, t0 = time.process_time(), time.perf_counter()
            report = evaluate(args.suite, sub, model=model, clips=args.clips, seed=seed, steps=steps, progress=False)
            rows.append({"steps": steps, "seed": seed, "seconds": time.perf_counter() - t0,
                         "cpu_seconds": time.process_time() - c0, **headline(report)})
    result = {"benchmark": "quality_vs_steps", "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
              "machine": machine_info(), "model": str(model), "suite": args.suite, "clips": args.clips,
              "seeds": seeds, "sampling": sampling_settings(model, args.suite), "rows": rows}
    per_steps = summarize_seeds(rows)
    result["per_steps"] = per_steps
    most = max(per_steps)
    if "adherence_mean" in per_steps[most]:  # gap of each step count to the most steps, in points (seed means)
        ref = per_steps[most]["adherence_mean"]["mean"]
        result["adherence_gap_to_most_steps"] = {s: round(ref - d["adherence_mean"]["mean"], 2)
                                                 for s, d in per_steps.items() if "adherence_mean" in d}
        # the spread between seeds at one step count, for comparison with the gaps
        result["adherence_seed_range"] = {s: round(d["adherence_mean"]["max"] - d["adherence_mean"]["min"], 2)
                                          for s, d in per_steps.items() if "adherence_mean" in d}
    result["load_average_after"] = machine_info()["load_average"]
    return result


def main(argv: list[str] | None = None) -> dict:
    p = base_parser(__doc__)
    p.add_argument("--model", help="pipeline folder (default: the shipped default model)")
    p.add_argument("--suite", default="default", help="smoke, default or full (default: %(default)s)")
    p.add_argument("--steps", type=int, nargs="+", default=[4, 8, 16, 32, 50])
    p.add_argument("--clips", type=int, default=None, help="first N clips of each task only")
    p.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="run every step count once per seed (default: --seed only)")
    p.add_argument("--out", default="quality-vs-steps", help="folder for the per-step reports")
    args = p.parse_args(argv)
    args.steps = sorted(set(args.steps))
    result = run(args)
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
