"""The API in process (FastAPI's TestClient over a real SQLite file and real generated files): per-key
rate limit, full queue, file expiry, deletion of a running job, and the worker's job function."""

import time

import pytest

pytest.importorskip("fastapi")

from fastapi.testclient import TestClient  # noqa: E402

from tenku.serve.app import create_app  # noqa: E402
from tenku.serve.settings import ServeConfig, capabilities  # noqa: E402
from tenku.serve.store import JobStore  # noqa: E402
from tenku.serve.worker import load_pipeline, process_one  # noqa: E402

KEYS = ("key-one-123456", "key-two-123456")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    from tenku.testing import make_tiny_pipeline

    return str(make_tiny_pipeline(tmp_path_factory.mktemp("model") / "tiny"))


def _setup(tmp_path, model, **kw):
    cfg = ServeConfig(model=model, data_dir=str(tmp_path / "data"), api_keys=KEYS, lease_seconds=1.0,
                      sizes=("32x32",), allowed_hosts=("testserver",), **kw)
    store = JobStore(cfg.resolved_db_url(), lease_seconds=cfg.lease_seconds)
    return cfg, store, create_app(cfg, store=store)


def _h(key):
    return {"Authorization": f"Bearer {key}"}


def test_rate_limit_per_key(tmp_path, model):
    cfg, store, app = _setup(tmp_path, model, rate_limit=3)
    with TestClient(app) as c:
        codes = [c.post("/v1/videos", json={"prompt": "x"}, headers=_h(KEYS[0])).status_code for _ in range(4)]
        assert codes == [200, 200, 200, 429]
        r = c.post("/v1/videos", json={"prompt": "x"}, headers=_h(KEYS[0]))
        assert r.json()["error"]["code"] == "rate_limit_exceeded" and int(r.headers["retry-after"]) >= 1
        assert c.post("/v1/videos", json={"prompt": "x"}, headers=_h(KEYS[1])).status_code == 200  # own budget
        assert c.get("/v1/videos", headers=_h(KEYS[0])).status_code == 200  # reads are not limited
        assert len(c.get("/v1/videos", headers=_h(KEYS[1])).json()["data"]) == 1  # each key sees its own


def test_full_queue_is_429(tmp_path, model):
    cfg, store, app = _setup(tmp_path, model, max_queue=2, rate_limit=0)
    with TestClient(app) as c:
        ok = [c.post("/v1/videos", json={"prompt": "x"}, headers=_h(KEYS[0])) for _ in range(2)]
        assert all(r.status_code == 200 for r in ok)
        r = c.post("/v1/videos", json={"prompt": "x"}, headers=_h(KEYS[0]))
        assert r.status_code == 429 and r.json()["error"]["code"] == "queue_full"
    assert store.count() == 2


def test_finished_files_expire(tmp_path, model):
    cfg, store, app = _setup(tmp_path, model, expire_after=1.0, rate_limit=0)
    caps, pipe = capabilities(cfg), load_pipeline(model)
    with TestClient(app) as c:
        vid = c.post("/v1/videos", json={"prompt": "a red ball", "seconds": "1"}, headers=_h(KEYS[0])).json()["id"]
        assert process_one(store, pipe, cfg, caps, "test-worker")  # the worker's own code path, in process
        v = c.get(f"/v1/videos/{vid}", headers=_h(KEYS[0])).json()
        assert v["status"] == "completed" and v["expires_at"] - v["completed_at"] in (0, 1, 2)
        r = c.get(f"/v1/videos/{vid}/content", headers=_h(KEYS[0]))
        assert r.status_code == 200 and r.headers["content-type"] == "video/mp4" and len(r.content) > 100
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            r = c.get(f"/v1/videos/{vid}/content", headers=_h(KEYS[0]))
            if r.status_code != 200:
                break
            time.sleep(0.25)
        assert r.status_code == 410 and r.json()["error"]["code"] == "video_expired"
        assert not (tmp_path / "data" / "videos" / vid).exists()
        assert c.get(f"/v1/videos/{vid}", headers=_h(KEYS[0])).json()["status"] == "completed"  # the job stays


def test_deleting_a_running_job_leaves_no_files(tmp_path, model):
    cfg, store, app = _setup(tmp_path, model, rate_limit=0)
    caps, pipe = capabilities(cfg), load_pipeline(model)

    class DeleteMidway:  # deletes the job through the API while the generator runs, then generates
        def __init__(self, client, vid):
            self.client, self.vid = client, vid

        def __getattr__(self, name):
            return getattr(pipe, name)

        def __call__(self, *a, **kw):
            assert self.client.delete(f"/v1/videos/{self.vid}", headers=_h(KEYS[0])).json()["deleted"]
            return pipe(*a, **kw)

    with TestClient(app) as c:
        vid = c.post("/v1/videos", json={"prompt": "a red ball", "seconds": "1"}, headers=_h(KEYS[0])).json()["id"]
        assert process_one(store, DeleteMidway(c, vid), cfg, caps, "test-worker")
        assert c.get(f"/v1/videos/{vid}", headers=_h(KEYS[0])).status_code == 404
    assert not (tmp_path / "data" / "videos" / vid).exists()
    assert store.count() == 0


def test_unreachable_moderation_endpoint_is_503_and_queues_nothing(tmp_path, model, monkeypatch):
    from tenku.serve.launch import free_port

    monkeypatch.setenv("TENKU_MODERATION_URL", f"http://127.0.0.1:{free_port()}/v1")  # nothing listens there
    monkeypatch.setenv("TENKU_MODERATION_TIMEOUT", "2")
    cfg, store, app = _setup(tmp_path, model, rate_limit=0)
    with TestClient(app) as c:
        r = c.post("/v1/videos", json={"prompt": "a red ball"}, headers=_h(KEYS[0]))
    assert r.status_code == 503, r.text
    err = r.json()["error"]
    assert err["code"] == "moderation_unavailable" and set(err) >= {"message", "type", "param", "code"}
    assert store.count() == 0
