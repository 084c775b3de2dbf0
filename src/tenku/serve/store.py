"""The job store: one ``jobs`` table through SQLAlchemy, a SQLite file (WAL) by default or PostgreSQL by URL.

A job moves queued -> in_progress -> completed | failed. A worker *claims* a queued job atomically
(``SELECT ... FOR UPDATE SKIP LOCKED`` on PostgreSQL, a guarded ``UPDATE ... WHERE status='queued'`` on
SQLite) and holds a *lease* it renews with heartbeats. A job whose lease runs out (its worker died) goes
back to the queue, up to ``max_attempts`` tries, then fails with the reason. Every change is one short
transaction, so a restart of the server or of any worker loses nothing.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import (
    Boolean, Column, Float, Integer, MetaData, String, Table, Text, and_, create_engine, event, func, select,
    update,
)
from sqlalchemy.engine import Engine, make_url

metadata = MetaData()

jobs = Table(
    "jobs",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),  # creation order, for paging
    Column("id", String(64), unique=True, nullable=False, index=True),
    Column("owner", String(64), nullable=False, default="", index=True),
    Column("kind", String(16), nullable=False, default="create"),  # create|remix|extend|edit
    Column("status", String(16), nullable=False, default="queued", index=True),
    Column("progress", Integer, nullable=False, default=0),
    Column("prompt", Text, nullable=False, default=""),
    Column("model", String(128), nullable=False, default=""),
    Column("seconds", String(16), nullable=False, default=""),
    Column("size", String(32), nullable=False, default=""),
    Column("seed", Integer, nullable=False, default=0),
    Column("source_id", String(64), nullable=True),  # remixed/extended/edited video
    Column("input_path", Text, nullable=True),  # uploaded reference image or video (inside data_dir)
    Column("params", Text, nullable=False, default="{}"),
    Column("created_at", Float, nullable=False),
    Column("started_at", Float, nullable=True),
    Column("completed_at", Float, nullable=True),
    Column("expires_at", Float, nullable=True),
    Column("files_expired", Boolean, nullable=False, default=False),
    Column("error_code", String(64), nullable=True),
    Column("error_message", Text, nullable=True),
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_owner", String(128), nullable=True),
    Column("lease_expires", Float, nullable=True),
)

ACTIVE = ("queued", "in_progress")


@dataclass(frozen=True)
class Job:
    seq: int
    id: str
    owner: str
    kind: str
    status: str
    progress: int
    prompt: str
    model: str
    seconds: str
    size: str
    seed: int
    source_id: str | None
    input_path: str | None
    params: dict
    created_at: float
    started_at: float | None
    completed_at: float | None
    expires_at: float | None
    files_expired: bool
    error_code: str | None
    error_message: str | None
    attempts: int
    lease_owner: str | None
    lease_expires: float | None

    @classmethod
    def from_row(cls, row) -> "Job":
        d = dict(row._mapping)
        d["params"] = json.loads(d.get("params") or "{}")
        d["files_expired"] = bool(d.get("files_expired"))
        return cls(**d)


def new_video_id() -> str:
    return "video_" + secrets.token_hex(16)


def _sqlite_pragmas(dbapi_conn, _record) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


class JobStore:
    """All reads and writes of jobs. Safe to use from several processes at once."""

    def __init__(self, url: str, *, lease_seconds: float = 30.0, max_attempts: int = 3):
        self.url = url
        self.lease_seconds = lease_seconds
        self.max_attempts = max_attempts
        self.is_sqlite = url.startswith("sqlite")
        if self.is_sqlite:
            db = make_url(url).database
            if db and db != ":memory:":
                Path(db).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(url, pool_pre_ping=True)
        metadata.create_all(self.engine)

    # ---- creating and reading -------------------------------------------------------------------
    def create(self, *, owner: str, kind: str, prompt: str, model: str, seconds: str, size: str, seed: int,
               source_id: str | None = None, input_path: str | None = None, params: dict | None = None,
               job_id: str | None = None, max_queue: int | None = None) -> Job | None:
        """Insert a queued job; None when ``max_queue`` jobs are already queued or running."""
        job_id = job_id or new_video_id()
        with self.engine.begin() as c:
            if max_queue is not None:
                n = c.execute(select(func.count()).select_from(jobs).where(jobs.c.status.in_(ACTIVE))).scalar_one()
                if n >= max_queue:
                    return None
            c.execute(jobs.insert().values(
                id=job_id, owner=owner, kind=kind, status="queued", progress=0, prompt=prompt, model=model,
                seconds=seconds, size=size, seed=seed, source_id=source_id, input_path=input_path,
                params=json.dumps(params or {}), created_at=time.time(), attempts=0, files_expired=False,
            ))
        return self.get(job_id)

    def get(self, job_id: str, owner: str | None = None) -> Job | None:
        q = select(jobs).where(jobs.c.id == job_id)
        if owner is not None:
            q = q.where(jobs.c.owner == owner)
        with self.engine.connect() as c:
            row = c.execute(q).first()
        return Job.from_row(row) if row else None

    def list(self, owner: str | None, *, after: str | None = None, limit: int = 20, order: str = "desc") -> tuple[list[Job], bool]:
        """One page in creation order; returns (jobs, has_more). ``after`` is the last id of the previous page."""
        q = select(jobs)
        if owner is not None:
            q = q.where(jobs.c.owner == owner)
        with self.engine.connect() as c:
            if after:
                seq = c.execute(select(jobs.c.seq).where(jobs.c.id == after)).scalar()
                if seq is None:
                    return [], False
                q = q.where(jobs.c.seq < seq if order == "desc" else jobs.c.seq > seq)
            q = q.order_by(jobs.c.seq.desc() if order == "desc" else jobs.c.seq.asc()).limit(limit + 1)
            rows = [Job.from_row(r) for r in c.execute(q)]
        return rows[:limit], len(rows) > limit

    def delete(self, job_id: str) -> bool:
        with self.engine.begin() as c:
            return c.execute(jobs.delete().where(jobs.c.id == job_id)).rowcount == 1

    def count(self, status: str | None = None) -> int:
        q = select(func.count()).select_from(jobs)
        if status:
            q = q.where(jobs.c.status == status)
        with self.engine.connect() as c:
            return c.execute(q).scalar_one()

    # ---- the worker side ------------------------------------------------------------------------
    def claim(self, worker: str) -> Job | None:
        """Atomically take the oldest queued job for ``worker``; None when the queue is empty."""
        now = time.time()
        lease = now + self.lease_seconds
        values = dict(status="in_progress", lease_owner=worker, lease_expires=lease, started_at=now,
                      attempts=jobs.c.attempts + 1, progress=0)
        if self.is_sqlite:
            for _ in range(8):
                with self.engine.begin() as c:
                    jid = c.execute(select(jobs.c.id).where(jobs.c.status == "queued")
                                    .order_by(jobs.c.seq).limit(1)).scalar()
                    if jid is None:
                        return None
                    n = c.execute(update(jobs).where(and_(jobs.c.id == jid, jobs.c.status == "queued"))
                                  .values(**values)).rowcount
                if n == 1:
                    return self.get(jid)
            return None
        with self.engine.begin() as c:
            jid = c.execute(self.claim_select()).scalar()
            if jid is None:
                return None
            c.execute(update(jobs).where(jobs.c.id == jid).values(**values))
        return self.get(jid)

    @staticmethod
    def claim_select():
        """The row-locking select workers use on PostgreSQL (several machines, one queue)."""
        return (select(jobs.c.id).where(jobs.c.status == "queued").order_by(jobs.c.seq).limit(1)
                .with_for_update(skip_locked=True))

    def heartbeat(self, job_id: str, worker: str, progress: int | None = None) -> bool:
        """Renew the lease (and record progress); False when the worker no longer holds the job."""
        values: dict = {"lease_expires": time.time() + self.lease_seconds}
        if progress is not None:
            values["progress"] = max(0, min(99, int(progress)))
        with self.engine.begin() as c:
            return c.execute(update(jobs).where(and_(
                jobs.c.id == job_id, jobs.c.lease_owner == worker, jobs.c.status == "in_progress",
            )).values(**values)).rowcount == 1

    def complete(self, job_id: str, worker: str, expire_after: float) -> bool:
        now = time.time()
        with self.engine.begin() as c:
            return c.execute(update(jobs).where(and_(
                jobs.c.id == job_id, jobs.c.lease_owner == worker, jobs.c.status == "in_progress",
            )).values(status="completed", progress=100, completed_at=now, expires_at=now + expire_after,
                      lease_owner=None, lease_expires=None, error_code=None, error_message=None)).rowcount == 1

    def fail(self, job_id: str, worker: str | None, code: str, message: str) -> bool:
        cond = [jobs.c.id == job_id, jobs.c.status.in_(ACTIVE)]
        if worker is not None:
            cond.append(jobs.c.lease_owner == worker)
        with self.engine.begin() as c:
            return c.execute(update(jobs).where(and_(*cond)).values(
                status="failed", completed_at=time.time(), error_code=code, error_message=message[:2000],
                lease_owner=None, lease_expires=None,
            )).rowcount == 1

    def release(self, job_id: str, worker: str) -> bool:
        """Give a job back untouched (a worker shutting down cleanly): it does not count as an attempt."""
        with self.engine.begin() as c:
            return c.execute(update(jobs).where(and_(
                jobs.c.id == job_id, jobs.c.lease_owner == worker, jobs.c.status == "in_progress",
            )).values(status="queued", progress=0, lease_owner=None, lease_expires=None,
                      attempts=jobs.c.attempts - 1)).rowcount == 1

    def expire_worker_leases(self, worker: str) -> int:
        """End the leases of a worker known to be dead, so its job is retried without waiting."""
        with self.engine.begin() as c:
            return c.execute(update(jobs).where(and_(jobs.c.lease_owner == worker, jobs.c.status == "in_progress"))
                             .values(lease_expires=0.0)).rowcount

    def reap(self) -> tuple[int, int]:
        """Requeue jobs whose lease ran out; fail those that used up their attempts. Returns (requeued, failed)."""
        now = time.time()
        lost = and_(jobs.c.status == "in_progress", jobs.c.lease_expires < now)
        with self.engine.begin() as c:
            failed = c.execute(update(jobs).where(and_(lost, jobs.c.attempts >= self.max_attempts)).values(
                status="failed", completed_at=now, error_code="worker_lost",
                error_message=(f"the worker running this job stopped sending heartbeats {self.max_attempts} "
                               "time(s); the job was given up (check the server log for crashes or out-of-memory)"),
                lease_owner=None, lease_expires=None,
            )).rowcount
            requeued = c.execute(update(jobs).where(lost).values(
                status="queued", progress=0, lease_owner=None, lease_expires=None,
            )).rowcount
        return requeued, failed

    # ---- expiry -----------------------------------------------------------------------------------
    def due_for_expiry(self, now: float | None = None) -> list[Job]:
        now = time.time() if now is None else now
        q = select(jobs).where(and_(jobs.c.status == "completed", jobs.c.files_expired == False,  # noqa: E712
                                    jobs.c.expires_at <= now))
        with self.engine.connect() as c:
            return [Job.from_row(r) for r in c.execute(q)]

    def mark_expired(self, job_id: str) -> None:
        with self.engine.begin() as c:
            c.execute(update(jobs).where(jobs.c.id == job_id).values(files_expired=True))

    def queue_position(self, job: Job) -> int:
        with self.engine.connect() as c:
            return c.execute(select(func.count()).select_from(jobs).where(
                and_(jobs.c.status == "queued", jobs.c.seq < job.seq))).scalar_one()

    def dispose(self) -> None:
        self.engine.dispose()


__all__ = ["JobStore", "Job", "jobs", "new_video_id"]
