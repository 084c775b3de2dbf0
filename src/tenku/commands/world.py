"""``tenku world``: the synthetic physics world. Subcommands: ``make`` (write a dataset of clips in
the shard format) and ``sample`` (render one scene to a video and print its spec and captions)."""

from __future__ import annotations

import argparse
import os

SPLITS = ("train", "test_id", "test_comp", "test_ood")
# tenku.world.SCENARIOS' names, here so that `--help` does not import the world (a test keeps them equal)
SCENARIO_NAMES = ("linear", "bounce_walls", "throw", "floor_bounce", "collision", "several", "occluder", "trail",
                  "pan")


def add_make(sub) -> None:
    p = sub.add_parser(
        "make", help="write world clips (mp4 + captions + ground truth) as shards",
        description="Simulate and render world clips in parallel and write them as shards. Clip j's scene "
                    "depends only on (--seed, --split, j), so reruns, other worker counts and --shard "
                    "partitions make the same clips. Rerun the same command to resume: complete shards "
                    "are skipped. Frames per clip = round(seconds * fps) + 1 (2 s at 8 fps = 17).")
    p.add_argument("--out", required=True, metavar="DIR", help="dataset folder (created if missing)")
    p.add_argument("--clips", type=int, required=True, metavar="N", help="number of clips in the whole dataset")
    p.add_argument("--seconds", type=float, default=2.0, metavar="S", help="clip duration (default 2)")
    p.add_argument("--size", default="64x64", metavar="WxH", help="frame size (default 64x64)")
    p.add_argument("--fps", type=float, default=8.0, metavar="F", help="frames per second (default 8)")
    p.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1), metavar="K",
                   help="processes (default: CPU count)")
    p.add_argument("--split", default="train", choices=SPLITS, help="which split to draw (default train)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="dataset seed (default 0)")
    p.add_argument("--shard", default=None, metavar="i/n",
                   help="make only shards k with k %% n == i (0-based), for many machines")
    p.add_argument("--clips-per-shard", type=int, default=100, metavar="M", help="clips per shard (default 100)")
    p.add_argument("--scenario", default=None, metavar="NAME",
                   help=f"only this scenario ({', '.join(SCENARIO_NAMES)}); default: all, uniformly")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_make)


def run_make(args: argparse.Namespace) -> int:
    import json

    from tenku.geometry import parse_size
    from tenku.world.make import MakeConfig, make_dataset

    w, h = parse_size(args.size, "--size")
    cfg = MakeConfig(out=args.out, clips=args.clips, seconds=args.seconds, width=w, height=h, fps=args.fps,
                     split=args.split, seed=args.seed, clips_per_shard=args.clips_per_shard,
                     scenario=args.scenario, workers=args.workers, shard=args.shard)
    summary = make_dataset(cfg, progress=not args.no_progress)
    print(json.dumps(summary))
    return 0


def add_sample(sub) -> None:
    p = sub.add_parser(
        "sample", help="render one world scene to .mp4/.png and print its spec and captions",
        description="Draw one scene (the same one `world make` would make as clip --index) and write it.")
    p.add_argument("--out", required=True, metavar="PATH", help=".mp4 video, or .png (the first frame)")
    p.add_argument("--scenario", default=None, metavar="NAME",
                   help=f"scenario: {', '.join(SCENARIO_NAMES)} (default: drawn from the seed)")
    p.add_argument("--split", default="train", choices=SPLITS)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--index", type=int, default=0, help="clip index (default 0)")
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--size", default="64x64", metavar="WxH")
    p.add_argument("--fps", type=float, default=8.0)
    p.add_argument("--ground-truth", action="store_true", help="also print the per-frame ground truth")
    p.set_defaults(func=run_sample)


def run_sample(args: argparse.Namespace) -> int:
    import json

    from tenku.errors import TenkuError
    from tenku.media import write_png, write_video
    from tenku.geometry import parse_size
    from tenku.world.make import make_world_clip

    w, h = parse_size(args.size, "--size")
    suffix = os.path.splitext(args.out)[1].lower()
    if suffix not in (".mp4", ".png"):
        raise TenkuError(f"--out must end in .mp4 or .png, got {args.out!r}")
    clip = make_world_clip(args.seed, args.split, args.index, w, h, args.fps, args.seconds, args.scenario)
    if suffix == ".png":
        write_png(args.out, clip.frames[0])
    else:
        write_video(args.out, clip.frames, args.fps)
    out = {"out": args.out, "captions": clip.captions, "meta": clip.meta}
    if args.ground_truth:
        out["ground_truth"] = clip.ground_truth
    print(json.dumps(out, indent=2))
    return 0


SUBCOMMANDS = (add_make, add_sample)


def register(subparsers) -> None:
    p = subparsers.add_parser("world", help="the synthetic physics world: make datasets, sample scenes",
                              description=__doc__)
    sub = p.add_subparsers(dest="world_command", metavar="SUBCOMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    p.set_defaults(func=lambda args: p.print_help() or 0)
