"""Exponential moving average of a module's parameters (the weights that get exported).

The decay warms up as ``min(decay, (1 + n) / (10 + n))`` so early averages are not dominated by
the random initialisation. Works on plain, DDP-wrapped and FSDP2-sharded parameters (a sharded
parameter keeps a sharded average; :meth:`EMA.full_state_dict` gathers it).
"""

from __future__ import annotations

import torch
import torch.nn as nn


def _full(t: torch.Tensor) -> torch.Tensor:
    return t.full_tensor() if hasattr(t, "full_tensor") else t


class EMA:
    def __init__(self, module: nn.Module, decay: float):
        self.decay = decay
        self.num_updates = 0
        # every parameter, frozen ones too (they stay at their value), so the averaged weights are a whole model
        self.names = [n for n, _ in module.named_parameters()]
        self.shadow = {n: p.detach().clone().float() for n, p in module.named_parameters()}

    @torch.no_grad()
    def update(self, module: nn.Module) -> None:
        d = min(self.decay, (1 + self.num_updates) / (10 + self.num_updates))
        self.num_updates += 1
        for n, p in module.named_parameters():
            if n in self.shadow:
                self.shadow[n].lerp_(p.detach().float(), 1.0 - d)

    def full_state_dict(self) -> dict[str, torch.Tensor]:
        return {n: _full(t).detach().cpu().clone() for n, t in self.shadow.items()}

    def state_dict(self) -> dict:
        return {"decay": self.decay, "num_updates": self.num_updates, "shadow": self.full_state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.num_updates = int(state["num_updates"])
        for n, t in state["shadow"].items():
            if n not in self.shadow:
                continue
            cur = self.shadow[n]
            if hasattr(cur, "full_tensor"):  # sharded: take this process's shard of the full tensor
                from torch.distributed.tensor import distribute_tensor

                cur.copy_(distribute_tensor(t.to(cur.dtype), cur.device_mesh, cur.placements))
            else:
                cur.copy_(t)

    @torch.no_grad()
    def copy_to(self, module: nn.Module) -> None:
        """Load the averaged weights into a plain (unwrapped, unsharded) module with the same names."""
        params = dict(module.named_parameters())
        for n, t in self.full_state_dict().items():
            key = n if n in params else n.removeprefix("module.")
            params[key].copy_(t.to(params[key].dtype))
