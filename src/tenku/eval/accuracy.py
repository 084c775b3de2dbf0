"""How well the object parser reads the world's own clips: ``python -m tenku.eval.accuracy``.

For every scenario, split and seed it renders a clip, parses it and compares, over frames where an
object is fully visible, the parsed centroid with the ground-truth position and the parsed shape class
with the true one. Prints one line per scenario and the shape confusions, plus the parse time per frame.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict

import numpy as np


def parser_accuracy(splits=("test_id", "test_comp", "test_ood"), seeds=range(4)) -> dict:
    from tenku.errors import TenkuError
    from tenku.eval.suites import default_parser
    from tenku.eval.tracking import gt_array, gt_positions, match_ground_truth
    from tenku.world.clip import render_clip
    from tenku.world.scenarios import SCENARIOS, sample_scene

    parser = default_parser()
    errors: dict[str, list[float]] = defaultdict(list)
    wrong: Counter = Counter()
    shapes = 0
    parse_s, frames_n = 0.0, 0
    for sc in SCENARIOS:
        for split in splits:
            for seed in seeds:
                try:
                    spec = sample_scene(np.random.default_rng(seed), split, sc)
                except TenkuError:
                    continue
                frames, gt, _ = render_clip(spec)
                t0 = time.perf_counter()
                dets = parser.parse_video(frames)
                parse_s += time.perf_counter() - t0
                frames_n += len(frames)
                tr = match_ground_truth(dets, gt)
                full = gt_array(gt, "visible") == "full"
                err = np.linalg.norm(tr.pos - gt_positions(gt), axis=-1)
                for t, i in zip(*np.nonzero(full)):
                    o = gt["objects"][i]
                    errors[sc].append(float(err[t, i]) if tr.found[t, i] else float("inf"))
                    shapes += 1
                    if tr.shape[t, i] != o["shape"]:
                        wrong[(o["shape"], str(tr.shape[t, i]) or "missing", o["size"])] += 1
    return {"errors": dict(errors), "shape_wrong": dict(wrong), "shapes": shapes,
            "ms_per_frame": 1000 * parse_s / max(frames_n, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--splits", default="test_id,test_comp,test_ood")
    ap.add_argument("--seeds", type=int, default=4, help="seeds 0..N-1 per scenario and split")
    a = ap.parse_args(argv)
    r = parser_accuracy(tuple(a.splits.split(",")), range(a.seeds))
    print("scenario       object-frames  mean px  median px  max px  >0.5 px")
    for sc, e in r["errors"].items():
        e = np.array(e)
        print(f"{sc:14s} {len(e):13d} {np.mean(e[np.isfinite(e)]):8.3f} {np.median(e):10.3f} {e.max():7.3f}"
              f" {int((e > 0.5).sum()):8d}")
    print(f"shape classes wrong: {sum(r['shape_wrong'].values())} of {r['shapes']} object-frames")
    for (true, got, size), n in sorted(r["shape_wrong"].items()):
        print(f"  {true} read as {got} ({size}): {n}")
    print(f"parse time: {r['ms_per_frame']:.1f} ms per frame")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
