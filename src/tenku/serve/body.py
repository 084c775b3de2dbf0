"""Reading request bodies: JSON or multipart only, a size cap, a deadline for the body to arrive, and bounded
memory for uploads.

The openai SDK sends ``POST /v1/videos``, ``/v1/videos/extensions`` and ``/v1/videos/edits`` as
multipart/form-data (nested objects flattened as ``video[id]``, ``input_reference[image_url]``); other clients
send JSON. Both are read here into one dict. Multipart bodies are parsed as they arrive: uploaded files are
spooled (the first MiB in memory, the rest in a temporary file), so a 10 MiB upload costs about 1 MiB of memory,
and at most ``max_concurrent_uploads`` large bodies are read at once.
"""

from __future__ import annotations

import asyncio
import io
import json
from dataclasses import dataclass
from typing import AsyncIterator, BinaryIO

from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import ClientDisconnect, Request

from tenku.serve.errors import APIError, bad_request
from tenku.serve.settings import ServeConfig

LARGE_BODY = 1024 * 1024  # bodies over this (or of unknown length) take an upload slot


@dataclass
class Upload:
    """An uploaded file: its bytes are in ``file`` (spooled to disk past 1 MiB), ``size`` bytes long."""

    filename: str
    content_type: str
    file: BinaryIO
    size: int

    def read(self) -> bytes:
        self.file.seek(0)
        return self.file.read()

    @classmethod
    def from_bytes(cls, data: bytes, filename: str = "", content_type: str = "") -> "Upload":
        return cls(filename, content_type, io.BytesIO(data), len(data))


class StrictMultiPartParser(MultiPartParser):
    """Starlette's parser reads a field that is not UTF-8 as Latin-1 (mojibake in the prompt); here it is a 400."""

    def on_part_end(self) -> None:
        if self._current_part.file is None:
            try:
                bytes(self._current_part.data).decode("utf-8")
            except UnicodeDecodeError:
                raise MultiPartException(f"field '{self._current_part.field_name[:40]}' is not UTF-8 text") from None
        super().on_part_end()


class ClientGone(APIError):
    """The client closed the connection before its body arrived: nothing to answer, nothing to log."""

    def __init__(self):
        super().__init__(400, "the client disconnected before the request body arrived", code="client_disconnected")


class BodyReader:
    """One per app: reads bodies under the configured limits and counts large bodies in flight."""

    def __init__(self, cfg: ServeConfig):
        self.cfg = cfg
        self.large_in_flight = 0  # touched only on the event loop's thread

    async def _chunks(self, request: Request, limit: int) -> AsyncIterator[bytes]:
        """The body as it arrives: 413 past ``limit`` bytes, 408 when it takes longer than ``body_timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.cfg.body_timeout
        stream = request.stream().__aiter__()
        n = 0
        while True:
            try:
                chunk = await asyncio.wait_for(stream.__anext__(), timeout=max(0.001, deadline - loop.time()))
            except StopAsyncIteration:
                return
            except asyncio.TimeoutError:
                raise APIError(408, f"the request body did not arrive within {self.cfg.body_timeout:g} s",
                               code="request_timeout", headers={"Connection": "close"}) from None
            except ClientDisconnect:
                raise ClientGone() from None
            n += len(chunk)
            if n > limit:
                raise APIError(413, f"request body is over the limit of {limit} bytes; send a smaller upload",
                               code="request_too_large", headers={"Connection": "close"})
            yield chunk

    async def read_payload(self, request: Request) -> dict:
        """JSON or form body -> dict; files become :class:`Upload`; ``a[b]`` form keys become nested dicts."""
        cfg = self.cfg
        limit = cfg.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or len(declared) > 15):
            raise bad_request("the Content-Length header is not a number", code="invalid_body")
        if declared and int(declared) > limit:
            raise APIError(413, f"request body of {declared} bytes is over the limit of {limit} bytes; "
                           "send a smaller upload", code="request_too_large", headers={"Connection": "close"})
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("multipart/form-data", "application/json") and not ctype.endswith("+json"):
            raise APIError(415, f"unsupported content type {ctype[:80]!r}; send application/json or "
                           "multipart/form-data with a Content-Type header", code="unsupported_media_type")
        large = declared is None or int(declared) > LARGE_BODY
        if large and self.large_in_flight >= cfg.max_concurrent_uploads:
            raise APIError(429, f"{cfg.max_concurrent_uploads} uploads are being received already; retry shortly",
                           type="rate_limit_error", code="too_many_uploads", headers={"Retry-After": "2"})
        self.large_in_flight += large
        try:
            if ctype == "multipart/form-data":
                return await self._form(request, limit)
            return await self._json(request, limit)
        finally:
            self.large_in_flight -= large

    async def _json(self, request: Request, limit: int) -> dict:
        body = b"".join([c async for c in self._chunks(request, limit)])
        if not body.strip():
            raise bad_request("the request body is empty; send a JSON object", code="invalid_json")
        try:
            data = json.loads(body, parse_constant=_no_constant)
        except RecursionError:
            raise bad_request("the request body is nested too deeply; send a flat JSON object",
                              code="invalid_json") from None
        except UnicodeDecodeError:
            raise bad_request("the request body is not UTF-8 text; send a JSON object", code="invalid_json") from None
        except ValueError as e:
            raise bad_request(f"the request body is not valid JSON ({e}); send a JSON object",
                              code="invalid_json") from None
        if not isinstance(data, dict):
            raise bad_request(f"the request body must be a JSON object, got {type(data).__name__}",
                              code="invalid_json")
        return data

    async def _form(self, request: Request, limit: int) -> dict:
        cfg = self.cfg
        parser = StrictMultiPartParser(request.headers, self._chunks(request, limit), max_files=4, max_fields=32,
                                 max_part_size=cfg.max_prompt_chars * 4 + 1024)
        try:
            form = await parser.parse()
        except MultiPartException as e:
            raise bad_request(f"the form body could not be parsed: {e.message}", code="invalid_body") from None
        except UnicodeDecodeError:
            raise bad_request("a form field is not UTF-8 text", code="invalid_body") from None
        out: dict = {}
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                size = value.size or 0
                if size > cfg.max_upload_bytes:
                    raise APIError(413, f"upload '{key[:40]}' is {size} bytes, over the limit of "
                                   f"{cfg.max_upload_bytes} bytes", param=key[:40], code="file_too_large")
                value = Upload(value.filename or "", value.content_type or "", value.file, size)
            if "[" in key and key.endswith("]"):
                outer, inner = key[:-1].split("[", 1)
                slot = out.setdefault(outer, {})
                if not isinstance(slot, dict):
                    raise bad_request(f"field '{outer[:40]}' is given both as a value and as an object",
                                      param=outer[:40])
                slot[inner] = value
            else:
                if isinstance(out.get(key), dict):
                    raise bad_request(f"field '{key[:40]}' is given both as a value and as an object",
                                      param=key[:40])
                out[key] = value
        return out


def _no_constant(name: str):
    raise ValueError(f"{name} is not a JSON value")


__all__ = ["BodyReader", "Upload", "ClientGone"]
