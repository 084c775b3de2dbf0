"""``tenku eval``: the yardstick. Scores a model (or the world's own clips) on a versioned suite."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Evaluate a model against the physics world's ground truth: prompt adherence (colour, shape, count,
direction, speed), physics by extension (position/velocity error over the parser's floor,
acceleration for throws, momentum/energy for collisions), object permanence and video quality.
Writes report.json, report.md, contact_sheet.png and trajectories.png into --out, and for a model the
conditioning-sensitivity check (sensitivity.json; --no-sensitivity skips it).

suites: smoke (5 clips, for tests), default (44 clips), full (5x default)

examples:
  tenku eval --out eval-default                      # the shipped default model, default suite
  tenku eval --model runs/dit/export --suite full --out eval-full --seed 1
  tenku eval --ground-truth --suite default --out eval-ceiling
"""


def register(subparsers) -> None:
    from tenku.commands._shared import add_threads_option

    p = subparsers.add_parser("eval", help="score a model against the physics world (the yardstick)",
                              description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group()
    src.add_argument("--model", metavar="PATH",
                     help="pipeline folder (default: the model shipped with tenku, tenku-world-tiny)")
    src.add_argument("--ground-truth", action="store_true",
                     help="score the world's own clips instead of a model (the ceiling: every metric at its best)")
    p.add_argument("--suite", default="default", metavar="NAME", help="smoke, default or full (default: %(default)s)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the report files")
    p.add_argument("--clips", type=int, metavar="N", help="keep only the first N clips of each task")
    p.add_argument("--seed", type=int, default=0, metavar="S",
                   help="generation seed (clip i uses S + i); same seed, same report (default: %(default)s)")
    p.add_argument("--steps", type=int, metavar="N", help="sampling steps (default: the model's)")
    p.add_argument("--no-sensitivity", action="store_true",
                   help="skip the conditioning-sensitivity check (same seed, one prompt word changed: does the "
                        "background's brightness and the object's colour follow it?)")
    add_threads_option(p)
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    p.set_defaults(func=run)


def run(args) -> int:
    import time

    from tenku.errors import TenkuError
    from tenku.eval.runner import evaluate
    from tenku.eval.suites import SUITES

    for mod in ("scipy", "matplotlib"):
        try:
            __import__(mod)
        except ImportError:
            raise TenkuError(f"tenku eval needs {mod}; install the eval extra: pip install 'tenku[eval]'") from None
    if args.suite not in SUITES:
        raise TenkuError(f"unknown suite {args.suite!r}; choose one of {', '.join(sorted(SUITES))}")
    if args.steps is not None and args.steps < 1:
        raise TenkuError(f"--steps must be at least 1, got {args.steps}")
    from pathlib import Path

    model = None
    if not args.ground_truth:
        from tenku.pipeline import model_path

        model = model_path(args.model)
        if not model.exists():
            hint = "pass --model PATH" if not args.model else "check the path"
            raise TenkuError(f"model folder not found: {model}; {hint} (or use --ground-truth)")
    from tenku.commands._shared import apply_threads

    apply_threads(args)
    start = time.perf_counter()
    report = evaluate(args.suite, args.out, model=model, ground_truth=args.ground_truth, clips=args.clips,
                      seed=args.seed, steps=args.steps, progress=not args.no_progress)
    took = time.perf_counter() - start
    print(f"wrote {args.out}/report.json, report.md, contact_sheet.png, trajectories.png "
          f"({len(report['clips'])} clips, {took:.1f} s)")
    if model is not None and not args.no_sensitivity:
        import json

        from tenku.eval.sensitivity import pipeline_sensitivity

        sens = pipeline_sensitivity(model, seeds=(args.seed, args.seed + 1), num_steps=args.steps)
        report["sensitivity"] = sens
        out = Path(args.out)
        from tenku.media import atomic_path

        for name, obj in (("sensitivity.json", sens), ("report.json", report)):
            with atomic_path(out / name) as tmp:
                tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n")
        gaps = ", ".join(f"{r['gap']:.0f}" for r in sens["background"]["seeds"])
        print(f"conditioning sensitivity: {'passed' if sens['passed'] else 'FAILED'} (background word: brightness gap "
              f"{gaps} of >{sens['background']['min_gap']:g} needed, {'passed' if sens['background']['passed'] else 'failed'}; "
              f"colour word: {'passed' if sens['color']['passed'] else 'failed'}; {out / 'sensitivity.json'})")
    m = report["metrics"]
    ad = m.get("adherence", {}).get("in_distribution", {})
    if ad:
        print("adherence (in distribution): " + ", ".join(f"{k} {v['accuracy']:.2f}" for k, v in ad.items()))
    ph = m.get("physics", {}).get("in_distribution", {})
    if "velocity" in ph:
        print(f"velocity error (in distribution): {ph['velocity']['error']:.2f} px/s "
              f"({ph['velocity']['ratio']:.1f}x the parser floor)")
    return 0
