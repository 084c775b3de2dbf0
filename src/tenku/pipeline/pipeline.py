"""The text-to-video pipeline: one generation spine for every mode.

``TenkuPipeline.from_pretrained(folder)`` loads a pipeline folder (see :mod:`tenku.models.hub`);
``pipe(prompt, ...)`` returns a :class:`PipelineOutput` and ``pipe.stream(prompt, ...)`` a
:class:`GenerationStream`. It is tenku's own backend: the spine (:class:`tenku.pipeline.backend.Backend`)
checks, moderates, plans and expands; this class encodes, denoises and decodes. A call reads top to bottom:

    request = build_request(...)        check the arguments against the model (tenku.pipeline.request)
    safety.moderate(prompt)             refuse before any work (tenku.safety.policy)
    plan = request.mode.plan(...)       given frames before/after and the window schedule (tenku.pipeline.modes)
    text = expand(prompt)               the caption style the model was trained on (tenku.pipeline.prompt)
    encode_prompt(text)                 text conditioning, once
    windows: denoise -> decode          tenku.pipeline.longvideo, one window of latents at a time
    output                              frames in time order; save them with tenku.pipeline.output
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from tenku.config import FlowConfig, SampleConfig
from tenku.errors import TenkuError
from tenku.flow import SAMPLERS, cfg_denoiser, compute_shift, shifted_schedule, truncate_schedule
from tenku.geometry import Geometry
from tenku.models.dit import compile_dit
from tenku.models.folder import model_path
from tenku.models.hub import load_pipeline_folder, save_pipeline_folder
from tenku.pipeline import longvideo as lv
from tenku.pipeline.backend import Backend
from tenku.pipeline.request import GenerationRequest, Plan
from tenku.progress import progress_bar, progress_enabled
from tenku.safety.policy import Safety

Cond = tuple[torch.Tensor, torch.Tensor]  # (emb (B, L, D), mask (B, L) bool)


class TenkuPipeline(Backend):
    """VAE + DiT + text encoder + flow/sample configs. See the module docstring."""

    def __init__(
        self,
        vae: nn.Module,
        transformer: nn.Module,
        text_encoder: nn.Module,
        flow_config: FlowConfig | None = None,
        sample_config: SampleConfig | None = None,
        name: str | None = None,
        safety: Safety | None = None,
    ):
        self.vae = vae.eval()
        self.transformer = transformer.eval()
        self.text_encoder = text_encoder.eval()
        self.flow_config = flow_config or FlowConfig()
        self.sample_config = sample_config or SampleConfig()
        self.name = name or "tenku"
        self.safety = safety or Safety()  # moderation, frame checks, watermark and C2PA (built at the edges)
        self.path: Path | None = None
        self.decode_chunk = 2  # latent frames per VAE decode chunk after the first: bounds decoder memory
        self.cache_text = True  # compute the DiT's text projections once per generation, not per step

    # ---- folders -----------------------------------------------------------------------------
    @classmethod
    def from_pretrained(
        cls, path: str | Path | None = None, device: torch.device | str = "cpu", dtype: torch.dtype | None = None,
        safety: Safety | None = None,
    ) -> "TenkuPipeline":
        """Load a pipeline folder; with no path (or ``"tenku-world-tiny"``), the model shipped with tenku.
        ``dtype`` (e.g. torch.bfloat16 on a GPU) casts the VAE and DiT; None keeps float32. ``safety``: the
        policy its generations follow (default: :class:`tenku.safety.policy.Safety`'s defaults). A broken
        folder raises ModelFolderError."""
        path = model_path(path)
        comps, flow, sample, _ = load_pipeline_folder(path, device=device, dtype=None)
        if dtype is not None:
            comps["vae"].to(dtype)
            comps["transformer"].to(dtype)
        pipe = cls(comps["vae"], comps["transformer"], comps["text_encoder"], flow, sample, name=path.name,
                   safety=safety)
        pipe.path = path.resolve()
        return pipe

    def save_pretrained(self, path: str | Path, dtype: torch.dtype | None = None) -> Path:
        """Write the pipeline folder (atomically renamed into place). ``dtype`` casts stored weights."""
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
        compile_dit(self.transformer, **kwargs)
        return self

    @property
    def device(self) -> torch.device:
        return next(self.transformer.parameters()).device

    # ---- sizes: the model's geometry (tenku.geometry) -----------------------------------------
    @property
    def geometry(self) -> Geometry:
        """Valid frame counts and sizes, latent shapes and token counts of this model."""
        return Geometry.of(self.vae.cfg, self.transformer.cfg)

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
    def denoise(
        self,
        cond: Cond,
        uncond: Cond | None,
        noise: torch.Tensor,
        sample: SampleConfig | None = None,
        callback: Callable[[dict], None] | None = None,
        progress: bool = True,
        cond_latents: torch.Tensor | None = None,
        cond_mask: torch.Tensor | None = None,
        init_latents: torch.Tensor | None = None,
        strength: float | None = None,
        guidance_interval: tuple[float, float] | None = None,
    ) -> torch.Tensor:
        """Sample latents (B, C, T', h, w) from ``noise`` of that shape with ``sample``'s steps, guidance and
        sampler (default: the model's sample config). ``guidance_interval`` (lo, hi):
        classifier-free guidance only at timesteps lo <= t <= hi, the conditional model alone elsewhere.

        cond_latents + cond_mask ((B, T') or (T',) bool): latent frames held fixed (and shown to the DiT
        as clean). init_latents + strength in (0, 1]: start from these latents noised to t = strength
        (editing); strength 1 is plain generation."""
        sample = sample or self.sample_config
        sampler, num_steps, guidance = sample.sampler, sample.num_steps, float(sample.guidance)
        if sampler not in SAMPLERS:
            raise TenkuError(f"unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}")
        device = self.device
        x = noise.to(device=device, dtype=torch.float32)
        shift = compute_shift(self.geometry.num_tokens(tuple(x.shape[1:])), self.flow_config)
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
        bar = progress_bar(progress, total=len(ts) - 1, desc="denoising", unit="step", leave=False) \
            if progress_enabled(progress) else None

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
        return np.ascontiguousarray(np.concatenate(list(lv.decode_frames(self, latents)), axis=0))

    # ---- the spine's hook: a window runner over this model (tenku.pipeline.backend runs the rest) -----------
    def runner(self, request: GenerationRequest, plan: Plan, text: str, generator: torch.Generator, *,
               callback=None, progress: bool = True, on_window=None) -> lv.WindowRunner:
        """Encode the text once and return the window runner the plan's windows are sampled with."""
        cond, uncond = self.encode_prompt(text, request.negative_prompt, float(request.sample.guidance))
        return lv.WindowRunner(self, cond, uncond, request, generator, plan.windows, callback=callback,
                               progress=progress, on_window=on_window)

    @torch.no_grad()
    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        """Frames (T, H, W, 3) uint8 (T = 1 + tf*k, sizes as for generation) -> latents (1, C, T', h, w)."""
        p = next(self.vae.parameters())
        video = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)[None]  # (1, 3, T, H, W)
        video = video.to(device=p.device, dtype=p.dtype) / 127.5 - 1.0
        return self.vae.encode(video, chunk_size=self.decode_chunk).float()
