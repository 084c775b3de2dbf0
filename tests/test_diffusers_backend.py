"""diffusers folders behind tenku's spine: tiny random pipelines of each family (built here from diffusers' and
transformers' own classes, saved with save_pretrained), run through `tenku generate` (mp4 decoded by PyAV, C2PA
manifest and watermark checked by `tenku verify`), compared frame for frame with the diffusers pipeline called
directly, the modes each class serves and refuses, memory options on a CPU, and broken folders."""

import inspect
import json
import shutil

import av
import numpy as np
import pytest

pytest.importorskip("diffusers")

from tenku import cli  # noqa: E402
from tenku.errors import ModelFolderError, TenkuError, UnsupportedSizeError  # noqa: E402
from tenku.models import diffusers_folder as df  # noqa: E402
from tenku.models.folder import read_pipeline_info  # noqa: E402
from tenku.pipeline.loading import load_pipeline  # noqa: E402
from tenku.pipeline.modes import MODES, Connect, Edit, Extend, ImageToVideo, Loop  # noqa: E402
from tenku.testing import TINY_DIFFUSERS, make_tiny_diffusers  # noqa: E402

PROMPT = "a red ball rolls left"
T2V_KINDS = ("wan", "ltx", "cogvideox", "hunyuanvideo", "hunyuanvideo15")
I2V_KINDS = ("wan-i2v", "cogvideox-i2v", "hunyuanvideo-i2v", "hunyuanvideo15-i2v")


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("diffusers")
    return {k: make_tiny_diffusers(root / k, k) for k in TINY_DIFFUSERS}


@pytest.fixture(scope="module")
def pipes(folders):
    return {}  # loaded on first use, shared by the tests of this module


def pipe_of(pipes, folders, kind):
    if kind not in pipes:
        pipes[kind] = load_pipeline(folders[kind])
    return pipes[kind]


def decode(path):
    with av.open(str(path)) as c:
        return np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])


def clip(seed=0, n=9):
    """Frames with structure (a moving bright square on a gradient): the given video of the conditioned modes."""
    rng = np.random.default_rng(seed)
    base = np.linspace(40, 200, 32, dtype=np.float32)[None, :, None] * np.ones((32, 1, 3), np.float32)
    frames = np.repeat(base[None], n, axis=0)
    for t in range(n):
        frames[t, 10:18, 2 + 2 * t: 10 + 2 * t] = rng.integers(200, 255, 3)
    return frames.astype(np.uint8)


# ---- tenku generate: every family, an mp4 with the asked frames, a valid manifest and a watermark ---------------

@pytest.mark.parametrize("kind", T2V_KINDS + ("wan-i2v", "hunyuanvideo-i2v", "hunyuanvideo15-i2v"))
def test_generate_cli_writes_a_marked_mp4(folders, kind, tmp_path, capsys):
    out = tmp_path / "out.mp4"
    args = ["generate", PROMPT, "--model", str(folders[kind]), "--frames", "9", "--seed", "4", "-o", str(out),
            "--no-progress", "--threads", "1"]
    if kind in I2V_KINDS:
        from PIL import Image

        Image.fromarray(clip()[0]).save(tmp_path / "first.png")
        args += ["--image", str(tmp_path / "first.png")]
    assert cli.main(args) == 0, capsys.readouterr().err
    assert f"wrote {out} (9 frames, 8 fps, 32x32, seed 4" in capsys.readouterr().out
    frames = decode(out)
    assert frames.shape == (9, 32, 32, 3)
    assert cli.main(["verify", str(out), "--json"]) == 0  # 0: C2PA manifest valid and the watermark found
    report = json.loads(capsys.readouterr().out)
    assert report["c2pa"]["state"] == "valid" and report["watermark"]["detected"]
    params = report["c2pa"]["claims"]["actions"][0]["parameters"]["generation"]
    assert params["backend"] == "diffusers" and params["pipeline_class"] == df.KINDS[
        read_pipeline_info(folders[kind]).class_name].class_name


# ---- tenku adds nothing before marking: same seed, same frames as diffusers called directly ---------------------

@pytest.mark.parametrize("kind", T2V_KINDS + I2V_KINDS)
def test_same_frames_as_the_diffusers_pipeline(folders, pipes, kind):
    import diffusers
    import torch

    pipe = pipe_of(pipes, folders, kind)
    image = clip()[0]
    mode = ImageToVideo(image=image) if kind in I2V_KINDS else None
    ours = pipe(PROMPT, mode=mode, seed=11, expand=False, progress=False).frames  # before marking
    direct = getattr(diffusers, pipe.kind.class_name).from_pretrained(str(folders[kind]))
    direct.set_progress_bar_config(disable=True)
    kw = dict(df.read_options(folders[kind]).call)
    if kind in I2V_KINDS:
        from PIL import Image

        kw["image"] = Image.fromarray(image)
    if kind == "ltx":
        kw["frame_rate"] = 8
    # HunyuanVideo I2V ("latent_concat") drops the first latent frame's 4 frames: 13 asked, 9 come back (tenku asks
    # the same); HunyuanVideo 1.5 takes no guidance_scale (its guider) and its I2V class no size (the image's)
    kw.update(prompt=PROMPT, height=32, width=32, num_frames=13 if kind == "hunyuanvideo-i2v" else 9,
              num_inference_steps=2, guidance_scale=5.0, generator=torch.Generator("cpu").manual_seed(11),
              output_type="np")
    params = inspect.signature(direct.__call__).parameters
    ref = direct(**{k: v for k, v in kw.items() if k in params}).frames[0]
    ref = (np.asarray(ref) * 255).round().clip(0, 255).astype(np.uint8)
    assert ours.shape == ref.shape == (9, 32, 32, 3)
    # tolerance: 1 level of 255 (the float frames round the same way; CPU float results are deterministic)
    assert np.abs(ours.astype(int) - ref.astype(int)).max() <= 1
    other = pipe(PROMPT, mode=mode, seed=12, expand=False, progress=False).frames
    assert np.abs(other.astype(int) - ref.astype(int)).max() > 1  # the comparison can fail: a seed changes frames


# ---- the modes each class serves, window by window where it can, and the ones it refuses --------------------------

def test_wan_i2v_extends_and_makes_long_videos_from_the_last_frame(folders, pipes):
    pipe = pipe_of(pipes, folders, "wan-i2v")
    given = clip()
    out = pipe(PROMPT, mode=Extend(video=given, seconds=1.0), seed=1, progress=False)
    assert out.frames.shape == (9 + 8, 32, 32, 3) and np.array_equal(out.frames[:9], given)  # given kept as is
    long = pipe(PROMPT, mode=ImageToVideo(image=given[0]), num_frames=25, seed=1, progress=False)
    assert long.frames.shape == (25, 32, 32, 3) and long.metadata["windows"] == 3


def test_ltx_conditions_connect_extend_and_long_text_to_video(folders, pipes):
    pipe = pipe_of(pipes, folders, "ltx")
    a, b = clip(0), clip(1)
    out = pipe(PROMPT, mode=Connect(a=a, b=b, seconds=1.0), seed=2, progress=False)
    assert out.frames.shape == (9 + 8 + 9, 32, 32, 3)
    assert np.array_equal(out.frames[:9], a) and np.array_equal(out.frames[-9:], b)
    long = pipe(PROMPT, num_frames=17, seed=2, progress=False)
    assert long.frames.shape == (17, 32, 32, 3) and long.metadata["windows"] == 2


def test_edit_runs_the_video_to_video_pipeline(folders, pipes):
    pipe = pipe_of(pipes, folders, "wan")
    given = clip()
    kept = pipe(PROMPT, mode=Edit(video=given, strength=0.5), num_steps=4, seed=3, progress=False).frames
    redone = pipe(PROMPT, mode=Edit(video=given, strength=1.0), num_steps=4, seed=3, progress=False).frames
    assert kept.shape == redone.shape == (9, 32, 32, 3)
    err = lambda f: np.abs(f.astype(float) - given).mean()  # noqa: E731
    assert err(kept) < err(redone)  # a low strength keeps more of the video
    with pytest.raises(TenkuError, match="leaves no step to denoise"):
        pipe(PROMPT, mode=Edit(video=given, strength=0.3), num_steps=2, progress=False)


@pytest.mark.parametrize("kind,mode,names", [
    ("wan", lambda: ImageToVideo(image=clip()[0]), "WanImageToVideoPipeline"),
    ("wan", lambda: Loop(seconds=1.0), "tenku's own model"),
    ("wan-i2v", lambda: None, "WanPipeline"),
    ("ltx", lambda: Extend(video=clip(), seconds=1.0, backward=True), "tenku's own model"),
    ("hunyuanvideo", lambda: Edit(video=clip()), "WanPipeline"),
])
def test_a_mode_the_class_does_not_serve_is_refused_naming_one_that_does(folders, pipes, kind, mode, names):
    with pytest.raises(TenkuError, match="cannot make") as e:
        pipe_of(pipes, folders, kind)(PROMPT, mode=mode(), seed=1, progress=False)
    assert names in str(e.value)


def test_hunyuanvideo15_i2v_refuses_a_size_it_would_not_make(folders, pipes):
    pipe = pipe_of(pipes, folders, "hunyuanvideo15-i2v")  # it makes the size of its target_size's bucket
    with pytest.raises(UnsupportedSizeError, match=r"for 64x32 it would make 40x20; ask for --size 40x20"):
        pipe(PROMPT, mode=ImageToVideo(image=clip()[0]), width=64, height=32, seed=1, progress=False)


def test_hunyuanvideo_i2v_extends_from_the_last_frame(folders, pipes):
    pipe = pipe_of(pipes, folders, "hunyuanvideo-i2v")
    given = clip()
    out = pipe(PROMPT, mode=Extend(video=given, seconds=1.0), seed=1, progress=False)
    assert out.frames.shape == (9 + 8, 32, 32, 3) and np.array_equal(out.frames[:9], given)


def test_too_long_for_a_model_that_cannot_continue(folders, pipes):
    with pytest.raises(TenkuError, match=r"longer than one call \(17 frames; one call makes up to 9\)"):
        pipe_of(pipes, folders, "wan")(PROMPT, num_frames=17, progress=False)


def test_sampler_and_guidance_interval_are_tenku_only(folders, pipes):
    pipe = pipe_of(pipes, folders, "wan")
    with pytest.raises(TenkuError, match="own scheduler"):
        pipe(PROMPT, sampler="heun", progress=False)
    with pytest.raises(TenkuError, match="tenku's own model only"):
        pipe(PROMPT, guidance_interval=(0.2, 0.8), progress=False)


# ---- what a folder says without loading, and the one table -------------------------------------------------------

def test_read_pipeline_info_describes_a_diffusers_folder_from_json(folders, tmp_path):
    info = read_pipeline_info(folders["wan"])
    assert (info.backend, info.class_name) == ("diffusers", "WanPipeline")
    assert info.geometry.spatial_multiple == (16, 16) and info.geometry.temporal_factor == 4
    assert info.modes == ("text_to_video", "text_to_image", "edit") and info.max_frames == 9
    assert read_pipeline_info(folders["ltx"]).geometry.spatial_multiple == (4, 4)
    assert "connect" not in read_pipeline_info(folders["wan-i2v"]).modes  # Wan 2.1 I2V: a first frame only
    flf = tmp_path / "flf"
    shutil.copytree(folders["wan-i2v"], flf)
    cfg = json.loads((flf / "transformer" / "config.json").read_text())
    (flf / "transformer" / "config.json").write_text(json.dumps({**cfg, "pos_embed_seq_len": 130}))
    assert read_pipeline_info(flf).modes == ("connect",)  # Wan 2.1 FLF2V: always first and last frame


def test_the_capability_table_names_real_modes_and_classes():
    import diffusers

    tenku_modes = {m.name for m in MODES} | {df.EXTEND_BACKWARD, df.LONG}
    for kind in df.KINDS.values():
        assert set(kind.serves) <= tenku_modes and kind.family in df.FAMILIES
        assert hasattr(diffusers, kind.class_name), kind.class_name
        for extra in (kind.edit_class, kind.condition_class):
            assert extra is None or hasattr(diffusers, extra)


# ---- memory and speed options run on a CPU ------------------------------------------------------------------------

def test_memory_flags_run_on_cpu(folders, tmp_path, capsys):
    out = tmp_path / "o.mp4"
    rc = cli.main(["generate", PROMPT, "--model", str(folders["wan"]), "--frames", "9", "--steps", "3", "-o",
                   str(out), "--dtype", "fp32", "--vae-tiling", "--vae-slicing", "--cache", "first-block",
                   "--offload", "model", "--no-progress", "--threads", "1"])
    captured = capsys.readouterr()
    assert rc == 0, captured.err
    assert "warning: offload=model moves components between the CPU and a GPU" in captured.err  # said, not dropped
    assert decode(out).shape == (9, 32, 32, 3)


@pytest.mark.parametrize("cache", ["taylorseer", "mag"])
def test_cache_hooks_run_on_cpu(folders, cache):
    pipe = load_pipeline(folders["wan"], options=df.DiffusersOptions(cache=cache))
    assert pipe(PROMPT, num_steps=4, seed=1, progress=False).frames.shape == (9, 32, 32, 3)
    assert pipe.pipe.transformer.is_cache_enabled


def test_folder_defaults_in_tenku_json_and_flags_on_top(folders, tmp_path):
    folder = tmp_path / "wan"
    shutil.copytree(folders["wan"], folder)
    opts = json.loads((folder / "tenku.json").read_text())["options"]
    (folder / "tenku.json").write_text(json.dumps({"options": {**opts, "cache": "first-block", "dtype": "fp32"}}))
    pipe = load_pipeline(folder, options=df.DiffusersOptions(cache_threshold=0.2))
    assert pipe.options.cache == "first-block" and pipe.options.cache_threshold == 0.2
    assert pipe.options.call == {"max_sequence_length": 16}
    assert pipe(PROMPT, seed=1, progress=False).frames.shape == (9, 32, 32, 3)
    assert pipe.pipe.transformer.is_cache_enabled
    (folder / "tenku.json").write_text(json.dumps({"options": {"offload": "gpu"}}))
    with pytest.raises(ModelFolderError, match="offload must be one of model, sequential"):
        read_pipeline_info(folder) and load_pipeline(folder)


def test_diffusers_only_flags_are_refused_for_a_tenku_folder(tmp_path):
    from tenku.testing import make_tiny_pipeline

    with pytest.raises(TenkuError, match="--cache apply to diffusers folders"):
        load_pipeline(make_tiny_pipeline(tmp_path / "t"), options=df.DiffusersOptions(cache="first-block"))


# ---- broken folders: a clear error that names what is missing, no traceback, no file --------------------------------

def broken(folders, tmp_path, how):
    folder = tmp_path / "broken"
    shutil.copytree(folders["wan"], folder)
    if how == "missing":
        shutil.rmtree(folder / "text_encoder")
    elif how == "class":
        index = json.loads((folder / "model_index.json").read_text())
        (folder / "model_index.json").write_text(json.dumps({**index, "_class_name": "FluxPipeline"}))
    elif how == "truncated":
        w = folder / "transformer" / "diffusion_pytorch_model.safetensors"
        w.write_bytes(w.read_bytes()[: w.stat().st_size // 2])
    elif how == "no-weights":
        (folder / "vae" / "diffusion_pytorch_model.safetensors").unlink()
    elif how == "no-index":
        (folder / "model_index.json").unlink()
    return folder


@pytest.mark.parametrize("how,says", [
    ("missing", r"the text_encoder component \(UMT5EncoderModel\) is missing"),
    ("class", r"names the pipeline class 'FluxPipeline', which tenku does not run"),
    ("truncated", r"diffusion_pytorch_model.safetensors is truncated: it should have \d+ bytes, it has \d+"),
    ("no-weights", r"the vae component \(AutoencoderKLWan\) has no weights"),
    ("no-index", r"is not a pipeline folder \(no model_index.json\)"),
])
def test_a_broken_folder_gets_a_clear_error(folders, tmp_path, capsys, how, says):
    folder = broken(folders, tmp_path, how)
    with pytest.raises(ModelFolderError, match=says):
        load_pipeline(folder)
    out = tmp_path / "out.mp4"
    assert cli.main(["generate", PROMPT, "--model", str(folder), "-o", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".out*"))  # nothing half-written


def test_without_diffusers_tenku_runs_and_a_diffusers_folder_says_what_to_install(folders, tmp_path, monkeypatch):
    import sys

    from tenku.testing import make_tiny_pipeline

    monkeypatch.setitem(sys.modules, "diffusers", None)  # `import diffusers` now fails, as when it is not installed
    own = load_pipeline(make_tiny_pipeline(tmp_path / "own"))
    assert own(PROMPT, num_steps=1, progress=False).frames.shape[0] == 9
    with pytest.raises(TenkuError, match=r"pip install 'tenku\[diffusers\]'"):
        load_pipeline(folders["wan"])


def test_the_published_sizes_pass_the_limits(folders, pipes, tmp_path):
    from tenku.pipeline.pipeline import TenkuPipeline
    from tenku.pipeline.request import check_limits
    from tenku.testing import make_tiny_pipeline

    check_limits(pipe_of(pipes, folders, "hunyuanvideo"), 129, 720, 1280, 24.0)  # HunyuanVideo's own size
    with pytest.raises(UnsupportedSizeError, match="width 1280 is above the limit of 1024"):
        check_limits(TenkuPipeline.from_pretrained(make_tiny_pipeline(tmp_path / "t")), 17, 720, 1280, 24.0)
