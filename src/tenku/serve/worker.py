"""Worker processes: each loads the pipeline once, then claims jobs from the store, runs them with a lease
kept alive by a heartbeat thread, and writes the video and its previews under the data folder.

Run by ``tenku serve`` as ``python -m tenku.serve.worker`` with the server settings in the
``TENKU_SERVE_CONFIG`` environment variable (JSON of :class:`tenku.serve.settings.ServeConfig`, read by
:func:`tenku.serve.settings.worker_config`). Every output goes through the marked writer
(:func:`tenku.pipeline.output.save_output`): watermark and C2PA manifest, or no file at all.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
import signal
import socket
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Callable

import numpy as np

from tenku.errors import TenkuError
from tenku.pipeline.output import save_output
from tenku.media import cover_frames
from tenku.serve.errors import JobError, UnsupportedModeError
from tenku.serve.files import job_dir, remove_job_files, variant_path, write_previews
from tenku.serve.modes import CONDITIONED_MODES, run_mode
from tenku.serve.settings import (Capabilities, ServeConfig, capabilities, parse_size, resolve_model, serve_safety,
                                  worker_config, worker_device)
from tenku.serve.store import Job, JobStore


def load_pipeline(model: str, device: str | None = None, safety=None, options=None):
    """The generator a worker runs (tenku's or a diffusers folder's backend), loaded once per worker process,
    with the server's safety policy and memory options."""
    from tenku.pipeline.loading import load_pipeline as load

    return load(model, device=device or worker_device(), safety=safety or serve_safety(), options=options)


def _step_fraction(*args, **kwargs) -> float | None:
    """Read (step + 1) / steps from a sampler callback's dict (k-diffusion style) or positional ints."""
    info = args[0] if args and isinstance(args[0], dict) else kwargs
    i = next((info[k] for k in ("i", "step", "step_index") if k in info), None)
    n = next((info[k] for k in ("num_steps", "steps", "total") if k in info), None)
    if i is None and len(args) >= 2 and all(isinstance(a, int) for a in args[:2]):
        i, n = args[0], args[1]
    if i is None or not n:
        return None
    return min(1.0, (int(i) + 1) / int(n))


def _conditioned_generation(job: Job, pipeline, **gen_kwargs):
    """The one place every mode other than plain text-to-video goes through: image-to-video, extend and
    edit run the pipeline's typed modes (:func:`tenku.serve.modes.run_mode`)."""
    mode = job.params.get("mode", job.kind)
    if mode not in CONDITIONED_MODES:
        raise UnsupportedModeError(mode)
    return run_mode(pipeline, mode=mode, source=job.params.get("source_path"), image=job.input_path, **gen_kwargs)


def run_job(job: Job, pipeline, *, caps: Capabilities, data_dir: str | Path,
            on_progress: Callable[[int], None] | None = None, num_steps: int = 0) -> dict[str, Path]:
    """Generate one job's video and previews; returns {variant: path}. Raises JobError with a reason code.

    The model generates at ``caps.generation_size(job.size)``; frames are then scaled to the asked size."""
    width, height = parse_size(job.size)
    gen_w, gen_h = caps.generation_size(job.size)
    seconds = float(job.params.get("segment_seconds", job.seconds))  # extend: the new segment, not the total
    kwargs = dict(height=gen_h, width=gen_w, fps=caps.fps, seed=job.seed, progress=False)
    if num_steps:
        kwargs["num_steps"] = num_steps

    def callback(*args, **kw):
        frac = _step_fraction(*args, **kw)
        if frac is not None and on_progress is not None:
            on_progress(int(5 + 85 * frac))  # may raise JobGone: the job was deleted; stop generating

    if on_progress is not None:
        on_progress(1)
    plain = job.kind in ("create", "remix") and not job.input_path
    if plain:  # remix = same seed and size, new prompt: the layout of the source, the content of the prompt
        output = pipeline(job.prompt, seconds=seconds, callback=callback, **kwargs)
    else:  # the segment's frames: the model's nearest valid length (extend: the new frames after the source)
        frames_n = pipeline.geometry.frames_for_seconds(seconds, caps.fps)
        output = _conditioned_generation(job, pipeline, prompt=job.prompt, callback=callback, num_frames=frames_n,
                                         **kwargs)
    frames = np.asarray(output.frames)
    if frames.ndim != 4 or frames.dtype != np.uint8:
        raise JobError("generation_error", f"the generator returned frames of shape {frames.shape} {frames.dtype}")
    if frames.shape[1:3] != (height, width):  # the size policy: generated near the model's size, scaled to the ask
        frames = cover_frames(frames, width, height, "bicubic")
        output = dataclasses.replace(output, frames=frames)
    if on_progress is not None:
        on_progress(92)
    out_dir = job_dir(data_dir, job.id)
    out_dir.mkdir(parents=True, exist_ok=True)
    video = variant_path(data_dir, job.id, "video")
    save_output(output, video)
    paths = {"video": video, **write_previews(frames, out_dir)}
    if on_progress is not None:
        on_progress(99)
    return paths


class _Stop(BaseException):
    """Raised in the worker's main thread by SIGTERM/SIGINT."""


class JobGone(Exception):
    """The job was deleted (or its lease taken) while it ran: stop and leave no files."""


_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[/\\][^\s/\\:'\"<>|]+){2,}")


def public_message(message: str) -> str:
    """A job's error message as a client sees it: no server paths (they are in the worker's log)."""
    return _PATH.sub("<file>", message)


class _Heartbeat(threading.Thread):
    def __init__(self, store: JobStore, job_id: str, worker: str, interval: float):
        super().__init__(daemon=True)
        self.store, self.job_id, self.worker, self.interval = store, job_id, worker, interval
        self.progress = 0
        self._sent = -1
        self.lost = False
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.interval):
            try:
                p = self.progress
                if not self.store.heartbeat(self.job_id, self.worker, p if p != self._sent else None):
                    self.lost = True
                    return
                self._sent = p
            except Exception as e:  # a busy database must not kill the job; the next beat tries again
                print(f"[{self.worker}] heartbeat failed: {e}", file=sys.stderr, flush=True)

    def stop(self) -> None:
        self._done.set()
        self.join(timeout=5)


def process_one(store: JobStore, pipeline, cfg: ServeConfig, caps: Capabilities, worker: str) -> bool:
    """Claim and run one job; False when the queue was empty."""
    job = store.claim(worker)
    if job is None:
        return False
    beat = _Heartbeat(store, job.id, worker, interval=max(0.2, min(0.5, cfg.lease_seconds / 4)))  # progress moves
    beat.start()

    def on_progress(p: int) -> None:
        if beat.lost:
            raise JobGone(job.id)
        beat.progress = p

    def gone() -> bool:
        """Deleted while it ran (or its lease went to another worker): its files, if any, are removed."""
        if beat.lost or store.get(job.id) is None:
            if store.get(job.id) is None:
                remove_job_files(cfg.data_dir, job.id)
            print(f"[{worker}] job {job.id} was deleted or taken over while it ran; stopped", file=sys.stderr,
                  flush=True)
            return True
        return False

    try:
        run_job(job, pipeline, caps=caps, data_dir=cfg.data_dir, on_progress=on_progress, num_steps=cfg.num_steps)
    except _Stop:
        beat.stop()
        store.release(job.id, worker)
        raise
    except JobGone:
        beat.stop()
        gone()
        return True
    except JobError as e:
        beat.stop()
        store.fail(job.id, worker, e.code, public_message(e.message))
        return True
    except TenkuError as e:  # bad input the generator refused (moderation of outputs, a source it cannot read)
        beat.stop()
        if gone():
            return True
        code = "moderation_blocked" if getattr(e, "category", None) else "invalid_input"
        print(f"[{worker}] job {job.id} failed ({code}): {e}", file=sys.stderr, flush=True)
        store.fail(job.id, worker, code, public_message(str(e)))
        return True
    except Exception as e:
        beat.stop()
        if gone():  # e.g. FileNotFoundError: its folder was removed under it
            return True
        traceback.print_exc()
        store.fail(job.id, worker, "generation_error",
                   public_message(f"generation failed: {type(e).__name__}: {e}"))
        return True
    beat.stop()
    if not store.complete(job.id, worker, cfg.expire_after):
        gone()
    return True


def worker_name(pid: int) -> str:
    """The lease owner a worker process writes: ``host:pid`` (an operator can find the process from it)."""
    return f"{socket.gethostname()}:{pid}"


def _set_threads(cfg: ServeConfig) -> None:
    """Share the CPU cores among the workers (oversubscribed torch threads are many times slower)."""
    import torch

    n = cfg.threads or max(1, (os.cpu_count() or 1) // max(1, cfg.workers))
    torch.set_num_threads(n)


def _die_with_parent() -> int:
    """Ask Linux to send SIGTERM when the parent (``tenku serve``) dies; return the parent's pid.

    Elsewhere the main loop's parent check below does the same, a little later."""
    parent = os.getppid()
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    return parent


def worker_main(cfg: ServeConfig, name: str) -> int:
    def stop(signum, frame):
        # once: a second SIGTERM (the server's process-group stop, or the parent-death signal) must not interrupt
        # the shutdown that the first one started, e.g. inside an exit handler
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        raise _Stop()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    parent = _die_with_parent()
    store = JobStore(cfg.resolved_db_url(), lease_seconds=cfg.lease_seconds, max_attempts=cfg.max_attempts)
    try:
        caps = capabilities(cfg)
        _set_threads(cfg)
        pipeline = load_pipeline(resolve_model(cfg), options=cfg.model_options())
        print(f"[{name}] ready (model {caps.model_name})", file=sys.stderr, flush=True)
        idle = 0.02
        last_reap = 0.0
        while True:
            if os.getppid() != parent:  # orphaned: the server is gone; leave the queue to the next one
                print(f"[{name}] server process is gone; stopping", file=sys.stderr, flush=True)
                return 0
            if time.monotonic() - last_reap > min(1.0, cfg.lease_seconds / 2):
                store.reap()
                last_reap = time.monotonic()
            if process_one(store, pipeline, cfg, caps, name):
                idle = 0.02
            else:
                time.sleep(idle)
                idle = min(0.25, idle * 2)
    except _Stop:
        return 0
    finally:
        store.dispose()


def main(argv: list[str] | None = None) -> int:
    argparse.ArgumentParser(prog="python -m tenku.serve.worker", description=__doc__).parse_args(argv)
    cfg = worker_config()
    if cfg is None:
        print("error: TENKU_SERVE_CONFIG is not set; workers are started by `tenku serve`", file=sys.stderr)
        return 2
    return worker_main(cfg, worker_name(os.getpid()))


if __name__ == "__main__":
    sys.exit(main())
