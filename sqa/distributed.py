"""The process-group context of a ``torchrun`` launch, shared by every trainer.

One rule for all three trainers (predictor, ranker, restorer): ``WORLD_SIZE > 1`` starts a process
group (NCCL when CUDA is available, else gloo) and each process takes the device of its
``LOCAL_RANK`` (``cuda:<LOCAL_RANK>``, made current with ``torch.cuda.set_device``); a CPU run keeps
the configured device. Without torchrun it is the single process ``rank 0 of 1``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class DistributedContext:
    """Where this process stands in a (possibly single-process) run.

    Attributes:
        rank: Global rank (0 writes files).
        world_size: Number of processes.
        device: Torch device of this process, e.g. ``cuda:1`` or ``cpu``.
    """

    rank: int
    world_size: int
    device: str

    @property
    def distributed(self) -> bool:
        """Whether a process group is in use."""
        return self.world_size > 1


def distributed_context(device: str) -> DistributedContext:
    """Join the torchrun process group (if any) and choose this process's device.

    Args:
        device: Configured device (``cpu``, ``cuda``, ``cuda:0``); under torchrun with CUDA it is
            replaced by ``cuda:<LOCAL_RANK>`` so that processes do not share one GPU.

    Returns:
        The :class:`DistributedContext`.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistributedContext(0, 1, device)
    import torch
    import torch.distributed

    use_cuda = torch.cuda.is_available() and not device.startswith("cpu")
    if not torch.distributed.is_initialized():
        torch.distributed.init_process_group("nccl" if use_cuda else "gloo")
    if use_cuda:
        device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
        torch.cuda.set_device(device)
    return DistributedContext(torch.distributed.get_rank(), world_size, device)
