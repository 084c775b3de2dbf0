"""Training loop: bucketed batches, corrupt clips, stop-and-resume, latent caching, DiT on latents.

Real mp4 shards (written with ShardWriter, decoded with PyAV), real tiny VAE / DiT / text encoder,
real checkpoints on disk. Tiny configs: every run here takes a few seconds on one CPU thread.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from tenku.errors import TenkuError

TINY_VAE = dict(latent_channels=4, base_channels=8, channel_mult=(1, 2), num_res_blocks=1,
                spatial_factor=2, temporal_factor=2)


def moving_square(T: int, H: int, W: int, color, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    frames = np.full((T, H, W, 3), 30, np.uint8)
    x, y = rng.integers(0, W - 4), rng.integers(0, H - 4)
    for t in range(T):
        xx = (x + 2 * t) % (W - 4)
        frames[t, y:y + 4, xx:xx + 4] = color
    return frames


def write_shards(root: Path, sizes=((9, 16, 16), (5, 16, 32), (9, 16, 16), (5, 16, 32)), per_size: int = 2,
                 split: str = "train") -> Path:
    """A shard folder of real mp4 clips with mixed (T, H, W) and three caption levels."""
    from tenku.data.shards import ShardWriter, write_dataset_info

    colors = {"red": (220, 30, 30), "blue": (30, 30, 220), "green": (30, 200, 30)}
    n = 0
    with ShardWriter(root, 0) as w:
        for (T, H, W) in sizes:
            for _ in range(per_size):
                name = list(colors)[n % 3]
                w.add(moving_square(T, H, W, colors[name], n), 8,
                      captions={"short": f"a {name} square", "medium": f"a {name} square moves right",
                                "long": f"There is one object. A {name} square moves to the right."},
                      split=split)
                n += 1
    write_dataset_info(root, kind="test")
    return root


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> Path:
    return write_shards(tmp_path_factory.mktemp("shards"))


@pytest.fixture(scope="module")
def tiny_vae_dir(tmp_path_factory) -> Path:
    from tenku.config import VAEConfig
    from tenku.models.hub import save_pretrained
    from tenku.models.vae import CausalVAE

    torch.manual_seed(0)
    cfg = VAEConfig(**TINY_VAE)
    d = tmp_path_factory.mktemp("vae") / "vae"
    save_pretrained(CausalVAE(cfg), cfg, d)
    return d


def cfg_for(kind: str, **kw):
    from tenku.train.presets import resolve_config

    return resolve_config(kind, "tiny", overrides=kw)


# ---- batches -------------------------------------------------------------------------------------
def test_bucket_batches_mix_shapes_and_resume_in_order():
    from tenku.train.buckets import BucketBatchSampler

    keys = [(9, 16, 16)] * 5 + [(5, 16, 32)] * 3 + [(1, 32, 32)] * 2
    s = BucketBatchSampler(keys, batch_size=2, seed=3)
    seen = [s.next_batch() for _ in range(12)]
    for b in seen:
        assert len(b) == 2 and len({keys[i] for i in b}) == 1  # one shape per batch
    assert len({keys[b[0]] for b in seen}) == 3  # all buckets appear
    # the first epoch covers every sample
    assert set(sum(seen[:len(s)], [])) == set(range(10))
    # resume: a fresh sampler at the saved position continues identically
    s2 = BucketBatchSampler(keys, batch_size=2, seed=3)
    for _ in range(4):
        s2.next_batch()
    state = s2.state_dict()
    s3 = BucketBatchSampler(keys, batch_size=2, seed=3)
    s3.load_state_dict(state)
    assert [s3.next_batch() for _ in range(8)] == seen[4:12]
    # another seed gives another order
    s4 = BucketBatchSampler(keys, batch_size=2, seed=4)
    assert [s4.next_batch() for _ in range(12)] != seen


def test_local_slices_partition_the_global_batch():
    from tenku.train.buckets import BucketBatchSampler, check_divisible

    batch = list(range(100, 112))
    parts = [BucketBatchSampler.local_slice(batch, m, 3, r, 2) for m in range(3) for r in range(2)]
    flat = [j for p in parts for j, _ in p]
    assert sorted(flat) == list(range(12))
    with pytest.raises(TenkuError, match="divisible"):
        check_divisible(10, 3, 2)


def test_config_overrides_and_bad_values():
    from tenku.train.presets import resolve_config

    cfg = resolve_config("dit", "tiny", sets=["dit.depth=3", "lr=0.002", "caption_levels=[\"short\"]"])
    assert cfg.dit["depth"] == 3 and cfg.lr == 0.002 and cfg.caption_levels == ("short",)
    with pytest.raises(TenkuError, match="unknown TrainConfig field"):
        resolve_config("vae", "tiny", sets=["not_a_field=1"])
    with pytest.raises(TenkuError, match="has no field"):
        resolve_config("vae", "tiny", sets=["dit.nope=1"])
    with pytest.raises(TenkuError, match="unknown preset"):
        resolve_config("vae", "huge")
    with pytest.raises(TenkuError, match="expected a number"):
        resolve_config("vae", "tiny", sets=["lr=fast"])


def test_vae_pixel_weights_favour_coloured_and_moving_pixels():
    from tenku.config import VAEConfig
    from tenku.models.vae import CausalVAE
    from tenku.train.objectives import VAEObjective

    video = torch.full((1, 3, 5, 8, 8), -0.2)  # a grey floor
    video[0, :, :, 2:4, 2:4] = torch.tensor([0.9, -0.9, -0.9])[:, None, None, None]  # a static red square
    for t in range(5):
        video[0, :, t, 6, t:t + 2] = 0.5  # a grey bar that moves
    vae = CausalVAE(VAEConfig(**TINY_VAE))
    plain = VAEObjective(vae, 1, 1, 0, 0)
    assert plain.pixel_weights(video) is None
    w = VAEObjective(vae, 1, 1, 0, 0, color=4.0, motion=4.0).pixel_weights(video)[0, 0]  # (T, H, W)
    assert abs(float(w.mean()) - 1.0) < 1e-5
    assert float(w[0, 2, 2]) > 5 * float(w[0, 0, 0])  # coloured
    assert float(w[0, 6, 0]) > 2 * float(w[0, 0, 0])  # moving
    # the objective weights the error where the weights say: an error on the square costs more than one on the floor
    obj = VAEObjective(vae, 1, 0, 0, 0, color=4.0)
    err_sq, err_bg = torch.zeros_like(video), torch.zeros_like(video)
    err_sq[0, :, :, 2, 2] = 0.5
    err_bg[0, :, :, 0, 0] = 0.5
    l1 = lambda e: float((obj.pixel_weights(video) * e.abs()).mean())
    assert l1(err_sq) > 5 * l1(err_bg)


def test_resume_accepts_a_run_made_before_a_setting_existed():
    from tenku.train.loop import _check_resume_config
    from tenku.train.presets import resolve_config

    cfg = resolve_config("vae", "tiny")
    stored = cfg.to_dict()
    del stored["color_weight"]  # a checkpoint written before the field was added
    _check_resume_config(stored, cfg)
    with pytest.raises(TenkuError, match="color_weight"):
        _check_resume_config(stored, resolve_config("vae", "tiny", sets=["color_weight=2"]))


def test_lr_schedule_warms_up_then_decays():
    from tenku.train.loop import lr_at

    cfg = cfg_for("vae", steps=100, lr=1.0).replace(warmup_steps=10, min_lr_ratio=0.1)
    lrs = [lr_at(s, cfg) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[-1] == pytest.approx(0.1, abs=0.01)



def test_time_limit_fits_the_schedule_to_the_measured_pace(shards, tmp_path):
    """``--time-limit``: the pace of the first steps sets ``steps`` (so the cosine decay still ends at
    ``lr * min_lr_ratio``), never beyond the configured length, and the run's steps end within the limit."""
    from tenku.train.checkpoint import load_checkpoint
    from tenku.train.loop import fit_steps, lr_at, train

    assert fit_steps(10, 9, 2.0, 1.8, 20.0, 10_000) == 10 + int(18.0 / 0.2)  # 0.2 s a step, 18 s left
    assert fit_steps(10, 9, 2.0, 1.8, 20.0, 50) == 50  # the configured length caps it
    assert fit_steps(10, 9, 30.0, 1.8, 20.0, 10_000) == 11  # over time already: one more step, then stop
    limit = 4.0
    cfg = cfg_for("vae", steps=100_000, batch_size=2).replace(warmup_steps=5, ckpt_every=100_000)
    out = train("vae", cfg, shards, tmp_path / "run", progress=False, finish=False, time_limit=limit)
    assert 11 <= out["step"] == out["steps"] < 100_000
    assert out["wall_s_this_run"] < 1.5 * limit + 1.0  # the pace of a loaded machine varies: stated slack
    state = load_checkpoint(out["checkpoint"])
    assert state["config"]["steps"] == out["step"]  # the fitted length is stored, so the run resumes alike
    final = cfg.replace(steps=out["step"])
    assert lr_at(out["step"], final) == pytest.approx(cfg.lr * cfg.min_lr_ratio, rel=1e-6)  # decayed in full
    assert lr_at(out["step"] // 2, final) > 2 * cfg.lr * cfg.min_lr_ratio
    with pytest.raises(TenkuError, match="time-limit"):
        train("vae", cfg, shards, tmp_path / "bad", progress=False, finish=False, time_limit=0)

def test_caption_choice_and_conditioning_tasks():
    from tenku.train.objectives import choose_caption, sample_clean_mask

    caps = {"short": "s", "medium": "m", "long": "l"}
    got = [choose_caption(torch.Generator().manual_seed(i), caps, ("short", "medium", "long"), 0.2)
           for i in range(300)]
    counts = {k: got.count(k) for k in ("", "s", "m", "l")}
    assert 30 <= counts[""] <= 90 and min(counts["s"], counts["m"], counts["l"]) > 50
    tasks = {}
    for i in range(400):
        clean, task = sample_clean_mask(torch.Generator().manual_seed(i), 5, 0.5)
        tasks[task] = tasks.get(task, 0) + 1
        assert not clean.all()  # something is always left to generate
        if task == "image_to_video":
            assert clean.tolist() == [True, False, False, False, False]
        if task == "extend_backward":
            assert clean[-1] and not clean[0]
        if task == "connect":
            assert clean[0] and clean[-1] and not clean.all()
        if task == "generate":
            assert not clean.any()
    assert set(tasks) == {"generate", "image_to_video", "extend_forward", "extend_backward", "connect"}
    assert 140 <= tasks["generate"] <= 260


# ---- runs ----------------------------------------------------------------------------------------
def test_corrupt_and_truncated_clips_are_skipped_counted_and_reported(tmp_path):
    from tenku.train.loop import train

    data = write_shards(tmp_path / "data", sizes=((9, 16, 16),), per_size=6)
    recs = [json.loads(line) for line in (data / "shard-00000.jsonl").read_text().splitlines()]
    (data / recs[1]["video"]).write_bytes(b"this is not an mp4 file" * 10)  # corrupt
    good = (data / recs[2]["video"]).read_bytes()
    (data / recs[2]["video"]).write_bytes(good[: len(good) // 3])  # truncated
    out = tmp_path / "run"
    cfg = cfg_for("vae", steps=4, batch_size=3).replace(crop_frames=0, crop_size=0, ckpt_every=4)
    summary = train("vae", cfg, data, out, progress=False, finish=False)
    assert summary["step"] == 4  # the run went on
    assert summary["skipped"] == 2
    assert sorted(summary["skipped_ids"]) == sorted([recs[1]["id"], recs[2]["id"]])
    log = (out / "train.log").read_text()
    assert recs[1]["id"] in log and recs[2]["id"] in log and "skipped" in log
    metrics = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["skipped"] == 2.0 and all(np.isfinite(m["loss"]) for m in metrics)


def test_all_clips_bad_is_a_clear_error(tmp_path):
    from tenku.train.loop import train

    data = write_shards(tmp_path / "data", sizes=((5, 16, 16),), per_size=2)
    for rec in (json.loads(line) for line in (data / "shard-00000.jsonl").read_text().splitlines()):
        (data / rec["video"]).write_bytes(b"")
    with pytest.raises(TenkuError, match="unreadable"):
        train("vae", cfg_for("vae", steps=1, batch_size=2), data, tmp_path / "run", progress=False, finish=False)


def test_vae_stop_and_resume_equals_uninterrupted(shards, tmp_path):
    from tenku.train.checkpoint import list_checkpoints, load_checkpoint
    from tenku.train.loop import train

    cfg = cfg_for("vae", steps=5, batch_size=2).replace(ckpt_every=2, keep_last=2)
    full = train("vae", cfg, shards, tmp_path / "full", progress=False, finish=False)
    part = train("vae", cfg, shards, tmp_path / "part", stop_at=3, progress=False, finish=False)
    assert part["step"] == 3
    with pytest.raises(TenkuError, match="--resume"):
        train("vae", cfg, shards, tmp_path / "part", progress=False, finish=False)
    rest = train("vae", cfg, shards, tmp_path / "part", resume=True, progress=False, finish=False)
    assert rest["step"] == 5 and full["step"] == 5
    assert [s for s, _ in list_checkpoints(tmp_path / "part")] == [4, 5]  # keep_last=2
    a = load_checkpoint(list_checkpoints(tmp_path / "full")[-1][1])
    b = load_checkpoint(list_checkpoints(tmp_path / "part")[-1][1])
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k  # bitwise equal on CPU
    for k in a["ema"]["shadow"]:
        assert torch.equal(a["ema"]["shadow"][k], b["ema"]["shadow"][k]), k
    # a different seed would not have given the same weights (the comparison can fail)
    other = train("vae", cfg.replace(seed=1), shards, tmp_path / "other", progress=False, finish=False)
    c = load_checkpoint(other["checkpoint"])
    assert any(not torch.equal(a["model"][k], c["model"][k]) for k in a["model"])
    # resuming with changed settings is refused
    with pytest.raises(TenkuError, match="different settings"):
        train("vae", cfg.replace(lr=0.5), shards, tmp_path / "part", resume=True, progress=False, finish=False)


def test_cache_latents_cli_then_dit_resume_and_export(shards, tiny_vae_dir, tmp_path):
    from tenku.train.checkpoint import latest_checkpoint, load_checkpoint
    from tenku.train.loop import train

    lat = tmp_path / "latents"
    r = subprocess.run([sys.executable, "-m", "tenku", "data", "cache-latents", "--vae", str(tiny_vae_dir),
                        "--data", str(shards), "--out", str(lat), "--no-progress"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    info = json.loads(r.stdout.strip().splitlines()[-1])
    assert info["latents"] == 8 and info["skipped"] == 0
    recs = [json.loads(x) for x in (lat / "latents-00000.jsonl").read_text().splitlines()]
    assert {tuple(x["shape"]) for x in recs} == {(4, 5, 8, 8), (4, 3, 8, 16)}  # two buckets kept apart

    cfg = cfg_for("dit", steps=4, batch_size=2).replace(ckpt_every=2, cond_prob=0.5)
    full = train("dit", cfg, lat, tmp_path / "full", progress=False, finish=False)
    train("dit", cfg, lat, tmp_path / "part", stop_at=2, progress=False, finish=False)
    rest = train("dit", cfg, lat, tmp_path / "part", resume=True, progress=False, finish=False)
    assert full["step"] == rest["step"] == 4
    a = load_checkpoint(latest_checkpoint(tmp_path / "full"))
    b = load_checkpoint(latest_checkpoint(tmp_path / "part"))
    assert a["vae_path"] == str(tiny_vae_dir.resolve())
    assert any(k.startswith("text_encoder.") for k in a["model"])  # the text encoder trains too
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    # the cache read per sample from its file (not kept in memory) trains the same weights
    streamed = train("dit", cfg.replace(latents_in_memory=False), lat, tmp_path / "streamed", progress=False,
                     finish=False)
    s = load_checkpoint(streamed["checkpoint"])["model"]
    assert all(torch.equal(a["model"][k], s[k]) for k in a["model"])
    # a damaged cache file: its samples are unreadable, a clear error in either mode, nothing half-done
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(lat, broken)
    (broken / "latents-00000.safetensors").write_bytes(b"not a safetensors file")
    for in_memory in (True, False):
        with pytest.raises(TenkuError, match="unreadable"):
            train("dit", cfg.replace(latents_in_memory=in_memory), broken, tmp_path / f"broken-{in_memory}",
                  progress=False, finish=False)

    # export the run as a pipeline folder and generate from it
    r = subprocess.run([sys.executable, "-m", "tenku", "train", "export", str(tmp_path / "full"),
                        "--out", str(tmp_path / "pipe"), "--fp16"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    from tenku.pipeline.pipeline import TenkuPipeline

    pipe = TenkuPipeline.from_pretrained(tmp_path / "pipe")
    out = pipe("a red square", num_frames=5, height=16, width=16, num_steps=2, seed=0, progress=False)
    assert out.frames.shape == (5, 16, 16, 3) and out.frames.dtype == np.uint8

    # fine-tune that pipeline folder (--init takes one for a DiT run): it starts from the folder's weights
    # (moved here by +0.5, so a fresh start or the run's own checkpoint cannot pass) and takes one small step
    from safetensors.torch import load_file, save_file

    for comp in ("transformer", "text_encoder"):
        f = tmp_path / "pipe" / comp / "model.safetensors"
        save_file({k: v + 0.5 for k, v in load_file(f).items()}, f)
    moved = TenkuPipeline.from_pretrained(tmp_path / "pipe")
    tune = train("dit", cfg.replace(lr=1e-4), lat, tmp_path / "tune", init=tmp_path / "pipe", stop_at=1,
                 progress=False, finish=False)
    c = load_checkpoint(tune["checkpoint"])["model"]
    for prefix, module in (("dit.", moved.transformer), ("text_encoder.", moved.text_encoder)):
        for k, v in module.state_dict().items():
            assert (c[prefix + k] - v.float()).abs().max() < 0.01, prefix + k
    assert json.loads((tmp_path / "tune" / "init.json").read_text())["init"] == str((tmp_path / "pipe").resolve())

    r = subprocess.run([sys.executable, "-m", "tenku", "train", "export", str(tmp_path / "nope"),
                        "--out", str(tmp_path / "x")], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "holds no checkpoints" in r.stderr and "Traceback" not in r.stderr


def test_dit_on_clips_needs_a_vae(shards, tmp_path):
    from tenku.train.loop import train

    with pytest.raises(TenkuError, match="--vae"):
        train("dit", cfg_for("dit"), shards, tmp_path / "run", progress=False, finish=False)


def test_init_from_another_run_starts_fresh_from_its_weights(shards, tmp_path):
    from tenku.train.checkpoint import load_checkpoint
    from tenku.train.loop import train

    cfg = cfg_for("vae", steps=2, batch_size=2)
    first = train("vae", cfg, shards, tmp_path / "a", progress=False, finish=False)
    b = train("vae", cfg.replace(lr=5e-4), shards, tmp_path / "b", init=tmp_path / "a", stop_at=1,
              progress=False, finish=False)
    assert b["step"] == 1
    assert json.loads((tmp_path / "b" / "init.json").read_text())["step"] == 2
    a_state, b_state = load_checkpoint(first["checkpoint"]), load_checkpoint(b["checkpoint"])
    # one step away from the first run's EMA weights: close to them, far from a fresh start
    k = "vae.encoder.conv_in.conv.weight" if "vae.encoder.conv_in.conv.weight" in a_state["model"] else \
        next(iter(a_state["model"]))
    diff = (b_state["model"][k] - a_state["ema"]["shadow"][k]).abs().max()
    assert diff < 0.05
    with pytest.raises(TenkuError, match="no checkpoint"):
        train("vae", cfg, shards, tmp_path / "c", init=tmp_path / "empty", progress=False, finish=False)


def test_decoder_only_fine_tune_keeps_the_encoder_and_exports_it(shards, tmp_path):
    """train_encoder=False: the encoder (so the latent space a DiT was trained on) stays bit for bit, the
    decoder moves, and the exported VAE carries the initial encoder, not a fresh one."""
    from tenku.models.hub import load_component
    from tenku.train.checkpoint import load_checkpoint
    from tenku.train.loop import train

    cfg = cfg_for("vae", steps=2, batch_size=2)
    first = train("vae", cfg, shards, tmp_path / "a", progress=False, finish=False)
    start = load_checkpoint(first["checkpoint"])
    init = {**start["model"], **start["ema"]["shadow"]}
    tuned = train("vae", cfg.replace(train_encoder=False, lr=1e-3), shards, tmp_path / "b", init=tmp_path / "a",
                  progress=False, finish=True)
    state = load_checkpoint(tuned["checkpoint"])
    enc = [k for k in init if k.startswith("vae.encoder.")]
    dec = [k for k in init if k.startswith("vae.decoder.") and k.endswith("weight")]
    assert enc and dec
    assert all(torch.equal(state["model"][k], init[k]) and torch.equal(state["ema"]["shadow"][k], init[k]) for k in enc)
    assert any(not torch.equal(state["model"][k], init[k]) for k in dec)  # the decoder did train
    vae = load_component(tmp_path / "b" / "export" / "vae", torch.device("cpu"))
    exported = vae.state_dict()
    assert all(torch.equal(exported[k.removeprefix("vae.")], init[k]) for k in enc)
    full = train("vae", cfg.replace(lr=1e-3), shards, tmp_path / "c", init=tmp_path / "a", progress=False,
                 finish=False)  # the check can fail: a normal run moves the encoder
    assert any(not torch.equal(load_checkpoint(full["checkpoint"])["model"][k], init[k]) for k in enc)


def test_a_dit_narrower_than_its_patch_cannot_predict_all_the_noise_and_is_refused():
    """Per token, the last layer maps hidden_size values to the patch's values, so the predicted velocity
    spans at most hidden_size (+1, the bias) dimensions; training refuses such a model with what to do."""
    from tenku.config import DiTConfig
    from tenku.models.dit import DiT
    from tenku.train.tasks import check_token_width

    narrow = DiTConfig(in_channels=8, patch_size=(1, 2, 2), hidden_size=16, depth=1, num_heads=2, text_dim=8)
    torch.manual_seed(0)
    dit = DiT(narrow)
    with torch.no_grad():
        for p in dit.parameters():  # the zero-initialised output layers take part
            p.add_(torch.randn_like(p) * 0.1)
        xs = [torch.randn(8, 1, 8, 8) for _ in range(8)]
        out = dit(xs, torch.rand(8), torch.randn(8, 3, 8), torch.ones(8, 3, dtype=torch.bool))
    # (8 clips x 16 tokens, 32 values): token rows of the output, centred by the bias
    rows = torch.stack([o.reshape(8, 1, 4, 2, 4, 2).permute(1, 2, 4, 0, 3, 5).reshape(16, 32) for o in out])
    rank = torch.linalg.matrix_rank(rows.reshape(-1, 32).double(), atol=1e-6)
    assert rank <= 16 + 1 < 32
    with pytest.raises(TenkuError, match="hidden_size 16 is below the 32 values"):
        check_token_width(narrow)
    check_token_width(narrow.replace(patch_size=(1, 1, 1)))  # 8 values on a width of 16: accepted
