"""Server settings (one frozen dataclass; ``tenku serve`` flags map one to one onto its fields)."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from tenku.errors import TenkuError


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
    sizes: tuple[str, ...] = ()  # WxH accepted; default: from the model's sample.json
    seconds: tuple[str, ...] = ()  # durations accepted; default: ("1", "2", "4")
    fps: float = 0.0  # default: from the model's sample.json
    threads: int = 0  # torch threads per worker (0: CPU cores / workers)

    def resolved_db_url(self) -> str:
        if self.db_url:
            return self.db_url
        return f"sqlite:///{Path(self.data_dir).resolve() / 'jobs.sqlite3'}"

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "ServeConfig":
        d = json.loads(text)
        for k in ("api_keys", "sizes", "seconds"):
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


@dataclass(frozen=True)
class Capabilities:
    """What the served model can do: the sizes and durations the API accepts."""

    model_name: str
    sizes: tuple[str, ...]
    seconds: tuple[str, ...]
    fps: float
    temporal_factor: int = 4
    default_size: str = ""
    default_seconds: str = ""

    def frames_for(self, seconds: str) -> int:
        """Frames for a duration: 1 + temporal_factor * k, the lengths the causal VAE decodes."""
        target = max(1.0, float(seconds) * self.fps)
        k = max(1, round((target - 1) / self.temporal_factor))
        return 1 + self.temporal_factor * k

    def as_dict(self) -> dict:
        return {
            "sizes": list(self.sizes),
            "seconds": list(self.seconds),
            "fps": self.fps,
            "default_size": self.default_size,
            "default_seconds": self.default_seconds,
        }


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def resolve_model(cfg: ServeConfig) -> str:
    from tenku.pipeline import model_path

    return str(model_path(cfg.model or None))


def capabilities(cfg: ServeConfig) -> Capabilities:
    """Sizes and durations from the model folder (``sample.json``, ``vae/config.json``), overridable by flags."""
    model = resolve_model(cfg)
    folder = Path(model)
    if not (folder / "model_index.json").is_file():
        raise TenkuError(
            f"{folder} is not a tenku pipeline folder (no model_index.json); pass --model with a folder "
            "written by save_pretrained or tenku.testing.make_tiny_pipeline"
        )
    name = folder.resolve().name
    sample = _read_json(folder / "sample.json")
    vae = _read_json(folder / "vae" / "config.json")
    w, h = int(sample.get("width", 64)), int(sample.get("height", 64))
    fps = float(cfg.fps or sample.get("fps", 8))
    sizes = cfg.sizes or tuple(dict.fromkeys([f"{w}x{h}", f"{h}x{w}"]))
    seconds = cfg.seconds or ("1", "2", "4")
    for s in seconds:
        if not _is_seconds(s):
            raise TenkuError(f"--seconds values must be positive numbers, got {s!r}")
    dit = _read_json(folder / "transformer" / "config.json")
    patch = dit.get("patch_size") or (1, 1, 1)
    mh, mw = int(vae.get("spatial_factor", 1)) * int(patch[1]), int(vae.get("spatial_factor", 1)) * int(patch[2])
    for s in sizes:
        sw, sh = parse_size(s)
        if sw % mw or sh % mh:
            raise TenkuError(f"size {s} does not fit model {name}: width must be a multiple of {mw} and height "
                             f"a multiple of {mh}; change --sizes")
    tf = int(vae.get("temporal_factor", 4) or 1)
    return Capabilities(
        model_name=name, sizes=tuple(sizes), seconds=tuple(seconds), fps=fps, temporal_factor=tf,
        default_size=sizes[0], default_seconds="4" if "4" in seconds else seconds[0],
    )


def _is_seconds(s: str) -> bool:
    try:
        return 0 < float(s) <= 600
    except ValueError:
        return False


def parse_size(s: str) -> tuple[int, int]:
    """``"WxH"`` -> (width, height)."""
    try:
        w, h = (int(v) for v in s.lower().split("x"))
    except ValueError:
        raise TenkuError(f"a size is written WIDTHxHEIGHT, e.g. 64x48; got {s!r}") from None
    if not (8 <= w <= 8192 and 8 <= h <= 8192):
        raise TenkuError(f"size {s!r} is out of range (8..8192 per side)")
    return w, h
