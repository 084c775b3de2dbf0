"""Media I/O: real H.264 files written and decoded by PyAV; atomic writes; clear errors."""

import numpy as np
import pytest

from tenku.errors import MediaError
from tenku.media import probe, read_image, read_video, write_png, write_video, VideoWriter


def _clip(t=9, h=32, w=48, seed=0):
    rng = np.random.default_rng(seed)
    # smooth content so H.264 at crf 18 keeps it close
    base = rng.integers(0, 255, size=(1, h // 8, w // 8, 3)).astype(np.float32)
    frames = np.repeat(np.repeat(base, 8, axis=1), 8, axis=2)
    frames = np.concatenate([np.roll(frames, i, axis=2) for i in range(t)])
    return frames.astype(np.uint8)


def test_mp4_round_trip_frames_size_fps(tmp_path):
    frames = _clip()
    path = write_video(tmp_path / "a.mp4", frames, fps=12)
    info = probe(path)
    assert (info["width"], info["height"], info["num_frames"]) == (48, 32, 9)
    assert info["fps"] == pytest.approx(12)
    decoded, fps = read_video(path)
    assert decoded.shape == frames.shape and fps == pytest.approx(12)
    err = np.abs(decoded.astype(float) - frames.astype(float)).mean()
    assert err < 10, f"mean abs error {err:.2f} too large for crf 18 (yuv420p chroma)"
    # a different video decodes differently: the check above can fail
    assert np.abs(decoded.astype(float) - _clip(seed=1).astype(float)).mean() > 20


def test_odd_sizes_are_written(tmp_path):
    frames = np.full((3, 33, 65, 3), 128, np.uint8)
    decoded, _ = read_video(write_video(tmp_path / "odd.mp4", frames, fps=8))
    assert decoded.shape == (3, 33, 65, 3)


def test_png_round_trip_is_exact(tmp_path):
    frame = _clip(t=1)[0]
    path = write_png(tmp_path / "x.png", frame)
    assert np.array_equal(read_image(path), frame)


def test_failed_write_leaves_no_file(tmp_path):
    target = tmp_path / "broken.mp4"
    with pytest.raises(MediaError):
        with VideoWriter(target, fps=8) as w:
            w.write(np.zeros((16, 16, 3), np.uint8))
            w.write(np.zeros((32, 32, 3), np.uint8))  # size change mid-video
    assert list(tmp_path.iterdir()) == []


def test_bad_frames_are_rejected(tmp_path):
    with pytest.raises(MediaError, match="uint8"):
        write_video(tmp_path / "f.mp4", np.zeros((2, 16, 16, 3), np.float32), fps=8)
    assert not (tmp_path / "f.mp4").exists()


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 50])
def test_unreadable_inputs_give_media_error(tmp_path, content):
    p = tmp_path / "bad.mp4"
    p.write_bytes(content)
    with pytest.raises(MediaError):
        read_video(p)


def test_truncated_video_reads_what_is_there_or_fails_cleanly(tmp_path):
    path = write_video(tmp_path / "t.mp4", _clip(t=17), fps=8)
    data = path.read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    try:
        frames, _ = read_video(cut)
    except MediaError:
        return
    assert len(frames) < 17
