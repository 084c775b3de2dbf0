"""``tenku connect A B --seconds S [PROMPT]``: a transition from the end of one video to the start of another."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """\
Connect two videos: generate --seconds of transition that starts from the end of A and leads into the
start of B. The output is A + transition + B (both scaled and centre-cropped to --size).

examples:
  tenku connect a.mp4 b.mp4 --seconds 1 -o joined.mp4
  tenku connect a.mp4 b.mp4 --seconds 2 "the ball changes direction" -o joined.mp4
"""


def register(subparsers) -> None:
    from tenku.commands.generate import add_generation_options, add_output_option, prompt_anywhere

    p = subparsers.add_parser("connect", help="generate a transition between two videos", description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("a", help="the first video (the transition starts from its end)")
    p.add_argument("b", help="the second video (the transition leads into its start)")
    p.add_argument("prompt", nargs="?", default="", help="what happens in between (default: none)")
    p.add_argument("--seconds", type=float, required=True, metavar="S",
                   help="length of the transition; rounded to the model's frame step")
    add_output_option(p)
    add_generation_options(p)
    prompt_anywhere(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tenku.commands.generate import check_common, generate_to_file, load_pipeline
    from tenku.errors import MediaError
    from tenku.pipeline.modes import Connect

    width, height = check_common(args)
    for v in (args.a, args.b):
        if not Path(v).is_file():
            raise MediaError(f"video not found: {v}")
    mode = Connect(a=args.a, b=args.b, seconds=args.seconds)
    pipe = load_pipeline(args)
    return generate_to_file(args, pipe, args.prompt, mode, width=width, height=height,
                            slug=f"{Path(args.a).stem}-to-{Path(args.b).stem}")
