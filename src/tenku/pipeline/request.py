"""What one generation asks for, checked once: :class:`GenerationRequest`, and what a mode plans from it:
:class:`Plan`.

The pipeline builds a request from its call's arguments (:func:`build_request`): sample settings are
the model folder's ``sample.json`` with the call's overrides (:meth:`tenku.config.SampleConfig.resolve`),
``seconds`` becomes the nearest valid frame count, sizes are checked against the model's geometry and
the documented limits. A mode then turns the request into a :class:`Plan`: the frames given before and
after the new ones, and the window schedule that makes them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from tenku.config import SampleConfig
from tenku.errors import TenkuError, UnsupportedSizeError
from tenku.flow import SAMPLERS
from tenku.pipeline.inputs import media_size
from tenku.seeds import check_seed, draw_seed

if TYPE_CHECKING:
    from tenku.geometry import Geometry

MAX_SECONDS = 600.0  # longest clip a call makes (windowed; memory stays flat)
MAX_SIDE = 1024  # largest width or height in pixels (tenku's own model; a backend may set its own ``max_side``)
MAX_SIDE_OPEN = 2048  # the open-weight models' (HunyuanVideo makes 1280x720, CogVideoX 1.5 1360x768)
MAX_FPS = 60.0


@dataclasses.dataclass(frozen=True)
class GenerationRequest:
    """One generation, checked. ``sample``: the resolved sample settings (``num_frames`` is the length the
    mode asked for; modes that take their length from given media or their own ``seconds`` plan it
    themselves). ``window``/``context``: latent frames per window and of context each continuation gets;
    ``context_given``: whether the caller chose ``context`` (bridging windows then use it too).
    ``latents``: explicit initial noise (one window, text-to-video only)."""

    prompt: str
    mode: Any
    sample: SampleConfig
    seed: int
    window: int
    context: int
    negative_prompt: str | None = None
    seconds: float | None = None
    context_given: bool = False
    guidance_interval: tuple[float, float] | None = None
    match_seams: bool = True
    expand: Any = dataclasses.field(default=True, compare=False)
    latents: Any = dataclasses.field(default=None, compare=False, repr=False)


@dataclasses.dataclass(frozen=True)
class Plan:
    """How a mode makes its frames: ``make(runner)`` yields the new frames (t, H, W, 3) in time order;
    ``before``/``after``: given frames written around them; ``total``: every frame of the output;
    ``windows``: how many windows are sampled; ``given``: the frame the new ones continue from (the prompt
    expansion describes it), if any."""

    make: Callable[[Any], Iterator[np.ndarray]]
    total: int
    windows: int
    before: tuple[np.ndarray, ...] = ()
    after: tuple[np.ndarray, ...] = ()
    given: np.ndarray | None = None


class Mode:
    """What every generation mode (:mod:`tenku.pipeline.modes`) is. ``name``: how metadata and the server name
    it. ``size_source``: the field whose media gives the default output size (None: the model's).
    ``frames_asked``: the frame count the request is sized and checked with (default: the caller's).
    ``plan``: the frames given around the new ones and the windows that make them."""

    name: ClassVar[str]
    size_source: ClassVar[str | None] = None

    def frames_asked(self, num_frames: int | None, fps: float, geometry: "Geometry") -> int | None:
        return num_frames

    def plan(self, pipe, request: GenerationRequest) -> Plan:
        raise NotImplementedError


def window_latents(pipe, window: int | None = None) -> int:
    """Latent frames per window: ``window`` if given, else the model's training clip (its sample_config)."""
    if window is None:
        window = pipe.geometry.latent_frames(pipe.sample_config.num_frames)
    if not isinstance(window, int) or isinstance(window, bool) or window < 2:
        raise TenkuError(f"window must be an integer of at least 2 latent frames, got {window!r}")
    return window


def default_context(window: int) -> int:
    """Latent frames of context a continuation window is given: 2 (motion, not only a still) when the
    window has room for it, else 1."""
    return 2 if window >= 4 else 1


def check_limits(pipe, num_frames: int, height: int, width: int, fps: float) -> None:
    """Raise UnsupportedSizeError (saying which sizes work) for sizes outside the documented limits."""
    mh, mw = pipe.geometry.spatial_multiple
    side = getattr(pipe, "max_side", MAX_SIDE)
    problems = []
    for what, v in (("width", width), ("height", height)):
        if v > side:
            problems.append(f"{what} {v} is above the limit of {side}")
    if not 0 < float(fps) <= MAX_FPS:
        problems.append(f"fps {fps:g} is outside (0, {MAX_FPS:g}]")
    if num_frames / float(fps) > MAX_SECONDS + 1e-9:
        problems.append(f"{num_frames} frames at {fps:g} fps is {num_frames / float(fps):.1f} s, above the "
                        f"limit of {MAX_SECONDS:g} s")
    if problems:
        raise UnsupportedSizeError("; ".join(problems) + f". This model makes widths that are multiples of {mw} "
                                   f"and heights that are multiples of {mh}, from {mw}x{mh} up to "
                                   f"{side}x{side} (it was trained at {pipe.sample_config.width}x"
                                   f"{pipe.sample_config.height}), at up to {MAX_FPS:g} fps and {MAX_SECONDS:g} s")


def _guidance_interval(value) -> tuple[float, float] | None:
    if value is None:
        return None
    gi = tuple(value)
    if len(gi) != 2 or not all(isinstance(v, (int, float)) and 0.0 <= v <= 1.0 for v in gi) or gi[0] > gi[1]:
        raise TenkuError(f"guidance_interval must be (lo, hi) with 0 <= lo <= hi <= 1, got {value!r}")
    return float(gi[0]), float(gi[1])


def _default_size(pipe, value, width: int | None, height: int | None) -> tuple[int | None, int | None]:
    """The input's own size when the caller gives none and the model can make it; else the model's."""
    if value is None or (width is not None and height is not None):
        return width, height
    w, h = media_size(value)
    mh, mw = pipe.geometry.spatial_multiple
    side = getattr(pipe, "max_side", MAX_SIDE)
    if w % mw == 0 and h % mh == 0 and mw <= w <= side and mh <= h <= side:
        return (width if width is not None else w), (height if height is not None else h)
    return width, height


def build_request(pipe, prompt: str, mode, *, negative_prompt: str | None = None, seconds: float | None = None,
                  num_frames: int | None = None, height: int | None = None, width: int | None = None,
                  fps: float | None = None, num_steps: int | None = None, guidance: float | None = None,
                  sampler: str | None = None, seed: int | None = None, seed_from_generator: bool = False,
                  expand: Any = True,
                  window: int | None = None, context: int | None = None,
                  guidance_interval: tuple[float, float] | None = None, match_seams: bool = True,
                  latents: Any = None) -> GenerationRequest:
    """Check a call's arguments against ``pipe``'s model and return the request (see the module docstring).
    ``mode``: a mode object (the pipeline passes TextToVideo() for None)."""
    if not isinstance(mode, Mode):
        raise TenkuError(f"mode must be one of the modes of tenku.pipeline.modes (TextToVideo, TextToImage, "
                         f"ImageToVideo, Extend, Loop, Connect, Edit), got {mode!r}")
    if not isinstance(prompt, str):
        raise TenkuError(f"prompt must be a string, got {type(prompt).__name__}")
    if latents is not None and mode.name != "text_to_video":
        raise TenkuError("latents= (explicit initial noise) works with plain text-to-video only; leave mode unset")
    if seconds is not None and num_frames is not None:
        raise TenkuError("give seconds or num_frames, not both")
    gi = _guidance_interval(guidance_interval)
    W = window_latents(pipe, window)
    k = default_context(W) if context is None else context
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k < W:
        raise TenkuError(f"context must be an integer from 1 to {W - 1} latent frames (window {W}), got {context!r}")
    source = getattr(mode, mode.size_source) if mode.size_source else None
    width, height = _default_size(pipe, source, width, height)
    fps_out = fps if fps is not None else pipe.sample_config.fps
    if seconds is not None:
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0:
            raise UnsupportedSizeError(f"seconds must be a positive number, got {seconds!r}")
        num_frames = pipe.geometry.frames_for_seconds(seconds, fps_out)
    sample = pipe.sample_config.resolve(num_frames=mode.frames_asked(num_frames, float(fps_out), pipe.geometry),
                                        height=height, width=width, fps=fps_out, num_steps=num_steps,
                                        guidance=guidance, sampler=sampler)
    pipe.geometry.check_size(sample.num_frames, sample.height, sample.width)
    if sample.sampler not in SAMPLERS:
        raise TenkuError(f"unknown sampler {sample.sampler!r}; choose one of {sorted(SAMPLERS)}")
    if latents is not None:
        W = max(W, pipe.geometry.latent_frames(sample.num_frames))  # the given noise is one window
    if not seed_from_generator:  # a generator's own seed is recorded as it is
        seed = draw_seed() if seed is None else check_seed(seed)
    return GenerationRequest(prompt=prompt, mode=mode, sample=sample, seed=seed, window=W, context=k,
                             negative_prompt=negative_prompt, seconds=seconds, context_given=context is not None,
                             guidance_interval=gi, match_seams=bool(match_seams), expand=expand, latents=latents)
