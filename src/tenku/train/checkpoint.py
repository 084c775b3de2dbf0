"""Checkpoints: written atomically (temporary name, fsync, rename), the last K kept, resumable.

A checkpoint is one ``torch.save`` file ``OUT/checkpoints/step-NNNNNNN.pt`` holding the full (not
sharded) model and optimizer state, the EMA weights, the batch sampler position, the skipped
samples, and the torch / numpy / python RNG states, plus the resolved TrainConfig. Under FSDP the
full state is gathered with ``torch.distributed.checkpoint.state_dict`` and written by rank 0.
"""

from __future__ import annotations

import os
import random
import re
from pathlib import Path

import numpy as np
import torch

from tenku.errors import TenkuError

_CKPT_RE = re.compile(r"^step-(\d{7,})\.pt$")


def checkpoint_dir(out: str | Path) -> Path:
    return Path(out) / "checkpoints"


def list_checkpoints(out: str | Path) -> list[tuple[int, Path]]:
    d = checkpoint_dir(out)
    if not d.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in d.iterdir() if (m := _CKPT_RE.match(p.name))]
    return sorted(found)


def latest_checkpoint(out: str | Path) -> Path | None:
    found = list_checkpoints(out)
    return found[-1][1] if found else None


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if state.get("cuda") is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def full_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict, dict]:
    """Full model and optimizer state dicts (gathered across processes for FSDP; plain otherwise)."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_state_dict

    opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
    return get_state_dict(model, optimizer, options=opts)


def load_full_state(model: torch.nn.Module, optimizer: torch.optim.Optimizer, model_sd: dict, optim_sd: dict) -> None:
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_state_dict

    opts = StateDictOptions(full_state_dict=True, broadcast_from_rank0=False)
    set_state_dict(model, optimizer, model_state_dict=model_sd, optim_state_dict=optim_sd, options=opts)


def save_checkpoint(out: str | Path, step: int, state: dict, keep_last: int) -> Path:
    """Write ``state`` for ``step`` atomically, then delete all but the newest ``keep_last``."""
    d = checkpoint_dir(out)
    d.mkdir(parents=True, exist_ok=True)
    final = d / f"step-{step:07d}.pt"
    tmp = d / f".step-{step:07d}.pt.{os.getpid()}.part"
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()
    for _, old in list_checkpoints(out)[:-keep_last]:
        old.unlink(missing_ok=True)
    for stale in d.glob(".step-*.part"):  # leftovers of a run killed while writing
        if stale != tmp:
            stale.unlink(missing_ok=True)
    return final


def load_checkpoint(path: str | Path) -> dict:
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except FileNotFoundError:
        raise TenkuError(f"checkpoint not found: {path}") from None
    except Exception as e:  # a damaged file: say which one and what to do
        raise TenkuError(f"cannot read checkpoint {path} ({type(e).__name__}: {e}); delete it to resume "
                         "from the one before") from None
