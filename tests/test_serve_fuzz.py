"""Bad input never gets a 5xx: schemathesis driven by OpenAI's /videos spec (tests/data/openapi/videos.yaml;
bounded examples, skipped when schemathesis is not installed), a bounded, seeded fuzz of our own over the same
fields against a live `tenku serve`, the cases that once were 500s (a lone surrogate in
every prompt, JSON nested thousands deep, a client gone mid-body), and a job deleted while it runs. Every answer
must be a 4xx in OpenAI's error shape or a success, and the server log must hold no traceback."""

import importlib.util
import json
import os
import random
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
yaml = pytest.importorskip("yaml")

from tenku.serve.launch import ServerProcess  # noqa: E402

SPEC = yaml.safe_load((Path(__file__).parent / "data" / "openapi" / "videos.yaml").read_text())
N_REQUESTS = 400  # the bound: about 10 s on one core
SURROGATE = '"\\ud83c"'  # a lone high surrogate, as JSON writes it
DEEP = "[" * 5000 + "]" * 5000

NASTY = [None, True, False, 0, -1, 4, 4.5, 2**70, "", " ", "4", "8", "12", "0", "-4", "4.0", "1e3", "0x10", "NaN",
         "720x1280", "1280x720", "32x32", "720X1280", " 32x32", "0x0", "99999999x1", "a" * 5000, "日本語",
         "\u0000", "../../etc/passwd", "video_" + "0" * 32, "sora-2", "tenku", [], ["4"], {}, {"id": 1},
         {"id": "video_" + "f" * 32}, {"image_url": "data:image/png;base64,!!"}, {"file_id": "file-1"}]
RAW_TOKENS = ["NaN", "Infinity", "-Infinity", SURROGATE, DEEP, '"\\u0000"', "1" * 400, "{" * 3000]


def spec_fields(schema_name: str) -> list[str]:
    return list(SPEC["components"]["schemas"][schema_name]["properties"])


BODIES = {  # route -> the fields its spec body has, plus tenku's seed
    "/v1/videos": spec_fields("CreateVideoJsonBody") + ["seed"],
    "/v1/videos/extensions": spec_fields("CreateVideoExtendJsonBody") + ["seed"],
    "/v1/videos/edits": spec_fields("CreateVideoEditJsonBody") + ["seed"],
    "/v1/videos/{id}/remix": spec_fields("CreateVideoRemixBody"),
    "/v1/videos/characters": spec_fields("CreateVideoCharacterBody"),
}


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from tenku.testing import make_tiny_pipeline

    return str(make_tiny_pipeline(tmp_path_factory.mktemp("model") / "tiny"))


@pytest.fixture(scope="module")
def server(model, tmp_path_factory):
    srv = ServerProcess(model=model, data_dir=tmp_path_factory.mktemp("serve"), workers=1,
                        args=["--threads", "1", "--rate-limit", "0", "--sizes", "32x32", "--seconds", "1",
                              "--max-seconds", "2", "--poll-after-ms", "100", "--max-upload-mb", "1",
                              "--body-timeout", "2"]).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def completed(server):
    r = httpx.post(server.url + "/v1/videos", json={"prompt": "a red ball rolls", "seconds": "1"})
    vid = r.json()["id"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        v = httpx.get(server.url + f"/v1/videos/{vid}").json()
        if v["status"] == "completed":
            return vid
        assert v["status"] in ("queued", "in_progress"), v
        time.sleep(0.1)
    raise AssertionError("the first video did not complete")


def check(r: httpx.Response, what) -> None:
    assert r.status_code < 500, (what, r.status_code, r.text[:300])
    if r.status_code >= 400 and r.content:
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"} and isinstance(err["message"], str), (what, err)


def _json_with_raw(fields: dict, raw: dict) -> bytes:
    """A JSON object with ordinary values and some raw (possibly invalid) tokens spliced in."""
    parts = [f"{json.dumps(k)}: {json.dumps(v)}" for k, v in fields.items()]
    parts += [f"{json.dumps(k)}: {tok}" for k, tok in raw.items()]
    return ("{" + ", ".join(parts) + "}").encode()


def test_bounded_fuzz_over_the_spec_fields(server, completed):
    rng = random.Random(20261202)
    u = server.url
    start = time.monotonic()
    for n in range(N_REQUESTS):
        route = rng.choice(list(BODIES) + ["GET list", "GET video", "GET content", "DELETE"])
        if route.startswith(("GET", "DELETE")):
            junk = rng.choice(["video_" + "0" * 32, completed if route != "DELETE" else "x", "%00", "%ff%fe",
                               "..%2f..", "a" * 3000, "characters", "video_" + "g" * 32, "%F0%9F%98%80"])
            query = {k: str(rng.choice(NASTY))[:100] for k in rng.sample(["limit", "order", "after", "variant"],
                                                                         rng.randint(0, 3))}
            path = {"GET list": "/v1/videos", "GET video": f"/v1/videos/{junk}",
                    "GET content": f"/v1/videos/{junk}/content", "DELETE": f"/v1/videos/{junk}"}[route]
            r = httpx.request(route.split()[0], u + path, params=query, timeout=30)
            check(r, (route, path, query))
            continue
        path = route.replace("{id}", rng.choice([completed, "video_" + "1" * 32, "nope"]))
        names = BODIES[route] + ["extra"]
        fields = {k: rng.choice(NASTY) for k in rng.sample(names, rng.randint(0, len(names)))}
        if rng.random() < 0.5:  # JSON, sometimes with raw tokens the spec forbids
            raw = {rng.choice(names): rng.choice(RAW_TOKENS)} if rng.random() < 0.4 else {}
            body = _json_with_raw(fields, raw)
            ctype = rng.choice(["application/json"] * 6 + ["", "text/plain", "application/json; charset=latin-1"])
            headers = {"Content-Type": ctype} if ctype else {}
            r = httpx.post(u + path, content=body, headers=headers, timeout=30)
        else:  # multipart as the SDK sends it: strings, bracketed sub-fields, files
            data = {k: json.dumps(v) if isinstance(v, (dict, list)) else str(v) for k, v in fields.items()
                    if v is not None}
            if rng.random() < 0.3:
                data["video[id]"] = rng.choice([completed, "x", "video_" + "2" * 32])
            files = {}
            if rng.random() < 0.5:
                blob = rng.choice([b"", b"\x89PNG\r\n\x1a\n", b"\x00" * 2000, rng.randbytes(3000)])
                files[rng.choice(["video", "input_reference", "prompt", "seconds"])] = ("f.bin", blob,
                                                                                        "application/octet-stream")
            r = httpx.post(u + path, data=data, files=files or None, timeout=30)
        check(r, (path, fields))
    elapsed = time.monotonic() - start
    log = server.log_tail(1 << 22)
    assert "Traceback" not in log and "internal error" not in log, log[-3000:]
    print(f"{N_REQUESTS} fuzzed requests in {elapsed:.1f} s, no 5xx")


@pytest.mark.skipif(importlib.util.find_spec("schemathesis") is None, reason="schemathesis is not installed")
def test_schemathesis_from_the_spec_finds_no_server_error(server, completed):
    """schemathesis' examples, coverage and fuzzing phases over all 10 operations (about 600 requests, 10 s)."""
    spec = Path(__file__).parent / "data" / "openapi" / "videos.yaml"
    cmd = [sys.executable, "-m", "schemathesis.cli", "run", str(spec), "--url", server.url + "/v1",
           "--max-examples", "25", "--seed", "20261202", "--checks", "not_a_server_error",
           "--phases", "examples,coverage,fuzzing", "--no-color"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=dict(os.environ, NO_COLOR="1"))
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert "generated" in r.stdout and "failed" not in r.stdout.split("Test cases:")[-1], r.stdout[-2000:]
    log = server.log_tail(1 << 22)
    assert "Traceback" not in log and "internal error" not in log, log[-3000:]


@pytest.mark.parametrize("route", ["/v1/videos", "/v1/videos/{id}/remix", "/v1/videos/extensions",
                                   "/v1/videos/edits"])
def test_lone_surrogate_and_deep_json_are_400s(server, completed, route):
    u, path = server.url, server.url + route.replace("{id}", completed)
    h = {"Content-Type": "application/json"}
    body = f'{{"prompt": {SURROGATE}, "video": {{"id": "{completed}"}}, "seconds": "1"}}'.encode()
    r = httpx.post(path, content=body, headers=h)
    assert r.status_code == 400 and r.json()["error"]["param"] == "prompt", r.text
    for deep in (DEEP, "{" + '"a":{' * 3000 + "}" * 3001):
        r = httpx.post(path, content=deep.encode(), headers=h)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json", r.text[:200]
    r = httpx.post(path, files={"prompt": (None, b"\xed\xa0\xbc")})  # the surrogate as (invalid) UTF-8 in a form
    assert r.status_code == 400 and "UTF-8" in r.json()["error"]["message"], r.text
    assert httpx.get(u + "/v1/videos").status_code == 200


def test_clients_that_vanish_mid_body_are_not_errors(server):
    for i in range(30):
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        s.sendall(b"POST /v1/videos HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary=b\r\n"
                  b"Content-Length: 100000\r\n\r\n--b\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nabc")
        s.close()
    time.sleep(1.0)
    log = server.log_tail(1 << 22)
    assert "Traceback" not in log and "internal error" not in log, log[-3000:]


def test_a_job_deleted_while_it_runs_stops_quietly(model, tmp_path_factory):
    data = tmp_path_factory.mktemp("serve-delete")
    with ServerProcess(model=model, data_dir=data, workers=1,
                       args=["--threads", "1", "--sizes", "32x32", "--seconds", "1", "--steps", "3000",
                             "--poll-after-ms", "100"]) as srv:
        vid = httpx.post(srv.url + "/v1/videos", json={"prompt": "a long job"}).json()["id"]
        deadline, seen = time.monotonic() + 60, []
        while True:  # progress moves while it runs (one step at a time), and the poll hint is sent
            r = httpx.get(srv.url + f"/v1/videos/{vid}")
            v = r.json()
            assert r.headers["openai-poll-after-ms"] == "100" and v["status"] in ("queued", "in_progress"), v
            seen.append(v["progress"])
            if v["status"] == "in_progress" and len({p for p in seen if 5 < p < 90}) >= 2:
                break
            assert time.monotonic() < deadline, seen
            time.sleep(0.05)
        assert seen == sorted(seen)
        assert httpx.delete(srv.url + f"/v1/videos/{vid}").json()["deleted"]
        deadline = time.monotonic() + 30
        while "was deleted" not in srv.log_tail():
            assert time.monotonic() < deadline, srv.log_tail()
            time.sleep(0.1)
        after = httpx.post(srv.url + "/v1/videos", json={"prompt": "the next job", "seconds": "1"}).json()["id"]
        assert httpx.delete(srv.url + f"/v1/videos/{after}").status_code == 200
        assert not (data / "videos" / vid).exists()
        log = srv.log_tail(1 << 20)
    assert "Traceback" not in log and "FileNotFoundError" not in log, log
