"""``tenku extend VIDEO [PROMPT] --seconds S [--backward]``: continue a video forward or backward in time."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """\
Continue a video by --seconds: after its end, or with --backward before its start. The output is the
given video (scaled and centre-cropped to --size, resampled to --fps) with the new frames attached;
the given frames are kept. Without a prompt the continuation is unconditional.

examples:
  tenku extend clip.mp4 "the red ball keeps rolling to the right" --seconds 4 -o longer.mp4
  tenku extend clip.mp4 --seconds 2 --backward -o earlier.mp4
"""


def register(subparsers) -> None:
    from tenku.commands.generate import add_generation_options, add_output_option, prompt_anywhere

    p = subparsers.add_parser("extend", help="extend a video forward or backward in time", description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", help="the video to continue (any size and fps PyAV reads)")
    p.add_argument("prompt", nargs="?", default="", help="what happens next (default: none, unconditional)")
    p.add_argument("--seconds", type=float, required=True, metavar="S",
                   help="how much to add; rounded to the model's frame step (4 frames for most models)")
    p.add_argument("--backward", action="store_true", help="add the new frames before the start instead")
    add_output_option(p)
    add_generation_options(p)
    prompt_anywhere(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tenku.commands.generate import check_common, generate_to_file, load_pipeline
    from tenku.errors import MediaError
    from tenku.pipeline.modes import Extend

    width, height = check_common(args)
    if not Path(args.video).is_file():
        raise MediaError(f"video not found: {args.video}")
    mode = Extend(video=args.video, seconds=args.seconds, backward=args.backward)
    pipe = load_pipeline(args)
    return generate_to_file(args, pipe, args.prompt, mode, width=width, height=height,
                            slug=f"{Path(args.video).stem}-extended")
