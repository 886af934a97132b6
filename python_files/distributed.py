"""Several processes, one model: PyTorch's DistributedDataParallel, launched by torchrun.

    torchrun --standalone --nproc_per_node=8 -m python_files.pretrain

torchrun starts one process per GPU and tells each its RANK, LOCAL_RANK and WORLD_SIZE in
environment variables. Every process holds a whole copy of the model and reads its own
batches; during the backward pass DDP averages the gradients across processes, so every copy
takes the same optimizer step. Only rank 0 writes checkpoints and logs. Without torchrun
there is one process, and none of this costs anything.
"""

from __future__ import annotations

import gc
import os
from dataclasses import dataclass
from typing import Callable, TypeVar

import torch
import torch.distributed as dist

from .device import default_device


@dataclass(frozen=True)
class Distributed:
    rank: int = 0           # this process among all of them
    local_rank: int = 0     # this process on this machine: which GPU it uses
    world_size: int = 1

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that writes files and prints."""
        return self.rank == 0


def start_distributed() -> Distributed:
    """Join the process group torchrun prepared (NCCL on GPUs, gloo on CPUs), if any."""
    if "RANK" not in os.environ:
        return Distributed()
    setup = Distributed(int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]),
                        int(os.environ["WORLD_SIZE"]))
    on_gpus = default_device().type == "cuda"
    if on_gpus:
        torch.cuda.set_device(setup.local_rank)
    dist.init_process_group("nccl" if on_gpus else "gloo")
    return setup


def stop_distributed(setup: Distributed) -> None:
    """Leave the process group, after collecting what may still hold it (a DDP wrapper that an
    exception's traceback kept alive, say), so that nothing using the group is torn down after it."""
    if setup.enabled:
        gc.collect()
        dist.destroy_process_group()


Result = TypeVar("Result")


def run_in_every_process(job: Callable[[torch.device | None, Distributed], Result]
                         ) -> tuple[Result, Distributed]:
    """Run `job(device, setup)` alone, or as one of torchrun's processes (then on its own GPU).

    Alone, the device is None: the job picks its default. The process group is left even when
    the job fails, so the other processes are not kept waiting.
    """
    setup = start_distributed()
    try:
        result = job(device_for(setup) if setup.enabled else None, setup)
        wait_for_all(setup)   # leave together: see stop_distributed
        return result, setup
    finally:
        stop_distributed(setup)


def device_for(setup: Distributed) -> torch.device:
    """Each process its own GPU; on CPUs (or `LLM_DEVICE=cpu`), all share the CPU."""
    return torch.device(f"cuda:{setup.local_rank}" if default_device().type == "cuda" else "cpu")


def mean_over_processes(value: float, setup: Distributed, device: torch.device) -> float:
    """The mean of `value` over all processes (every process gets the same result)."""
    if not setup.enabled:
        return value
    tensor = torch.tensor([value], dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.item() / setup.world_size


def sum_over_processes(values: list[float], setup: Distributed, device: torch.device) -> list[float]:
    """The sums of `values` over all processes, in one exchange (every process gets the same)."""
    if not setup.enabled:
        return values
    tensor = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor.tolist()


def any_over_processes(flag: bool, setup: Distributed, device: torch.device) -> bool:
    """True in every process when `flag` is True in any of them (so that all stop together)."""
    if not setup.enabled:
        return flag
    tensor = torch.tensor([int(flag)], device=device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item())


def wait_for_all(setup: Distributed) -> None:
    """Return once every process has come here (at once when there is only one)."""
    if setup.enabled:
        dist.barrier()
