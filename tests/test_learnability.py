"""Learnability: the real DiT and text encoder, trained briefly on four tiny world clips that differ in
one attribute each (background white / black, ball red / blue), each with its world captions in many
phrasings, must generate what each caption says. The recipe of the shipped model (byte tokens, the
token-count timestep rule) must not; neither does the shipped model pass the sensitivity check.

The clips are 32x32 single frames rendered by the world; the DiT works on their pixels directly
(3 channels, patches of 4x4: 64 tokens), so no VAE stands between the text and the check. Training
uses the real objective (``DiTObjective``: the configured timestep distribution, the flow loss) with
10% empty captions; sampling is Euler with guidance through ``cfg_denoiser`` on the configured shift.
The background is judged by the frame's median brightness, the colour by the eval's object parser;
the sensitivity check of :mod:`tenku.eval.sensitivity` runs on the trained toy as well.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tenku.config import DiTConfig, FlowConfig, TextEncoderConfig
from tenku.eval.sensitivity import TEMPLATE, dominant_color, sensitivity
from tenku.flow import cfg_denoiser, compute_shift, sample_euler, shifted_schedule
from tenku.models.dit import DiT
from tenku.models.text import ByteTextEncoder
from tenku.world.vocabulary import world_vocabulary
from tenku.train.buckets import sample_generator
from tenku.train.objectives import DiTObjective
from tenku.world.clip import render_clip
from tenku.world.spec import BACKGROUNDS, ObjectSpec, SceneSpec

SIZE = 32
RADIUS = 16.0  # world units (8 px at 32x32): the ball covers a fifth of the frame, so its colour carries loss
BACKGROUND_NAMES = ("white", "black")
COLOR_NAMES = ("red", "blue")
NEW_FLOW = FlowConfig(shift=3.0, tail_prob=0.2, tail_start=0.95)
OLD_FLOW = FlowConfig(base_shift=1.0, shift_ref_tokens=256)  # the shipped model's flow.json


def caption(color: str, background: str) -> str:
    return TEMPLATE.format(color=color, background=background)


def toy_clips(phrasings: int = 6) -> list[tuple[list[str], torch.Tensor]]:
    """(captions, pixels (3, 1, 32, 32) in [-1, 1]): a large ball at the centre for every colour x
    background, each with its world captions (short, medium, long) in ``phrasings`` phrasings. Short
    captions name no background and long ones add position and camera words, as in the world data."""
    from tenku.world.captions import make_captions

    out = []
    for bg in BACKGROUND_NAMES:
        for color in COLOR_NAMES:
            obj = ObjectSpec(shape="circle", color=color, size="large", radius=RADIUS, x=32.0, y=32.0)
            spec = SceneSpec(scenario="linear", width=SIZE, height=SIZE, fps=8.0, seconds=0.125,
                             background=bg, objects=(obj,))
            frames, gt, _ = render_clip(spec)  # (2, 32, 32, 3) uint8: keep the first frame
            caps = sorted({c for k in range(phrasings) for c in make_captions(spec, gt, k).values()})
            pixels = torch.from_numpy(frames[:1].copy()).permute(3, 0, 1, 2).float() / 127.5 - 1.0
            out.append((caps, pixels))
    return out


def _caption(caps: list[str], g: torch.Generator) -> str:
    """One of ``caps`` at random, or the empty prompt (10%: the unconditional side of guidance)."""
    return "" if torch.rand((), generator=g).item() < 0.1 else caps[int(torch.randint(len(caps), (1,), generator=g))]


def train_toy(tokenizer: str, flow: FlowConfig, steps: int = 600, seed: int = 0, batch: int = 8, lr: float = 1e-3,
              width: int = 128, depth: int = 3, phrasings: int = 6):
    """Train a DiT (+ text encoder) on :func:`toy_clips`. Returns ``generate(prompt, seed) -> frames``."""
    torch.manual_seed(seed)
    vocab = dict(tokenizer="words", vocab=world_vocabulary()) if tokenizer == "words" else {}
    text = ByteTextEncoder(TextEncoderConfig(dim=64, depth=1, num_heads=2, mlp_ratio=2.0, max_length=96, **vocab))
    dit = DiT(DiTConfig(in_channels=3, patch_size=(1, 4, 4), hidden_size=width, depth=depth, num_heads=2,
                        mlp_ratio=2.0, text_dim=64))
    objective = DiTObjective(dit, text, flow, dit.cfg.patch_size)
    opt = torch.optim.AdamW(objective.parameters(), lr=lr, weight_decay=0.0)
    # cosine decay to zero: the last weights settle instead of carrying the last batches' noise
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda k: 0.5 * (1.0 + math.cos(math.pi * k / steps)))
    clips = toy_clips(phrasings)
    for step in range(steps):
        gens = [sample_generator(seed, step, j) for j in range(batch)]
        items = [clips[int(torch.randint(len(clips), (1,), generator=g))] for g in gens]
        prompts = [_caption(caps, g) for (caps, _), g in zip(items, gens)]
        loss, _ = objective([x for _, x in items], prompts, gens, cond_prob=0.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    objective.eval()

    @torch.no_grad()
    def generate(prompt: str, sample_seed: int, guidance: float = 3.0, num_steps: int = 16) -> np.ndarray:
        emb, mask = text.encode([prompt, ""])

        def model(x, t, cond):
            e, m = cond
            return torch.stack(dit(list(x.unbind(0)), t, e, m))

        denoise = cfg_denoiser(model, (emb[:1], mask[:1]), (emb[1:], mask[1:]), guidance)
        g = torch.Generator().manual_seed(sample_seed)
        noise = torch.randn(1, 3, 1, SIZE, SIZE, generator=g)
        ts = shifted_schedule(num_steps, compute_shift(64, flow)).float()
        x = sample_euler(denoise, noise, ts)[0]  # (3, 1, 32, 32)
        frames = ((x.clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 3, 0)  # (1, 32, 32, 3)
        return frames.numpy()

    return generate


def judge(generate, seeds=(0, 1, 2)) -> dict:
    """Per caption and seed: the background read by median brightness (nearer the asked floor than the
    other one) and the colour read by the parser. Returns the share right of each, and the failures."""
    levels = {b: float(np.mean(BACKGROUNDS[b]["rgb"])) for b in BACKGROUND_NAMES}
    bg_right = col_right = n = 0
    failures = []
    for bg in BACKGROUND_NAMES:
        for color in COLOR_NAMES:
            for s in seeds:
                frames = generate(caption(color, bg), s)
                med = float(np.median(frames))
                got_bg = min(levels, key=lambda k: abs(levels[k] - med))
                got_col = dominant_color(frames)
                bg_right += got_bg == bg
                col_right += got_col == color
                n += 1
                if got_bg != bg or got_col != color:
                    failures.append((color, bg, s, round(med, 1), got_col))
    return {"background": bg_right / n, "color": col_right / n, "failures": failures}


STEPS = 900


@pytest.fixture(scope="module")
def threads():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def new_recipe(threads):
    return train_toy("words", NEW_FLOW, steps=STEPS, width=128, depth=3)


@pytest.mark.slow
def test_word_tokens_and_the_noise_tail_follow_each_caption(new_recipe):
    t0 = time.perf_counter()
    got = judge(new_recipe)
    # every caption x 3 seeds: the asked background and the asked colour (12 of 12 each)
    assert got["background"] == 1.0 and got["color"] == 1.0, got["failures"]
    assert time.perf_counter() - t0 < 60


@pytest.mark.slow
def test_sensitivity_check_passes_on_the_trained_toy(new_recipe):
    out = sensitivity(new_recipe, seeds=(0, 1), backgrounds=BACKGROUND_NAMES, background_color="red",
                      colors=COLOR_NAMES, color_background="black")
    assert out["passed"], out
    assert all(r["matched"] == [True, True] for r in out["color"]["seeds"])


@pytest.mark.slow
def test_the_shipped_recipe_does_not_follow_the_background(threads):
    # byte tokens and the token-count timestep rule (shift 1 at 64 tokens, P(t > 0.95) = 0.16%), same
    # model, data and steps: the background comes from the noise, not the caption
    old = train_toy("bytes", OLD_FLOW, steps=STEPS, width=128, depth=3)
    got = judge(old)
    assert got["background"] <= 0.75, got
    out = sensitivity(old, seeds=(0, 1), background_color="red", colors=COLOR_NAMES, color_background="black")
    assert not out["background"]["passed"] and not out["passed"], out


SHIPPED = Path(__file__).resolve().parents[1] / "src" / "tenku" / "assets" / "tenku-world-tiny"


@pytest.mark.slow
def test_sensitivity_check_passes_on_the_shipped_model(threads):
    # the model shipped before this one failed both parts (measured 2026-12-02, seeds 0 and 1: white vs
    # black moved mean brightness by 14.4 and 0.5 of 255; red vs blue parsed as green vs orange, then as
    # no object); the one shipped 2026-12-03 (6550 steps) measured gaps 164 and 162 and parses red and blue
    # on both seeds
    from tenku.eval.sensitivity import pipeline_sensitivity

    out = pipeline_sensitivity(SHIPPED, seeds=(0, 1))
    assert out["passed"] and out["background"]["passed"] and out["color"]["passed"], out


def test_one_step_probe_sees_the_caption_in_the_shipped_model(threads):
    # the model's clean estimate from pure noise (t = 1) under "white" vs "black background": the current
    # model shipped 2026-12-02 measured a gap of 128 of 255 (seeds 0, 1); the one before it 0.8, at every t < 1
    from tenku.eval.sensitivity import one_step_gaps
    from tenku.pipeline.pipeline import TenkuPipeline

    gaps = one_step_gaps(TenkuPipeline.from_pretrained(SHIPPED), ts=(0.95, 1.0), seeds=(0, 1))["brightness_gap"]
    assert gaps["1"] > 60 and gaps["0.95"] > 60, gaps
