"""Run a suite against a model (or the ground truth) and assemble the report.

``evaluate(suite, out_dir, model=...)`` generates each t2v clip from its prompt, continues each physics
clip from its first frames with ``extend_fn(first_frames, prompt, num_frames) -> frames``, reconstructs
the recon clips with the model's VAE, parses everything with the object parser and writes the report
files (:mod:`tenku.eval.report`). With ``ground_truth=True`` the world's own clips stand in for the
model (the ceiling): every metric is at its best.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np

from tenku.errors import TenkuError
from tenku.progress import progress_enabled

GenerateFn = Callable[[str, int, int, int, float, int], np.ndarray]  # (prompt, T, H, W, fps, seed) -> frames
ExtendFn = Callable[[np.ndarray, str, int], np.ndarray]  # (first_frames, prompt, num_frames) -> frames
ReconFn = Callable[[np.ndarray], np.ndarray]  # frames -> reconstructed frames


def _ground_truth_marker(*args):  # marker: the world's own clip is the output
    raise AssertionError("never called")


def code_version() -> dict:
    import tenku

    out = {"tenku": tenku.__version__, "git": None}
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(tenku.__file__).parent, capture_output=True,
                           text=True, timeout=5)
        if r.returncode == 0:
            out["git"] = r.stdout.strip()
    except (OSError, subprocess.SubprocessError):
        pass
    return out


def pipeline_functions(pipe, steps: int | None, seed: int) -> tuple[GenerateFn, ExtendFn, ReconFn]:
    """generate / extend / reconstruct through a pipeline (any backend of :mod:`tenku.pipeline.loading`).

    Prompts are used as written (no prompt expansion), so a suite's prompts are the same for every
    model. Extension is the pipeline's ``Extend`` mode: the given frames are encoded, held fixed, and
    the rest of the clip is sampled after them. Call ``i`` of each function uses seed ``seed + i``. A model
    that does not extend (a text-to-video diffusers folder) gets None for ``extend``: its physics clips are
    skipped, and the report says which tasks ran."""
    import torch

    from tenku.pipeline.modes import Extend

    calls = {"extend": 0}

    def generate(prompt, T, H, W, fps, s):
        return pipe(prompt, num_frames=T, height=H, width=W, fps=fps, num_steps=steps, seed=s,
                    progress=False, expand=False).frames

    def extend(first, prompt, T):
        H, W = first.shape[1:3]
        fps = float(pipe.sample_config.fps)
        calls["extend"] += 1
        mode = Extend(video=first, seconds=(T - len(first)) / fps)
        return pipe(prompt, mode=mode, height=H, width=W, fps=fps, num_steps=steps,
                    seed=seed + calls["extend"] - 1, progress=False, expand=False).frames

    def recon(frames):
        with torch.no_grad():
            return pipe.decode(pipe.encode_frames(frames))

    modes = getattr(pipe, "modes", None)  # a diffusers folder's; tenku's own model serves every mode
    return (generate if modes is None or "text_to_video" in modes else None,
            extend if modes is None or "extend" in modes else None, recon)


def evaluate(suite: str = "default", out_dir: str | Path = "eval-report", model: str | Path | None = None,
             ground_truth: bool = False, clips: int | None = None, seed: int = 0, steps: int | None = None,
             generate_fn: GenerateFn | None = None, extend_fn: ExtendFn | None = None,
             recon_fn: ReconFn | None = None, model_name: str | None = None, progress: bool = True) -> dict:
    """Evaluate and write the report into ``out_dir``; returns the report dict.

    Give ``model`` (a pipeline folder), or ``ground_truth=True``, or your own functions (``generate_fn``,
    ``extend_fn``, ``recon_fn``; tasks without a function are skipped)."""
    from tenku.eval import metrics, physics
    from tenku.eval.report import write_report
    from tenku.eval.suites import build_suite, default_parser

    cfg, items = build_suite(suite, clips)
    if ground_truth:  # the world's own clips stand in for the model
        model_info = {"name": "ground-truth", "path": None}
        generate_fn = extend_fn = recon_fn = _ground_truth_marker
    elif model is not None:
        from tenku.pipeline.loading import load_pipeline

        pipe = load_pipeline(model)
        generate_fn, extend_fn, recon_fn = pipeline_functions(pipe, steps, seed)
        model_info = {"name": getattr(pipe, "name", None) or Path(model).name, "path": str(model)}
    elif generate_fn is None and extend_fn is None and recon_fn is None:
        raise TenkuError("evaluate() needs a model folder, ground_truth=True, or generate/extend/recon functions")
    else:
        model_info = {"name": model_name or "custom", "path": None}

    parser = default_parser()
    results, videos = [], {}
    bar = None
    if progress_enabled(progress):
        from tqdm.auto import tqdm

        bar = tqdm(total=len(items), desc="eval", unit="clip")
    for n, it in enumerate(items):
        gt, ref = it.ground_truth, it.frames
        T, H, W, fps = gt["num_frames"], gt["height"], gt["width"], float(gt["fps"])
        res = {"id": it.id, "task": it.task, "split": it.split, "scenario": it.scenario, "prompt": it.prompt,
               "width": W, "height": H}
        out = None
        if generate_fn is _ground_truth_marker:
            out = ref
        if it.task == "t2v" and generate_fn is not None:
            if out is None:
                out = _check_output(generate_fn(it.prompt, T, H, W, fps, seed + n), ref, it.id)
            dets = parser.parse_video(out)
            res["adherence"] = metrics.adherence(dets, it.facts, gt)
            res["permanence"] = metrics.permanence(dets, gt, it.spec, 0)
            res["flicker"] = metrics.flicker_score(out)
            res["flicker_ground_truth"] = metrics.flicker_score(ref)
        elif it.task == "physics" and extend_fn is not None:
            if out is None:
                out = _check_output(extend_fn(ref[: it.cond_frames].copy(), it.prompt, T), ref, it.id)
            rdets = parser.parse_video(ref)
            dets = rdets if out is ref else parser.parse_video(out)
            res["physics"] = physics.clip_physics(dets, rdets, gt, it.scenario, it.cond_frames)
            res["permanence"] = metrics.permanence(dets, gt, it.spec, it.cond_frames)
        elif it.task == "recon" and recon_fn is not None:
            if out is None:
                out = _check_output(recon_fn(ref), ref, it.id)
            res["psnr"] = metrics.psnr(out, ref)
            res["ssim"] = metrics.ssim(out, ref)
        ran = any(k in res for k in ("adherence", "physics", "psnr"))
        if ran:
            videos[it.id] = (out, ref)
            results.append(res)
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    report = {
        "format": "tenku-eval-report", "format_version": 1,
        "suite": {"name": cfg.name, "version": cfg.version, **cfg.to_dict()},
        "model": model_info, "code_version": code_version(), "seed": int(seed), "steps": steps,
        "metrics": summarize(results), "clips": [_compact(r) for r in results],
    }
    write_report(report, results, videos, out_dir)
    return report


def _check_output(frames, ref: np.ndarray, what: str) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[1:] != ref.shape[1:]:
        raise TenkuError(f"clip {what}: the model returned frames {frames.dtype} {frames.shape}, expected uint8 "
                         f"(T, {ref.shape[1]}, {ref.shape[2]}, 3); use a model that generates "
                         f"{ref.shape[2]}x{ref.shape[1]} clips")
    if len(frames) < len(ref):
        raise TenkuError(f"clip {what}: the model returned {len(frames)} frames, expected {len(ref)}")
    return frames[: len(ref)]


def _compact(r: dict) -> dict:
    out = {k: v for k, v in r.items() if k != "physics"}
    if "physics" in r:
        out["physics"] = {k: v for k, v in r["physics"].items() if not k.startswith("positions")}
    return out


def summarize(results: list[dict]) -> dict:
    """Every metric of the report, aggregated over clips (definitions in tenku.eval.metrics/physics)."""
    from tenku.eval import metrics, physics

    t2v = [r for r in results if r["task"] == "t2v"]
    phys = [r for r in results if r["task"] == "physics"]
    rec = [r for r in results if r["task"] == "recon"]
    out: dict = {}
    if t2v:
        out["adherence"] = metrics.summarize_adherence(t2v)
    if phys:
        out["physics"] = {}
        for name, split in (("in_distribution", "test_id"), ("out_of_distribution", "test_ood")):
            sel = [r["physics"] for r in phys if r["split"] == split]
            if sel:
                out["physics"][name] = physics.summarize_physics(sel)
    perm = [r for r in results if r.get("permanence")]
    if perm:
        out["permanence"] = metrics.summarize_permanence(perm)
    q: dict = {}
    if rec:
        q["reconstruction_psnr"] = float(np.mean([r["psnr"] for r in rec]))
        q["reconstruction_ssim"] = float(np.mean([r["ssim"] for r in rec]))
        q["reconstruction_clips"] = len(rec)
    if t2v:
        q["flicker"] = float(np.mean([r["flicker"] for r in t2v]))
        q["flicker_ground_truth"] = float(np.mean([r["flicker_ground_truth"] for r in t2v]))
    if q:
        out["quality"] = q
    return out
