"""Data-parallel training under ``torchrun``: one process per device, DDP, rank 0 speaks for the job.

torchrun (not a launcher of ours) starts the processes and sets RANK, LOCAL_RANK and WORLD_SIZE; a plain
``python -m <bench>.train`` is a world of one and takes none of these paths.

    torchrun --nproc-per-node 2 -m recommendation.train --config mini
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint host0:29500 --rdzv-id job1 \\
        -m image_classification.train --config reference --device gpu      # the same command on each node

The process group uses gloo on CPU and nccl on GPU. Every rank takes rank 0's seed (the reference broadcasts
it), so model initialisation and the data order agree everywhere; DDP then keeps the weights equal by averaging
gradients. Only rank 0 writes the mllog log (``loadgen.training.timing.MLLog(rank=...)``) and saves; evaluation is
sharded over the ranks and merged on rank 0 (:func:`gather`), so no rank waits idle while another evaluates.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import os
import sys
from collections.abc import Callable, Iterable

import numpy as np
import torch
import torch.distributed as dist

# How long a collective may wait for a missing rank before failing. torchrun ends the job when a process dies;
# this bounds the wait of a rank whose peer hangs without dying.
TIMEOUT = datetime.timedelta(minutes=10)


class BatchSplitError(ValueError):
    """The global batch size does not split evenly over the processes."""


@dataclasses.dataclass(frozen=True)
class World:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def local_batch(self, global_batch: int) -> int:
        """This rank's share of a global batch, which must split evenly."""
        if global_batch % self.world_size:
            raise BatchSplitError(f"the global batch size {global_batch} does not split over {self.world_size} "
                                  f"processes; pick a multiple of {self.world_size}")
        return global_batch // self.world_size


class SeededShards(torch.utils.data.DistributedSampler):
    """This rank's share of each epoch's shuffled order, as ``(index, epoch, seed)`` keys.

    The order is DistributedSampler's (one permutation per epoch, rank r takes every world_size-th index), so the
    ranks' batches of one step together make the batch a single process would take. A dataset that reads the key
    draws its augmentation from it, the same whichever rank or DataLoader worker loads the sample.
    """

    def __init__(self, dataset, world: World, seed: int) -> None:
        super().__init__(dataset, num_replicas=world.world_size, rank=world.rank, shuffle=True, seed=seed,
                         drop_last=True)

    def __iter__(self):
        return ((i, self.epoch, self.seed) for i in super().__iter__())


def sample_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator of one training sample's augmentation (a :class:`SeededShards` key's): a function of
    (seed, epoch, index) alone, so any rank or DataLoader worker draws the same."""
    return np.random.default_rng([seed & 0xFFFFFFFF, epoch, index])


def init(device: str) -> World:
    """Join torchrun's process group when WORLD_SIZE > 1; otherwise a world of one."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return World()
    world = World(int(os.environ["RANK"]), world_size, int(os.environ.get("LOCAL_RANK", "0")))
    if device == "gpu":
        torch.cuda.set_device(world.local_rank)
    dist.init_process_group("nccl" if device == "gpu" else "gloo", timeout=TIMEOUT)
    return world


def run(device: str, train: Callable[[World], int], prog: str = "train") -> int:
    """Check the device, join the process group (if any), run ``train(world)`` and leave the group again.

    Usage errors found here or in ``train`` (no GPU, a batch that does not split) are one line and exit 2.
    """
    if device == "gpu" and not torch.cuda.is_available():
        print(f"{prog}: error: --device gpu needs a CUDA GPU", file=sys.stderr)
        return 2
    world = init(device)
    try:
        return train(world)
    except BatchSplitError as exc:
        print(f"{prog}: error: {exc}", file=sys.stderr)
        return 2
    finally:
        close(world)


def device_of(world: World, device: str) -> torch.device:
    return torch.device("cuda", world.local_rank) if device == "gpu" else torch.device("cpu")


def _scalar(value: float, dtype: torch.dtype) -> torch.Tensor:
    """A one-element tensor where the process group's backend can reduce it: nccl works on GPU tensors only."""
    t = torch.tensor([value], dtype=dtype)
    return t.cuda() if dist.get_backend() == "nccl" else t


def broadcast_seed(world: World, seed: int) -> int:
    """Rank 0's seed, on every rank."""
    if not world.distributed:
        return seed
    t = _scalar(seed, torch.int64)
    dist.broadcast(t, src=0)
    return int(t.item())


def wrap(world: World, model: torch.nn.Module) -> torch.nn.Module:
    """DDP over the model when distributed (its parameters must already be on this rank's device)."""
    if not world.distributed:
        return model
    device_ids = [world.local_rank] if next(model.parameters()).is_cuda else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=device_ids)


def unwrap(model: torch.nn.Module) -> torch.nn.Module:
    return model.module if isinstance(model, torch.nn.parallel.DistributedDataParallel) else model


def mean(world: World, value: float) -> float:
    """The mean of a number over the ranks (a loss, for the log)."""
    if not world.distributed:
        return value
    t = _scalar(value, torch.float64)
    dist.all_reduce(t)
    return float(t.item()) / world.world_size


def broadcast_flag(world: World, flag: bool) -> bool:
    """Rank 0's decision (stop or go on), on every rank, so that no rank waits in a collective alone."""
    if not world.distributed:
        return flag
    t = _scalar(int(flag), torch.int64)
    dist.broadcast(t, src=0)
    return bool(t.item())


class OutOfSync(RuntimeError):
    """The ranks' weights differ: the gradients were not averaged the same way everywhere."""


def check_in_sync(world: World, parameters: Iterable[torch.Tensor]) -> None:
    """Raise OutOfSync unless every rank holds the same ``parameters`` (two sums, compared exactly).

    DDP gives every rank the same averaged gradient, so the weights stay bit-identical; a difference means a rank
    trained on its own. Buffers (BatchNorm's running statistics) are left out: each rank updates them from its
    own share of the batch.
    """
    if not world.distributed:
        return
    with torch.no_grad():
        params = [p.detach().double() for p in parameters]
        mine = torch.stack([sum(p.sum() for p in params), sum((p * p).sum() for p in params)])
    if dist.get_backend() == "nccl":
        mine = mine.cuda()
    everyone = [torch.empty_like(mine) for _ in range(world.world_size)]
    dist.all_gather(everyone, mine)
    differ = [r for r, theirs in enumerate(everyone) if not torch.equal(theirs, everyone[0])]
    if differ:
        raise OutOfSync(f"after training, the weights of rank(s) {differ} differ from rank 0's")


def broadcast_buffers(world: World, model: torch.nn.Module) -> None:
    """Rank 0's buffers (BatchNorm's running statistics) on every rank, before a sharded evaluation.

    Each rank updated them from its own share of the last batch; DDP would overwrite them with rank 0's at the
    next forward anyway, and evaluating every shard with the same statistics makes the merged result the one a
    single process would compute with rank 0's model.
    """
    if not world.distributed:
        return
    for buffer in unwrap(model).buffers():
        dist.broadcast(buffer.data, src=0)


class DataParallel:
    """How the driver treats a workload's model across ranks: here, replicated on every rank and DDP-wrapped.

    A workload whose model is split over the ranks (DLRM's tables on TorchRec) returns its own subclass from
    ``Workload.parallel()``; the driver goes through these methods only, so it never needs to know which.
    """

    def __init__(self, world: World) -> None:
        self.world = world

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """The model the training loop calls (DDP when distributed)."""
        return wrap(self.world, model)

    def eval_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """What evaluation calls: the bare model, so that each rank evaluates its shard alone."""
        return unwrap(model)

    def eval_context(self):
        """The grad mode evaluation runs in."""
        return torch.inference_mode()

    def broadcast_buffers(self, model: torch.nn.Module) -> None:
        broadcast_buffers(self.world, model)

    def replicated_parameters(self, model: torch.nn.Module) -> Iterable[torch.Tensor]:
        """The parameters every rank must hold identically after training."""
        return unwrap(model).parameters()

    def state_dict(self, model: torch.nn.Module) -> dict[str, torch.Tensor]:
        """The whole model's state dict, for saving on rank 0 (every rank calls it: a split model gathers)."""
        return unwrap(model).state_dict()

    def load_state_dict(self, model: torch.nn.Module, state: dict[str, torch.Tensor]) -> None:
        unwrap(model).load_state_dict(state)


def gather(world: World, part: object) -> list[object] | None:
    """Every rank's ``part`` (any picklable object), in rank order, on rank 0; None on the other ranks."""
    if not world.distributed:
        return [part]
    parts = [None] * world.world_size if world.is_main else None
    dist.gather_object(part, parts, dst=0)
    return parts


@contextlib.contextmanager
def main_first(world: World):
    """Rank 0 runs the block first (building a mini set, a preprocessing cache), then the others, who find it
    done: no two processes write the same files at once."""
    if world.distributed and not world.is_main:
        dist.barrier()
    yield
    if world.distributed and world.is_main:
        dist.barrier()


def close(world: World) -> None:
    if world.distributed and dist.is_initialized():
        dist.destroy_process_group()
