"""Watching a run: a tqdm bar with loss and throughput, TensorBoard scalars, a JSON-lines log,
sample videos and a contact sheet PNG.

TensorBoard is imported lazily; without it the run goes on with a warning (the JSON-lines log
``OUT/metrics.jsonl`` is always written). Only the main process writes anything.
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from tenku.progress import progress_enabled


class Monitor:
    def __init__(self, out: str | Path, total_steps: int, start_step: int, enabled: bool = True,
                 progress: bool = True, tensorboard: bool = True):
        self.out = Path(out)
        self.enabled = enabled
        self.bar = None
        self.tb = None
        self.log_path = self.out / "metrics.jsonl"
        self._t_last = time.perf_counter()
        self._tokens = 0
        self._samples = 0
        if not enabled:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        if progress_enabled(progress):
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_step, dynamic_ncols=True, desc="train")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(self.out / "tensorboard"))
            except ImportError as e:
                warnings.warn(f"TensorBoard is not installed ({e}); scalars go only to {self.log_path}. "
                              "Install it with `pip install tenku[train]`.", stacklevel=2)

    def count(self, tokens: int, samples: int) -> None:
        self._tokens += tokens
        self._samples += samples

    def log(self, step: int, scalars: dict[str, float]) -> dict[str, float]:
        """Record scalars for ``step`` (throughput since the last call is added)."""
        now = time.perf_counter()
        dt = max(now - self._t_last, 1e-9)
        scalars = dict(scalars)
        scalars["tokens_per_s"] = self._tokens / dt
        scalars["samples_per_s"] = self._samples / dt
        self._t_last, self._tokens, self._samples = now, 0, 0
        if not self.enabled:
            return scalars
        with open(self.log_path, "a") as f:
            f.write(json.dumps({"step": step, "time": time.time(), **{k: float(v) for k, v in scalars.items()}}) + "\n")
        if self.tb is not None:
            for k, v in scalars.items():
                self.tb.add_scalar(f"train/{k}", float(v), step)
        if self.bar is not None:
            self.bar.set_postfix(loss=f"{scalars.get('loss', float('nan')):.4f}",
                                 tok_s=f"{scalars['tokens_per_s']:.0f}", refresh=False)
        return scalars

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def message(self, text: str) -> None:
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(text)
        else:
            print(text, file=sys.stderr, flush=True)
        with open(self.out / "train.log", "a") as f:
            f.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} {text}\n")

    def add_image(self, tag: str, image: np.ndarray, step: int) -> None:
        if self.enabled and self.tb is not None:
            self.tb.add_image(tag, image, step, dataformats="HWC")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
        if self.tb is not None:
            self.tb.close()


def contact_sheet(videos: list[np.ndarray], columns: int = 5, pad: int = 2) -> np.ndarray:
    """One PNG-ready image: a row per video, ``columns`` frames evenly spread over its length.

    videos: list of (T, H, W, 3) uint8 (sizes may differ; each row is as tall as its video)."""
    if not videos:
        raise ValueError("contact_sheet needs at least one video")
    rows = []
    width = max(columns * (v.shape[2] + pad) + pad for v in videos)
    for v in videos:
        idx = np.linspace(0, len(v) - 1, columns).round().astype(int)
        h, w = v.shape[1:3]
        row = np.full((h + pad, width, 3), 255, np.uint8)
        for c, i in enumerate(idx):
            x = pad + c * (w + pad)
            row[:h, x:x + w] = v[i]
        rows.append(row)
    top = np.full((pad, width, 3), 255, np.uint8)
    return np.concatenate([top] + rows, axis=0)
