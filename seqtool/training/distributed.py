"""DistributedDataParallel under torchrun: the same `seqtool train ...` command, one process
per rank (gloo on CPU, nccl on GPU). Rank 0 logs and writes checkpoints; every rank trains
its slice of each global batch, so W ranks with --batch-size B match one process with B."""

from __future__ import annotations

import os
from typing import Any

import torch
from torch import nn


def env_world() -> tuple[int, int, int]:
    """(rank, world size, local rank) from torchrun's environment; (0, 1, 0) otherwise."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0"))


def setup(device: torch.device) -> tuple[int, int, torch.device]:
    """Join the process group when launched by torchrun; returns rank, world, device."""
    rank, world, local = env_world()
    if world <= 1:
        return 0, 1, device
    import torch.distributed as dist

    if device.type == "cuda":
        device = torch.device("cuda", local)
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


class LossModule(nn.Module):
    """DDP syncs gradients through `forward`; route the task's forward_loss through it."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: dict[str, Any]) -> tuple[torch.Tensor, int]:
        return self.model.forward_loss(batch)


def wrap(model: nn.Module, device: torch.device) -> nn.Module:
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    return DDP(LossModule(model), device_ids=ids)


def any_rank(flag: bool) -> bool:
    """True on every rank when it is true on any rank (stop and interrupt decisions)."""
    import torch.distributed as dist

    t = torch.tensor([1.0 if flag else 0.0])
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item())


def broadcast(obj: Any) -> Any:
    """Rank 0's object on every rank."""
    import torch.distributed as dist

    box = [obj]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    import torch.distributed as dist

    dist.barrier()


def shard_slice(n: int, rank: int, world: int) -> slice:
    """This rank's contiguous part of a global batch of n items."""
    per, extra = divmod(n, world)
    start = rank * per + min(rank, extra)
    return slice(start, start + per + (1 if rank < extra else 0))
