"""Spacetime-patch DiT: shapes, packing == one-by-one, adaLN-Zero identity, clean-frame modulation,
RoPE on unseen sizes, text masking, checkpointing, accounting, bad input.

Tolerance for packed vs alone: atol 1e-5 in float32 (measured ~2e-7). The zero-initialised parts are
perturbed first (``_perturbed``) wherever a check would otherwise pass trivially.
"""

import pytest
import torch

import tenku.models.dit as dit_mod
from tenku.config import PRESETS, DiTConfig
from tenku.errors import UnsupportedSizeError
from tenku.models.dit import DiT, DiTBlock
from tenku.models.layers import apply_rope, rope_freqs_3d

ATOL = 1e-5
TINY = PRESETS["tiny-test"]["dit"]  # C=4, patch 1x2x2, hidden 32, depth 2, heads 2, text 32


def _perturbed(cfg: DiTConfig = TINY, seed: int = 0) -> DiT:
    torch.manual_seed(seed)
    model = DiT(cfg).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    return model


def _text(b: int, length: int = 6, dim: int = 32, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(b, length, dim, generator=g)
    mask = torch.ones(b, length, dtype=torch.bool)
    for i in range(b):
        mask[i, length - 1 - (i % 3) :] = False  # different padding per sample
    return text, mask


def _latents(shapes, c: int = 4, seed: int = 2):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(c, *s, generator=g) for s in shapes]


SHAPES = [(1, 2, 2), (3, 6, 10), (5, 10, 6), (1, 4, 4), (2, 6, 10), (3, 10, 6), (5, 8, 8)]


@pytest.mark.parametrize("shared", [False, True])
def test_shapes_any_size(shared):
    model = _perturbed(TINY.replace(shared_adaln=shared))
    xs = _latents(SHAPES)
    text, mask = _text(len(xs))
    with torch.no_grad():
        out = model(xs, torch.rand(len(xs)), text, mask)
    assert [o.shape for o in out] == [x.shape for x in xs]
    assert all(torch.isfinite(o).all() for o in out)
    # a plain (B, C, T, H, W) tensor is accepted as a batch of equal sizes
    with torch.no_grad():
        out5 = model(torch.stack(xs[1:2] * 2), torch.rand(2), *(_text(2)))
    assert len(out5) == 2 and out5[0].shape == xs[1].shape


def test_patch_size_3d():
    cfg = TINY.replace(patch_size=(2, 2, 2))
    model = _perturbed(cfg)
    xs = _latents([(2, 4, 6), (4, 2, 2)])
    with torch.no_grad():
        out = model(xs, torch.rand(2), *_text(2))
    assert [o.shape for o in out] == [x.shape for x in xs]
    with pytest.raises(UnsupportedSizeError, match="does not divide"):
        model(_latents([(3, 4, 4)]), torch.rand(1), *_text(1))


def test_bad_input_is_clear_error():
    model = DiT(TINY)
    text, mask = _text(1)
    with pytest.raises(UnsupportedSizeError, match="does not divide"):
        model(_latents([(2, 5, 4)]), torch.rand(1), text, mask)
    with pytest.raises(UnsupportedSizeError, match="C=4"):
        model(_latents([(2, 4, 4)], c=3), torch.rand(1), text, mask)
    with pytest.raises(UnsupportedSizeError, match="batch mismatch"):
        model(_latents([(2, 4, 4)] * 2), torch.rand(2), text, mask)
    with pytest.raises(UnsupportedSizeError, match="text width"):
        model(_latents([(2, 4, 4)]), torch.rand(1), torch.zeros(1, 6, 8), mask)
    with pytest.raises(UnsupportedSizeError, match="clean\\[0\\]"):
        model(_latents([(2, 4, 4)]), torch.rand(1), text, mask, clean=[torch.zeros(3, dtype=torch.bool)])


def _run_alone(model, xs, t, text, mask, clean=None):
    outs = []
    for i in range(len(xs)):
        c = None if clean is None else [clean[i]]
        outs.append(model([xs[i]], t[i : i + 1], text[i : i + 1], mask[i : i + 1], c)[0])
    return outs


def test_packed_equals_alone():
    model = _perturbed()
    # (3,6,10) and (3,10,6) have equal token counts: they share one SDPA call
    xs = _latents(SHAPES)
    t = torch.rand(len(xs))
    text, mask = _text(len(xs))
    clean = [torch.arange(x.shape[1]) == 0 for x in xs]
    with torch.no_grad():
        packed = model(xs, t, text, mask, clean)
        alone = _run_alone(model, xs, t, text, mask, clean)
    for p, a in zip(packed, alone):
        assert torch.allclose(p, a, atol=ATOL), (p - a).abs().max()


def test_packed_check_catches_cross_sample_attention(monkeypatch):
    """The packed-vs-alone comparison fails if self-attention leaks across samples."""
    model = _perturbed()
    xs = _latents([(3, 6, 10), (3, 10, 6), (1, 4, 4)])
    t = torch.rand(3)
    text, mask = _text(1)
    text, mask = text.expand(3, -1, -1), mask.expand(3, -1)  # same text: only self-attention can leak
    with torch.no_grad():
        alone = _run_alone(model, xs, t, text, mask)
    orig_init = dit_mod.Packed.__init__

    def leaky_init(self, *a, **k):
        orig_init(self, *a, **k)
        self.groups = [(0, self.total, [self.order[0]])]  # one attention call over every token

    monkeypatch.setattr(dit_mod.Packed, "__init__", leaky_init)
    with torch.no_grad():
        leaky = model(xs, t, text, mask)
    assert max((p - a).abs().max().item() for p, a in zip(leaky, alone)) > 1e-3


def test_fresh_blocks_are_identity_and_output_zero():
    torch.manual_seed(0)
    seen = []

    def hook(mod, args, out):
        seen.append((args[0].clone(), out.clone()))

    for perturb, expect_identity in ((False, True), (True, False)):
        model = _perturbed() if perturb else DiT(TINY)
        handles = [b.register_forward_hook(hook) for b in model.blocks]
        seen.clear()
        with torch.no_grad():
            out = model(_latents([(3, 4, 6)]), torch.rand(1), *_text(1))
        for h in handles:
            h.remove()
        assert len(seen) == TINY.depth
        same = all(torch.equal(i, o) for i, o in seen)
        assert same == expect_identity
        if expect_identity:
            assert torch.equal(out[0], torch.zeros_like(out[0]))


def _capture_modulation(monkeypatch):
    captured = []
    orig = DiTBlock.modulation

    def spy(self, cond, pk):
        mods = orig(self, cond, pk)
        d = mods[0].shape[-1]
        per_token = torch.cat([m.expand(*pk.view, d).reshape(-1, d) for m in mods], dim=1)  # (N, 6D)
        captured.append((per_token.detach().clone(), pk))
        return mods

    monkeypatch.setattr(DiTBlock, "modulation", spy)
    return captured


@pytest.mark.parametrize("shared,mixed", [(False, False), (True, False), (False, True)])
def test_clean_frames_use_t0_modulation(monkeypatch, shared, mixed):
    """``mixed``: a second sample of another size forces the per-token (not per-frame) layout."""
    model = _perturbed(TINY.replace(shared_adaln=shared))
    captured = _capture_modulation(monkeypatch)
    x = _latents([(3, 4, 4), (2, 6, 6)] if mixed else [(3, 4, 4)])  # sample 0: 3 latent frames x 4 tokens
    b = len(x)
    text, mask = _text(b)
    clean = [torch.tensor([True, False, True]), torch.tensor([False, True])][:b]
    mods = []
    for t in (0.3, 0.8):
        captured.clear()
        with torch.no_grad():
            model(x, torch.full((b,), t), text, mask, clean)
        mods.append(captured[0][0][:12])  # sample 0 has the fewest tokens: it is packed first
    frame_of_token = torch.arange(12) // 4
    clean_tok = clean[0][frame_of_token]
    diff = (mods[0] - mods[1]).abs().amax(dim=1)  # (12,)
    assert (diff[clean_tok] == 0).all()  # clean tokens: t = 0 regardless of the sample's t
    assert (diff[~clean_tok] > 1e-4).all()  # noisy tokens follow t
    # and a clean token's modulation is exactly the one of a sample at t = 0
    captured.clear()
    with torch.no_grad():
        model(x, torch.zeros(b), text, mask)
    assert torch.allclose(captured[0][0][:12][clean_tok], mods[0][clean_tok])


def test_all_clean_sample_ignores_t():
    model = _perturbed()
    x = _latents([(2, 4, 4)])
    text, mask = _text(1)
    clean = [torch.ones(2, dtype=torch.bool)]
    with torch.no_grad():
        a = model(x, torch.tensor([0.2]), text, mask, clean)[0]
        b = model(x, torch.tensor([0.9]), text, mask, clean)[0]
        c = model(x, torch.tensor([0.9]), text, mask)[0]
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-4


def test_rope_relative_and_unseen_sizes():
    axes = (8, 4, 4)
    g = torch.Generator().manual_seed(0)
    q = torch.randn(1, 1, 16, generator=g)
    k = torch.randn(1, 1, 16, generator=g)
    cis = rope_freqs_3d((40, 50, 60), axes, 10000.0, torch.device("cpu"))

    def idx(t, h, w):
        return (t * 50 + h) * 60 + w

    def score(a, b):
        qa = apply_rope(q, cis[a : a + 1])
        kb = apply_rope(k, cis[b : b + 1])
        return (qa * kb).sum().item()

    s0 = score(idx(1, 2, 3), idx(2, 5, 1))
    s1 = score(idx(31, 42, 53), idx(32, 45, 51))  # same offset far outside any training grid
    s2 = score(idx(1, 2, 3), idx(2, 5, 2))  # different offset
    assert abs(s0 - s1) < 1e-4 and abs(s0 - s2) > 1e-3
    # the model uses positions on an unseen, odd-aspect grid: without positions, attention is
    # permutation-equivariant, so model(flip(x)) == flip(model(x)); RoPE breaks that
    model = _perturbed()
    x = _latents([(9, 14, 30)])[0]
    args = (torch.tensor([0.4]), *_text(1))
    with torch.no_grad():
        out = model([x], *args)[0]
        out_flip = _flip_patches(model([_flip_patches(x)], *args)[0])
    assert torch.isfinite(out).all()
    assert (out - out_flip).abs().max() > 1e-3


def _flip_patches(x: torch.Tensor, pw: int = 2) -> torch.Tensor:
    """Reverse the order of patch columns, keeping each 2-wide patch intact (a token permutation)."""
    c, t, h, w = x.shape
    return x.reshape(c, t, h, w // pw, pw).flip(3).reshape(c, t, h, w)


def test_flip_check_can_fail_without_rope(monkeypatch):
    monkeypatch.setattr(dit_mod, "apply_rope", lambda x, cis: x)
    model = _perturbed()
    x = _latents([(3, 6, 10)])[0]
    args = (torch.tensor([0.4]), *_text(1))
    with torch.no_grad():
        out = model([x], *args)[0]
        out_flip = _flip_patches(model([_flip_patches(x)], *args)[0])
    assert torch.allclose(out, out_flip, atol=ATOL)


def test_text_mask_is_respected():
    model = _perturbed()
    x = _latents([(2, 4, 4)])
    text, mask = _text(1)  # last position is padding
    with torch.no_grad():
        ref = model(x, torch.tensor([0.5]), text, mask)[0]
        t2 = text.clone()
        t2[0, -1] += 5.0  # padded token changes: no effect
        assert torch.equal(model(x, torch.tensor([0.5]), t2, mask)[0], ref)
        t3 = text.clone()
        t3[0, 0] += 5.0  # real token changes: effect
        assert (model(x, torch.tensor([0.5]), t3, mask)[0] - ref).abs().max() > 1e-4
        empty = model(x, torch.tensor([0.5]), text, torch.zeros_like(mask))[0]  # empty prompt
    assert torch.isfinite(empty).all()


def test_grad_checkpointing_same_gradients():
    xs = _latents([(2, 4, 4), (1, 2, 6)])
    t = torch.rand(2)
    text, mask = _text(2)
    grads = []
    for ckpt in (False, True):
        model = _perturbed(TINY.replace(grad_checkpointing=ckpt)).train()
        loss = sum(o.pow(2).sum() for o in model(xs, t, text, mask))
        loss.backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    assert torch.allclose(grads[0], grads[1], atol=1e-5)
    assert grads[0].abs().max() > 0


def test_accounting_helpers():
    model = DiT(TINY)
    n = model.num_params()
    assert n == sum(p.numel() for p in model.parameters())
    f = model.flops_per_token(seq_len=64, text_len=8)
    assert f > 6 * 0.5 * n  # the blocks dominate: about 6 * params per token for training
    assert model.flops_per_token(seq_len=128, text_len=8) > f
    assert DiT(TINY.replace(depth=4)).flops_per_token(64, 8) > f
    assert 0 < model.estimate_mfu(1e5, 64, 8, 1e12) < 1


def test_world_tiny_preset_size():
    model = DiT(PRESETS["world-tiny"]["dit"])
    assert 4e6 < model.num_params() < 8e6
