"""Continuity at the seams of extend, backward extend, loop and connect, with and without seam matching.

    python benchmarks/seam_continuity.py                    # the shipped default model, 8 world clips
    python benchmarks/seam_continuity.py --clips 16 --json seams.json
    python benchmarks/seam_continuity.py --model PATH

For each world clip (split test_id, scenarios in turn, the model's size and fps) and each kind, the
mode runs with its long caption as prompt; the frame difference (mean absolute difference, 0-255)
across each seam is set against the 90th percentile of the other frame differences of the same output.
A seam passes when it is at most 1.5x that percentile + 1 (the check of tests/test_modes.py); a cut or a
jump is many times larger. Seams: forward extension (given -> new, and between new windows), backward
extension (new -> given), loop (last -> first frame, played on repeat), connect (a -> new, new -> b;
a and b are one scene 1 s apart, so the transition has a true answer and no cut is needed).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import base_parser, emit, load_average, machine_info, setup_torch  # noqa: E402

SCENARIOS = ("bounce_walls", "linear", "collision", "pan", "floor_bounce", "occluder")
KINDS = ("forward", "backward", "loop", "connect")


def frame_diffs(frames):
    import numpy as np

    return np.abs(np.diff(frames.astype(np.float32), axis=0)).mean(axis=(1, 2, 3))  # d[i]: frame i -> i + 1


def seam_scores(frames, seams: list[int]) -> list[dict]:
    """Each seam's frame difference, the 90th percentile of the others, and whether it passes."""
    import numpy as np

    d = frame_diffs(frames)
    p90 = float(np.percentile(np.delete(d, seams), 90))
    return [{"seam": float(d[s]), "p90": p90, "ratio": float(d[s]) / max(p90, 1e-6),
             "pass": bool(d[s] <= 1.5 * p90 + 1.0)} for s in seams]


def run_kind(pipe, kind: str, clip, other, prompt: str, seed: int, match: bool) -> list[dict]:
    """Generate ``kind`` around world clip frames ``clip`` (``other``: the second clip of connect)."""
    import numpy as np

    from tenku.pipeline.modes import Connect, Extend, Loop

    kw = dict(seed=seed, progress=False, match_seams=match, expand=False)
    n = len(clip)
    tf = pipe.vae.cfg.temporal_factor
    if kind == "loop":
        out = pipe(prompt, mode=Loop(seconds=4), **kw).frames
        return seam_scores(np.concatenate([out, out[:1]]), [len(out) - 1])
    if kind == "connect":
        out = pipe(prompt, mode=Connect(a=clip, b=other, seconds=1), **kw).frames
        return seam_scores(out, [n - 1, len(out) - len(other) - 1])
    out = pipe(prompt, mode=Extend(video=clip, seconds=4, backward=kind == "backward"), **kw).frames
    if kind == "backward":
        return seam_scores(out, [len(out) - n - 1])
    from tenku.pipeline import longvideo as lv
    from tenku.pipeline.request import default_context, window_latents

    W = window_latents(pipe)
    seams, pos = [], n - 1
    for w in lv.forward_schedule(len(out) - n, W, default_context(W), tf, head_frames=n):
        seams.append(pos)  # the first new frame of each window follows frame ``pos``
        pos += w.new_frames(tf)
    return seam_scores(out, seams)


def main(argv: list[str] | None = None) -> dict:
    p = base_parser(__doc__)
    p.add_argument("--model", metavar="PATH", help="pipeline folder (default: the shipped default model)")
    p.add_argument("--clips", type=int, default=8, help="world clips (default: %(default)s)")
    p.add_argument("--kinds", nargs="+", choices=KINDS, default=list(KINDS))
    args = p.parse_args(argv)
    setup_torch(args)
    import numpy as np

    from tenku.pipeline import TenkuPipeline, default_model_path
    from tenku.world import make_clip, sample_scene

    model = Path(args.model) if args.model else default_model_path()
    if not model.exists():
        raise SystemExit(f"error: model folder not found: {model}; pass --model PATH")
    pipe = TenkuPipeline.from_pretrained(model)
    sc = pipe.sample_config
    secs = (sc.num_frames - 1) / sc.fps

    def clips(i: int):
        """A world clip of the model's length, and the same scene's frames from 1 s after its end (for connect)."""
        c = make_clip(sample_scene(100 + i, "test_id", SCENARIOS[i % len(SCENARIOS)], width=sc.width,
                                   height=sc.height, fps=sc.fps, seconds=2 * secs + 1))
        n, gap = sc.num_frames, int(round(sc.fps))
        return c.frames[:n], c.frames[n + gap: 2 * n + gap], c.captions["long"]

    start, load0 = time.time(), load_average()
    rows: dict[str, dict[str, list[dict]]] = {k: {"matched": [], "plain": []} for k in args.kinds}
    for i in range(args.clips):
        a, b, caption = clips(i)
        for kind in args.kinds:
            for match in (True, False):
                rows[kind]["matched" if match else "plain"] += run_kind(pipe, kind, a, b, caption, args.seed + i,
                                                                         match)
    summary = {}
    for kind, sides in rows.items():
        summary[kind] = {}
        for side, scores in sides.items():
            ratios = np.array([s["ratio"] for s in scores])
            summary[kind][side] = {"seams": len(scores), "passed": int(sum(s["pass"] for s in scores)),
                                   "median_seam": float(np.median([s["seam"] for s in scores])),
                                   "median_p90": float(np.median([s["p90"] for s in scores])),
                                   "median_ratio": float(np.median(ratios)), "max_ratio": float(ratios.max())}
    result = {"benchmark": "seam_continuity", "model": str(model), "clips": args.clips, "seed": args.seed,
              "machine": machine_info(), "date_utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime(start)),
              "load_before_after": [load0, load_average()], "seconds": round(time.time() - start, 1),
              "summary": summary, "rows": rows}
    emit(result, args.json)
    print("\n| kind | seam matching | seams passing | median seam / p90 | max ratio |", file=sys.stderr)
    print("| --- | --- | --- | --- | --- |", file=sys.stderr)
    for kind, sides in summary.items():
        for side, s in sides.items():
            print(f"| {kind} | {'on' if side == 'matched' else 'off'} | {s['passed']}/{s['seams']} | "
                  f"{s['median_seam']:.2f} / {s['median_p90']:.2f} | {s['max_ratio']:.2f} |", file=sys.stderr)
    return result


if __name__ == "__main__":
    main()
