"""Generation: the pipeline object, outputs and the default model location.

``from tenku.pipeline import TenkuPipeline, save_output`` (imported on first use, so that
``default_model_path`` stays cheap for the command line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["DEFAULT_MODEL", "PipelineOutput", "TenkuPipeline", "default_model_path", "model_path", "save_output"]

DEFAULT_MODEL = "tenku-world-tiny"


def default_model_path() -> Path:
    """The small default model that ships inside the package (``tenku/assets/tenku-world-tiny``)."""
    import tenku

    return Path(tenku.__file__).parent / "assets" / DEFAULT_MODEL


def model_path(model: str | Path | None = None) -> Path:
    """Where a model is: None or the shipped model's name (``"tenku-world-tiny"``, when no folder of that name
    is in the current directory) is the model shipped with tenku; anything else is a folder path."""
    if model is None or (str(model) == DEFAULT_MODEL and not Path(model).exists()):
        return default_model_path()
    return Path(model)


def __getattr__(name: str) -> Any:
    if name == "TenkuPipeline":
        from tenku.pipeline.pipeline import TenkuPipeline

        return TenkuPipeline
    if name in ("PipelineOutput", "save_output"):
        from tenku.pipeline import output

        return getattr(output, name)
    raise AttributeError(f"module 'tenku.pipeline' has no attribute {name!r}")
