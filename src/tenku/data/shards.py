"""The shard format shared by the world (synthetic clips) and ingest (real video).

A dataset folder holds numbered shards::

    DIR/
      dataset.json            {"format": "tenku-shards", "version": 1, ...free-form info}
      shard-00000/000000.mp4  one H.264 clip per record
      shard-00000.jsonl       one JSON record per clip, written last and atomically

A shard is complete exactly when its ``.jsonl`` exists, so an interrupted writer loses at most the
shard it was writing, and a resumed run skips complete shards. A record::

    {"id": "shard-00000/000000", "video": "shard-00000/000000.mp4",
     "num_frames": 17, "fps": 8, "width": 64, "height": 64, "split": "train",
     "captions": {"short": "...", "medium": "...", "long": "..."},
     "meta": {...},             # free-form: world spec, ingest statistics, source and time range
     "ground_truth": {...}}     # world clips only, else null
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from tenku.errors import TenkuError
from tenku.media import atomic_path, write_video

FORMAT = "tenku-shards"
VERSION = 1
CAPTION_LEVELS = ("short", "medium", "long")
_SHARD_RE = re.compile(r"^shard-(\d{5})\.jsonl$")


def shard_name(index: int) -> str:
    return f"shard-{index:05d}"


def parse_shard_spec(spec: str | None) -> tuple[int, int]:
    """Parse ``--shard i/n`` (0-based i) into (i, n); None means (0, 1)."""
    if spec is None:
        return 0, 1
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", spec)
    if not m or int(m.group(2)) < 1 or int(m.group(1)) >= int(m.group(2)):
        raise TenkuError(f"--shard must look like i/n with 0 <= i < n (e.g. 0/4), got {spec!r}")
    return int(m.group(1)), int(m.group(2))


def write_dataset_info(root: str | Path, **info: Any) -> None:
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    path = root / "dataset.json"
    old = json.loads(path.read_text()) if path.exists() else {}
    old.update({"format": FORMAT, "version": VERSION, **info})
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(old, indent=2, sort_keys=True) + "\n")


def completed_shards(root: str | Path) -> set[int]:
    """Indices of shards whose manifest exists (complete shards)."""
    root = Path(root)
    if not root.is_dir():
        return set()
    return {int(m.group(1)) for p in root.iterdir() if (m := _SHARD_RE.match(p.name))}


class ShardWriter:
    """Write one shard: ``with ShardWriter(root, 3) as w: w.add(frames, fps, captions, ...)``.

    Clips go to ``shard-NNNNN/``; the manifest is written only when the block ends without error.
    A leftover clip folder from an interrupted run is cleared first.
    """

    def __init__(self, root: str | Path, index: int, crf: int = 18, preset: str = "medium"):
        self.root = Path(root)
        self.index = index
        self.name = shard_name(index)
        self.crf = crf
        self.preset = preset  # x264 preset: "veryfast" is about a third faster for tiny clips
        self.records: list[dict] = []

    def __enter__(self) -> "ShardWriter":
        self.root.mkdir(parents=True, exist_ok=True)
        clip_dir = self.root / self.name
        if clip_dir.exists():
            shutil.rmtree(clip_dir)
        clip_dir.mkdir()
        return self

    def add(self, frames: np.ndarray, fps: float, captions: dict[str, str] | None = None,
            meta: dict | None = None, ground_truth: dict | None = None, split: str = "train") -> dict:
        n = len(self.records)
        rel = f"{self.name}/{n:06d}.mp4"
        write_video(self.root / rel, frames, fps, crf=self.crf, preset=self.preset)
        captions = {k: (captions or {}).get(k, "") for k in CAPTION_LEVELS}
        rec = {"id": f"{self.name}/{n:06d}", "video": rel, "num_frames": int(len(frames)),
               "fps": fps, "height": int(frames[0].shape[0]), "width": int(frames[0].shape[1]),
               "split": split, "captions": captions, "meta": meta or {}, "ground_truth": ground_truth}
        self.records.append(rec)
        return rec

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            return
        with atomic_path(self.root / f"{self.name}.jsonl") as tmp:
            with open(tmp, "w") as f:
                for r in self.records:
                    f.write(json.dumps(r, separators=(",", ":")) + "\n")
                f.flush()
                os.fsync(f.fileno())


def iter_records(root: str | Path, split: str | None = None) -> Iterator[dict]:
    """Every record of every complete shard, in shard order. ``video`` becomes an absolute path."""
    root = Path(root)
    if not root.is_dir():
        raise TenkuError(f"dataset folder not found: {root}")
    shards = sorted(completed_shards(root))
    if not shards:
        raise TenkuError(f"{root} holds no complete shards (shard-NNNNN.jsonl); make one with "
                         "`tenku world make` or `tenku data ingest`")
    for i in shards:
        path = root / f"{shard_name(i)}.jsonl"
        for line_no, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise TenkuError(f"{path}:{line_no} is not valid JSON ({e})") from None
            if split is not None and rec.get("split") != split:
                continue
            rec["video"] = str(root / rec["video"])
            yield rec


def load_records(root: str | Path, split: str | None = None) -> list[dict]:
    return list(iter_records(root, split))
