"""The job store on a real SQLite file: atomic claims across processes, leases, retries, paging, expiry."""

import multiprocessing as mp
import sqlite3
import time

import pytest

pytest.importorskip("sqlalchemy")

from tenku.serve.store import JobStore  # noqa: E402


def _store(tmp_path, **kw):
    return JobStore(f"sqlite:///{tmp_path / 'jobs.sqlite3'}", **kw)


def _add(store, n, owner=""):
    return [store.create(owner=owner, kind="create", prompt=f"p{i}", model="m", seconds="1", size="64x48", seed=i)
            for i in range(n)]


def test_sqlite_file_uses_wal(tmp_path):
    store = _store(tmp_path)
    _add(store, 1)
    store.dispose()
    con = sqlite3.connect(tmp_path / "jobs.sqlite3")
    assert con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    con.close()


def _claimer(url, name, out):
    store = JobStore(url)
    got = []
    while True:
        job = store.claim(name)
        if job is None:
            break
        got.append(job.id)
        store.complete(job.id, name, 60)
    out.put(got)


def test_concurrent_claims_from_processes_take_each_job_once(tmp_path):
    store = _store(tmp_path)
    ids = {j.id for j in _add(store, 60)}
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(store.url, f"w{i}", out)) for i in range(3)]
    for p in procs:
        p.start()
    got = [out.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    claimed = [i for g in got for i in g]
    assert len(claimed) == len(set(claimed)) == 60
    assert set(claimed) == ids
    assert store.count("completed") == 60


def test_lost_lease_is_retried_then_fails_with_reason(tmp_path):
    store = _store(tmp_path, lease_seconds=0.2, max_attempts=2)
    (job,) = _add(store, 1)
    a = store.claim("worker-a")
    assert a.id == job.id and a.attempts == 1
    assert store.claim("worker-b") is None  # held by a
    time.sleep(0.3)  # worker-a sends no heartbeat: its lease runs out
    assert store.reap() == (1, 0)
    assert not store.heartbeat(job.id, "worker-a")  # a lost the job
    b = store.claim("worker-b")
    assert b.id == job.id and b.attempts == 2
    assert not store.complete(job.id, "worker-a", 60)  # the old holder cannot finish it
    time.sleep(0.3)
    assert store.reap() == (0, 1)
    final = store.get(job.id)
    assert final.status == "failed" and final.error_code == "worker_lost"
    assert "heartbeat" in final.error_message


def test_heartbeat_keeps_the_lease(tmp_path):
    store = _store(tmp_path, lease_seconds=0.3)
    (job,) = _add(store, 1)
    store.claim("w")
    for _ in range(4):
        time.sleep(0.15)
        assert store.heartbeat(job.id, "w", progress=40)
        assert store.reap() == (0, 0)
    assert store.get(job.id).progress == 40
    assert store.complete(job.id, "w", 60)
    assert store.get(job.id).status == "completed"


def test_release_does_not_count_an_attempt(tmp_path):
    store = _store(tmp_path)
    (job,) = _add(store, 1)
    store.claim("w")
    assert store.release(job.id, "w")
    again = store.claim("w2")
    assert again.id == job.id and again.attempts == 1


def test_max_queue_refuses_new_jobs(tmp_path):
    store = _store(tmp_path)
    _add(store, 3)
    assert store.create(owner="", kind="create", prompt="x", model="m", seconds="1", size="8x8", seed=0,
                        max_queue=3) is None
    store.claim("w")
    store.complete(store.list(None, order="asc", limit=1)[0][0].id, "w", 60)
    assert store.create(owner="", kind="create", prompt="x", model="m", seconds="1", size="8x8", seed=0,
                        max_queue=3) is not None


def test_paging_and_owners(tmp_path):
    store = _store(tmp_path)
    mine = [j.id for j in _add(store, 7, owner="a")]
    _add(store, 3, owner="b")
    seen, after = [], None
    while True:
        page, more = store.list("a", after=after, limit=3, order="asc")
        seen += [j.id for j in page]
        if not more:
            break
        after = page[-1].id
    assert seen == mine
    desc, _ = store.list("a", limit=100, order="desc")
    assert [j.id for j in desc] == mine[::-1]
    assert store.get(mine[0], owner="b") is None


def test_expiry_lists_finished_jobs_past_their_time(tmp_path):
    store = _store(tmp_path)
    a, b = _add(store, 2)
    for j in (a, b):
        store.claim("w")
    store.complete(a.id, "w", 0.0)
    store.complete(b.id, "w", 3600.0)
    due = store.due_for_expiry(time.time() + 1)
    assert [j.id for j in due] == [a.id]
    store.mark_expired(a.id)
    assert store.due_for_expiry(time.time() + 1) == []


def test_postgres_claim_uses_skip_locked():
    from sqlalchemy.dialects import postgresql

    sql = str(JobStore.claim_select().compile(dialect=postgresql.dialect()))
    assert "FOR UPDATE SKIP LOCKED" in sql
