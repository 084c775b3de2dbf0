"""The safety steps of writing a generated file: frame check, watermark before encoding, C2PA last.

:func:`tenku.pipeline.output.save_output` calls :func:`prepare_frames` on the frames and
:func:`sign_output` on the encoded file. Set ``TENKU_PROVENANCE=0`` to write unmarked, unsigned files
(for debugging only; outputs then carry no provenance).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import numpy as np

WATERMARK_SCHEME = "tenku-ss-v3"


def provenance_enabled() -> bool:
    return os.environ.get("TENKU_PROVENANCE", "1").lower() not in ("0", "off", "false")


def prepare_frames(frames: np.ndarray, metadata: dict) -> tuple[np.ndarray, dict]:
    """Run the output-frame check, then embed the watermark. Returns (marked frames, watermark info)."""
    from tenku.safety import moderation, watermark

    moderation.check_frames(frames)
    job_id = str(metadata.get("job_id") or uuid.uuid4().hex)
    payload = watermark.make_payload(str(metadata.get("model") or "tenku"), job_id)
    marked = watermark.embed(frames, payload)
    return marked, {"scheme": WATERMARK_SCHEME, "payload": f"{payload:08x}", "job_id": job_id}


def sign_output(path: str | Path, metadata: dict, watermark_info: dict | None = None,
                include_prompt: bool = True, dest: str | Path | None = None) -> Path:
    """Sign ``path`` (into ``dest`` if given) with a C2PA manifest describing the generation."""
    from tenku.safety import provenance

    params = {k: v for k, v in metadata.items() if k not in ("model", "model_path", "tenku_version", "job_id")}
    return provenance.sign_file(path, dest=dest, model=str(metadata.get("model") or "unknown"), parameters=params,
                                include_prompt=include_prompt, watermark=watermark_info)
