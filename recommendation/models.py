"""DLRM (Naumov et al. 2019, arXiv:1906.00091) as the MLPerf reference builds it, with no external checkout.

Dense features go through the bottom MLP; each categorical feature picks one row of its embedding table; the
dot products of every pair of those 27 vectors (the "dot" interaction, without self-pairs) are concatenated to
the bottom MLP's output and go through the top MLP and a sigmoid.

Module names match the reference's (``emb_l.K.weight``, ``bot_l.N.weight``, ``top_l.N.weight``), so its
checkpoints ``tb0875_10M.pt`` and ``tb00_40M.pt`` load as they are (see :func:`load_reference_checkpoint`).

This is the single-process model (the demo, the tests, inference and export): ``nn.EmbeddingBag`` holds the
tables, and with one index per sample (Criteo is one-hot) a row lookup is what a bag of one sums to, which also
exports to ONNX as a plain Gather. Under torchrun the tables are sharded over the processes by TorchRec instead
(:mod:`recommendation.sharded`), around the same MLPs and the same :func:`interact`, and saved back in this
model's layout.
"""

from __future__ import annotations

import dataclasses
import math
import os
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from loadgen.training.checkpoint import CheckpointError  # one error type for every checkpoint problem
from recommendation.data import N_DENSE, N_SPARSE


@dataclasses.dataclass(frozen=True)
class Arch:
    bottom: tuple[int, ...]  # layer widths from the 13 dense features to the embedding dimension
    top: tuple[int, ...]  # layer widths after the interaction, ending in 1
    dim: int  # embedding dimension (= bottom[-1])

    def __post_init__(self) -> None:
        if self.bottom[0] != N_DENSE or self.bottom[-1] != self.dim or self.top[-1] != 1:
            raise ValueError(f"inconsistent DLRM arch {self}")


ARCHS = {
    # MLPerf DLRM (training v0.7-v2.1 reference, inference reference): --arch-sparse-feature-size=128
    # --arch-mlp-bot=13-512-256-128 --arch-mlp-top=1024-1024-512-256-1 --arch-interaction-op=dot
    "terabyte": Arch(bottom=(13, 512, 256, 128), top=(1024, 1024, 512, 256, 1), dim=128),
    # The DLRM reference's Kaggle run: --arch-sparse-feature-size=16 --arch-mlp-bot=13-512-256-64-16
    # --arch-mlp-top=512-256-1
    "kaggle": Arch(bottom=(13, 512, 256, 64, 16), top=(512, 256, 1), dim=16),
    # The embedded mini set (150k lines): the Kaggle shape, narrower.
    "mini": Arch(bottom=(13, 64, 16), top=(64, 32, 1), dim=16),
}

# How TorchRec may split the tables over the processes of a torchrun job (recommendation.sharded), besides
# "auto", the planner's choice per table. Here, not there, so that the flags parse without importing torchrec.
SHARDING_TYPES = ("table_wise", "row_wise", "column_wise")


def _mlp(widths: Sequence[int], sigmoid_last: bool) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (m, n) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
        linear = nn.Linear(m, n)
        # The reference's initialisation: weights N(0, sqrt(2 / (m + n))), biases N(0, sqrt(1 / n)).
        nn.init.normal_(linear.weight, 0.0, math.sqrt(2.0 / (m + n)))
        nn.init.normal_(linear.bias, 0.0, math.sqrt(1.0 / n))
        layers.append(linear)
        last = i == len(widths) - 2
        layers.append(nn.Sigmoid() if last and sigmoid_last else nn.ReLU())
    return nn.Sequential(*layers)


def _pairs() -> torch.Tensor:
    """Flat indices of the pairs (i, j), j < i, of the 27 x 27 dot products: no self-interaction, as the reference."""
    n = N_SPARSE + 1
    li, lj = torch.tril_indices(n, n, offset=-1)
    return li * n + lj


class DLRM(nn.Module):
    def __init__(self, arch: Arch, table_sizes: Sequence[int], tables: bool = True) -> None:
        """``tables=False`` leaves the tables unallocated (on the meta device, uninitialised): the sharded model
        takes the MLPs alone when the tables are too large for one host (see recommendation.sharded)."""
        super().__init__()
        if len(table_sizes) != N_SPARSE:
            raise ValueError(f"DLRM needs {N_SPARSE} table sizes, got {len(table_sizes)}")
        self.arch = arch
        self.emb_l = nn.ModuleList()
        for n in table_sizes:
            bag = nn.EmbeddingBag(n, arch.dim, mode="sum", device=None if tables else "meta")
            if tables:
                # The reference's initialisation: U(-sqrt(1/n), sqrt(1/n)) per table of n rows.
                nn.init.uniform_(bag.weight, -math.sqrt(1.0 / n), math.sqrt(1.0 / n))
            self.emb_l.append(bag)
        self.bot_l = _mlp(arch.bottom, sigmoid_last=False)
        interactions = (N_SPARSE + 1) * N_SPARSE // 2
        self.top_l = _mlp((arch.dim + interactions, *arch.top), sigmoid_last=True)
        self.register_buffer("pairs", _pairs(), persistent=False)

    @property
    def table_sizes(self) -> list[int]:
        return [e.num_embeddings for e in self.emb_l]

    def forward(self, dense: torch.Tensor, sparse: torch.Tensor) -> torch.Tensor:
        """dense (N, 13) float32 after log(x + 1); sparse (N, 26) int64 row indices -> click probability (N, 1)."""
        x = self.bot_l(dense)
        return interact(x, [F.embedding(sparse[:, k], e.weight) for k, e in enumerate(self.emb_l)], self.top_l,
                        self.pairs)


def interact(x: torch.Tensor, embedded: Sequence[torch.Tensor], top_l: nn.Module, pairs: torch.Tensor) -> torch.Tensor:
    """The bottom MLP's output (N, dim) and the 26 looked-up rows (N, dim each) -> click probability (N, 1): their
    pairwise dot products (``pairs`` of them), after x, through the top MLP. Shared with the sharded model."""
    t = torch.stack([x, *embedded], dim=1)
    z = torch.bmm(t, t.transpose(1, 2))
    return top_l(torch.cat([x, z.flatten(1).index_select(1, pairs)], dim=1))


def build(arch: str, table_sizes: Sequence[int], tables: bool = True) -> DLRM:
    if arch not in ARCHS:
        raise ValueError(f"unknown DLRM arch {arch!r} (choose from {', '.join(ARCHS)})")
    return DLRM(ARCHS[arch], table_sizes, tables)


def _arch_of(state: dict) -> str:
    for name, arch in ARCHS.items():
        if tuple(state["bot_l.0.weight"].shape) == (arch.bottom[1], N_DENSE) and \
                state["emb_l.0.weight"].shape[1] == arch.dim and len([k for k in state if k.startswith("top_l.")]) \
                == 2 * (len(arch.top)):
            return name
    raise CheckpointError("the checkpoint's layer shapes match none of the DLRM configs " + ", ".join(ARCHS))


def load_reference_checkpoint(path: str | os.PathLike) -> tuple[DLRM, dict]:
    """The reference's ``torch.save`` checkpoint (``tb0875_10M.pt``, ``tb00_40M.pt`` or ours as .pt), safely.

    Format: a dict with ``state_dict`` (``emb_l.K.weight`` (rows_K, dim) for K in 0..25, then ``bot_l.N.weight``/
    ``.bias`` and ``top_l.N.weight``/``.bias`` for the Linear layers at even N), beside ``epoch``, ``iter``,
    ``train_acc``, ``test_acc`` and the optimiser's state. It is read with ``weights_only=True``, which builds
    tensors, containers and numbers only, memory-mapped so that tb00_40M's 90 GB are not copied. Anything else
    in the pickle (code to run) is refused.
    """
    path = Path(path)
    try:
        with torch.serialization.safe_globals([np.dtype, np.float64, np.float32, np.int64,
                                               type(np.dtype(np.float64)), type(np.dtype(np.float32)),
                                               type(np.dtype(np.int64)), np._core.multiarray.scalar]):
            ckpt = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0]
        raise CheckpointError(f"{path}: refused: it holds pickled objects other than tensors and numbers, which "
                              f"could run code ({first})") from None
    except (RuntimeError, OSError, EOFError, ValueError) as exc:  # garbage, truncated or empty files
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise CheckpointError(f"{path}: not a readable torch checkpoint ({first})") from None
    state = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or "emb_l.0.weight" not in state:
        raise CheckpointError(f"{path}: no DLRM state_dict in it (expected keys emb_l.0.weight, bot_l.0.weight, ...)")
    model = _from_state(state)
    meta = {k: v for k, v in ckpt.items() if isinstance(v, int | float | str)} if "state_dict" in ckpt else {}
    return model, {"arch": _arch_of(state), **meta}


def _from_state(state: dict) -> DLRM:
    sizes = [state[f"emb_l.{k}.weight"].shape[0] for k in range(N_SPARSE)]
    with torch.device("meta"):  # no memory for tables that load_state_dict replaces at once
        model = build(_arch_of(state), sizes)
    try:
        model.load_state_dict(state, assign=True)
    except RuntimeError as exc:
        raise CheckpointError(f"checkpoint does not fit the DLRM layers: {exc}") from None
    model.pairs = _pairs()
    return model.eval()


def load(path: str | os.PathLike) -> tuple[DLRM, dict]:
    """Our checkpoint folder (model.safetensors + model.json), a converted reference one, or a reference .pt."""
    from loadgen.training.checkpoint import load_state

    path = Path(path)
    if path.suffix == ".pt":
        return load_reference_checkpoint(path)
    state, meta = load_state(path)
    return _from_state(state), meta
