"""The one way a command, the server or the yardstick loads a model: :func:`load_pipeline`.

    pipe = load_pipeline("Wan2.1-T2V-1.3B-Diffusers", device="cuda", safety=safety, options=opts)

The folder's ``model_index.json`` names its class: "TenkuPipeline" loads tenku's own backend
(:class:`tenku.pipeline.pipeline.TenkuPipeline`), a diffusers class of the capability table
(:data:`tenku.models.diffusers_folder.KINDS`) the diffusers backend
(:class:`tenku.pipeline.diffusers_backend.DiffusersPipeline`). Both are :class:`tenku.pipeline.backend.Backend`.
"""

from __future__ import annotations

from pathlib import Path

from tenku.errors import TenkuError
from tenku.models import diffusers_folder as df
from tenku.models.folder import model_path


def load_pipeline(path: str | Path | None = None, device: str = "cpu", dtype=None, safety=None,
                  options: df.DiffusersOptions | None = None):
    """The backend for the folder at ``path`` (None: the model shipped with tenku), loaded on ``device``.
    ``dtype``: a torch dtype (or "bf16"/"fp16"/"fp32" for a diffusers folder); ``safety``: the policy its
    generations follow; ``options``: memory and speed options of a diffusers folder (a tenku folder takes
    ``compile`` alone). A missing or broken folder raises ModelFolderError saying what to do."""
    path = model_path(path)
    kind = df.pipeline_kind(path)
    if kind is None:
        from tenku.pipeline.pipeline import TenkuPipeline

        if options is not None:
            other = [f"--{k.replace('_', '-')}" for k in ("offload", "vae_tiling", "vae_slicing", "cache")
                     if getattr(options, k)]
            if other:
                raise TenkuError(f"{', '.join(other)} apply to diffusers folders; {path.name} is a tenku folder "
                                 "(it takes --dtype and --compile)")
            dtype = dtype or options.dtype

        if isinstance(dtype, str):
            import torch

            dtype = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": None}[dtype]
        pipe = TenkuPipeline.from_pretrained(path, device=device, dtype=dtype, safety=safety)
        if options is not None and options.compile:
            pipe.compile()
        return pipe
    from tenku.pipeline.diffusers_backend import DiffusersPipeline

    return DiffusersPipeline.from_pretrained(path, device=device, dtype=dtype, safety=safety, options=options)
