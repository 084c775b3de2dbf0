"""Generation: the pipeline object, its modes and outputs.

``from tenku.pipeline import TenkuPipeline, load_pipeline, save_output`` (imported on first use, so that
``default_model_path`` stays cheap for the command line). ``load_pipeline(folder)`` picks the backend a folder
needs (tenku's own or diffusers', :mod:`tenku.pipeline.loading`). Where the default model is:
:mod:`tenku.models.folder`.
"""

from __future__ import annotations

from typing import Any

from tenku.models.folder import DEFAULT_MODEL, default_model_path, model_path

__all__ = ["DEFAULT_MODEL", "PipelineOutput", "TenkuPipeline", "default_model_path", "load_pipeline", "model_path",
           "save_output"]


def __getattr__(name: str) -> Any:
    if name == "TenkuPipeline":
        from tenku.pipeline.pipeline import TenkuPipeline

        return TenkuPipeline
    if name == "load_pipeline":
        from tenku.pipeline.loading import load_pipeline

        return load_pipeline
    if name in ("PipelineOutput", "save_output"):
        from tenku.pipeline import output

        return getattr(output, name)
    raise AttributeError(f"module 'tenku.pipeline' has no attribute {name!r}")
