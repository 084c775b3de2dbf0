"""``tenku loop PROMPT --seconds S``: a video whose last frame flows into its first."""

from __future__ import annotations

DESCRIPTION = """\
Generate a seamless loop: the last window is conditioned on the video's own first frames, so playing
it on repeat shows no cut.

examples:
  tenku loop "a blue ball bouncing off the walls" --seconds 4 -o loop.mp4
"""


def register(subparsers) -> None:
    from tenku.commands._shared import add_mode_command

    def options(p):
        p.add_argument("--seconds", type=float, required=True, metavar="S",
                       help="loop length; rounded to the nearest frame count the model supports")

    def make_mode(args):
        from tenku.pipeline.modes import Loop

        return Loop(seconds=args.seconds)

    add_mode_command(subparsers, "loop", help="generate a seamless looping video", description=DESCRIPTION,
                     media={}, prompt_help="what to show", prompt_required=True, options=options,
                     make_mode=make_mode)
