"""Prompt expansion: the built-in expander, the chat enhancer against a local stand-in server, the pipeline wiring.

The enhancer's counterpart here is a stand-in: a small http.server on 127.0.0.1 that speaks the
OpenAI chat-completions shape (no language model behind it).
"""

import http.server
import json
import threading
import time
import warnings

import pytest

from tenku.pipeline.prompt import ChatEnhancer, EnhancerFallbackWarning, expand_prompt
from tenku.world.expand import BuiltinExpander, find_objects
from tenku.world.captions import parse_caption

KEYS = ("colors", "shapes", "sizes", "directions", "speeds", "backgrounds", "camera", "pairs")
SHORT = ["a red ball bouncing", "a big blue square moving up-right quickly on a checkered floor",
         "two green triangles", "a small yellow triangle moving to the left slowly", "the camera pans left over a "
         "purple disc", "a magenta box on a stone floor", "A large red ball falls onto the floor and bounces",
         "a cyan ball hits an orange square"]


@pytest.mark.parametrize("prompt", SHORT)
def test_expansion_keeps_what_the_user_said_and_fills_the_rest(prompt):
    text, source = BuiltinExpander().expand(prompt, seed=0)
    assert source == "builtin" and text != prompt and len(text) > len(prompt)
    user, got = parse_caption(prompt), parse_caption(text)
    for key in KEYS:
        assert user[key] <= got[key], (key, user[key], got[key], text)
    assert got["colors"] and got["shapes"] and got["sizes"] and got["backgrounds"]  # filled
    assert got["camera"] or "static_camera" in got["events"]
    n = len(find_objects(prompt))
    assert text.startswith(("One object", "A single object") if n == 1 else f"{['Two', 'Three'][n - 2]} objects")


def test_expansion_is_deterministic_per_seed():
    e = BuiltinExpander()
    a = [e.expand("a red ball", s)[0] for s in range(6)]
    assert a == [e.expand("a red ball", s)[0] for s in range(6)]
    assert len(set(a)) >= 4  # the seed picks the unspecified attributes
    assert all("red" in t and parse_caption(t)["shapes"] == {"circle"} for t in a)


def test_what_expansion_leaves_alone():
    e = BuiltinExpander()
    assert e.expand("", 0) == ("", "builtin")  # the unconditional prompt
    text, source = e.expand("a cat sleeping on a sofa", 0)
    assert text == "a cat sleeping on a sofa" and "no world vocabulary" in source
    full = ("One object on a white background. A large red ball starts in the middle left and moves to the "
            "right at a moderate speed. The camera stays still.")
    assert e.expand(full, 3) == (full, "builtin (complete: kept as given)")
    assert expand_prompt("a red ball", 0, False) == ("a red ball", None)
    assert expand_prompt("a red ball", 0, lambda p, s: p.upper()) == ("A RED BALL", "<lambda>")


class StandIn(http.server.BaseHTTPRequestHandler):
    """Stand-in for an OpenAI-compatible chat endpoint (no model): behaviour set per test via ``server.mode``."""

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append({"path": self.path, "body": body, "auth": self.headers.get("Authorization")})
        mode = self.server.mode
        if mode == "slow":
            time.sleep(2)
        if mode == "error":
            self.send_response(500)
            self.end_headers()
            return
        reply = {"choices": [{"message": {"role": "assistant", "content": "  \"One object on a gray background. A "
                                          "small red ball starts in the centre and rests motionless. The camera "
                                          "stays still.\"  "}}]}
        data = b"not json" if mode == "garbage" else json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@pytest.fixture
def server():
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StandIn)
    srv.requests, srv.mode = [], "ok"
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


def test_chat_enhancer_request_and_answer(server):
    url = f"http://127.0.0.1:{server.server_port}/v1"
    text, source = ChatEnhancer(url, "tiny-llm", api_key="sk-test").expand("a red ball", seed=7)
    assert text.startswith("One object on a gray background.") and not text.endswith('"')
    assert source == "chat:tiny-llm"
    req = server.requests[0]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer sk-test"
    assert req["body"]["model"] == "tiny-llm" and req["body"]["seed"] == 7
    assert req["body"]["messages"][0]["role"] == "system" and req["body"]["messages"][1]["content"] == "a red ball"


@pytest.mark.parametrize("mode, reason", [("error", "HTTP 500"), ("garbage", "unexpected answer"),
                                          ("slow", "cannot reach it")])
def test_chat_enhancer_falls_back_with_a_warning(server, mode, reason):
    server.mode = mode
    enh = ChatEnhancer(f"http://127.0.0.1:{server.server_port}/v1", "tiny-llm", timeout=0.5)
    with pytest.warns(EnhancerFallbackWarning, match="using the built-in expander"):
        text, source = enh.expand("a red ball", seed=1)
    assert text == BuiltinExpander().expand("a red ball", 1)[0]
    assert source.startswith("builtin (enhancer failed: ") and reason in source


def test_unreachable_enhancer_and_bad_url():
    from tenku.errors import TenkuError

    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        text, source = ChatEnhancer(f"http://127.0.0.1:{port}", "m", timeout=2).expand("a blue box", 0)
    assert "blue" in text and "cannot reach it" in source and caught
    with pytest.raises(TenkuError, match="must be an http"):
        ChatEnhancer("127.0.0.1:8000", "m")


def test_pipeline_expands_before_text_encoding_and_records_both(tmp_path, server):
    from tenku.cli import main
    from tenku.pipeline import TenkuPipeline
    from tenku.testing import make_tiny_pipeline

    model = make_tiny_pipeline(tmp_path / "tiny")
    pipe = TenkuPipeline.from_pretrained(model)
    encoded = []
    real = pipe.text_encoder.encode
    pipe.text_encoder.encode = lambda prompts: (encoded.append(list(prompts)), real(prompts))[1]
    out = pipe("a red ball", seed=4, num_steps=1, progress=False)
    expected = BuiltinExpander().expand("a red ball", 4)[0]
    assert encoded[-1] == [expected, ""]  # cond and uncond halves
    m = out.metadata
    assert m["prompt"] == "a red ball" and m["expanded_prompt"] == expected and m["expander"] == "builtin"
    out = pipe("a red ball", seed=4, num_steps=1, progress=False, expand=False, negative_prompt="blur")
    assert encoded[-1] == ["a red ball", "blur"] and out.metadata["expanded_prompt"] == "a red ball"
    assert out.metadata["expander"] is None
    # the CLI flag reaches the chat endpoint (the stand-in) and prints what it made
    import contextlib
    import io

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main(["generate", "a red ball", "-o", str(tmp_path / "x.png"), "--model", str(model), "--steps", "1",
                   "--seed", "2", "--enhancer", f"http://127.0.0.1:{server.server_port}/v1", "--enhancer-model",
                   "tiny-llm", "--no-progress"])
    assert rc == 0 and "expanded prompt (chat:tiny-llm): One object on a gray background." in buf.getvalue()
    assert server.requests[-1]["body"]["messages"][1]["content"] == "a red ball"
