"""The training contract: what a benchmark's ``train.py`` declares; :mod:`loadgen.training.driver` does the rest.

A workload is the task alone: its configs (one per recipe, each naming its MLPerf division), model, data loaders,
optimizer and learning-rate schedule, the loss of one batch, a sharded evaluation with its merge, its targets as
a dict of metric name to threshold, and the mllog keys the rules ask of it. It never parses the common flags,
seeds, logs run/epoch/eval events, saves, plots or prints the RESULT line: the driver owns all of that, once.

The life of a workload in a run (rank r of n; a plain ``python -m`` run is rank 0 of 1)::

    w = MyWorkload(args, cfg, world, device)    # cheap: no data read yet
    w.setup(seed)                                # inside mllog's init_start..init_stop: data, model, optimizer
    w.hyperparameters()                          # logged once
    for each step:  w.learning_rate(step) -> lr;  w.loss(model, batch) -> scalar tensor
    at each evaluation:  part = w.evaluate(model, Shard(r, n));  rank 0: metrics = w.merge(parts)
                         w.reached(metrics) -> stop?
    at the end:  w.checkpoint_meta() -> what export/infer need to rebuild the model

The shape follows AlgoPerf's ``Workload`` (``algoperf/spec.py``): a benchmark is data plus a model plus a metric
with a target, the training loop belongs to someone else.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import torch

from loadgen.training.distributed import DataParallel, World


@dataclasses.dataclass(frozen=True)
class Every:
    """The evaluation cadence: after every ``epochs`` epochs (one mllog block each) or every ``steps`` steps.
    With ``first``, the first evaluation comes after ``first`` epochs (one block), then every ``epochs``: SSD's
    rule evaluates at epochs 40, 45, 50, ..."""

    epochs: int | None = None
    steps: int | None = None
    first: int | None = None

    def __post_init__(self) -> None:
        if (self.epochs is None) == (self.steps is None):
            raise ValueError("Every takes exactly one of epochs= or steps=")
        if (self.epochs or self.steps) <= 0:
            raise ValueError(f"an evaluation interval must be > 0, got {self}")
        if self.first is not None and (self.epochs is None or self.first <= 0):
            raise ValueError(f"first= needs epochs= and must be > 0, got {self}")

    def block_after(self, epoch: int) -> int:
        """Epochs from ``epoch`` to the next evaluation (epoch cadence): the length of the block starting there."""
        start = self.first or 0
        if epoch < start:
            return start - epoch
        return self.epochs - (epoch - start) % self.epochs


@dataclasses.dataclass(frozen=True)
class Shard:
    """This rank's part of the evaluation set: items ``index, index + count, index + 2 * count, ...``."""

    index: int = 0
    count: int = 1

    def take(self, items: Sequence | int) -> range:
        """The positions of this shard among ``items`` (a sequence or a length)."""
        n = items if isinstance(items, int) else len(items)
        return range(self.index, n, self.count)

    def owns(self, position: int) -> bool:
        """Whether item (or batch) ``position`` of a stream belongs to this shard."""
        return position % self.count == self.index


class Workload:
    """Base class of a benchmark's training workload. Subclasses set the class attributes and the methods
    marked *required*; the others have defaults that fit most benchmarks."""

    # -- declared once per benchmark (class attributes) ---------------------------------------------------
    # Derived from the module that defines the workload (see __init_subclass__) unless a subclass sets them:
    prog: ClassVar[str]  # "python -m <benchmark>.train"
    description: ClassVar[str]  # the --help text: the train.py module docstring
    default_output: ClassVar[str]  # "results/<benchmark>/train"
    configs: ClassVar[Mapping[str, Any]]  # recipe name -> a frozen dataclass with division, batch_size, epochs
    default_config: ClassVar[str] = "mini"
    mllog_benchmark: ClassVar[str]  # submission_benchmark, as the compliance checker's ruleset names it
    ruleset: ClassVar[str]  # the checker ruleset its logs are tested against (documentation and tests)
    # The rule keys its log must carry (besides the driver's own: seed, global_batch_size, train_samples,
    # eval_samples, gradient_accumulation_steps). The driver refuses to start a run whose hyperparameters()
    # lacks one, rather than write a log the checker would reject after hours of training.
    hyperparameter_keys: ClassVar[tuple[str, ...]] = ()
    # Exceptions that mean bad input data: the driver prints their last line as one error and exits 1.
    data_errors: ClassVar[tuple[type[Exception], ...]] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        module = sys.modules[cls.__module__]
        # Run as ``python -m <benchmark>.train``, the module is __main__; its spec keeps the importable name.
        name = module.__spec__.name if cls.__module__ == "__main__" and module.__spec__ else cls.__module__
        cls.prog = cls.__dict__.get("prog", f"python -m {name}")
        cls.description = cls.__dict__.get("description", module.__doc__ or "")
        cls.default_output = cls.__dict__.get("default_output", f"results/{name.split('.')[0]}/train")

    def __init__(self, args: argparse.Namespace, cfg: Any, world: World, device: torch.device) -> None:
        self.args, self.cfg, self.world, self.device = args, cfg, world, device
        self.targets: dict[str, float] = dict(self.default_targets(cfg))
        self.model: torch.nn.Module | None = None  # set by setup(), on ``device``
        self.optimizer: torch.optim.Optimizer | None = None  # set by setup(), over self.model's parameters
        # When setup() sets it, the driver scales the gradients to this total L2 norm at most before each
        # optimizer step (after DDP's all-reduce, so every rank clips alike).
        self.grad_clip_norm: float | None = None
        # Also set by setup(): training samples per epoch, samples in one evaluation (all shards together), and
        # steps in one epoch of train_batches().
        self.train_samples = self.eval_samples = self.steps_per_epoch = 0

    # -- flags and configs ---------------------------------------------------------------------------------
    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        """The benchmark's own flags (data folders, a model choice); the driver adds the common ones."""

    @classmethod
    def configure(cls, args: argparse.Namespace, cfg: Any) -> Any:
        """The config after the benchmark's own flag overrides (the driver applies --epochs/--batch-size)."""
        return cfg

    @classmethod
    def default_targets(cls, cfg: Any) -> Mapping[str, float]:
        """*Required.* Metric name -> the value to reach, e.g. ``{"top1": 0.759}``; Mask R-CNN has two."""
        raise NotImplementedError

    def every(self) -> Every:
        """*Required.* The evaluation cadence of this config."""
        raise NotImplementedError

    @property
    def name(self) -> str:
        """The name in the RESULT line and train_result.json (default: the mllog benchmark name)."""
        return self.mllog_benchmark

    # -- the run -----------------------------------------------------------------------------------------------
    def setup(self, seed: int) -> None:
        """*Required.* Read the data; set ``self.model`` (on ``self.device``), ``self.optimizer``,
        ``self.train_samples``, ``self.eval_samples`` and ``self.steps_per_epoch``."""
        raise NotImplementedError

    def parallel(self) -> DataParallel:
        """How the model spans the ranks, asked after setup(): replicated and DDP-wrapped (the default), or a
        subclass for a model that setup() already split over them (DLRM's tables, on TorchRec)."""
        return DataParallel(self.world)

    def init_events(self) -> Iterable[tuple[str, Mapping[str, Any]]]:
        """(key, metadata) events the rules want inside init, e.g. DLRM's ``weights_initialization``."""
        return ()

    def hyperparameters(self) -> Mapping[str, Any]:
        """*Required.* The rule keys and their values (see ``hyperparameter_keys``)."""
        raise NotImplementedError

    def train_batches(self, epoch: int) -> Iterable[Any]:
        """*Required.* This rank's batches of epoch ``epoch``, the same on every call with the same epoch (the
        order is keyed by (seed, epoch)), so that a resumed run can skip to the step where it stopped."""
        raise NotImplementedError

    def learning_rate(self, step: int) -> float:
        """*Required.* The schedule: the learning rate of step ``step`` (0-based, global)."""
        raise NotImplementedError

    def loss(self, model: torch.nn.Module, batch: Any) -> torch.Tensor:
        """*Required.* The scalar training loss of one batch (``model`` may be DDP-wrapped: call it, don't
        reach into it). The driver does zero_grad, backward and the optimizer step."""
        raise NotImplementedError

    def evaluate(self, model: torch.nn.Module, shard: Shard) -> Any:
        """*Required.* Evaluate ``shard`` of the evaluation set with ``model`` (unwrapped, in eval mode, under
        inference_mode) and return what :meth:`merge` needs from this rank, a picklable object (counts, or
        scores and labels). A workload that cannot shard evaluates everything when ``shard.index == 0`` and
        returns None elsewhere, and its merge takes ``parts[0]``."""
        raise NotImplementedError

    def merge(self, parts: list[Any]) -> dict[str, float]:
        """The metrics from every rank's part, in rank order (on rank 0 only). Default: one part, a dict."""
        return dict(parts[0])

    def reached(self, metrics: Mapping[str, float]) -> bool:
        """Whether the run may stop. Default: every target met, higher being better."""
        return all(metrics[name] >= value for name, value in self.targets.items())

    def logged_accuracy(self, metrics: Mapping[str, float]) -> Any:
        """The ``eval_accuracy`` value: the one target's metric, or a dict of them when there are several."""
        if len(self.targets) == 1:
            return metrics[next(iter(self.targets))]
        return {name: metrics[name] for name in self.targets}

    def checkpoint_meta(self) -> dict[str, Any]:
        """*Required.* What export and inference need to rebuild the model from the saved weights."""
        raise NotImplementedError

    def describe(self) -> str:
        """A short title for the training curve, e.g. "resnet50 on mini"."""
        return self.name
