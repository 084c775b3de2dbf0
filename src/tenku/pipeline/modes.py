"""Generation modes as typed objects: one model, every Sora mode.

    from tenku.pipeline import TenkuPipeline
    from tenku.pipeline.modes import ImageToVideo, Extend, Loop, Connect, Edit

    pipe = TenkuPipeline.from_pretrained("my-model")
    pipe("a red ball", mode=ImageToVideo(image="first.png"))
    pipe("the ball keeps rolling", mode=Extend(video="clip.mp4", seconds=4))
    pipe("a red ball", mode=Loop(seconds=3))
    pipe("a red ball", mode=Connect(a="a.mp4", b="b.mp4", seconds=1))
    pipe("a blue ball", mode=Edit(video="clip.mp4", strength=0.6))

A mode is one frozen class whose ``plan(pipe, request) -> Plan`` says which frames are given before
and/or after the frames to make and which windows make them; the window engine
(:mod:`tenku.pipeline.longvideo`) turns those into clean conditioning latents plus a per-latent-frame
mask for each window (Edit: initial latents plus a start time, SDEdit). Given media is fitted to the
output size and fps (:mod:`tenku.pipeline.inputs`). Adding a mode: a class here with ``plan`` (and
``frames_asked``/``size_source`` when its length or size comes from elsewhere), listed in ``MODES``.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, ClassVar

from tenku.errors import TenkuError, UnsupportedSizeError
from tenku.pipeline import longvideo as lv
from tenku.pipeline.inputs import Media, check_media, check_seconds, load_image, load_video
from tenku.pipeline.request import MAX_SECONDS, Mode, Plan

if TYPE_CHECKING:
    from tenku.pipeline.request import GenerationRequest


def _seconds_to_frames(seconds: float, fps: float, tf: int, plus_one: bool) -> int:
    """Frames for ``seconds`` rounded to what a window adds: a multiple of tf (or 1 + tf*m), at least one step."""
    n = seconds * fps
    if plus_one:
        return 1 + tf * max(0, int(round((n - 1) / tf)))
    return tf * max(1, int(round(n / tf)))


def _bridge_context(request: "GenerationRequest") -> tuple[int, int]:
    """(tail, head) latent frames of the window that bridges to given frames after (loop, connect). By
    default one each, so a short window has room to move between the two ends (docs/modes.md has the
    measurement); an explicit ``context`` is used on both sides as far as it fits."""
    if not request.context_given:
        return 1, 1
    k, window = request.context, request.window
    return max(1, min(k, window - 1 - k)), k


def _plan_text(pipe, request) -> Plan:
    n, k = request.sample.num_frames, request.context
    sched = lv.forward_schedule(n, request.window, k, pipe.geometry.temporal_factor)
    return Plan(lambda run: lv.stream_forward(run, sched, None, None, k), total=n, windows=len(sched))


@dataclasses.dataclass(frozen=True)
class TextToVideo(Mode):
    """Plain text-to-video of any length (windowed beyond the model's training window)."""

    name: ClassVar[str] = "text_to_video"

    def plan(self, pipe, request):
        return _plan_text(pipe, request)


@dataclasses.dataclass(frozen=True)
class TextToImage(Mode):
    """One frame (save it as .png)."""

    name: ClassVar[str] = "text_to_image"

    def frames_asked(self, num_frames, fps, geometry):
        return 1

    def plan(self, pipe, request):
        return _plan_text(pipe, request)


@dataclasses.dataclass(frozen=True)
class ImageToVideo(Mode):
    """Animate ``image`` (a path or (H, W, 3) uint8): it becomes latent frame 0, held fixed; the output's
    first frame is the image (its VAE round trip with ``match_seams=False``)."""

    image: Media = dataclasses.field(compare=False)
    name: ClassVar[str] = "image_to_video"
    size_source: ClassVar[str] = "image"

    def __post_init__(self):
        check_media(self.image, "ImageToVideo.image")

    def plan(self, pipe, request):
        s, k, tf = request.sample, request.context, pipe.geometry.temporal_factor
        img = load_image(self.image, s.width, s.height)
        n = s.num_frames
        if n < 1 + tf:
            raise UnsupportedSizeError(f"image-to-video needs at least {1 + tf} frames (the image and one step "
                                       f"of {tf}), got {n}")
        sched = lv.forward_schedule(n - 1, request.window, k, tf, head_frames=1)
        return Plan(lambda run: lv.stream_forward(run, sched, img, None, k, keep_first_context=True),
                    total=n, windows=len(sched), given=img[0])


@dataclasses.dataclass(frozen=True)
class Extend(Mode):
    """Continue ``video`` by ``seconds`` (forward: after its end; ``backward``: before its start). The output
    is the given video (fitted to the size) with the new frames attached; the given frames are kept as they are."""

    video: Media = dataclasses.field(compare=False)
    seconds: float = 2.0
    backward: bool = False
    name: ClassVar[str] = "extend"
    size_source: ClassVar[str] = "video"

    def __post_init__(self):
        check_media(self.video, "Extend.video")
        check_seconds(self.seconds, "Extend.seconds", MAX_SECONDS)

    def frames_asked(self, num_frames, fps, geometry):
        return 1  # the length is the video's plus this mode's seconds

    def plan(self, pipe, request):
        s, k, tf = request.sample, request.context, pipe.geometry.temporal_factor
        video = load_video(self.video, s.width, s.height, float(s.fps))
        if self.backward:
            n = _seconds_to_frames(self.seconds, float(s.fps), tf, plus_one=True)
            sched = lv.backward_schedule(n, request.window, max(1, min(k, len(video) // tf)), tf)
            return Plan(lambda run: lv.stream_backward(run, sched, video), total=n + len(video),
                        windows=len(sched), after=(video,), given=video[0])
        n = _seconds_to_frames(self.seconds, float(s.fps), tf, plus_one=False)
        sched = lv.forward_schedule(n, request.window, k, tf, head_frames=len(video))
        return Plan(lambda run: lv.stream_forward(run, sched, video, None, k), total=n + len(video),
                    windows=len(sched), before=(video,), given=video[-1])


@dataclasses.dataclass(frozen=True)
class Loop(Mode):
    """A seamless loop of ``seconds`` (None: the call's num_frames): the last window is conditioned on the
    video's own first frames, so the last frame flows into the first."""

    seconds: float | None = None
    name: ClassVar[str] = "loop"

    def __post_init__(self):
        check_seconds(self.seconds, "Loop.seconds", MAX_SECONDS, allow_none=True)

    def frames_asked(self, num_frames, fps, geometry):
        return num_frames if self.seconds is None else geometry.frames_for_seconds(self.seconds, fps)

    def plan(self, pipe, request):
        n, k, tf = request.sample.num_frames, request.context, pipe.geometry.temporal_factor
        k2, closing = _bridge_context(request)
        if n < 1 + tf:
            raise UnsupportedSizeError(f"a loop needs at least {1 + tf} frames, got {n}; ask for a longer loop")
        sched = lv.forward_schedule(n, request.window, k, tf, tail=k2, tail_from_start=True, closing_context=closing)
        return Plan(lambda run: lv.stream_forward(run, sched, None, None, k, tail_from_start=True), total=n,
                    windows=len(sched))


@dataclasses.dataclass(frozen=True)
class Connect(Mode):
    """A transition of ``seconds`` from the end of ``a`` to the start of ``b``; the output is a + transition + b."""

    a: Media = dataclasses.field(compare=False)
    b: Media = dataclasses.field(compare=False)
    seconds: float = 1.0
    name: ClassVar[str] = "connect"
    size_source: ClassVar[str] = "a"

    def __post_init__(self):
        check_media(self.a, "Connect.a")
        check_media(self.b, "Connect.b")
        check_seconds(self.seconds, "Connect.seconds", MAX_SECONDS)

    def frames_asked(self, num_frames, fps, geometry):
        return 1  # the length is a's, the transition's and b's

    def plan(self, pipe, request):
        s, k, tf = request.sample, request.context, pipe.geometry.temporal_factor
        a = load_video(self.a, s.width, s.height, float(s.fps))
        b = load_video(self.b, s.width, s.height, float(s.fps))
        n = _seconds_to_frames(self.seconds, float(s.fps), tf, plus_one=False)
        k2, closing = _bridge_context(request)
        k2 = max(1, min(k2, len(b) // tf))
        sched = lv.forward_schedule(n, request.window, k, tf, head_frames=len(a), tail=k2, closing_context=closing)
        return Plan(lambda run: lv.stream_forward(run, sched, a, b, k), total=len(a) + n + len(b),
                    windows=len(sched), before=(a,), after=(b,), given=a[-1])


@dataclasses.dataclass(frozen=True)
class Edit(Mode):
    """SDEdit ``video`` toward the prompt: its latents are noised to ``t = strength`` and denoised. 0 returns
    the input (through the VAE), 1 ignores it. Its prompt says what the video should become, so it is
    expanded on its own (not from the video's frames)."""

    video: Media = dataclasses.field(compare=False)
    strength: float = 0.6
    name: ClassVar[str] = "edit"
    size_source: ClassVar[str] = "video"

    def __post_init__(self):
        check_media(self.video, "Edit.video")
        s = self.strength
        if isinstance(s, bool) or not isinstance(s, (int, float)) or not 0.0 <= s <= 1.0:
            raise TenkuError(f"Edit.strength must be a number in [0, 1] (0 keeps the video, 1 ignores it), got {s!r}")

    def frames_asked(self, num_frames, fps, geometry):
        return 1  # the length is the video's

    def plan(self, pipe, request):
        s, k, tf = request.sample, request.context, pipe.geometry.temporal_factor
        video = load_video(self.video, s.width, s.height, float(s.fps))
        video = video[: 1 + tf * ((len(video) - 1) // tf)]  # whole latent frames
        windows = lv.edit_windows(pipe.geometry.latent_frames(len(video)), request.window, k)

        def make(run):
            return lv.stream_edit(run, pipe.encode_frames(video), request.window, k, float(self.strength))

        return Plan(make, total=len(video), windows=windows)


MODES = (TextToVideo, TextToImage, ImageToVideo, Extend, Loop, Connect, Edit)


def mode_names() -> dict[str, type]:
    """{name: class} of every mode (what data such as a job record names)."""
    return {m.name: m for m in MODES}

