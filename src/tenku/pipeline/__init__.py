"""Generation: the pipeline object, outputs and the default model location.

``from tenku.pipeline import TenkuPipeline, save_output`` (imported on first use, so that
``default_model_path`` stays cheap for the command line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["PipelineOutput", "TenkuPipeline", "default_model_path", "save_output"]


def default_model_path() -> Path:
    """The small default model that ships inside the package (``tenku/assets/tenku-world-tiny``)."""
    import tenku

    return Path(tenku.__file__).parent / "assets" / "tenku-world-tiny"


def __getattr__(name: str) -> Any:
    if name == "TenkuPipeline":
        from tenku.pipeline.pipeline import TenkuPipeline

        return TenkuPipeline
    if name in ("PipelineOutput", "save_output"):
        from tenku.pipeline import output

        return getattr(output, name)
    raise AttributeError(f"module 'tenku.pipeline' has no attribute {name!r}")
