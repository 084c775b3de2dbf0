"""``tenku loop PROMPT --seconds S``: a video whose last frame flows into its first."""

from __future__ import annotations

import argparse

DESCRIPTION = """\
Generate a seamless loop: the last window is conditioned on the video's own first frames, so playing
it on repeat shows no cut.

examples:
  tenku loop "a blue ball bouncing off the walls" --seconds 4 -o loop.mp4
"""


def register(subparsers) -> None:
    from tenku.commands.generate import add_generation_options, add_output_option

    p = subparsers.add_parser("loop", help="generate a seamless looping video", description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("prompt", help="what to show")
    p.add_argument("--seconds", type=float, required=True, metavar="S",
                   help="loop length; rounded to the nearest frame count the model supports")
    add_output_option(p)
    add_generation_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tenku.commands.generate import check_common, generate_to_file, load_pipeline
    from tenku.pipeline.modes import Loop

    width, height = check_common(args)
    mode = Loop(seconds=args.seconds)
    pipe = load_pipeline(args)
    return generate_to_file(args, pipe, args.prompt, mode, width=width, height=height)
