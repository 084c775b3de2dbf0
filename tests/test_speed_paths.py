"""Optional speed paths give the plain path's outputs.

Tolerances: the text-context cache reorders no arithmetic, so it must match exactly (0); torch.compile
(dynamo tracing, eager backend here: inductor's C++ build takes minutes on 2 cores) within 1e-6;
channels_last_3d convolutions sum in a different order, so within 1e-4 on outputs in [-1, 1].
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tenku.models.dit import DiT, compile_dit
from tenku.testing import TINY_DIT, make_tiny_models, make_tiny_pipeline


def _inputs(text_encoder):
    g = torch.Generator().manual_seed(0)
    shapes = [(4, 3, 4, 4), (4, 5, 2, 4), (4, 3, 4, 4)]  # two sizes: two attention groups
    x = [torch.randn(*s, generator=g) for s in shapes]
    t = torch.tensor([0.9, 0.4, 0.1])
    emb, mask = text_encoder.encode(["a red ball rolls right", "", "a blue square falls quickly"])
    clean = [None, torch.tensor([True, True, False, False, False]), None]
    return x, t, emb, mask, clean


def _maxdiff(a: list[torch.Tensor], b: list[torch.Tensor]) -> float:
    return max(float((p - q).abs().max()) for p, q in zip(a, b, strict=True))


def test_text_context_matches_plain_forward():
    _, dit, text = make_tiny_models(0)
    x, t, emb, mask, clean = _inputs(text)
    assert not bool(mask.all())  # padded prompts: the key mask is exercised
    with torch.no_grad():
        plain = dit(x, t, emb, mask, clean=clean)
        tc = dit.encode_text(emb, mask)
        assert len(tc.kv) == len(dit.blocks)
        cached = dit(x, t, emb, mask, clean=clean, text_context=tc)
        # a context made from other tensors is not used: the result follows the text actually passed
        other = dit.encode_text(emb.flip(0), mask.flip(0))
        guarded = dit(x, t, emb, mask, clean=clean, text_context=other)
        wrong = dit(x, t, other.text, other.text_mask, clean=clean, text_context=other)
    assert _maxdiff(plain, cached) == 0.0
    assert _maxdiff(plain, guarded) == 0.0
    assert _maxdiff(plain, wrong) > 1e-3  # the check can fail: different text, different output


def test_pipeline_runs_text_work_once_per_generation(tmp_path):
    from tenku.pipeline import TenkuPipeline

    pipe = TenkuPipeline.from_pretrained(make_tiny_pipeline(tmp_path / "m"))
    calls = {"encode": 0, "text_proj": 0}
    orig_encode = pipe.text_encoder.encode

    def counting_encode(prompts):
        calls["encode"] += 1
        return orig_encode(prompts)

    pipe.text_encoder.encode = counting_encode
    pipe.transformer.text_proj.register_forward_hook(lambda *a: calls.__setitem__("text_proj", calls["text_proj"] + 1))
    steps = 4
    fast = pipe("a red ball rolls right", seed=3, num_steps=steps, progress=False)
    assert calls == {"encode": 1, "text_proj": 1}
    pipe.cache_text = False
    plain = pipe("a red ball rolls right", seed=3, num_steps=steps, progress=False)
    assert calls == {"encode": 2, "text_proj": 1 + steps}  # uncached: the projection runs every step
    assert np.array_equal(fast.frames, plain.frames)
    assert torch.equal(fast.latents, plain.latents)


@pytest.mark.slow
def test_compiled_dit_matches_eager():
    _, dit, text = make_tiny_models(0)
    x, t, emb, mask, clean = _inputs(text)
    keys = list(dit.state_dict())
    with torch.no_grad():
        ref = dit(x, t, emb, mask, clean=clean)
        compile_dit(dit, backend="eager")
        out = dit(x, t, emb, mask, clean=clean)
    assert list(dit.state_dict()) == keys  # checkpoints load either way
    assert _maxdiff(ref, out) <= 1e-6
    fresh = DiT(TINY_DIT)  # a different model gives different output: the comparison can fail
    with torch.no_grad():
        assert _maxdiff(ref, fresh(x, t, emb, mask, clean=clean)) > 1e-3


def test_vae_channels_last_matches_contiguous():
    vae, _, _ = make_tiny_models(0)
    g = torch.Generator().manual_seed(1)
    video = torch.rand(1, 3, 9, 32, 32, generator=g) * 2 - 1
    with torch.no_grad():
        z = vae.encode(video)
        rec = vae.decode(z, chunk_size=1)
        vae_cl = vae.to(memory_format=torch.channels_last_3d)
        z_cl = vae_cl.encode(video.contiguous(memory_format=torch.channels_last_3d))
        rec_cl = vae_cl.decode(z_cl.contiguous(memory_format=torch.channels_last_3d), chunk_size=1)
    assert z_cl.shape == z.shape and rec_cl.shape == rec.shape == video.shape
    assert float((z - z_cl).abs().max()) <= 1e-4
    assert float((rec - rec_cl).abs().max()) <= 1e-4
    assert float((rec - video).abs().max()) > 1e-2  # random weights do not reconstruct: outputs are not trivial
