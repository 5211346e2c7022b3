"""Data-parallel helpers for a training script that ``torchrun`` may or may not launch.

``torchrun`` starts one process per device and tells each its place through the environment
(``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``/``MASTER_PORT``). Every function here
also works in a plain ``python`` process, as a world of one, so a training script calls them
unconditionally and the launcher alone decides how many processes train.

Typical use::

    device = distributed.setup("auto")          # joins the process group under torchrun
    order = distributed.epoch_indices(len(data), seed, epoch)   # this rank's share
    ...
    total = distributed.all_reduce_sum(torch.tensor([loss_sum, correct, seen]))
    path = distributed.main_only(lambda: save(...))             # rank 0 writes, all get path
    distributed.cleanup()                                       # all ranks leave together
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import TypeVar

import torch
import torch.distributed as dist

from mlpipes.errors import UserError

T = TypeVar("T")


def launched() -> bool:
    """True in a process started by ``torchrun`` (or anything setting its environment)."""
    return "RANK" in os.environ and "WORLD_SIZE" in os.environ


def rank() -> int:
    return dist.get_rank() if dist.is_initialized() else 0


def world_size() -> int:
    return dist.get_world_size() if dist.is_initialized() else 1


def local_rank() -> int:
    """This process's index on its own machine (selects its GPU)."""
    return int(os.environ.get("LOCAL_RANK", 0))


def is_main() -> bool:
    """The one process that prints and writes files."""
    return rank() == 0


def pick_device(name: str = "auto") -> torch.device:
    """``auto`` | ``cpu`` | ``cuda`` → a device; on CUDA each local rank gets its own GPU."""
    if name not in ("auto", "cpu", "cuda"):
        raise UserError(f"device {name!r}: expected auto, cpu or cuda")
    if name == "cpu" or (name == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise UserError("device 'cuda' requested but torch sees no CUDA GPU; use --device cpu or auto")
    index = local_rank()
    if index >= torch.cuda.device_count():
        raise UserError(
            f"LOCAL_RANK {index} but only {torch.cuda.device_count()} CUDA GPU(s) here; "
            "launch at most one process per GPU (torchrun --nproc-per-node)"
        )
    return torch.device("cuda", index)


def backend_for(device: torch.device) -> str:
    """gloo for CPU tensors always (metrics, objects); NCCL for CUDA tensors when training on GPUs."""
    return "cpu:gloo,cuda:nccl" if device.type == "cuda" else "gloo"


def setup(device_name: str = "auto") -> torch.device:
    """Pick this process's device and, when launched by torchrun, join the process group.

    A no-op apart from device selection in a plain process, or when the group already exists.
    """
    device = pick_device(device_name)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if launched() and not dist.is_initialized():
        dist.init_process_group(backend_for(device), device_id=device if device.type == "cuda" else None)
    return device


def cleanup() -> None:
    """Leave the process group, all ranks together, once training has succeeded.

    The barrier matters: a rank that tears its connections down while another is still
    finishing a collective makes gloo abort that one (SIGABRT at exit, about one run in four
    here). After an error, skip this: the other ranks may never reach the barrier, and torchrun
    stops them anyway.
    """
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Element-wise sum over ranks of a CPU tensor of counts or sums (float64 keeps them exact)."""
    total = values.detach().to("cpu", torch.float64 if values.is_floating_point() else torch.int64).clone()
    if dist.is_initialized():
        dist.all_reduce(total, op=dist.ReduceOp.SUM)
    return total


def broadcast_buffers(module: torch.nn.Module, src: int = 0) -> None:
    """Give every rank rank ``src``'s buffers (batch-norm running statistics).

    DDP syncs buffers before each training forward, so after the last step every rank holds the
    statistics of its own last batch; syncing once more makes evaluation use the saved model.
    """
    if dist.is_initialized():
        for buffer in module.buffers():
            dist.broadcast(buffer, src)


def broadcast_object(obj: T, src: int = 0) -> T:
    """Rank ``src``'s picklable ``obj`` on every rank."""
    if not dist.is_initialized():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def main_only(fn: Callable[[], T]) -> T:
    """``fn()`` run on rank 0 alone; every rank returns its result, or raises its exception.

    Forwarding the exception means a refused resume or a failed write stops every rank with the
    same one-line error, instead of leaving the others waiting at the next collective.
    """
    if not dist.is_initialized():
        return fn()
    outcome: tuple[T | None, BaseException | None] = (None, None)
    if is_main():
        try:
            outcome = (fn(), None)
        except Exception as e:
            outcome = (None, e)
    result, error = broadcast_object(outcome)
    if error is not None:
        raise error
    return result  # type: ignore[return-value]


@contextlib.contextmanager
def local_main_first() -> Iterator[None]:
    """Local rank 0 runs the block first (filling a per-machine cache), then the others do."""
    if local_rank() != 0:
        barrier()
    try:
        yield
    finally:
        if local_rank() == 0:
            barrier()


def epoch_indices(
    count: int, seed: int, epoch: int, for_rank: int | None = None, world: int | None = None
) -> torch.Tensor:
    """This rank's example indices for one epoch: an equal, disjoint share of a seeded shuffle.

    The permutation depends only on ``(seed, epoch)``, so every rank computes the same one and
    takes every ``world``-th entry. The last ``count % world`` entries are dropped, so all ranks
    take the same number of steps and none waits at a collective another never reaches. With a
    global batch ``B`` split into ``B / world`` per rank, step ``s`` of all ranks together covers
    exactly the examples step ``s`` of a single process would: the launcher does not change
    which examples are seen together.
    """
    me = rank() if for_rank is None else for_rank
    world = world_size() if world is None else world
    if not 0 <= me < world:
        raise ValueError(f"rank {me} outside a world of {world}")
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed * 1000 + epoch))
    share = count // world
    return order[me : share * world : world]


def share_bounds(count: int, for_rank: int, world: int, equal: bool = True) -> tuple[int, int]:
    """This rank's contiguous ``[start, stop)`` of ``count`` items in a sequence every rank agrees on.

    ``equal=True`` (training): every rank gets ``count // world`` and the last ``count % world``
    items are left out, so all ranks take the same number of steps. ``equal=False``
    (evaluation): shares differ by at most one and together cover every item exactly once.
    """
    if not 0 <= for_rank < world:
        raise ValueError(f"rank {for_rank} outside a world of {world}")
    if equal:
        share = count // world
        return for_rank * share, (for_rank + 1) * share
    return for_rank * count // world, (for_rank + 1) * count // world
