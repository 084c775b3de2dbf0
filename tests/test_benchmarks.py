"""Each benchmark script runs end to end on a tiny configuration (so the scripts do not rot).

Benchmarks are not tests: nothing here asserts a time. The checks are on what the scripts report:
the right keys, both sides measured, positive timings, shapes that match, and errors for bad input.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parent.parent / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    mod = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(BENCH))
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.path.remove(str(BENCH))
    return mod


def _positive_summary(s: dict) -> None:
    assert s["n"] >= 1 and 0 < s["min"] <= s["median"] <= s["max"]


def test_common_timing_interleaves_and_summarises():
    common = _load("common")
    order = []
    res = common.time_interleaved({"a": lambda: order.append("a"), "b": lambda: order.append("b")}, repeats=3,
                                  warmup=1)
    assert order == ["a", "b", "a", "b", "b", "a", "a", "b"]  # warm-up, then rounds with rotating order
    assert set(res) == {"a", "b"} and res["a"]["wall"]["n"] == 3
    s = common.summary([1.0, 3.0, 2.0])
    assert s["median"] == 2.0 and s["spread"] == 1.0
    assert common.machine_info()["cores"] >= 1


def test_dit_vs_diffusers_tiny(tmp_path):
    pytest.importorskip("diffusers")
    bench = _load("dit_vs_diffusers")
    out = tmp_path / "dit.json"
    r = bench.main(["--width", "32", "--depth", "1", "--heads", "2", "--text-dim", "32", "--text-len", "4",
                    "--batch", "2", "--latent", "4x2x4x4", "--repeats", "1", "--warmup", "0", "--threads", "1",
                    "--profile", "--json", str(out)])
    assert json.loads(out.read_text())["config"]["tokens_per_sample"] == 8
    for mode in ("train", "infer"):
        for side in ("tenku", "diffusers"):
            _positive_summary(r[mode][side]["wall"])
    assert r["train"]["tenku"]["tokens_per_s"] > 0
    _positive_summary(r["infer"]["tenku_text_cached"]["wall"])  # the pipeline's way: text context reused
    prof = r["profile_train"]["tenku"]
    assert prof and all(isinstance(op, str) and 0 <= share <= 100 for op, share in prof)
    assert r["train_speedup"]["tenku_vs_diffusers"]["wall"] > 0
    assert r["params"]["tenku"] > 0 and r["params"]["diffusers"] > 0
    # at the benchmark's default size the two models are of equal size: parameters within 10%
    tenku, wan = bench.build_models(256, 6, 4, 256, 16)
    n_t, n_w = (sum(p.numel() for p in m.parameters()) for m in (tenku, wan))
    assert abs(n_t - n_w) / n_w < 0.1
    with pytest.raises(SystemExit):
        bench.main(["--latent", "4x4x4"])


def test_dit_vs_diffusers_baseline_commit():
    """``--baseline-commit``: the DiT source of another revision, timed beside the current one with the same
    weights. HEAD's DiT (committed code) gives outputs close to the working tree's."""
    pytest.importorskip("diffusers")
    import torch

    bench = _load("dit_vs_diffusers")
    r = bench.main(["--width", "32", "--depth", "1", "--heads", "2", "--text-dim", "32", "--text-len", "4",
                    "--batch", "2", "--latent", "4x2x4x4", "--repeats", "1", "--warmup", "0", "--threads", "1",
                    "--mode", "infer", "--baseline-commit", "HEAD", "--padded-text"])
    assert r["baseline_commit"] == "HEAD" and r["params"]["tenku_baseline"] == r["params"]["tenku"]
    assert r["config"]["padded_text"]
    mask = bench.make_inputs(4, (4, 2, 4, 4), 8, 32, 0, padded_text=True)[4]
    assert mask.sum(1).tolist() == [8, 2, 8, 2]
    _positive_summary(r["infer"]["tenku_baseline"]["cpu"])
    assert r["infer_vs_baseline"]["tenku_vs_tenku_baseline"]["cpu"] > 0
    tenku, _ = bench.build_models(32, 1, 2, 32, 4)
    base = bench.load_baseline_dit("HEAD", tenku)
    x, _, t, text, mask = bench.make_inputs(2, (4, 2, 4, 4), 4, 32, 0)
    with torch.no_grad():
        a, b = bench.tenku_call(tenku)(x, t, text, mask), bench.tenku_call(base)(x, t, text, mask)
    assert float((a - b).abs().max()) <= 1e-5 and float(a.abs().max()) > 1e-3
    with pytest.raises(SystemExit, match="cannot read"):
        bench.load_baseline_dit("no-such-revision", tenku)
    tiny = ["--width", "32", "--depth", "1", "--heads", "2", "--text-dim", "32", "--text-len", "4", "--batch", "2",
            "--latent", "4x2x4x4", "--repeats", "1", "--warmup", "0", "--threads", "1", "--mode", "train"]
    r = bench.main(tiny + ["--baseline-commit", "HEAD", "--sides", "tenku_baseline"])  # only these sides are timed
    assert set(r["train"]) == {"diffusers", "tenku_baseline"}
    with pytest.raises(SystemExit, match="unknown"):
        bench.main(tiny + ["--sides", "tenku_compiled"])  # not added without --compile


def test_dit_vs_diffusers_wan_pipeline_text():
    """``--wan-pipeline-text N``: Wan fed as WanPipeline feeds it (each prompt's real embeddings, then zeros up to N
    tokens, no mask) beside the equal-token Wan side and tenku at the real prompt length."""
    pytest.importorskip("diffusers")
    import torch

    bench = _load("dit_vs_diffusers")
    text = torch.arange(2 * 4 * 3, dtype=torch.float32).reshape(2, 4, 3) + 1
    mask = torch.tensor([[True, True, True, True], [True, False, False, False]])
    padded = bench.pad_text_as_wan_pipeline(text, mask, 6)
    assert padded.shape == (2, 6, 3)
    assert torch.equal(padded[0, :4], text[0]) and not padded[0, 4:].any()
    assert torch.equal(padded[1, :1], text[1, :1]) and not padded[1, 1:].any()  # padding zeroed, not kept
    tiny = ["--width", "32", "--depth", "1", "--heads", "2", "--text-dim", "32", "--text-len", "4", "--batch", "2",
            "--latent", "4x2x4x4", "--repeats", "1", "--warmup", "0", "--threads", "1"]
    r = bench.main(tiny + ["--wan-pipeline-text", "16", "--padded-text"])
    assert r["config"]["wan_pipeline_text_len"] == 16 and r["config"]["text_len"] == 4
    for mode in ("train", "infer"):
        assert {"tenku", "diffusers", "diffusers_pipeline_text"} <= set(r[mode])
        _positive_summary(r[mode]["diffusers_pipeline_text"]["cpu"])
        assert r[f"{mode}_speedup_vs_pipeline_text"]["tenku_vs_diffusers_pipeline_text"]["cpu"] > 0
        assert "tenku_vs_diffusers" in r[f"{mode}_speedup"]  # the equal-token comparison stays
    assert "tenku_text_cached_vs_diffusers_pipeline_text" in r["infer_speedup_vs_pipeline_text"]
    # the padded side really gets N text tokens: Wan's output changes when zeros are appended
    _, wan = bench.build_models(32, 1, 2, 32, 4)
    x, _, t, text, mask = bench.make_inputs(1, (4, 2, 4, 4), 4, 32, 0)
    with torch.no_grad():
        a, b = bench.wan_call(wan)(x, t, text, mask), bench.wan_call(wan, 16)(x, t, text, mask)
    assert float((a - b).abs().max()) > 1e-6
    with pytest.raises(SystemExit, match="shorter"):
        bench.main(tiny + ["--wan-pipeline-text", "2"])


def test_vae_vs_diffusers_tiny():
    pytest.importorskip("diffusers")
    bench = _load("vae_vs_diffusers")
    r = bench.main(["--base", "4", "--frames", "5", "--size", "16", "--repeats", "1", "--warmup", "0",
                    "--threads", "1", "--no-memory", "--channels-last"])
    assert r["output_shape"]["tenku"] == r["output_shape"]["diffusers"] == [1, 3, 5, 16, 16]
    for side in ("tenku", "diffusers", "tenku_channels_last"):
        assert r["ms_per_frame"][side]["wall"] > 0
    mem = bench.memory_child("tenku", 4, 5, 16, 1, 0)  # what each memory child process reports
    assert mem["output_shape"] == [1, 3, 5, 16, 16] and mem["peak_mb"] >= mem["held_mb"] > 0


def test_generate_e2e_tiny(tmp_path):
    from tenku.testing import make_tiny_pipeline

    bench = _load("generate_e2e")
    model = make_tiny_pipeline(tmp_path / "m")
    r = bench.main(["--model", str(model), "--seconds", "1", "--repeats", "1", "--warmup", "0", "--no-cli",
                    "--threads", "1"])
    run = r["run"]
    assert run["num_frames"] == 9 and run["size"] == [32, 32]
    for stage in ("text", "denoise", "decode", "encode"):
        assert run["stages"][stage]["median"] > 0
    total = run["stages"]["total"]["median"]
    parts = sum(run["stages"][s]["median"] for s in bench.STAGES)
    assert abs(total - parts) < 1e-9 and run["realtime_factor"] > 0
    r = bench.main(["--model", str(model), "--seconds", "1", "--repeats", "1", "--warmup", "0", "--threads", "1",
                    "--text-cache-ablation"])
    ab = r["text_cache_ablation"]
    assert ab["max_abs_diff"] == 0.0 and ab["speedup"]["wall"] > 0 and ab["text_tokens"] > 0


def test_generate_e2e_cli_reports_failure(tmp_path):
    bench = _load("generate_e2e")

    class Args:  # a model folder that does not exist: the child command fails and says so
        prompt, seed, steps, threads = "a red ball", 0, None, 1

    res = bench.cli_run(tmp_path / "missing", 1.0, Args)
    assert res["rc"] == 2 and "not found" in res["stderr"]


def test_quality_vs_steps_tiny(tmp_path):
    pytest.importorskip("scipy")
    from tenku.testing import make_tiny_pipeline

    bench = _load("quality_vs_steps")
    model = make_tiny_pipeline(tmp_path / "m")
    r = bench.main(["--model", str(model), "--suite", "smoke", "--steps", "2", "1", "--clips", "1",
                    "--out", str(tmp_path / "q"), "--threads", "1"])
    assert [row["steps"] for row in r["rows"]] == [1, 2]
    assert (tmp_path / "q" / "steps_1" / "report.json").exists()
    assert all(row["clips"] >= 1 and row["seconds"] > 0 and row["seed"] == 0 for row in r["rows"])
    assert r["sampling"]["sampler"] and r["sampling"]["shift"] >= 1.0 and r["sampling"]["frames"] == 17
    assert set(r["per_steps"]) == {1, 2} and set(r["adherence_gap_to_most_steps"]) == {1, 2}


def test_quality_vs_steps_headline_and_seed_summary():
    """The numbers taken from an eval report, and the per-step-count summary over seeds."""
    bench = _load("quality_vs_steps")
    acc = {"color": {"accuracy": 0.5, "clips": 4}, "count": {"accuracy": 0.0, "clips": 2}}
    report = {"metrics": {"adherence": {"in_distribution": acc, "held_out": {"color": {"accuracy": 1.0, "clips": 2}}},
                          "physics": {"in_distribution": {"position": {"error": 45.3, "ratio": 1130.0},
                                                          "found_fraction": 0.0},
                                      "out_of_distribution": {"found_fraction": 0.25}},
                          "permanence": {"count_accuracy": 0.1}},
              "clips": [{}, {}, {}]}
    h = bench.headline(report)
    assert h["adherence_mean"] == 25.0 and h["adherence"] == {"color": 50.0, "count": 0.0}
    assert h["adherence_right_answers"] == "4/8" and h["adherence_all_splits_mean"] == 50.0
    assert h["position_error"] == 45.3 and h["found_fraction"] == 0.0 and h["found_fraction_ood"] == 0.25
    assert h["clips"] == 3
    rows = [{"steps": 8, "seed": 0, "adherence_mean": 10.0, "seconds": 2.0, "adherence": {"count": 10.0}},
            {"steps": 8, "seed": 1, "adherence_mean": 4.0, "seconds": 4.0, "adherence": {"count": 4.0}},
            {"steps": 50, "seed": 0, "adherence_mean": 1.0, "seconds": 9.0}]
    s = bench.summarize_seeds(rows)
    assert s[8]["seeds"] == [0, 1] and s[8]["adherence_mean"] == {"mean": 7.0, "min": 4.0, "max": 10.0}
    assert s[8]["seconds"]["mean"] == 3.0 and s[8]["count_adherence"]["max"] == 10.0
    assert s[50]["adherence_mean"]["mean"] == 1.0 and "count_adherence" not in s[50]


def test_quality_vs_steps_without_model_exits_2(tmp_path):
    p = subprocess.run([sys.executable, str(BENCH / "quality_vs_steps.py"), "--model", str(tmp_path / "none"),
                        "--out", str(tmp_path / "q")], capture_output=True, text=True)
    assert p.returncode == 2 and "no model" in p.stderr


def test_seam_continuity_tiny(tmp_path):
    from tenku.testing import make_tiny_pipeline

    bench = _load("seam_continuity")
    model = make_tiny_pipeline(tmp_path / "tiny")
    r = bench.main(["--model", str(model), "--clips", "1", "--kinds", "forward", "connect", "--threads", "1",
                    "--json", str(tmp_path / "r.json")])
    assert set(r["summary"]) == {"forward", "connect"} and (tmp_path / "r.json").exists()
    fw = r["summary"]["forward"]
    assert fw["matched"]["seams"] == fw["plain"]["seams"] >= 2 and r["summary"]["connect"]["plain"]["seams"] == 2
    assert fw["plain"]["passed"] < fw["plain"]["seams"]  # the random VAE's round trip jumps when unmatched
    with pytest.raises(SystemExit, match="model folder not found"):
        bench.main(["--model", str(tmp_path / "missing")])
