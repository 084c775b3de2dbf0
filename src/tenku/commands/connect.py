"""``tenku connect A B --seconds S [PROMPT]``: a transition from the end of one video to the start of another."""

from __future__ import annotations

from pathlib import Path

DESCRIPTION = """\
Connect two videos: generate --seconds of transition that starts from the end of A and leads into the
start of B. The output is A + transition + B (both scaled and centre-cropped to --size).

examples:
  tenku connect a.mp4 b.mp4 --seconds 1 -o joined.mp4
  tenku connect a.mp4 b.mp4 --seconds 2 "the ball changes direction" -o joined.mp4
"""


def register(subparsers) -> None:
    from tenku.commands._shared import add_mode_command

    def options(p):
        p.add_argument("--seconds", type=float, required=True, metavar="S",
                       help="length of the transition; rounded to the model's frame step")

    def make_mode(args):
        from tenku.pipeline.modes import Connect

        return Connect(a=args.a, b=args.b, seconds=args.seconds)

    add_mode_command(subparsers, "connect", help="generate a transition between two videos", description=DESCRIPTION,
                     media={"a": "the first video (the transition starts from its end)",
                            "b": "the second video (the transition leads into its start)"},
                     prompt_help="what happens in between (default: none)", options=options, make_mode=make_mode,
                     slug=lambda args: f"{Path(args.a).stem}-to-{Path(args.b).stem}")
