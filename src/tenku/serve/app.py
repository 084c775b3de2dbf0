"""The FastAPI app: the OpenAI Videos API (``/v1/videos``...), ``/v1/models`` and the web page at ``/``.

The API process only reads and writes the job store and files; generation happens in worker processes
(:mod:`tenku.serve.worker`). Every error, including validation errors and unknown routes, is answered in
OpenAI's shape ``{"error": {"message", "type", "param", "code"}}``; bad input never gets a 5xx.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import sys
from importlib import resources
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException

from tenku.seeds import draw_seed
from tenku.serve import schemas as S
from tenku.serve.body import BodyReader, ClientGone, Upload
from tenku.serve.errors import APIError, bad_request, error_body, not_found
from tenku.serve.files import VARIANTS, is_video_id, remove_job_files, uploads_dir, variant_path
from tenku.serve.modes import EDIT, EXTEND, IMAGE_TO_VIDEO
from tenku.serve.security import GuardMiddleware, RateLimiter, client_address
from tenku.serve.settings import Capabilities, ServeConfig, capabilities, parse_size, serve_safety
from tenku.serve.store import Job, JobStore, new_video_id


def _moderate(safety, text: str) -> None:
    """Prompt moderation (the server's :class:`tenku.safety.policy.Safety`) before a job is queued: 400
    ``moderation_blocked``, or 503 ``moderation_unavailable`` when its endpoint does not answer."""
    from tenku.safety.moderation import ModerationError, ModerationUnavailableError, warm_up

    warm_up()
    try:
        safety.moderate(text)
    except ModerationError as e:
        raise APIError(400, f"the prompt was refused by moderation (category: {e.category}); to go on, "
                       f"{e.advice or 'rephrase it'}",
                       param="prompt", code="moderation_blocked") from None
    except ModerationUnavailableError as e:  # fail closed, and say it is the server's side, not the prompt
        raise APIError(503, f"moderation is unavailable, so no video can be queued: {e}",
                       type="server_error", code="moderation_unavailable") from None


def create_app(cfg: ServeConfig, store: JobStore | None = None, caps: Capabilities | None = None,
               safety=None) -> FastAPI:
    """The app for ``cfg``; ``safety`` (default: :func:`tenku.serve.settings.serve_safety`) moderates prompts."""
    caps = caps or capabilities(cfg)
    safety = safety or serve_safety()
    store = store or JobStore(cfg.resolved_db_url(), lease_seconds=cfg.lease_seconds, max_attempts=cfg.max_attempts)
    data_dir = Path(cfg.data_dir)
    uploads_dir(data_dir).mkdir(parents=True, exist_ok=True)
    key_owner = {k: hashlib.sha256(k.encode()).hexdigest()[:16] for k in cfg.api_keys}
    limiter = RateLimiter(cfg.rate_limit)
    auth_failures = RateLimiter(cfg.auth_fail_limit, "wrong API keys")
    bodies = BodyReader(cfg)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        import threading

        from tenku.safety.moderation import warm_up

        threading.Thread(target=warm_up, name="moderation-warm-up", daemon=True).start()
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

    # no Swagger UI (it loads from a CDN); the schema is served below, behind the key when keys are configured
    app = FastAPI(title="tenku", version="1", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.router.redirect_slashes = False  # a redirect would be built from the client's Host header
    app.add_middleware(GuardMiddleware, cfg=cfg)
    app.state.store, app.state.cfg, app.state.caps = store, cfg, caps

    # ---- errors in OpenAI's shape --------------------------------------------------------------
    @app.exception_handler(APIError)
    async def _api_error(request: Request, e: APIError):
        if isinstance(e, ClientGone):  # nobody to answer; not worth a log line
            return Response(status_code=400, headers={"Connection": "close"})
        return JSONResponse(e.body(), status_code=e.status, headers=e.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, e: RequestValidationError):
        errs = e.errors()
        first = errs[0] if errs else {}
        loc = [str(x)[:40] for x in first.get("loc", ()) if x not in ("query", "path", "body")]
        msg = f"{'.'.join(loc) or 'request'}: {str(first.get('msg', 'invalid value'))[:200]}"
        return JSONResponse(error_body(msg, param=".".join(loc) or None, code="invalid_value"), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, e: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, "http_error")
        path = request.url.path.encode("utf-8", "replace").decode("utf-8")
        msg = f"no route {request.method} {path[:200]}" if e.status_code in (404, 405) else str(e.detail)[:200]
        return JSONResponse(error_body(msg, code=code), status_code=e.status_code)

    @app.exception_handler(Exception)
    async def _server_error(request: Request, e: Exception):
        print(f"internal error on {request.method} {request.url.path}: {type(e).__name__}: {e}", file=sys.stderr)
        return JSONResponse(error_body("internal server error; see the server log", type="server_error",
                                       code="internal_error"), status_code=500)

    # ---- access --------------------------------------------------------------------------------
    async def authorize(request: Request) -> str:  # async: no thread hop for a few string compares
        """The caller's owner tag ("" without keys); 401 without a configured key; rate limits: wrong keys per
        client address, writes per key (per address without keys)."""
        owner = ""
        address = client_address(request.scope.get("client"), request.headers, cfg.trusted_proxies)
        if cfg.api_keys:
            wait = auth_failures.blocked(address)
            if wait:
                raise APIError(429, f"too many wrong API keys from this address; retry in {wait} s",
                               type="rate_limit_error", code="rate_limit_exceeded", headers={"Retry-After": str(wait)})
            auth = request.headers.get("authorization", "")
            token = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            raw = token.encode("utf-8", "surrogateescape")
            match = next((o for k, o in key_owner.items() if hmac.compare_digest(k.encode(), raw)), None)
            if match is None:
                if token:  # a wrong key is a guess; a missing one (a health probe, the page before login) is not
                    auth_failures.hit(address)
                raise APIError(401, "missing or wrong API key; send 'Authorization: Bearer KEY'",
                               type="invalid_request_error", code="invalid_api_key")
            owner = match
        if request.method in ("POST", "DELETE"):
            limiter.check(owner or address)
        return owner

    def _job_or_404(video_id: str, owner: str) -> Job:
        if not is_video_id(video_id):
            raise not_found("no video with that id; ids look like video_ followed by 32 hex digits",
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
        if job.files_expired or not variant_path(data_dir, job.id, "video").is_file():
            raise APIError(410, f"the files of video {video_id} have expired", param=param, code="video_expired")
        return job

    def _queue(owner: str, upload_path: str | None = None, **kw) -> Job:
        """Queue a job; a full queue is 429 and the upload saved for it is deleted."""
        seed = kw.pop("seed", None)
        job = store.create(owner=owner, max_queue=cfg.max_queue,
                           seed=draw_seed() if seed is None else seed, **kw)
        if job is None:
            _discard(upload_path)
            raise APIError(429, f"the queue is full ({cfg.max_queue} jobs queued or running); retry later",
                           type="rate_limit_error", code="queue_full", headers={"Retry-After": "5"})
        return job

    def _discard(path: str | None) -> None:
        if path:
            Path(path).unlink(missing_ok=True)

    def _save_upload_image(img, size: str) -> str:
        import numpy as np
        from PIL import Image

        from tenku.media import atomic_path, cover_frames

        w, h = caps.generation_size(size)  # the model sees the image at the size it generates
        path = uploads_dir(data_dir) / f"{new_video_id()}.png"
        with atomic_path(path) as tmp:
            Image.fromarray(cover_frames(np.asarray(img.convert("RGB"))[None], w, h, "bicubic")[0]).save(
                tmp, format="PNG")
        return str(path)

    def _save_upload_video(up: Upload) -> tuple[str, dict]:
        """Save an uploaded video and check that it decodes; returns (path, probe info)."""
        import shutil

        from tenku.media import atomic_path, probe

        if up.size > cfg.max_upload_bytes:
            raise APIError(413, f"'video' is over the limit of {cfg.max_upload_bytes} bytes", param="video",
                           code="file_too_large")
        path = uploads_dir(data_dir) / f"{new_video_id()}.mp4"
        with atomic_path(path) as tmp:
            up.file.seek(0)
            with open(tmp, "wb") as f:
                shutil.copyfileobj(up.file, f, 1 << 20)
            try:
                info = probe(tmp)
                if not info or not info.get("width") or not info.get("num_frames"):
                    raise ValueError("no video stream")
            except Exception:  # the decoder's reason names the server's files; say what to do instead
                raise bad_request("'video' is not a readable video; upload an mp4 (H.264)", param="video",
                                  code="invalid_video") from None
        return str(path), info

    def _check_mode(mode: str, param: str | None = None) -> None:
        """400 ``unsupported_mode`` unless the served model makes ``mode`` (the message names one that does)."""
        if caps.serves(mode):
            return
        from tenku.models.diffusers_folder import KINDS, who_serves

        served = ", ".join(m.replace("_", "-") for m in caps.modes)
        family = getattr(KINDS.get(caps.class_name), "family", None)
        raise bad_request(f"model {caps.model_name} ({caps.class_name}) cannot make {mode.replace('_', '-')}; it "
                          f"serves {served}. Serve {who_serves(mode, family)}", param=param, code="unsupported_mode")

    def _nearest_size(w: int, h: int) -> str:
        """The served size whose aspect ratio is closest to w:h (the default size for an uploaded video)."""
        def gap(s: str) -> float:
            sw, sh = parse_size(s)
            return abs(sw / sh - w / h)

        return min(caps.sizes, key=gap)

    # ---- the web page, model info, health and the API schema -------------------------------------
    static = resources.files("tenku.serve") / "static"
    app.mount("/static", StaticFiles(directory=str(static)), name="static")

    @app.get("/", include_in_schema=False)
    def index():
        return HTMLResponse((static / "index.html").read_text(encoding="utf-8"))

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon():  # browsers ask for it on every page; an SVG icon (every current browser shows one)
        return Response((static / "favicon.svg").read_bytes(), media_type="image/svg+xml",
                        headers={"Cache-Control": "max-age=86400"})

    def _model_object(model_id: str | None = None) -> dict:
        return {"id": model_id or caps.model_name, "object": "model", "created": 0, "owned_by": "tenku",
                "capabilities": caps.as_dict(), "auth_required": bool(cfg.api_keys)}

    @app.get("/v1/models")
    def list_models(owner: str = Depends(authorize)):
        return {"object": "list", "data": [_model_object()]}

    @app.get("/v1/models/{model_id}")
    def get_model(model_id: str, owner: str = Depends(authorize)):
        if model_id not in (caps.model_name, *caps.aliases):
            raise not_found(f"model {model_id[:80]!r} is not served here; use {caps.model_name!r}", param="model_id",
                            code="model_not_found")
        return _model_object(model_id)

    @app.get("/healthz", include_in_schema=False)
    def healthz(owner: str = Depends(authorize)):
        return {"ok": True, "queued": store.count("queued"), "in_progress": store.count("in_progress")}

    @app.get("/openapi.json", include_in_schema=False)
    def openapi_schema(owner: str = Depends(authorize)):
        return app.openapi()

    # ---- videos ---------------------------------------------------------------------------------
    @app.post("/v1/videos")
    async def create_video(request: Request, owner: str = Depends(authorize)):
        data = await bodies.read_payload(request)
        prompt = S.get_prompt(data, cfg)
        model = S.get_model(data, caps)
        size = S.get_size(data, caps, caps.default_size)
        seconds = S.get_seconds(data, caps, caps.default_seconds)
        seed = S.get_seed(data)
        img, params = None, {}
        if "input_reference" in data and data["input_reference"] != "":
            ref = S.reference_image(data["input_reference"], cfg.max_upload_bytes)
            img = await run_in_threadpool(S.decode_image, ref, "input_reference", cfg.max_upload_bytes)
            params["mode"] = IMAGE_TO_VIDEO
        _check_mode(IMAGE_TO_VIDEO if img is not None else "text_to_video",
                    "input_reference" if img is not None else None)
        await run_in_threadpool(_moderate, safety, prompt)
        input_path = await run_in_threadpool(_save_upload_image, img, size) if img is not None else None
        job = await run_in_threadpool(lambda: _queue(owner, input_path, kind="create", prompt=prompt, model=model,
                                                     seconds=seconds, size=size, seed=seed, input_path=input_path,
                                                     params=params))
        return S.video_object(job)

    @app.get("/v1/videos")
    def list_videos(request: Request, owner: str = Depends(authorize)):
        q = request.query_params
        order = q.get("order", "desc")
        if order not in ("asc", "desc"):
            raise bad_request("'order' must be 'asc' or 'desc'", param="order")
        raw = q.get("limit", "20").strip()
        if not raw.isdigit() or len(raw) > 4:
            raise bad_request("'limit' must be an integer in 0..100", param="limit", code="invalid_type")
        limit = int(raw)
        if limit > 100:
            raise bad_request("'limit' must be in 0..100", param="limit")
        after = q.get("after") or None
        if after is not None and not is_video_id(after):
            raise bad_request("'after' must be a video id from a previous page", param="after")
        page, more = store.list(owner, after=after, limit=limit, order=order)
        data = [S.video_object(j) for j in page]
        return {"object": "list", "data": data, "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None, "has_more": more}

    # characters come before /v1/videos/{video_id}, so that they never read as a video id
    @app.post("/v1/videos/characters")
    async def create_character(request: Request, owner: str = Depends(authorize)):
        raise bad_request("characters are not supported by this server; to keep a subject across videos, pass "
                          "a picture of it as input_reference, or extend or edit a video of it",
                          param="video", code="unsupported_feature")

    @app.get("/v1/videos/characters/{character_id}")
    def get_character(character_id: str, owner: str = Depends(authorize)):
        raise not_found("characters are not supported by this server, so no character exists here",
                        param="character_id", code="character_not_found")

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
        data = await bodies.read_payload(request)
        prompt = S.get_prompt(data, cfg)
        _check_mode("text_to_video")
        src = await run_in_threadpool(_completed_source, video_id, owner, "video_id")
        await run_in_threadpool(_moderate, safety, prompt)
        job = await run_in_threadpool(lambda: _queue(owner, kind="remix", prompt=prompt, model=src.model,
                                                     seconds=src.seconds, size=src.size, seed=src.seed,
                                                     source_id=src.id))
        return S.video_object(job)

    async def _typed_mode(request: Request, owner: str, mode: str):
        data = await bodies.read_payload(request)
        _check_mode(mode)
        prompt = S.get_prompt(data, cfg)
        ref = S.video_ref(data)
        model = S.get_model(data, caps)
        segment = S.get_seconds(data, caps, None) if mode == EXTEND else None
        seed = S.get_seed(data)
        saved = None
        try:
            if isinstance(ref, str):
                src = await run_in_threadpool(_completed_source, ref, owner, "video")
                source_id, source_path, size, source_seconds = (
                    src.id, str(variant_path(data_dir, src.id, "video")), src.size, float(src.seconds))
            else:
                saved, info = await run_in_threadpool(_save_upload_video, ref)
                source_id, source_path, size = None, saved, _nearest_size(info["width"], info["height"])
                # tenku's length rule, as for its own videos: n frames at fps f last (n - 1) / f seconds
                source_seconds = round((info["num_frames"] - 1) / (info.get("fps") or caps.fps), 2)
            size = S.get_size(data, caps, size)
            if mode == EXTEND:  # OpenAI reports the stitched total: the source plus the new segment
                seconds = f"{source_seconds + float(segment):g}"
            else:
                seconds = S.get_seconds(data, caps, f"{source_seconds:g}")
                segment = seconds
            await run_in_threadpool(_moderate, safety, prompt)
            params = {"mode": mode, "source_path": source_path, "segment_seconds": segment}
            job = await run_in_threadpool(lambda: _queue(
                owner, saved, kind=mode, prompt=prompt, model=model, seconds=seconds, size=size, seed=seed,
                source_id=source_id, input_path=saved, params=params))
        except BaseException:
            _discard(saved)  # a rejected request leaves no upload behind
            raise
        return S.video_object(job)

    @app.post("/v1/videos/extensions")
    async def extend_video(request: Request, owner: str = Depends(authorize)):
        return await _typed_mode(request, owner, EXTEND)

    @app.post("/v1/videos/edits")
    async def edit_video(request: Request, owner: str = Depends(authorize)):
        return await _typed_mode(request, owner, EDIT)

    return app


__all__ = ["create_app", "RateLimiter"]
