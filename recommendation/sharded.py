"""DLRM with its embedding tables sharded over the processes of a torchrun job, on TorchRec.

At Terabyte scale the tables are the model: 26 tables of up to 40 M rows x 128 floats, about 96 GB, more than one
GPU holds, while the MLPs are a few MB. So, as the MLPerf DLRM-DCNv2 reference does, the tables live in a TorchRec
``EmbeddingBagCollection`` that ``DistributedModelParallel`` splits over the ranks by the plan of TorchRec's
sharding planner (table-wise, row-wise or column-wise; the planner's choice unless ``--sharding`` forces one),
lookups travel by all-to-all, and each rank updates only the rows it holds with SGD fused into the backward pass
(sparse: no dense gradient of a table is ever allocated). The MLPs are data-parallel (DDP inside
DistributedModelParallel). The learning rate and its schedule are the unsharded run's, for both parts.

The sharded model is the single-process :class:`~recommendation.models.DLRM` in other clothes: the same MLPs, the
same :func:`~recommendation.models.interact`, and, when the tables fit in a host's memory (``EXACT_INIT_BYTES``),
the very weights an unsharded run starts from, copied into each rank's shards; so a sharded and an unsharded run
from the same seed take the same steps up to float summation order (whose last-bit differences a long run at a
high rate can grow: tests/recommendation/test_sharded.py). Saving gathers the shards into the
unsharded layout (``emb_l.K.weight``), which inference and export load as they are.

TorchRec's sharder offers row-wise sharding on GPUs only; its CPU kernels run it correctly (the tests compare it
with the unsharded model), so :class:`Sharder` offers it on CPU too, where the tests run.

Nothing here is imported by a single-process run: torchrec is needed only under torchrun and for ``--dry-run``.
"""

from __future__ import annotations

import dataclasses
import logging
import warnings
from collections.abc import Sequence

import torch
import torch.distributed as dist
from torch import nn
from torchrec import EmbeddingBagCollection, EmbeddingBagConfig, KeyedJaggedTensor
from torchrec.distributed import DistributedModelParallel
from torchrec.distributed.embeddingbag import EmbeddingBagCollectionSharder
from torchrec.distributed.planner import EmbeddingShardingPlanner
from torchrec.distributed.planner.storage_reservations import FixedPercentageStorageReservation
from torchrec.distributed.planner.types import (
    KernelConfig,
    ParameterConstraints,
    PlannerError,
    TopologyFactory,
    TrainerConfig,
)
from torchrec.distributed.types import ShardingEnv, ShardingPlan, ShardingType
from torchrec.optim.apply_optimizer_in_backward import apply_optimizer_in_backward

from loadgen.training import distributed
from loadgen.training.distributed import World
from recommendation.data import N_SPARSE
from recommendation.models import ARCHS, DLRM, SHARDING_TYPES, build, interact

FEATURES = [f"f{k}" for k in range(N_SPARSE)]
TABLE_KEY = "sparse.embedding_bags.t{}.weight"  # the sharded model's name of table K; the unsharded one's:
EMB_KEY = "emb_l.{}.weight"
# Up to this many bytes of tables, every rank builds the unsharded model's initial tables and keeps its shards,
# so sharded and unsharded runs start from the same weights. Beyond it (Terabyte: 96 GB) each rank initialises
# only its shards, from TorchRec's U(-sqrt(1/n), sqrt(1/n)): the reference's distribution, not the same numbers.
EXACT_INIT_BYTES = 4 << 30
BYTES_PER_WEIGHT = 4  # float32 tables, as the reference; SGD keeps no optimizer state beside them
RESERVE = 0.15  # of each device's memory, kept by the planner for the MLPs, activations and communication buffers


class PlanError(ValueError):
    """The tables do not fit the devices (one line, naming the bytes)."""


class Sharder(EmbeddingBagCollectionSharder):
    """TorchRec's sharder, offering row-wise and table-row-wise sharding on CPU too (see the module docstring)."""

    def sharding_types(self, compute_device_type: str) -> list[str]:
        types = super().sharding_types(compute_device_type)
        extra = [ShardingType.ROW_WISE.value, ShardingType.TABLE_ROW_WISE.value]
        return types + [t for t in extra if t not in types]


class ShardedDLRM(nn.Module):
    """The MLPs of a :class:`DLRM` and its 26 tables as one TorchRec ``EmbeddingBagCollection`` (on the meta
    device until DistributedModelParallel places the shards)."""

    def __init__(self, dense: DLRM) -> None:
        super().__init__()
        self.bot_l, self.top_l = dense.bot_l, dense.top_l
        self.register_buffer("pairs", dense.pairs.clone(), persistent=False)
        tables = [EmbeddingBagConfig(name=f"t{k}", embedding_dim=dense.arch.dim, num_embeddings=n,
                                     feature_names=[FEATURES[k]]) for k, n in enumerate(dense.table_sizes)]
        self.sparse = EmbeddingBagCollection(tables=tables, device=torch.device("meta"))

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        """As DLRM.forward: dense (N, 13), sparse (N, 26) row indices -> click probability (N, 1)."""
        # One index per sample and feature, feature-major, as a KeyedJaggedTensor wants it.
        features = KeyedJaggedTensor.from_lengths_sync(
            keys=FEATURES, values=sparse.t().reshape(-1),
            lengths=torch.ones(sparse.numel(), dtype=torch.int32, device=sparse.device))
        x = self.bot_l(dense)
        pooled = self.sparse(features)
        return interact(x, [pooled[f] for f in FEATURES], self.top_l, self.pairs)


def table_bytes(sizes: Sequence[int], dim: int) -> int:
    return sum(sizes) * dim * BYTES_PER_WEIGHT


def constraints(sharding: str) -> dict[str, ParameterConstraints]:
    """Fused kernels only: tables in device memory, updated in the backward pass. No data-parallel tables (their
    gradients would be dense) and no UVM placement in host memory (TorchRec's route past device memory, slower
    than the reference's all-in-HBM tables and not what a reference run measures)."""
    types = list(SHARDING_TYPES) + ["table_row_wise", "table_column_wise"] if sharding == "auto" else [sharding]
    return {f"t{k}": ParameterConstraints(sharding_types=types, compute_kernels=["fused"]) for k in range(N_SPARSE)}


def planner(world_size: int, compute_device: str, local_batch: int, sharding: str, device_memory: int | None = None,
            local_world_size: int | None = None) -> EmbeddingShardingPlanner:
    topology = TopologyFactory.create_topology(
        TrainerConfig(world_size=world_size, local_world_size=local_world_size, hbm_cap_bytes=device_memory),
        kernel_config=KernelConfig(compute_device=compute_device))
    return EmbeddingShardingPlanner(topology=topology, batch_size=local_batch, constraints=constraints(sharding),
                                    storage_reservation=FixedPercentageStorageReservation(RESERVE), debug=False)


def _meta_model(arch: str, sizes: Sequence[int], lr: float) -> ShardedDLRM:
    with torch.device("meta"):
        model = ShardedDLRM(build(arch, sizes, tables=False))
    # The planner sizes the optimizer state from the optimizer attached here (SGD: none).
    apply_optimizer_in_backward(torch.optim.SGD, model.sparse.parameters(), {"lr": lr})
    return model


def _refusal(exc: PlannerError, arch: str, sizes: Sequence[int], world_size: int, device_memory: int | None) -> str:
    need = table_bytes(sizes, ARCHS[arch].dim)
    cap = f"{world_size} x {device_memory / 1e9:g} GB" if device_memory else f"{world_size} device(s)"
    return (f"the {arch} tables ({sum(sizes):,} rows x {ARCHS[arch].dim} float32) need {need / 1e9:.1f} GB "
            f"({need:,} bytes) of device memory and do not fit on {cap} less the planner's {RESERVE:.0%} reserve; "
            f"use more ranks or larger devices (TorchRec planner: {exc.error_type.name.lower()})")


# -- the memory plan (--dry-run) ---------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class MemoryPlan:
    plan: ShardingPlan
    per_rank: list[int]  # bytes of table shards on each rank

    def describe(self, arch: str, sizes: Sequence[int], device_memory: int | None) -> str:
        dim = ARCHS[arch].dim
        lines = [f"tables: {N_SPARSE} x {dim} float32, {sum(sizes):,} rows, {table_bytes(sizes, dim):,} bytes "
                 f"({table_bytes(sizes, dim) / 1e9:.2f} GB); optimizer state: none (SGD)",
                 "the planner's plan:", str(self.plan).strip(), "per rank:"]
        for rank, used in enumerate(self.per_rank):
            share = f" of {device_memory / 1e9:g} GB ({used / device_memory:.0%})" if device_memory else ""
            lines.append(f"  rank {rank}: {used:,} bytes ({used / 1e9:.2f} GB){share} of table shards")
        return "\n".join(lines)


def plan_memory(arch: str, sizes: Sequence[int], world_size: int, device_memory: int | None, batch_size: int,
                sharding: str = "auto", compute_device: str = "cuda", lr: float = 1.0) -> MemoryPlan:
    """The planner's plan for ``world_size`` ranks of ``device_memory`` bytes each, computed on the meta device
    (nothing allocated), or PlanError naming the bytes the tables need."""
    model = _meta_model(arch, sizes, lr)
    try:
        plan = planner(world_size, compute_device, max(1, batch_size // world_size), sharding, device_memory,
                       local_world_size=min(world_size, 8)).plan(model, [Sharder()])
    except PlannerError as exc:
        raise PlanError(_refusal(exc, arch, sizes, world_size, device_memory)) from None
    per_rank = [0] * world_size
    for shardings in plan.plan.values():
        for sharding_ in shardings.values():
            for shard in sharding_.sharding_spec.shards:
                rows, cols = shard.shard_sizes
                per_rank[shard.placement.rank()] += rows * cols * BYTES_PER_WEIGHT
    return MemoryPlan(plan, per_rank)


# -- training: the model, its optimizer, and how the driver saves and checks it -----------------------------------
class Optimizers:
    """The MLPs' SGD and the tables' SGD (fused into TorchRec's backward) as the one optimizer the driver steps.

    The driver sets ``lr`` in every param group, then calls zero_grad, the forward and backward passes and step:
    zero_grad is where the fused optimizer hands the new rate to its kernels, which take it in the forward pass
    and apply it in the backward pass.
    """

    def __init__(self, dense: torch.optim.SGD, fused) -> None:
        self.dense, self.fused = dense, fused

    @property
    def param_groups(self) -> list[dict]:
        return [*self.dense.param_groups, *self.fused.param_groups]

    def zero_grad(self, set_to_none: bool = True) -> None:
        self.dense.zero_grad(set_to_none=set_to_none)
        self.fused.zero_grad()

    def step(self) -> None:
        self.dense.step()
        self.fused.step()

    def state_dict(self) -> dict:
        return self.dense.state_dict()  # plain SGD keeps no state in the fused part

    def load_state_dict(self, state: dict) -> None:
        self.dense.load_state_dict(state)


class ModelParallel(distributed.DataParallel):
    """How the driver handles the sharded model: no DDP wrap of its own (DistributedModelParallel has one),
    unsharded state gathered on rank 0 for saving, shards filled from an unsharded state for resuming, and the
    replicated MLPs alone compared at the end."""

    def wrap(self, model: nn.Module) -> nn.Module:
        return model

    def eval_model(self, model: nn.Module) -> nn.Module:
        return model  # every rank runs the sharded forward (lookups are collective)

    def eval_context(self):
        # fbgemm's CPU table lookup is registered for autograd only: under inference_mode it has no kernel.
        return torch.no_grad()

    def broadcast_buffers(self, model: nn.Module) -> None:
        pass  # DLRM has no batch statistics, and the kernels' buffers are per rank

    def replicated_parameters(self, model: nn.Module) -> list[torch.Tensor]:
        return [p for name, p in model.named_parameters() if not name.startswith("sparse.")]

    def __init__(self, world: World) -> None:
        super().__init__(world)
        # Shards travel to rank 0's host memory over gloo: with nccl they would have to land in rank 0's GPU, which
        # has no room for a 20 GB table beside its own shards. (Every rank creates the group, in the same order.)
        gloo = dist.get_backend() == "gloo"
        self.host_group = dist.GroupMember.WORLD if gloo else dist.new_group(backend="gloo")

    def state_dict(self, model: nn.Module) -> dict[str, torch.Tensor]:
        """The unsharded model's state dict on rank 0's host (empty elsewhere); every rank must call it."""
        out: dict[str, torch.Tensor] = {}
        for key, value in model.state_dict().items():
            if hasattr(value, "local_shards"):  # a ShardedTensor
                full = self._gather(value)
            else:
                full = value.detach().cpu().clone() if self.world.is_main else None
            if full is not None:
                out[_unsharded_name(key)] = full
        return out

    def _gather(self, value) -> torch.Tensor | None:
        """A sharded table whole on rank 0's host (None elsewhere), one shard at a time."""
        main = self.world.is_main
        full = torch.empty(value.size(), dtype=value.dtype) if main else None
        mine = {tuple(shard.metadata.shard_offsets): shard.tensor for shard in value.local_shards()}
        for meta in value.metadata().shards_metadata:
            (r, c), (h, w) = meta.shard_offsets, meta.shard_sizes
            owner = meta.placement.rank()
            if owner == self.world.rank:
                shard = mine[(r, c)].detach().cpu().contiguous()
                if main:
                    full[r:r + h, c:c + w] = shard
                else:
                    dist.send(shard, dst=0, group=self.host_group)
            elif main:
                shard = torch.empty((h, w), dtype=value.dtype)
                dist.recv(shard, src=owner, group=self.host_group)
                full[r:r + h, c:c + w] = shard
        return full

    def load_state_dict(self, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
        """Fill this rank's shards and the MLPs from an unsharded state dict (every rank reads it)."""
        copy_into(model, state)


def _unsharded_name(key: str) -> str:
    if key.startswith("sparse.embedding_bags.t"):
        return EMB_KEY.format(int(key.split(".")[2][1:]))
    return key


@torch.no_grad()
def copy_into(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Copy an unsharded state dict (DLRM's names) into a sharded model: each rank its shards, and the MLPs."""
    for key, value in model.state_dict().items():
        source = state[_unsharded_name(key)]
        if hasattr(value, "local_shards"):
            for shard in value.local_shards():
                (r, c), (h, w) = shard.metadata.shard_offsets, shard.metadata.shard_sizes
                shard.tensor.copy_(source[r:r + h, c:c + w])
        else:
            value.copy_(source)


def _quiet_library_warnings() -> None:
    """TorchRec 1.9 calls torch.distributed APIs that torch 2.14 deprecates (ShardedTensor, reduce_scatter_tensor,
    DDP's broadcast_buffers), and each process would print each notice: nothing a user of this benchmark can act on."""
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(torchrec|torch\.distributed)(\.|$)")
    warnings.filterwarnings("ignore", category=FutureWarning, message="Please use DTensor instead")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torchrec(\.|$)")
    logging.getLogger("torch.fx._symbolic_trace").setLevel(logging.ERROR)  # "is_fx_tracing will return true..."


def build_sharded(world: World, device: torch.device, arch: str, sizes: Sequence[int], lr: float,
                  local_batch: int, sharding: str = "auto") -> tuple[nn.Module, Optimizers, ModelParallel]:
    """The DistributedModelParallel DLRM, its optimizer and its driver strategy. Every rank calls it after the
    seed is set, so every rank builds the same MLPs (and, below EXACT_INIT_BYTES, the same initial tables)."""
    _quiet_library_warnings()
    exact = table_bytes(sizes, ARCHS[arch].dim) <= EXACT_INIT_BYTES
    unsharded = build(arch, sizes, tables=exact)  # the single-process model's initial weights (tables: if small)
    model = ShardedDLRM(unsharded)
    apply_optimizer_in_backward(torch.optim.SGD, model.sparse.parameters(), {"lr": lr})
    compute_device = "cuda" if device.type == "cuda" else "cpu"
    # The GPU's own size: the planner otherwise assumes 32 GiB per device. (On CPU it plans for host memory.)
    memory = torch.cuda.get_device_properties(device).total_memory if device.type == "cuda" else None
    pg = dist.GroupMember.WORLD
    try:
        plan = planner(world.world_size, compute_device, local_batch, sharding, memory).collective_plan(
            model, [Sharder()], pg)
    except PlannerError as exc:
        raise PlanError(_refusal(exc, arch, sizes, world.world_size, memory)) from None
    dmp = DistributedModelParallel(model, env=ShardingEnv.from_process_group(pg), device=device, plan=plan,
                                   sharders=[Sharder()])
    if exact:
        copy_into(dmp, unsharded.state_dict())
    dense = torch.optim.SGD([p for name, p in dmp.named_parameters() if not name.startswith("sparse.")], lr=lr)
    return dmp, Optimizers(dense, dmp.fused_optimizer), ModelParallel(world)
