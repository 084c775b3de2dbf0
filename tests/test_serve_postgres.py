"""The job store on a real PostgreSQL server (a throwaway cluster made with initdb): claims with
SELECT ... FOR UPDATE SKIP LOCKED from several processes, leases and retries. Skipped when no PostgreSQL
binaries or no psycopg driver are installed."""

import multiprocessing as mp
import glob
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

pytest.importorskip("sqlalchemy")
pytest.importorskip("psycopg")

from tenku.serve.launch import free_port  # noqa: E402
from tenku.serve.store import JobStore  # noqa: E402

_PG_PATH = os.pathsep.join([os.environ.get("PATH", ""), *sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True)])
INITDB, PG_CTL = shutil.which("initdb", path=_PG_PATH), shutil.which("pg_ctl", path=_PG_PATH)
pytestmark = pytest.mark.skipif(not (INITDB and PG_CTL), reason="PostgreSQL (initdb, pg_ctl) is not installed")


def _as_db_user(cmd):
    """PostgreSQL refuses to run as root: run its tools as the 'postgres' user then."""
    if os.geteuid() != 0:
        return cmd
    if shutil.which("runuser") is None:
        pytest.skip("running as root without runuser: cannot start PostgreSQL")
    return ["runuser", "-u", "postgres", "--", *cmd]


@pytest.fixture(scope="module")
def pg_url():
    base = Path(tempfile.mkdtemp(prefix="tenku-pg-"))  # not under pytest's root-only folder: postgres must enter it
    if os.geteuid() == 0:
        shutil.chown(base, "postgres")
    data, port = base / "data", free_port()
    subprocess.run(_as_db_user([INITDB, "-D", str(data), "-A", "trust", "-U", "tenku", "--no-sync", "-E", "UTF8"]),
                   check=True, capture_output=True, timeout=120)
    opts = f"-p {port} -k {base} -c listen_addresses='' -c fsync=off"
    subprocess.run(_as_db_user([PG_CTL, "-D", str(data), "-o", opts, "-l", str(base / "log"), "-w", "start"]),
                   check=True, capture_output=True, timeout=120)
    try:
        yield f"postgresql+psycopg://tenku@/postgres?host={base}&port={port}"
    finally:
        subprocess.run(_as_db_user([PG_CTL, "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def _claimer(url, name, out):
    store = JobStore(url)
    got = []
    while (job := store.claim(name)) is not None:
        got.append(job.id)
        store.complete(job.id, name, 60)
    out.put(got)
    store.dispose()


def test_postgres_claims_each_job_once_across_processes(pg_url):
    store = JobStore(pg_url)
    ids = {store.create(owner="pg", kind="create", prompt=f"p{i}", model="m", seconds="1", size="32x32", seed=i).id
           for i in range(40)}
    ctx = mp.get_context("spawn")
    out = ctx.Queue()
    procs = [ctx.Process(target=_claimer, args=(pg_url, f"w{i}", out)) for i in range(3)]
    for p in procs:
        p.start()
    got = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    claimed = [i for g in got for i in g]
    assert len(claimed) == len(set(claimed)) == 40 and set(claimed) == ids
    page, more = store.list("pg", limit=100, order="asc")
    assert [j.status for j in page] == ["completed"] * 40 and not more
    store.dispose()


def test_postgres_lost_lease_is_retried(pg_url):
    store = JobStore(pg_url, lease_seconds=0.2, max_attempts=2)
    job = store.create(owner="lease", kind="create", prompt="x", model="m", seconds="1", size="32x32", seed=0)
    assert store.claim("a").id == job.id
    time.sleep(0.3)
    store.reap()
    again = store.claim("b")
    assert again.id == job.id and again.attempts == 2
    assert not store.heartbeat(job.id, "a") and store.heartbeat(job.id, "b", progress=50)
    assert store.complete(job.id, "b", 60) and store.get(job.id).status == "completed"
    store.dispose()
