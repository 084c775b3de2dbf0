"""The generation spine every backend shares: :class:`Backend`.

A backend is one class that knows its model; everything above it is here, the same for all of them:

    request = build_request(...)        check the arguments against the model (tenku.pipeline.request)
    safety.moderate(prompt)             refuse before any work (tenku.safety.policy)
    plan = self.plan(request)           given frames before/after and the windows (the mode's plan, or the
                                        backend's own for the modes it serves)
    text = expand(prompt)               the caption style the model was trained on (tenku.pipeline.prompt)
    run = self.runner(...)              the backend's window runner: text conditioning, noise, its model
    frames: plan.before, plan.make(run), plan.after  -> GenerationStream -> MarkedWriter (tenku.safety.writer)

Backends: :class:`tenku.pipeline.pipeline.TenkuPipeline` (tenku's own VAE + DiT + text encoder) and
:class:`tenku.pipeline.diffusers_backend.DiffusersPipeline` (a diffusers pipeline folder). A backend gives
``geometry``, ``sample_config``, ``safety``, ``name``, ``path``, ``plan(request)`` and ``runner(...)``;
:func:`tenku.pipeline.loading.load_pipeline` picks one from the folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch

from tenku import __version__
from tenku.pipeline.inputs import mode_params
from tenku.pipeline.modes import TextToVideo
from tenku.pipeline.output import GenerationStream, PipelineOutput
from tenku.pipeline.prompt import expand_prompt
from tenku.pipeline.request import GenerationRequest, Plan, build_request, check_limits


class Backend:
    """The spine (see the module docstring). Subclasses set ``sample_config``, ``safety``, ``name``, ``path``
    and give ``geometry`` and :meth:`runner`; :meth:`plan` defaults to the mode's own plan."""

    backend = "tenku"  # what metadata records as the backend

    def __call__(self, prompt: str, negative_prompt: str | None = None, **kwargs: Any) -> PipelineOutput:
        """Generate one clip and return it whole; the arguments are those of :meth:`stream`."""
        return self.stream(prompt, negative_prompt, **kwargs).collect()

    def stream(
        self,
        prompt: str,
        negative_prompt: str | None = None,
        mode: Any = None,
        *,
        seconds: float | None = None,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        fps: float | None = None,
        num_steps: int | None = None,
        guidance: float | None = None,
        sampler: str | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        callback: Callable[[dict], None] | None = None,
        progress: bool = True,
        latents: torch.Tensor | None = None,
        expand: Any = True,
        window: int | None = None,
        context: int | None = None,
        guidance_interval: tuple[float, float] | None = None,
        match_seams: bool = True,
        on_window: Callable[[dict], None] | None = None,
    ) -> GenerationStream:
        """Plan one generation and return its :class:`GenerationStream` (nothing is sampled until its frames are
        read; write them with :func:`tenku.pipeline.output.save_output_stream`: memory stays flat for any length).

        Unset arguments come from ``sample_config``. ``seconds`` (or ``num_frames``; 1 is an image): the clip's
        length, rounded to the nearest valid frame count. Same seed (or an equally seeded ``generator``), same
        frames: noise is drawn on the CPU. ``latents``: explicit initial noise (1, C, T', h, w) instead of drawing
        it (text-to-video, one window). ``mode``: a typed mode from :mod:`tenku.pipeline.modes` (ImageToVideo,
        Extend, Loop, Connect, Edit, TextToImage; default TextToVideo). Clips longer than the model's window
        (``window`` latent frames, default its training clip) are made window by window, each conditioned on
        ``context`` latent frames of the one before. ``expand``: prompt expansion before text encoding (True:
        the expander the model folder names, False: off, or an expander from :mod:`tenku.pipeline.prompt`);
        metadata keeps both prompts. ``negative_prompt`` is the unconditional side of guidance;
        ``guidance_interval`` (lo, hi) applies guidance only for timesteps in [lo, hi] (the conditional model
        alone outside, one pass). ``match_seams``: new frames are corrected where they meet given frames or
        the previous window (see :func:`tenku.pipeline.longvideo.match_seams`). ``callback`` gets a dict per
        sampler step; ``on_window`` one per window (its latents and conditioning)."""
        if generator is not None and seed is None:
            seed = int(generator.initial_seed())
        request = self.request(prompt, mode, negative_prompt=negative_prompt, seconds=seconds, num_frames=num_frames,
                               height=height, width=width, fps=fps, num_steps=num_steps, guidance=guidance,
                               sampler=sampler, seed=seed, seed_from_generator=generator is not None, expand=expand,
                               window=window, context=context, guidance_interval=guidance_interval,
                               match_seams=match_seams, latents=latents)
        gen = generator if generator is not None else torch.Generator(device="cpu").manual_seed(request.seed)
        self.safety.moderate(request.prompt)  # refuses (ModerationError, naming the category) before any work
        self.safety.moderate(request.negative_prompt, "negative prompt")  # it reaches the model too
        plan = self.plan(request)
        text, expander = self.expand(request, plan)
        if text != request.prompt:
            self.safety.moderate(text, "expanded prompt")  # an external enhancer's text passes the same check
        s = request.sample
        check_limits(self, plan.total, s.height, s.width, float(s.fps))
        meta = self.metadata(request, plan, text, expander)
        state: dict[str, Any] = {}
        frames = self._frames(request, plan, text, gen, meta, state, callback, progress, on_window)
        return GenerationStream(frames=frames, num_frames=plan.total, fps=float(s.fps), width=s.width,
                                height=s.height, metadata=meta, state=state, safety=self.safety)

    def request(self, prompt: str, mode: Any = None, **kwargs: Any) -> GenerationRequest:
        """The checked :class:`GenerationRequest` a call with these arguments makes (see :meth:`stream`)."""
        return build_request(self, prompt, TextToVideo() if mode is None else mode, **kwargs)

    def plan(self, request: GenerationRequest) -> Plan:
        """How the request's mode makes its frames with this backend (default: the mode's own plan)."""
        return request.mode.plan(self, request)

    def runner(self, request: GenerationRequest, plan: Plan, text: str, generator: torch.Generator, *,
               callback=None, progress: bool = True, on_window=None):
        """What ``plan.make`` runs on: an object with ``close()`` and ``last`` (the last window's latents)."""
        raise NotImplementedError

    def expand(self, request: GenerationRequest, plan: Plan) -> tuple[str, str | None]:
        """(text to encode, which expander made it): the request's ``expand`` (True: the model folder's
        expander), describing the frame the new ones continue from when frames are given."""
        return expand_prompt(request.prompt, request.seed, request.expand, frames=plan.given,
                             default=self.sample_config.expander)

    def _frames(self, request: GenerationRequest, plan: Plan, text: str, gen: torch.Generator, meta: dict,
                state: dict, callback, progress: bool, on_window) -> Iterator[np.ndarray]:
        """The stream's frames: the runner (text encoded once), then the given frames before, the windows, those
        after."""
        start = time.perf_counter()
        with torch.no_grad():
            run = self.runner(request, plan, text, gen, callback=callback, progress=progress, on_window=on_window)
            try:
                yield from plan.before
                yield from plan.make(run)
            finally:
                run.close()
            yield from plan.after
            state["latents"] = run.last  # the last window's latents
        meta["seconds_taken"] = round(time.perf_counter() - start, 3)

    def metadata(self, request: GenerationRequest, plan: Plan | None = None, text: str | None = None,
                 expander: str | None = None) -> dict[str, Any]:
        """What a generation records (and the C2PA manifest carries): the request, the model and the plan."""
        s = request.sample
        n = plan.total if plan is not None else s.num_frames
        meta = {
            "prompt": request.prompt, "negative_prompt": request.negative_prompt, "seed": request.seed,
            "num_steps": s.num_steps, "guidance": float(s.guidance), "sampler": s.sampler, "width": s.width,
            "height": s.height, "num_frames": n, "fps": float(s.fps), "duration": n / float(s.fps),
            "model": self.name, "model_path": str(self.path) if self.path else None, "tenku_version": __version__,
        }
        meta.update({"mode": request.mode.name, "mode_params": mode_params(request.mode),
                     "expanded_prompt": request.prompt if text is None else text, "expander": expander,
                     "windows": plan.windows if plan is not None else 1, "window_latent_frames": request.window,
                     "context_latent_frames": request.context, "guidance_interval": request.guidance_interval,
                     "match_seams": request.match_seams})
        if self.backend != "tenku":
            meta["backend"] = self.backend
        return meta
