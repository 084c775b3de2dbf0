"""``tenku serve``: an OpenAI-compatible video API (/v1/videos), a job queue and a web page."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    from tenku.serve.settings import ServeConfig

    D = ServeConfig()  # the defaults are the settings' own
    p = subparsers.add_parser(
        "serve",
        help="serve the model over an OpenAI-compatible /v1/videos API with a web page at /",
        description="Serve tenku over HTTP: the OpenAI Videos API (the openai SDK's client.videos works against "
        "it), a job queue in SQLite or PostgreSQL, worker processes, and a web page at /.",
    )
    p.add_argument("--host", default=D.host, help="address to listen on (default %(default)s)")
    p.add_argument("--port", type=int, default=D.port, help="port (default %(default)s)")
    p.add_argument("--db", default=D.db_url, metavar="URL",
                   help="job database URL (default sqlite:///DATA_DIR/jobs.sqlite3; postgresql+psycopg://... "
                   "to share one queue between machines)")
    p.add_argument("--workers", type=int, default=D.workers,
                   help="worker processes, each loading the model once (default %(default)s)")
    p.add_argument("--model", default=D.model, metavar="PATH",
                   help="pipeline folder, tenku's or a diffusers one (Wan, LTX-Video, CogVideoX, HunyuanVideo) "
                   "(default: the bundled model, tenku-world-tiny)")
    p.add_argument("--api-key", action="append", default=[], metavar="KEY",
                   help="require 'Authorization: Bearer KEY' (repeatable; also TENKU_API_KEYS=k1,k2)")
    p.add_argument("--data-dir", default=D.data_dir, metavar="DIR",
                   help="folder for videos, uploads and the default database (default ./%(default)s)")
    p.add_argument("--max-queue", type=int, default=D.max_queue,
                   help="queued + running jobs before 429 (default %(default)s)")
    p.add_argument("--expire-after", type=float, default=D.expire_after, metavar="S",
                   help="seconds finished files are kept (default %(default)g)")
    p.add_argument("--lease-seconds", type=float, default=D.lease_seconds, metavar="S",
                   help="a worker silent for this long loses its job to another (default %(default)g)")
    p.add_argument("--max-attempts", type=int, default=D.max_attempts,
                   help="tries per job before it fails (default %(default)s)")
    p.add_argument("--rate-limit", type=int, default=D.rate_limit, metavar="N",
                   help="create/delete requests per minute per API key, 0 for none (default %(default)s)")
    p.add_argument("--max-prompt-chars", type=int, default=D.max_prompt_chars,
                   help="longest prompt accepted (default %(default)s)")
    p.add_argument("--max-upload-mb", type=float, default=D.max_upload_bytes / 2**20,
                   help="largest upload in MiB (default %(default)g)")
    p.add_argument("--threads", type=int, default=D.threads,
                   help="torch threads per worker (default: CPU cores divided by --workers)")
    p.add_argument("--steps", type=int, default=D.num_steps, help="sampler steps per video (default: the model's)")
    p.add_argument("--sizes", default="", metavar="WxH,...",
                   help="sizes accepted, the first is the default (default: OpenAI's 720x1280,1280x720,1024x1792,"
                   "1792x1024, then the model's own); sizes the model does not make natively are generated at its "
                   "scale with the same aspect and scaled")
    p.add_argument("--seconds", default="", metavar="S,...",
                   help="durations listed by /v1/models and the page (default 4,8,12); any up to --max-seconds works")
    p.add_argument("--fps", type=float, default=D.fps, help="frames per second of served videos (default: the model's)")
    p.add_argument("--max-seconds", type=float, default=D.max_seconds,
                   help="longest video accepted in seconds (default %(default)g)")
    p.add_argument("--model-alias", action="append", default=[], metavar="ALIAS=MODEL",
                   help="another model id accepted for the served model (repeatable; sora-2, sora-2-pro and their "
                   "dated ids are accepted already)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a Host name to serve besides localhost/127.0.0.1/::1 (repeatable; '*' for any)")
    p.add_argument("--allowed-origin", action="append", default=[], metavar="URL",
                   help="a web origin (https://app.example) allowed to POST/DELETE (repeatable)")
    p.add_argument("--trusted-proxy", action="append", default=[], metavar="ADDR",
                   help="an address or network of a reverse proxy whose X-Forwarded-For is believed (repeatable)")
    p.add_argument("--body-timeout", type=float, default=D.body_timeout, metavar="S",
                   help="seconds a request body may take to arrive (default %(default)g)")
    p.add_argument("--max-concurrent-uploads", type=int, default=D.max_concurrent_uploads, metavar="N",
                   help="request bodies over 1 MiB read at once; more get 429 (default %(default)s)")
    p.add_argument("--auth-fail-limit", type=int, default=D.auth_fail_limit, metavar="N",
                   help="wrong API keys per client address per minute before 429, 0 for none (default %(default)s)")
    p.add_argument("--poll-after-ms", type=int, default=D.poll_after_ms,
                   help="poll interval hinted to SDK clients (default %(default)s)")
    from tenku.commands._shared import add_memory_options

    add_memory_options(p)
    p.set_defaults(func=handler)


def handler(args: argparse.Namespace) -> int:
    from tenku.commands._shared import options_from_args
    from tenku.serve.server import run
    from tenku.serve.settings import ServeConfig, keys_from_env

    upload = int(args.max_upload_mb * 1024 * 1024)
    cfg = ServeConfig(
        host=args.host, port=args.port, db_url=args.db, data_dir=args.data_dir, workers=args.workers,
        model=args.model, api_keys=keys_from_env(args.api_key), max_queue=args.max_queue,
        expire_after=args.expire_after, lease_seconds=args.lease_seconds, max_attempts=args.max_attempts,
        rate_limit=args.rate_limit, max_prompt_chars=args.max_prompt_chars, max_upload_bytes=upload,
        max_body_bytes=upload + 1024 * 1024, poll_after_ms=args.poll_after_ms, num_steps=args.steps, threads=args.threads,
        sizes=tuple(s.strip() for s in args.sizes.split(",") if s.strip()),
        seconds=tuple(s.strip() for s in args.seconds.split(",") if s.strip()),
        max_seconds=args.max_seconds, fps=args.fps,
        model_aliases=tuple(args.model_alias), allowed_hosts=tuple(args.allowed_host),
        allowed_origins=tuple(args.allowed_origin), trusted_proxies=tuple(args.trusted_proxy),
        body_timeout=args.body_timeout, max_concurrent_uploads=args.max_concurrent_uploads,
        auth_fail_limit=args.auth_fail_limit, model_options_set=options_from_args(args).changed(),
    )
    return run(cfg)
