"""Every text that reaches the model is moderated: the CLI refuses before it loads a model (prompt and
negative prompt), the pipeline checks the negative prompt, and captions from a re-captioning endpoint
are refused like prompts."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from tenku.cli import main
from tenku.data.caption import Captioner, CaptionerConfig, CaptionerError
from tenku.safety.moderation import ModerationError


@pytest.fixture
def no_model_load(monkeypatch):
    """Loading a model fails the test: a refusal must come first."""
    from tenku.pipeline import TenkuPipeline

    loads = []

    def refuse_to_load(*args, **kwargs):
        loads.append(args)
        raise AssertionError("a model was loaded for a refused prompt")

    monkeypatch.setattr(TenkuPipeline, "from_pretrained", classmethod(lambda cls, *a, **k: refuse_to_load(*a)))
    return loads


@pytest.mark.parametrize("argv, what", [
    (["generate", "a man decapitated with a sword"], "prompt"),
    (["generate", "a red ball", "--negative-prompt", "a naked woman"], "negative prompt"),
    (["generate", "Pikachu running"], "prompt"),
])
def test_refused_cli_generate_never_loads_the_model(argv, what, no_model_load, tmp_path, capsys):
    rc = main(argv + ["-o", str(tmp_path / "out.mp4")])
    err = capsys.readouterr().err
    assert rc != 0 and no_model_load == []
    assert f"{what} refused by moderation" in err and "to go on" in err
    assert not (tmp_path / "out.mp4").exists()


def test_pipeline_refuses_a_harmful_negative_prompt(tmp_path):
    from tenku.pipeline import TenkuPipeline
    from tenku.testing import make_tiny_pipeline

    pipe = TenkuPipeline.from_pretrained(make_tiny_pipeline(tmp_path / "tiny"))
    with pytest.raises(ModerationError, match="negative prompt refused") as e:
        pipe.stream("a red ball", negative_prompt="gore and severed heads", num_frames=1)
    assert e.value.category == "violence/graphic"


class _Captioner(BaseHTTPRequestHandler):
    caption = ""

    def log_message(self, *a):
        pass

    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        data = json.dumps({"choices": [{"index": 0, "message": {"role": "assistant",
                                                                "content": self.caption}}]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def captioner_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Captioner)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_recaptioned_clip_is_moderated_like_a_prompt(captioner_url, tmp_path):
    frames = [np.full((32, 32, 3), v, np.uint8) for v in (10, 200)]
    cap = Captioner(CaptionerConfig(url=captioner_url, model="m", cache_dir=str(tmp_path), backoff_s=0.01))
    _Captioner.caption = "A red ball rolls across a wooden floor. The camera stays still."
    assert cap.caption(frames)[0].startswith("A red ball")
    _Captioner.caption = "A naked woman undresses on a bed. The camera stays still."
    other = [np.full((32, 32, 3), v, np.uint8) for v in (40, 90)]
    with pytest.raises(CaptionerError, match="caption refused by moderation: category 'sexual'"):
        cap.caption(other)
    assert not list(tmp_path.rglob("*.json")) or all("naked" not in p.read_text() for p in tmp_path.rglob("*.json"))
