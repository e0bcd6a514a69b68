"""Train DLRM on Criteo click logs until the test AUC reaches the target, then stop and print the time.

As the MLPerf DLRM reference (training v0.7-v2.1): SGD, a learning rate with linear warmup, a constant phase and a
polynomial (power 2) decay, evaluation every ``--test-freq`` iterations on the first half of the test day, and a
stop at AUC >= 0.8025. Logs through loadgen.timing; the log passes ``python -m mlperf_logging.compliance_checker
--usage training --ruleset 2.1.0`` (see README.md for why 2.1.0) and carries every key of 3.1.0's closed_dlrm.

    python -m recommendation.train --config mini                 # the embedded SYNTHETIC mini set, open division
    python -m recommendation.train --config terabyte --raw-dir /data/criteo --max-ind-range 40000000
    torchrun --nproc-per-node 8 -m recommendation.train --config terabyte --device gpu --raw-dir /data/criteo

Under torchrun (``loadgen.distributed``) each process reads its slice of every global batch, DDP averages the
gradients (the embedding tables are replicated, as the reference's data-parallel path does), the seed comes from
rank 0, and rank 0 alone preprocesses, evaluates, logs and prints the RESULT line.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import getpass
import math
import os
import random
import sys
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from loadgen import cli, distributed, report
from loadgen.checkpoint import save_state
from loadgen.cli import positive
from loadgen.data import DataError
from loadgen.timing import MLLog
from recommendation import data, mini
from recommendation.models import ARCHS, build

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
    # evaluated 8 times an epoch; it reaches the target in about half an epoch.
    "mini": Config(division="open", arch="mini", batch_size=64, base_lr=0.5, warmup_steps=100, decay_start_step=2000,
                   decay_steps=4000, test_freq=270, epochs=3, max_ind_range=100_000),
}


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = cli.ArgumentParser(prog="python -m recommendation.train", description=__doc__, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=list(CONFIGS), default="mini", help="recipe (default: mini)")
    parser.add_argument("--raw-dir", type=cli.existing_dir, default=None,
                        help=f"folder of day_0..day_23 or train.txt (default: the mini set, {mini.DEFAULT_OUT})")
    data.add_preprocess_args(parser, positive)
    parser.add_argument("--mlperf-bin-loader", action=argparse.BooleanOptionalAction, default=True,
                        help="read batches straight from the memory-mapped .bin (default: True); "
                             "--no-mlperf-bin-loader uses the original row-by-row loader")
    parser.add_argument("--output", default="results/recommendation/train",
                        help="folder for the mllog log, checkpoint and curve (default: results/recommendation/train)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    parser.add_argument("--epochs", type=cli.positive(int), default=None, help="most epochs (default: the config's)")
    parser.add_argument("--batch-size", type=cli.positive(int), default=None,
                        help="global batch size, over all processes (default: the config's)")
    parser.add_argument("--test-freq", type=cli.positive(int), default=None,
                        help="iterations between evaluations (default: the config's)")
    parser.add_argument("--target", type=cli.positive(float), default=None,
                        help=f"AUC to stop at (default: {TARGET_AUC})")
    parser.add_argument("--max-steps", type=cli.positive(int), default=None,
                        help="stop after this many steps, for smoke tests (default: None)")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="device (default: cpu)")
    parser.add_argument("--threads", type=cli.positive(int), default=os.cpu_count() or 1,
                        help=f"torch intra-op threads (default: {os.cpu_count()})")
    parser.add_argument("--quiet", action="store_true", help="no mllog lines on stdout (default: False)")
    return parser


def lr_at(step: int, cfg: Config) -> float:
    """The reference's LRPolicyScheduler: linear warmup, constant, then (1 - t)^2 decay to 0 over decay_steps."""
    if step < cfg.warmup_steps:
        return cfg.base_lr * (step + 1) / cfg.warmup_steps
    if cfg.decay_steps <= 0 or step < cfg.decay_start_step:
        return cfg.base_lr
    t = min(1.0, (step - cfg.decay_start_step) / cfg.decay_steps)
    return cfg.base_lr * (1.0 - t) ** 2


@torch.inference_mode()
def evaluate(model, loader, device) -> float:
    model.eval()
    scores, labels = [], []
    for dense, sparse, label in loader:
        scores.append(model(torch.from_numpy(dense).to(device), torch.from_numpy(sparse).to(device))[:, 0].cpu())
        labels.append(label)
    model.train()
    return float(roc_auc_score(np.concatenate(labels), torch.cat(scores).numpy()))


def train_one_epoch(model, loader, optimizer, device, cfg: Config, step: int, on_test) -> tuple[int, bool]:
    """Steps over one epoch; ``on_test(step)`` runs every test_freq steps and returns True to stop."""
    criterion = torch.nn.BCELoss()
    model.train()
    for dense, sparse, label in loader:
        for group in optimizer.param_groups:
            group["lr"] = lr_at(step, cfg)
        out = model(torch.from_numpy(dense).to(device, non_blocking=True),
                    torch.from_numpy(sparse).to(device, non_blocking=True))
        loss = criterion(out[:, 0], torch.from_numpy(label).to(device, non_blocking=True))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if on_test(step, float(loss.detach())) if step % cfg.test_freq == 0 else False:
            return step, True
    return step, False


def main(args) -> int:
    try:
        return _main(args)
    except (DataError, ValueError) as exc:
        print(f"train: error: {exc}", file=sys.stderr)
        return 1


def _main(args) -> int:
    cfg = CONFIGS[args.config]
    overrides = {"epochs": args.epochs, "batch_size": args.batch_size, "test_freq": args.test_freq,
                 "target": args.target}
    if args.max_ind_range != -1:
        overrides["max_ind_range"] = args.max_ind_range
    if args.data_sub_sample_rate:
        overrides["sub_sample_rate"] = args.data_sub_sample_rate
    cfg = dataclasses.replace(cfg, **{k: v for k, v in overrides.items() if v is not None})
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    return distributed.run(args.device, lambda world: _train(args, cfg, out, world))


def _train(args, cfg: Config, out: Path, world: distributed.World) -> int:
    device = distributed.device_of(world, args.device)
    world.local_batch(cfg.batch_size)  # refuses a global batch that does not split evenly over the processes
    torch.set_num_threads(args.threads)
    log = MLLog(out / "mlperf_train_log.txt", rank=world.rank, stdout=not args.quiet)
    log.submission("dlrm", cfg.division)
    with log.init():
        seed = distributed.broadcast_seed(world, args.seed)
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        settings = data.Settings(dataset=args.dataset, max_ind_range=cfg.max_ind_range,
                                 sub_sample_rate=cfg.sub_sample_rate, chunk_bytes=args.chunk_bytes,
                                 max_malformed=args.max_malformed)
        with distributed.main_first(world):
            raw = Path(args.raw_dir) if args.raw_dir else mini.ensure()
            processed = data.preprocess(raw, args.processed_dir, settings, workers=args.preprocess_workers,
                                        progress=world.is_main)
        loader_cls = data.BinLoader if args.mlperf_bin_loader else data.RowLoader
        train_loader = loader_cls(data.split_file(processed, "train"), cfg.batch_size, cfg.max_ind_range,
                                  shuffle=True, seed=seed, drop_last=True, shard=(world.rank, world.world_size))
        test_loader = data.BinLoader(data.split_file(processed, "test"), 16384, cfg.max_ind_range)
        sizes = data.table_sizes(processed, cfg.max_ind_range)
        model = distributed.wrap(world, build(cfg.arch, sizes).to(device))
        for name in ["embeddings"] + [f"bottom_mlp_dense{i + 1}" for i in range(len(ARCHS[cfg.arch].bottom) - 1)] \
                + [f"top_mlp_dense{i + 1}" for i in range(len(ARCHS[cfg.arch].top))]:
            log.event("weights_initialization", metadata={"tensor": name})
        optimizer = torch.optim.SGD(model.parameters(), lr=cfg.base_lr)
        log.hyperparameters({
            "seed": seed, "global_batch_size": cfg.batch_size, "opt_name": "sgd",
            "opt_base_learning_rate": cfg.base_lr, "sgd_opt_base_learning_rate": cfg.base_lr,
            "opt_learning_rate_warmup_steps": cfg.warmup_steps, "lr_decay_start_steps": cfg.decay_start_step,
            "sgd_opt_learning_rate_decay_steps": cfg.decay_steps, "sgd_opt_learning_rate_decay_poly_power": 2,
            "gradient_accumulation_steps": 1, "train_samples": len(train_loader.rows),
            "eval_samples": len(test_loader.rows)})
    started = datetime.datetime.now()
    log.start("run_start")
    steps_per_epoch = len(train_loader)
    history: dict[str, list[float]] = {"AUC": [], "train loss": []}
    evaluated_at: list[float] = []
    state = {"auc": 0.0, "reached": False}

    def on_test(step: int, loss: float) -> bool:
        epoch_num = step / steps_per_epoch
        loss = distributed.mean(world, loss)
        # Rank 0 evaluates (the weights are the same everywhere) and its verdict is every rank's.
        state["auc"] = evaluate(distributed.unwrap(model), test_loader, device) if world.is_main else math.nan
        log.evaluation(epoch_num=round(epoch_num, 4), accuracy=state["auc"])
        history["AUC"].append(state["auc"])
        history["train loss"].append(loss)
        evaluated_at.append(epoch_num)
        if not args.quiet and world.is_main:
            print(f"step {step} (epoch {epoch_num:.2f}): loss {loss:.4f}, AUC {state['auc']:.4f} "
                  f"(target {cfg.target})", flush=True)
        state["reached"] = distributed.broadcast_flag(world, state["auc"] >= cfg.target)
        return state["reached"] or (args.max_steps is not None and step >= args.max_steps)

    step, epoch, stop = 0, 0, False
    limit = args.max_steps
    while epoch < cfg.epochs and not stop:
        with log.block(first_epoch_num=epoch, epoch_count=1), log.epoch(epoch):
            step, stop = train_one_epoch(model, _limited(train_loader, step, limit), optimizer, device, cfg, step,
                                         on_test)
        epoch += 1
        if limit is not None and step >= limit:
            break
    if not evaluated_at:  # a run shorter than one test interval still ends with an evaluation
        on_test(step, float("nan"))
    distributed.check_in_sync(world, model)
    log.run_stop(success=state["reached"])
    log.close()
    if not world.is_main:
        return 0 if state["reached"] or args.max_steps is not None else 1
    seconds = log.run_seconds
    save_state(distributed.unwrap(model).state_dict(), {
        "arch": cfg.arch, "table_sizes": sizes, "max_ind_range": cfg.max_ind_range, "config": args.config,
        "auc": state["auc"], "steps": step, "processed_dir": str(processed)}, out)
    report.write_curve(out / "training_curve.png", evaluated_at, history, "epoch",
                       f"DLRM ({cfg.arch}) on {raw.name}: test AUC and train loss", cfg.target)
    report.write_json_atomic(out / "train_result.json", {
        "config": args.config, "division": cfg.division, "seed": seed, "world_size": world.world_size,
        "reached_target": state["reached"],
        "auc": state["auc"], "target": cfg.target, "steps": step, "epochs": step / steps_per_epoch,
        "time_to_train_s": seconds, "history": history, "environment": report.environment()})
    status = "reached" if state["reached"] else "did not reach"
    print(f"train: {status} AUC {cfg.target} (got {state['auc']:.4f}) after {step} steps in {seconds:.1f} s")
    print(f"RESULT,dlrm,{seed},{seconds:.1f},{getpass.getuser()},{started:%Y-%m-%d %I:%M:%S %p}")
    return 0 if state["reached"] or args.max_steps is not None else 1


def _limited(loader, step: int, limit: int | None):
    for i, batch in enumerate(loader):
        if limit is not None and step + i >= limit:
            return
        yield batch


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
