"""tenku's diffusers backend vs the diffusers pipeline called directly, on a Wan2.1-T2V-1.3B-shaped pipeline.

Random weights in the published model's configs (transformer, VAE, UMT5-XXL text encoder): time and memory do
not depend on the weights' values. At 480x832, 81 frames: seconds per denoising step, peak GPU memory and end to
end seconds, for diffusers called directly, tenku's backend (frames, then frames + the marked mp4: watermark and
C2PA), tenku with each cache hook (first-block, TaylorSeer) and with torch.compile (its second call). One run each,
in one process; the same seed for all.

    python benchmarks/diffusers_backend.py --device cuda --steps 10 --json wan13b.json     # a GPU
    python benchmarks/diffusers_backend.py --tiny                                          # CPU, seconds (the test)
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import base_parser, emit, machine_info, setup_torch  # noqa: E402

# Wan-AI/Wan2.1-T2V-1.3B-Diffusers: transformer/config.json, vae/config.json (AutoencoderKLWan defaults) and
# text_encoder/config.json (UMT5-XXL encoder)
WAN13B_TRANSFORMER = dict(patch_size=(1, 2, 2), num_attention_heads=12, attention_head_dim=128, in_channels=16,
                          out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=8960, num_layers=30,
                          cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, rope_max_seq_len=1024)
WAN13B_VAE = dict(base_dim=96, z_dim=16, dim_mult=[1, 2, 4, 4], num_res_blocks=2, temperal_downsample=[False, True, True])
UMT5_XXL = dict(vocab_size=256384, d_model=4096, d_kv=64, d_ff=10240, num_layers=24, num_heads=64,
                relative_attention_num_buckets=32, feed_forward_proj="gated-gelu", dropout_rate=0.0)
PROMPT = "a red fox runs through fresh snow, the camera follows it"


def full_pipeline(device: str, dtype):
    """The 1.3B-shaped WanPipeline, random weights, built on ``device`` in ``dtype`` (no download)."""
    import diffusers as d
    import torch
    from transformers import UMT5Config, UMT5EncoderModel

    from tenku.testing import tiny_tokenizer

    old = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            tr = d.WanTransformer3DModel(**WAN13B_TRANSFORMER)
            vae = d.AutoencoderKLWan(**WAN13B_VAE).to(torch.float32)  # Wan's VAE runs in float32
            text = UMT5EncoderModel(UMT5Config(**UMT5_XXL)).eval()
    finally:
        torch.set_default_dtype(old)
    return d.WanPipeline(tokenizer=tiny_tokenizer(), text_encoder=text, vae=vae, transformer=tr,
                         scheduler=d.UniPCMultistepScheduler(prediction_type="flow_prediction", use_flow_sigmas=True,
                                                             flow_shift=3.0))


def tenku_backend(pipe, size, frames: int, fps: float, steps: int, options, device: str):
    """tenku's DiffusersPipeline around an already built diffusers pipeline (the folder's facts given here)."""
    from tenku.config import SampleConfig
    from tenku.geometry import Geometry
    from tenku.models.diffusers_folder import KINDS
    from tenku.pipeline.diffusers_backend import DiffusersPipeline

    w, h = size
    sample = SampleConfig(width=w, height=h, num_frames=frames, fps=fps, num_steps=steps, guidance=5.0, expander="")
    return DiffusersPipeline(pipe, KINDS["WanPipeline"], Geometry(4, 8, 16, (1, 2, 2)), sample, options=options,
                             name="wan2.1-t2v-1.3b-random", device=device)


def measure(fn, device: str) -> dict:
    """Run ``fn(on_step)`` once: seconds end to end, per step (median of the steps after the first), peak GPU GiB."""
    import statistics

    import torch

    marks: list[float] = []
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    fn(lambda: marks.append(time.perf_counter()))
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    total = time.perf_counter() - start
    gaps = [b - a for a, b in zip([start, *marks], marks)]
    out = {"seconds": round(total, 3), "steps": len(marks),
           "s_per_step": round(statistics.median(gaps[1:] or gaps), 4) if gaps else None}
    if device.startswith("cuda"):
        out["peak_gpu_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    return out


def main(argv: list[str] | None = None) -> dict:
    p = base_parser(__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--tiny", action="store_true", help="a tiny Wan pipeline at 32x32, 9 frames, 2 steps (CPU)")
    p.add_argument("--steps", type=int, default=10, help="denoising steps per run (default: %(default)s)")
    p.add_argument("--frames", type=int, default=None, help="frames (default: 81; --tiny 9)")
    p.add_argument("--size", default=None, help="WxH (default: 832x480; --tiny 32x32)")
    p.add_argument("--skip", default="", help="comma separated runs to leave out (cache-first-block, cache-taylorseer, "
                                              "compile, tenku-mp4)")
    args = p.parse_args(argv)
    setup_torch(args)
    import torch

    from tenku.geometry import parse_size
    from tenku.models.diffusers_folder import DiffusersOptions
    from tenku.pipeline.diffusers_backend import to_uint8
    from tenku.pipeline.output import save_output
    from tenku.testing import make_tiny_diffusers_pipeline

    device, skip = args.device, set(filter(None, args.skip.split(",")))
    frames = args.frames or (9 if args.tiny else 81)
    w, h = parse_size(args.size or ("32x32" if args.tiny else "832x480"))
    steps = 2 if args.tiny and args.steps == 10 else args.steps
    dtype = torch.float32 if args.tiny or device == "cpu" else torch.bfloat16
    t0 = time.perf_counter()
    pipe = make_tiny_diffusers_pipeline("wan").to(device) if args.tiny else full_pipeline(device, dtype)
    pipe.set_progress_bar_config(disable=True)
    built = round(time.perf_counter() - t0, 1)
    call = {"max_sequence_length": 16} if args.tiny else {}

    def direct(on_step):
        g = torch.Generator("cpu").manual_seed(args.seed)
        out = pipe(PROMPT, height=h, width=w, num_frames=frames, num_inference_steps=steps, guidance_scale=5.0,
                   generator=g, output_type="np", callback_on_step_end=lambda *a: (on_step(), a[-1])[1], **call)
        return to_uint8(out.frames[0])

    def through_tenku(options, write: Path | None = None):
        backend = tenku_backend(pipe, (w, h), frames, 16.0, steps, options, device)

        def run(on_step):
            out = backend(PROMPT, seed=args.seed, expand=False, progress=False, callback=lambda d: on_step())
            if write is not None:
                save_output(out, write)
            return out.frames
        return run

    ref = direct(lambda: None)  # warm-up (and the frames every run is compared with)
    through_tenku(DiffusersOptions(call=call))(lambda: None)
    results: dict = {"direct": measure(direct, device)}
    runs = {"tenku": DiffusersOptions(call=call)}
    for cache in ("first-block", "taylorseer"):
        if f"cache-{cache}" not in skip:
            runs[f"tenku+cache-{cache}"] = DiffusersOptions(call=call, cache=cache)
    for name, opts in runs.items():
        results[name] = measure(through_tenku(opts), device)
        if getattr(pipe.transformer, "is_cache_enabled", False):
            pipe.transformer.disable_cache()  # the next run starts without the hook
    tenku_frames = through_tenku(runs["tenku"])(lambda: None)
    results["tenku"]["max_abs_diff_vs_direct"] = int(abs(tenku_frames.astype(int) - ref.astype(int)).max())
    if "tenku-mp4" not in skip:
        with tempfile.TemporaryDirectory() as tmp:
            results["tenku+marked-mp4"] = measure(through_tenku(runs["tenku"], Path(tmp) / "out.mp4"), device)
    if "compile" not in skip:
        opts = DiffusersOptions(call=call)
        backend_run = through_tenku(opts)
        pipe.transformer.compile_repeated_blocks(fullgraph=False)
        results["tenku+compile-first-call"] = measure(backend_run, device)
        results["tenku+compile"] = measure(backend_run, device)
    result = {"benchmark": "diffusers_backend", "model": "tiny-wan" if args.tiny else "wan2.1-t2v-1.3b (random)",
              "device": device, "dtype": str(dtype).replace("torch.", ""), "size": f"{w}x{h}", "frames": frames,
              "steps": steps, "build_seconds": built, "machine": machine_info(), "runs": results,
              "command": "python benchmarks/diffusers_backend.py " + " ".join(argv if argv is not None else sys.argv[1:])}
    if device.startswith("cuda"):
        result["gpu"] = torch.cuda.get_device_name()
    emit(result, args.json)
    return result


if __name__ == "__main__":
    main()
