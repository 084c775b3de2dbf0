"""Generate through a running ``tenku serve`` (or any OpenAI-compatible Videos API) with the openai SDK:
:func:`generate_remote`, what ``tenku generate --server URL`` runs."""

from __future__ import annotations

import warnings
from pathlib import Path

from tenku.errors import TenkuError


def _base_url(url: str) -> str:
    url = url.rstrip("/")
    if not url.startswith(("http://", "https://")):
        raise TenkuError(f"--server must be an http(s) URL such as http://127.0.0.1:8000, got {url!r}")
    return url if url.endswith("/v1") else url + "/v1"


def generate_remote(url: str, prompt: str, seconds: str | float | None, size: str | None, out_path: str | Path,
                    api_key: str | None = None, poll_interval_ms: int | None = None, seed: int | None = None) -> Path:
    """Create a video on the server, wait for it, and download the mp4 to ``out_path`` (atomically).
    ``api_key``: the server's key (None: a placeholder, for a server without keys). Raises TenkuError on any
    failure. ``tenku generate --server`` calls this with the key from TENKU_API_KEY or OPENAI_API_KEY."""
    try:
        import openai
    except ImportError:
        raise TenkuError("--server needs the openai package: pip install 'tenku[test]' or pip install openai") from None
    from tenku.media import atomic_path

    out_path = Path(out_path)
    if out_path.suffix.lower() != ".mp4":
        raise TenkuError(f"with --server the output must be an .mp4 file, got {out_path.name!r}")
    key = api_key or "none"
    client = openai.OpenAI(base_url=_base_url(url), api_key=key, max_retries=2)
    kwargs = {}
    if seconds is not None:
        s = float(seconds)
        kwargs["seconds"] = str(int(s)) if s.is_integer() else str(s)
    if size is not None:
        kwargs["size"] = size
    if poll_interval_ms is not None:
        kwargs["poll_interval_ms"] = poll_interval_ms
    if seed is not None:
        kwargs["extra_body"] = {"seed": int(seed)}  # a tenku extension; other servers ignore it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # the SDK marks its Videos API as deprecated
        try:
            video = client.videos.create_and_poll(prompt=prompt, **kwargs)
            if video.status != "completed":
                err = video.error
                raise TenkuError(f"the server could not make the video: {err.code}: {err.message}" if err else
                                 f"the server reported status {video.status!r}")
            content = client.videos.download_content(video.id)
        except openai.APIConnectionError:
            raise TenkuError(f"cannot reach {url}; is `tenku serve` running there?") from None
        except openai.APIStatusError as e:
            body = e.body if isinstance(e.body, dict) else {}
            body = body.get("error", body) if isinstance(body.get("error"), dict) else body
            msg = body.get("message") or str(e)
            raise TenkuError(f"the server answered {e.status_code}: {msg}") from None
    with atomic_path(out_path) as tmp:
        content.write_to_file(tmp)
    return out_path
