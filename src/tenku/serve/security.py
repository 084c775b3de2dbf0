"""What keeps other web sites and other hosts' names off the server: the allowed ``Host`` names, the ``Origin``
check on requests that change state, security headers on every response, and the rate limiters.

A browser lets any web page send a POST (a form, or ``fetch`` in ``no-cors`` mode) to ``http://127.0.0.1:8000``;
without these checks a page could queue or delete a user's videos, and with DNS rebinding (``evil.example``
resolving to 127.0.0.1) read them. So: only configured host names are served (the localhost names by default),
a POST/DELETE whose ``Origin`` is not the server's own (or configured) is refused, and bodies must be JSON or
multipart with a Content-Type (see :mod:`tenku.serve.body`), which a cross-site form cannot send as JSON.
"""

from __future__ import annotations

import collections
import ipaddress
import json
import threading
import time
from urllib.parse import urlsplit

from tenku.serve.errors import APIError
from tenku.serve.settings import ServeConfig

LOCAL_HOSTS = ("localhost", "127.0.0.1", "::1", "[::1]")
UNSAFE_METHODS = (b"POST", b"PUT", b"PATCH", b"DELETE")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
       "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
       "frame-ancestors 'none'")
SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CSP.encode()),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
]


def allowed_hosts(cfg: ServeConfig) -> tuple[str, ...]:
    """Host names served: the localhost names, the address the server listens on (unless a wildcard), and
    ``--allowed-host`` values ("*" allows any name)."""
    hosts = list(LOCAL_HOSTS)
    if cfg.host not in ("0.0.0.0", "::", ""):
        hosts.append(cfg.host.lower())
    hosts += [h.strip().lower() for h in cfg.allowed_hosts if h.strip()]
    return tuple(dict.fromkeys(hosts))


def split_host(value: str) -> str:
    """``Host`` header -> the name without the port ("[::1]:8000" -> "[::1]", "a.b:80" -> "a.b")."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    return value.rsplit(":", 1)[0] if value.count(":") == 1 else value


class GuardMiddleware:
    """Pure ASGI middleware (no body buffering): Host and Origin checks, then security headers on the answer."""

    def __init__(self, app, cfg: ServeConfig):
        self.app = app
        self.hosts = allowed_hosts(cfg)
        self.any_host = "*" in self.hosts
        self.origins = {o.strip().rstrip("/").lower() for o in cfg.allowed_origins if o.strip()}

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        host = headers.get("host", "")
        refusal = None
        if not self.any_host and split_host(host) not in self.hosts:
            refusal = APIError(400, "this server does not answer to that host name; start it with "
                               "--allowed-host NAME to serve it", param="Host", code="invalid_host")
        elif scope["method"].encode() in UNSAFE_METHODS:
            refusal = self._check_origin(headers, host)
        if refusal is not None:
            return await _answer(send, refusal)

        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                present = {k.lower() for k, _ in message.get("headers", [])}
                message["headers"] = list(message.get("headers", [])) + [
                    (k, v) for k, v in SECURITY_HEADERS if k not in present]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _check_origin(self, headers: dict, host: str) -> APIError | None:
        origin = headers.get("origin")
        site = headers.get("sec-fetch-site", "")
        refused = APIError(403, "cross-site requests are refused: this server only takes POST and DELETE from its "
                           "own page or from clients that send no Origin (start it with --allowed-origin URL to "
                           "allow a web site)", param="Origin", code="cross_origin_forbidden")
        if origin is None:
            return refused if site == "cross-site" else None
        o = origin.strip().rstrip("/").lower()
        if o in self.origins:
            return None
        parts = urlsplit(o)
        if o == "null" or parts.scheme not in ("http", "https") or parts.netloc != host.strip().lower():
            return refused
        return None


async def _answer(send, e: APIError) -> None:
    body = json.dumps(e.body()).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
               *SECURITY_HEADERS]
    await send({"type": "http.response.start", "status": e.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class RateLimiter:
    """At most ``per_minute`` events per key in any 60-second window."""

    def __init__(self, per_minute: int, what: str = "requests"):
        self.per_minute = per_minute
        self.what = what
        self._hits: dict[str, collections.deque] = collections.defaultdict(collections.deque)
        self._lock = threading.Lock()

    def _prune(self, q: collections.deque, now: float) -> None:
        while q and now - q[0] >= 60.0:
            q.popleft()

    def blocked(self, key: str) -> int:
        """Seconds until ``key`` may try again (0: not blocked), without counting an event."""
        if self.per_minute <= 0:
            return 0
        now = time.monotonic()
        with self._lock:
            q = self._hits.get(key)
            if not q:
                return 0
            self._prune(q, now)
            return max(1, int(60.0 - (now - q[0])) + 1) if len(q) >= self.per_minute else 0

    def hit(self, key: str) -> None:
        if self.per_minute <= 0:
            return
        now = time.monotonic()
        with self._lock:
            q = self._hits[key]
            self._prune(q, now)
            q.append(now)
            if len(self._hits) > 100_000:  # forget idle keys so the table cannot grow without bound
                for k in [k for k, v in self._hits.items() if not v or now - v[-1] >= 60.0]:
                    del self._hits[k]

    def check(self, key: str) -> None:
        """Count one event for ``key``; 429 with Retry-After once the minute's budget is spent."""
        wait = self.blocked(key)
        if wait:
            raise APIError(429, f"rate limit of {self.per_minute} {self.what} per minute reached; retry in {wait} s",
                           type="rate_limit_error", code="rate_limit_exceeded", headers={"Retry-After": str(wait)})
        self.hit(key)


def client_address(scope_client, headers, trusted: tuple[str, ...]) -> str:
    """The caller's address. ``X-Forwarded-For`` counts only when the connection comes from a trusted proxy
    (``--trusted-proxy``): then the last address the proxy added, unless that too is a trusted proxy."""
    peer = scope_client[0] if scope_client else ""
    if not trusted or not _in(peer, trusted):
        return peer
    hops = [h.strip() for h in headers.get("x-forwarded-for", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _in(hop, trusted):
            return hop
    return peer


def _in(addr: str, nets: tuple[str, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    for n in nets:
        try:
            if ip in ipaddress.ip_network(n, strict=False):
                return True
        except ValueError:
            continue
    return False


__all__ = ["GuardMiddleware", "RateLimiter", "allowed_hosts", "client_address", "LOCAL_HOSTS"]
