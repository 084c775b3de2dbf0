"""`tenku serve` checked against OpenAI's own spec: every /v1/videos response of a live server (driven with the
real openai SDK, including its default size and seconds, and with raw HTTP for what the SDK will not send) is
validated against the schemas of tests/data/openapi/videos.yaml (copied from openai/openai-openapi, commit
named in its header), and every route of the spec is exercised."""

import io
import re
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")
httpx2 = pytest.importorskip("httpx2")  # the transport of the openai SDK
jsonschema = pytest.importorskip("jsonschema")
yaml = pytest.importorskip("yaml")

from referencing import Registry, Resource  # noqa: E402  (installed with jsonschema)
from referencing.jsonschema import DRAFT202012  # noqa: E402

from tenku.serve.launch import ServerProcess  # noqa: E402

KEY = "spec-key-0123456789"
FPS = 1  # keeps OpenAI's sizes cheap on a CPU: 4 s is 5 frames
SPEC = yaml.safe_load((Path(__file__).parent / "data" / "openapi" / "videos.yaml").read_text())
REGISTRY = Registry().with_resource("urn:videos", Resource(SPEC, DRAFT202012))
RECORDS: list[dict] = []

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK marks the Videos API deprecated


def schema_validator(ref: str) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator({"$ref": "urn:videos" + ref}, registry=REGISTRY)


def operations() -> list[tuple[str, re.Pattern, dict]]:
    """(method, path pattern, operation) for each spec operation, literal paths before templated ones."""
    ops = []
    for path, item in SPEC["paths"].items():
        pattern = re.compile("^/v1" + re.sub(r"\{[^}]+\}", "[^/]+", path) + "$")
        for method, op in item.items():
            ops.append((method.upper(), pattern, op, path.count("{")))
    return [o[:3] for o in sorted(ops, key=lambda o: o[3])]


OPS = operations()


def find_operation(method: str, path: str) -> dict | None:
    return next((op for m, pat, op in OPS if m == method and pat.match(path)), None)


def _record(response) -> None:
    response.read()
    req = response.request
    RECORDS.append({"method": req.method, "path": req.url.path, "status": response.status_code,
                    "ctype": response.headers.get("content-type", "").split(";")[0], "body": response.content,
                    "headers": dict(response.headers)})


def spec_problems(rec: dict) -> list[str]:
    """What in one recorded response disagrees with the spec (empty: it conforms)."""
    import json

    where = f"{rec['method']} {rec['path']} -> {rec['status']}"
    if rec["status"] >= 500:
        return [f"{where}: a server error"]
    op = find_operation(rec["method"], rec["path"])
    if op is None:
        return [] if not rec["path"].startswith("/v1/videos") else [f"{where}: not an operation of the spec"]
    if rec["status"] >= 400:
        errors = schema_validator("#/components/schemas/ErrorResponse").iter_errors(json.loads(rec["body"]))
        return [f"{where}: error body: {e.message}" for e in errors]
    content = op["responses"]["200"]["content"]
    if rec["ctype"] not in content:
        return [f"{where}: content type {rec['ctype']!r} is not one of {sorted(content)}"]
    schema = content[rec["ctype"]]["schema"]
    if rec["ctype"] != "application/json" or "$ref" not in schema:
        return []
    body = json.loads(rec["body"])
    return [f"{where}: {e.json_path}: {e.message}" for e in schema_validator(schema["$ref"]).iter_errors(body)]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    from tenku.testing import make_tiny_pipeline

    model = str(make_tiny_pipeline(tmp_path_factory.mktemp("model") / "tiny"))
    data = tmp_path_factory.mktemp("serve")
    # OpenAI's sizes and durations (the defaults); a low fps keeps their frame counts small for a CPU test
    srv = ServerProcess(model=model, data_dir=data, workers=1,
                        args=["--api-key", KEY, "--poll-after-ms", "100", "--threads", "1", "--rate-limit", "0",
                              "--fps", str(FPS)])
    with srv:
        yield srv
    assert "Traceback" not in srv.log_tail(1 << 20), srv.log_tail()


@pytest.fixture(scope="module")
def http(server):
    """A recording HTTP client: every response the SDK (or a raw request) gets is kept for spec validation."""
    with httpx2.Client(event_hooks={"response": [_record]}, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def client(server, http):
    return openai.OpenAI(base_url=server.url + "/v1", api_key=KEY, max_retries=0, http_client=http)


@pytest.fixture(scope="module")
def default_video(client):
    """A video made with the SDK's defaults: no size, no seconds, no model."""
    v = client.videos.create_and_poll(prompt="a red ball rolls to the right", poll_interval_ms=100)
    assert v.status == "completed", v.error
    return v


def _decode(mp4: bytes) -> tuple[int, tuple[int, int]]:
    import av

    with av.open(io.BytesIO(mp4)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    return len(frames), frames[0].shape[:2]


def test_sdk_defaults_give_openai_default_video(client, default_video):
    assert default_video.size == "720x1280" and default_video.seconds == "4"
    n, (h, w) = _decode(client.videos.download_content(default_video.id).content)
    assert (w, h) == (720, 1280)  # generated at the model's scale, same aspect, scaled to the asked size
    assert n == 1 + 4 * FPS
    polls = [r for r in RECORDS if r["method"] == "GET" and r["path"] == f"/v1/videos/{default_video.id}"]
    assert polls, "create_and_poll polled"
    import json

    bodies = [json.loads(r["body"]) for r in polls]
    progress = [b["progress"] for b in bodies]
    assert progress == sorted(progress) and progress[-1] == 100
    for r, b in zip(polls, bodies):
        if b["status"] in ("queued", "in_progress"):
            assert r["headers"].get("openai-poll-after-ms") == "100"


def test_spec_seconds_sizes_and_models(client):
    long_ = client.videos.create(prompt="a ball bounces", seconds="12", size="1280x720", model="sora-2-pro")
    mid = client.videos.create(prompt="a ball falls", seconds="8", size="720x1280", model="sora-2-2025-10-06")
    assert (long_.seconds, long_.size, long_.model) == ("12", "1280x720", "sora-2-pro")
    assert (mid.seconds, mid.size, mid.model) == ("8", "720x1280", "sora-2-2025-10-06")
    for size in ("1024x1792", "1792x1024"):  # accepted; deleted at once to spare the worker
        v = client.videos.create(prompt="a cube slides", size=size, seconds="4", model="sora-2")
        assert v.size == size and v.status == "queued"
        assert client.videos.delete(v.id).deleted
    for v, seconds, (w, h) in ((long_, 12, (1280, 720)), (mid, 8, (720, 1280))):
        done = client.videos.poll(v.id, poll_interval_ms=100)
        assert done.status == "completed", done.error
        n, shape = _decode(client.videos.download_content(v.id).content)
        assert shape == (h, w) and n == 1 + FPS * seconds
    models = client.models.list().data[0].model_extra["capabilities"]
    assert {"720x1280", "1280x720", "1024x1792", "1792x1024"} <= set(models["sizes"])
    assert {"4", "8", "12"} <= set(models["seconds"]) and "sora-2" in models["aliases"]
    assert client.models.retrieve("sora-2").id == "sora-2"


def test_every_route_through_the_sdk(server, client, http, default_video):
    vid = default_video.id
    assert client.videos.retrieve(vid).id == vid
    empty = client.videos.list(limit=0)
    assert empty.data == [] and empty.has_more
    assert vid in [v.id for v in client.videos.list(limit=100, order="asc").data]
    for variant, ctype in (("video", "video/mp4"), ("thumbnail", "image/webp"), ("spritesheet", "image/webp")):
        r = client.videos.download_content(vid, variant=variant)
        assert r.response.headers["content-type"] == ctype
    remix = client.videos.remix(vid, prompt="a blue ball rolls to the right")
    assert remix.remixed_from_video_id == vid and remix.size == "720x1280"
    mp4 = client.videos.download_content(vid).content
    by_file = client.videos.extend(prompt="it keeps rolling", seconds="4", video=("clip.mp4", mp4, "video/mp4"))
    by_id = http.post(server.url + "/v1/videos/extensions", headers={"Authorization": f"Bearer {KEY}"},
                      json={"prompt": "it keeps rolling", "seconds": "4", "video": {"id": vid}}).json()
    assert by_file.seconds == by_id["seconds"] == "8"  # the stitched total, the same rule for both forms
    edit = client.videos.edit(prompt="make it green", video=("clip.mp4", mp4, "video/mp4"))
    assert edit.status == "queued"
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.create_character(name="ball", video=("clip.mp4", mp4, "video/mp4"))
    assert e.value.status_code == 400 and e.value.body["code"] == "unsupported_feature"
    with pytest.raises(openai.NotFoundError):
        client.videos.get_character("char_123")
    done = client.videos.poll(by_file.id, poll_interval_ms=100)
    assert done.status == "completed", done.error
    n, _ = _decode(client.videos.download_content(done.id).content)
    assert n == 1 + 8 * FPS  # what the object reports is what the file holds
    for v in (remix.id, by_id["id"], edit.id):
        assert client.videos.delete(v).deleted


@pytest.mark.parametrize("body, code", [
    (b'{"prompt": "x", "seconds": null}', "invalid_type"),
    (b'{"prompt": "x", "seconds": 4}', "invalid_type"),
    (b'{"prompt": 123}', "invalid_type"),
    (b'{"prompt": "x", "seed": NaN}', "invalid_json"),
    (b'{"prompt": "x", "seconds": Infinity}', "invalid_json"),
    (b'{"prompt": "x", "size": "640x480"}', "unsupported_size"),
    (b'{"prompt": "x", "seconds": "0"}', "unsupported_seconds"),
    (b'{"prompt": "x", "model": "gpt-9"}', "model_not_found"),
    (b'{"prompt": "\\ud83c"}', "invalid_value"),
    (b'{"prompt": "x", "model": null}', "invalid_type"),
])
def test_what_the_spec_forbids_is_a_400(server, http, body, code):
    r = http.post(server.url + "/v1/videos", content=body,
                  headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == code, r.text


def test_list_limits(server, http):
    h = {"Authorization": f"Bearer {KEY}"}
    assert http.get(server.url + "/v1/videos?limit=0", headers=h).status_code == 200
    assert http.get(server.url + "/v1/videos?limit=101", headers=h).status_code == 400
    assert http.get(server.url + "/v1/videos?limit=-1", headers=h).status_code == 400


def test_every_response_matches_the_spec(server):
    """Runs last: all responses recorded above, checked against the spec's schemas, every operation seen."""
    problems = [p for rec in RECORDS for p in spec_problems(rec)]
    assert not problems, "\n".join(problems[:20])
    seen = {find_operation(r["method"], r["path"])["operationId"] for r in RECORDS
            if find_operation(r["method"], r["path"])}
    every = {op["operationId"] for item in SPEC["paths"].values() for op in item.values()}
    assert seen == every, every - seen
    assert len(RECORDS) > 30
