"""The one training driver: everything of a training run that is not the workload.

A benchmark's ``train.py`` is its :class:`~loadgen.training.workload.Workload` plus two lines::

    def get_args_parser(add_help=True): return driver.get_args_parser(MyWorkload, add_help)
    def main(args): return driver.main(MyWorkload, args)

The driver gives the common flags, seeds every rank from rank 0's seed, writes the mllog skeleton (submission,
init, the rule keys, run_start, blocks, epochs, evaluations, run_stop), runs the step loop with a progress bar,
evaluates on the workload's cadence (each rank its shard, merged on rank 0, whose verdict every rank takes),
saves a resume checkpoint after each evaluation, and at the end the model checkpoint, the training curve,
``train_result.json``, a summary line and ``RESULT,<name>,<seed>,<seconds>,<user>,<date>``.

Exit codes: 0 when the target was reached, and also when ``--max-steps`` cut the run short (a smoke test is
not a failed run); 1 when the epochs ran out before the target, or on bad data; 2 for bad usage.

``--resume`` continues from ``OUTPUT/resume/`` (the last evaluation, saved there by default for open-division
configs, with ``--save-resume`` for closed ones): weights, optimizer state, step, epoch,
history and seed; the mllog log is cut back to that evaluation and continued, so it reads as one run whose time
to train counts from the first ``run_start`` (including the time the run was down). The data order is keyed by
(seed, epoch), so for the same seed a resumed run trains on the same batches as an uninterrupted one.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import getpass
import itertools
import math
import os
import random
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from loadgen import cli, plots, report
from loadgen.environment import environment
from loadgen.training import distributed
from loadgen.training.checkpoint import CheckpointError, load_training, save_state, save_training
from loadgen.training.timing import MLLog
from loadgen.training.workload import Shard, Workload

LOG, RESUME, RESULT = "mlperf_train_log.txt", "resume", "train_result.json"


def target_value(text: str) -> tuple[str | None, float]:
    """``--target`` as VALUE (the one target) or NAME=VALUE (one of several)."""
    name, sep, value = text.rpartition("=")
    return (name if sep else None), cli.positive(float)(value)


def get_args_parser(workload: type[Workload], add_help: bool = True,
                    configs: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The training command's parser; ``configs`` lists the --config choices where a folder's train.py runs
    several workloads (default: ``workload``'s), ``workload`` giving the benchmark's own flags."""
    parser = cli.ArgumentParser(prog=workload.prog, description=workload.description, add_help=add_help,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", choices=list(configs or workload.configs), default=workload.default_config,
                        help=f"recipe (default: {workload.default_config})")
    workload.add_arguments(parser)
    parser.add_argument("--output", default=workload.default_output,
                        help=f"folder for the mllog log, checkpoints and curve (default: {workload.default_output})")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default: 1)")
    parser.add_argument("--runs", type=cli.positive(int), default=1,
                        help="train this many times, one after another, with seeds --seed, --seed+1, ..., each in "
                             "<output>/run_<i>/; their logs become <output>/result_<i>.txt and the olympic score "
                             "is printed (default: 1)")
    parser.add_argument("--epochs", type=cli.positive(int), default=None,
                        help="most epochs to run (default: the config's)")
    parser.add_argument("--batch-size", type=cli.positive(int), default=None,
                        help="global batch size, over all processes (default: the config's)")
    parser.add_argument("--target", type=target_value, action="append", default=None, metavar="[NAME=]VALUE",
                        help="metric value to stop at; NAME= picks one of several targets (default: the config's)")
    parser.add_argument("--max-steps", type=cli.positive(int), default=None,
                        help="stop after this many steps, for smoke tests (default: None)")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the checkpoint of the last evaluation in --output (default: False)")
    parser.add_argument("--save-resume", action=argparse.BooleanOptionalAction, default=None,
                        help="save model and optimizer after each evaluation, for --resume; the saving counts in "
                             "the time to train, which at reference scale (DLRM's tables) it would lengthen "
                             "(default: on for open-division configs, off for closed ones)")
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="device (default: cpu)")
    parser.add_argument("--threads", type=cli.positive(int), default=os.cpu_count() or 1,
                        help=f"torch intra-op threads (default: {os.cpu_count()})")
    parser.add_argument("--quiet", action="store_true",
                        help="no mllog lines on stdout; the progress bar and one line an evaluation stay "
                             "(default: False)")
    return parser


class UsageError(ValueError):
    """A flag that does not fit the config (a target it has not, --resume without a checkpoint)."""


def main(workload: type[Workload], args: argparse.Namespace) -> int:
    """Run ``workload`` as ``args`` say; the exit code (see the module docstring)."""
    try:
        cfg = workload.configure(args, common_overrides(workload.configs[args.config], args))
        targets = _targets(workload.default_targets(cfg), args.target)
        out = Path(args.output)
        if args.resume and not (out / RESUME).is_dir():
            raise UsageError(f"--resume: no checkpoint in {out / RESUME} (a run saves one at each evaluation "
                             "with --save-resume, the default for open-division configs)")
        if args.runs > 1 and args.resume:
            raise UsageError("--resume continues one run; with --runs, resume each run_<i>/ alone")
    except UsageError as exc:
        print(f"{workload.prog}: error: {exc}", file=sys.stderr)
        return cli.EXIT_USAGE
    out.mkdir(parents=True, exist_ok=True)
    if args.runs > 1:
        return _runs(workload, args, cfg, targets, out)
    return _one_run(workload, args, cfg, targets, out)


def _runs(workload: type[Workload], args: argparse.Namespace, cfg: Any, targets: dict[str, float],
          out: Path) -> int:
    """``--runs N``: N runs in turn, seeds from --seed up, each log copied to ``result_<i>.txt`` beside them (the
    name a results package takes), then every run's time and the olympic score (``olympic.json``). 0 when the
    runs have a score, 1 when they have none (more than one run did not converge), else a run's own failure."""
    import shutil

    from loadgen.training import olympic

    # Under torchrun every rank takes part in each run, in one process group for all of them (a group destroyed and
    # made again between runs can hang the next rendezvous); rank 0 alone writes the logs, gathers and scores.
    def all_runs(world: distributed.World) -> int:
        for i in range(args.runs):
            folder = out / f"run_{i}"
            one = argparse.Namespace(**{**vars(args), "seed": args.seed + i, "output": str(folder), "runs": 1})
            if world.is_main:
                print(f"== run {i + 1} of {args.runs}: seed {one.seed}, in {folder}", flush=True)
            folder.mkdir(parents=True, exist_ok=True)
            _Run(workload, one, cfg, targets, folder, world).train()
            if world.is_main:
                shutil.copyfile(folder / LOG, out / f"result_{i}.txt")
        return 0

    code = _guarded_run(workload, args, all_runs)
    if code or int(os.environ.get("RANK", "0")) != 0:
        return code
    runs = [olympic.read_run(out / f"result_{i}.txt") for i in range(args.runs)]
    score = olympic.olympic(runs)
    for i, run in enumerate(runs):
        verdict = "reached the target" if run.converged else "did not reach the target"
        seconds = "n/a" if run.seconds is None else f"{run.seconds:.1f} s"
        mark = " (dropped)" if i in score.dropped else ""
        print(f"run {i}: seed {run.seed}, {seconds}, {verdict}{mark}")
    record = {"benchmark": workload.mllog_benchmark, "config": args.config,
              "runs": [dataclasses.asdict(r) for r in runs], "score_s": score.seconds, "used": score.used,
              "dropped": score.dropped, "how": score.reason, "environment": environment()}
    report.write_json_atomic(out / "olympic.json", record)
    from loadgen import results

    files = {"olympic": str(out / "olympic.json"), **{f"result_{i}": str(out / f"result_{i}.txt")
                                                       for i in range(len(runs))}}
    results.record_run("olympic", record | {"files": files}, out / "olympic.json")
    if score.seconds is None:
        print(f"olympic score: none ({score.reason})")
        return 1
    print(f"olympic score: {score.seconds:.1f} s, the mean of {len(score.used)} run{'s' * (len(score.used) != 1)} "
          f"({score.reason})")
    return 0


def _one_run(workload: type[Workload], args: argparse.Namespace, cfg: Any, targets: dict[str, float],
             out: Path) -> int:
    out.mkdir(parents=True, exist_ok=True)
    return _guarded_run(workload, args, lambda world: _Run(workload, args, cfg, targets, out, world).train())


def _guarded_run(workload: type[Workload], args: argparse.Namespace, train) -> int:
    """``train(world)`` in the process group (if any), a data or checkpoint problem ending it in one line."""
    try:
        return distributed.run(args.device, train, prog=workload.prog)
    except (*workload.data_errors, CheckpointError) as exc:
        # From a DataLoader worker the message carries the worker's traceback; its last line names the file.
        print(f"{workload.prog}: error: {str(exc).strip().splitlines()[-1]}", file=sys.stderr)
        return 1


def common_overrides(cfg: Any, args: argparse.Namespace) -> Any:
    """The config with the common flags --epochs and --batch-size applied."""
    return dataclasses.replace(cfg, **{k: v for k, v in (("epochs", args.epochs), ("batch_size", args.batch_size))
                                       if v is not None})


def _targets(defaults: dict[str, float], overrides: list[tuple[str | None, float]] | None) -> dict[str, float]:
    targets = dict(defaults)
    for name, value in overrides or ():
        if name is None:
            if len(targets) != 1:
                raise UsageError(f"--target: this config has {len(targets)} targets ({', '.join(targets)}); "
                                 "name one as NAME=VALUE")
            name = next(iter(targets))
        if name not in targets:
            raise UsageError(f"--target: no target named {name!r} (this config has: {', '.join(targets)})")
        targets[name] = value
    return targets


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    # On stderr and only on a terminal: logs and CI output stay free of carriage-return noise.
    return tqdm(total=total, desc=desc, unit="step", leave=False, disable=not (enabled and sys.stderr.isatty()))


class _Run:
    """One training run on one rank: the loop and its bookkeeping."""

    def __init__(self, workload: type[Workload], args, cfg, targets: dict[str, float], out: Path,
                 world: distributed.World) -> None:
        self.args, self.cfg, self.out, self.world = args, cfg, out, world
        self.device = distributed.device_of(world, args.device)
        world.local_batch(cfg.batch_size)  # refuses a global batch that does not split, before any collective
        self.w = workload(args, cfg, world, self.device)
        self.w.targets = targets
        self.every = self.w.every()
        self.save_resume = args.save_resume if args.save_resume is not None else cfg.division == "open"
        self.step = self.epoch = 0
        self.metrics: dict[str, float] = {}
        self.reached = self.stop = False
        self.history: dict[str, list[float]] = {"epoch": [], "train loss": [], **{k: [] for k in targets}}
        self.loss_sum, self.loss_steps = torch.zeros((), device=self.device), 0
        self.started = datetime.datetime.now()

    # -- set-up ----------------------------------------------------------------------------------------------
    def train(self) -> int:
        args, w, world = self.args, self.w, self.world
        torch.set_num_threads(args.threads)
        resume = load_training(self.out / RESUME) if args.resume else None
        if resume is not None and world.is_main:
            # The log as it was at the checkpoint: what came after it is replaced by what this run does again.
            with open(self.out / LOG, "r+b") as f:
                f.truncate(resume[2]["log_bytes"])
        log = self.log = MLLog(self.out / LOG, rank=world.rank, stdout=not args.quiet, append=resume is not None)
        if resume is None:
            log.submission(w.mllog_benchmark, self.cfg.division)
            with log.init():
                self.seed = distributed.broadcast_seed(world, args.seed)
                self._setup()
                for key, metadata in w.init_events():
                    log.event(key, metadata=metadata)
                log.hyperparameters(self._hyperparameters())
            self.started = datetime.datetime.now()
            log.start("run_start")
        else:
            self.seed = resume[2]["seed"]
            self._setup()
            self._restore(*resume)
        self._loop()
        distributed.check_in_sync(world, self.parallel.replicated_parameters(self.model))
        log.run_stop(success=self.reached)
        log.close()
        state = self.parallel.state_dict(self.model)  # every rank: a split model gathers on rank 0
        if world.is_main:
            self._finish(state)
        return 0 if self.reached or args.max_steps is not None else 1

    def _setup(self) -> None:
        seed_everything(self.seed)
        self.w.setup(self.seed)
        self.parallel = self.w.parallel()
        self.model = self.parallel.wrap(self.w.model)

    def _hyperparameters(self) -> dict[str, Any]:
        values = {"seed": self.seed, "global_batch_size": self.cfg.batch_size, "gradient_accumulation_steps": 1,
                  "train_samples": self.w.train_samples, "eval_samples": self.w.eval_samples,
                  **self.w.hyperparameters()}
        missing = [k for k in self.w.hyperparameter_keys if k not in values]
        if missing:  # a bug in the workload, found before hours of training produce a log the checker rejects
            raise RuntimeError(f"{type(self.w).__name__}.hyperparameters() lacks the rule keys {missing}")
        return values

    def _restore(self, model_state: dict, optimizer_state: dict, meta: dict) -> None:
        self.parallel.load_state_dict(self.model, model_state)
        self.w.optimizer.load_state_dict(optimizer_state)
        self.step, self.epoch = meta["step"], meta["epoch"]
        self.history, self.metrics, self.reached = meta["history"], meta["metrics"], meta["reached"]
        self.stop = self.reached
        self.started = datetime.datetime.fromisoformat(meta["started"])
        self.log.continue_run(meta["run_start_ms"])

    # -- the loop --------------------------------------------------------------------------------------------
    def _loop(self) -> None:
        epochs = self.cfg.epochs
        while self.epoch < epochs and not self.stop:
            first = self.epoch
            count = min(self.every.block_after(first) if self.every.epochs else 1, epochs - first)
            with self.log.block(first_epoch_num=first, epoch_count=count):
                while self.epoch < first + count and not self.stop:
                    with self.log.epoch(self.epoch):
                        self._train_epoch()
                    self.epoch += 1
            # An epoch-cadence evaluation closes each block that ran to its end (a --max-steps cut mid-block
            # does not evaluate, as the block's evaluation is not due).
            if self.every.epochs and self.epoch == first + count:
                self._evaluate(self.epoch)
        if not self.history["epoch"]:  # a run shorter than one evaluation interval still ends with one
            self._evaluate(self.epoch if self.every.epochs else round(self.step / self.w.steps_per_epoch, 4))

    def _train_epoch(self) -> None:
        w, model, optimizer, limit = self.w, self.model, self.w.optimizer, self.args.max_steps
        per_epoch = w.steps_per_epoch
        skip = max(0, self.step - self.epoch * per_epoch)  # a resumed run skips what it trained before
        model.train()
        with _progress(per_epoch, f"epoch {self.epoch}", self.world.is_main) as bar:
            bar.update(skip)
            for batch in itertools.islice(w.train_batches(self.epoch), skip, None):
                for group in optimizer.param_groups:
                    group["lr"] = w.learning_rate(self.step)
                # Before the forward pass: an optimizer fused into the backward pass (DLRM's tables on TorchRec)
                # takes the new rate here, and its kernels capture the rate in the forward pass.
                optimizer.zero_grad(set_to_none=True)
                loss = w.loss(model, batch)
                loss.backward()
                if w.grad_clip_norm is not None:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), w.grad_clip_norm)
                optimizer.step()
                # Summed on the device: .item() each step would wait for the GPU every step.
                self.loss_sum += loss.detach()
                self.loss_steps += 1
                self.step += 1
                bar.update()
                if self.every.steps and self.step % self.every.steps == 0:
                    self._evaluate(round(self.step / per_epoch, 4))
                    model.train()
                if limit is not None and self.step >= limit:
                    self.stop = True
                if self.stop:
                    return

    def _evaluate(self, epoch_num: float) -> None:
        world, w, log = self.world, self.w, self.log
        loss = self.loss_sum.item() / self.loss_steps if self.loss_steps else math.nan
        loss = distributed.mean(world, loss)
        self.loss_sum.zero_()
        self.loss_steps = 0
        log.eval_start(epoch_num)
        self.parallel.broadcast_buffers(self.model)
        model = self.parallel.eval_model(self.model).eval()
        with self.parallel.eval_context():
            part = w.evaluate(model, Shard(world.rank, world.world_size))
        parts = distributed.gather(world, part)
        metrics = w.merge(parts) if world.is_main else {}
        if world.is_main:
            log.eval_stop(epoch_num, w.logged_accuracy(metrics))
        self.reached = distributed.broadcast_flag(world, world.is_main and w.reached(metrics))
        self.stop = self.stop or self.reached
        self.metrics = metrics
        self.history["epoch"].append(epoch_num)
        self.history["train loss"].append(loss)
        for name in w.targets:
            self.history[name].append(metrics.get(name, math.nan))
        if world.is_main:  # --quiet leaves out the mllog lines, not this one line an evaluation
            shown = ", ".join(f"{k} {v:.4f}" for k, v in metrics.items())
            goal = ", ".join(f"{k} {v}" for k, v in w.targets.items())
            print(f"epoch {epoch_num} (step {self.step}): train loss {loss:.4f}, {shown} (target {goal})", flush=True)
        if self.save_resume:
            state = self.parallel.state_dict(self.model)  # every rank: a split model gathers on rank 0
            if world.is_main:
                self._save_resume(epoch_num, state)

    def _save_resume(self, epoch_num: float, state: dict) -> None:
        log = self.log
        log.flush()
        # The epoch this checkpoint resumes in: an epoch-cadence evaluation comes after its block's last epoch.
        meta = {"step": self.step, "epoch": self.epoch, "epoch_num": epoch_num, "seed": self.seed,
                "history": self.history, "metrics": self.metrics, "reached": self.reached,
                "started": self.started.isoformat(), "run_start_ms": log.run_start_ms,
                "log_bytes": os.path.getsize(self.out / LOG), "config": self.args.config}
        save_training(self.out / RESUME, state, self.w.optimizer.state_dict(), meta)

    # -- the end ---------------------------------------------------------------------------------------------
    def _finish(self, state: dict) -> None:
        w, args, out = self.w, self.args, self.out
        seconds = self.log.run_seconds
        epochs = round(self.step / w.steps_per_epoch, 4)
        save_state(state, {
            **w.checkpoint_meta(), "config": args.config, "metrics": self.metrics, "epochs": epochs,
            "steps": self.step}, out)
        series = {k: v for k, v in self.history.items() if k != "epoch"}
        target = next(iter(w.targets.values())) if len(w.targets) == 1 else None
        plots.write_curve(out / "training_curve.png", self.history["epoch"], series, "epoch",
                           f"{w.describe()}: {', '.join(w.targets)} and train loss per evaluation", target)
        record = {
            "benchmark": w.name, "config": args.config, "division": self.cfg.division, "seed": self.seed,
            "world_size": self.world.world_size, "reached_target": self.reached, "metrics": self.metrics,
            "targets": w.targets, "epochs": epochs, "steps": self.step, "time_to_train_s": seconds,
            "resumed": bool(args.resume), "history": self.history, "environment": environment()}
        report.write_json_atomic(out / RESULT, record)
        from loadgen import results

        files = {name: str(out / name) for name in (LOG, RESULT, "training_curve.png") if (out / name).is_file()}
        results.record_run("training", record | {"files": files}, out / RESULT)
        status = "reached" if self.reached else "did not reach"
        goal = ", ".join(f"{k} {v}" for k, v in w.targets.items())
        got = ", ".join(f"{k} {v:.4f}" for k, v in self.metrics.items())
        print(f"train: {status} {goal} (got {got}) after {epochs:g} epochs ({self.step} steps) in {seconds:.1f} s")
        print(f"RESULT,{w.name},{self.seed},{seconds:.1f},{getpass.getuser()},{self.started:%Y-%m-%d %I:%M:%S %p}")
