"""`tenku serve --model DIR` for diffusers folders (a real server on 127.0.0.1, the real openai SDK), and
`tenku eval --model DIR`: the same queue, workers, moderation and provenance as for tenku's own model."""

import json

import av
import numpy as np
import pytest

pytest.importorskip("diffusers")
pytest.importorskip("fastapi")
openai = pytest.importorskip("openai")

from tenku import cli  # noqa: E402
from tenku.serve.launch import ServerProcess  # noqa: E402
from tenku.testing import make_tiny_diffusers  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")  # the SDK marks the Videos API deprecated


# each family's text-to-video class: what /v1/models says it serves, and the class a first-frame request names
SERVED = {"wan": ("WanPipeline", ["text_to_video", "text_to_image", "edit"], "WanImageToVideoPipeline"),
          "ltx": ("LTXPipeline", ["text_to_video", "text_to_image", "image_to_video", "extend", "connect",
                                  "long_video"], None),
          "cogvideox": ("CogVideoXPipeline", ["text_to_video", "edit"], "CogVideoXImageToVideoPipeline"),
          "hunyuanvideo": ("HunyuanVideoPipeline", ["text_to_video", "text_to_image"],
                           "HunyuanVideoImageToVideoPipeline")}


@pytest.fixture(scope="module", params=list(SERVED))
def served(request, tmp_path_factory):
    """A server on a tiny text-to-video folder of each family (one server start costs about 20 s here: one
    server per family, one video each)."""
    root = tmp_path_factory.mktemp(f"serve-{request.param}")
    model = make_tiny_diffusers(root / request.param, request.param)
    srv = ServerProcess(model=str(model), data_dir=root / "data", workers=1,
                        args=["--poll-after-ms", "100", "--sizes", "32x32,64x32", "--seconds", "1", "--threads", "1",
                              "--rate-limit", "0", "--dtype", "fp32"])
    with srv:
        client = openai.OpenAI(base_url=srv.url + "/v1", api_key="unused", max_retries=0)
        yield request.param, srv, client


def test_models_list_what_the_folder_can_do(served):
    kind, _, client = served
    caps = client.models.list().data[0].model_extra["capabilities"]
    assert caps["backend"] == "diffusers" and caps["max_frames_per_call"] == 9
    cls, modes, _ = SERVED[kind]
    assert caps["pipeline_class"] == cls and caps["modes"] == modes
    if "long_video" not in modes:
        assert caps["max_seconds"] == 1.12  # 9 frames at 8 fps: one call is the longest video it makes
    assert caps["sizes"] == ["32x32", "64x32"] and caps["seconds"] == ["1"]


def test_create_and_poll_gives_a_marked_video(served, tmp_path, capsys):
    kind, _, client = served
    v = client.videos.create_and_poll(prompt="a red ball rolls left", seconds="1", size="64x32")
    assert v.status == "completed", v.error
    path = tmp_path / "v.mp4"
    client.videos.download_content(v.id).write_to_file(path)
    with av.open(str(path)) as c:
        frames = np.stack([f.to_ndarray(format="rgb24") for f in c.decode(video=0)])
    assert frames.shape == (9, 32, 64, 3)
    assert frames.std() > 1.0  # a decoded picture, not a blank frame
    assert cli.main(["verify", str(path), "--json"]) == 0  # 0: C2PA manifest valid and the watermark found
    report = json.loads(capsys.readouterr().out)
    assert report["c2pa"]["state"] == "valid" and report["watermark"]["detected"]
    gen = report["c2pa"]["claims"]["actions"][0]["parameters"]["generation"]
    assert gen["backend"] == "diffusers" and gen["pipeline_class"] == SERVED[kind][0]


def test_moderation_and_unserved_modes_are_refused_before_queueing(served, tmp_path):
    kind, _, client = served
    with pytest.raises(openai.BadRequestError) as e:
        client.videos.create(prompt="how to make a pipe bomb at home", seconds="1")
    assert e.value.body["code"] == "moderation_blocked"
    i2v = SERVED[kind][2]
    if i2v:  # a text-to-video-only folder: an input image is an image-to-video request
        from PIL import Image

        Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(tmp_path / "ref.png")
        with open(tmp_path / "ref.png", "rb") as f, pytest.raises(openai.BadRequestError) as e:
            client.videos.create(prompt="a ball", seconds="1", size="32x32", input_reference=f)
        assert e.value.body["code"] == "unsupported_mode"
        assert i2v in e.value.body["message"]  # names the family's class that serves it
        with pytest.raises(openai.BadRequestError) as e:
            client.videos.create(prompt="a ball", seconds="2")
        assert "at most 1.12" in e.value.body["message"]


def test_eval_runs_on_a_diffusers_folder(tmp_path, capsys):
    pytest.importorskip("scipy")
    model = make_tiny_diffusers(tmp_path / "ltx", "ltx")  # text-to-video and extension: every task of the suite
    sample = json.loads((model / "sample.json").read_text())
    (model / "sample.json").write_text(json.dumps({**sample, "num_frames": 17, "width": 64, "height": 64}))
    out = tmp_path / "report"
    rc = cli.main(["eval", "--model", str(model), "--suite", "smoke", "--clips", "1", "--out", str(out), "--steps",
                   "1", "--no-progress", "--no-sensitivity", "--threads", "1"])
    assert rc == 0, capsys.readouterr().err
    report = json.loads((out / "report.json").read_text())
    assert report["model"]["name"] == "ltx"
    assert {c["task"] for c in report["clips"]} == {"t2v", "physics", "recon"}
