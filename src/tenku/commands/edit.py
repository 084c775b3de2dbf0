"""``tenku edit VIDEO PROMPT --strength 0..1``: change a video toward a prompt (SDEdit)."""

from __future__ import annotations

import argparse
from pathlib import Path

DESCRIPTION = """\
Edit a video toward a prompt: its latents are noised to t = --strength and denoised with the prompt.
0 returns the video (through the VAE), small values keep layout and motion, 1 ignores the video.
The video is scaled and centre-cropped to --size and trimmed to whole latent frames (1 + 4k frames).

examples:
  tenku edit clip.mp4 "a green ball on a checkered floor" --strength 0.5 -o edited.mp4
"""


def register(subparsers) -> None:
    from tenku.commands.generate import add_generation_options, add_output_option

    p = subparsers.add_parser("edit", help="edit a video toward a prompt (SDEdit)", description=DESCRIPTION,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("video", help="the video to edit")
    p.add_argument("prompt", help="what the result should show")
    p.add_argument("--strength", type=float, default=0.6, metavar="X",
                   help="how far to move from the video, 0..1 (default: %(default)s)")
    add_output_option(p)
    add_generation_options(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tenku.commands.generate import check_common, generate_to_file, load_pipeline
    from tenku.errors import MediaError
    from tenku.pipeline.modes import Edit

    width, height = check_common(args)
    if not Path(args.video).is_file():
        raise MediaError(f"video not found: {args.video}")
    mode = Edit(video=args.video, strength=args.strength)
    pipe = load_pipeline(args)
    return generate_to_file(args, pipe, args.prompt, mode, width=width, height=height,
                            slug=f"{Path(args.video).stem}-edited")
