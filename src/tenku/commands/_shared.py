"""What the generating commands share: their options, the checks made before a model loads, the pipeline they
load, writing a generation to its file, and the template of the mode commands (extend, loop, connect, edit).
The name starts with ``_``, so the command discovery of :mod:`tenku.cli` passes over it."""

from __future__ import annotations

import argparse
import re
import time
import unicodedata
from pathlib import Path


def add_output_option(p) -> None:
    p.add_argument("-o", "--output", metavar="OUT",
                   help="output file, .mp4 (video) or .png (first frame as an image); "
                        "default: {timestamp}_seed{seed}_{prompt-slug}.mp4 in the current folder")


def prompt_anywhere(p) -> None:
    """Let an optional positional PROMPT follow the options (``tenku connect A B --seconds 1 "text"``):
    this parser reads its arguments intermixed (argparse's parse_known_intermixed_args)."""
    plain = p.parse_known_args
    busy: list[bool] = []

    def parse_known_args(args=None, namespace=None):
        if busy:
            return plain(args, namespace)
        busy.append(True)
        try:
            return p.parse_known_intermixed_args(args, namespace)
        finally:
            busy.pop()

    p.parse_known_args = parse_known_args


def add_generation_options(p) -> None:
    """Options every generating command shares (sizes, sampling, guidance, prompt expansion, model)."""
    p.add_argument("--size", metavar="WxH", help="frame size, e.g. 64x64 (default: the model's, or the input's "
                                                 "when the model can make it)")
    p.add_argument("--fps", type=float, metavar="F", help="frames per second (default: the model's)")
    p.add_argument("--steps", type=int, metavar="N", help="sampling steps (default: the model's)")
    p.add_argument("--guidance", type=float, metavar="G",
                   help="classifier-free guidance strength, 1 = none (default: the model's)")
    p.add_argument("--seed", type=int, metavar="S", help="random seed; same seed, same video (default: random)")
    p.add_argument("--sampler", metavar="NAME", help="euler or heun (default: the model's)")
    p.add_argument("--negative-prompt", metavar="TEXT", default=None,
                   help="what to steer away from (default: the empty prompt)")
    p.add_argument("--guidance-interval", metavar="LO,HI", default=None,
                   help="apply guidance only at noise levels t in [LO, HI] (1 = pure noise), e.g. 0.2,0.9; "
                        "other steps run the conditional model alone (default: every step)")
    p.add_argument("--no-expand", action="store_true",
                   help="use the prompt as given (default: expand it into the caption style the model knows)")
    p.add_argument("--enhancer", metavar="URL", default=None,
                   help="expand the prompt with an OpenAI-compatible chat endpoint, e.g. http://127.0.0.1:8000/v1 "
                        "(key from TENKU_ENHANCER_API_KEY or OPENAI_API_KEY; falls back to the built-in expander)")
    p.add_argument("--enhancer-model", metavar="NAME", default="gpt-4o-mini",
                   help="model name for --enhancer (default: %(default)s)")
    p.add_argument("--enhancer-timeout", type=float, metavar="S", default=30.0,
                   help="seconds to wait for --enhancer (default: %(default)s)")
    p.add_argument("--no-seam-match", action="store_true",
                   help="keep the decoder's frames where new frames meet given ones or the previous window "
                        "(default: correct them for the VAE's colour shift so the seam does not jump)")
    p.add_argument("--window", type=int, metavar="N", default=None,
                   help="latent frames per window for long videos (default: the model's training clip)")
    p.add_argument("--model", metavar="PATH",
                   help="pipeline folder (default: the small model shipped with tenku, tenku-world-tiny)")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda (default: %(default)s)")
    add_memory_options(p)
    add_threads_option(p)
    p.add_argument("--no-progress", action="store_true", help="do not show a progress bar")


def add_memory_options(p) -> None:
    """Memory and speed options (:class:`tenku.models.diffusers_folder.DiffusersOptions`; the folder's
    tenku.json holds its defaults). ``generate`` and ``serve`` share them."""
    from tenku.models.diffusers_folder import DiffusersOptions as O

    g = p.add_argument_group("memory and speed (diffusers folders; --dtype and --compile also tenku's own)")
    g.add_argument("--dtype", choices=O.DTYPES, default=None,
                   help="weights' dtype (default: the folder's tenku.json, else bf16 on a GPU, fp32 on a CPU)")
    g.add_argument("--offload", choices=O.OFFLOADS, default=None,
                   help="model: one component on the GPU at a time; sequential: layer by layer (least memory, "
                        "slowest) (default: none)")
    g.add_argument("--vae-tiling", action="store_true", help="decode the video in spatial tiles (less memory)")
    g.add_argument("--vae-slicing", action="store_true", help="decode one video of a batch at a time")
    g.add_argument("--cache", choices=O.CACHES, default=None,
                   help="a diffusers cache hook on the transformer: skip work between similar steps (faster, "
                        "slightly different frames)")
    g.add_argument("--cache-threshold", type=float, metavar="X", default=None,
                   help="the cache hook's threshold (first-block, mag; default: diffusers')")
    g.add_argument("--compile", action="store_true",
                   help="torch.compile the transformer (the first call at each size compiles)")


def options_from_args(args):
    """The :class:`DiffusersOptions` the memory flags ask for (unset flags keep the folder's)."""
    from tenku.models.diffusers_folder import DiffusersOptions

    keys = ("dtype", "offload", "vae_tiling", "vae_slicing", "cache", "cache_threshold", "compile")
    return DiffusersOptions().merged(**{k: getattr(args, k, None) for k in keys})


def add_threads_option(p) -> None:
    p.add_argument("--threads", type=int, metavar="N", default=None,
                   help="CPU threads for torch (default: the cores that are idle now, at least 1; "
                        "busy cores make extra threads many times slower)")


def default_threads() -> int:
    """The CPU cores this process may use minus the machine's load (1-minute average), at least 1: torch
    threads beyond the idle cores wait on each other (docs/perf.md has the measurement)."""
    import os

    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    return max(1, min(cores, int(cores - load + 0.5)))


def check_size_before_loading(model: Path, width: int, height: int) -> None:
    """Refuse a frame size the model folder cannot make, from its configs alone (no weights are read). A folder
    whose configs cannot be read is left to the loader, which says what is wrong with it."""
    from tenku.errors import ModelFolderError, UnsupportedSizeError
    from tenku.models.folder import read_pipeline_info

    try:
        geometry = read_pipeline_info(model).geometry
    except ModelFolderError:  # a broken folder gets the loader's precise error
        return
    problems = geometry.size_problems(height, width)
    if problems:
        raise UnsupportedSizeError(f"--size {width}x{height}: " + "; ".join(problems))


def check_device(name: str) -> None:
    """Refuse a torch device this machine cannot use, with what to do instead."""
    import torch

    from tenku.errors import TenkuError

    try:
        device = torch.device(name)
    except (RuntimeError, ValueError):
        raise TenkuError(f"--device {name!r} is not a torch device; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build of torch" if torch.version.cuda is None else "no usable GPU"
            raise TenkuError(f"--device {name}: this machine has {build} (torch {torch.__version__}); use --device "
                             "cpu, or install the torch build for your CUDA version")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise TenkuError(f"--device {name}: there are only {torch.cuda.device_count()} GPUs (cuda:0 .. "
                             f"cuda:{torch.cuda.device_count() - 1})")
    elif device.type == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise TenkuError(f"--device {name}: Apple's MPS is not available here; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise TenkuError(f"--device {name}: tenku runs on cpu, cuda or mps")


def apply_threads(args) -> int:
    """Set torch's CPU threads from --threads (or :func:`default_threads`); returns the number set."""
    from tenku.errors import TenkuError

    n = getattr(args, "threads", None)
    if n is not None and n < 1:
        raise TenkuError(f"--threads must be at least 1, got {n}")
    import torch

    n = n or default_threads()
    torch.set_num_threads(n)
    return n


def slugify(prompt: str, max_len: int = 40) -> str:
    text = unicodedata.normalize("NFKD", prompt).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", text).strip("-")[:max_len].rstrip("-")
    return slug or "video"


def default_output_name(prompt: str, seed: int, suffix: str = ".mp4") -> str:
    return f"{time.strftime('%Y%m%d-%H%M%S')}_seed{seed}_{slugify(prompt)}{suffix}"


def check_common(args) -> tuple[int | None, int | None]:
    """Check cheap arguments before loading anything; returns (width, height)."""
    from tenku.errors import UnsupportedSizeError
    from tenku.geometry import parse_size
    from tenku.safety.writer import check_output_path

    safety = getattr(args, "safety", None)
    if safety is not None:  # refused before any model loads
        safety.moderate(args.prompt)
        safety.moderate(args.negative_prompt, "negative prompt")
    if args.output is not None:
        check_output_path(args.output)  # before any model work: a wrong suffix leaves nothing behind
    width = height = None
    if args.size is not None:
        width, height = parse_size(args.size, "--size")
    if getattr(args, "seconds", None) is not None and not args.seconds > 0:
        raise UnsupportedSizeError(f"--seconds must be positive, got {args.seconds}")
    if args.fps is not None and not args.fps > 0:
        raise UnsupportedSizeError(f"--fps must be positive, got {args.fps}")
    if args.guidance_interval is not None:
        args.guidance_interval = parse_interval(args.guidance_interval)
    if getattr(args, "safety", None) is not None:  # refused before any model is loaded
        args.safety.moderate(getattr(args, "prompt", None), "prompt")
        args.safety.moderate(getattr(args, "negative_prompt", None), "negative prompt")
    return width, height


def parse_interval(text: str) -> tuple[float, float]:
    """'0.2,0.9' -> (0.2, 0.9), both in [0, 1], lo <= hi."""
    from tenku.errors import TenkuError

    try:
        lo, hi = (float(v) for v in text.split(","))
    except ValueError:
        raise TenkuError(f"--guidance-interval must look like LO,HI with 0 <= LO <= HI <= 1, e.g. 0.2,0.9; "
                         f"got {text!r}") from None
    if not 0.0 <= lo <= hi <= 1.0:
        raise TenkuError(f"--guidance-interval must have 0 <= LO <= HI <= 1, got {text!r}")
    return lo, hi


def load_pipeline(args):
    """The pipeline folder --model names (default: the shipped model), tenku's or diffusers', with the policy
    the CLI built and the memory flags (:func:`tenku.pipeline.loading.load_pipeline`)."""
    from tenku.errors import ModelFolderError
    from tenku.geometry import parse_size
    from tenku.models.folder import model_path
    from tenku.pipeline.loading import load_pipeline as load

    model = model_path(args.model)
    check_device(args.device)
    if args.size is not None:
        check_size_before_loading(model, *parse_size(args.size, "--size"))
    apply_threads(args)
    if not model.exists():
        if args.model:
            raise ModelFolderError(f"model folder not found: {model}")
        raise ModelFolderError(f"the default model is not installed at {model}; pass a pipeline folder with "
                               "--model PATH (e.g. one written by `tenku train` or tenku.testing.make_tiny_pipeline)")
    import sys
    import warnings

    from tenku.errors import TenkuWarning

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TenkuWarning)
        pipe = load(model, device=args.device, safety=getattr(args, "safety", None), options=options_from_args(args))
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    return pipe


def expander(args):
    """What --no-expand / --enhancer ask for: False, a ChatEnhancer, or True (built-in)."""
    if args.no_expand:
        return False
    if args.enhancer:
        import os

        from tenku.pipeline.prompt import ChatEnhancer

        key = os.environ.get("TENKU_ENHANCER_API_KEY") or os.environ.get("OPENAI_API_KEY")
        return ChatEnhancer(args.enhancer, args.enhancer_model, api_key=key, timeout=args.enhancer_timeout)
    return True


def generate_to_file(args, pipe, prompt: str, mode, *, width=None, height=None, num_frames=None, seconds=None,
                     slug: str | None = None) -> int:
    """Run one generation and stream it into the output file; print what was written."""
    import sys
    import warnings

    import torch

    from tenku.errors import TenkuError, TenkuWarning
    from tenku.pipeline.output import save_output_stream
    from tenku.seeds import check_seed, draw_seed

    seed = draw_seed() if args.seed is None else check_seed(args.seed)
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TenkuWarning)
        stream = pipe.stream(prompt, args.negative_prompt, mode=mode, seconds=seconds, num_frames=num_frames,
                             height=height, width=width, fps=args.fps, num_steps=args.steps, guidance=args.guidance,
                             sampler=args.sampler, seed=seed, progress=not args.no_progress,
                             expand=expander(args), window=args.window,
                             guidance_interval=args.guidance_interval, match_seams=not args.no_seam_match)
    for w in caught:
        print(f"warning: {w.message}", file=sys.stderr)
    if not prompt.strip():  # after the checks: a refused request says only what was wrong
        print("note: the prompt is empty, so the video is unconditional (whatever the model makes without "
              "text); give a prompt to say what it should show", file=sys.stderr)
    out = Path(args.output) if args.output else Path(default_output_name(slug if slug is not None else prompt, seed))
    try:
        path = save_output_stream(stream, out)
    except torch.cuda.OutOfMemoryError:
        raise TenkuError("out of GPU memory; try a smaller --size, fewer --frames or --device cpu") from None
    m = stream.metadata
    if m.get("expanded_prompt") not in (None, prompt):
        print(f"expanded prompt ({m['expander']}): {m['expanded_prompt']}")
    kind = "image" if path.suffix.lower() == ".png" else f"{stream.num_frames} frames, {stream.fps:g} fps"
    took = time.perf_counter() - start  # the whole generation and write (an image stops the stream early)
    print(f"wrote {path} ({kind}, {stream.width}x{stream.height}, seed {seed}, {took:.2f} s)")
    return 0


# ---- the template of the mode commands (extend, loop, connect, edit): one file each says what differs

def add_mode_command(subparsers, name: str, *, help: str, description: str, media: dict[str, str],
                     prompt_help: str, prompt_required: bool = False, options=None, make_mode=None, slug=None):
    """Register ``tenku NAME MEDIA... [PROMPT]``: ``media`` {argument: help} are input files checked before any
    model loads; ``options(p)`` adds the mode's own flags; ``make_mode(args)`` builds the typed mode;
    ``slug(args)`` names the default output file. The shared generation options are added here."""
    p = subparsers.add_parser(name, help=help, description=description,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    for arg, text in media.items():
        p.add_argument(arg, help=text)
    if prompt_required:
        p.add_argument("prompt", help=prompt_help)
    else:
        p.add_argument("prompt", nargs="?", default="", help=prompt_help)
    if options is not None:
        options(p)
    add_output_option(p)
    add_generation_options(p)
    if media and not prompt_required:
        prompt_anywhere(p)
    p.set_defaults(func=lambda args: run_mode_command(args, tuple(media), make_mode, slug))
    return p


def run_mode_command(args, media: tuple[str, ...], make_mode, slug) -> int:
    """Check the cheap arguments and the input files, build the mode, load the model, generate to the file."""
    from tenku.errors import MediaError

    width, height = check_common(args)
    for arg in media:
        if not Path(getattr(args, arg)).is_file():
            raise MediaError(f"video not found: {getattr(args, arg)}")
    mode = make_mode(args)
    pipe = load_pipeline(args)
    return generate_to_file(args, pipe, args.prompt, mode, width=width, height=height,
                            slug=slug(args) if slug is not None else None)
