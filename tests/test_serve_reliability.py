"""The queue loses nothing: 200 jobs from 50 concurrent SDK clients, a worker killed with SIGKILL mid-job,
and the whole server crashing mid-queue. Real `tenku serve` processes on 127.0.0.1, a real SQLite file."""

import os
import signal
import sqlite3
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")

from tenku.serve.launch import ServerProcess  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.filterwarnings("ignore::DeprecationWarning")]



def tiniest_pipeline(path: Path) -> str:
    """The tiny random test models at 16x16, 5 frames, 1 step: about 0.1 s per video on one CPU core."""
    from tenku.config import FlowConfig, SampleConfig
    from tenku.pipeline.pipeline import TenkuPipeline
    from tenku.testing import make_tiny_models

    vae, dit, text = make_tiny_models(0)
    sample = SampleConfig(num_frames=5, height=16, width=16, fps=4, num_steps=1, guidance=1.0)
    return str(TenkuPipeline(vae, dit, text, FlowConfig(shift_ref_tokens=64), sample).save_pretrained(path))


def _rows(data_dir: Path) -> list[dict]:
    con = sqlite3.connect(data_dir / "jobs.sqlite3")
    con.row_factory = sqlite3.Row
    rows = [dict(r) for r in con.execute("SELECT * FROM jobs ORDER BY seq")]
    con.close()
    return rows


def _children(pid: int) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                fields = (p / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                out.append(int(p.name))
    return out


def _wait(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_200_jobs_from_50_concurrent_clients_all_complete_once(tmp_path):
    data = tmp_path / "serve"
    args = ["--rate-limit", "0", "--poll-after-ms", "1000", "--seconds", "1", "--threads", "1", "--sizes", "16x16"]
    model = tiniest_pipeline(tmp_path / "model")
    with ServerProcess(model=model, data_dir=data, workers=2, args=args) as srv:
        results: dict[int, list] = {}
        errors = []

        def client_run(k: int) -> None:
            try:
                c = openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=2, timeout=60)
                ids = [c.videos.create(prompt=f"client {k} job {j}", seconds="1").id for j in range(4)]
                results[k] = [c.videos.poll(i) for i in ids]  # at the server's hint: 1 s
            except Exception as e:  # reported below with the client number
                errors.append((k, repr(e)))

        threads = [threading.Thread(target=client_run, args=(k,)) for k in range(50)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=240)
        elapsed = time.monotonic() - t0
        assert not errors, errors[:3]
        videos = [v for vs in results.values() for v in vs]
        assert len(videos) == 200
        assert all(v.status == "completed" for v in videos), [v.error for v in videos if v.status != "completed"][:3]
        assert len({v.id for v in videos}) == 200
        assert sorted(v.prompt for v in videos) == sorted(f"client {k} job {j}" for k in range(50) for j in range(4))
    rows = _rows(data)
    assert len(rows) == 200 and {r["id"] for r in rows} == {v.id for v in videos}
    assert all(r["attempts"] == 1 for r in rows)  # no job ran twice
    for r in rows:
        assert (data / "videos" / r["id"] / "video.mp4").stat().st_size > 0
    print(f"200 jobs from 50 clients on 2 workers: {elapsed:.1f} s")


def test_worker_sigkill_mid_job_and_server_crash_mid_queue_lose_nothing(tmp_path):
    data = tmp_path / "serve"
    model = tiniest_pipeline(tmp_path / "model")
    # 3000 sampler steps: a job lasts long enough (a few seconds even on an idle machine) to be killed mid-way;
    # with 600 (about a second) an idle machine finished the first job between seeing its progress and the kill
    slow = ["--lease-seconds", "2", "--steps", "3000", "--seconds", "1", "--poll-after-ms", "100", "--threads", "1",
            "--sizes", "16x16"]
    srv = ServerProcess(model=model, data_dir=data, workers=1, args=slow).start()
    try:
        c = openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0)
        ids = [c.videos.create(prompt=f"job {i}", seconds="1").id for i in range(8)]
        # 1. SIGKILL the worker while it runs the first job (found through the lease owner, host:pid)
        _wait(lambda: c.videos.retrieve(ids[0]).progress >= 10, 60, "the sampler to report progress")
        row = next(r for r in _rows(data) if r["id"] == ids[0])  # one read: status and owner together
        assert row["status"] == "in_progress" and row["lease_owner"], row
        owner = row["lease_owner"]
        pid = int(owner.rsplit(":", 1)[1])
        assert pid in _children(srv.proc.pid)
        os.kill(pid, signal.SIGKILL)
        first = c.videos.poll(ids[0], poll_interval_ms=100)
        assert first.status == "completed", first.error
        assert next(r["attempts"] for r in _rows(data) if r["id"] == ids[0]) == 2
        assert pid not in _children(srv.proc.pid) and len(_children(srv.proc.pid)) == 1  # replaced
        # 2. crash the whole server (API process and worker together) while jobs are still queued
        before = {r["id"]: r["status"] for r in _rows(data)}
        assert "queued" in before.values()
        done_bytes = {i: c.videos.download_content(i).content for i, st in before.items() if st == "completed"}
    finally:
        srv.kill()
    srv2 = ServerProcess(model=model, data_dir=data, workers=1, args=slow[:2] + ["--steps", "2", *slow[4:]]).start()
    try:
        c = openai.OpenAI(base_url=srv2.url + "/v1", api_key="unused", max_retries=0)
        finals = [c.videos.poll(i, poll_interval_ms=100) for i in ids]
        assert all(v.status == "completed" for v in finals), [v.error for v in finals]
        for i, content in done_bytes.items():  # files written before the crash are still there, unchanged
            assert c.videos.download_content(i).content == content
        assert [v.id for v in c.videos.list(limit=100, order="asc")] == ids
    finally:
        srv2.stop()
    rows = _rows(data)
    assert len(rows) == 8 and all(r["attempts"] <= 2 for r in rows)
    assert "restarting" in srv.log_tail(20000)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def test_workers_exit_when_the_server_process_dies(tmp_path):
    """A server killed alone (not its process group) must not leave orphan workers polling the queue."""
    model = tiniest_pipeline(tmp_path / "model")
    srv = ServerProcess(model=model, data_dir=tmp_path / "data", workers=2,
                        args=["--threads", "1", "--sizes", "16x16"]).start()
    try:
        workers = _wait(lambda: [p for p in _children(srv.proc.pid)] if len(_children(srv.proc.pid)) >= 2 else None,
                        30, "two worker processes")
        os.kill(srv.proc.pid, signal.SIGKILL)
        srv.proc.wait()
        _wait(lambda: not any(_alive(p) for p in workers), 30, "orphaned workers to exit")
    finally:
        srv.kill()
