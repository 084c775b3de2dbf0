"""``tenku generate PROMPT``: text-to-video (or text-to-image with a .png output) from a pipeline folder."""

from __future__ import annotations

import argparse
import re
import time
import unicodedata
from pathlib import Path

DESCRIPTION = """\
Generate a video (or, with a .png output or --frames 1, an image) from a text prompt.
Options left unset take the defaults stored in the model folder (its sample.json).

examples:
  tenku generate "a red ball rolls to the right" -o ball.mp4
  tenku generate "a blue square falls" --seconds 2 --size 64x64 --seed 7
  tenku generate "a green triangle" -o still.png
"""


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "generate", help="generate a video or image from a text prompt", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("prompt", help="what to show, e.g. \"a red ball rolls to the right\"")
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file, .mp4 (video) or .png (first frame as an image); "
                        "default: {timestamp}_seed{seed}_{prompt-slug}.mp4 in the current folder")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--seconds", type=float, metavar="S",
                        help="duration; rounded to the nearest frame count the model supports (1 + 4k)")
    length.add_argument("--frames", type=int, metavar="N", help="exact number of frames (1 + 4k for most models)")
    p.add_argument("--size", metavar="WxH", help="frame size, e.g. 64x64 (default: the model's)")
    p.add_argument("--fps", type=float, metavar="F", help="frames per second (default: the model's)")
    p.add_argument("--steps", type=int, metavar="N", help="sampling steps (default: the model's)")
    p.add_argument("--guidance", type=float, metavar="G",
                   help="classifier-free guidance strength, 1 = none (default: the model's)")
    p.add_argument("--seed", type=int, metavar="S", help="random seed; same seed, same video (default: random)")
    p.add_argument("--sampler", metavar="NAME", help="euler or heun (default: the model's)")
    p.add_argument("--negative-prompt", metavar="TEXT", default=None,
                   help="what to steer away from (default: the empty prompt)")
    p.add_argument("--model", metavar="PATH",
                   help="pipeline folder (default: the small model shipped with tenku, tenku-world-tiny)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: %(default)s)")
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    p.set_defaults(func=run)


def parse_size(text: str) -> tuple[int, int]:
    """'64x48' -> (width 64, height 48)."""
    from tenku.errors import UnsupportedSizeError

    m = re.fullmatch(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*", text)
    if not m:
        raise UnsupportedSizeError(f"--size must look like WIDTHxHEIGHT, e.g. 64x64; got {text!r}")
    return int(m.group(1)), int(m.group(2))


def slugify(prompt: str, max_len: int = 40) -> str:
    text = unicodedata.normalize("NFKD", prompt).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:max_len].rstrip("-")
    return slug or "video"


def default_output_name(prompt: str, seed: int, suffix: str = ".mp4") -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}_seed{seed}_{slugify(prompt)}{suffix}"


def run(args: argparse.Namespace) -> int:
    from tenku.errors import ModelFolderError, TenkuError, UnsupportedSizeError
    from tenku.pipeline import default_model_path
    from tenku.pipeline.output import check_output_path

    if args.output is not None:
        check_output_path(args.output)  # before any model work: a wrong suffix leaves nothing behind
    width = height = None
    if args.size is not None:
        width, height = parse_size(args.size)
    if args.seconds is not None and not args.seconds > 0:
        raise UnsupportedSizeError(f"--seconds must be positive, got {args.seconds}")
    if args.fps is not None and not args.fps > 0:
        raise UnsupportedSizeError(f"--fps must be positive, got {args.fps}")
    model = Path(args.model) if args.model else default_model_path()
    if not model.exists():
        if args.model:
            raise ModelFolderError(f"model folder not found: {model}")
        raise ModelFolderError(f"the default model is not installed at {model}; pass a pipeline folder with "
                               "--model PATH (e.g. one written by `tenku train` or tenku.testing.make_tiny_pipeline)")

    import torch

    from tenku.pipeline import TenkuPipeline, save_output

    pipe = TenkuPipeline.from_pretrained(model, device=args.device)
    fps = args.fps if args.fps is not None else pipe.sample_config.fps
    num_frames = args.frames
    if args.seconds is not None:
        num_frames = pipe.nearest_num_frames(args.seconds * fps)
    if args.output is not None and Path(args.output).suffix.lower() == ".png" and num_frames is None:
        num_frames = 1  # text-to-image: generate a single frame
    r = pipe.resolve(num_frames=num_frames, height=height, width=width, fps=fps, num_steps=args.steps,
                     guidance=args.guidance, sampler=args.sampler)
    _, seed = TenkuPipeline.make_generator(args.seed, None)
    out = Path(args.output) if args.output else Path(default_output_name(args.prompt, seed))
    try:
        result = pipe(args.prompt, negative_prompt=args.negative_prompt, seed=seed, progress=not args.no_progress,
                      **r)
    except torch.cuda.OutOfMemoryError:
        raise TenkuError("out of GPU memory; try a smaller --size, fewer --frames or --device cpu") from None
    path = save_output(result, out)
    m = result.metadata
    kind = "image" if path.suffix.lower() == ".png" else f"{m['num_frames']} frames, {m['fps']:g} fps"
    print(f"wrote {path} ({kind}, {m['width']}x{m['height']}, seed {seed}, {m['seconds_taken']:.1f} s)")
    return 0
