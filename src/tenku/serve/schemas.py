"""Request fields and response objects of the OpenAI Videos API (the body itself is read by
:mod:`tenku.serve.body`). Field types follow OpenAI's spec: ``prompt``, ``model``, ``size`` and ``seconds`` are
strings (a JSON number or ``null`` there is a 400), ``seed`` (a tenku extension) is an integer."""

from __future__ import annotations

import base64
import binascii
import re

from tenku.serve.body import Upload
from tenku.serve.errors import APIError, bad_request
from tenku.serve.settings import Capabilities, ServeConfig, parse_size
from tenku.serve.store import Job

SECONDS = re.compile(r"^[0-9]{1,4}(\.[0-9]{1,3})?$")
SIZE = re.compile(r"^[0-9]{1,5}x[0-9]{1,5}$")

def get_str(data: dict, name: str, *, required: bool = False, max_len: int | None = None) -> str | None:
    """A string field: absent (or "") is None; null, numbers, objects and text that is not Unicode are 400s."""
    if name not in data or data[name] == "":
        if required:
            raise bad_request(f"'{name}' is required", param=name, code="missing_required_parameter")
        return None
    value = data[name]
    if not isinstance(value, str):
        got = "null" if value is None else "a file" if isinstance(value, Upload) else type(value).__name__
        raise bad_request(f"'{name}' must be a string, got {got}", param=name, code="invalid_type")
    check_text(value, name)
    if max_len is not None and len(value) > max_len:
        raise bad_request(f"'{name}' is {len(value)} characters long; the limit is {max_len}", param=name,
                          code="string_above_max_length")
    return value


def get_prompt(data: dict, cfg: ServeConfig) -> str:
    prompt = get_str(data, "prompt", required=True, max_len=cfg.max_prompt_chars)
    if not prompt.strip():
        raise bad_request("'prompt' is empty; describe the video to generate", param="prompt",
                          code="missing_required_parameter")
    return prompt


def check_text(value: str, name: str) -> str:
    """400 for a string that cannot be stored as UTF-8 (a lone surrogate such as "\\ud83c")."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request(f"'{name}' is not valid Unicode text (it has a lone surrogate)", param=name,
                          code="invalid_value") from None
    return value


def get_size(data: dict, caps: Capabilities, default: str) -> str:
    value = get_str(data, "size", max_len=16)
    if value is None:
        return default
    value = value.strip().lower()
    if not SIZE.match(value) or value not in caps.sizes:
        raise bad_request(f"size {value[:16]!r} is not served here; supported: {', '.join(caps.sizes)} "
                          "(see GET /v1/models)", param="size", code="unsupported_size")
    parse_size(value)
    return value


def get_seconds(data: dict, caps: Capabilities, default: str | None) -> str:
    """A duration as OpenAI sends it (a string such as "4", "8", "12"); any length up to ``max_seconds`` is
    made, window by window. Returned in a canonical form ("4.50" -> "4.5")."""
    value = get_str(data, "seconds", max_len=16)
    if value is None:
        if default is None:
            raise bad_request("'seconds' is required: the length of the new segment, e.g. \"4\"", param="seconds",
                              code="missing_required_parameter")
        return default
    value = value.strip()
    if not SECONDS.match(value) or not 0 < float(value) <= caps.max_seconds:
        raise bad_request(f"seconds {value[:16]!r} is not supported; send a number of seconds as a string, more "
                          f"than 0 and at most {caps.max_seconds:g} (e.g. {', '.join(caps.seconds)})",
                          param="seconds", code="unsupported_seconds")
    return f"{float(value):g}"


def get_model(data: dict, caps: Capabilities) -> str:
    """The model id the client asked for (the served model or one of its aliases), reported back as asked."""
    value = get_str(data, "model", max_len=128)
    if value is None:
        return caps.model_name
    if value == caps.model_name or value in caps.aliases:
        return value
    raise bad_request(f"model {value[:80]!r} is not served here; use {caps.model_name!r} or an alias: "
                      f"{', '.join(caps.aliases)}", param="model", code="model_not_found")


def get_seed(data: dict) -> int | None:
    value = data.get("seed")
    if value is None or value == "":
        return None
    try:
        if isinstance(value, (bool, float)) or not isinstance(value, (int, str)) or len(str(value)) > 20:
            raise ValueError
        seed = int(value)
    except (TypeError, ValueError):
        raise bad_request("'seed' must be an integer", param="seed", code="invalid_type") from None
    if not 0 <= seed < 2**31:
        raise bad_request("'seed' must be in 0..2147483647", param="seed", code="invalid_value")
    return seed


def decode_image(up: Upload, param: str, max_bytes: int):
    """An uploaded image -> RGB PIL image; 400 for anything that is not a readable image."""
    import warnings

    from PIL import Image, UnidentifiedImageError

    if up.size > max_bytes:
        raise APIError(413, f"'{param}' is {up.size} bytes, over the limit of {max_bytes} bytes", param=param,
                       code="file_too_large")
    if not up.size:
        raise bad_request(f"'{param}' is empty; upload a PNG, JPEG or WebP image", param=param, code="invalid_image")
    try:
        up.file.seek(0)
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(up.file)
        if img.width * img.height > 40_000_000:
            raise bad_request(f"'{param}' is {img.width}x{img.height}; images up to 40 megapixels are accepted",
                              param=param, code="invalid_image")
        img.load()
        return img.convert("RGB")
    except APIError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError,
            Image.DecompressionBombWarning):  # the reason names internals (file objects), so it is not echoed
        raise bad_request(f"'{param}' is not a readable image; upload a PNG, JPEG or WebP image",
                          param=param, code="invalid_image") from None


def reference_image(value, max_bytes: int) -> Upload:
    """``input_reference`` as an upload or ``{"image_url": "data:image/...;base64,..."}`` -> the image."""
    if isinstance(value, Upload):
        return value
    if isinstance(value, dict):
        if value.get("file_id"):
            raise bad_request("'input_reference.file_id' is not supported here; upload the image or send a "
                              "base64 data URL in 'input_reference.image_url'", param="input_reference",
                              code="unsupported_value")
        url = value.get("image_url")
        if isinstance(url, str) and url.startswith("data:") and "," in url:
            head, payload = url.split(",", 1)
            if len(payload) > max_bytes * 4 // 3 + 4:
                raise APIError(413, f"'input_reference' is over the limit of {max_bytes} bytes",
                               param="input_reference", code="file_too_large")
            try:
                return Upload.from_bytes(base64.b64decode(payload, validate=True) if ";base64" in head
                                         else payload.encode("utf-8"))
            except (binascii.Error, ValueError):
                raise bad_request("'input_reference.image_url' is not valid base64", param="input_reference",
                                  code="invalid_image") from None
        raise bad_request("'input_reference.image_url' must be a data URL (data:image/png;base64,...); this "
                          "server does not fetch remote URLs", param="input_reference", code="unsupported_value")
    raise bad_request("'input_reference' must be an uploaded image file or {\"image_url\": data URL}",
                      param="input_reference", code="invalid_type")


def video_ref(data: dict) -> str | Upload:
    """``video`` of extensions/edits: ``{"id": ...}`` (JSON or ``video[id]``) or an uploaded video file."""
    value = data.get("video")
    if isinstance(value, Upload):
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str) and value["id"]:
        return check_text(value["id"], "video.id")
    if value is None:
        raise bad_request("'video' is required: {\"id\": \"video_...\"} or an uploaded video file", param="video",
                          code="missing_required_parameter")
    raise bad_request("'video' must be {\"id\": \"video_...\"} or an uploaded video file", param="video",
                      code="invalid_type")


def video_object(job: Job) -> dict:
    """The OpenAI ``Video`` object for a job."""
    return {
        "id": job.id,
        "object": "video",
        "created_at": int(job.created_at),
        "completed_at": int(job.completed_at) if job.completed_at else None,
        "expires_at": int(job.expires_at) if job.expires_at else None,
        "error": {"code": job.error_code, "message": job.error_message or ""} if job.status == "failed" else None,
        "model": job.model,
        "progress": 100 if job.status == "completed" else int(job.progress),
        "prompt": job.prompt,
        "remixed_from_video_id": job.source_id if job.kind == "remix" else None,
        "seconds": job.seconds,
        "size": job.size,
        "status": job.status,
    }
