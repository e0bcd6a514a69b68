"""Train GNMT or the Transformer on WMT English-German until the test BLEU reaches the target, then stop and print
the time.

    python -m translation.train --config gnmt-mini             # the embedded mini set, open division
    python -m translation.train --config gnmt --data-dir build/translation/wmt16_de_en --device gpu
    torchrun --nproc-per-node 8 -m translation.train --config transformer --device gpu --data-dir DATA

GNMT as the MLPerf reference (rnn_translator, training v0.5-v0.7): Adam at 1e-3 (batch 128), an exponential warmup
over 200 steps from 1 % of the rate, then the rate halved at most 4 times over the last third of the run
(``opt_learning_rate_remain_steps`` on, every ``opt_learning_rate_decay_interval`` steps), training pairs longer
than 50 subwords discarded, label smoothing 0.1, evaluation every epoch on newstest2014 with beam 5, target BLEU
24.0. The Transformer "big" as the MLPerf reference (fairseq, training v0.5-v0.7): Adam (0.9, 0.997, 1e-9), a
linear warmup then the inverse square root of the step, label smoothing 0.1, beam 4, target BLEU 25.0.

BLEU is sacreBLEU on the detokenized output against the raw reference, lowercased with the ``intl`` tokenizer, as
the GNMT reference computes it, and logged as a fraction (``eval_accuracy`` 0.24 for 24.0). The shared driver
(``loadgen.training.driver``) logs the run; the log is checked with ``python -m mlperf_logging.compliance_checker
--usage training --ruleset 0.7.0``, the last ruleset that knows gnmt and transformer. That ruleset asks for the
real targets even in the open division (BLEU >= 24.0 for gnmt, >= 25.0 for transformer), so the mini configs
train to 25.0 on the mini set's held-out test set.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import sys
from pathlib import Path

import torch
from mlperf_logging.mllog import constants

from loadgen.cli import existing_dir, positive
from loadgen.data import DataError
from loadgen.training import distributed, driver
from loadgen.training.timing import Tagged
from loadgen.training.workload import Every, Shard, Workload
from translation import beam, mini
from translation.data import training
from translation.infer import translate_ids
from translation.models import LOSS_REDUCTION, build, label_smoothed_loss


@dataclasses.dataclass(frozen=True)
class Config:
    division: str
    model: str  # "gnmt" or "transformer"
    batch_size: int  # global, in sentences
    epochs: int
    lr: float
    target: float  # BLEU as a fraction, as logged
    warmup_steps: int
    max_length: int  # max_sequence_length: longer training pairs are discarded
    sizes: tuple[tuple[str, int], ...] = ()  # model size overrides (the mini configs'); empty: the reference's
    smoothing: float = 0.1
    # GNMT's schedule (the reference's WarmupMultiStepLR): decays start after this fraction of the run's steps
    remain_fraction: float = 2 / 3
    decay_count: int = 4
    decay_factor: float = 0.5
    # the Transformer's Adam
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8


CONFIGS = {
    # WMT16 en-de, MLPerf closed (training v0.7 closed_gnmt: BLEU >= 24.0). Recipe: the reference's train.py
    # defaults with batch 128 and lr 1e-3 (rnn_translator/run_and_time.sh), 6 epochs.
    "gnmt": Config(division="closed", model="gnmt", batch_size=128, epochs=6, lr=1e-3, target=0.240,
                   warmup_steps=200, max_length=50),
    # WMT17 en-de, MLPerf closed (training v0.7 closed_transformer: BLEU >= 25.0, Adam epsilon 1e-9). Recipe: the
    # reference's run_and_time.sh (lr 1.976e-3, warmup 1000 updates, betas 0.9/0.997).
    "transformer": Config(division="closed", model="transformer", batch_size=256, epochs=10, lr=1.976e-3,
                          target=0.250, warmup_steps=1000, max_length=256, betas=(0.9, 0.997), eps=1e-9),
    # The embedded mini set, open division. Ruleset 0.7.0 wants BLEU >= 24.0 (gnmt) in the open division too, so
    # both minis aim at 25.0 on the mini test set, with small models sized for 2 CPU cores. Measured with seed 1
    # (--target 0.9 --epochs 4 to see the curve), BLEU after each epoch of 388 steps: gnmt-mini 1.8, 13.8, 70.3,
    # 76.2 (about 19 s an epoch); at lr 3e-3 1.5, 0.7, 18.7, 65.4; at batch 32 and 3e-3 2.5, 23.1, 72.1, 77.3.
    # transformer-mini 30.7 after epoch 1 (28 s).
    "gnmt-mini": Config(division="open", model="gnmt", batch_size=64, epochs=12, lr=5e-3, target=0.250,
                        warmup_steps=50, max_length=50, sizes=(("hidden", 128), ("layers", 4))),
    "transformer-mini": Config(division="open", model="transformer", batch_size=64, epochs=12, lr=1e-3,
                               target=0.250, warmup_steps=100, max_length=64, betas=(0.9, 0.997), eps=1e-9,
                               sizes=(("d_model", 128), ("ffn", 512), ("heads", 4), ("layers", 3))),
}


def gnmt_learning_rate(step: int, cfg: Config, total_steps: int) -> float:
    """The GNMT reference's WarmupMultiStepLR: during the warmup the rate rises exponentially from 1 % of the base
    rate; from ``remain_steps`` on it is multiplied by ``decay_factor`` once every ``decay_interval`` steps, at most
    ``decay_count`` times."""
    if step < cfg.warmup_steps:
        return cfg.lr * math.exp(math.log(0.01) * (cfg.warmup_steps - step) / cfg.warmup_steps)
    remain, interval = gnmt_decay(cfg, total_steps)
    if step < remain:
        return cfg.lr
    return cfg.lr * cfg.decay_factor ** min((step - remain) // interval + 1, cfg.decay_count)


def gnmt_decay(cfg: Config, total_steps: int) -> tuple[int, int]:
    """(remain_steps, decay_interval) of a run of ``total_steps``."""
    remain = int(cfg.remain_fraction * total_steps)
    return remain, max(1, (total_steps - remain) // cfg.decay_count)


def transformer_learning_rate(step: int, cfg: Config) -> float:
    """fairseq's inverse_sqrt: linear from 0 to the base rate over the warmup, then base x sqrt(warmup / step)."""
    step += 1
    if step < cfg.warmup_steps:
        return cfg.lr * step / cfg.warmup_steps
    return cfg.lr * math.sqrt(cfg.warmup_steps / step)


class Translation(Workload):
    """GNMT or the Transformer on a prepared WMT folder, to a BLEU target."""

    configs = CONFIGS
    default_config = "gnmt-mini"
    ruleset = "0.7.0"
    data_errors = (DataError,)

    @classmethod
    def add_arguments(cls, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--data-dir", type=existing_dir, default=None,
                            help=f"a prepared WMT folder (download_dataset.sh) (default: the mini set, "
                                 f"{mini.DEFAULT_OUT})")
        parser.add_argument("--eval-sentences", type=positive(int), default=None,
                            help="evaluate on the first N test sentences only, for quick runs (default: all)")

    @classmethod
    def default_targets(cls, cfg: Config) -> dict[str, float]:
        return {"BLEU": cfg.target}

    @property
    def mllog_benchmark(self) -> str:  # type: ignore[override]
        return self.cfg.model

    @property
    def hyperparameter_keys(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.hyperparameters())

    def every(self) -> Every:
        return Every(epochs=1)

    def setup(self, seed: int) -> None:
        args, cfg, world = self.args, self.cfg, self.world
        with distributed.main_first(world):
            self.root = Path(args.data_dir) if args.data_dir else mini.ensure()
        self.subwords = training.Subwords.of(self.root)
        self.vocab = self.subwords.vocab()
        self.train_set = training.Parallel.load(self.root, self.vocab, cfg.max_length)
        test = training.TestSet.load(self.root, self.vocab)
        count = args.eval_sentences or len(test.src)
        self.test = training.TestSet(test.src[:count], test.references[:count])
        self.model = build(cfg.model, len(self.vocab), **dict(cfg.sizes)).to(self.device)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=cfg.lr, betas=cfg.betas, eps=cfg.eps)
        self.local_batch = world.local_batch(cfg.batch_size)
        self.lengths = [max(len(s), len(t)) for s, t in zip(self.train_set.src, self.train_set.tgt, strict=True)]
        self.seed = seed
        self.steps_per_epoch = len(self.lengths) // cfg.batch_size
        if self.steps_per_epoch == 0:
            raise DataError(f"{self.root}: {len(self.lengths)} training pairs, fewer than one batch of "
                            f"{cfg.batch_size}")
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.train_samples, self.eval_samples = len(self.train_set), len(self.test.src)

    def hyperparameters(self) -> dict:
        cfg = self.cfg
        length = Tagged(cfg.max_length, {"method": "discard"})
        if cfg.model == "gnmt":
            remain, interval = gnmt_decay(cfg, self.total_steps)
            return {constants.OPT_BASE_LR: cfg.lr, constants.OPT_LR_ALT_DECAY_FUNC: True,
                    constants.OPT_LR_ALT_WARMUP_FUNC: True, constants.OPT_LR_DECAY_FACTOR: cfg.decay_factor,
                    constants.OPT_LR_DECAY_INTERVAL: interval, constants.OPT_LR_DECAY_STEPS: cfg.decay_count,
                    constants.OPT_LR_REMAIN_STEPS: remain, constants.OPT_LR_WARMUP_STEPS: cfg.warmup_steps,
                    constants.MAX_SEQUENCE_LENGTH: length}
        return {constants.OPT_NAME: constants.ADAM, constants.OPT_BASE_LR: cfg.lr,
                constants.OPT_LR_WARMUP_STEPS: cfg.warmup_steps, constants.OPT_ADAM_BETA_1: cfg.betas[0],
                constants.OPT_ADAM_BETA_2: cfg.betas[1], constants.OPT_ADAM_EPSILON: cfg.eps,
                constants.MAX_SEQUENCE_LENGTH: length}

    def train_batches(self, epoch: int):
        """This rank's slice of each global batch of the epoch (length-bucketed, keyed by (seed, epoch))."""
        rank, local = self.world.rank, self.local_batch
        for indices in training.batches(self.lengths, self.cfg.batch_size, self.seed, epoch):
            yield training.collate(self.train_set, indices[rank * local:(rank + 1) * local])

    def learning_rate(self, step: int) -> float:
        if self.cfg.model == "gnmt":
            return gnmt_learning_rate(step, self.cfg, self.total_steps)
        return transformer_learning_rate(step, self.cfg)

    def loss(self, model: torch.nn.Module, batch) -> torch.Tensor:
        src, src_lengths, tgt_in, tgt_out = (torch.from_numpy(a).to(self.device) for a in batch)
        logits = model(src, src_lengths, tgt_in)
        return label_smoothed_loss(logits, tgt_out, self.cfg.smoothing, reduction=LOSS_REDUCTION[self.cfg.model])

    def evaluate(self, model: torch.nn.Module, shard: Shard) -> list[tuple[int, list[int]]]:
        """This rank's share of the test sentences translated with the model's beam search: (position, ids)."""
        return translate_ids(model.encode, model.decode_step, self.test.src, list(shard.take(self.test.src)),
                             beam.SEARCH[self.cfg.model], self.device)

    def merge(self, parts: list[list[tuple[int, list[int]]]]) -> dict[str, float]:
        found = dict(pair for part in parts for pair in part)
        hypotheses = training.detokenize(self.vocab, [found[i] for i in range(len(self.test.src))], self.subwords)
        return {"BLEU": training.bleu(hypotheses, self.test.references) / 100}

    def checkpoint_meta(self) -> dict:
        return {"model": self.cfg.model, "sizes": dict(self.cfg.sizes), "vocab_size": len(self.vocab),
                "data_dir": str(self.root)}

    def describe(self) -> str:
        return f"{self.cfg.model} on {self.root.name}"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    return driver.get_args_parser(Translation, add_help)


def main(args: argparse.Namespace) -> int:
    return driver.main(Translation, args)


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
