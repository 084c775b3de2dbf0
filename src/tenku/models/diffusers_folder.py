"""What a diffusers pipeline folder is, from its JSON alone (no torch, no weights): the one capability table.

    kind = pipeline_kind(folder)            # the DiffusersKind of its model_index.json ``_class_name``
    kind.modes                              # the tenku modes it serves, e.g. ("text_to_video", "edit")
    geometry = diffusers_geometry(folder)   # frames, sizes and latent shapes (tenku.geometry.Geometry)
    problems = folder_problems(folder)      # what is missing or truncated, each with what to do

:data:`KINDS` is the table: each diffusers pipeline class tenku runs, the family it belongs to, the tenku
modes it serves and how, the published model it matches. The diffusers backend
(:mod:`tenku.pipeline.diffusers_backend`) refuses the other modes from it, naming a kind that serves them,
and the server's ``/v1/models`` lists it. :data:`FAMILIES` holds each family's sample defaults (the
published model's size, length, fps, steps and guidance) and its docs page. A folder may override them in
``sample.json`` (:class:`tenku.config.SampleConfig`) and set its memory and speed options in ``tenku.json``
(:class:`DiffusersOptions`), both beside ``model_index.json``.
"""

from __future__ import annotations

import dataclasses
import json
import struct
from pathlib import Path
from typing import Any

from tenku.config import SampleConfig
from tenku.errors import ModelFolderError
from tenku.geometry import Geometry

INDEX_NAME = "model_index.json"
OPTIONS_NAME = "tenku.json"
TENKU_CLASS = "TenkuPipeline"

T2V, T2I, I2V, EXTEND, LOOP, CONNECT, EDIT = ("text_to_video", "text_to_image", "image_to_video", "extend", "loop",
                                               "connect", "edit")
EXTEND_BACKWARD = "extend_backward"  # Extend(backward=True): listed apart, few models can
LONG = "long_video"  # longer than one call: window by window, each continuing from the last frames
ALL_MODES = (T2V, T2I, I2V, EXTEND, EXTEND_BACKWARD, LOOP, CONNECT, EDIT, LONG)
TENKU_MODEL = "tenku's own model (the default, tenku-world-tiny, or any folder `tenku train` exports)"


@dataclasses.dataclass(frozen=True)
class Family:
    """A model family: its name, docs page, published models and sample defaults (those of the published
    model: size, frames, fps, steps, guidance as its pipeline means it)."""

    name: str
    title: str
    doc: str
    sample: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class DiffusersKind:
    """One diffusers pipeline class: ``serves`` {tenku mode: how it runs}; ``first_frame``: how a call is
    conditioned on given frames before the new ones ("image": the last given frame as ``image=``;
    "conditions": LTX's condition pipeline, frames at any index; None: not at all); ``last_frame``: it
    also takes a frame the clip must end on (``last_image=`` or a condition); ``edit_class``: a
    video-to-video class built from the same components (``from_pipe``); ``condition_class``: the class a
    conditioned call uses (default: this one); ``example``: a published diffusers folder of this class."""

    class_name: str
    family: str
    serves: dict[str, str]
    first_frame: str | None = None
    last_frame: bool = False
    edit_class: str | None = None
    condition_class: str | None = None
    example: str = ""

    @property
    def modes(self) -> tuple[str, ...]:
        return tuple(m for m in ALL_MODES if m in self.serves)


FAMILIES: dict[str, Family] = {
    "wan": Family("wan", "Wan 2.1 / 2.2", "docs/models/wan.md",
                  dict(width=832, height=480, num_frames=81, fps=16, num_steps=50, guidance=5.0)),
    "ltx": Family("ltx", "LTX-Video", "docs/models/ltx.md",
                  dict(width=704, height=480, num_frames=161, fps=25, num_steps=50, guidance=3.0)),
    "cogvideox": Family("cogvideox", "CogVideoX", "docs/models/cogvideox.md",
                        dict(width=720, height=480, num_frames=49, fps=8, num_steps=50, guidance=6.0)),
    "hunyuanvideo": Family("hunyuanvideo", "HunyuanVideo", "docs/models/hunyuanvideo.md",
                           dict(width=1280, height=720, num_frames=129, fps=24, num_steps=50, guidance=6.0)),
    "hunyuanvideo15": Family("hunyuanvideo15", "HunyuanVideo 1.5", "docs/models/hunyuanvideo.md",
                             dict(width=848, height=480, num_frames=121, fps=24, num_steps=50, guidance=6.0)),
}

_ONE = "one call of the pipeline"
_CHAIN = "window by window: each window starts from the last frame made before it (image-to-video)"
_COND_CHAIN = "window by window: each window is conditioned on the last frames made before it (LTX conditions)"

KINDS: dict[str, DiffusersKind] = {k.class_name: k for k in (
    DiffusersKind("WanPipeline", "wan", {
        T2V: _ONE, T2I: "one call with num_frames=1",
        EDIT: "WanVideoToVideoPipeline from the same components (SDEdit: the video noised to strength)"},
        edit_class="WanVideoToVideoPipeline", example="Wan-AI/Wan2.1-T2V-1.3B-Diffusers"),
    DiffusersKind("WanImageToVideoPipeline", "wan", {
        I2V: "the image as image=", EXTEND: "the video's last frame as image=; the new frames follow it",
        CONNECT: "a's last frame as image=, b's first frame as last_image= (first-last-frame)",
        LONG: _CHAIN},
        first_frame="image", last_frame=True,
        example="Wan-AI/Wan2.1-I2V-14B-480P-Diffusers; for connect Wan-AI/Wan2.1-FLF2V-14B-720P-diffusers"),
    DiffusersKind("LTXPipeline", "ltx", {
        T2V: _ONE, T2I: "one call with num_frames=1",
        I2V: "LTXConditionPipeline from the same components: the image as a condition at frame 0",
        EXTEND: "LTXConditionPipeline: the video's last frames as a condition at frame 0",
        CONNECT: "LTXConditionPipeline: a's last frame at frame 0, b's first frame at the last frame",
        LONG: _COND_CHAIN},
        first_frame="conditions", last_frame=True, condition_class="LTXConditionPipeline",
        example="Lightricks/LTX-Video"),
    DiffusersKind("LTXConditionPipeline", "ltx", {
        T2V: _ONE, T2I: "one call with num_frames=1", I2V: "the image as a condition at frame 0",
        EXTEND: "the video's last frames as a condition at frame 0",
        CONNECT: "a's last frame at frame 0, b's first frame at the last frame", LONG: _COND_CHAIN},
        first_frame="conditions", last_frame=True, example="Lightricks/LTX-Video-0.9.5"),
    DiffusersKind("CogVideoXPipeline", "cogvideox", {
        T2V: _ONE,
        EDIT: "CogVideoXVideoToVideoPipeline from the same components (SDEdit: the video noised to strength)"},
        edit_class="CogVideoXVideoToVideoPipeline", example="THUDM/CogVideoX-2b"),
    DiffusersKind("CogVideoXImageToVideoPipeline", "cogvideox", {
        I2V: "the image as image=", EXTEND: "the video's last frame as image=; the new frames follow it",
        LONG: _CHAIN},
        first_frame="image", example="THUDM/CogVideoX-5b-I2V"),
    DiffusersKind("HunyuanVideoPipeline", "hunyuanvideo", {T2V: _ONE, T2I: "one call with num_frames=1"},
                  example="hunyuanvideo-community/HunyuanVideo"),
    DiffusersKind("HunyuanVideoImageToVideoPipeline", "hunyuanvideo", {
        I2V: "the image as image=", EXTEND: "the video's last frame as image=; the new frames follow it",
        LONG: _CHAIN},
        first_frame="image", example="hunyuanvideo-community/HunyuanVideo-I2V"),
    DiffusersKind("HunyuanVideo15Pipeline", "hunyuanvideo15", {T2V: _ONE},
                  example="hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-480p_t2v"),
    DiffusersKind("HunyuanVideo15ImageToVideoPipeline", "hunyuanvideo15", {
        I2V: "the image as image=", EXTEND: "the video's last frame as image=; the new frames follow it",
        LONG: _CHAIN},
        first_frame="image", example="hunyuanvideo-community/HunyuanVideo-1.5-Diffusers-480p_i2v"),
)}


def who_serves(mode: str, family: str | None = None, also: tuple[str, ...] = ()) -> str:
    """A sentence naming the kinds that serve ``mode`` (and the modes ``also``; those of ``family`` first) and
    tenku's own model."""
    kinds = sorted((k for k in KINDS.values() if all(m in k.serves for m in (mode, *also))),
                   key=lambda k: (k.family != family, k.class_name))
    names = [f"a {k.class_name} folder (e.g. {k.example})" for k in kinds[:3]]
    return "; ".join(names + [TENKU_MODEL])


@dataclasses.dataclass(frozen=True)
class DiffusersOptions:
    """Memory and speed options of a diffusers folder (``tenku.json`` ``"options"``; ``tenku generate/serve``
    flags override them). ``dtype``: bf16, fp16 or fp32 (None: bf16 on a GPU, fp32 on a CPU); ``offload``:
    "model" (``enable_model_cpu_offload``: one component on the GPU at a time) or "sequential" (layer by
    layer: least memory, slowest); ``vae_tiling``/``vae_slicing``: decode in tiles / one video at a time;
    ``cache``: a diffusers cache hook on the transformer ("first-block", "mag", "taylorseer");
    ``cache_threshold``: its threshold (first-block, mag; None: diffusers' default); ``compile``:
    ``torch.compile`` the transformer's repeated blocks; ``call``: extra keyword arguments for every
    pipeline call (e.g. ``{"max_sequence_length": 226}``)."""

    dtype: str | None = None
    offload: str | None = None
    vae_tiling: bool = False
    vae_slicing: bool = False
    cache: str | None = None
    cache_threshold: float | None = None
    compile: bool = False
    call: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False)

    DTYPES = ("bf16", "fp16", "fp32")
    OFFLOADS = ("model", "sequential")
    CACHES = ("first-block", "mag", "taylorseer")

    def __post_init__(self):
        for name, value, allowed in (("dtype", self.dtype, self.DTYPES), ("offload", self.offload, self.OFFLOADS),
                                     ("cache", self.cache, self.CACHES)):
            if value is not None and value not in allowed:
                raise ModelFolderError(f"{name} must be one of {', '.join(allowed)} (or unset), got {value!r}")
        if self.cache_threshold is not None and not float(self.cache_threshold) > 0:
            raise ModelFolderError(f"cache_threshold must be positive, got {self.cache_threshold!r}")
        if not isinstance(self.call, dict):
            raise ModelFolderError(f"call must be a JSON object of pipeline arguments, got {self.call!r}")

    def changed(self) -> dict[str, Any]:
        """The fields set away from their defaults (what flags asked for), as plain JSON values."""
        base = DiffusersOptions()
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)
                if getattr(self, f.name) != getattr(base, f.name)}

    def merged(self, **overrides: Any) -> "DiffusersOptions":
        """These options with the given ones on top (None, False and {} keep the folder's; ``call`` merges)."""
        keep = {k: v for k, v in overrides.items() if v is not None and v is not False and v != {}}
        if "call" in keep:
            keep["call"] = {**self.call, **keep["call"]}
        return dataclasses.replace(self, **keep)


def read_index(folder: str | Path) -> dict:
    """A folder's model_index.json; ModelFolderError saying what to pass when there is none or it is broken."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelFolderError(f"model folder not found: {folder}; pass the folder that holds {INDEX_NAME}")
    path = folder / INDEX_NAME
    if not path.is_file():
        raise ModelFolderError(f"{folder} is not a pipeline folder (no {INDEX_NAME}); pass a tenku folder (written "
                               "by save_pretrained or `tenku train`) or a diffusers folder (e.g. `huggingface-cli "
                               "download Wan-AI/Wan2.1-T2V-1.3B-Diffusers --local-dir DIR`)")
    try:
        index = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise ModelFolderError(f"{path} is not valid JSON ({e}); download the folder again") from None
    if not isinstance(index, dict) or not isinstance(index.get("_class_name"), str):
        raise ModelFolderError(f"{path} names no _class_name; download the folder again")
    return index


def pipeline_kind(folder: str | Path, index: dict | None = None) -> DiffusersKind | None:
    """The :class:`DiffusersKind` of a folder, None for a tenku folder; ModelFolderError for any other class."""
    index = read_index(folder) if index is None else index
    name = index["_class_name"]
    if name == TENKU_CLASS:
        return None
    if name not in KINDS:
        raise ModelFolderError(f"{Path(folder) / INDEX_NAME} names the pipeline class {name!r}, which tenku does not "
                               f"run; tenku runs {TENKU_CLASS} folders and the diffusers classes "
                               f"{', '.join(sorted(KINDS))}")
    return KINDS[name]


def _component_config(folder: Path, name: str) -> dict:
    path = folder / name / "config.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelFolderError(f"{folder}: the {name} component is missing ({path} not found); download the whole "
                               "folder again (every subfolder model_index.json lists)") from None
    except (OSError, ValueError) as e:
        raise ModelFolderError(f"{path} cannot be read ({e}); download the folder again") from None


def diffusers_geometry(folder: str | Path, kind: DiffusersKind | None = None) -> Geometry:
    """The :class:`~tenku.geometry.Geometry` of a diffusers folder, from its VAE and transformer configs."""
    folder = Path(folder)
    kind = kind or pipeline_kind(folder)
    vae, dit = _component_config(folder, "vae"), _component_config(folder, "transformer")
    fam = kind.family
    if fam == "wan":
        tf = vae.get("scale_factor_temporal") or 2 ** sum(bool(x) for x in vae.get("temperal_downsample", (0, 1, 1)))
        sf, ch = vae.get("scale_factor_spatial") or 8, vae.get("z_dim", 16)
        patch = tuple(dit.get("patch_size", (1, 2, 2)))
    elif fam == "ltx":
        scaling = vae.get("spatio_temporal_scaling", (True, True, True, False))
        sf = vae.get("spatial_compression_ratio") or vae.get("patch_size", 4) * 2 ** sum(map(bool, scaling))
        tf = vae.get("temporal_compression_ratio") or vae.get("patch_size_t", 1) * 2 ** sum(map(bool, scaling))
        ch = vae.get("latent_channels", 128)
        patch = (dit.get("patch_size_t", 1), dit.get("patch_size", 1), dit.get("patch_size", 1))
    elif fam == "cogvideox":
        sf = 2 ** (len(vae.get("block_out_channels", (1, 1, 1, 1))) - 1)
        tf, ch = int(vae.get("temporal_compression_ratio", 4)), vae.get("latent_channels", 16)
        patch = (1, dit.get("patch_size", 2), dit.get("patch_size", 2))  # the pipeline pads latent frames to pt
    else:  # hunyuanvideo, hunyuanvideo15
        sf, tf = vae.get("spatial_compression_ratio", 8), vae.get("temporal_compression_ratio", 4)
        ch = vae.get("latent_channels", 16)
        patch = (dit.get("patch_size_t", 1), dit.get("patch_size", 1), dit.get("patch_size", 1))
    if len(patch) != 3:
        raise ModelFolderError(f"{folder / 'transformer' / 'config.json'}: patch_size {patch} is not (t, h, w)")
    return Geometry(int(tf), int(sf), int(ch), tuple(int(p) for p in patch))


def folder_modes(folder: str | Path, kind: DiffusersKind) -> tuple[str, ...]:
    """The modes this folder serves: its kind's, narrowed for Wan's image-to-video models, which share one
    class: Wan 2.1 I2V (a CLIP image encoder, no ``pos_embed_seq_len``) takes a first frame only, so no
    connect; Wan 2.1 FLF2V (``pos_embed_seq_len`` set) always takes both a first and a last frame, so connect
    only; Wan 2.2 (no image encoder) takes either."""
    modes = kind.modes
    if kind.class_name == "WanImageToVideoPipeline":
        dit = _component_config(Path(folder), "transformer")
        if dit.get("image_dim") and dit.get("pos_embed_seq_len"):
            modes = (CONNECT,)
        elif dit.get("image_dim"):
            modes = tuple(m for m in modes if m != CONNECT)
    return modes


def read_options(folder: str | Path) -> DiffusersOptions:
    """The options of a folder's ``tenku.json`` (``{"options": {...}}``); the defaults without one."""
    path = Path(folder) / OPTIONS_NAME
    if not path.is_file():
        return DiffusersOptions()
    try:
        opts = json.loads(path.read_text()).get("options", {})
        known = {f.name for f in dataclasses.fields(DiffusersOptions)}
        unknown = sorted(set(opts) - known)
        if unknown:
            raise ModelFolderError(f"{path}: unknown option(s) {unknown}; known: {sorted(known)}")
        return DiffusersOptions(**opts)
    except (OSError, ValueError, AttributeError, TypeError) as e:
        raise ModelFolderError(f"{path} cannot be read ({e}); it holds {{\"options\": {{...}}}}") from None


def diffusers_sample(folder: str | Path, kind: DiffusersKind) -> SampleConfig:
    """Sample defaults: the family's, then the folder's ``sample.json`` (a SampleConfig) on top. No prompt
    expander by default (the published models take prompts as written)."""
    path = Path(folder) / "sample.json"
    base = dict(FAMILIES[kind.family].sample, expander="")
    if path.is_file():
        try:
            base.update({k: v for k, v in json.loads(path.read_text()).items() if k != "_class_name"})
        except (OSError, ValueError) as e:
            raise ModelFolderError(f"{path} cannot be read ({e}); fix or remove it") from None
    return SampleConfig.from_dict(base)


# ---- what is missing or broken, before anything loads ------------------------------------------------

WEIGHT_SUFFIXES = (".safetensors", ".bin")
NO_WEIGHTS = ("tokenizer", "scheduler", "feature_extractor", "image_processor", "guider")  # components of JSON/text


def safetensors_problem(path: Path) -> str | None:
    """Why a .safetensors file is incomplete (its header promises more bytes than it has), or None."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{path} is truncated ({size} bytes, not even a header)"
            (n,) = struct.unpack("<Q", head)
            if n > size - 8:
                return f"{path} is truncated (its header alone needs {n} bytes, the file has {size})"
            header = json.loads(f.read(n))
    except (OSError, ValueError) as e:
        return f"{path} cannot be read as safetensors ({e})"
    end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + n + end != size:
        return f"{path} is truncated: it should have {8 + n + end} bytes, it has {size}"
    return None


def folder_problems(folder: str | Path, index: dict) -> list[str]:
    """What a diffusers folder lacks: components model_index.json lists that are not there, weights missing
    or truncated (each named). Optional components (listed as null) are skipped."""
    folder = Path(folder)
    problems = []
    for name, spec in index.items():
        if name.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or spec[0] is None:
            continue
        sub = folder / name
        if not sub.is_dir():
            problems.append(f"the {name} component ({spec[1]}) is missing: no folder {sub}")
            continue
        if name.startswith(NO_WEIGHTS) or any(w in str(spec[1]) for w in ("Tokenizer", "Processor", "Scheduler")):
            if not any(sub.iterdir()):
                problems.append(f"the {name} component ({spec[1]}) is empty: {sub}")
            continue
        weights = sorted(p for p in sub.iterdir() if p.name.endswith(WEIGHT_SUFFIXES))
        shard_index = [p for p in sub.iterdir() if p.name.endswith(".index.json")]
        if not weights:
            problems.append(f"the {name} component ({spec[1]}) has no weights (no .safetensors in {sub})")
            continue
        for ix in shard_index:
            try:
                shards = set(json.loads(ix.read_text())["weight_map"].values())
            except (OSError, ValueError, KeyError) as e:
                problems.append(f"{ix} cannot be read ({e})")
                continue
            problems += [f"the {name} component lacks the shard {sub / s}" for s in sorted(shards)
                         if not (sub / s).is_file()]
        for w in weights:
            if w.suffix == ".safetensors":
                p = safetensors_problem(w)
                if p:
                    problems.append(p)
    return problems
