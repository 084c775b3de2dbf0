"""The diffusers backend: a diffusers pipeline folder (Wan, LTX-Video, CogVideoX, HunyuanVideo) behind tenku's spine.

    pipe = DiffusersPipeline.from_pretrained("Wan2.1-T2V-1.3B-Diffusers", device="cuda")
    pipe("a red fox runs through snow", seconds=5, seed=1)        # a PipelineOutput, like TenkuPipeline's

Everything above the model is the spine's (:class:`tenku.pipeline.backend.Backend`): request checks, moderation,
prompt expansion, progress, metadata, and the marked writer (watermark, C2PA) that saves the frames. This
class plans the modes its pipeline class serves (the capability table, :data:`tenku.models.diffusers_folder.KINDS`)
and runs each window as one call of the diffusers pipeline with the request's seed, steps and guidance; tenku
adds nothing to the frames before they are marked. Other modes are refused, naming a model that serves them.

Frames are conditioned the way each class can: ``image=`` (the last frame made before, for image-to-video,
extension and long videos), ``last_image=`` (Wan's first-last-frame: connect), LTX's conditions (frames at
an index), or the companion video-to-video class built from the same components (edit).
"""

from __future__ import annotations

import contextlib
import dataclasses
import inspect
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tenku.errors import ModelFolderError, TenkuError, TenkuWarning, UnsupportedSizeError
from tenku.geometry import Geometry
from tenku.models import diffusers_folder as df
from tenku.pipeline.backend import Backend
from tenku.pipeline.inputs import load_image, load_video
from tenku.pipeline.modes import _seconds_to_frames
from tenku.pipeline.request import MAX_SIDE_OPEN, GenerationRequest, Plan
from tenku.progress import progress_enabled
from tenku.safety.policy import Safety

DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


class UnsupportedModeError(TenkuError):
    """This model folder does not serve the asked mode (the message names one that does)."""


def import_diffusers():
    """The diffusers module, or a TenkuError saying how to install it."""
    try:
        import diffusers
    except ImportError:
        raise TenkuError("this model folder is a diffusers pipeline; install the diffusers extra: "
                         "pip install 'tenku[diffusers]'") from None
    return diffusers


@contextlib.contextmanager
def quiet(bars: bool = False):
    """diffusers' and transformers' advice (log warnings) off, and with ``bars`` their loading bars, for the
    duration (errors still raise)."""
    import diffusers.utils.logging as dlog
    import transformers.utils.logging as tlog

    levels = dlog.get_verbosity(), tlog.get_verbosity()
    dlog.set_verbosity_error(), tlog.set_verbosity_error()
    if bars:
        dlog.disable_progress_bar(), tlog.disable_progress_bar()
    try:
        yield
    finally:
        dlog.set_verbosity(levels[0]), tlog.set_verbosity(levels[1])
        if bars:
            dlog.enable_progress_bar(), tlog.enable_progress_bar()


def to_uint8(frames: Any) -> np.ndarray:
    """A pipeline's ``output_type="np"`` video (T, H, W, 3) floats in [0, 1] -> uint8, rounded as diffusers
    rounds its own PIL output."""
    return np.clip(np.round(np.asarray(frames, dtype=np.float32) * 255.0), 0, 255).astype(np.uint8)


def _pil(frame: np.ndarray):
    from PIL import Image

    return Image.fromarray(np.ascontiguousarray(frame))


def cache_config(options: df.DiffusersOptions, num_steps: int):
    """The diffusers cache-hook config ``options.cache`` names (None without one), for ``num_steps`` steps."""
    if options.cache is None:
        return None
    d = import_diffusers()
    t = {} if options.cache_threshold is None else {"threshold": float(options.cache_threshold)}
    if options.cache == "first-block":
        return d.FirstBlockCacheConfig(**t)
    if options.cache == "mag":  # without measured ratios MagCache calibrates (skips nothing) and logs them
        return d.MagCacheConfig(num_inference_steps=num_steps, calibrate=True, **t)
    return d.TaylorSeerCacheConfig(taylor_factors_dtype=torch.float32)


class DiffusersPipeline(Backend):
    """A loaded diffusers pipeline plus what tenku knows of its class (see the module docstring)."""

    backend = "diffusers"
    max_side = MAX_SIDE_OPEN  # the published models' sizes (1280x720, 1360x768) are above tenku's own limit

    def __init__(self, pipe: Any, kind: df.DiffusersKind, geometry: Geometry, sample_config, *,
                 options: df.DiffusersOptions | None = None, name: str | None = None, safety: Safety | None = None,
                 path: Path | None = None, device: str = "cpu"):
        self.pipe, self.kind, self._geometry, self.sample_config = pipe, kind, geometry, sample_config
        self.options = options or df.DiffusersOptions()
        self.name = name or kind.class_name
        self.safety = safety or Safety()
        self.path = path
        self.exec_device = str(device)
        self.modes = kind.modes if path is None else df.folder_modes(path, kind)  # what this folder serves
        self._companions: dict[str, Any] = {}
        self._cache_steps: int | None = None

    # ---- loading -----------------------------------------------------------------------------
    @classmethod
    def from_pretrained(cls, path: str | Path, device: str = "cpu", dtype: torch.dtype | str | None = None,
                        safety: Safety | None = None, options: df.DiffusersOptions | None = None) -> "DiffusersPipeline":
        """Load a diffusers folder (nothing is downloaded). ``options`` (flags) go on top of the folder's
        ``tenku.json``; ``dtype`` (a torch dtype or "bf16"/"fp16"/"fp32") on top of both. A missing or partial
        folder, a class tenku does not run or weights that do not load raise ModelFolderError naming what to fix."""
        path = Path(path)
        index = df.read_index(path)
        kind = df.pipeline_kind(path, index)
        if kind is None:
            raise ModelFolderError(f"{path} is a tenku folder; load it with TenkuPipeline.from_pretrained")
        problems = df.folder_problems(path, index)
        if problems:
            raise ModelFolderError(f"{path} is not a complete {kind.class_name} folder: " + "; ".join(problems)
                                   + f". Download it again (e.g. `huggingface-cli download {kind.example} "
                                   f"--local-dir {path}`)")
        opts = df.read_options(path).merged(**(dataclasses.asdict(options) if options else {}))
        if isinstance(dtype, str):
            opts = opts.merged(dtype=dtype)
        elif dtype is not None:
            opts = opts.merged(dtype={v: k for k, v in DTYPES.items()}[dtype])
        torch_dtype = DTYPES[opts.dtype] if opts.dtype else (torch.bfloat16 if str(device).startswith("cuda")
                                                             else torch.float32)
        geometry = df.diffusers_geometry(path, kind)
        sample = df.diffusers_sample(path, kind)
        d = import_diffusers()
        try:
            with warnings.catch_warnings(), quiet(bars=True):
                warnings.simplefilter("ignore")
                pipe = getattr(d, kind.class_name).from_pretrained(str(path), torch_dtype=torch_dtype,
                                                                   local_files_only=True)
        except Exception as e:  # diffusers/transformers/safetensors each raise their own; say what to do
            msg = str(e).strip().splitlines()[0][:400] if str(e).strip() else ""
            raise ModelFolderError(f"{path}: diffusers could not load this {kind.class_name} folder "
                                   f"({type(e).__name__}: {msg}); check that every component folder is complete "
                                   f"or download it again (e.g. {kind.example})") from None
        self = cls(pipe, kind, geometry, sample, options=opts, name=path.resolve().name, safety=safety,
                   path=path.resolve(), device=device)
        self._apply_options(pipe, first=True)
        return self

    def _apply_options(self, pipe: Any, first: bool = False) -> None:
        """Device, offload, VAE tiling/slicing and compile on ``pipe`` (this pipeline or a companion)."""
        o, device = self.options, self.exec_device
        if o.offload and not device.startswith("cuda"):
            if first:
                warnings.warn(f"offload={o.offload} moves components between the CPU and a GPU; on {device} "
                              "everything is already in CPU memory, so it is not applied", TenkuWarning, stacklevel=3)
            pipe.to(device)
        elif o.offload == "model":
            pipe.enable_model_cpu_offload(device=device)
        elif o.offload == "sequential":
            pipe.enable_sequential_cpu_offload(device=device)
        else:
            pipe.to(device)
        vae = getattr(pipe, "vae", None)
        if o.vae_tiling and hasattr(vae, "enable_tiling"):
            vae.enable_tiling()
        if o.vae_slicing and hasattr(vae, "enable_slicing"):
            vae.enable_slicing()
        if o.compile and first:
            tr = pipe.transformer
            if getattr(tr, "_repeated_blocks", None):
                tr.compile_repeated_blocks(fullgraph=False)
            else:
                pipe.transformer = torch.compile(tr)

    # ---- what the spine asks of a backend ------------------------------------------------------
    @property
    def geometry(self) -> Geometry:
        return self._geometry

    @property
    def device(self) -> torch.device:
        return torch.device(self.exec_device)

    @property
    def max_frames(self) -> int:
        return self.sample_config.num_frames

    def serves(self, mode: str, why: str = "", also: tuple[str, ...] = ()) -> None:
        """Raise UnsupportedModeError unless this folder's class serves ``mode`` (naming one that serves it and
        the modes ``also``)."""
        if mode in self.modes:
            return
        what = {df.LONG: "videos longer than one call", df.EXTEND_BACKWARD: "backward extension"}.get(
            mode, mode.replace("_", "-"))
        raise UnsupportedModeError(f"{self.name} ({self.kind.class_name}) cannot make {what}{why}; it serves "
                                   f"{', '.join(m.replace('_', '-') for m in self.modes)}. Use "
                                   f"{df.who_serves(mode, self.kind.family, also)}")

    def plan(self, request: GenerationRequest) -> Plan:
        """The request's mode as calls of this pipeline (see the module docstring); other modes are refused."""
        mode, s = request.mode, request.sample
        name = df.EXTEND_BACKWARD if mode.name == df.EXTEND and getattr(mode, "backward", False) else mode.name
        self.serves(name)
        if s.sampler != self.sample_config.sampler:
            raise TenkuError(f"a diffusers folder samples with its own scheduler ({self.path}/scheduler); "
                             f"leave the sampler unset (got {s.sampler!r})")
        if request.guidance_interval is not None or request.latents is not None:
            raise TenkuError("guidance_interval and latents= work with tenku's own model only; leave them unset")
        F, tf = self.geometry.frames_of_latents(request.window), self.geometry.temporal_factor
        W, H, fps = s.width, s.height, float(s.fps)
        if name != df.T2V and name != df.T2I:
            self._check_image_size(H, W)

        def windows(n_new: int, fresh: bool) -> int:
            return 1 if n_new <= (F if fresh else F - 1) else 1 + -(-(n_new - (F if fresh else F - 1)) // (F - 1))

        if name in (df.T2V, df.T2I):
            n = s.num_frames
            if n > F:
                self.serves(df.LONG, f" ({n} frames; one call makes up to {F})", also=(df.T2V,))
            return Plan(lambda run: chain(run, n, None, None), total=n, windows=windows(n, True))
        if name == df.I2V:
            img, n = load_image(mode.image, W, H), s.num_frames
            if n < 1 + tf:
                raise UnsupportedSizeError(f"image-to-video needs at least {1 + tf} frames, got {n}")
            if n > F:
                self.serves(df.LONG, f" ({n} frames; one call makes up to {F})", also=(df.I2V,))
            return Plan(lambda run: chain(run, n, img, None, keep_first=True), total=n, windows=windows(n - 1, False),
                        given=img[0])
        if name == df.EXTEND:
            video = load_video(mode.video, W, H, fps)
            n = _seconds_to_frames(mode.seconds, fps, tf, plus_one=False)
            if n > F - 1:
                self.serves(df.LONG, f" ({n} new frames; one call adds up to {F - 1})", also=(df.EXTEND,))
            return Plan(lambda run: chain(run, n, video, None), total=n + len(video), windows=windows(n, False),
                        before=(video,), given=video[-1])
        if name == df.CONNECT:
            a, b = load_video(mode.a, W, H, fps), load_video(mode.b, W, H, fps)
            n = _seconds_to_frames(mode.seconds, fps, tf, plus_one=False)
            if n > F - 1:
                self.serves(df.LONG, f" ({n} transition frames; one call makes up to {F - 1})", also=(df.CONNECT,))
            return Plan(lambda run: chain(run, n, a, b[0]), total=len(a) + n + len(b), windows=windows(n, False),
                        before=(a,), after=(b,), given=a[-1])
        if name == df.EDIT:
            video = load_video(mode.video, W, H, fps)
            video = video[: 1 + tf * ((len(video) - 1) // tf)]  # whole latent frames
            if len(video) > F:
                raise UnsupportedSizeError(f"{self.name} edits up to {F} frames in one call; the video has "
                                           f"{len(video)} at {fps:g} fps: trim it or pass a lower fps")
            strength = float(mode.strength)
            if int(s.num_steps * strength) < 1:  # the video-to-video pipelines denoise int(steps * strength) steps
                raise TenkuError(f"strength {strength:g} with {s.num_steps} steps leaves no step to denoise; raise "
                                 f"the steps to at least {int(np.ceil(1 / max(strength, 1e-6)))} or the strength")
            return Plan(lambda run: iter([run.call(len(video), video=video, strength=strength)]), total=len(video),
                        windows=1)
        raise UnsupportedModeError(f"internal: no plan for {name}")  # every mode the table lists is planned above

    def _check_image_size(self, height: int, width: int) -> None:
        """Refuse a size the pipeline would not make: HunyuanVideo 1.5's image-to-video class takes no size; it
        makes the bucket of its ``target_size`` nearest the image's aspect ratio (848x480 for 480p)."""
        pipe, vp = self.pipe, getattr(self.pipe, "video_processor", None)
        if "height" in inspect.signature(pipe.__call__).parameters or not hasattr(vp, "calculate_default_height_width"):
            return
        h, w = vp.calculate_default_height_width(height=height, width=width, target_size=pipe.target_size)
        if (h, w) != (height, width):
            raise UnsupportedSizeError(f"{self.name} ({self.kind.class_name}) makes its own sizes from the image's "
                                       f"aspect ratio: for {width}x{height} it would make {w}x{h}; ask for "
                                       f"--size {w}x{h}")

    def metadata(self, request: GenerationRequest, plan: Plan | None = None, text: str | None = None,
                 expander: str | None = None) -> dict[str, Any]:
        """The spine's metadata, with the diffusers class and its scheduler as the sampler."""
        meta = super().metadata(request, plan, text, expander)
        meta.update(pipeline_class=self.kind.class_name, sampler=type(self.pipe.scheduler).__name__)
        return meta

    def runner(self, request: GenerationRequest, plan: Plan, text: str, generator: torch.Generator, *,
               callback=None, progress: bool = True, on_window=None) -> "DiffusersRunner":
        return DiffusersRunner(self, request, text, generator, plan.windows, callback=callback, progress=progress)

    # ---- the classes a call runs ---------------------------------------------------------------
    def companion(self, class_name: str) -> Any:
        """The diffusers pipeline ``class_name`` built from this one's components (``from_pipe``), once."""
        if class_name == self.kind.class_name:
            return self.pipe
        if class_name not in self._companions:
            cls = getattr(import_diffusers(), class_name)
            with warnings.catch_warnings(), quiet(bars=True):
                warnings.simplefilter("ignore")
                comp = cls.from_pipe(self.pipe)
            self._companions[class_name] = comp
        return self._companions[class_name]

    def enable_cache(self, num_steps: int) -> None:
        """Put the options' cache hook on the transformer for ``num_steps`` steps (again when steps change)."""
        if self.options.cache is None or self._cache_steps == num_steps:
            return
        tr = self.pipe.transformer
        tr = getattr(tr, "_orig_mod", tr)
        if getattr(tr, "is_cache_enabled", False):
            tr.disable_cache()
        tr.enable_cache(cache_config(self.options, num_steps))
        self._cache_steps = num_steps

    # ---- frames through the VAE (the yardstick's reconstruction task) ---------------------------
    @torch.no_grad()
    def encode_frames(self, frames: np.ndarray) -> torch.Tensor:
        """Frames (T, H, W, 3) uint8 -> the VAE's raw latents (1, C, T', h, w) (not the transformer's scaling)."""
        vae = self.pipe.vae
        p = next(vae.parameters())
        video = torch.from_numpy(np.ascontiguousarray(frames)).permute(3, 0, 1, 2)[None]  # (1, 3, T, H, W)
        video = video.to(device=self.exec_device, dtype=p.dtype) / 127.5 - 1.0
        return vae.encode(video).latent_dist.mode()

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> np.ndarray:
        """Raw VAE latents (1, C, T', h, w) -> frames (T, H, W, 3) uint8."""
        video = self.pipe.vae.decode(latents).sample[0]  # (3, T, H, W) in [-1, 1]
        return to_uint8((video.float().permute(1, 2, 3, 0).cpu().numpy() + 1.0) / 2.0)


class DiffusersRunner:
    """One generation's calls: the text, the request's steps/guidance, the shared noise generator, progress."""

    def __init__(self, owner: DiffusersPipeline, request: GenerationRequest, text: str, generator: torch.Generator,
                 num_windows: int, callback=None, progress: bool = True):
        self.owner, self.request, self.text, self.gen = owner, request, text, generator
        self.callback, self.num_windows = callback, max(1, num_windows)
        self.progress = progress_enabled(progress)
        self.tf = owner.geometry.temporal_factor
        self.max_frames = owner.geometry.frames_of_latents(request.window)
        self.index = 0
        self.last = None

    def close(self) -> None:
        pass

    def context_frames(self, available: int) -> int:
        """Given frames a continuation is conditioned on: the last one (image kinds), or up to ``context``
        latent frames of them (LTX conditions)."""
        if self.owner.kind.first_frame != "conditions":
            return 1
        k = max(1, min(self.request.context, (available - 1) // self.tf + 1))
        return 1 + self.tf * (k - 1)

    def _on_step(self, pipe, i, t, kwargs):
        if self.callback is not None:
            steps = self.request.sample.num_steps
            self.callback({"i": self.index * steps + int(i), "total": self.num_windows * steps, "t": float(t),
                           "window": self.index, "windows": self.num_windows})
        return kwargs

    def call(self, num_frames: int, first: np.ndarray | None = None, last: np.ndarray | None = None,
             video: np.ndarray | None = None, strength: float | None = None) -> np.ndarray:
        """One pipeline call -> (num_frames, H, W, 3) uint8. ``first``: given frames the clip starts with;
        ``last``: a frame (H, W, 3) it ends on; ``video`` + ``strength``: video-to-video."""
        o, kind, s = self.owner, self.owner.kind, self.request.sample
        kw: dict[str, Any] = dict(prompt=self.text, height=s.height, width=s.width, num_frames=num_frames,
                                  num_inference_steps=s.num_steps, guidance_scale=float(s.guidance),
                                  generator=self.gen, output_type="np", frame_rate=int(round(float(s.fps))))
        if self.request.negative_prompt is not None:
            kw["negative_prompt"] = self.request.negative_prompt
        if video is not None:
            pipe = o.companion(kind.edit_class)
            kw.update(video=[_pil(f) for f in video], strength=float(strength))
            del kw["num_frames"]
        elif first is None and last is None:
            pipe = o.pipe if df.T2V in kind.serves else o.companion(kind.condition_class or kind.class_name)
        elif kind.first_frame == "conditions":
            from diffusers.pipelines.ltx.pipeline_ltx_condition import LTXVideoCondition

            pipe = o.companion(kind.condition_class or kind.class_name)
            conds = []
            if first is not None:
                conds.append(LTXVideoCondition(video=[_pil(f) for f in first], frame_index=0) if len(first) > 1
                             else LTXVideoCondition(image=_pil(first[-1]), frame_index=0))
            if last is not None:
                conds.append(LTXVideoCondition(image=_pil(last), frame_index=num_frames - 1))
            kw["conditions"] = conds
        else:
            pipe = o.pipe
            kw["image"] = _pil(first[-1])
            if last is not None:
                kw["last_image"] = _pil(last)
        kw.update(o.options.call)
        # HunyuanVideo I2V with the image's latent concatenated ("latent_concat") drops the first latent frame's
        # tf frames from its output: ask for tf more so that num_frames come back
        drop = self.tf if getattr(pipe.transformer.config, "image_condition_type", None) == "latent_concat" else 0
        if drop and "num_frames" in kw:
            kw["num_frames"] += drop
        params = inspect.signature(pipe.__call__).parameters
        if "callback_on_step_end" in params:
            kw["callback_on_step_end"] = self._on_step
        kw = {k: v for k, v in kw.items() if k in params}
        pipe.set_progress_bar_config(disable=not self.progress, leave=False)
        o.enable_cache(s.num_steps)
        try:
            with quiet():
                out = pipe(**kw).frames[0]  # (T, H, W, 3) floats in [0, 1]
        except torch.cuda.OutOfMemoryError:
            raise TenkuError("out of GPU memory; try --offload model, --vae-tiling, --dtype bf16, a smaller --size "
                             "or fewer frames") from None
        frames = to_uint8(out)
        if len(frames) != num_frames:
            raise TenkuError(f"internal: {kind.class_name} made {len(frames)} frames, {num_frames} were asked")
        self.index += 1
        return frames


def chain(run: DiffusersRunner, n: int, before: np.ndarray | None, end: np.ndarray | None,
          keep_first: bool = False) -> Iterator[np.ndarray]:
    """``n`` frames window by window (each call at most ``run.max_frames``): after the given frames ``before``
    (None: a fresh start), the last window ending on the frame ``end`` (None: free). Each window after the
    first is conditioned on the last frames made before it. ``keep_first``: the first window's output keeps
    its conditioning frame (image-to-video: frame 0 is the pipeline's own rendering of the image) and it
    counts toward ``n``."""
    F = run.max_frames
    ctx, remaining = before, n
    while remaining > 0:
        c = 0 if ctx is None else run.context_frames(len(ctx))
        if keep_first:  # the conditioning frame is part of the output
            g = min(F, remaining)
            frames = run.call(g, first=ctx[-c:], last=end if g == remaining else None)
            new, keep_first = frames, False
        else:
            g = min(F - c, remaining)
            frames = run.call(g + c, first=None if ctx is None else ctx[-c:], last=end if g == remaining else None)
            new = frames[c:]
        yield new
        ctx = new if ctx is None else np.concatenate([ctx[-F:], new])
        remaining -= g
