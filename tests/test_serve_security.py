"""`tenku serve` attacked as a web page, a guesser and a slow or greedy client would: real server processes on
127.0.0.1 (``--workers 0``: the API alone, so jobs stay queued and each server starts in about a second)."""

import concurrent.futures
import socket
import time

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")

from tenku.serve.launch import ServerProcess  # noqa: E402

KEY = "sec-key-0123456789"


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from tenku.testing import make_tiny_pipeline

    return str(make_tiny_pipeline(tmp_path_factory.mktemp("model") / "tiny"))


def start(model, tmp_path_factory, *args) -> ServerProcess:
    return ServerProcess(model=model, data_dir=tmp_path_factory.mktemp("serve"), workers=0,
                         args=["--sizes", "32x32", *args]).start()


@pytest.fixture(scope="module")
def open_server(model, tmp_path_factory):
    """Keyless, the default way to run on a laptop, plus one extra host name."""
    srv = start(model, tmp_path_factory, "--rate-limit", "0", "--allowed-host", "videos.example",
                "--max-upload-mb", "4", "--body-timeout", "1")
    yield srv
    srv.stop()
    assert "Traceback" not in srv.log_tail(1 << 20) and "internal error" not in srv.log_tail(1 << 20), srv.log_tail()


@pytest.fixture(scope="module")
def keyed_server(model, tmp_path_factory):
    srv = start(model, tmp_path_factory, "--api-key", KEY)
    yield srv
    srv.stop()


def _mp4(tmp_path) -> bytes:
    import numpy as np

    from tenku.media import write_video

    path = tmp_path / "clip.mp4"
    write_video(path, np.full((9, 32, 32, 3), 90, np.uint8), fps=8)
    return path.read_bytes()


# ---- cross-site requests, content types, host names ------------------------------------------------
def test_foreign_origin_cannot_change_state(open_server):
    u = open_server.url
    evil = {"Origin": "https://evil.example"}
    r = httpx.post(u + "/v1/videos", headers=evil, data={"prompt": "x"}, files={"f": ("a.txt", b"x")})
    assert r.status_code == 403 and r.json()["error"]["code"] == "cross_origin_forbidden"
    assert httpx.post(u + "/v1/videos", headers=evil, json={"prompt": "x"}).status_code == 403
    assert httpx.post(u + "/v1/videos", headers={"Origin": "null"}, json={"prompt": "x"}).status_code == 403
    assert httpx.post(u + "/v1/videos", headers={"Sec-Fetch-Site": "cross-site"},
                      json={"prompt": "x"}).status_code == 403
    own = httpx.post(u + "/v1/videos", headers={"Origin": u}, json={"prompt": "x"})  # the server's own page
    assert own.status_code == 200, own.text
    assert httpx.delete(u + "/v1/videos/" + own.json()["id"], headers=evil).status_code == 403
    assert httpx.delete(u + "/v1/videos/" + own.json()["id"]).status_code == 200  # no Origin: not a browser


def test_body_must_say_it_is_json(open_server):
    u = open_server.url
    r = httpx.post(u + "/v1/videos", content=b'{"prompt": "x"}')  # no Content-Type at all
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = httpx.post(u + "/v1/videos", content=b'{"prompt": "x"}', headers={"Content-Type": "text/plain"})
    assert r.status_code == 415  # what a cross-site form or no-cors fetch can send


def test_only_allowed_host_names_are_served(open_server):
    u, port = open_server.url, open_server.port
    for path in ("/", "/v1/videos", "/v1/models"):
        r = httpx.get(u + path, headers={"Host": f"rebind.evil.example:{port}"})
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_host", path
    for host in (f"localhost:{port}", f"127.0.0.1:{port}", "videos.example"):
        assert httpx.get(u + "/v1/videos", headers={"Host": host}).status_code == 200, host


def test_no_redirect_is_built_from_the_host_header(open_server):
    r = httpx.get(open_server.url + "/v1/videos/", headers={"Host": "videos.example"})
    assert not 300 <= r.status_code < 400 and "location" not in r.headers


def test_security_headers_on_page_api_and_content(open_server):
    for path in ("/", "/static/app.js", "/v1/videos", "/v1/nothing"):
        h = httpx.get(open_server.url + path).headers
        assert h["x-content-type-options"] == "nosniff", path
        assert h["x-frame-options"] == "DENY" and "frame-ancestors 'none'" in h["content-security-policy"], path
    refused = httpx.get(open_server.url + "/", headers={"Host": "evil.example"}).headers
    assert refused["x-content-type-options"] == "nosniff"


# ---- uploads and error messages ------------------------------------------------------------------
def test_rejected_uploads_are_deleted(open_server, tmp_path):
    u, uploads = open_server.url, open_server.data_dir / "uploads"
    mp4 = _mp4(tmp_path)
    from PIL import Image
    import io

    png = io.BytesIO()
    Image.new("RGB", (20, 20), (200, 10, 10)).save(png, format="PNG")
    cases = [
        ("/v1/videos/edits", {"prompt": "a gory beheading"}, {"video": ("v.mp4", mp4, "video/mp4")}),
        ("/v1/videos/extensions", {"prompt": "a gory beheading", "seconds": "1"},
         {"video": ("v.mp4", mp4, "video/mp4")}),
        ("/v1/videos/extensions", {"prompt": "more"}, {"video": ("v.mp4", mp4, "video/mp4")}),  # no seconds
        ("/v1/videos/edits", {"prompt": "x", "size": "999x999"}, {"video": ("v.mp4", mp4, "video/mp4")}),
        ("/v1/videos/edits", {"prompt": "x", "seed": "abc"}, {"video": ("v.mp4", mp4, "video/mp4")}),
        ("/v1/videos", {"prompt": "a gory beheading"}, {"input_reference": ("a.png", png.getvalue(), "image/png")}),
        ("/v1/videos/edits", {"prompt": "x"}, {"video": ("v.mp4", b"\x00" * 500_000, "video/mp4")}),  # corrupt
    ]
    for path, data, files in cases:
        r = httpx.post(u + path, data=data, files=files)
        assert 400 <= r.status_code < 500, (path, data, r.text)
    assert sorted(p.name for p in uploads.iterdir()) == []  # nothing left, not even a .part file


def test_errors_show_no_server_paths_or_python_objects(open_server, tmp_path):
    u = open_server.url
    answers = [
        httpx.post(u + "/v1/videos/edits", data={"prompt": "x"},
                   files={"video": ("v.mp4", b"junk" * 100, "video/mp4")}),
        httpx.post(u + "/v1/videos", data={"prompt": "x"}, files={"input_reference": ("a.png", b"\x89PNG junk")}),
        httpx.post(u + "/v1/videos",
                   json={"prompt": "x", "input_reference": {"image_url": "data:image/png;base64,AAAA"}}),
        httpx.get(u + "/v1/videos/video_" + "0" * 32 + "/content"),
        httpx.get(u + "/v1/videos/%00%ff"),
    ]
    data_dir = str(open_server.data_dir)
    for r in answers:
        msg = r.json()["error"]["message"]
        assert 400 <= r.status_code < 500 and data_dir not in msg and "/tmp" not in msg, msg
        assert " object at 0x" not in msg and ".part" not in msg, msg


def test_job_error_messages_hide_paths():
    from tenku.serve.worker import public_message

    msg = public_message("video not found: /srv/tenku/data/videos/video_1/video.mp4 (cannot open /a/b/c.part)")
    assert "/srv" not in msg and "/a/b" not in msg and msg.startswith("video not found: <file>")


# ---- limits: forwarded addresses, key guessing, slow and greedy bodies ------------------------------
def test_forwarded_for_is_not_trusted_without_a_proxy(model, tmp_path_factory):
    srv = start(model, tmp_path_factory, "--rate-limit", "3")
    try:
        codes = [httpx.post(srv.url + "/v1/videos", json={"prompt": "x"},
                            headers={"X-Forwarded-For": f"10.0.0.{i}"}).status_code for i in range(5)]
        assert codes == [200, 200, 200, 429, 429]
    finally:
        srv.stop()


def test_forwarded_for_is_used_behind_a_trusted_proxy(model, tmp_path_factory):
    srv = start(model, tmp_path_factory, "--rate-limit", "2", "--trusted-proxy", "127.0.0.1")
    try:
        post = lambda ip: httpx.post(srv.url + "/v1/videos", json={"prompt": "x"},  # noqa: E731
                                     headers={"X-Forwarded-For": ip}).status_code
        assert [post("10.0.0.1") for _ in range(3)] == [200, 200, 429]
        assert post("10.0.0.2") == 200  # another client behind the same proxy has its own budget
    finally:
        srv.stop()


def test_wrong_keys_are_rate_limited(model, tmp_path_factory):
    srv = start(model, tmp_path_factory, "--api-key", KEY, "--auth-fail-limit", "5")
    try:
        u = srv.url
        assert [httpx.get(u + "/v1/videos").status_code for _ in range(8)] == [401] * 8  # missing: not a guess
        codes = [httpx.get(u + "/v1/videos", headers={"Authorization": f"Bearer guess-{i:08d}"}).status_code
                 for i in range(8)]
        assert codes[:5] == [401] * 5 and codes[5:] == [429] * 3
        r = httpx.get(u + "/v1/videos", headers={"Authorization": f"Bearer {KEY}"})
        assert r.status_code == 429 and int(r.headers["retry-after"]) > 0  # the address waits out the minute
    finally:
        srv.stop()


def test_docs_schema_and_health_are_behind_the_key(keyed_server):
    u, h = keyed_server.url, {"Authorization": f"Bearer {KEY}"}
    for path in ("/openapi.json", "/healthz"):
        assert httpx.get(u + path).status_code == 401, path
        assert httpx.get(u + path, headers=h).status_code == 200, path
    assert httpx.get(u + "/docs", headers=h).status_code == 404  # no Swagger UI (it would load from a CDN)
    assert "queued" in httpx.get(u + "/healthz", headers=h).json()


def test_slow_body_times_out_and_a_vanished_client_is_quiet(open_server):
    def partial(close_early: bool) -> bytes:
        s = socket.create_connection(("127.0.0.1", open_server.port), timeout=10)
        s.sendall(b"POST /v1/videos HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                  b"Content-Length: 1000\r\n\r\n{\"prompt\": ")
        if close_early:
            s.close()
            return b""
        t = time.monotonic()
        data = s.recv(4096)
        s.close()
        assert time.monotonic() - t < 5
        return data

    assert b" 408 " in partial(False).split(b"\r\n")[0]
    s = socket.create_connection(("127.0.0.1", open_server.port), timeout=10)
    s.sendall(b"GET /v1/videos HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # headers that never end (slowloris)
    t = time.monotonic()
    assert s.recv(100) == b"" and time.monotonic() - t < 5  # the server hung up after --body-timeout
    s.close()
    for _ in range(20):
        partial(True)
    time.sleep(1.5)
    log = open_server.log_tail(1 << 20)
    assert "Traceback" not in log and "internal error" not in log, log[-2000:]


def test_parallel_uploads_keep_memory_bounded(open_server):
    def rss_kib(field: str) -> int:
        for line in open(f"/proc/{open_server.proc.pid}/status"):
            if line.startswith(field + ":"):
                return int(line.split()[1])
        raise AssertionError(field)

    body = b"\x00" * (3 * 1024 * 1024)  # 3 MiB each, 48 MiB in all; not a video, so each is refused
    before = rss_kib("VmRSS")

    def upload(i):
        return httpx.post(open_server.url + "/v1/videos/edits", data={"prompt": f"x{i}"},
                          files={"video": ("v.mp4", body, "video/mp4")}, timeout=60).status_code

    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        codes = list(pool.map(upload, range(16)))
    assert set(codes) <= {400, 429} and 400 in codes, codes
    grown = (rss_kib("VmHWM") - before) / 1024
    assert grown < 40, f"the API process grew by {grown:.0f} MiB for 16 parallel 3 MiB uploads"
    print(f"16 parallel 3 MiB uploads: peak memory +{grown:.1f} MiB, answers {sorted(codes)}")
