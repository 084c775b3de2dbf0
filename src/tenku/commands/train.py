"""``tenku train``: train the VAE or the DiT (one loop for one CPU process, one GPU or torchrun),
and export a DiT run to a pipeline folder.

    tenku train vae --data DIR --out RUN --preset world-tiny [--steps N --batch-size B --lr LR --set k=v]
    tenku train dit --data LATENTS_OR_CLIPS --out RUN --preset world-tiny [--vae PATH]
    tenku train export RUN --out PIPELINE_DIR [--fp16]
    torchrun --nproc_per_node 8 -m tenku train dit ...   (DDP; --set parallel=fsdp for FSDP2)
"""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    p = subparsers.add_parser("train", help="train the VAE or the DiT; export a run to a pipeline folder",
                              description="One training loop for the VAE and the DiT. Runs on one process, "
                                          "one GPU, or under torchrun (DDP; FSDP2 with --set parallel=fsdp).")
    sub = p.add_subparsers(dest="train_command", metavar="KIND")
    for kind, help_text in (("vae", "train the causal 3D VAE on video clips"),
                            ("dit", "train the DiT + byte text encoder on cached latents or clips")):
        q = sub.add_parser(kind, help=help_text)
        q.add_argument("--data", required=True, metavar="DIR",
                       help="shard folder (tenku world make / tenku data ingest)"
                            + (" or latent cache (tenku data cache-latents)" if kind == "dit" else ""))
        q.add_argument("--out", required=True, metavar="DIR", help="run folder: checkpoints, logs, samples, export")
        q.add_argument("--preset", default="world-tiny", help="named recipe (tiny, world-tiny); default world-tiny")
        q.add_argument("--steps", type=int, default=None, help="total optimizer steps")
        q.add_argument("--batch-size", type=int, default=None, help="global batch size (all processes)")
        q.add_argument("--lr", type=float, default=None, help="peak learning rate")
        q.add_argument("--grad-accum", type=int, default=None, help="gradient accumulation micro-steps")
        q.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="override a TrainConfig field (e.g. ckpt_every=50) or a model field "
                            "(e.g. dit.depth=4); repeatable")
        q.add_argument("--resume", action="store_true", help="continue from the latest checkpoint in --out")
        q.add_argument("--init", default=None, metavar="PATH",
                       help="start from the (EMA) weights of a run folder's latest checkpoint or a checkpoint "
                            "file (for a DiT run also a pipeline folder, e.g. the default model: fine-tuning), "
                            "with a fresh optimizer and schedule")
        q.add_argument("--stop-at", type=int, default=None, metavar="STEP",
                       help="stop after this step (checkpointed) as if interrupted; continue with --resume")
        q.add_argument("--time-limit", type=float, default=None, metavar="SECONDS",
                       help="end the training steps within this many seconds: the pace of the first steps "
                            "sets the number of steps (at most --steps), so the learning-rate schedule "
                            "still decays fully; the final export comes on top")
        q.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
        q.add_argument("--no-progress", action="store_true", help="no progress bar")
        if kind == "dit":
            q.add_argument("--vae", default=None, metavar="PATH",
                           help="trained VAE (component folder, pipeline folder or VAE run folder); "
                                "default: the one the latent cache was made with")
        q.set_defaults(func=run_train, kind=kind)
    e = sub.add_parser("export", help="write a pipeline folder from a DiT run's latest checkpoint (EMA weights); "
                                      "of a VAE run, its VAE component folder")
    e.add_argument("run", metavar="RUN", help="DiT run folder (holds checkpoints/)")
    e.add_argument("--out", required=True, metavar="DIR", help="pipeline folder to write")
    e.add_argument("--vae", default=None, metavar="PATH", help="VAE to bundle (default: the run's)")
    e.add_argument("--fp16", action="store_true", help="store weights as float16 (half the size)")
    e.set_defaults(func=run_export)
    p.set_defaults(func=lambda args: (p.print_help(), 0)[1])


def run_train(args: argparse.Namespace) -> int:
    import json

    from tenku.train.loop import train
    from tenku.train.presets import resolve_config

    cfg = resolve_config(args.kind, args.preset,
                         overrides={"steps": args.steps, "batch_size": args.batch_size, "lr": args.lr,
                                    "grad_accum": args.grad_accum}, sets=args.set)
    summary = train(args.kind, cfg, args.data, args.out, resume=args.resume, vae_path=getattr(args, "vae", None),
                    stop_at=args.stop_at, device=args.device, progress=not args.no_progress, init=args.init,
                    time_limit=args.time_limit)
    if summary.get("checkpoint") is not None:
        print(json.dumps(summary, default=str))
    return 0


def run_export(args: argparse.Namespace) -> int:
    import json

    from tenku.train.tasks import export_run

    print(json.dumps(export_run(args.run, args.out, vae_path=args.vae, fp16=args.fp16), default=str))
    return 0
