"""benchmarks/diffusers_backend.py runs end to end with --tiny on a CPU (so the GPU script does not rot)."""

import importlib.util
import sys
from pathlib import Path

import pytest

pytest.importorskip("diffusers")
BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def test_diffusers_backend_benchmark_tiny(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("bench_diffusers_backend", BENCH / "diffusers_backend.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    sys.path.remove(str(BENCH)) if str(BENCH) in sys.path else None
    # compile is left out here: inductor compiles the tiny model for about a minute on 2 CPU cores
    out = mod.main(["--tiny", "--threads", "1", "--skip", "compile", "--json", str(tmp_path / "r.json")])
    runs = out["runs"]
    assert set(runs) == {"direct", "tenku", "tenku+cache-first-block", "tenku+cache-taylorseer", "tenku+marked-mp4"}
    for r in runs.values():
        assert r["steps"] == 2 and r["seconds"] > 0 and r["s_per_step"] > 0
    assert runs["tenku"]["max_abs_diff_vs_direct"] == 0  # the backend adds nothing to the frames
    assert (tmp_path / "r.json").is_file() and out["frames"] == 9
