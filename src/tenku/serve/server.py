"""``tenku serve``: the API process (uvicorn) plus N worker subprocesses under a small supervisor.

A worker that exits or is killed is started again; the leases it held end at once, so its job goes back
to the queue (and counts as one attempt). On shutdown the workers get SIGTERM and hand their jobs back.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from tenku.errors import TenkuError
from tenku.serve.settings import ServeConfig, capabilities
from tenku.serve.store import JobStore
from tenku.serve.worker import worker_name


class WorkerPool:
    """Starts ``cfg.workers`` worker processes and restarts any that die."""

    def __init__(self, cfg: ServeConfig, store: JobStore):
        self.cfg, self.store = cfg, store
        self.procs: dict[int, subprocess.Popen] = {}
        self.names: dict[int, str] = {}
        self._stop = threading.Event()
        self._restarts = 0
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def _spawn(self, slot: int) -> None:
        env = dict(os.environ, TENKU_SERVE_CONFIG=self.cfg.to_json(), PYTHONUNBUFFERED="1")
        proc = subprocess.Popen([sys.executable, "-m", "tenku.serve.worker"], env=env)
        self.procs[slot] = proc
        self.names[slot] = worker_name(proc.pid)  # the lease owner the worker writes

    def start(self) -> None:
        for slot in range(self.cfg.workers):
            self._spawn(slot)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            for slot, proc in list(self.procs.items()):
                if proc.poll() is None or self._stop.is_set():
                    continue
                print(f"worker {self.names[slot]} (pid {proc.pid}) exited with {proc.returncode}; restarting",
                      file=sys.stderr, flush=True)
                try:
                    self.store.expire_worker_leases(self.names[slot])
                except Exception as e:
                    print(f"could not end the leases of {self.names[slot]}: {e}", file=sys.stderr, flush=True)
                self._restarts += 1
                self._spawn(slot)

    def stop(self, timeout: float = 15.0) -> None:
        self._stop.set()
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def header_deadline_protocol(seconds: float):
    """uvicorn's h11 protocol with a deadline for a request's headers: uvicorn itself waits for ever on a
    client that sends its headers a byte at a time, so a few hundred such connections (slowloris) would hold
    the server. The body has its own deadline (:class:`tenku.serve.body.BodyReader`)."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class HeaderDeadline(H11Protocol):
        _deadline = None

        def _arm(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(seconds, self._late)

        def _disarm(self) -> None:
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _late(self) -> None:
            self._deadline = None
            waiting = self.cycle is None or self.cycle.response_complete  # no request whose headers are in
            if waiting and not self.transport.is_closing():
                self.transport.close()

        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc) -> None:
            self._disarm()
            super().connection_lost(exc)

    return HeaderDeadline


def prepare(cfg: ServeConfig) -> ServeConfig:
    """Absolute data folder, checked model and settings; raises TenkuError with what to fix."""
    data_dir = Path(cfg.data_dir).expanduser().resolve()
    try:
        (data_dir / "videos").mkdir(parents=True, exist_ok=True)
        (data_dir / "uploads").mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise TenkuError(f"cannot create the data folder {data_dir}: {e}; pass a writable --data-dir") from None
    if cfg.workers < 0:
        raise TenkuError("--workers must be 0 or more (0: only the API; run workers elsewhere)")
    if cfg.lease_seconds <= 0 or cfg.max_attempts < 1 or cfg.max_queue < 1 or cfg.expire_after <= 0:
        raise TenkuError("--lease-seconds and --expire-after must be positive; --max-attempts and --max-queue >= 1")
    if cfg.body_timeout <= 0 or cfg.max_concurrent_uploads < 1:
        raise TenkuError("--body-timeout must be positive and --max-concurrent-uploads at least 1")
    if cfg.host in ("0.0.0.0", "::") and not cfg.allowed_hosts:
        print("tenku serve: listening on all addresses, but only the localhost names are served; pass "
              "--allowed-host NAME (the name clients use) to serve others", file=sys.stderr, flush=True)
    model = cfg.model
    if model:
        model = str(Path(model).expanduser().resolve())
    cfg = dataclasses.replace(cfg, data_dir=str(data_dir), model=model)
    capabilities(cfg)  # fails early on a bad model folder or bad --sizes/--seconds
    return cfg


def run(cfg: ServeConfig) -> int:
    import uvicorn

    from tenku.serve.app import create_app

    cfg = prepare(cfg)
    try:
        store = JobStore(cfg.resolved_db_url(), lease_seconds=cfg.lease_seconds, max_attempts=cfg.max_attempts)
    except Exception as e:
        raise TenkuError(f"cannot open the job database {cfg.resolved_db_url()!r}: {e}") from None
    app = create_app(cfg, store=store)
    pool = WorkerPool(cfg, store)
    pool.start()
    caps = app.state.caps
    print(f"tenku serve: http://{cfg.host}:{cfg.port}/  model {caps.model_name}, sizes {', '.join(caps.sizes)}, "
          f"seconds {', '.join(caps.seconds)}, {cfg.workers} worker(s), db {store.url.split('://')[0]}",
          file=sys.stderr, flush=True)
    try:
        # X-Forwarded-For is read by the app only from --trusted-proxy addresses, never by uvicorn on its own
        uvicorn.run(app, host=cfg.host, port=cfg.port, log_level="warning", access_log=False, proxy_headers=False,
                    http=header_deadline_protocol(cfg.body_timeout), server_header=False,
                    h11_max_incomplete_event_size=64 * 1024)
    finally:
        pool.stop()
        store.dispose()
    return 0
