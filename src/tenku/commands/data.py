"""``tenku data``: real video in. Subcommands: ``ingest`` (videos -> shards), ``stats`` (what a shard
folder holds). Each subcommand is one ``add_*`` function (parser) plus one ``run_*`` handler; add a
new one by appending its ``add_*`` to SUBCOMMANDS. Heavy imports happen inside the handlers.
"""

from __future__ import annotations

import argparse
import os


def add_ingest(sub) -> None:
    p = sub.add_parser(
        "ingest", help="cut real videos into filtered, captioned clips in the shard format",
        description="Read videos (files, folders searched recursively, glob patterns), cut them at scene "
                    "changes, resample, resize and centre-crop to the closest-aspect bucket, drop clips "
                    "that are too short, nearly static, black/blank or duplicates, caption them (sidecar "
                    ".txt/.json next to the video, or an OpenAI-compatible vision endpoint) and write "
                    "shards + manifests. Rerun the same command to resume: complete shards are skipped.")
    p.add_argument("sources", nargs="+", metavar="SRC", help="video files, folders or glob patterns")
    p.add_argument("--out", required=True, metavar="DIR", help="shard folder to write (created if missing)")
    p.add_argument("--size", default="64x64", metavar="WxH",
                   help="base bucket size, multiples of 16; clips go to the bucket of about this area whose "
                        "aspect ratio is closest to the source (default 64x64)")
    p.add_argument("--fps", type=float, default=8.0, help="frame rate of the clips (default 8)")
    p.add_argument("--min-seconds", type=float, default=1.0, help="drop clips shorter than this (default 1)")
    p.add_argument("--max-seconds", type=float, default=4.0, help="cut longer scenes into clips of at most this (default 4)")
    p.add_argument("--clips-per-shard", type=int, default=64, metavar="M",
                   help="plan about M clips per shard (default 64)")
    p.add_argument("--workers", type=int, default=max(1, min(4, os.cpu_count() or 1)), metavar="K",
                   help="decoding processes (default: min(4, CPUs))")
    p.add_argument("--shard", default=None, metavar="i/n", help="write only shards k with k %% n == i (0-based)")
    p.add_argument("--min-motion", type=float, default=None,
                   help="drop clips whose motion score (mean |frame difference|, luma 0-255) is below this (default 0.6)")
    p.add_argument("--captioner", default=None, metavar="URL",
                   help="OpenAI-compatible API base URL (e.g. http://127.0.0.1:8000/v1) for re-captioning clips "
                        "without a sidecar; key from TENKU_CAPTIONER_API_KEY or OPENAI_API_KEY")
    p.add_argument("--captioner-model", default=None, metavar="NAME", help="vision model name for --captioner")
    p.add_argument("--captioner-rpm", type=float, default=60.0, help="requests per minute at most (default 60)")
    p.add_argument("--captioner-concurrency", type=int, default=4, help="requests in flight at most (default 4)")
    p.add_argument("--caption-cache", default=None, metavar="DIR",
                   help="cache of captioner answers (default DIR/caption_cache)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_ingest)


def run_ingest(args: argparse.Namespace) -> int:
    from dataclasses import replace
    from pathlib import Path

    from tenku.data.caption import CaptionerConfig
    from tenku.data.ingest import IngestConfig
    from tenku.data.ingest import run_ingest as ingest
    from tenku.data.scenes import parse_size
    from tenku.errors import TenkuError

    cfg = IngestConfig(size=parse_size(args.size), fps=args.fps, min_seconds=args.min_seconds,
                       max_seconds=args.max_seconds, clips_per_shard=args.clips_per_shard)
    if args.min_motion is not None:
        cfg = replace(cfg, filters=replace(cfg.filters, min_motion=args.min_motion))
    cap = None
    if args.captioner or args.captioner_model:
        if not (args.captioner and args.captioner_model):
            raise TenkuError("re-captioning needs both --captioner URL and --captioner-model NAME")
        cap = CaptionerConfig(url=args.captioner, model=args.captioner_model,
                              cache_dir=args.caption_cache or str(Path(args.out) / "caption_cache"),
                              requests_per_minute=args.captioner_rpm,
                              api_key=os.environ.get("TENKU_CAPTIONER_API_KEY") or os.environ.get("OPENAI_API_KEY"))
    ingest(args.sources, args.out, cfg, workers=args.workers, shard=args.shard, captioner_cfg=cap,
           captioner_concurrency=args.captioner_concurrency, progress=not args.no_progress)
    return 0


def add_stats(sub) -> None:
    p = sub.add_parser("stats", help="counts, durations, sizes, caption lengths and a motion histogram of a shard folder",
                       description="Write stats.json, stats.md and stats_motion.png for a shard folder "
                                   "(from `tenku data ingest` or `tenku world make`) and print the markdown.")
    p.add_argument("dir", metavar="DIR", help="shard folder")
    p.add_argument("--out", default=None, metavar="DIR", help="where to write the files (default: DIR)")
    p.add_argument("--no-plot", action="store_true", help="skip the PNG histogram (no matplotlib needed)")
    p.set_defaults(func=run_stats)


def run_stats(args: argparse.Namespace) -> int:
    from tenku.data.stats import to_markdown, write_stats

    s = write_stats(args.dir, args.out, plot=not args.no_plot)
    print(to_markdown(s), end="")
    print("wrote " + ", ".join(s["files"]))
    return 0


def add_cache_latents(sub) -> None:
    p = sub.add_parser(
        "cache-latents", help="encode a shard folder's clips with a trained VAE once, for DiT training",
        description="Encode every clip of a shard folder with a trained VAE and write the latents as "
                    "safetensors parts + JSON-lines records, so `tenku train dit --data OUT` does not re-encode "
                    "video every step. Unreadable clips are skipped and counted. Rerun to resume.")
    p.add_argument("--vae", required=True, metavar="PATH", help="VAE component folder, pipeline folder or VAE run")
    p.add_argument("--data", required=True, metavar="DIR", help="shard folder to encode")
    p.add_argument("--out", required=True, metavar="DIR", help="latent cache folder to write")
    p.add_argument("--split", default="train", help="which split of the records (default train)")
    p.add_argument("--batch-size", type=int, default=8, help="clips per encoder call (default 8)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="encode only the first N clips")
    p.add_argument("--shard", default=None, metavar="i/n",
                   help="write only parts k with k %% n == i (0-based), for several processes or machines")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run_cache_latents)


def run_cache_latents(args: argparse.Namespace) -> int:
    import json

    from tenku.train.latents import cache_latents

    summary = cache_latents(args.vae, args.data, args.out, split=args.split, batch_size=args.batch_size,
                            device=args.device, progress=not args.no_progress, limit=args.limit,
                            shard=args.shard)
    print(json.dumps(summary))
    return 0


SUBCOMMANDS = [add_ingest, add_stats, add_cache_latents]


def register(subparsers) -> None:
    p = subparsers.add_parser("data", help="real video in: ingest videos into shards, dataset statistics",
                              description="Real video in: `tenku data ingest` and `tenku data stats`.")
    sub = p.add_subparsers(dest="data_command", metavar="SUBCOMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    p.set_defaults(func=lambda args: p.print_help() or 0)
