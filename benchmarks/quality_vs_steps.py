"""Quality vs sampling steps: `tenku eval` adherence and physics at several step counts.

    python benchmarks/quality_vs_steps.py --steps 4 8 16 32 50 --suite default
    python benchmarks/quality_vs_steps.py --model PATH --suite smoke --steps 4 8

Runs tenku.eval.runner.evaluate (what `tenku eval` runs) once per step count with the same seed, suite
and model (the sampler and shift are the model's own, from its sample.json and flow config) and
collects the headline numbers per step count: adherence accuracy per attribute and their mean
(in-distribution prompts, in points, 0-100), physics velocity/position error (px/s, px) and its
ratio to the parser floor, permanence and flicker, plus the wall time of each run. Each run's
full report is kept under ``--out``/steps_N. Without ``--model`` it uses the shipped default model and
says so if there is none (it then exits 2: quality needs a trained model).
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
    if "permanence" in m:
        out["permanence"] = m["permanence"]
    q = m.get("quality", {})
    for k in ("flicker", "reconstruction_psnr"):
        if k in q:
            out[k] = q[k]
    out["clips"] = len(report.get("clips", []))
    return out


def run(args) -> dict:
    from tenku.eval.runner import evaluate
    from tenku.pipeline import default_model_path

    setup_torch(args)
    model = Path(args.model) if args.model else default_model_path()
    if not model.exists():
        print(f"error: no model at {model}: the default model is not shipped yet; pass --model PATH", file=sys.stderr)
        raise SystemExit(2)
    out = Path(args.out)
    rows = []
    for steps in args.steps:
        t0 = time.perf_counter()
        report = evaluate(args.suite, out / f"steps_{steps}", model=model, clips=args.clips, seed=args.seed,
                          steps=steps, progress=False)
        rows.append({"steps": steps, "seconds": time.perf_counter() - t0, **headline(report)})
    result = {"benchmark": "quality_vs_steps", "command": " ".join([Path(sys.argv[0]).name] + sys.argv[1:]),
              "machine": machine_info(), "model": str(model), "suite": args.suite, "seed": args.seed, "rows": rows}
    ref = rows[-1]
    if "adherence_mean" in ref:  # gap of each step count to the most steps, in points
        result["adherence_gap_to_most_steps"] = {r["steps"]: round(ref["adherence_mean"] - r["adherence_mean"], 2)
                                                 for r in rows if "adherence_mean" in r}
    return result


def main(argv: list[str] | None = None) -> dict:
    p = base_parser(__doc__)
    p.add_argument("--model", help="pipeline folder (default: the shipped default model)")
    p.add_argument("--suite", default="default", help="smoke, default or full (default: %(default)s)")
    p.add_argument("--steps", type=int, nargs="+", default=[4, 8, 16, 32, 50])
    p.add_argument("--clips", type=int, default=None, help="first N clips of each task only")
    p.add_argument("--out", default="quality-vs-steps", help="folder for the per-step reports")
    args = p.parse_args(argv)
    args.steps = sorted(set(args.steps))
    result = run(args)
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
