"""The text-to-video pipeline: prompt -> text encoder -> flow sampler over the DiT (with CFG) -> VAE decode.

``TenkuPipeline.from_pretrained(folder)`` loads a pipeline folder (see :mod:`tenku.models.hub`);
``pipe(prompt, ...)`` returns a :class:`PipelineOutput`. Conditioning frames (image-to-video,
extension, loops, editing) enter through :meth:`TenkuPipeline._generate` as latents plus a per-frame
mask; the typed modes build those and call it.
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from tenku import __version__
from tenku.config import FlowConfig, SampleConfig, spatial_multiple_of
from tenku.errors import TenkuError, UnsupportedSizeError
from tenku.flow import SAMPLERS, cfg_denoiser, compute_shift, shifted_schedule, truncate_schedule
from tenku.pipeline.output import PipelineOutput

Cond = tuple[torch.Tensor, torch.Tensor]  # (emb (B, L, D), mask (B, L) bool)


def frame_size_problems(height: int, width: int, multiple: tuple[int, int]) -> list[str]:
    """What is wrong with a frame size for a model whose sizes are multiples of ``multiple`` (h, w)."""
    problems = []
    for what, v, m in (("height", height, multiple[0]), ("width", width, multiple[1])):
        if not isinstance(v, int) or v < m or v % m:
            near = _nearby(int(v), lambda x, m=m: x >= m and x % m == 0, m)
            problems.append(f"{what} {v} is not a positive multiple of {m}; valid nearby: {', '.join(map(str, near))}")
    return problems


def _nearby(value: int, valid: Callable[[int], bool], step: int, count: int = 2) -> list[int]:
    """Up to ``count`` valid values on each side of ``value`` (closest first)."""
    below = [v for v in range(value - 1, max(value - step * (count + 1), 0), -1) if valid(v)][:count]
    above = [v for v in range(value + 1, value + step * (count + 1) + 1) if valid(v)][:count]
    return sorted(below + above, key=lambda v: (abs(v - value), v))[: 2 * count]


def progress_enabled(progress: bool) -> bool:
    return bool(progress) and os.environ.get("TENKU_NO_PROGRESS", "") not in ("1", "true", "yes")


class TenkuPipeline:
    """VAE + DiT + text encoder + flow/sample configs. See the module docstring."""

    def __init__(
        self,
        vae: nn.Module,
        transformer: nn.Module,
        text_encoder: nn.Module,
        flow_config: FlowConfig | None = None,
        sample_config: SampleConfig | None = None,
        name: str | None = None,
    ):
        self.vae = vae.eval()
        self.transformer = transformer.eval()
        self.text_encoder = text_encoder.eval()
        self.flow_config = flow_config or FlowConfig()
        self.sample_config = sample_config or SampleConfig()
        self.name = name or "tenku"
        self.path: Path | None = None
        self.decode_chunk = 2  # latent frames per VAE decode chunk after the first: bounds decoder memory
        self.cache_text = True  # compute the DiT's text projections once per generation, not per step

    # ---- folders -----------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, path: str | Path | None = None, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
    ) -> "TenkuPipeline":
        """Load a pipeline folder; with no path (or ``"tenku-world-tiny"``), the model shipped with tenku.
        ``dtype`` (e.g. torch.bfloat16 on a GPU) casts the VAE and DiT; None keeps float32. A broken folder
        raises ModelFolderError."""
        from tenku.models.hub import load_pipeline_folder
        from tenku.pipeline import model_path

        path = model_path(path)
        comps, flow, sample, _ = load_pipeline_folder(path, device=device, dtype=None)
        if dtype is not None:
            comps["vae"].to(dtype)
            comps["transformer"].to(dtype)
        pipe = cls(comps["vae"], comps["transformer"], comps["text_encoder"], flow, sample, name=path.name)
        pipe.path = path.resolve()
        return pipe

    def save_pretrained(self, path: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write the pipeline folder (atomically renamed into place). ``dtype`` casts stored weights."""
        from tenku.models.hub import save_pipeline_folder

        comps = {"vae": self.vae, "transformer": self.transformer, "text_encoder": self.text_encoder}
        return save_pipeline_folder(path, comps, self.flow_config, self.sample_config, dtype=dtype)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> "TenkuPipeline":
        self.vae.to(device=device, dtype=dtype)
        self.transformer.to(device=device, dtype=dtype)
        self.text_encoder.to(device=device)
        return self

    def compile(self, **kwargs: Any) -> "TenkuPipeline":
        """Compile the DiT's blocks with ``torch.compile`` (see :func:`tenku.models.dit.compile_dit`); outputs
        match the eager model within float tolerance. Optional: the first step of each new size compiles."""
        from tenku.models.dit import compile_dit

        compile_dit(self.transformer, **kwargs)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    # ---- sizes -------------------------------------------------------------------------------
    @property
    def spatial_multiple(self) -> tuple[int, int]:
        """(height, width) must be multiples of these: VAE spatial factor x DiT patch size."""
        return spatial_multiple_of(self.vae.cfg, self.transformer.cfg)

    def is_valid_num_frames(self, n: int) -> bool:
        tf = self.vae.cfg.temporal_factor
        pt = self.transformer.cfg.patch_size[0]
        return n >= 1 and (n - 1) % tf == 0 and (1 + (n - 1) // tf) % pt == 0

    def nearest_num_frames(self, n: float) -> int:
        """The valid frame count closest to ``n`` (ties go to the longer clip)."""
        best = 1
        for cand in range(1, int(n) + 4 * self.vae.cfg.temporal_factor * self.transformer.cfg.patch_size[0] + 2):
            if self.is_valid_num_frames(cand) and abs(cand - n) <= abs(best - n):
                best = cand
        return best

    def check_size(self, num_frames: int, height: int, width: int) -> None:
        """Raise UnsupportedSizeError (listing valid nearby values) unless the model can make this size."""
        mh, mw = self.spatial_multiple
        tf = self.vae.cfg.temporal_factor
        problems = []
        if not isinstance(num_frames, int) or not self.is_valid_num_frames(num_frames):
            near = _nearby(int(num_frames), self.is_valid_num_frames, tf * self.transformer.cfg.patch_size[0])
            problems.append(f"{num_frames} frames is not a valid length (1 + {tf}*k frames); "
                            f"valid nearby: {', '.join(map(str, near))}")
        problems += frame_size_problems(height, width, (mh, mw))
        if problems:
            raise UnsupportedSizeError("; ".join(problems))

    def latent_shape(self, num_frames: int, height: int, width: int) -> tuple[int, int, int, int]:
        sf, tf = self.vae.cfg.spatial_factor, self.vae.cfg.temporal_factor
        return (self.vae.cfg.latent_channels, 1 + (num_frames - 1) // tf, height // sf, width // sf)

    def num_tokens(self, latent_shape: tuple[int, ...]) -> int:
        _, t, h, w = latent_shape
        pt, ph, pw = self.transformer.cfg.patch_size
        return (t // pt) * (h // ph) * (w // pw)

    # ---- steps -------------------------------------------------------------------------------
    @torch.no_grad()
    def encode_prompt(self, prompt: str, negative_prompt: str | None, guidance: float) -> tuple[Cond, Cond | None]:
        """(cond, uncond); uncond is None when guidance == 1 (no unconditional pass)."""
        if guidance == 1.0:
            emb, mask = self.text_encoder.encode([prompt])
            return (emb, mask), None
        emb, mask = self.text_encoder.encode([prompt, negative_prompt or ""])  # (2, L, D), (2, L)
        return (emb[:1], mask[:1]), (emb[1:], mask[1:])

    def _model(self, cond_mask: torch.Tensor | None) -> Callable[[torch.Tensor, torch.Tensor, Cond], torch.Tensor]:
        """model(x (B,C,T,h,w), t (B,), (emb, mask)) -> v (B,C,T,h,w), through the packed DiT."""
        p = next(self.transformer.parameters())
        cache: dict[str, Any] = {}  # the DiT's text context, computed on the first step, reused after

        def model(x: torch.Tensor, t: torch.Tensor, cond: Cond) -> torch.Tensor:
            emb, mask = cond
            clean = None
            if cond_mask is not None:
                clean = [cond_mask[i % cond_mask.shape[0]] for i in range(x.shape[0])]
            xs = list(x.to(p.dtype).unbind(0))  # B x (C, T, h, w); t stays float32 (sinusoids need it)
            if cache.get("cond") is not cond:  # the sampler passes the same conditioning every step
                tc = None
                if self.cache_text and hasattr(self.transformer, "encode_text"):
                    tc = self.transformer.encode_text(emb.to(device=p.device, dtype=p.dtype), mask.to(p.device))
                cache.update(cond=cond, tc=tc)
            tc = cache["tc"]
            if tc is None:
                v = self.transformer(xs, t.float(), emb.to(device=p.device, dtype=p.dtype), mask.to(p.device),
                                     clean=clean)
            else:
                v = self.transformer(xs, t.float(), tc.text, tc.text_mask, clean=clean, text_context=tc)
            return torch.stack(v).to(x.dtype)  # (B, C, T, h, w)

        return model

    @torch.no_grad()
    def _generate(
        self,
        cond: Cond,
        uncond: Cond | None,
        noise: torch.Tensor,
        num_steps: int,
        guidance: float,
        sampler: str = "euler",
        callback: Callable[[dict], None] | None = None,
        progress: bool = True,
        cond_latents: torch.Tensor | None = None,
        cond_mask: torch.Tensor | None = None,
        init_latents: torch.Tensor | None = None,
        strength: float | None = None,
        guidance_interval: tuple[float, float] | None = None,
    ) -> torch.Tensor:
        """Sample latents (B, C, T', h, w) from ``noise`` of that shape. ``guidance_interval`` (lo, hi):
        classifier-free guidance only at timesteps lo <= t <= hi, the conditional model alone elsewhere.

        cond_latents + cond_mask ((B, T') or (T',) bool): latent frames held fixed (and shown to the DiT
        as clean). init_latents + strength in (0, 1]: start from these latents noised to t = strength
        (editing); strength 1 is plain generation."""
        if sampler not in SAMPLERS:
            raise TenkuError(f"unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}")
        device = self.device
        x = noise.to(device=device, dtype=torch.float32)
        shift = compute_shift(self.num_tokens(tuple(x.shape[1:])), self.flow_config)
        ts = shifted_schedule(num_steps, shift)
        if init_latents is not None:
            s = 1.0 if strength is None else float(strength)
            if not 0.0 < s <= 1.0:
                raise TenkuError(f"strength must be in (0, 1], got {strength}")
            ts = truncate_schedule(ts, s)
            t0 = float(ts[0])
            x = (1 - t0) * init_latents.to(x) + t0 * x
        if cond_mask is not None:
            if cond_latents is None:
                raise TenkuError("cond_mask needs cond_latents (the latent frames to hold fixed)")
            cond_mask = cond_mask.to(device=device, dtype=torch.bool)
            if cond_mask.ndim == 1:
                cond_mask = cond_mask[None].expand(x.shape[0], -1)
            cond_latents = cond_latents.to(x)
        denoise = cfg_denoiser(self._model(cond_mask), cond, uncond, guidance)
        if guidance_interval is not None and uncond is not None:
            lo, hi = (float(v) for v in guidance_interval)
            guided, plain = denoise, cfg_denoiser(self._model(cond_mask), cond, None, 1.0)

            def denoise(x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
                return guided(x, t) if lo <= float(t[0]) <= hi else plain(x, t)
        bar = None
        if progress_enabled(progress):
            from tqdm.auto import tqdm

            bar = tqdm(total=len(ts) - 1, desc="denoising", unit="step", leave=False)

        def on_step(d: dict) -> None:
            if bar is not None:
                bar.update(1)
            if callback is not None:
                callback(d)

        try:
            ts = ts.to(device=device, dtype=torch.float32)  # float64 is not available on every device
            return SAMPLERS[sampler](denoise, x, ts, callback=on_step, clean_mask=cond_mask, x_clean=cond_latents)
        finally:
            if bar is not None:
                bar.close()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Latents (1, C, T', h, w) -> frames (T, H, W, 3) uint8, decoded in time chunks."""
        from tenku.pipeline.longvideo import decode_frames

        return np.ascontiguousarray(np.concatenate(list(decode_frames(self, latents)), axis=0))

    # ---- the call ----------------------------------------------------------------------------
    def resolve(self, **kwargs: Any) -> dict[str, Any]:
        """Fill unset arguments from the sample config and check them; returns the resolved values."""
        sc = self.sample_config
        r = {k: (sc_v if kwargs.get(k) is None else kwargs[k]) for k, sc_v in (
            ("num_frames", sc.num_frames), ("height", sc.height), ("width", sc.width), ("fps", sc.fps),
            ("num_steps", sc.num_steps), ("guidance", sc.guidance), ("sampler", sc.sampler))}
        self.check_size(r["num_frames"], r["height"], r["width"])
        if not r["fps"] or float(r["fps"]) <= 0:
            raise UnsupportedSizeError(f"fps must be positive, got {r['fps']}")
        if not isinstance(r["num_steps"], int) or r["num_steps"] < 1:
            raise TenkuError(f"num_steps must be a positive integer, got {r['num_steps']}")
        if float(r["guidance"]) < 0:
            raise TenkuError(f"guidance must be >= 0 (1 = no guidance), got {r['guidance']}")
        if r["sampler"] not in SAMPLERS:
            raise TenkuError(f"unknown sampler {r['sampler']!r}; choose one of {sorted(SAMPLERS)}")
        return r

    @staticmethod
    def make_generator(seed: int | None, generator: torch.Generator | None) -> tuple[torch.Generator, int]:
        """(CPU generator, seed): the given generator, else one seeded by ``seed`` (random when None)."""
        if generator is not None:
            return generator, int(seed if seed is not None else generator.initial_seed())
        if seed is None:
            seed = random.SystemRandom().randrange(2**31)
        if not isinstance(seed, int) or isinstance(seed, bool) or not 0 <= seed < 2**63:
            raise TenkuError(f"seed must be an integer in [0, 2**63), got {seed!r}")
        return torch.Generator(device="cpu").manual_seed(seed), seed

    def __call__(
        self,
        prompt: str,
        negative_prompt: str | None = None,
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
        fps: float | None = None,
        num_steps: int | None = None,
        guidance: float | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        callback: Callable[[dict], None] | None = None,
        progress: bool = True,
        sampler: str | None = None,
        latents: torch.Tensor | None = None,
        mode: Any = None,
        expand: Any = True,
        window: int | None = None,
        context: int | None = None,
        guidance_interval: tuple[float, float] | None = None,
        match_seams: bool = True,
    ) -> PipelineOutput:
        """Generate one clip. Unset arguments come from ``sample_config``. ``num_frames = 1`` is an image.
        Same seed (or an equally seeded ``generator``), same frames: noise is drawn on the CPU.
        ``latents``: explicit initial noise (1, C, T', h, w) instead of drawing it (one window, text only).
        ``mode``: a typed mode from :mod:`tenku.pipeline.modes` (ImageToVideo, Extend, Loop, Connect, Edit,
        TextToImage; default TextToVideo). Clips longer than the model's window (``window`` latent frames,
        default its training clip) are made window by window, each conditioned on ``context`` latent
        frames of the one before. ``expand``: prompt expansion before text encoding (True: built-in,
        False: off, or an expander from :mod:`tenku.pipeline.prompt`); metadata keeps both prompts.
        ``negative_prompt`` is the unconditional side of guidance; ``guidance_interval`` (lo, hi) applies
        guidance only for timesteps in [lo, hi] (the conditional model alone outside, one pass).
        ``match_seams``: new frames are corrected where they meet given frames or the previous window
        (the VAE's round-trip colour shift and detail; see :func:`tenku.pipeline.longvideo.match_seams`)."""
        if latents is not None:
            return self._run_latents(prompt, negative_prompt, latents, mode, expand, seed, generator,
                                     num_frames=num_frames, height=height, width=width, fps=fps,
                                     num_steps=num_steps, guidance=guidance, sampler=sampler,
                                     callback=callback, progress=progress)
        return self.stream(prompt, negative_prompt, mode=mode, num_frames=num_frames, height=height, width=width,
                           fps=fps, num_steps=num_steps, guidance=guidance, sampler=sampler, seed=seed,
                           generator=generator, callback=callback, progress=progress, expand=expand,
                           window=window, context=context, guidance_interval=guidance_interval,
                           match_seams=match_seams).collect()

    def stream(self, prompt: str, negative_prompt: str | None = None, mode: Any = None, **kwargs: Any):
        """Like calling the pipeline, but returns a :class:`tenku.pipeline.modes.GenerationStream` whose
        ``frames`` yields pieces as each window is decoded (write them with
        :func:`tenku.pipeline.output.save_output_stream`: memory stays flat for any length)."""
        from tenku.pipeline.modes import generate

        return generate(self, prompt, mode, negative_prompt=negative_prompt, **kwargs)

    def _run_latents(self, prompt, negative_prompt, latents, mode, expand, seed, generator, **sizes):
        from tenku.pipeline.prompt import expand_prompt

        if mode is not None:
            raise TenkuError("latents= (explicit initial noise) works with plain text-to-video only; "
                             "leave mode unset")
        if not isinstance(prompt, str):
            raise TenkuError(f"prompt must be a string, got {type(prompt).__name__}")
        gen, seed = self.make_generator(seed, generator)
        text, source = expand_prompt(prompt, seed, expand)
        out = self._run(text, negative_prompt, seed=seed, generator=gen, latents=latents,
                        extra_metadata={"prompt": prompt, "expanded_prompt": text, "expander": source,
                                        "mode": "text_to_video"}, **sizes)
        return out

    def _run(
        self,
        prompt: str,
        negative_prompt: str | None = None,
        *,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        callback: Callable[[dict], None] | None = None,
        progress: bool = True,
        latents: torch.Tensor | None = None,
        cond_latents: torch.Tensor | None = None,
        cond_mask: torch.Tensor | None = None,
        init_latents: torch.Tensor | None = None,
        strength: float | None = None,
        extra_metadata: dict[str, Any] | None = None,
        **sizes: Any,
    ) -> PipelineOutput:
        """The whole call, plus conditioning for generation modes: ``cond_latents`` (1, C, T', h, w) with
        ``cond_mask`` (T',) bool (frames held fixed), or ``init_latents`` + ``strength`` (editing).
        ``sizes``: num_frames, height, width, fps, num_steps, guidance, sampler (None = default)."""
        if not isinstance(prompt, str):
            raise TenkuError(f"prompt must be a string, got {type(prompt).__name__}")
        from tenku.safety.moderation import ensure_allowed

        ensure_allowed(prompt)  # refuses (ModerationError, naming the category) before any generation
        r = self.resolve(**sizes)
        start = time.perf_counter()
        gen, seed = self.make_generator(seed, generator)
        shape = (1, *self.latent_shape(r["num_frames"], r["height"], r["width"]))
        for what, z in (("latents", latents), ("cond_latents", cond_latents), ("init_latents", init_latents)):
            if z is not None and tuple(z.shape) != shape:
                raise TenkuError(f"{what} must have shape {shape} for {r['num_frames']} frames at "
                                 f"{r['width']}x{r['height']}, got {tuple(z.shape)}")
        if latents is not None:
            noise = latents.float()
        else:
            noise = torch.randn(shape, generator=gen, device=gen.device, dtype=torch.float32)
        with torch.no_grad():
            cond, uncond = self.encode_prompt(prompt, negative_prompt, float(r["guidance"]))
            z = self._generate(cond, uncond, noise, r["num_steps"], float(r["guidance"]), r["sampler"],
                               callback=callback, progress=progress, cond_latents=cond_latents,
                               cond_mask=cond_mask, init_latents=init_latents, strength=strength)
            frames = self.decode(z)
        meta = self.metadata(prompt, negative_prompt, seed, r)
        meta.update(extra_metadata or {})
        meta["seconds_taken"] = round(time.perf_counter() - start, 3)
        return PipelineOutput(frames=frames, fps=float(r["fps"]), metadata=meta, latents=z.cpu())

    @torch.no_grad()
    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        """Frames (T, H, W, 3) uint8 (T = 1 + tf*k, sizes as for generation) -> latents (1, C, T', h, w)."""
        p = next(self.vae.parameters())
        video = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)[None]  # (1, 3, T, H, W)
        video = video.to(device=p.device, dtype=p.dtype) / 127.5 - 1.0
        return self.vae.encode(video, chunk_size=self.decode_chunk).float()

    def metadata(self, prompt: str, negative_prompt: str | None, seed: int, r: dict[str, Any]) -> dict[str, Any]:
        return {
            "prompt": prompt, "negative_prompt": negative_prompt, "seed": seed, "num_steps": r["num_steps"],
            "guidance": float(r["guidance"]), "sampler": r["sampler"], "width": r["width"], "height": r["height"],
            "num_frames": r["num_frames"], "fps": float(r["fps"]), "duration": r["num_frames"] / float(r["fps"]),
            "model": self.name, "model_path": str(self.path) if self.path else None, "tenku_version": __version__,
        }
