"""Training data sources: raw shard clips (decoded with PyAV) and cached latents (safetensors).

A source lists its samples with a bucket key each (no decoding needed) and loads one sample on
demand. A clip that cannot be decoded, or holds fewer frames than its record says, raises
:class:`BadSample`; :class:`SafeLoader` then skips it, counts it, remembers it, and substitutes the
next good sample of the same bucket, so the batch keeps its size and the run goes on.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from tenku.data.dataset import frames_to_tensor, read_clip_frames
from tenku.data.shards import iter_records
from tenku.errors import MediaError, TenkuError

LATENT_FORMAT = "tenku-latents"


class BadSample(Exception):
    """A sample that cannot be used (corrupt or truncated video, unreadable latent)."""


def usable_frames(n: int, temporal_factor: int) -> int:
    """Largest ``1 + temporal_factor * k`` that is <= n (a causal VAE needs that many frames)."""
    if n < 1:
        return 0
    return 1 + ((n - 1) // temporal_factor) * temporal_factor


class ClipSource:
    """Clips of a shard folder (``tenku world make`` or ``tenku data ingest`` output)."""

    kind = "clips"

    def __init__(self, root: str | Path, split: str | None, temporal_factor: int, spatial_factor: int,
                 crop_frames: int = 0, crop_size: int = 0, flip: bool = False):
        self.root = Path(root)
        self.records = []
        self.keys = []
        self.tf, self.sf = temporal_factor, spatial_factor
        self.crop_frames, self.crop_size, self.flip = crop_frames, crop_size, flip
        dropped = 0
        for rec in iter_records(self.root, split):
            t = usable_frames(int(rec.get("num_frames", 0)), temporal_factor)
            h = (int(rec.get("height", 0)) // spatial_factor) * spatial_factor
            w = (int(rec.get("width", 0)) // spatial_factor) * spatial_factor
            if t < 1 or h < spatial_factor or w < spatial_factor:
                dropped += 1
                continue
            if crop_frames:
                t = min(t, usable_frames(crop_frames, temporal_factor))
            if crop_size:
                h, w = min(h, crop_size), min(w, crop_size)
            self.records.append(rec)
            self.keys.append((t, h, w))
        self.dropped_small = dropped
        if not self.records:
            raise TenkuError(f"{self.root} holds no usable clips for split {split!r}; "
                             f"check the split name (train, test_id, ...) or make data with `tenku world make`")

    def __len__(self) -> int:
        return len(self.records)

    def sample_id(self, i: int) -> str:
        return str(self.records[i].get("id", i))

    def load(self, i: int, gen: torch.Generator) -> dict:
        """dict(video (3,T,H,W) float in [-1,1], captions {level: text}, id)."""
        rec = self.records[i]
        t, h, w = self.keys[i]
        full_t = usable_frames(int(rec["num_frames"]), self.tf)
        t0 = int(torch.randint(0, full_t - t + 1, (1,), generator=gen)) if self.crop_frames else 0
        try:
            arr = read_clip_frames(rec["video"], t, start=t0)  # (T, H0, W0, 3)
        except MediaError as e:
            raise BadSample(f"{e} (record says {rec['num_frames']} frames)") from None
        H0, W0 = arr.shape[1:3]
        y0 = int(torch.randint(0, H0 - h + 1, (1,), generator=gen)) if self.crop_size else (H0 - h) // 2
        x0 = int(torch.randint(0, W0 - w + 1, (1,), generator=gen)) if self.crop_size else (W0 - w) // 2
        video = frames_to_tensor(arr[:, y0:y0 + h, x0:x0 + w])
        if self.flip and bool(torch.rand((), generator=gen) < 0.5):
            video = video.flip(-1)
        return {"video": video, "captions": dict(rec.get("captions") or {}), "id": self.sample_id(i)}


class LatentSource:
    """Latents written by ``tenku data cache-latents`` (see :mod:`tenku.train.latents`)."""

    kind = "latents"

    def __init__(self, root: str | Path, in_memory: bool = False):
        self.root = Path(root)
        # in_memory: each cache file is read whole on first use and kept (fp16, as stored), so a sample
        # costs a lookup, not a file read; about 2 bytes per latent value of the cache
        self.in_memory = in_memory
        info_path = self.root / "latents.json"
        try:
            self.info = json.loads(info_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError) as e:
            raise TenkuError(f"{info_path} is missing or unreadable ({e}); "
                             "write a latent cache with `tenku data cache-latents`") from None
        self.records, self.keys = [], []
        for path in sorted(self.root.glob("latents-*.jsonl")):
            for line in path.read_text().splitlines():
                if line.strip():
                    rec = json.loads(line)
                    self.records.append(rec)
                    self.keys.append(tuple(rec["shape"][1:]))
        if not self.records:
            raise TenkuError(f"{self.root} holds no cached latents (latents-NNNNN.jsonl)")
        self._handles: dict[str, object] = {}

    def __len__(self) -> int:
        return len(self.records)

    def sample_id(self, i: int) -> str:
        return str(self.records[i].get("id", i))

    def load(self, i: int, gen: torch.Generator) -> dict:
        from safetensors import safe_open

        rec = self.records[i]
        okey = rec["key"] + ".objects"
        try:
            f = self._handles.get(rec["file"])
            if f is None and self.in_memory:
                from safetensors.torch import load_file

                f = self._handles[rec["file"]] = load_file(str(self.root / rec["file"]))
            elif f is None:
                f = self._handles[rec["file"]] = safe_open(str(self.root / rec["file"]), framework="pt")
            if self.in_memory:
                z, objects = f[rec["key"]].float(), f.get(okey)
                objects = None if objects is None else objects.float()
            else:
                z = f.get_tensor(rec["key"]).float()
                objects = f.get_tensor(okey).float() if okey in f.keys() else None  # caches before object maps: None
        except Exception as e:  # a damaged cache file: skip the sample, keep training
            raise BadSample(f"cannot read latent {rec['key']} from {rec['file']}: {e}") from None
        return {"latent": z, "objects": objects, "captions": dict(rec.get("captions") or {}), "id": self.sample_id(i)}


def is_latent_dir(path: str | Path) -> bool:
    return (Path(path) / "latents.json").is_file()


class SafeLoader:
    """Load samples, skipping bad ones: counted, remembered, reported, replaced within the bucket."""

    def __init__(self, source, bucket_of, log=print):
        self.source = source
        self.bucket_of = bucket_of
        self.bad: dict[int, str] = {}
        self.log = log

    def load(self, i: int, gen: torch.Generator) -> dict:
        bucket = self.bucket_of(i)
        pos = bucket.index(i)
        start = gen.get_state()
        for k in range(len(bucket)):
            cand = bucket[(pos + k) % len(bucket)]
            if cand in self.bad:
                continue
            gen.set_state(start)  # the same random stream whichever sample ends up used
            try:
                return self.source.load(cand, gen)
            except BadSample as e:
                self.bad[cand] = str(e)
                self.log(f"skipped bad sample {self.source.sample_id(cand)}: {e} "
                         f"({len(self.bad)} skipped so far)")
        raise TenkuError(f"every sample of the bucket {self.source.keys[i]} is unreadable "
                         f"({len(bucket)} samples); check the data folder {self.source.root}")

    def state_dict(self) -> dict:
        return {"bad": {str(k): v for k, v in self.bad.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.bad = {int(k): v for k, v in state.get("bad", {}).items()}

    @property
    def skipped(self) -> int:
        return len(self.bad)
