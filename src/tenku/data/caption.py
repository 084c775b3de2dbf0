"""Captions for ingested clips: sidecar files, or re-captioning through an OpenAI-compatible vision
chat endpoint, with retries, a rate limit and an on-disk cache.

Sidecars sit next to the source video and share its stem: ``clip.mp4`` takes ``clip.json`` (keys
``short``/``medium``/``long``, or ``caption``) or else ``clip.txt`` (the long caption). Missing
levels are derived from the long caption: ``short`` is its first sentence, ``medium`` its first two.

The captioner POSTs ``{url}/chat/completions`` with a system prompt that asks for the long-caption
style and a user message carrying a few frames as ``image_url`` data URIs (JPEG). Its key is
``CaptionerConfig.api_key`` (``tenku data ingest`` passes ``TENKU_CAPTIONER_API_KEY`` or ``OPENAI_API_KEY``;
no key: no Authorization header, for local servers). Answers are cached under ``cache_dir`` by a hash of model, prompt and frame bytes, so a
rerun over the same clips sends no request.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import threading
import time
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from tenku.errors import TenkuError

SYSTEM_PROMPT = (
    "You write captions for a text-to-video training set. You see a few frames, in order, from one "
    "short video clip. Describe the clip in one paragraph of three to five plain sentences, present "
    "tense. First sentence: the main subject and what it does. Then: the other subjects with their "
    "colours, sizes and positions; how things move (direction, speed); the camera (static, panning, "
    "zooming, tracking); the setting and the light. Describe only what is visible. Do not mention "
    "frames, images, stills or a video; no lists, no quotes, no speculation."
)
USER_PROMPT = "Caption this clip."
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


class CaptionerError(TenkuError):
    """The captioner could not caption one clip (after retries, or a request it refused)."""


class CaptionerRejected(CaptionerError):
    """The captioner refuses every request (wrong key, URL or model): no point going on."""


def split_caption(long: str) -> dict[str, str]:
    """{"short": first sentence, "medium": first two sentences, "long": the text}."""
    text = " ".join(str(long).split())
    sentences = [s for s in _SENTENCE.split(text) if s]
    if not sentences:
        return {"short": "", "medium": "", "long": ""}
    return {"short": sentences[0], "medium": " ".join(sentences[:2]), "long": text}


def read_sidecar(video: str | Path) -> dict[str, str] | None:
    """Captions from ``<stem>.json`` or ``<stem>.txt`` next to ``video``; None when there is none.
    A sidecar that cannot be read raises TenkuError naming the file."""
    video = Path(video)
    js, txt = video.with_suffix(".json"), video.with_suffix(".txt")
    if js.is_file():
        try:
            data = json.loads(js.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as e:
            raise TenkuError(f"caption sidecar {js} is not valid JSON ({e}); expected "
                             '{"long": "...", "short": "..."} or {"caption": "..."}') from None
        if isinstance(data, str):
            data = {"caption": data}
        if not isinstance(data, dict) or not any(isinstance(data.get(k), str) for k in
                                                 ("short", "medium", "long", "caption")):
            raise TenkuError(f"caption sidecar {js} holds no caption; expected keys short/medium/long or caption")
        long = data.get("long") or data.get("caption") or data.get("medium") or data.get("short") or ""
        caps = split_caption(long)
        for k in ("short", "medium", "long"):
            if isinstance(data.get(k), str) and data[k].strip():
                caps[k] = " ".join(data[k].split())
        return caps
    if txt.is_file():
        try:
            text = txt.read_text(encoding="utf-8")
        except UnicodeDecodeError as e:
            raise TenkuError(f"caption sidecar {txt} is not UTF-8 text ({e})") from None
        return split_caption(text) if text.strip() else None
    return None


def jpeg_bytes(frame: np.ndarray, quality: int = 85) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


@dataclass(frozen=True)
class CaptionerConfig:
    url: str  # base URL of an OpenAI-compatible API, e.g. http://127.0.0.1:8000/v1
    model: str
    cache_dir: str | None = None
    requests_per_minute: float = 60.0
    retries: int = 5
    backoff_s: float = 1.0  # first retry waits this long, then doubles
    timeout_s: float = 120.0
    max_tokens: int = 300
    system_prompt: str = SYSTEM_PROMPT
    api_key: str | None = field(default=None, repr=False)  # sent as a Bearer token; never stored

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("api_key")
        return d


class RateLimiter:
    """At most ``per_minute`` acquisitions per minute, evenly spaced; thread-safe."""

    def __init__(self, per_minute: float):
        self.interval = 60.0 / per_minute if per_minute and per_minute > 0 else 0.0
        self.next = 0.0
        self.lock = threading.Lock()

    def acquire(self) -> None:
        with self.lock:
            now = time.monotonic()
            wait = self.next - now
            self.next = max(now, self.next) + self.interval
        if wait > 0:
            time.sleep(wait)


class Captioner:
    """``Captioner(cfg).caption(frames) -> (text, from_cache)``; counts requests, retries and hits."""

    def __init__(self, cfg: CaptionerConfig):
        if not cfg.url or not cfg.url.startswith(("http://", "https://")):
            raise TenkuError(f"--captioner must be an http(s) URL of an OpenAI-compatible API "
                             f"(e.g. http://127.0.0.1:8000/v1), got {cfg.url!r}")
        if not cfg.model:
            raise TenkuError("--captioner needs --captioner-model NAME (the vision model to ask)")
        self.cfg = cfg
        self.endpoint = cfg.url.rstrip("/") + "/chat/completions"
        self.key = cfg.api_key
        self.limiter = RateLimiter(cfg.requests_per_minute)
        self.cache = Path(cfg.cache_dir) if cfg.cache_dir else None
        self.lock = threading.Lock()
        self.counts = {"requests": 0, "retries": 0, "cache_hits": 0, "answers": 0}

    def _count(self, key: str) -> None:
        with self.lock:
            self.counts[key] += 1

    def cache_key(self, jpegs: list[bytes]) -> str:
        h = hashlib.sha256()
        for part in (self.cfg.model, self.cfg.system_prompt, USER_PROMPT, str(self.cfg.max_tokens)):
            h.update(part.encode() + b"\0")
        for j in jpegs:
            h.update(hashlib.sha256(j).digest())
        return h.hexdigest()

    def _cache_path(self, key: str) -> Path | None:
        return self.cache / key[:2] / f"{key}.json" if self.cache else None

    def caption(self, frames: list[np.ndarray]) -> tuple[str, bool]:
        if not frames:
            raise CaptionerError("no frames to caption")
        jpegs = [jpeg_bytes(f) for f in frames]
        key = self.cache_key(jpegs)
        path = self._cache_path(key)
        if path is not None and path.is_file():
            try:
                text = json.loads(path.read_text())["caption"]
                _check_caption(text)
                self._count("cache_hits")
                return text, True
            except (json.JSONDecodeError, KeyError, TypeError):
                pass  # a damaged entry is simply asked again and overwritten
        text = self._ask(jpegs)
        _check_caption(text)  # a caption that moderation refuses is not kept (the clip goes uncaptioned)
        if path is not None:
            from tenku.media import atomic_path

            with atomic_path(path) as tmp:
                tmp.write_text(json.dumps({"caption": text, "model": self.cfg.model}) + "\n")
        self._count("answers")
        return text, False

    def _body(self, jpegs: list[bytes]) -> bytes:
        content: list[dict] = [{"type": "text", "text": USER_PROMPT}]
        for j in jpegs:
            uri = "data:image/jpeg;base64," + base64.b64encode(j).decode("ascii")
            content.append({"type": "image_url", "image_url": {"url": uri}})
        body = {"model": self.cfg.model, "max_tokens": self.cfg.max_tokens, "temperature": 0.0,
                "messages": [{"role": "system", "content": self.cfg.system_prompt},
                             {"role": "user", "content": content}]}
        return json.dumps(body).encode()

    def _ask(self, jpegs: list[bytes]) -> str:
        data = self._body(jpegs)
        headers = {"Content-Type": "application/json"}
        if self.key:
            headers["Authorization"] = f"Bearer {self.key}"
        last = ""
        for attempt in range(self.cfg.retries + 1):
            if attempt:
                self._count("retries")
            self.limiter.acquire()
            self._count("requests")
            wait = self.cfg.backoff_s * (2 ** attempt)
            req = urllib.request.Request(self.endpoint, data=data, headers=headers, method="POST")
            try:
                with urllib.request.urlopen(req, timeout=self.cfg.timeout_s) as r:
                    answer = json.loads(r.read().decode("utf-8"))
                text = _answer_text(answer)
                if text:
                    return text
                last = f"an answer without text: {json.dumps(answer)[:200]}"
            except urllib.error.HTTPError as e:
                body = e.read()[:300].decode("utf-8", "replace")
                if e.code in (401, 403, 404):
                    hint = ("set TENKU_CAPTIONER_API_KEY or OPENAI_API_KEY to a valid key" if e.code != 404
                            else "check --captioner (the base URL, e.g. http://HOST/v1) and --captioner-model")
                    raise CaptionerRejected(f"the captioner at {self.endpoint} rejected the request with HTTP "
                                            f"{e.code}: {body.strip()}; {hint}") from None
                if e.code in (400, 413, 422):
                    raise CaptionerError(f"the captioner refused this clip with HTTP {e.code}: {body.strip()}") from None
                last = f"HTTP {e.code}: {body}"
                ra = e.headers.get("Retry-After") if e.headers else None
                if ra and ra.strip().replace(".", "", 1).isdigit():
                    wait = max(wait, min(float(ra), 300.0))
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as e:
                last = f"{type(e).__name__}: {getattr(e, 'reason', e)}"
            except (json.JSONDecodeError, UnicodeDecodeError) as e:
                last = f"an answer that is not JSON ({e})"
            if attempt < self.cfg.retries:
                time.sleep(wait)
        raise CaptionerError(f"the captioner at {self.endpoint} failed {self.cfg.retries + 1} times; last: {last}")


def _check_caption(text: str) -> None:
    """The same moderation as prompts (rules and classifiers; the deployment's lists are not read here): a
    refused caption is a :class:`CaptionerError` naming the category, so the clip is counted as failed."""
    from tenku.safety.moderation import ModerationConfig, ModerationError, ensure_allowed

    try:
        ensure_allowed(text, ModerationConfig(), what="caption")
    except ModerationError as e:
        raise CaptionerError(str(e)) from None


def _answer_text(answer: dict) -> str:
    try:
        content = answer["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        return ""
    if isinstance(content, list):
        content = " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return " ".join(str(content or "").split())
