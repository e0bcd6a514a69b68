"""Train DLRM on Criteo click logs until the test AUC reaches the target, then stop and print the time.

As the MLPerf DLRM reference (training v0.7-v2.1): SGD, a learning rate with linear warmup, a constant phase and a
polynomial (power 2) decay, evaluation every ``--test-freq`` iterations on the first half of the test day, and a
stop at AUC >= 0.8025. The shared driver (loadgen.training.driver) logs the run; the log passes ``python -m
mlperf_logging.compliance_checker --usage training --ruleset 2.1.0`` (see README.md for why 2.1.0) and carries
every key of 3.1.0's closed_dlrm.

    python -m recommendation.train --config mini                 # the embedded SYNTHETIC mini set, open division
    python -m recommendation.train --config terabyte --dry-run --world-size 8 --device-memory-gb 80
    torchrun --nproc-per-node 8 -m recommendation.train --config terabyte --device gpu --raw-dir /data/criteo

Under torchrun (``loadgen.training.distributed``) the 26 embedding tables are sharded over the processes by
TorchRec (``recommendation.sharded``: the planner's plan, or the one ``--sharding`` forces), updated by SGD fused
into the backward pass, while DDP averages the MLPs' gradients; each process reads its slice of every global
batch, the seed comes from rank 0, every rank evaluates its slice of each test batch, and rank 0 alone
preprocesses, logs, saves (the tables gathered into the single-process layout) and prints the RESULT line.
``--dry-run`` prints the planner's memory plan for ``--world-size`` devices of ``--device-memory-gb`` each, or
refuses in one line when the tables do not fit, before any data is read or memory allocated.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from loadgen import cli
from loadgen.cli import positive
from loadgen.data import DataError
from loadgen.training import distributed, driver
from loadgen.training.workload import Every, Shard, Workload
from recommendation import data, mini
from recommendation.models import ARCHS, SHARDING_TYPES, build

TEST_BATCH = 16384  # the reference's --test-mini-batch-size
TARGET_AUC = 0.8025  # MLPerf training closed rule for DLRM (compliance checker closed_dlrm.yaml, v0.7-v3.1)


@dataclasses.dataclass(frozen=True)
class Config:
    division: str
    arch: str
    batch_size: int
    base_lr: float
    warmup_steps: int
    decay_start_step: int
    decay_steps: int
    test_freq: int  # iterations between evaluations
    epochs: int
    max_ind_range: int
    sub_sample_rate: float = 0.0
    target: float = TARGET_AUC


CONFIGS = {
    # Criteo Terabyte, closed division: the MLPerf training reference's run_and_time.sh (v0.7): tb00_40M's
    # --max-ind-range=40000000, --mini-batch-size=2048, --learning-rate=1.0, --test-freq=102400, one epoch (about
    # 2.05 M steps of the 4.2 G training rows, so 20 evaluations).
    "terabyte": Config(division="closed", arch="terabyte", batch_size=2048, base_lr=1.0, warmup_steps=0,
                       decay_start_step=0, decay_steps=0, test_freq=102_400, epochs=1, max_ind_range=40_000_000),
    # Kaggle, open division: the DLRM repository's Kaggle script (--mini-batch-size=128, --learning-rate=0.1); it
    # sets no --test-freq, so the interval here is ours.
    "kaggle": Config(division="open", arch="kaggle", batch_size=128, base_lr=0.1, warmup_steps=0,
                     decay_start_step=0, decay_steps=0, test_freq=100_000, epochs=1, max_ind_range=-1),
    # The embedded SYNTHETIC mini set (138,000 training lines), open division: batch 64, learning rate 0.5,
    # evaluated 8 times an epoch; it reaches the target in about a quarter of an epoch (see mini.py).
    "mini": Config(division="open", arch="mini", batch_size=64, base_lr=0.5, warmup_steps=100, decay_start_step=2000,
                   decay_steps=4000, test_freq=270, epochs=3, max_ind_range=100_000),
}


def lr_at(step: int, cfg: Config) -> float:
    """The reference's LRPolicyScheduler: linear warmup, constant, then (1 - t)^2 decay to 0 over decay_steps."""
    if step < cfg.warmup_steps:
        return cfg.base_lr * (step + 1) / cfg.warmup_steps
    if cfg.decay_steps <= 0 or step < cfg.decay_start_step:
        return cfg.base_lr
    t = min(1.0, (step - cfg.decay_start_step) / cfg.decay_steps)
    return cfg.base_lr * (1.0 - t) ** 2


class Recommendation(Workload):
    """DLRM on Criteo click logs (Terabyte, Kaggle or the synthetic mini set), to a test-AUC target."""

    configs = CONFIGS
    mllog_benchmark = "dlrm"
    ruleset = "2.1.0"
    hyperparameter_keys = ("opt_name", "opt_base_learning_rate", "sgd_opt_base_learning_rate",
                           "opt_learning_rate_warmup_steps", "lr_decay_start_steps",
                           "sgd_opt_learning_rate_decay_steps", "sgd_opt_learning_rate_decay_poly_power")
    # Preprocessing reports malformed input as ValueError as well as DataError.
    data_errors = (DataError, ValueError)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--raw-dir", type=cli.existing_dir, default=None,
                            help=f"folder of day_0..day_23 or train.txt (default: the mini set, {mini.DEFAULT_OUT})")
        data.add_preprocess_args(parser, positive)
        parser.add_argument("--mlperf-bin-loader", action=argparse.BooleanOptionalAction, default=True,
                            help="read batches straight from the memory-mapped .bin (default: True); "
                                 "--no-mlperf-bin-loader uses the original row-by-row loader")
        parser.add_argument("--test-freq", type=cli.positive(int), default=None,
                            help="iterations between evaluations (default: the config's)")
        parser.add_argument("--sharding", choices=["auto", *SHARDING_TYPES], default="auto",
                            help="how TorchRec splits the tables over the processes under torchrun: the planner's "
                                 "choice per table, or one type for all (default: auto)")
        plan = parser.add_argument_group("memory plan (no training)")
        plan.add_argument("--dry-run", action="store_true",
                          help="print the tables' bytes and the planner's plan per GPU, or refuse in one line "
                               "when they do not fit; reads no data for --config terabyte (default: False)")
        plan.add_argument("--world-size", type=cli.positive(int), default=8,
                          help="GPUs (one process each) to plan for (default: 8)")
        plan.add_argument("--device-memory-gb", type=cli.positive(float), default=80.0,
                          help="memory of each GPU in GB of 10^9 bytes (default: 80.0)")

    @classmethod
    def configure(cls, args: argparse.Namespace, cfg: Config) -> Config:
        overrides = {"test_freq": args.test_freq}
        if args.max_ind_range != -1:
            overrides["max_ind_range"] = args.max_ind_range
        if args.data_sub_sample_rate:
            overrides["sub_sample_rate"] = args.data_sub_sample_rate
        return dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})

    @classmethod
    def default_targets(cls, cfg: Config) -> dict[str, float]:
        return {"auc": cfg.target}

    def every(self) -> Every:
        return Every(steps=self.cfg.test_freq)

    def setup(self, seed: int) -> None:
        args, cfg, world = self.args, self.cfg, self.world
        settings = data.Settings(dataset=args.dataset, max_ind_range=cfg.max_ind_range,
                                 sub_sample_rate=cfg.sub_sample_rate, chunk_bytes=args.chunk_bytes,
                                 max_malformed=args.max_malformed)
        with distributed.main_first(world):
            self.raw = Path(args.raw_dir) if args.raw_dir else mini.ensure()
            self.processed = data.preprocess(self.raw, args.processed_dir, settings,
                                             workers=args.preprocess_workers, progress=world.is_main)
        loader_cls = data.BinLoader if args.mlperf_bin_loader else data.RowLoader
        self.train_loader = loader_cls(data.split_file(self.processed, "train"), cfg.batch_size, cfg.max_ind_range,
                                       shuffle=True, seed=seed, drop_last=True, shard=(world.rank, world.world_size))
        # Sharded, every rank takes its slice of each test batch, padded to the same size: the tables' lookups are
        # collective, so the ranks run the same number of forwards of the same shape.
        self.test_loader = data.BinLoader(data.split_file(self.processed, "test"), TEST_BATCH, cfg.max_ind_range,
                                          shard=(world.rank, world.world_size) if world.distributed else (0, 1))
        self.sizes = data.table_sizes(self.processed, cfg.max_ind_range)
        if world.distributed:
            from recommendation import sharded  # torchrec: only where the tables are sharded

            self.model, self.optimizer, self._parallel = sharded.build_sharded(
                world, self.device, cfg.arch, self.sizes, cfg.base_lr, world.local_batch(cfg.batch_size),
                args.sharding)
        else:
            if args.sharding != "auto":
                print(f"{self.prog}: note: --sharding {args.sharding} applies to torchrun's processes; one process "
                      "keeps the tables whole", file=sys.stderr)
            self.model = build(cfg.arch, self.sizes).to(self.device)
            self.optimizer = torch.optim.SGD(self.model.parameters(), lr=cfg.base_lr)
        self.criterion = torch.nn.BCELoss()
        self.train_samples, self.eval_samples = len(self.train_loader.rows), len(self.test_loader.rows)
        self.steps_per_epoch = len(self.train_loader)

    def parallel(self):
        return self._parallel if self.world.distributed else super().parallel()

    def init_events(self):
        arch = ARCHS[self.cfg.arch]
        names = ["embeddings"] + [f"bottom_mlp_dense{i + 1}" for i in range(len(arch.bottom) - 1)] \
            + [f"top_mlp_dense{i + 1}" for i in range(len(arch.top))]
        return [("weights_initialization", {"tensor": name}) for name in names]

    def hyperparameters(self) -> dict:
        cfg = self.cfg
        return {"opt_name": "sgd", "opt_base_learning_rate": cfg.base_lr, "sgd_opt_base_learning_rate": cfg.base_lr,
                "opt_learning_rate_warmup_steps": cfg.warmup_steps, "lr_decay_start_steps": cfg.decay_start_step,
                "sgd_opt_learning_rate_decay_steps": cfg.decay_steps, "sgd_opt_learning_rate_decay_poly_power": 2}

    def train_batches(self, epoch: int):
        self.train_loader.epoch = epoch  # the batch order is keyed by (seed, epoch)
        return self.train_loader

    def learning_rate(self, step: int) -> float:
        return lr_at(step, self.cfg)

    def _scores(self, model, dense: np.ndarray, sparse: np.ndarray) -> torch.Tensor:
        return model(torch.from_numpy(dense).to(self.device, non_blocking=True),
                     torch.from_numpy(sparse).to(self.device, non_blocking=True))[:, 0]

    def loss(self, model, batch) -> torch.Tensor:
        dense, sparse, label = batch
        return self.criterion(self._scores(model, dense, sparse),
                              torch.from_numpy(label).to(self.device, non_blocking=True))

    def evaluate(self, model, shard: Shard) -> tuple[np.ndarray, np.ndarray]:
        """(scores, labels) of this rank's test rows; AUC needs them all, so merge computes it."""
        scores, labels = [np.zeros(0, np.float32)], [np.zeros(0, np.float32)]
        sharded = self.world.distributed
        for i, (dense, sparse, label) in enumerate(self.test_loader):
            if sharded:  # this rank's slice of every batch, padded with zero rows to the largest slice
                pad = -(-TEST_BATCH // shard.count) - len(label)
                score = self._scores(model, np.pad(dense, ((0, pad), (0, 0))), np.pad(sparse, ((0, pad), (0, 0))))
                scores.append(score[:len(label)].cpu().numpy())
                labels.append(label)
            elif shard.owns(i):
                scores.append(self._scores(model, dense, sparse).cpu().numpy())
                labels.append(label)
        return np.concatenate(scores), np.concatenate(labels)

    def merge(self, parts: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
        scores, labels = (np.concatenate(column) for column in zip(*parts, strict=True))
        return {"auc": float(roc_auc_score(labels, scores))}

    def checkpoint_meta(self) -> dict:
        return {"arch": self.cfg.arch, "table_sizes": self.sizes, "max_ind_range": self.cfg.max_ind_range,
                "processed_dir": str(self.processed)}

    def describe(self) -> str:
        return f"DLRM ({self.cfg.arch}) on {self.raw.name}"


def dry_run(args: argparse.Namespace) -> int:
    """The memory plan of ``--config`` on ``--world-size`` devices: 0 when it fits, 2 (one line) when not."""
    from recommendation import sharded  # torchrec

    cfg = Recommendation.configure(args, driver.common_overrides(CONFIGS[args.config], args))
    if cfg.arch == "terabyte" and args.raw_dir is None:
        cap = cfg.max_ind_range if cfg.max_ind_range > 0 else None
        sizes = [min(n, cap) if cap else n for n in data.TERABYTE_TABLE_ROWS_40M]
    else:  # the sizes of the data at hand (preprocessed once, cached)
        settings = data.Settings(dataset=args.dataset, max_ind_range=cfg.max_ind_range,
                                 sub_sample_rate=cfg.sub_sample_rate, chunk_bytes=args.chunk_bytes,
                                 max_malformed=args.max_malformed)
        processed = data.preprocess(Path(args.raw_dir) if args.raw_dir else mini.ensure(), args.processed_dir,
                                    settings, workers=args.preprocess_workers, progress=True)
        sizes = data.table_sizes(processed, cfg.max_ind_range)
    memory = int(args.device_memory_gb * 1e9)
    try:
        found = sharded.plan_memory(cfg.arch, sizes, args.world_size, memory, cfg.batch_size, args.sharding,
                                    lr=cfg.base_lr)
    except sharded.PlanError as exc:
        print(f"{Recommendation.prog}: error: {exc}", file=sys.stderr)
        return cli.EXIT_USAGE
    print(f"memory plan: {args.config} on {args.world_size} GPUs of {args.device_memory_gb:g} GB, "
          f"global batch {cfg.batch_size}")
    print(found.describe(cfg.arch, sizes, memory))
    print(f"fits: the largest rank holds {max(found.per_rank) / 1e9:.2f} GB of table shards")
    return 0


get_args_parser = functools.partial(driver.get_args_parser, Recommendation)  # (add_help=True)


def main(args: argparse.Namespace) -> int:
    """Train (the shared driver), or print the memory plan with --dry-run; the exit code."""
    return dry_run(args) if args.dry_run else driver.main(Recommendation, args)


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
