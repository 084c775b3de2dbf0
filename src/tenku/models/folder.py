"""Where a model folder is and what it says, without torch: the one resolution of the default model.

    model_path(None)                 # the model shipped with tenku (src/tenku/assets/tenku-world-tiny)
    info = read_pipeline_info(path)  # name, geometry, sample and flow settings, from the folder's JSON alone

A folder is tenku's own (``model_index.json`` ``_class_name`` "TenkuPipeline") or a diffusers pipeline folder
(a class of :data:`tenku.models.diffusers_folder.KINDS`); :class:`PipelineInfo` describes both alike.

The weights are loaded by :mod:`tenku.models.hub` (``load_pipeline_folder``); this module is what the
command line and the server read before (or instead of) that.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from tenku.config import FlowConfig, SampleConfig, read_model_configs
from tenku.geometry import Geometry
from tenku.models import diffusers_folder as df

DEFAULT_MODEL = "tenku-world-tiny"
INDEX_NAME = "model_index.json"
SAMPLE_NAME = "sample.json"
FLOW_NAME = "flow.json"


def default_model_path() -> Path:
    """The small default model that ships inside the package (``tenku/assets/tenku-world-tiny``)."""
    return Path(__file__).resolve().parent.parent / "assets" / DEFAULT_MODEL


def model_path(model: str | Path | None = None) -> Path:
    """Where a model is: None, ``""`` or the shipped model's name (``"tenku-world-tiny"``, when no folder of that
    name is in the current directory) is the model shipped with tenku; anything else is a folder path."""
    if not model or (str(model) == DEFAULT_MODEL and not Path(model).exists()):
        return default_model_path()
    return Path(model)


TENKU_MODES = tuple(m for m in df.ALL_MODES)  # tenku's own model serves every mode


@dataclasses.dataclass(frozen=True)
class PipelineInfo:
    """What a pipeline folder says about itself, read from its JSON (no weights). ``class_name``: its
    ``model_index.json`` class; ``backend``: "tenku" or "diffusers"; ``modes``: the tenku modes it serves
    (:data:`tenku.models.diffusers_folder.ALL_MODES` names); ``max_frames``: the most frames one call makes
    (longer videos go window by window where ``"long_video"`` is in ``modes``)."""

    path: Path
    name: str
    geometry: Geometry
    sample: SampleConfig
    flow: FlowConfig
    class_name: str = df.TENKU_CLASS
    backend: str = "tenku"
    modes: tuple[str, ...] = TENKU_MODES

    @property
    def max_frames(self) -> int:
        return self.sample.num_frames


def read_pipeline_info(folder: str | Path) -> PipelineInfo:
    """:class:`PipelineInfo` of a pipeline folder; ModelFolderError (saying what to pass) if it is not one."""
    folder = Path(folder)
    index = df.read_index(folder)
    kind = df.pipeline_kind(folder, index)
    if kind is not None:
        return PipelineInfo(path=folder, name=folder.resolve().name, geometry=df.diffusers_geometry(folder, kind),
                            sample=df.diffusers_sample(folder, kind), flow=FlowConfig(), class_name=kind.class_name,
                            backend="diffusers", modes=df.folder_modes(folder, kind))
    geometry = Geometry.of(*read_model_configs(folder))
    sample = SampleConfig.load(folder / SAMPLE_NAME) if (folder / SAMPLE_NAME).is_file() else SampleConfig()
    flow = FlowConfig.load(folder / FLOW_NAME) if (folder / FLOW_NAME).is_file() else FlowConfig()
    return PipelineInfo(path=folder, name=folder.resolve().name, geometry=geometry, sample=sample, flow=flow)

