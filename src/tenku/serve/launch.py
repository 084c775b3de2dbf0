"""Start ``tenku serve`` as a real subprocess on a free local port (for tests, benchmarks and scripts)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from tenku.errors import TenkuError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ServerProcess:
    """``with ServerProcess(model=..., data_dir=...) as srv: srv.url``; extra CLI flags as ``args``."""

    def __init__(self, *, model: str, data_dir: str | Path, workers: int = 1, args: list[str] | None = None,
                 port: int | None = None, env: dict | None = None, log_path: str | Path | None = None):
        self.model, self.data_dir, self.workers = model, Path(data_dir), workers
        self.args = list(args or [])
        self.port = port or free_port()
        self.env = env
        self.log_path = Path(log_path) if log_path else self.data_dir / "server.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120.0) -> "ServerProcess":
        """Start the server and wait until it answers and all its workers have loaded the model."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "tenku", "serve", "--host", "127.0.0.1", "--port", str(self.port),
               "--model", self.model, "--data-dir", str(self.data_dir), "--workers", str(self.workers), *self.args]
        env = dict(os.environ, **(self.env or {}))
        self._log = open(self.log_path, "ab")
        self._log_start = len(self.log_tail(1 << 20))
        self.proc = subprocess.Popen(cmd, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise TenkuError(f"tenku serve exited with {self.proc.returncode}:\n{self.log_tail()}")
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=1) as r:
                    answered = r.status == 200
            except urllib.error.HTTPError as e:  # 401: /healthz is behind the API key when keys are set
                answered = e.code == 401
            except OSError:
                answered = False
            if answered and self._workers_ready():
                return self
            time.sleep(0.1)
        self.kill()
        raise TenkuError(f"tenku serve did not answer within {timeout} s:\n{self.log_tail()}")

    def _workers_ready(self) -> bool:
        """Every worker has loaded the model (each prints one "ready" line per start)."""
        log = self.log_tail(1 << 20)[self._log_start:]
        return log.count("] ready (") >= self.workers

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-n:]
        except OSError:
            return ""

    def stop(self, timeout: float = 30.0) -> int | None:
        """SIGTERM: the server stops its workers (they hand their jobs back) and exits."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return self.proc.returncode
        try:  # anything left in the server's own process group (a worker it could not stop) goes too
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        return rc

    def kill(self) -> None:
        """SIGKILL the server and its workers at once (a crash: no clean hand-back)."""
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()

    def __enter__(self) -> "ServerProcess":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
        if getattr(self, "_log", None):
            self._log.close()
