"""Process groups and model wrapping, kept out of model code.

One code path for one CPU process, one GPU and ``torchrun --nproc_per_node N``: when ``WORLD_SIZE``
is set, the default process group starts from the environment (gloo on CPU, nccl on CUDA) and the
training module is wrapped in DDP, or sharded with FSDP2 (``fully_shard`` on every transformer
block, then on the root) when the config says ``parallel="fsdp"``.
"""

from __future__ import annotations

import dataclasses
import os

import torch
import torch.nn as nn


@dataclasses.dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str | None = None) -> DistInfo:
    """Start the process group from torchrun's environment, or describe the single process."""
    want_cuda = torch.cuda.is_available() if device is None else str(device).startswith("cuda")
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if want_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world > 1:
        import torch.distributed as dist

        if not dist.is_initialized():
            dist.init_process_group(backend="nccl" if want_cuda else "gloo")
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, device=dev)


def shutdown(info: DistInfo) -> None:
    if info.distributed:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        import torch.distributed as dist

        dist.barrier()


def all_reduce_mean(values: torch.Tensor, info: DistInfo) -> torch.Tensor:
    """Mean over processes of a float tensor (identity for one process)."""
    if not info.distributed:
        return values
    import torch.distributed as dist

    v = values.detach().clone().to(info.device)
    dist.all_reduce(v, op=dist.ReduceOp.SUM)
    return v / info.world_size


def transformer_blocks(module: nn.Module) -> list[nn.Module]:
    """The repeated blocks to shard one by one: children of any ``nn.ModuleList`` named ``blocks``
    or ``layers`` anywhere in the module (the DiT's and the text encoder's transformer blocks)."""
    found = []
    for name, sub in module.named_modules():
        if isinstance(sub, nn.ModuleList) and name.split(".")[-1] in ("blocks", "layers"):
            found.extend(sub)
    return found


def wrap_model(module: nn.Module, info: DistInfo, strategy: str = "ddp") -> nn.Module:
    """DDP or FSDP2 around a training module when running distributed; the module itself otherwise."""
    module.to(info.device)
    if not info.distributed:
        return module
    if strategy == "fsdp":
        from torch.distributed.fsdp import fully_shard

        for block in transformer_blocks(module):
            fully_shard(block)
        fully_shard(module)
        return module
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [info.local_rank] if info.device.type == "cuda" else None
    return DDP(module, device_ids=ids, find_unused_parameters=False)


def unwrap(module: nn.Module) -> nn.Module:
    return module.module if hasattr(module, "module") and isinstance(getattr(module, "module"), nn.Module) \
        and type(module).__name__ == "DistributedDataParallel" else module


def autocast(info: DistInfo, mixed_precision: str):
    """bf16 autocast on CUDA ("auto" or "bf16"); a no-op context on CPU unless bf16 is asked for."""
    import contextlib

    use_bf16 = mixed_precision == "bf16" or (mixed_precision == "auto" and info.device.type == "cuda")
    if not use_bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=info.device.type, dtype=torch.bfloat16)
