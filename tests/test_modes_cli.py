"""The mode commands as real subprocesses on a tiny pipeline; outputs decoded with PyAV."""

import os
import subprocess
import sys

import av
import numpy as np
import pytest

from tenku.testing import make_tiny_pipeline


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return make_tiny_pipeline(tmp_path_factory.mktemp("m") / "tiny")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    """A 17-frame world clip at 40x24 / 8 fps (mp4) and a 50x30 PNG of its first frame."""
    from PIL import Image

    from tenku.media import write_video
    from tenku.world import make_clip, sample_scene

    d = tmp_path_factory.mktemp("in")
    frames = make_clip(sample_scene(1, "train", "bounce_walls", width=40, height=24, fps=8, seconds=2)).frames
    write_video(d / "clip.mp4", frames, fps=8)
    Image.fromarray(frames[0]).resize((50, 30)).save(d / "first.png")
    return d


def tenku(*args, cwd):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TENKU_NO_PROGRESS": "1"}
    return subprocess.run([sys.executable, "-m", "tenku", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=180)


def decode(path):
    with av.open(str(path)) as c:
        fps = float(c.streams.video[0].average_rate)
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)]), fps


CASES = [
    (["generate", "a red ball", "--image", "{in}/first.png", "--seconds", "2", "--size", "32x32"], 17, (32, 32)),
    (["extend", "{in}/clip.mp4", "--seconds", "1", "the ball keeps moving"], 17 + 8, (24, 40)),
    (["connect", "{in}/clip.mp4", "{in}/clip.mp4", "--seconds", "1", "a ball"], 17 + 8 + 17, (24, 40)),
    (["edit", "{in}/clip.mp4", "a green ball", "--strength", "0.5"], 17, (24, 40)),
]
IN_PROCESS = [
    (["extend", "{in}/clip.mp4", "--seconds", "1", "--backward", "--no-expand"], 9 + 17, (24, 40)),
    (["loop", "a blue square", "--seconds", "2"], 17, (32, 32)),
    (["generate", "a red ball", "--seconds", "4", "--negative-prompt", "blur", "--guidance", "3"], 33, (32, 32)),
]


def check_output(tmp_path, stdout, args, frames, size):
    assert f"wrote out.mp4 ({frames} frames, 8 fps, {size[1]}x{size[0]}, seed 3" in stdout
    assert ("expanded prompt" in stdout) == ("--no-expand" not in args)
    video, fps = decode(tmp_path / "out.mp4")
    assert video.shape == (frames, *size, 3) and fps == 8
    assert [p.name for p in tmp_path.iterdir()] == ["out.mp4"]


@pytest.mark.parametrize("args, frames, size", CASES)
def test_mode_commands_in_real_processes_write_decodable_files(model, inputs, tmp_path, args, frames, size):
    args = [a.replace("{in}", str(inputs)) for a in args]
    r = tenku(*args, "-o", "out.mp4", "--model", str(model), "--steps", "1", "--seed", "3", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    check_output(tmp_path, r.stdout, args, frames, size)


@pytest.mark.parametrize("args, frames, size", IN_PROCESS)
def test_more_mode_commands(model, inputs, tmp_path, monkeypatch, capsys, args, frames, size):
    # the same entry point as the `tenku` script, in this process (real processes are tested above)
    from tenku.cli import main

    monkeypatch.chdir(tmp_path)
    args = [a.replace("{in}", str(inputs)) for a in args]
    assert main([*args, "-o", "out.mp4", "--model", str(model), "--steps", "1", "--seed", "3", "--no-progress"]) == 0
    check_output(tmp_path, capsys.readouterr().out, args, frames, size)


def test_text_to_image_with_frames_one(model, tmp_path):
    from tenku.cli import main
    from tenku.media import read_image

    assert main(["generate", "a red ball", "--frames", "1", "-o", str(tmp_path / "x.png"), "--model", str(model),
                 "--steps", "1", "--no-progress"]) == 0
    assert read_image(tmp_path / "x.png").shape == (32, 32, 3)


@pytest.mark.parametrize("args, message", [
    (["extend", "{in}/nope.mp4", "--seconds", "1"], "video not found"),
    (["extend", "{in}/clip.mp4", "--seconds", "-2"], "--seconds must be positive"),
    (["edit", "{in}/clip.mp4", "x", "--strength", "2"], "strength must be a number in [0, 1]"),
    (["connect", "{in}/clip.mp4", "{in}/first.png", "--seconds", "1", "--size", "2000x32"],
     "width 2000 is above the limit of 1024"),
    (["loop", "x", "--seconds", "900"], "must be a number of seconds in (0, 600]"),
    (["generate", "x", "--image", "{in}/nope.png"], "image not found"),
    (["generate", "x", "--fps", "90"], "fps 90 is outside (0, 60]"),
    (["extend", "{in}/first.png", "--seconds", "1", "-o", "out.gif"], "the output must end in .mp4 or .png"),
])
def test_bad_input_is_one_error_line_and_no_file(model, inputs, tmp_path, monkeypatch, capsys, args, message):
    from tenku.cli import main

    monkeypatch.chdir(tmp_path)
    args = [a.replace("{in}", str(inputs)) for a in args]
    if "-o" not in args:
        args += ["-o", "out.mp4"]
    assert main([*args, "--model", str(model), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err, err
    assert list(tmp_path.iterdir()) == []
