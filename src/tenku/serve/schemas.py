"""Request parsing and response objects of the OpenAI Videos API.

The openai SDK sends ``POST /v1/videos``, ``/v1/videos/extensions`` and ``/v1/videos/edits`` as
multipart/form-data (nested objects flattened as ``video[id]``, ``input_reference[image_url]``); other
clients send JSON. Both are read here into one dict, with the body size capped before parsing.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
from dataclasses import dataclass

from starlette.datastructures import UploadFile
from starlette.requests import Request

from tenku.serve.errors import APIError, bad_request
from tenku.serve.settings import Capabilities, ServeConfig
from tenku.serve.store import Job

MODEL_ALIASES = ("tenku", "sora-2", "sora-2-pro")


@dataclass
class Upload:
    filename: str
    content_type: str
    data: bytes


async def read_body_capped(request: Request, limit: int) -> bytes:
    """Read the request body, answering 413 as soon as it passes ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise APIError(413, f"request body of {declared} bytes is over the limit of {limit} bytes; "
                       "send a smaller upload", code="request_too_large")
    chunks, n = [], 0
    async for chunk in request.stream():
        n += len(chunk)
        if n > limit:
            raise APIError(413, f"request body is over the limit of {limit} bytes; send a smaller upload",
                           code="request_too_large")
        chunks.append(chunk)
    body = b"".join(chunks)
    request._body = body  # Request.stream() and .form() read the cached body from here
    return body


async def read_payload(request: Request, cfg: ServeConfig) -> dict:
    """JSON or form body -> dict; files become :class:`Upload`; ``a[b]`` form keys become nested dicts."""
    body = await read_body_capped(request, cfg.max_body_bytes)
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype in ("multipart/form-data", "application/x-www-form-urlencoded"):
        try:
            form = await request.form(max_files=4, max_fields=32, max_part_size=cfg.max_prompt_chars * 4 + 1024)
        except Exception as e:  # starlette raises its own MultiPartException / HTTPException for bad bodies
            raise bad_request(f"the form body could not be parsed: {getattr(e, 'detail', None) or e}",
                              code="invalid_body") from None
        out: dict = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                if value.size is not None and value.size > cfg.max_upload_bytes:
                    raise APIError(413, f"upload '{key}' is {value.size} bytes, over the limit of "
                                   f"{cfg.max_upload_bytes} bytes", param=key, code="file_too_large")
                value = Upload(value.filename or "", value.content_type or "", await value.read())
            if "[" in key and key.endswith("]"):
                outer, inner = key[:-1].split("[", 1)
                slot = out.setdefault(outer, {})
                if not isinstance(slot, dict):
                    raise bad_request(f"field '{outer}' is given both as a value and as an object", param=outer)
                slot[inner] = value
            else:
                out[key] = value
        return out
    if ctype in ("application/json", "") or ctype.endswith("+json"):
        if not body.strip():
            raise bad_request("the request body is empty; send a JSON object", code="invalid_json")
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError) as e:
            raise bad_request(f"the request body is not valid JSON ({e}); send a JSON object",
                              code="invalid_json") from None
        if not isinstance(data, dict):
            raise bad_request(f"the request body must be a JSON object, got {type(data).__name__}",
                              code="invalid_json")
        return data
    raise APIError(415, f"unsupported content type {ctype!r}; send application/json or multipart/form-data",
                   code="unsupported_media_type")


def get_str(data: dict, name: str, *, required: bool = False, max_len: int | None = None) -> str | None:
    value = data.get(name)
    if value is None or value == "":
        if required:
            raise bad_request(f"'{name}' is required", param=name, code="missing_required_parameter")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise bad_request(f"'{name}' must be a string, got {type(value).__name__}", param=name, code="invalid_type")
    value = str(value)
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


def get_choice(data: dict, name: str, allowed: tuple[str, ...], default: str, what: str) -> str:
    value = get_str(data, name)
    if value is None:
        return default
    if isinstance(data.get(name), float) and float(value).is_integer():
        value = str(int(float(value)))
    if value not in allowed:
        raise bad_request(f"{what} {value!r} is not supported by this model; supported: {', '.join(allowed)}",
                          param=name, code=f"unsupported_{name}")
    return value


def get_model(data: dict, caps: Capabilities) -> str:
    value = get_str(data, "model")
    if value is None or value == caps.model_name or value in MODEL_ALIASES:
        return caps.model_name
    raise bad_request(f"model {value!r} is not served here; use {caps.model_name!r}", param="model",
                      code="model_not_found")


def get_seed(data: dict) -> int | None:
    value = data.get("seed")
    if value is None or value == "":
        return None
    try:
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError
        seed = int(value)
    except (TypeError, ValueError):
        raise bad_request(f"'seed' must be an integer, got {value!r}", param="seed", code="invalid_type") from None
    if not 0 <= seed < 2**31:
        raise bad_request("'seed' must be in 0..2147483647", param="seed", code="invalid_value")
    return seed


def decode_image(data: bytes, param: str, max_bytes: int):
    """Bytes of an uploaded image -> RGB PIL image; 400 for anything that is not a readable image."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > max_bytes:
        raise APIError(413, f"'{param}' is {len(data)} bytes, over the limit of {max_bytes} bytes", param=param,
                       code="file_too_large")
    if not data:
        raise bad_request(f"'{param}' is empty; upload a PNG, JPEG or WebP image", param=param, code="invalid_image")
    try:
        img = Image.open(io.BytesIO(data))
        if img.width * img.height > 40_000_000:
            raise bad_request(f"'{param}' is {img.width}x{img.height}; images up to 40 megapixels are accepted",
                              param=param, code="invalid_image")
        img.load()
        return img.convert("RGB")
    except APIError:
        raise
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as e:
        raise bad_request(f"'{param}' is not a readable image ({e}); upload a PNG, JPEG or WebP image",
                          param=param, code="invalid_image") from None


def reference_image_bytes(value, max_bytes: int) -> bytes:
    """``input_reference`` as an upload or ``{"image_url": "data:image/...;base64,..."}`` -> image bytes."""
    if isinstance(value, Upload):
        return value.data
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
                return base64.b64decode(payload, validate=True) if ";base64" in head else payload.encode()
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
        return value["id"]
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
