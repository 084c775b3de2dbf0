"""Generation modes as typed objects: one model, every Sora mode.

    from tenku.pipeline import TenkuPipeline
    from tenku.pipeline.modes import ImageToVideo, Extend, Loop, Connect, Edit

    pipe = TenkuPipeline.from_pretrained("my-model")
    pipe("a red ball", mode=ImageToVideo(image="first.png"))
    pipe("the ball keeps rolling", mode=Extend(video="clip.mp4", seconds=4))
    pipe("a red ball", mode=Loop(seconds=3))
    pipe("a red ball", mode=Connect(a="a.mp4", b="b.mp4", seconds=1))
    pipe("a blue ball", mode=Edit(video="clip.mp4", strength=0.6))

Every mode turns into frames given before and/or after the frames to make; the window engine
(:mod:`tenku.pipeline.longvideo`) turns those into clean conditioning latents plus a per-latent-frame
mask for each window (Edit: initial latents plus a start time, SDEdit). Images and videos of any size
are scaled to cover the target size and centre-cropped; videos are resampled in time to the output
fps by taking the nearest frame.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from tenku.errors import MediaError, TenkuError, UnsupportedSizeError

MAX_SECONDS = 600.0  # longest clip a call makes (windowed; memory stays flat)
MAX_SIDE = 1024  # largest width or height in pixels
MAX_FPS = 60.0

Media = Any  # a path (str | Path) or frames: (H, W, 3) / (T, H, W, 3) uint8 RGB


def _check_seconds(seconds: Any, what: str, allow_none: bool = False) -> None:
    if seconds is None and allow_none:
        return
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not math.isfinite(seconds) \
            or seconds <= 0 or seconds > MAX_SECONDS:
        raise TenkuError(f"{what} must be a number of seconds in (0, {MAX_SECONDS:g}], got {seconds!r}")


def _check_media(value: Any, what: str) -> None:
    if isinstance(value, (str, Path)):
        return
    if isinstance(value, np.ndarray) and value.dtype == np.uint8 and value.ndim in (3, 4) and value.shape[-1] == 3:
        return
    raise TenkuError(f"{what} must be a file path or uint8 RGB frames ((H, W, 3) or (T, H, W, 3)), "
                     f"got {type(value).__name__}{getattr(value, 'shape', '')}")


@dataclasses.dataclass(frozen=True)
class TextToVideo:
    """Plain text-to-video of any length (windowed beyond the model's training window)."""

    name: ClassVar[str] = "text_to_video"


@dataclasses.dataclass(frozen=True)
class TextToImage:
    """One frame (save it as .png)."""

    name: ClassVar[str] = "text_to_image"


@dataclasses.dataclass(frozen=True)
class ImageToVideo:
    """Animate ``image`` (a path or (H, W, 3) uint8): it becomes latent frame 0, held fixed; the output's
    first frame is the image (its VAE round trip with ``match_seams=False``)."""

    image: Media = dataclasses.field(compare=False)
    name: ClassVar[str] = "image_to_video"

    def __post_init__(self):
        _check_media(self.image, "ImageToVideo.image")


@dataclasses.dataclass(frozen=True)
class Extend:
    """Continue ``video`` by ``seconds`` (forward: after its end; ``backward``: before its start). The output
    is the given video (fitted to the size) with the new frames attached; the given frames are kept as they are."""

    video: Media = dataclasses.field(compare=False)
    seconds: float = 2.0
    backward: bool = False
    name: ClassVar[str] = "extend"

    def __post_init__(self):
        _check_media(self.video, "Extend.video")
        _check_seconds(self.seconds, "Extend.seconds")


@dataclasses.dataclass(frozen=True)
class Loop:
    """A seamless loop of ``seconds`` (None: the call's num_frames): the last window is conditioned on the
    video's own first frames, so the last frame flows into the first."""

    seconds: float | None = None
    name: ClassVar[str] = "loop"

    def __post_init__(self):
        _check_seconds(self.seconds, "Loop.seconds", allow_none=True)


@dataclasses.dataclass(frozen=True)
class Connect:
    """A transition of ``seconds`` from the end of ``a`` to the start of ``b``; the output is a + transition + b."""

    a: Media = dataclasses.field(compare=False)
    b: Media = dataclasses.field(compare=False)
    seconds: float = 1.0
    name: ClassVar[str] = "connect"

    def __post_init__(self):
        _check_media(self.a, "Connect.a")
        _check_media(self.b, "Connect.b")
        _check_seconds(self.seconds, "Connect.seconds")


@dataclasses.dataclass(frozen=True)
class Edit:
    """SDEdit ``video`` toward the prompt: its latents are noised to ``t = strength`` and denoised. 0 returns
    the input (through the VAE), 1 ignores it."""

    video: Media = dataclasses.field(compare=False)
    strength: float = 0.6
    name: ClassVar[str] = "edit"

    def __post_init__(self):
        _check_media(self.video, "Edit.video")
        s = self.strength
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 <= s <= 1.0:
            raise TenkuError(f"Edit.strength must be a number in [0, 1] (0 keeps the video, 1 ignores it), got {s!r}")


MODES = (TextToVideo, TextToImage, ImageToVideo, Extend, Loop, Connect, Edit)
Mode = TextToVideo | TextToImage | ImageToVideo | Extend | Loop | Connect | Edit


# ---------------------------------------------------------------- media in


def fit_frames(frames: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale (T, h, w, 3) uint8 frames to cover ``width`` x ``height`` (aspect kept, Lanczos), then crop
    the centre. Frames already of that size are returned unchanged."""
    if frames.shape[1:3] == (height, width):
        return frames
    from PIL import Image

    h, w = frames.shape[1:3]
    scale = max(width / w, height / h)
    sw, sh = max(width, round(w * scale)), max(height, round(h * scale))
    x0, y0 = (sw - width) // 2, (sh - height) // 2
    out = np.empty((len(frames), height, width, 3), np.uint8)
    for i, f in enumerate(frames):
        im = Image.fromarray(f).resize((sw, sh), Image.LANCZOS)
        out[i] = np.asarray(im)[y0:y0 + height, x0:x0 + width]
    return out


def resample_time(frames: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Nearest-frame resampling from ``fps_in`` to ``fps_out`` (same duration)."""
    if not fps_in or abs(fps_in - fps_out) < 1e-6:
        return frames
    n = max(1, int(round(len(frames) * fps_out / fps_in)))
    idx = np.minimum(np.round(np.arange(n) * fps_in / fps_out).astype(int), len(frames) - 1)
    return frames[idx]


def load_image(image: Media, width: int, height: int) -> np.ndarray:
    """A path or (H, W, 3) / (1, H, W, 3) uint8 -> (1, height, width, 3), fitted."""
    if isinstance(image, (str, Path)):
        from tenku.media import read_image

        arr = read_image(image)[None]
    else:
        arr = image if image.ndim == 4 else image[None]
    return fit_frames(np.ascontiguousarray(arr[:1]), width, height)


def load_video(video: Media, width: int, height: int, fps: float) -> np.ndarray:
    """A video file (any size/fps PyAV reads) or (T, H, W, 3) uint8 frames at ``fps`` -> fitted frames at ``fps``."""
    if isinstance(video, (str, Path)):
        from tenku import media

        path = Path(video)
        if path.suffix.lower() in media.IMAGE_SUFFIXES:
            import warnings

            from tenku.errors import TenkuWarning

            warnings.warn(f"{path.name} is an image: it is used as a video of one frame (for image-to-video "
                          "from it, use generate --image)", TenkuWarning, stacklevel=2)
            return load_image(path, width, height)
        frames, fps_in = media.read_video(path)
        frames = resample_time(frames, fps_in, fps)
    else:
        frames = video if video.ndim == 4 else video[None]
    if not len(frames):
        raise MediaError("the given video has no frames")
    return fit_frames(np.ascontiguousarray(frames), width, height)


def media_size(value: Media) -> tuple[int, int]:
    """(width, height) of an image/video path or frames."""
    if isinstance(value, np.ndarray):
        return int(value.shape[-2]), int(value.shape[-3])
    from tenku import media

    path = Path(value)
    if path.suffix.lower() in media.IMAGE_SUFFIXES:
        from PIL import Image

        if not path.is_file():
            raise MediaError(f"image not found: {path}")
        try:
            with Image.open(path) as im:
                return im.size
        except OSError as e:
            raise MediaError(f"cannot read image {path}: {e}") from None
    info = media.probe(path)
    return int(info["width"]), int(info["height"])


# ---------------------------------------------------------------- limits


def check_limits(pipe, num_frames: int, height: int, width: int, fps: float) -> None:
    """Raise UnsupportedSizeError (saying which sizes work) for sizes outside the documented limits."""
    mh, mw = pipe.spatial_multiple
    problems = []
    for what, v, m in (("width", width, mw), ("height", height, mh)):
        if v > MAX_SIDE:
            problems.append(f"{what} {v} is above the limit of {MAX_SIDE}")
    if not 0 < float(fps) <= MAX_FPS:
        problems.append(f"fps {fps:g} is outside (0, {MAX_FPS:g}]")
    if num_frames / float(fps) > MAX_SECONDS + 1e-9:
        problems.append(f"{num_frames} frames at {fps:g} fps is {num_frames / float(fps):.1f} s, above the "
                        f"limit of {MAX_SECONDS:g} s")
    if problems:
        raise UnsupportedSizeError("; ".join(problems) + f". This model makes widths that are multiples of {mw} "
                                   f"and heights that are multiples of {mh}, from {mw}x{mh} up to "
                                   f"{MAX_SIDE}x{MAX_SIDE} (it was trained at {pipe.sample_config.width}x"
                                   f"{pipe.sample_config.height}), at up to {MAX_FPS:g} fps and {MAX_SECONDS:g} s")


def window_latents(pipe, window: int | None = None) -> int:
    """Latent frames per window: ``window`` if given, else the model's training clip (its sample_config)."""
    if window is None:
        n = pipe.sample_config.num_frames
        window = 1 + (n - 1) // pipe.vae.cfg.temporal_factor
    if not isinstance(window, int) or isinstance(window, bool) or window < 2:
        raise TenkuError(f"window must be an integer of at least 2 latent frames, got {window!r}")
    return window


def default_context(window: int) -> int:
    """Latent frames of context a continuation window is given: 2 (motion, not only a still) when the
    window has room for it, else 1."""
    return 2 if window >= 4 else 1


# ---------------------------------------------------------------- generation


@dataclasses.dataclass
class GenerationStream:
    """A generation under way: ``frames`` yields (t, H, W, 3) uint8 pieces in time order (consume it once);
    ``num_frames``, ``fps``, ``width``, ``height`` are known up front; ``metadata`` gains
    ``seconds_taken`` when the stream is exhausted."""

    frames: Any
    num_frames: int
    fps: float
    width: int
    height: int
    metadata: dict[str, Any]
    state: dict[str, Any] = dataclasses.field(default_factory=dict, repr=False)

    def collect(self):
        """Run the stream to the end and return a :class:`tenku.pipeline.output.PipelineOutput`."""
        from tenku.pipeline.output import PipelineOutput

        frames = np.concatenate(list(self.frames)) if self.num_frames else np.zeros((0, self.height, self.width, 3))
        if len(frames) != self.num_frames:
            raise TenkuError(f"internal: made {len(frames)} frames, expected {self.num_frames}")
        return PipelineOutput(frames=frames, fps=self.fps, metadata=self.metadata, latents=self.state.get("latents"))


def _bridge_context(k: int, window: int, context: int | None) -> tuple[int, int]:
    """(tail, head) latent frames of the window that bridges to given frames after (loop, connect). By
    default one each, so a short window has room to move between the two ends (with the shipped model's
    5-latent window, 2 + 2 left one new latent frame and its loops jumped at the wrap: 8.1 vs 5.6 with
    1 + 1, frame difference, seed 0, phase-2 VAE); an explicit ``context`` is used on both sides as far as it fits."""
    if context is None:
        return 1, 1
    k2 = max(1, min(k, window - 1 - k))
    return k2, k


def _seconds_to_frames(seconds: float, fps: float, tf: int, plus_one: bool) -> int:
    """Frames for ``seconds`` rounded to what a window adds: a multiple of tf (or 1 + tf*m), at least one step."""
    n = seconds * fps
    if plus_one:
        return 1 + tf * max(0, int(round((n - 1) / tf)))
    return tf * max(1, int(round(n / tf)))


def _default_size(pipe, value: Media | None, width: int | None, height: int | None) -> tuple[int | None, int | None]:
    """The input's own size when the caller gives none and the model can make it; else the model's."""
    if value is None or (width is not None and height is not None):
        return width, height
    w, h = media_size(value)
    mh, mw = pipe.spatial_multiple
    if w % mw == 0 and h % mh == 0 and mw <= w <= MAX_SIDE and mh <= h <= MAX_SIDE:
        return (width if width is not None else w), (height if height is not None else h)
    return width, height


def _mode_params(mode) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(mode):
        v = getattr(mode, f.name)
        out[f.name] = str(v) if isinstance(v, (str, Path)) else (
            f"<frames {tuple(v.shape)}>" if isinstance(v, np.ndarray) else v)
    return out


def generate(pipe, prompt: str, mode: Mode | None = None, *, negative_prompt: str | None = None,
             num_frames: int | None = None, height: int | None = None, width: int | None = None,
             fps: float | None = None, num_steps: int | None = None, guidance: float | None = None,
             sampler: str | None = None, seed: int | None = None, generator=None, callback=None,
             progress: bool = True, expand: Any = True, window: int | None = None, context: int | None = None,
             guidance_interval: tuple[float, float] | None = None, on_window=None,
             match_seams: bool = True) -> GenerationStream:
    """Plan a generation of ``mode`` and return its :class:`GenerationStream` (nothing is sampled until
    the frames are read). ``window``: latent frames per window (default: the model's training clip);
    ``context``: latent frames of context each continuation is given (default: :func:`default_context`).
    ``expand``: True (built-in prompt expander), False, or an expander (see :mod:`tenku.pipeline.prompt`).
    ``guidance_interval`` (lo, hi): classifier-free guidance only for timesteps in [lo, hi].
    ``match_seams``: correct new frames where they meet given or earlier frames for the VAE's round-trip
    error (:func:`tenku.pipeline.longvideo.match_seams`); False keeps the decoder's frames as they are."""
    import time

    import torch

    from tenku.pipeline import longvideo as lv
    from tenku.pipeline.prompt import expand_prompt

    mode = TextToVideo() if mode is None else mode
    if not isinstance(mode, MODES):
        raise TenkuError(f"mode must be one of {', '.join(m.__name__ for m in MODES)} "
                         f"(from tenku.pipeline.modes), got {mode!r}")
    if not isinstance(prompt, str):
        raise TenkuError(f"prompt must be a string, got {type(prompt).__name__}")
    if guidance_interval is not None:
        gi = tuple(guidance_interval)
        if len(gi) != 2 or not all(isinstance(v, (int, float)) and 0.0 <= v <= 1.0 for v in gi) or gi[0] > gi[1]:
            raise TenkuError(f"guidance_interval must be (lo, hi) with 0 <= lo <= hi <= 1, got {guidance_interval!r}")
        guidance_interval = (float(gi[0]), float(gi[1]))
    tf = pipe.vae.cfg.temporal_factor
    W = window_latents(pipe, window)
    k = default_context(W) if context is None else context
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k < W:
        raise TenkuError(f"context must be an integer from 1 to {W - 1} latent frames (window {W}), got {context!r}")
    source = {ImageToVideo: "image", Extend: "video", Connect: "a", Edit: "video"}.get(type(mode))
    width, height = _default_size(pipe, getattr(mode, source) if source else None, width, height)
    fps_out = float(fps if fps is not None else pipe.sample_config.fps)
    if isinstance(mode, TextToImage):
        num_frames = 1
    elif isinstance(mode, Loop) and mode.seconds is not None:
        num_frames = pipe.nearest_num_frames(mode.seconds * fps_out)
    sized = isinstance(mode, (TextToVideo, TextToImage, ImageToVideo, Loop))
    r = pipe.resolve(num_frames=num_frames if sized else 1, height=height, width=width, fps=fps_out,
                     num_steps=num_steps, guidance=guidance, sampler=sampler)
    H, Wd, fps_out = r["height"], r["width"], float(r["fps"])
    gen, seed = pipe.make_generator(seed, generator)
    from tenku.safety.moderation import ensure_allowed

    ensure_allowed(prompt)  # refuses (ModerationError, naming the category) before any work

    before: list[np.ndarray] = []  # given frames written before the new ones
    after: list[np.ndarray] = []  # and after them
    if isinstance(mode, (TextToVideo, TextToImage)):
        n = r["num_frames"]
        sched = lv.forward_schedule(n, W, k, tf)
        make = lambda run: lv.stream_forward(run, sched, None, None, k)  # noqa: E731
        total = n
    elif isinstance(mode, ImageToVideo):
        img = load_image(mode.image, Wd, H)
        n = r["num_frames"]
        if n < 1 + tf:
            raise UnsupportedSizeError(f"image-to-video needs at least {1 + tf} frames (the image and one step "
                                       f"of {tf}), got {n}")
        sched = lv.forward_schedule(n - 1, W, k, tf, head_frames=1)
        make = lambda run: lv.stream_forward(run, sched, img, None, k, keep_first_context=True)  # noqa: E731
        total = n
    elif isinstance(mode, Extend):
        video = load_video(mode.video, Wd, H, fps_out)
        if mode.backward:
            n = _seconds_to_frames(mode.seconds, fps_out, tf, plus_one=True)
            k2 = max(1, min(k, len(video) // tf))
            sched = lv.backward_schedule(n, W, k2, tf)
            make = lambda run: lv.stream_backward(run, sched, video)  # noqa: E731
            after = [video]
        else:
            n = _seconds_to_frames(mode.seconds, fps_out, tf, plus_one=False)
            sched = lv.forward_schedule(n, W, k, tf, head_frames=len(video))
            make = lambda run: lv.stream_forward(run, sched, video, None, k)  # noqa: E731
            before = [video]
        total = n + len(video)
    elif isinstance(mode, Connect):
        a = load_video(mode.a, Wd, H, fps_out)
        b = load_video(mode.b, Wd, H, fps_out)
        n = _seconds_to_frames(mode.seconds, fps_out, tf, plus_one=False)
        k2, closing = _bridge_context(k, W, context)
        k2 = max(1, min(k2, len(b) // tf))
        sched = lv.forward_schedule(n, W, k, tf, head_frames=len(a), tail=k2, closing_context=closing)
        make = lambda run: lv.stream_forward(run, sched, a, b, k)  # noqa: E731
        before, after = [a], [b]
        total = len(a) + n + len(b)
    elif isinstance(mode, Loop):
        n = r["num_frames"]
        k2, closing = _bridge_context(k, W, context)
        if n < 1 + tf:
            raise UnsupportedSizeError(f"a loop needs at least {1 + tf} frames, got {n}; ask for a longer loop")
        sched = lv.forward_schedule(n, W, k, tf, tail=k2, tail_from_start=True, closing_context=closing)
        make = lambda run: lv.stream_forward(run, sched, None, None, k, tail_from_start=True)  # noqa: E731
        total = n
    else:  # Edit
        video = load_video(mode.video, Wd, H, fps_out)
        video = video[: 1 + tf * ((len(video) - 1) // tf)]  # whole latent frames
        n_lat = 1 + (len(video) - 1) // tf
        sched = [None] * lv.edit_windows(n_lat, W, k)

        def make(run):
            z0 = pipe.encode_frames(video)
            return lv.stream_edit(run, z0, W, k, float(mode.strength))

        total = len(video)
    # the expansion describes the frame the new ones continue from, when frames are given (an edit's prompt
    # says what the video should become, so it is expanded on its own)
    given = {ImageToVideo: lambda: img[0], Connect: lambda: a[-1],
             Extend: lambda: video[0] if mode.backward else video[-1]}.get(type(mode))
    text, expansion = expand_prompt(prompt, seed, expand, frames=given() if given else None)
    if text != prompt:
        ensure_allowed(text)  # an external enhancer's text passes the same check
    pipe_check = dict(r, num_frames=total)
    check_limits(pipe, total, H, Wd, fps_out)
    meta = pipe.metadata(prompt, negative_prompt, seed, pipe_check)
    meta.update({"mode": mode.name, "mode_params": _mode_params(mode), "expanded_prompt": text,
                 "expander": expansion, "windows": len(sched), "window_latent_frames": W,
                 "context_latent_frames": k, "guidance_interval": guidance_interval,
                 "match_seams": bool(match_seams)})

    def frames():
        start = time.perf_counter()
        with torch.no_grad():
            cond, uncond = pipe.encode_prompt(text, negative_prompt, float(r["guidance"]))
            run = lv.WindowRunner(pipe, cond, uncond, r, gen, len(sched), callback=callback, progress=progress,
                                  on_window=on_window, guidance_interval=guidance_interval,
                                  match_seams=match_seams)
            try:
                for v in before:
                    yield v
                yield from make(run)
            finally:
                run.close()
            for v in after:
                yield v
            state["latents"] = run.last  # the last window's latents
        meta["seconds_taken"] = round(time.perf_counter() - start, 3)

    state: dict[str, Any] = {}
    return GenerationStream(frames=frames(), num_frames=total, fps=fps_out, width=Wd, height=H, metadata=meta,
                            state=state)


def run_mode(pipe, mode: str, prompt: str, source: str | None = None, image: str | None = None,
             num_frames: int | None = None, fps: float | None = None, strength: float = 0.6, **kwargs):
    """Adapter for callers that name modes in data (the HTTP server's job records): build the typed mode and
    return the finished PipelineOutput. ``num_frames`` is the new segment's length for "extend"."""
    fps_out = float(fps if fps is not None else pipe.sample_config.fps)
    if mode == "image_to_video":
        typed, n = ImageToVideo(image=image), num_frames
    elif mode == "extend":
        typed, n = Extend(video=source, seconds=(num_frames or pipe.sample_config.num_frames) / fps_out), None
    elif mode == "edit":
        typed, n = Edit(video=source, strength=strength), None
    else:
        raise TenkuError(f"unknown mode {mode!r}; this adapter knows image_to_video, extend and edit")
    return generate(pipe, prompt, typed, num_frames=n, fps=fps_out, **kwargs).collect()
