"""Optional speed paths give the plain path's outputs.

Tolerances: the text-context cache reorders no arithmetic, so it must match exactly (0); torch.compile
(dynamo tracing, eager backend here: inductor's C++ build takes minutes on 2 cores) within 1e-6;
channels_last_3d convolutions sum in a different order, so within 1e-4 on outputs in [-1, 1]. The real-valued
RoPE table gives the complex rotation's values within 1e-6 (one float32 rounding of a*cos - b*sin); the
equal-size batch path (one patchify copy, text rows sliced, no cross-attention mask when nothing is padded)
matches each sample run alone within 1e-5 (measured ~2e-7, as packed vs alone in tests/test_dit.py). Padded
prompts: the key mask made once per prompt as an additive bias gives the boolean mask's attention exactly (0), and
inference cutting each sample's keys to its own text length (no mask) matches the masked path within 1e-5
(a shorter softmax sum rounds differently; measured ~1e-6).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tenku.models.dit import DiT, compile_dit
from tenku.models.layers import apply_rope, rope_freqs_3d, rope_table_3d
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


def test_real_rope_table_matches_complex_rotation():
    axes = (24, 20, 20)  # the automatic split of a 64-wide head
    cis = rope_freqs_3d((5, 8, 8), axes, 10000.0, torch.device("cpu"))  # (320, 32) complex
    table = rope_table_3d((5, 8, 8), axes, 10000.0, torch.device("cpu"))  # (320, 2, 64)
    assert table.shape == (320, 2, 64) and table.dtype == torch.float32
    assert torch.equal(table[:, 0, 0::2], cis.real) and torch.equal(table[:, 0, 1::2], cis.real)
    assert torch.equal(table[:, 1, 0::2], -cis.imag) and torch.equal(table[:, 1, 1::2], cis.imag)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(320, 4, 64, generator=g)
    assert float((apply_rope(x, table) - apply_rope(x, cis)).abs().max()) <= 1e-6
    assert apply_rope(x.bfloat16(), table).dtype == torch.bfloat16
    # the comparison can fail: another grid's table rotates the same tokens differently
    other = rope_table_3d((5, 8, 9), axes, 10000.0, torch.device("cpu"))[:320]
    assert float((apply_rope(x, other) - apply_rope(x, cis)).abs().max()) > 1e-3


def _alone(dit, x, t, emb, mask, clean):
    return [dit([xi], t[i : i + 1], emb[i : i + 1], mask[i : i + 1], clean=None if clean is None else [clean[i]])[0]
            for i, xi in enumerate(x)]


@pytest.mark.parametrize("layout", ["equal", "mixed"])
def test_batch_fast_paths_match_each_sample_alone(layout):
    """``equal``: one grid, unpadded text (batched patchify, text rows sliced, no cross-attention mask),
    checked against each sample alone with its text padded (the masked path). ``mixed``: two sizes, the
    larger group's samples not consecutive (text rows gathered by index)."""
    _, dit, text = make_tiny_models(0)
    x, t, emb, mask, clean = _inputs(text)
    if layout == "equal":
        g = torch.Generator().manual_seed(5)
        x = [torch.randn(4, 3, 4, 4, generator=g) for _ in range(3)]
        clean[1] = torch.tensor([True, False, False])
        emb, mask = emb[:, :4], torch.ones(3, 4, dtype=torch.bool)  # nothing padded
        pad = torch.randn(3, 2, emb.shape[-1], generator=g)  # the alone runs get two padded positions
        emb_alone = torch.cat([emb, pad], dim=1)
        mask_alone = torch.cat([mask, torch.zeros(3, 2, dtype=torch.bool)], dim=1)
    else:
        emb_alone, mask_alone = emb, mask
    with torch.no_grad():
        batched = dit(x, t, emb, mask, clean=clean)
        alone = _alone(dit, x, t, emb_alone, mask_alone, clean)
        swapped = dit(x, t, emb.flip(0), mask.flip(0), clean=clean)
    assert [b.shape for b in batched] == [xi.shape for xi in x]
    assert _maxdiff(batched, alone) <= 1e-5
    assert _maxdiff(batched, swapped) > 1e-3  # each sample must see its own text: the check can fail


def _block_graph_dtypes(dit, inputs) -> tuple[int, set]:
    """Trace block 0 with torch.compile (a backend that records the captured graphs and runs them eagerly):
    (number of graphs, dtypes of every tensor in them)."""
    captured, graphs, dtypes = {}, [], set()
    block = dit.blocks[0]
    hook = block.register_forward_pre_hook(lambda mod, args: captured.setdefault("args", args))
    with torch.no_grad():
        dit(*inputs[:4], clean=inputs[4])
    hook.remove()

    def record(gm, example_inputs):
        graphs.append(gm)
        for node in gm.graph.nodes:
            val = node.meta.get("example_value")
            if isinstance(val, torch.Tensor):
                dtypes.add(val.dtype)
        return gm.forward

    torch._dynamo.reset()
    with torch.no_grad():
        torch.compile(block, backend=record, fullgraph=True)(*captured["args"])
    torch._dynamo.reset()
    return len(graphs), dtypes


@pytest.mark.slow
def test_dit_block_traces_to_one_real_valued_graph():
    """A whole block is one graph with real tensors only: inductor generates code for all of it (it does not
    generate code for complex tensors, so the complex RoPE multiply ran eagerly between kernels)."""
    _, dit, text = make_tiny_models(0)
    inputs = _inputs(text)
    n_graphs, dtypes = _block_graph_dtypes(dit, inputs)
    assert n_graphs == 1 and dtypes and not any(d.is_complex for d in dtypes), dtypes
    # the check can fail: the complex table (still accepted by apply_rope) puts complex tensors in the graph
    dit._rope = lambda grids, device: torch.cat(
        [rope_freqs_3d(g, dit.rope_axes, dit.cfg.rope_theta, device) for g in grids])
    _, dtypes_complex = _block_graph_dtypes(dit, inputs)
    assert any(d.is_complex for d in dtypes_complex)


def test_padded_text_inference_cuts_keys_to_each_prompt():
    """A CFG-like batch (a prompt and the empty negative prompt, padded to one length): inference attends to
    each sample's own text positions only (runs of equal text length, no mask), training keeps one masked call;
    both give the masked attention's outputs. The key mask is an additive bias made once per prompt."""
    import dataclasses

    import torch.nn.functional as F

    _, dit, text = make_tiny_models(0)
    g = torch.Generator().manual_seed(2)
    x = [torch.randn(4, 3, 4, 4, generator=g) for _ in range(4)]
    t = torch.tensor([0.7, 0.7, 0.3, 0.3])
    emb, mask = text.encode(["a red ball rolls right", "", "a blue square falls", ""])
    with torch.no_grad():
        tc = dit.encode_text(emb, mask)
    lens = tuple(int(n) + 1 for n in mask.sum(1))  # the null token is always visible
    assert tc.text_lens == lens and len(set(lens)) > 1
    assert tc.attn_bias.shape == (4, 1, 1, emb.shape[1] + 1)
    assert torch.equal(tc.attn_bias[:, 0, 0] == 0, tc.ctx_mask)  # 0 where visible, -inf on padding
    # the bias gives the boolean mask's attention exactly
    q = torch.randn(4, 2, 5, 8, generator=g)
    k, v = (torch.randn(4, 2, emb.shape[1] + 1, 8, generator=g) for _ in range(2))
    assert torch.equal(F.scaled_dot_product_attention(q, k, v, attn_mask=tc.attn_bias),
                       F.scaled_dot_product_attention(q, k, v, attn_mask=tc.ctx_mask[:, None, None, :]))
    sdpa_calls = []
    orig = F.scaled_dot_product_attention

    def counting(*a, **kw):
        sdpa_calls.append(kw.get("attn_mask") is not None)
        return orig(*a, **kw)

    masked_tc = dataclasses.replace(tc, text_lens=None)  # the masked path: one call per group
    with torch.no_grad():
        F.scaled_dot_product_attention = counting
        try:
            cut = dit(x, t, emb, mask, text_context=tc)
            cut_calls = list(sdpa_calls)  # per block: self-attention, then cross-attention
            sdpa_calls.clear()
            masked = dit(x, t, emb, mask, text_context=masked_tc)
            masked_calls = list(sdpa_calls)
        finally:
            F.scaled_dot_product_attention = orig
        wrong = dit(x, t, emb, mask, text_context=dataclasses.replace(tc, text_lens=tuple(n - 1 for n in lens)))
    n = len(dit.blocks)
    assert len(cut_calls) == n * (1 + 4) and not any(cut_calls)  # cross: 4 runs of one text length, no mask
    assert len(masked_calls) == n * (1 + 1) and sum(masked_calls) == n  # cross: one masked call
    assert _maxdiff(cut, masked) <= 1e-5
    assert _maxdiff(cut, wrong) > 1e-4  # keys cut one position short differ: the check can fail
    # with gradients (training) the masked single call is kept, and gives the same outputs
    out = dit(x, t, emb, mask)
    assert out[0].requires_grad and _maxdiff([o.detach() for o in out], masked) <= 1e-6
    # a mask with a hole is not a prefix: no cut, the bias alone
    hole = mask.clone()
    hole[0, 1] = False
    with torch.no_grad():
        assert dit.encode_text(emb, hole).text_lens is None
        assert dit.encode_text(emb[:1], mask[:1]).attn_bias is None  # nothing padded: no mask at all
