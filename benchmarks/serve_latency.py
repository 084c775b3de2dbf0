"""Status-poll latency of `tenku serve` while its workers are busy.

Starts `tenku serve` (a real subprocess on 127.0.0.1) with a tiny random pipeline, keeps the queue full
so every worker is generating, and has several clients poll `GET /v1/videos/{id}` (the call the openai
SDK's poll helper makes) for a fixed time. Reports p50/p95/p99 latency, polls per second, and how many
workers were busy during the measurement.

    python benchmarks/serve_latency.py --workers 2 --pollers 8 --seconds 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    k = max(0, min(len(xs) - 1, round(q / 100 * (len(xs) - 1))))
    return xs[k]


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--pollers", type=int, default=8, help="concurrent polling clients")
    p.add_argument("--seconds", type=float, default=20.0, help="measurement time")
    p.add_argument("--queue", type=int, default=60, help="jobs kept queued so workers never idle")
    p.add_argument("--steps", type=int, default=8, help="sampler steps per job")
    args = p.parse_args(argv)

    import httpx

    from tenku.serve.launch import ServerProcess
    from tenku.testing import make_tiny_pipeline

    with tempfile.TemporaryDirectory(ignore_cleanup_errors=True) as tmp:
        model = str(make_tiny_pipeline(Path(tmp) / "model"))
        srv = ServerProcess(model=model, data_dir=Path(tmp) / "data", workers=args.workers,
                            args=["--rate-limit", "0", "--steps", str(args.steps), "--seconds", "1",
                                  "--threads", str(args.threads), "--max-queue", "100000"])
        with srv, httpx.Client(base_url=srv.url, timeout=30) as http:
            ids = [http.post("/v1/videos", json={"prompt": f"a red ball {i}", "seconds": "1"}).json()["id"]
                   for i in range(args.queue)]
            time.sleep(1.0)
            lat: list[float] = []
            busy: list[int] = []
            stop = time.monotonic() + args.seconds
            lock = threading.Lock()

            def poller(k: int) -> None:
                with httpx.Client(base_url=srv.url, timeout=30) as c:
                    i = k
                    while time.monotonic() < stop:
                        t0 = time.perf_counter()
                        r = c.get(f"/v1/videos/{ids[i % len(ids)]}")
                        dt = time.perf_counter() - t0
                        r.raise_for_status()
                        with lock:
                            lat.append(dt)
                        i += 1

            def refill() -> None:  # keep the queue full and sample how many workers are busy
                with httpx.Client(base_url=srv.url, timeout=30) as c:
                    n = 0
                    while time.monotonic() < stop:
                        h = c.get("/healthz").json()
                        busy.append(h["in_progress"])
                        if h["queued"] < args.queue // 2:
                            for _ in range(args.queue // 2):
                                c.post("/v1/videos", json={"prompt": f"refill {n}", "seconds": "1"})
                                n += 1
                        time.sleep(0.5)

            load0 = os.getloadavg()[0]
            threads = [threading.Thread(target=poller, args=(k,)) for k in range(args.pollers)]
            threads.append(threading.Thread(target=refill))
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            load1 = os.getloadavg()[0]
            done = http.get("/healthz").json()
            print(srv.log_tail(2000))
    ms = [x * 1000 for x in lat]
    result = {
        "workers": args.workers, "pollers": args.pollers, "seconds": args.seconds, "polls": len(ms),
        "polls_per_s": round(len(ms) / args.seconds, 1),
        "p50_ms": round(percentile(ms, 50), 2), "p95_ms": round(percentile(ms, 95), 2),
        "p99_ms": round(percentile(ms, 99), 2), "mean_ms": round(statistics.mean(ms), 2),
        "busy_workers_mean": round(statistics.mean(busy), 2) if busy else 0.0,
        "load_avg_before": round(load0, 2), "load_avg_after": round(load1, 2), "final_queue": done,
        "cpus": os.cpu_count(),
    }
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
