"""The parallel, resumable shard writer behind ``tenku world make``.

Clip ``j`` of a dataset is drawn from a seed derived from (seed, split, j) alone, and shard ``s`` holds
clips ``s * clips_per_shard`` up to the next shard, so any machine, worker count or ``--shard i/n``
partition produces exactly the same clips. A shard is complete when its manifest exists; a rerun
skips complete shards and redoes an interrupted one from scratch.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tenku.data.shards import ShardWriter, completed_shards, parse_shard_spec, write_dataset_info
from tenku.errors import TenkuError
from tenku.progress import progress_enabled
from tenku.world.clip import Clip, make_clip
from tenku.world.scenarios import SCENARIOS, sample_scene
from tenku.world.spec import frames_for
from tenku.world.splits import check_split_name

# dataset.json keys that must agree for a rerun to resume into the same folder
_IDENTITY = ("kind", "clips", "seconds", "width", "height", "fps", "split", "seed", "clips_per_shard", "scenario")


@dataclass(frozen=True)
class MakeConfig:
    out: str
    clips: int
    seconds: float = 2.0
    width: int = 64
    height: int = 64
    fps: float = 8.0
    split: str = "train"
    seed: int = 0
    clips_per_shard: int = 100
    scenario: str | None = None
    workers: int = 1
    shard: str | None = None  # "i/n": make shards i, i+n, ...
    crf: int = 18
    preset: str = "veryfast"  # x264 preset: as small and within 0.3 dB PSNR of "medium" on world clips

    @property
    def num_shards(self) -> int:
        return math.ceil(self.clips / self.clips_per_shard)

    def validate(self) -> None:
        check_split_name(self.split)
        if self.clips < 1:
            raise TenkuError(f"--clips must be at least 1, got {self.clips}")
        if self.clips_per_shard < 1:
            raise TenkuError(f"--clips-per-shard must be at least 1, got {self.clips_per_shard}")
        if self.workers < 1:
            raise TenkuError(f"--workers must be at least 1, got {self.workers}")
        if self.width < 16 or self.height < 16:
            raise TenkuError(f"--size must be at least 16x16, got {self.width}x{self.height}")
        if not self.fps > 0 or not self.seconds > 0:
            raise TenkuError(f"--fps and --seconds must be positive, got {self.fps} and {self.seconds}")
        if self.scenario is not None and self.scenario not in SCENARIOS:
            raise TenkuError(f"unknown --scenario {self.scenario!r}; expected one of {', '.join(SCENARIOS)}")
        parse_shard_spec(self.shard)


def clip_seed(seed: int, split: str, index: int) -> int:
    """The seed of clip ``index``: a function of (seed, split, index) only."""
    ss = np.random.SeedSequence([int(seed) & 0xFFFFFFFF, zlib.crc32(split.encode()), int(index)])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> np.uint64(1))


def make_world_clip(seed: int, split: str, index: int, width: int = 64, height: int = 64, fps: float = 8.0,
                    seconds: float = 2.0, scenario: str | None = None) -> Clip:
    s = clip_seed(seed, split, index)
    spec = sample_scene(np.random.default_rng(s), split, scenario, width, height, fps, seconds)
    clip = make_clip(spec, seed=s)
    clip.meta["clip_index"] = int(index)
    return clip


def _write_shard(cfg: MakeConfig, index: int) -> int:
    lo = index * cfg.clips_per_shard
    hi = min(lo + cfg.clips_per_shard, cfg.clips)
    with ShardWriter(cfg.out, index, crf=cfg.crf, preset=cfg.preset) as w:
        for j in range(lo, hi):
            clip = make_world_clip(cfg.seed, cfg.split, j, cfg.width, cfg.height, cfg.fps, cfg.seconds,
                                   cfg.scenario)
            w.add(clip.frames, cfg.fps, captions=clip.captions, meta=clip.meta,
                  ground_truth=clip.ground_truth, split=cfg.split)
    return hi - lo


def _worker(job: tuple[MakeConfig, int]) -> tuple[int, int]:
    cfg, index = job
    return index, _write_shard(cfg, index)


def _command(cfg: MakeConfig) -> str:
    """The command line that makes this dataset (any --workers/--shard give the same clips)."""
    parts = [f"tenku world make --out {cfg.out} --clips {cfg.clips} --seconds {cfg.seconds:g}",
             f"--size {cfg.width}x{cfg.height} --fps {cfg.fps:g} --split {cfg.split} --seed {cfg.seed}",
             f"--clips-per-shard {cfg.clips_per_shard}"]
    if cfg.scenario:
        parts.append(f"--scenario {cfg.scenario}")
    return " ".join(parts)


def _check_existing(cfg: MakeConfig, info: dict) -> None:
    path = Path(cfg.out) / "dataset.json"
    if not path.exists():
        return
    import json

    try:
        old = json.loads(path.read_text())
    except json.JSONDecodeError:
        return
    diff = {k: (old.get(k), info[k]) for k in _IDENTITY if k in old and old.get(k) != info[k]}
    if diff:
        detail = ", ".join(f"{k}: {a!r} there, {b!r} now" for k, (a, b) in diff.items())
        raise TenkuError(f"{cfg.out} already holds a world dataset made with other settings ({detail}); "
                         "resume with the same settings or choose another --out")


def make_dataset(cfg: MakeConfig, progress: bool = True) -> dict:
    """Write (the ``--shard`` part of) a world dataset; returns a summary."""
    cfg.validate()
    part, parts = parse_shard_spec(cfg.shard)
    info = {"kind": "tenku-world", "clips": cfg.clips, "seconds": cfg.seconds, "width": cfg.width,
            "height": cfg.height, "fps": cfg.fps, "split": cfg.split, "seed": cfg.seed,
            "clips_per_shard": cfg.clips_per_shard, "scenario": cfg.scenario,
            "num_frames": frames_for(cfg.seconds, cfg.fps), "num_shards": cfg.num_shards,
            "frames_rule": "num_frames = round(seconds * fps) + 1",
            "command": _command(cfg)}
    _check_existing(cfg, info)
    write_dataset_info(cfg.out, **info)
    mine = [i for i in range(cfg.num_shards) if i % parts == part]
    done = completed_shards(cfg.out)
    todo = [i for i in mine if i not in done]
    n_todo = sum(min((i + 1) * cfg.clips_per_shard, cfg.clips) - i * cfg.clips_per_shard for i in todo)
    from tqdm import tqdm

    bar = tqdm(total=n_todo, unit="clip", desc=f"world {cfg.split}",
               disable=not progress_enabled(progress))
    written = 0
    try:
        if cfg.workers == 1 or len(todo) <= 1:
            for i in todo:
                n = _write_shard(cfg, i)
                written += n
                bar.update(n)
        else:
            import multiprocessing as mp

            with mp.get_context("fork").Pool(min(cfg.workers, len(todo))) as pool:
                for _, n in pool.imap_unordered(_worker, [(cfg, i) for i in todo]):
                    written += n
                    bar.update(n)
    finally:
        bar.close()
    return {"out": str(cfg.out), "shards_total": cfg.num_shards, "shards_mine": len(mine),
            "shards_skipped": len(mine) - len(todo), "shards_written": len(todo), "clips_written": written}
