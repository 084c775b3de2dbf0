"""``tenku extend VIDEO [PROMPT] --seconds S [--backward]``: continue a video forward or backward in time."""

from __future__ import annotations

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
    from tenku.commands._shared import add_mode_command

    def options(p):
        p.add_argument("--seconds", type=float, required=True, metavar="S",
                       help="how much to add; rounded to the model's frame step (4 frames for most models)")
        p.add_argument("--backward", action="store_true", help="add the new frames before the start instead")

    def make_mode(args):
        from tenku.pipeline.modes import Extend

        return Extend(video=args.video, seconds=args.seconds, backward=args.backward)

    add_mode_command(subparsers, "extend", help="extend a video forward or backward in time", description=DESCRIPTION,
                     media={"video": "the video to continue (any size and fps PyAV reads)"},
                     prompt_help="what happens next (default: none, unconditional)", options=options,
                     make_mode=make_mode, slug=lambda args: f"{Path(args.video).stem}-extended")
