"""Server settings (one frozen dataclass; ``tenku serve`` flags map one to one onto its fields)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from tenku import geometry
from tenku.errors import TenkuError
from tenku.models.folder import model_path, read_pipeline_info

if TYPE_CHECKING:
    from tenku.safety.policy import Safety


@dataclass(frozen=True)
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    db_url: str = ""  # default: sqlite:///<data_dir>/jobs.sqlite3
    data_dir: str = "tenku-serve-data"
    workers: int = 1
    model: str = ""  # pipeline folder; default: tenku.pipeline.default_model_path()
    api_keys: tuple[str, ...] = ()
    max_queue: int = 1000  # queued + in_progress jobs; more answers 429
    expire_after: float = 24 * 3600.0  # seconds a finished video's files are kept
    lease_seconds: float = 30.0  # a worker that sends no heartbeat for this long loses its job
    max_attempts: int = 3  # tries per job before it fails with the reason
    rate_limit: int = 120  # job-creating/deleting requests per minute per API key (0: off)
    max_prompt_chars: int = 4000
    max_upload_bytes: int = 10 * 1024 * 1024
    max_body_bytes: int = 12 * 1024 * 1024
    poll_after_ms: int = 500  # hint sent to the openai SDK's poll helper (openai-poll-after-ms)
    num_steps: int = 0  # sampler steps per job (0: the model's default)
    sizes: tuple[str, ...] = ()  # WxH accepted; default: OpenAI's four sizes, then the model's own
    seconds: tuple[str, ...] = ()  # durations listed by /v1/models; default: OpenAI's ("4", "8", "12")
    max_seconds: float = 20.0  # any duration in (0, max_seconds] is accepted
    fps: float = 0.0  # default: from the model's sample.json
    threads: int = 0  # torch threads per worker (0: CPU cores / workers)
    model_aliases: tuple[str, ...] = ()  # "alias=served-name" pairs, on top of DEFAULT_MODEL_ALIASES
    allowed_hosts: tuple[str, ...] = ()  # Host header values served, besides the localhost names ("*": any)
    allowed_origins: tuple[str, ...] = ()  # Origins allowed to POST/DELETE, besides the server's own
    trusted_proxies: tuple[str, ...] = ()  # addresses whose X-Forwarded-For is believed
    body_timeout: float = 30.0  # seconds a request body may take to arrive
    max_concurrent_uploads: int = 4  # large request bodies (over 1 MiB) read at once; more answers 429
    auth_fail_limit: int = 20  # wrong API keys per client address per minute before 429 (0: off)
    # the workers' memory and speed options: DiffusersOptions fields set by flags (unset: the model folder's)
    model_options_set: dict = dataclasses.field(default_factory=dict)

    def model_options(self):
        """The workers' :class:`tenku.models.diffusers_folder.DiffusersOptions` (flags over the folder's)."""
        from tenku.models.diffusers_folder import DiffusersOptions

        return DiffusersOptions().merged(**self.model_options_set)

    def resolved_db_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'jobs.sqlite3'}"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServeConfig":
        d = json.loads(text)
        for k in ("api_keys", "sizes", "seconds", "model_aliases", "allowed_hosts", "allowed_origins",
                  "trusted_proxies"):
            d[k] = tuple(d.get(k) or ())
        return cls(**d)


def keys_from_env(cli_keys: list[str] | None) -> tuple[str, ...]:
    """API keys from ``--api-key`` (repeatable) and ``TENKU_API_KEYS`` (comma separated)."""
    keys = [k.strip() for k in (cli_keys or []) if k.strip()]
    keys += [k.strip() for k in os.environ.get("TENKU_API_KEYS", "").split(",") if k.strip()]
    for k in keys:
        if len(k) < 8 or any(c.isspace() for c in k):
            raise TenkuError("API keys must be at least 8 characters without spaces; choose a longer random key")
    return tuple(dict.fromkeys(keys))


SPEC_SIZES = ("720x1280", "1280x720", "1024x1792", "1792x1024")  # OpenAI's sizes; the first is its default
SPEC_SECONDS = ("4", "8", "12")  # OpenAI's durations; "4" is its default
DEFAULT_MODEL_ALIASES = ("tenku", "sora-2", "sora-2-pro", "sora-2-2025-10-06", "sora-2-pro-2025-10-06",
                         "sora-2-2025-12-08")  # OpenAI's model ids: migrated code runs unchanged


@dataclass(frozen=True)
class Capabilities:
    """What the served model can do: the sizes and durations the API accepts, and how each size is made.

    Size policy: a size the model makes natively (its own sizes, or any size on its patch grid up to 4x its
    pixel count) is generated as asked. Any other size, such as OpenAI's 720x1280, is generated at the
    model's native pixel count with the same aspect ratio (on its patch grid), then scaled to cover the
    asked size and centre-cropped; the video object reports the size that was asked, and the file has it.
    """

    model_name: str
    sizes: tuple[str, ...]
    seconds: tuple[str, ...]
    fps: float
    temporal_factor: int = 4
    default_size: str = ""
    default_seconds: str = ""
    native_sizes: tuple[str, ...] = ()
    multiple: tuple[int, int] = (1, 1)  # (height, width) multiples of the model's patch grid
    max_seconds: float = 20.0
    aliases: tuple[str, ...] = ()
    modes: tuple[str, ...] = ()  # the tenku modes the model serves (tenku.models.diffusers_folder.ALL_MODES names)
    backend: str = "tenku"
    class_name: str = "TenkuPipeline"
    max_frames: int = 0  # the most frames one call makes (longer: window by window, where long_video is served)

    def serves(self, mode: str) -> bool:
        return not self.modes or mode in self.modes

    def generation_size(self, size: str) -> tuple[int, int]:
        """(width, height) the model generates for an accepted ``size`` (see the class's size policy)."""
        w, h = parse_size(size)
        mh, mw = self.multiple
        nw, nh = parse_size(self.native_sizes[0])
        area = nw * nh
        if size in self.native_sizes or (w % mw == 0 and h % mh == 0 and w * h <= 4 * area):
            return w, h
        scale = (area / (w * h)) ** 0.5
        return max(mw, round(w * scale / mw) * mw), max(mh, round(h * scale / mh) * mh)

    def as_dict(self) -> dict:
        return {
            "sizes": list(self.sizes),
            "generated_at": {s: "x".join(map(str, self.generation_size(s))) for s in self.sizes},
            "seconds": list(self.seconds),
            "max_seconds": self.max_seconds,
            "fps": self.fps,
            "default_size": self.default_size,
            "default_seconds": self.default_seconds,
            "aliases": list(self.aliases),
            "modes": list(self.modes),
            "backend": self.backend,
            "pipeline_class": self.class_name,
            "max_frames_per_call": self.max_frames,
        }


def resolve_model(cfg: ServeConfig) -> str:
    return str(model_path(cfg.model or None))


def capabilities(cfg: ServeConfig) -> Capabilities:
    """Sizes and durations from the model folder (``sample.json`` and the component configs), overridable by
    flags."""
    info = read_pipeline_info(resolve_model(cfg))  # the folder's JSON: no weights, no torch
    name = info.name
    w, h = int(info.sample.width), int(info.sample.height)
    fps = float(cfg.fps or info.sample.fps)
    native = tuple(dict.fromkeys([f"{w}x{h}", f"{h}x{w}"]))
    sizes = cfg.sizes or tuple(dict.fromkeys(SPEC_SIZES + native))
    for s in sizes:
        parse_size(s)
    if not 0 < cfg.max_seconds <= 600:
        raise TenkuError(f"--max-seconds must be in (0, 600], got {cfg.max_seconds}")
    max_seconds = float(cfg.max_seconds)
    if "long_video" not in info.modes:  # one call is the longest video this model makes
        max_seconds = min(max_seconds, round(info.max_frames / fps, 2))
    seconds = cfg.seconds or tuple(s for s in SPEC_SECONDS if float(s) <= max_seconds) or (f"{max_seconds:g}",)
    for s in seconds:
        if not _is_seconds(s) or float(s) > max_seconds:
            raise TenkuError(f"--seconds values must be positive numbers up to {max_seconds:g} s (--max-seconds, or "
                             f"the longest video model {name} makes), got {s!r}")
    mh, mw = info.geometry.spatial_multiple
    if w % mw or h % mh:
        raise TenkuError(f"model {name}: its sample.json size {w}x{h} does not fit its patch grid "
                         f"({mw}x{mh}); fix the model folder")
    aliases = dict.fromkeys(DEFAULT_MODEL_ALIASES)
    for pair in cfg.model_aliases:
        alias, _, target = pair.partition("=")
        alias, target = alias.strip(), target.strip()
        if not alias or target not in (name, "tenku"):
            raise TenkuError(f"--model-alias is written ALIAS={name} (this server serves one model, {name}); "
                             f"got {pair!r}")
        aliases[alias] = None
    tf = info.geometry.temporal_factor
    return Capabilities(
        model_name=name, sizes=tuple(sizes), seconds=tuple(seconds), fps=fps, temporal_factor=tf,
        default_size=sizes[0], default_seconds="4" if "4" in seconds else seconds[0], native_sizes=native,
        multiple=(mh, mw), max_seconds=max_seconds, aliases=tuple(a for a in aliases if a != name),
        modes=info.modes, backend=info.backend, class_name=info.class_name, max_frames=info.max_frames,
    )


def _is_seconds(s: str) -> bool:
    try:
        return 0 < float(s) <= 600
    except ValueError:
        return False


def parse_size(s: str) -> tuple[int, int]:
    """A served size ``"WxH"`` -> (width, height): :func:`tenku.geometry.parse_size`, 8..8192 per side."""
    w, h = geometry.parse_size(s)
    if not (8 <= w <= 8192 and 8 <= h <= 8192):
        raise TenkuError(f"size {s!r} is out of range (8..8192 per side)")
    return w, h


# ---- what the server reads from its environment (this module is the server's edge) ------------------

def serve_safety() -> "Safety":
    """The policy every request and job follows: :meth:`tenku.safety.policy.Safety.from_env`, and the prompt
    is left out of the C2PA manifest unless ``TENKU_SERVE_C2PA_PROMPT=1``."""
    from tenku.safety.policy import Safety

    return Safety.from_env(include_prompt=os.environ.get("TENKU_SERVE_C2PA_PROMPT", "0") == "1")


def worker_device() -> str:
    """The torch device workers generate on (``TENKU_DEVICE``, default cpu)."""
    return os.environ.get("TENKU_DEVICE", "cpu")


def worker_config() -> "ServeConfig | None":
    """The settings ``tenku serve`` hands its workers (``TENKU_SERVE_CONFIG``), or None when unset."""
    raw = os.environ.get("TENKU_SERVE_CONFIG")
    return ServeConfig.from_json(raw) if raw else None
