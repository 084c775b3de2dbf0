"""Save and load model folders.

A component folder holds ``config.json`` (``_class_name``, ``_tenku_version`` and the config fields)
and ``model.safetensors``; it rebuilds the model exactly. A Hugging Face text encoder is stored as its
own folder (copied into ``model/``, or referenced by path) plus a ``config.json`` naming it.

A pipeline folder::

    model_index.json   {"_class_name": "TenkuPipeline", "tenku_version": ..., "components": {...}}
    vae/  transformer/  text_encoder/      one component folder each
    sample.json        SampleConfig defaults      flow.json   FlowConfig

Every problem with a folder is a :class:`ModelFolderError` that names the file and says what to do.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn

from tenku import __version__
from tenku.config import (ConfigBase, DiTConfig, FlowConfig, PatchVAEConfig, SampleConfig, TextEncoderConfig,
                          VAEConfig)
from tenku.errors import ModelFolderError
from tenku.media import atomic_path
from tenku.models.dit import DiT
from tenku.models.text import ByteTextEncoder, HFTextEncoder
from tenku.models.patch_vae import PatchVAE
from tenku.models.vae import CausalVAE

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"
INDEX_NAME = "model_index.json"
SAMPLE_NAME = "sample.json"
FLOW_NAME = "flow.json"

# class name (as written in config.json) -> (module class, config class)
REGISTRY: dict[str, tuple[type[nn.Module], type[ConfigBase]]] = {
    "CausalVAE": (CausalVAE, VAEConfig),
    "PatchVAE": (PatchVAE, PatchVAEConfig),
    "DiT": (DiT, DiTConfig),
    "ByteTextEncoder": (ByteTextEncoder, TextEncoderConfig),
}
# which classes a pipeline slot accepts
PIPELINE_SLOTS: dict[str, tuple[str, ...]] = {
    "vae": ("CausalVAE", "PatchVAE"),
    "transformer": ("DiT",),
    "text_encoder": ("ByteTextEncoder", "HFTextEncoder"),
}


def build_vae(cfg: VAEConfig | PatchVAEConfig) -> nn.Module:
    """A fresh VAE of the class its config describes."""
    return PatchVAE(cfg) if isinstance(cfg, PatchVAEConfig) else CausalVAE(cfg)


def _write_json(path: Path, d: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(d, indent=2, sort_keys=True) + "\n")


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise ModelFolderError(f"missing {path}: the folder is not {what}; pass the right folder or re-save it "
                               "with save_pretrained()")
    try:
        d = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelFolderError(f"{path} is not valid JSON ({e}); the folder is corrupted: re-save or re-download it")
    if not isinstance(d, dict):
        raise ModelFolderError(f"{path} must hold a JSON object; the folder is corrupted")
    return d


def save_pretrained(
    module: nn.Module,
    config: ConfigBase | None,
    directory: str | Path,
    dtype: torch.dtype | None = None,
    copy_hf: bool = True,
) -> Path:
    """Write ``module`` as a component folder. ``dtype`` casts floating weights (e.g. float16 to ship a
    small model); None keeps each tensor's dtype. An :class:`HFTextEncoder` is copied into ``model/``
    (``copy_hf=False``: referenced by its absolute path)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    if isinstance(module, HFTextEncoder):
        src = module.path.resolve()
        ref = str(src)
        if copy_hf:
            dst = directory / "model"
            if dst.resolve() != src:
                if dst.exists():
                    shutil.rmtree(dst)
                shutil.copytree(src, dst)
            ref = "model"
        _write_json(directory / CONFIG_NAME, {"_class_name": "HFTextEncoder", "_tenku_version": __version__,
                                              "path": ref, "max_length": module.max_length})
        return directory
    name = type(module).__name__
    if name not in REGISTRY:
        raise TypeError(f"cannot save a {name}; known component classes: {sorted(REGISTRY)}")
    config = config if config is not None else module.cfg
    from safetensors.torch import save_file

    tensors = {}
    for k, v in module.state_dict().items():
        v = v.detach().to("cpu")
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        tensors[k] = v.contiguous().clone()  # clone: tied weights become separate entries
    with atomic_path(directory / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt", "tenku_version": __version__, "class": name})
    _write_json(directory / CONFIG_NAME, {"_class_name": name, "_tenku_version": __version__, **config.to_dict()})
    return directory


def _load_weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not path.is_file():
        raise ModelFolderError(f"missing {path}: the weights are not there; re-save the model or copy the "
                               "whole folder again")
    try:
        return load_file(str(path), device="cpu")
    except Exception as e:  # safetensors raises its own error type for truncated or garbled files
        raise ModelFolderError(f"cannot read {path} ({type(e).__name__}: {e}); the file is truncated or "
                               "corrupted: re-save or re-download it") from None


def _check_state(path: Path, state: dict[str, torch.Tensor], model: nn.Module) -> None:
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    wrong = [f"{k}: file {tuple(state[k].shape)}, config needs {expected[k]}"
             for k in sorted(set(expected) & set(state)) if tuple(state[k].shape) != expected[k]]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing tensor(s), e.g. {missing[:3]}")
    if unexpected:
        problems.append(f"{len(unexpected)} unexpected tensor(s), e.g. {unexpected[:3]}")
    if wrong:
        problems.append(f"{len(wrong)} shape mismatch(es), e.g. {'; '.join(wrong[:3])}")
    if problems:
        raise ModelFolderError(
            f"{path} does not match {path.parent / CONFIG_NAME}: {', '.join(problems)}. The weights and the "
            "config come from different models: copy both from the same save"
        )


def load_component(
    directory: str | Path,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    expect: tuple[str, ...] | None = None,
) -> nn.Module:
    """Rebuild the model saved in ``directory`` (in eval mode) on ``device``. Weights are read on CPU
    and loaded into float32 parameters (whatever dtype they were stored in); ``dtype`` casts after.
    ``expect``: class names accepted (a wrong class is a ModelFolderError)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelFolderError(f"model folder not found: {directory}")
    cfg_path = directory / CONFIG_NAME
    d = _read_json(cfg_path, "a tenku component folder")
    name = d.get("_class_name")
    known = sorted([*REGISTRY, "HFTextEncoder"])
    if name not in known:
        raise ModelFolderError(f"{cfg_path} names class {name!r}; expected one of {known}")
    if expect is not None and name not in expect:
        raise ModelFolderError(f"{cfg_path} holds a {name}, but this slot needs {' or '.join(expect)}; "
                               "the folder layout is mixed up")
    if name == "HFTextEncoder":
        ref = Path(d.get("path", "model"))
        hf_path = ref if ref.is_absolute() else directory / ref
        module = HFTextEncoder(hf_path, max_length=int(d.get("max_length", 256)))
        return module.to(device=device, dtype=dtype) if dtype is not None else module.to(device)
    cls, cfg_cls = REGISTRY[name]
    cfg = cfg_cls.from_dict(d)  # unknown fields -> ModelFolderError
    try:
        model = cls(cfg)
    except (TypeError, ValueError, AssertionError) as e:
        raise ModelFolderError(f"{cfg_path} holds an invalid {cfg_cls.__name__}: {e}") from None
    weights_path = directory / WEIGHTS_NAME
    state = _load_weights(weights_path)
    _check_state(weights_path, state, model)
    model.load_state_dict(state, strict=True)  # copies into float32 parameters
    model.eval()
    return model.to(device=device, dtype=dtype) if dtype is not None else model.to(device)


def load_vae(path: str | Path, device: torch.device | str = "cpu") -> nn.Module:
    """A trained VAE (eval mode, no gradients) from a component folder, a pipeline folder (its vae/) or a
    training run folder (its export/vae/)."""
    path = Path(path)
    for cand in (path, path / "vae", path / "export" / "vae"):
        if (cand / CONFIG_NAME).is_file():
            vae = load_component(cand, device, expect=PIPELINE_SLOTS["vae"])
            return vae.eval().requires_grad_(False)
    raise ModelFolderError(f"no VAE found at {path} (looked for config.json in it, in vae/ and in export/vae/); "
                           "train one with `tenku train vae` or pass a pipeline folder")


# ---- pipeline folders ----------------------------------------------------------------------------
def save_pipeline_folder(
    path: str | Path,
    components: dict[str, nn.Module],
    flow_config: FlowConfig,
    sample_config: SampleConfig,
    dtype: torch.dtype | None = None,
) -> Path:
    """Write a pipeline folder. It is assembled under a temporary name next to ``path`` and renamed
    into place, so an interrupted save never leaves a half-written folder under ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
    try:
        for slot, module in components.items():
            save_pretrained(module, getattr(module, "cfg", None), tmp / slot, dtype=dtype)
        flow_config.save(tmp / FLOW_NAME)
        sample_config.save(tmp / SAMPLE_NAME)
        index = {"_class_name": "TenkuPipeline", "tenku_version": __version__,
                 "components": {slot: slot for slot in components}}
        (tmp / INDEX_NAME).write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
        os.chmod(tmp, 0o755)
        if path.exists():
            if not (path / INDEX_NAME).is_file() and any(path.iterdir()):
                raise ModelFolderError(f"{path} exists and is not a pipeline folder; choose an empty or new path")
            old = path.with_name(f".{path.name}.old")
            if old.exists():
                shutil.rmtree(old)
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return path


def load_pipeline_folder(
    path: str | Path, device: torch.device | str = "cpu", dtype: torch.dtype | None = None
) -> tuple[dict[str, nn.Module], FlowConfig, SampleConfig, dict[str, Any]]:
    """Read a pipeline folder: (components by slot, FlowConfig, SampleConfig, model_index)."""
    path = Path(path)
    if not path.is_dir():
        raise ModelFolderError(f"model folder not found: {path}; pass the folder that holds {INDEX_NAME}")
    index = _read_json(path / INDEX_NAME, "a tenku pipeline folder")
    if index.get("_class_name") != "TenkuPipeline":
        raise ModelFolderError(f"{path / INDEX_NAME} describes a {index.get('_class_name')!r}, expected "
                               "'TenkuPipeline'")
    names = index.get("components") or {}
    missing = [slot for slot in PIPELINE_SLOTS if slot not in names]
    if missing:
        raise ModelFolderError(f"{path / INDEX_NAME} lists no {missing} component(s); expected "
                               f"{sorted(PIPELINE_SLOTS)}")
    components = {slot: load_component(path / names[slot], device, dtype, expect=PIPELINE_SLOTS[slot])
                  for slot in PIPELINE_SLOTS}
    flow = FlowConfig.load(path / FLOW_NAME) if (path / FLOW_NAME).exists() else FlowConfig()
    sample = SampleConfig.load(path / SAMPLE_NAME) if (path / SAMPLE_NAME).exists() else SampleConfig()
    vae, dit, text = components["vae"], components["transformer"], components["text_encoder"]
    if dit.cfg.in_channels != vae.cfg.latent_channels:
        raise ModelFolderError(f"{path}: transformer in_channels {dit.cfg.in_channels} != VAE latent_channels "
                               f"{vae.cfg.latent_channels}; the components come from different models")
    if dit.cfg.text_dim != text.dim:
        raise ModelFolderError(f"{path}: transformer text_dim {dit.cfg.text_dim} != text encoder dim {text.dim}; "
                               "the components come from different models")
    return components, flow, sample, index
