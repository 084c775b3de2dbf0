"""``tenku edit VIDEO PROMPT --strength 0..1``: change a video toward a prompt (SDEdit)."""

from __future__ import annotations

from pathlib import Path

DESCRIPTION = """\
Edit a video toward a prompt: its latents are noised to t = --strength and denoised with the prompt.
0 returns the video (through the VAE), small values keep layout and motion, 1 ignores the video.
The video is scaled and centre-cropped to --size and trimmed to whole latent frames (1 + 4k frames).

examples:
  tenku edit clip.mp4 "a green ball on a checkered floor" --strength 0.5 -o edited.mp4
"""


def register(subparsers) -> None:
    from tenku.commands._shared import add_mode_command

    def options(p):
        p.add_argument("--strength", type=float, default=0.6, metavar="X",
                       help="how far to move from the video, 0..1 (default: %(default)s)")

    def make_mode(args):
        from tenku.pipeline.modes import Edit

        return Edit(video=args.video, strength=args.strength)

    add_mode_command(subparsers, "edit", help="edit a video toward a prompt (SDEdit)", description=DESCRIPTION,
                     media={"video": "the video to edit"}, prompt_help="what the result should show",
                     prompt_required=True, options=options, make_mode=make_mode,
                     slug=lambda args: f"{Path(args.video).stem}-edited")
