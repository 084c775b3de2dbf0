"""The FastAPI app: the OpenAI Videos API (``/v1/videos``...), ``/v1/models`` and the web page at ``/``.

The API process only reads and writes the job store and files; generation happens in worker processes
(:mod:`tenku.serve.worker`). Every error, including validation errors and unknown routes, is answered in
OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``; bad input never gets a 5xx.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import hashlib
import hmac
import random
import sys
import threading
import time
from importlib import resources
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenku.serve import schemas as S
from tenku.serve.errors import APIError, bad_request, error_body, not_found
from tenku.serve.files import VARIANTS, is_video_id, remove_job_files, uploads_dir, variant_path
from tenku.serve.settings import Capabilities, ServeConfig, capabilities
from tenku.serve.store import Job, JobStore, new_video_id


class RateLimiter:
    """At most ``per_minute`` requests per key in any 60-second window."""

    def __init__(self, per_minute: int):
        self.per_minute = per_minute
        self._hits: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def check(self, key: str) -> None:
        if self.per_minute <= 0:
            return
        now = time.monotonic()
        with self._lock:
            q = self._hits[key]
            while q and now - q[0] >= 60.0:
                q.popleft()
            if len(q) >= self.per_minute:
                wait = max(1, int(60.0 - (now - q[0])) + 1)
                raise APIError(429, f"rate limit of {self.per_minute} requests per minute reached; retry in {wait} s",
                               type="rate_limit_error", code="rate_limit_exceeded", headers={"Retry-After": str(wait)})
            q.append(now)


def _moderate(text: str) -> None:
    """Prompt moderation (tenku.safety.moderation) before a job is queued: 400 ``moderation_blocked``."""
    from tenku.safety.moderation import ModerationError, ModerationUnavailableError, ensure_allowed

    try:
        ensure_allowed(text)
    except ModerationError as e:
        raise APIError(400, f"the prompt was refused by moderation (category: {e.category}); rephrase it",
                       param="prompt", code="moderation_blocked") from None
    except ModerationUnavailableError as e:  # fail closed, and say it is the server's side, not the prompt
        raise APIError(503, f"moderation is unavailable, so no video can be queued: {e}",
                       type="server_error", code="moderation_unavailable") from None


def create_app(cfg: ServeConfig, store: JobStore | None = None, caps: Capabilities | None = None) -> FastAPI:
    caps = caps or capabilities(cfg)
    store = store or JobStore(cfg.resolved_db_url(), lease_seconds=cfg.lease_seconds, max_attempts=cfg.max_attempts)
    data_dir = Path(cfg.data_dir)
    uploads_dir(data_dir).mkdir(parents=True, exist_ok=True)
    key_owner = {k: hashlib.sha256(k.encode()).hexdigest()[:16] for k in cfg.api_keys}
    limiter = RateLimiter(cfg.rate_limit)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        task = asyncio.create_task(_housekeeping())
        try:
            yield
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _housekeeping() -> None:
        while True:
            try:
                await run_in_threadpool(_housekeep_once)
            except Exception as e:  # keep serving; the next round tries again
                print(f"housekeeping: {type(e).__name__}: {e}", file=sys.stderr, flush=True)
            await asyncio.sleep(max(0.5, min(5.0, cfg.lease_seconds / 2)))

    def _housekeep_once() -> None:
        store.reap()
        for job in store.due_for_expiry():
            remove_job_files(data_dir, job.id, job.input_path)
            store.mark_expired(job.id)

    app = FastAPI(title="tenku", version="1", lifespan=lifespan, docs_url="/docs", redoc_url=None)
    app.state.store, app.state.cfg, app.state.caps = store, cfg, caps

    # ---- errors in OpenAI's shape --------------------------------------------------------------
    @app.exception_handler(APIError)
    async def _api_error(request: Request, e: APIError):
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, e: RequestValidationError):
        errs = e.errors()
        first = errs[0] if errs else {}
        loc = [str(x) for x in first.get("loc", ()) if x not in ("query", "path", "body")]
        msg = f"{'.'.join(loc) or 'request'}: {first.get('msg', 'invalid value')}"
        return JSONResponse(error_body(msg, param=".".join(loc) or None, code="invalid_value"), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        msg = f"no route {request.method} {request.url.path}" if e.status_code in (404, 405) else str(e.detail)
        return JSONResponse(error_body(msg, code=code), status_code=e.status_code)

    @app.exception_handler(Exception)
    async def _server_error(request: Request, e: Exception):
        print(f"internal error on {request.method} {request.url.path}: {type(e).__name__}: {e}", file=sys.stderr)
        return JSONResponse(error_body("internal server error; see the server log", type="server_error",
                                       code="internal_error"), status_code=500)

    # ---- access --------------------------------------------------------------------------------
    async def authorize(request: Request) -> str:  # async: no thread hop for a few string compares
        """The caller's owner tag ("" without keys); 401 without a configured key; rate limit on writes."""
        owner = ""
        if cfg.api_keys:
            auth = request.headers.get("authorization", "")
            token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            match = next((o for k, o in key_owner.items() if hmac.compare_digest(k.encode(), token.encode())), None)
            if match is None:
                raise APIError(401, "missing or wrong API key; send 'Authorization: Bearer KEY'",
                               type="invalid_request_error", code="invalid_api_key")
            owner = match
        if request.method in ("POST", "DELETE"):
            limiter.check(owner or (request.client.host if request.client else ""))
        return owner

    def _job_or_404(video_id: str, owner: str) -> Job:
        if not is_video_id(video_id):
            raise not_found(f"no video with id {video_id[:80]!r}; ids look like video_ followed by 32 hex digits",
                            param="video_id", code="invalid_video_id")
        job = store.get(video_id, owner=owner)
        if job is None:
            raise not_found(f"no video with id {video_id!r}", param="video_id", code="video_not_found")
        return job

    def _completed_source(video_id: str, owner: str, param: str) -> Job:
        job = _job_or_404(video_id, owner)
        if job.status != "completed":
            raise bad_request(f"video {video_id} is {job.status}; only completed videos can be used here",
                              param=param, code="invalid_video_state")
        if job.files_expired:
            raise APIError(410, f"the files of video {video_id} have expired", param=param, code="video_expired")
        return job

    def _queue(owner: str, **kw) -> Job:
        seed = kw.pop("seed", None)
        job = store.create(owner=owner, model=caps.model_name, max_queue=cfg.max_queue,
                           seed=random.randrange(2**31) if seed is None else seed, **kw)
        if job is None:
            raise APIError(429, f"the queue is full ({cfg.max_queue} jobs queued or running); retry later",
                           type="rate_limit_error", code="queue_full", headers={"Retry-After": "5"})
        return job

    def _save_upload_image(img, size: str) -> str:
        from tenku.serve.settings import parse_size

        w, h = parse_size(size)
        img = _cover(img, w, h)
        path = uploads_dir(data_dir) / f"{new_video_id()}.png"
        from tenku.media import atomic_path

        with atomic_path(path) as tmp:
            img.save(tmp, format="PNG")
        return str(path)

    def _save_upload_video(up: S.Upload) -> str:
        from tenku.media import atomic_path, probe

        if len(up.data) > cfg.max_upload_bytes:
            raise APIError(413, f"'video' is over the limit of {cfg.max_upload_bytes} bytes", param="video",
                           code="file_too_large")
        path = uploads_dir(data_dir) / f"{new_video_id()}.mp4"
        with atomic_path(path) as tmp:
            tmp.write_bytes(up.data)
            try:
                info = probe(tmp)
                if not info:
                    raise ValueError("no video stream")
            except Exception as e:
                raise bad_request(f"'video' is not a readable video ({e}); upload an mp4", param="video",
                                  code="invalid_video") from None
        return str(path)

    # ---- the web page and model info ---------------------------------------------------------
    static = resources.files("tenku.serve") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    def index():
        return HTMLResponse((static / "index.html").read_text(encoding="utf-8"))

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():  # browsers ask for it on every page; an SVG icon (every current browser shows one)
        return Response((static / "favicon.svg").read_bytes(), media_type="image/svg+xml",
                        headers={"Cache-Control": "max-age=86400"})

    def _model_object() -> dict:
        return {"id": caps.model_name, "object": "model", "created": 0, "owned_by": "tenku",
                "capabilities": caps.as_dict(), "auth_required": bool(cfg.api_keys)}

    @app.get("/v1/models")
    def list_models(owner: str = Depends(authorize)):
        return {"object": "list", "data": [_model_object()]}

    @app.get("/v1/models/{model_id}")
    def get_model(model_id: str, owner: str = Depends(authorize)):
        if model_id not in (caps.model_name, *S.MODEL_ALIASES):
            raise not_found(f"model {model_id[:80]!r} is not served here; use {caps.model_name!r}", param="model_id",
                            code="model_not_found")
        return _model_object()

    @app.get("/healthz", include_in_schema=False)
    def healthz():
        return {"ok": True, "queued": store.count("queued"), "in_progress": store.count("in_progress")}

    # ---- videos ---------------------------------------------------------------------------------
    @app.post("/v1/videos")
    async def create_video(request: Request, owner: str = Depends(authorize)):
        data = await S.read_payload(request, cfg)
        prompt = S.get_prompt(data, cfg)
        S.get_model(data, caps)
        size = S.get_choice(data, "size", caps.sizes, caps.default_size, "size")
        seconds = S.get_choice(data, "seconds", caps.seconds, caps.default_seconds, "seconds")
        seed = S.get_seed(data)
        input_path, params = None, {}
        if data.get("input_reference") not in (None, ""):
            raw = S.reference_image_bytes(data["input_reference"], cfg.max_upload_bytes)
            img = await run_in_threadpool(S.decode_image, raw, "input_reference", cfg.max_upload_bytes)
            input_path = await run_in_threadpool(_save_upload_image, img, size)
            params["mode"] = "image_to_video"
        await run_in_threadpool(_moderate, prompt)
        job = await run_in_threadpool(lambda: _queue(owner, kind="create", prompt=prompt, seconds=seconds, size=size,
                                                     seed=seed, input_path=input_path, params=params))
        return S.video_object(job)

    @app.get("/v1/videos")
    def list_videos(request: Request, owner: str = Depends(authorize)):
        q = request.query_params
        order = q.get("order", "desc")
        if order not in ("asc", "desc"):
            raise bad_request("'order' must be 'asc' or 'desc'", param="order")
        try:
            limit = int(q.get("limit", "20"))
        except ValueError:
            raise bad_request("'limit' must be an integer in 1..100", param="limit", code="invalid_type") from None
        if not 1 <= limit <= 100:
            raise bad_request("'limit' must be in 1..100", param="limit")
        after = q.get("after") or None
        if after is not None and not is_video_id(after):
            raise bad_request("'after' must be a video id from a previous page", param="after")
        page, more = store.list(owner, after=after, limit=limit, order=order)
        data = [S.video_object(j) for j in page]
        return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None, "has_more": more}

    @app.get("/v1/videos/{video_id}")
    def get_video(video_id: str, owner: str = Depends(authorize)):
        job = _job_or_404(video_id, owner)
        headers = {"openai-poll-after-ms": str(cfg.poll_after_ms)} if job.status in ("queued", "in_progress") else {}
        return JSONResponse(S.video_object(job), headers=headers)

    @app.delete("/v1/videos/{video_id}")
    def delete_video(video_id: str, owner: str = Depends(authorize)):
        job = _job_or_404(video_id, owner)
        store.delete(job.id)
        remove_job_files(data_dir, job.id, job.input_path)
        return {"id": job.id, "object": "video.deleted", "deleted": True}

    @app.get("/v1/videos/{video_id}/content")
    def video_content(video_id: str, request: Request, owner: str = Depends(authorize)):
        variant = request.query_params.get("variant", "video")
        if variant not in VARIANTS:
            raise bad_request(f"'variant' must be one of {', '.join(VARIANTS)}", param="variant")
        job = _job_or_404(video_id, owner)
        if job.status != "completed":
            raise APIError(409, f"video {video_id} is {job.status}; content is available once it is completed",
                           param="video_id", code="video_not_ready")
        path = variant_path(data_dir, job.id, variant)
        if job.files_expired or not path.is_file():
            raise APIError(410, f"the files of video {video_id} have expired or were removed", param="video_id",
                           code="video_expired")
        return FileResponse(path, media_type=VARIANTS[variant][1], filename=f"{job.id}{path.suffix}")

    @app.post("/v1/videos/{video_id}/remix")
    async def remix_video(video_id: str, request: Request, owner: str = Depends(authorize)):
        data = await S.read_payload(request, cfg)
        prompt = S.get_prompt(data, cfg)
        src = await run_in_threadpool(_completed_source, video_id, owner, "video_id")
        await run_in_threadpool(_moderate, prompt)
        job = await run_in_threadpool(lambda: _queue(owner, kind="remix", prompt=prompt, seconds=src.seconds,
                                                     size=src.size, seed=src.seed, source_id=src.id))
        return S.video_object(job)

    async def _typed_mode(request: Request, owner: str, mode: str):
        data = await S.read_payload(request, cfg)
        prompt = S.get_prompt(data, cfg)
        ref = S.video_ref(data)
        seconds_default = caps.default_seconds
        if isinstance(ref, str):
            src = await run_in_threadpool(_completed_source, ref, owner, "video")
            source_id, source_path, size = src.id, str(variant_path(data_dir, src.id, "video")), src.size
            seconds_default = src.seconds
        else:
            source_id, size = None, caps.default_size
            source_path = await run_in_threadpool(_save_upload_video, ref)
        size = S.get_choice(data, "size", caps.sizes, size, "size")
        if mode == "extend":
            seconds = S.get_choice(data, "seconds", caps.seconds, caps.default_seconds, "seconds")
            if "seconds" not in data:
                raise bad_request("'seconds' is required: the length of the new segment", param="seconds",
                                  code="missing_required_parameter")
        else:
            seconds = S.get_choice(data, "seconds", caps.seconds, seconds_default, "seconds")
        await run_in_threadpool(_moderate, prompt)
        params = {"mode": mode, "source_path": source_path, "segment_seconds": seconds}
        reported = seconds
        if mode == "extend" and isinstance(ref, str):  # OpenAI reports the stitched total for extensions
            total = float(seconds_default) + float(seconds)
            reported = str(int(total)) if total.is_integer() else f"{total:g}"
        job = await run_in_threadpool(lambda: _queue(
            owner, kind=mode, prompt=prompt, seconds=reported, size=size, seed=S.get_seed(data), source_id=source_id,
            input_path=None if source_id else source_path, params=params))
        return S.video_object(job)

    @app.post("/v1/videos/extensions")
    async def extend_video(request: Request, owner: str = Depends(authorize)):
        return await _typed_mode(request, owner, "extend")

    @app.post("/v1/videos/edits")
    async def edit_video(request: Request, owner: str = Depends(authorize)):
        return await _typed_mode(request, owner, "edit")

    return app


def _cover(img, w: int, h: int):
    """Scale to cover (w, h) and crop the centre."""
    from PIL import Image

    s = max(w / img.width, h / img.height)
    nw, nh = max(w, round(img.width * s)), max(h, round(img.height * s))
    img = img.resize((nw, nh), Image.BICUBIC)
    left, top = (nw - w) // 2, (nh - h) // 2
    return img.crop((left, top, left + w, top + h))


__all__ = ["create_app", "RateLimiter"]
