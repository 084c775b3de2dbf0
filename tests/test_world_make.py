"""`tenku world make` as real processes: shards on disk, partitions, resume after kill -9, the dataset reader."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from tenku.data.shards import completed_shards, load_records
from tenku.media import read_video
from tenku.world import WorldDataset
from tenku.world.make import clip_seed

ENV = {**os.environ, "TENKU_NO_PROGRESS": "1", "OMP_NUM_THREADS": "1"}


def _make(out, *args, check=True):
    cmd = [sys.executable, "-m", "tenku", "world", "make", "--out", str(out), "--no-progress", *args]
    r = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300)
    if check:
        assert r.returncode == 0, r.stderr
    return r


def _cli(out, *args, capsys=None):
    """In-process `tenku world make` (the real CLI entry point): returns (exit code, stderr)."""
    from tenku.cli import main

    rc = main(["world", "make", "--out", str(out), "--no-progress", *args])
    return rc, capsys.readouterr().err if capsys else ""


def _key(rec):
    return rec["meta"]["clip_index"], rec["meta"]["seed"], json.dumps(rec["meta"]["spec"], sort_keys=True)


def test_make_writes_shards_with_ground_truth(tmp_path):
    out = tmp_path / "ds"
    r = _make(out, "--clips", "10", "--clips-per-shard", "4", "--workers", "2", "--seed", "7")
    assert json.loads(r.stdout.strip().splitlines()[-1])["clips_written"] == 10
    assert completed_shards(out) == {0, 1, 2}
    info = json.loads((out / "dataset.json").read_text())
    assert info["clips"] == 10 and info["seed"] == 7 and info["num_frames"] == 17 and info["split"] == "train"
    assert "--clips 10 --seconds 2 --size 64x64 --fps 8 --split train --seed 7" in info["command"]
    recs = load_records(out)
    assert [r["meta"]["clip_index"] for r in recs] == list(range(10))
    for rec in recs[:4]:
        frames, fps = read_video(rec["video"])
        assert frames.shape == (17, 64, 64, 3) and fps == 8
        gt = rec["ground_truth"]
        assert set(gt) >= {"units", "width", "height", "fps", "num_frames", "objects", "frames"}
        assert set(gt["objects"][0]) == {"id", "shape", "color", "rgb", "size", "radius_px"}
        assert set(gt["frames"][0]) == {"t", "camera", "objects", "collisions"}
        assert set(gt["frames"][0]["objects"][0]) == {"id", "x", "y", "vx", "vy", "angle", "visible",
                                                     "visible_fraction"}
        assert rec["meta"]["seed"] == clip_seed(7, "train", rec["meta"]["clip_index"])
        assert rec["meta"]["scenario"] == rec["meta"]["spec"]["scenario"]
        assert all(rec["captions"][k] for k in ("short", "medium", "long"))
    # the reader: video tensors in [-1, 1], captions at the chosen level
    ds = WorldDataset(out, caption="short", num_frames=9)
    item = ds[0]
    assert tuple(item["video"].shape) == (3, 9, 64, 64)
    assert -1.0 <= float(item["video"].min()) < float(item["video"].max()) <= 1.0
    assert item["caption"] == recs[0]["captions"]["short"]


def test_shard_partitions_and_worker_counts_give_the_same_clips(tmp_path):
    full, part = tmp_path / "full", tmp_path / "part"
    common = ["--clips", "9", "--clips-per-shard", "3", "--split", "test_comp", "--size", "48x32"]
    _make(full, *common, "--workers", "1")
    _make(part, *common, "--workers", "2", "--shard", "1/2")
    assert completed_shards(part) == {1}
    _make(part, *common, "--workers", "2", "--shard", "0/2")
    a, b = load_records(full), load_records(part)
    assert [_key(r) for r in a] == [_key(r) for r in b]
    assert all(r["split"] == "test_comp" for r in a)
    fa, _ = read_video(a[4]["video"])
    fb, _ = read_video(b[4]["video"])
    assert np.array_equal(fa, fb)


def test_interrupted_make_resumes_without_duplicates_or_losses(tmp_path):
    out = tmp_path / "ds"
    args = ["--clips", "48", "--clips-per-shard", "3", "--workers", "1", "--seed", "3", "--size", "32x32",
            "--seconds", "1"]
    cmd = [sys.executable, "-m", "tenku", "world", "make", "--out", str(out), "--no-progress", *args]
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(completed_shards(out)) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = completed_shards(out)
    assert 2 <= len(done) < 16, "the run was not interrupted mid-way"
    kept = {i: (out / f"shard-{i:05d}.jsonl").stat().st_mtime_ns for i in done}
    r = _make(out, *args)
    summary = json.loads(r.stdout.strip().splitlines()[-1])
    assert summary["shards_skipped"] == len(done) and summary["shards_written"] == 16 - len(done)
    assert {i: (out / f"shard-{i:05d}.jsonl").stat().st_mtime_ns for i in done} == kept
    recs = load_records(out)
    assert sorted(r["meta"]["clip_index"] for r in recs) == list(range(48))
    assert len({r["id"] for r in recs}) == 48
    assert all(r["meta"]["seed"] == clip_seed(3, "train", r["meta"]["clip_index"]) for r in recs)
    leftovers = [p for p in out.rglob("*") if p.name.endswith(".part")]
    assert not leftovers
    for rec in recs:  # every clip referenced by a manifest exists and decodes fully
        assert read_video(rec["video"])[0].shape == (9, 32, 32, 3)


def test_resume_with_other_settings_is_refused(tmp_path, capsys):
    out = tmp_path / "ds"
    assert _cli(out, "--clips", "2", "--clips-per-shard", "2", "--workers", "1", capsys=capsys)[0] == 0
    rc, err = _cli(out, "--clips", "2", "--clips-per-shard", "2", "--workers", "1", "--seed", "9", capsys=capsys)
    assert rc == 2 and "other settings" in err and "seed: 0 there, 9 now" in err


@pytest.mark.parametrize("args,message", [
    (["--clips", "2", "--size", "64"], "WIDTHxHEIGHT"),
    (["--clips", "2", "--shard", "3/2"], "--shard"),
    (["--clips", "0"], "--clips"),
    (["--clips", "2", "--scenario", "juggling"], "unknown --scenario"),
])
def test_bad_arguments_give_clear_errors(tmp_path, capsys, args, message):
    rc, err = _cli(tmp_path / "ds", *args, capsys=capsys)
    assert rc == 2 and message in err and err.startswith("error: ")
    assert not (tmp_path / "ds" / "shard-00000.jsonl").exists()


def test_dataset_skips_corrupt_and_missing_clips(tmp_path, caplog, capsys):
    out = tmp_path / "ds"
    assert _cli(out, "--clips", "4", "--clips-per-shard", "4", "--workers", "1", capsys=capsys)[0] == 0
    recs = load_records(out)
    data = Path(recs[1]["video"]).read_bytes()
    Path(recs[1]["video"]).write_bytes(data[: len(data) // 3])  # truncated
    Path(recs[2]["video"]).unlink()  # missing
    ds = WorldDataset(out, caption="random")
    assert len(ds) == 3 and any("missing" in why for _, why in ds.skipped)
    items = [ds[i] for i in range(len(ds))]
    assert all(tuple(x["video"].shape) == (3, 17, 64, 64) for x in items)
    assert any(rid == recs[1]["id"] for rid, _ in ds.skipped)
    assert recs[1]["id"] not in {x["record"]["id"] for x in items}
    assert "skipping clip" in caplog.text


def test_sample_command_writes_one_clip(tmp_path, capsys):
    from tenku.cli import main

    out = tmp_path / "one.mp4"
    assert main(["world", "sample", "--out", str(out), "--scenario", "throw", "--seed", "4"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["meta"]["scenario"] == "throw" and printed["captions"]["long"]
    frames, _ = read_video(out)
    assert frames.shape == (17, 64, 64, 3)
    assert main(["world", "sample", "--out", str(tmp_path / "x.gif")]) == 2
    assert "must end in .mp4 or .png" in capsys.readouterr().err
