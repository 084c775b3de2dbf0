"""Report files, the ground-truth ceiling, the extension hook and `tenku eval` end to end on a tiny model."""

import json
import subprocess
import sys

import numpy as np
import pytest

from tenku.errors import TenkuError
from tenku.eval.runner import evaluate


def _check_files(out):
    from PIL import Image

    report = json.loads((out / "report.json").read_text())
    for name in ("contact_sheet.png", "trajectories.png"):
        with Image.open(out / name) as im:
            im.load()
            assert im.size[0] > 100 and im.size[1] > 100
    md = (out / "report.md").read_text()
    assert "| --- |" in md and "contact_sheet.png" in md
    assert not list(out.glob("*.part"))
    return report, md


def test_ground_truth_is_the_ceiling(tmp_path):
    report = evaluate("smoke", tmp_path, ground_truth=True, progress=False)
    saved, md = _check_files(tmp_path)
    assert saved == json.loads(json.dumps(report))
    assert saved["suite"]["name"] == "smoke" and saved["suite"]["version"] == 1
    assert saved["model"]["name"] == "ground-truth" and saved["code_version"]["tenku"]
    m = saved["metrics"]
    for group in m["adherence"].values():
        assert all(v["accuracy"] == 1.0 for v in group.values())
    for split in m["physics"].values():
        for q in ("position", "velocity", "acceleration", "momentum", "energy"):
            if q in split:
                assert split[q]["error"] == split[q]["floor"] and split[q]["ratio"] <= 1.0
        assert split["found_fraction"] == 1.0
    p = m["permanence"]
    assert p["count_accuracy"] == 1.0 and p["appearances_per_clip"] == 0 and p["disappearances_per_clip"] == 0
    assert p["reemergence_rate"] == 1.0
    q = m["quality"]
    assert q["reconstruction_psnr"] == 100.0  # the metric's cap for identical frames, a constant
    assert q["reconstruction_ssim"] == pytest.approx(1.0, abs=1e-6)
    assert q["flicker"] == q["flicker_ground_truth"]
    assert "Physics by extension" in md and "Prompt adherence" in md


def test_extension_hook_scores_a_frozen_model(tmp_path):
    def frozen(first, prompt, num_frames):
        return np.repeat(first[-1:], num_frames, axis=0)

    report = evaluate("smoke", tmp_path, extend_fn=frozen, model_name="frozen", progress=False)
    m = report["metrics"]
    assert "adherence" not in m and report["model"]["name"] == "frozen"
    assert {c["task"] for c in report["clips"]} == {"physics"}
    assert m["physics"]["in_distribution"]["position"]["ratio"] > 10
    assert m["physics"]["out_of_distribution"]["acceleration"]["ratio"] > 10


def test_wrong_output_shape_is_a_clear_error(tmp_path):
    with pytest.raises(TenkuError, match="expected uint8"):
        evaluate("smoke", tmp_path, clips=1, generate_fn=lambda *a: np.zeros((17, 32, 32, 3), np.uint8),
                 progress=False)
    assert not (tmp_path / "report.json").exists()
    with pytest.raises(TenkuError, match="unknown suite"):
        evaluate("nope", tmp_path, ground_truth=True, progress=False)


@pytest.mark.slow
def test_cli_on_a_tiny_pipeline_runs_end_to_end_and_repeats(tmp_path):
    from tenku.testing import make_tiny_pipeline

    model = make_tiny_pipeline(tmp_path / "tiny")
    out = tmp_path / "report"
    cmd = [sys.executable, "-m", "tenku", "eval", "--model", str(model), "--suite", "smoke", "--out", str(out),
           "--clips", "1", "--seed", "3", "--steps", "2", "--no-progress"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert "report.json" in r.stdout
    first, _ = _check_files(out)
    assert {c["task"] for c in first["clips"]} == {"t2v", "physics", "recon"}
    assert first["seed"] == 3 and first["steps"] == 2 and first["model"]["path"] == str(model)
    m = first["metrics"]
    # a random model is far from the world
    assert m["physics"]["in_distribution"]["position"]["ratio"] > 10
    assert m["quality"]["reconstruction_psnr"] < 30
    # the conditioning-sensitivity check ran beside it: a random model ignores its text and fails it
    sens = first.pop("sensitivity")
    assert sens["passed"] is False and len(sens["background"]["seeds"]) == 2
    assert json.loads((out / "sensitivity.json").read_text()) == sens
    assert "conditioning sensitivity: FAILED" in r.stdout
    # same seed, same report (in-process this time)
    again = evaluate("smoke", tmp_path / "again", model=model, clips=1, seed=3, steps=2, progress=False)
    again = json.loads(json.dumps(again))
    for r in (again, first):  # the git commit may move on between the two runs
        r["code_version"].pop("git")
    assert again == first


def test_cli_errors_are_one_line(tmp_path):
    r = subprocess.run([sys.executable, "-m", "tenku", "eval", "--model", str(tmp_path / "missing"),
                        "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and r.stderr.startswith("error: model folder not found")
    assert "Traceback" not in r.stderr and not (tmp_path / "o").exists()
