"""Rectified flow: schedules, shift, loss, samplers, guidance (pure functions, tiny tensors)."""

import math

import pytest
import torch

from tenku.config import FlowConfig
from tenku.flow import (
    SAMPLERS,
    add_noise,
    cfg_denoiser,
    compute_shift,
    concat_conditions,
    flow_matching_loss,
    logit_normal_timesteps,
    sample_euler,
    sample_heun,
    shift_timesteps,
    shifted_schedule,
    timestep_tail_mass,
    training_timesteps,
    truncate_schedule,
)


def exact_denoiser(x0):
    """The true velocity toward a known target: on the straight path x_t = (1-t) x0 + t n, v = (x_t - x0)/t."""

    def denoise(x, t):
        return (x - x0) / t.view(-1, *[1] * (x.ndim - 1))

    return denoise


@pytest.mark.parametrize("name", ["euler", "heun"])
def test_sampler_recovers_target_with_exact_velocity(name):
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 3, 2, 4, 4, generator=g)
    noise = torch.randn(2, 3, 2, 4, 4, generator=g)
    ts = shifted_schedule(5, shift=3.0)
    out = SAMPLERS[name](exact_denoiser(x0), noise.clone(), ts)
    assert torch.allclose(out, x0, atol=1e-5)
    # a wrong velocity field does not land on the target (the check can fail)
    wrong = SAMPLERS[name](exact_denoiser(x0 + 0.5), noise.clone(), ts)
    assert (wrong - x0).abs().mean() > 0.4


def mixture_denoiser(x, t):
    """Exact velocity for data x0 in {-1, +1} (equal weights) and Gaussian noise: a curved field."""
    tt = t.view(-1, *[1] * (x.ndim - 1)).clamp(min=1e-4)
    logp = torch.stack([-((x - (1 - tt) * a) ** 2) / (2 * tt**2) for a in (-1.0, 1.0)])
    w = torch.softmax(logp, dim=0)
    ex0 = -w[0] + w[1]
    return (x - ex0) / tt


def test_heun_is_more_accurate_than_euler_on_a_curved_field():
    x = torch.randn(256, generator=torch.Generator().manual_seed(1))
    ref = sample_euler(mixture_denoiser, x.clone(), shifted_schedule(400))
    assert (ref.abs() - 1).abs().max() < 1e-2  # fine integration lands on the data points
    ts = shifted_schedule(4)
    err_euler = (sample_euler(mixture_denoiser, x.clone(), ts) - ref).abs().mean()
    err_heun = (sample_heun(mixture_denoiser, x.clone(), ts) - ref).abs().mean()
    assert err_heun < 0.5 * err_euler


def test_callback_gets_every_step_and_clean_frames_are_held():
    x0 = torch.randn(1, 2, 3, 2, 2)
    x_clean = torch.full_like(x0, 7.0)
    mask = torch.tensor([[True, False, False]])  # first latent frame given
    seen = []
    out = sample_heun(exact_denoiser(x0), torch.randn_like(x0), shifted_schedule(3), callback=seen.append,
                      clean_mask=mask, x_clean=x_clean)
    assert [d["i"] for d in seen] == [0, 1, 2] and all(d["total"] == 3 for d in seen)
    assert set(seen[0]) >= {"i", "t", "x", "v", "total"}
    assert torch.equal(out[:, :, 0], x_clean[:, :, 0])
    assert torch.allclose(out[:, :, 1:], x0[:, :, 1:], atol=1e-5)
    with pytest.raises(ValueError, match="x_clean"):
        sample_euler(exact_denoiser(x0), x0, shifted_schedule(2), clean_mask=mask)


def test_guidance_one_is_exactly_no_guidance_and_others_batch_both_halves():
    calls = []

    def model(x, t, cond):
        calls.append(x.shape[0])
        emb, mask = cond
        s = (emb * mask[..., None]).sum(dim=(1, 2))  # (B,)
        return x * t.view(-1, 1) + s.view(-1, 1)

    x = torch.randn(2, 5)
    t = torch.full((2,), 0.5)
    cond = (torch.randn(2, 4, 3), torch.ones(2, 4, dtype=torch.bool))
    uncond = (torch.randn(2, 2, 3), torch.ones(2, 2, dtype=torch.bool))  # shorter: padded when batched
    plain = model(x, t, cond)
    calls.clear()
    g1 = cfg_denoiser(model, cond, uncond, 1.0)(x, t)
    assert torch.equal(g1, plain) and calls == [2]  # no unconditional pass
    calls.clear()
    g3 = cfg_denoiser(model, cond, uncond, 3.0)(x, t)
    assert calls == [4]  # one call with both halves
    v_u = model(x, t, uncond)
    assert torch.allclose(g3, v_u + 3.0 * (plain - v_u), atol=1e-5)
    assert not torch.allclose(g3, plain)


def test_concat_conditions_pads_sequences():
    a = (torch.ones(1, 3, 2), torch.ones(1, 3, dtype=torch.bool))
    b = (torch.ones(1, 1, 2), torch.ones(1, 1, dtype=torch.bool))
    emb, mask = concat_conditions(a, b)
    assert emb.shape == (2, 3, 2) and mask.tolist() == [[True, True, True], [True, False, False]]
    assert emb[1, 1:].abs().sum() == 0


def test_shift_grows_with_tokens_and_is_clamped():
    cfg = FlowConfig(base_shift=1.0, shift_ref_tokens=256, max_shift=6.0)
    shifts = [compute_shift(n, cfg) for n in (64, 256, 1024, 4096, 10**6)]
    assert shifts[0] == 1.0 and shifts[1] == 1.0  # clamped below at 1
    assert shifts[2] == pytest.approx(2.0) and shifts[3] == pytest.approx(4.0)
    assert shifts[4] == 6.0
    assert all(a <= b for a, b in zip(shifts, shifts[1:]))
    t = torch.linspace(0, 1, 11, dtype=torch.float64)
    assert torch.equal(shift_timesteps(t, 1.0), t)
    s = shift_timesteps(t, 3.0)
    assert s[0] == 0 and s[-1] == 1 and (s[1:-1] > t[1:-1]).all()  # toward noise
    ts = shifted_schedule(8, 3.0)
    assert len(ts) == 9 and ts[0] == 1 and ts[-1] == 0 and (ts[1:] < ts[:-1]).all()


def test_truncate_schedule():
    ts = shifted_schedule(10)
    assert torch.equal(truncate_schedule(ts, 1.0), ts)
    tail = truncate_schedule(ts, 0.5)
    assert tail[0] <= 0.5 and tail[-1] == 0 and len(tail) == 6
    assert len(truncate_schedule(ts, 0.01)) == 2


def test_logit_normal_timesteps():
    g = torch.Generator().manual_seed(0)
    t = logit_normal_timesteps(10_000, 0.0, 1.0, generator=g)
    assert t.shape == (10_000,) and (t > 0).all() and (t < 1).all()
    assert abs(float(t.median()) - 0.5) < 0.02
    extreme = logit_normal_timesteps(1000, 0.0, 40.0, generator=g)  # saturating sigmoid stays inside
    assert (extreme > 0).all() and (extreme < 1).all()
    shifted = logit_normal_timesteps(10_000, 1.0, 1.0, generator=g)
    assert float(shifted.median()) > 0.7


def test_flow_matching_loss():
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(2, 3, 4, 2, 2, generator=g)
    noise = torch.randn(2, 3, 4, 2, 2, generator=g)
    v = noise - x0
    assert flow_matching_loss(v, x0, noise) == 0
    assert flow_matching_loss(v + 1, x0, noise) == pytest.approx(1.0)
    # errors only in clean frames cost nothing
    bad = v.clone()
    bad[:, :, 0] += 5
    clean = [torch.tensor([True, False, False, False])] * 2
    assert flow_matching_loss(bad, x0, noise, clean=clean) == 0
    assert flow_matching_loss(bad, x0, noise) > 1
    # per-sample weights, on a packed list of different sizes
    preds = [v[0], v[1, :, :2] + 2]
    tgt_x0, tgt_n = [x0[0], x0[1, :, :2]], [noise[0], noise[1, :, :2]]
    assert flow_matching_loss(preds, tgt_x0, tgt_n) == pytest.approx(2.0)  # mean of 0 and 4
    assert flow_matching_loss(preds, tgt_x0, tgt_n, weight=torch.tensor([1.0, 3.0])) == pytest.approx(3.0)
    # noising keeps clean frames exact
    xt = add_noise(x0, noise, torch.tensor([0.3, 1.0]), clean=clean)
    assert torch.equal(xt[1][:, 0], x0[1][:, 0]) and torch.equal(xt[1][:, 1:], noise[1][:, 1:])
    assert torch.allclose(xt[0][:, 1:], 0.7 * x0[0][:, 1:] + 0.3 * noise[0][:, 1:])


def test_a_batch_of_one_shape_noises_and_scores_like_its_samples_one_by_one():
    """The batched path (every sample of one shape; the default on a GPU, asked for here) gives each
    sample's noising and the loss that the samples give one at a time, with clean frames, an all-clean
    sample, position weights on some samples and sample weights."""
    g = torch.Generator().manual_seed(3)
    B = 4
    x0 = [torch.randn(3, 4, 2, 2, generator=g) for _ in range(B)]
    noise = [torch.randn(3, 4, 2, 2, generator=g) for _ in range(B)]
    pred = [torch.randn(3, 4, 2, 2, generator=g) for _ in range(B)]
    t = torch.tensor([0.1, 0.5, 0.9, 1.0])
    clean = [None, torch.tensor([True, False, False, False]), torch.tensor([True] * 4), torch.tensor([False] * 4)]
    positions = [torch.rand(4, 2, 2, generator=g) + 0.5, None, torch.rand(4, 2, 2, generator=g), None]
    weight = torch.tensor([1.0, 2.0, 3.0, 0.5])
    batched = add_noise(x0, noise, t, clean=clean, batched=True)
    assert torch.allclose(torch.stack(batched), torch.stack(add_noise(x0, noise, t, clean=clean)), atol=1e-6)
    for i in range(B):
        one = add_noise([x0[i]], [noise[i]], t[i:i + 1], clean=[clean[i]], batched=False)[0]
        assert torch.allclose(batched[i], one, atol=1e-6)
    losses = [float(flow_matching_loss([pred[i]], [x0[i]], [noise[i]], clean=[clean[i]], positions=[positions[i]]))
              for i in range(B)]
    kept = [0, 1, 3]  # sample 2 is all clean: it carries no loss
    want = sum(float(weight[i]) * losses[i] for i in kept) / sum(float(weight[i]) for i in kept)
    got = float(flow_matching_loss(pred, x0, noise, weight=weight, clean=clean, positions=positions, batched=True))
    assert got == pytest.approx(want, rel=1e-5)
    assert float(flow_matching_loss(pred, x0, noise, batched=True)) == pytest.approx(sum(
        float(flow_matching_loss([p], [a], [n])) for p, a, n in zip(pred, x0, noise)) / B, rel=1e-5)
    with pytest.raises(ValueError, match="position weights"):
        flow_matching_loss(pred, x0, noise, positions=[torch.ones(4, 2, 3)] * B, batched=True)


# ---- the training timestep distribution ---------------------------------------------------------
# Empirical shares of N draws are compared with the exact probabilities within 5 binomial standard
# deviations (sqrt(p (1 - p) / N)) plus 1e-4: a wrong shift or tail share is off by far more.


def _within(emp: float, p: float, n: int) -> bool:
    return abs(emp - p) <= 5 * (p * (1 - p) / n) ** 0.5 + 1e-4


def test_old_config_draws_exactly_what_it_always_drew():
    cfg = FlowConfig(base_shift=1.0, shift_ref_tokens=256)  # the shipped model's flow.json
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    old = shift_timesteps(logit_normal_timesteps(64, 0.0, 1.0, generator=g1), compute_shift(80, cfg))
    assert torch.equal(training_timesteps(64, 80, cfg, generator=g2), old)
    assert torch.equal(torch.randn(4, generator=g1), torch.randn(4, generator=g2))  # same stream after


def test_tail_mass_of_the_shipped_schedule():
    # 80 tokens: compute_shift clamps to 1, so P(t > 0.95) = Q(logit 0.95) = 0.16% and P(t > 0.98) = 0.005%
    cfg = FlowConfig(base_shift=1.0, shift_ref_tokens=256)
    assert timestep_tail_mass(0.95, 80, cfg) == pytest.approx(0.00162, abs=2e-5)
    assert timestep_tail_mass(0.98, 80, cfg) == pytest.approx(4.97e-5, abs=2e-7)


@pytest.mark.parametrize("shift,tail_prob,tail_start,uniform", [(3.0, 0.0, 0.95, 0.0), (3.0, 0.2, 0.95, 0.0),
                                                                (1.0, 0.3, 0.9, 0.0), (6.0, 0.1, 0.98, 0.0),
                                                                (3.0, 0.2, 0.95, 0.2), (3.0, 0.0, 0.95, 0.5)])
def test_training_timesteps_match_their_exact_distribution(shift, tail_prob, tail_start, uniform):
    cfg = FlowConfig(shift=shift, tail_prob=tail_prob, tail_start=tail_start, uniform_prob=uniform)
    n = 200_000
    t = training_timesteps(n, 80, cfg, generator=torch.Generator().manual_seed(0))
    assert t.shape == (n,) and t.dtype == torch.float32 and (t > 0).all() and (t < 1).all()
    for a in (0.1, 0.3, 0.5, 0.8, 0.9, 0.95, 0.98, 0.995):
        assert _within(float((t > a).double().mean()), timestep_tail_mass(a, 80, cfg), n), a
    # the fixed shift does not depend on the token count
    assert timestep_tail_mass(0.95, 80, cfg) == timestep_tail_mass(0.95, 100_000, cfg)


def test_tail_puts_the_configured_mass_near_pure_noise():
    cfg = FlowConfig(shift=3.0, tail_prob=0.2, tail_start=0.95)
    p = timestep_tail_mass(0.95, 80, cfg)
    # 0.8 x P(shift-3 logit-normal > 0.95) + 0.2 = 0.8 x 0.0324 + 0.2
    assert p == pytest.approx(0.8 * 0.5 * math.erfc(1.8458 / math.sqrt(2)) + 0.2, abs=1e-4)
    assert p > 100 * timestep_tail_mass(0.95, 80, FlowConfig())
    # shift 3 keeps some low timesteps: P(t < 0.3) = 2.1%, four times shift 6 alone (0.4%), which starved them
    low = 1 - timestep_tail_mass(0.3, 80, cfg)
    assert low == pytest.approx(0.0207, abs=5e-4)
    assert low > 4 * (1 - timestep_tail_mass(0.3, 80, FlowConfig(shift=6.0)))


def test_uniform_share_trains_near_clean_latents_and_keeps_earlier_draws():
    old = FlowConfig(shift=3.0, tail_prob=0.2, tail_start=0.95)
    new = old.replace(uniform_prob=0.2)
    # P(t < 0.3): 2.1% with the shift and the tail alone, 7.6% with a fifth of the draws uniform
    assert 1 - timestep_tail_mass(0.3, 80, new) == pytest.approx(0.6 * 0.0259 + 0.2 * 0.3, abs=5e-4)
    assert timestep_tail_mass(0.95, 80, new) > 0.2  # the tail near pure noise is kept
    # without a uniform share the draws are those made before the field existed (normal, pick, tail)
    g = torch.Generator().manual_seed(5)
    base = shift_timesteps(logit_normal_timesteps(64, 0.0, 1.0, generator=g), 3.0)
    pick = torch.rand(64, generator=g) < 0.2
    tail = 0.95 + 0.05 * torch.rand(64, generator=g)
    assert torch.equal(training_timesteps(64, 80, old, generator=torch.Generator().manual_seed(5)),
                       torch.where(pick, tail.clamp(max=1.0 - 1e-6), base))
    with pytest.raises(ValueError, match="uniform_prob"):
        training_timesteps(4, 80, old.replace(uniform_prob=0.9))


def test_fixed_shift_reaches_the_sampling_schedule():
    assert compute_shift(80, FlowConfig(shift=3.0)) == 3.0
    assert compute_shift(80, FlowConfig()) == 1.0
    ts = shifted_schedule(16, compute_shift(80, FlowConfig(shift=3.0)))
    assert float(ts[1]) == pytest.approx(3 * 0.9375 / (1 + 2 * 0.9375))  # the first step stops at 0.978


@pytest.mark.parametrize("bad", [dict(tail_prob=-0.1), dict(tail_prob=1.5), dict(tail_start=1.0),
                                 dict(shift=-1.0)])
def test_bad_flow_configs_are_refused(bad):
    with pytest.raises(ValueError):
        training_timesteps(4, 80, FlowConfig(**bad))
