"""The shared training driver, driven by a toy workload with two targets: reached, not reached, resumed, and an
mllog evaluation whose eval_stop comes after the evaluation's real duration."""

from __future__ import annotations

import dataclasses
import json
import time

import pytest
import torch

from loadgen.training import driver
from loadgen.training.checkpoint import load_state
from loadgen.training.workload import Every, Shard, Workload


@dataclasses.dataclass(frozen=True)
class ToyConfig:
    division: str = "open"
    batch_size: int = 32
    epochs: int = 6
    eval_every: int = 1


class Toy(Workload):
    """Logistic regression on 256 synthetic points whose label is the sign of a fixed direction."""

    prog = "python -m toy.train"
    default_output = "unused"
    configs = {"mini": ToyConfig(), "steps": ToyConfig(epochs=2), "closed": ToyConfig(division="closed")}
    mllog_benchmark = "toy"
    ruleset = "none"
    hyperparameter_keys = ("opt_name",)
    eval_sleep_s = 0.0

    @classmethod
    def default_targets(cls, cfg):
        return {"accuracy": 0.9, "confidence": 0.6}  # two targets, both to be met

    def every(self):
        return Every(steps=5) if self.args.config == "steps" else Every(epochs=self.cfg.eval_every)

    def setup(self, seed):
        g = torch.Generator().manual_seed(1234)  # the data is fixed; the seed drives the model and the order
        self.x = torch.randn(256, 4, generator=g)
        self.y = (self.x @ torch.tensor([1.0, -2.0, 0.5, 1.5]) > 0).float()
        self.model = torch.nn.Linear(4, 1)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.5, momentum=0.9)
        self.seed = seed
        self.train_samples = self.eval_samples = 256
        self.steps_per_epoch = 8

    def hyperparameters(self):
        return {"opt_name": "sgd"}

    def train_batches(self, epoch):
        order = torch.randperm(256, generator=torch.Generator().manual_seed(self.seed * 1000 + epoch))
        return [order[i:i + 32] for i in range(0, 256, 32)]

    def learning_rate(self, step):
        return 0.5

    def loss(self, model, batch):
        return torch.nn.functional.binary_cross_entropy_with_logits(model(self.x[batch])[:, 0], self.y[batch])

    def evaluate(self, model, shard: Shard):
        time.sleep(self.eval_sleep_s)
        rows = list(shard.take(256))
        p = torch.sigmoid(model(self.x[rows])[:, 0])
        y = self.y[rows]
        return float(((p > 0.5).float() == y).sum()), float(torch.where(y > 0, p, 1 - p).sum()), len(rows)

    def merge(self, parts):
        right, confident, n = (sum(c) for c in zip(*parts, strict=True))
        return {"accuracy": right / n, "confidence": confident / n}

    def checkpoint_meta(self):
        return {"toy": True}


def run(out, *flags):
    args = driver.get_args_parser(Toy).parse_args(["--output", str(out), "--quiet", "--threads", "1", *flags])
    return driver.main(Toy, args)


def events(out):
    lines = (out / driver.LOG).read_text().splitlines()
    return [json.loads(line.split(":::MLLOG ", 1)[1]) for line in lines]


def test_two_targets_reached_stop_the_run_early(tmp_path, capsys):
    assert run(tmp_path) == 0
    result = json.loads((tmp_path / driver.RESULT).read_text())
    assert result["reached_target"] and result["targets"] == {"accuracy": 0.9, "confidence": 0.6}
    assert result["metrics"]["accuracy"] >= 0.9 and result["metrics"]["confidence"] >= 0.6
    assert result["epochs"] < Toy.configs["mini"].epochs  # stopped by the targets, not by the epochs
    assert len(result["history"]["accuracy"]) == len(result["history"]["epoch"]) == result["epochs"]
    accuracy = [e["value"] for e in events(tmp_path) if e["key"] == "eval_accuracy"]
    assert accuracy[-1] == {"accuracy": result["metrics"]["accuracy"],
                            "confidence": result["metrics"]["confidence"]}  # both targets in eval_accuracy
    assert events(tmp_path)[-1]["metadata"]["status"] == "success"
    assert capsys.readouterr().out.count("RESULT,toy,1,") == 1
    state, meta = load_state(tmp_path)
    assert meta["toy"] and meta["steps"] == result["steps"] and set(state) == {"weight", "bias"}
    assert (tmp_path / "training_curve.png").read_bytes().startswith(b"\x89PNG")


def test_one_target_out_of_reach_runs_every_epoch_and_exits_1(tmp_path, capsys):
    assert run(tmp_path, "--target", "confidence=0.9999") == 1
    result = json.loads((tmp_path / driver.RESULT).read_text())
    assert not result["reached_target"] and result["epochs"] == 6 and result["steps"] == 48
    assert result["metrics"]["accuracy"] >= 0.9  # one target met is not enough
    assert events(tmp_path)[-1]["metadata"]["status"] == "aborted"
    assert "train: did not reach accuracy 0.9, confidence 0.9999" in capsys.readouterr().out


def test_a_bare_target_is_refused_when_there_are_two(tmp_path, capsys):
    assert run(tmp_path, "--target", "0.5") == 2
    assert capsys.readouterr().err.strip() == (f"{Toy.prog}: error: --target: this config has 2 targets (accuracy, "
                                               "confidence); name one as NAME=VALUE")


def test_resumed_run_ends_as_the_uninterrupted_one(tmp_path):
    far = ["--target", "confidence=0.9999"]
    assert run(tmp_path / "whole", *far) == 1
    assert run(tmp_path / "cut", *far, "--epochs", "2") == 1  # "killed" after its second evaluation
    assert run(tmp_path / "cut", *far, "--resume") == 1
    whole, cut = (json.loads((tmp_path / d / driver.RESULT).read_text()) for d in ("whole", "cut"))
    assert cut["resumed"] and cut["steps"] == whole["steps"] == 48
    assert cut["history"] == whole["history"]
    assert all(torch.equal(a, b) for a, b in zip(load_state(tmp_path / "whole")[0].values(),
                                                 load_state(tmp_path / "cut")[0].values(), strict=True))
    # The log reads as one run: the first run's run_stop was cut away and the evaluations go on in order.
    log = events(tmp_path / "cut")
    keys = [e["key"] for e in log]
    assert keys.count("run_start") == keys.count("run_stop") == keys.count("init_stop") == 1
    assert [e["metadata"]["epoch_num"] for e in log if e["key"] == "eval_accuracy"] == [1, 2, 3, 4, 5, 6]


def test_resume_mid_epoch_with_a_step_cadence(tmp_path):
    far = ["--config", "steps", "--target", "confidence=0.9999"]
    assert run(tmp_path / "whole", *far) == 1
    assert run(tmp_path / "cut", *far, "--max-steps", "10") == 0  # a --max-steps cut is not a failed run
    assert run(tmp_path / "cut", *far, "--resume") == 1
    whole, cut = (json.loads((tmp_path / d / driver.RESULT).read_text()) for d in ("whole", "cut"))
    assert whole["history"]["epoch"] == [0.625, 1.25, 1.875]  # every 5 steps, 8 steps an epoch
    assert cut["history"] == whole["history"]


def test_resume_without_a_checkpoint_is_a_usage_error(tmp_path, capsys):
    assert run(tmp_path, "--resume") == 2
    assert f"{Toy.prog}: error: --resume: no checkpoint in" in capsys.readouterr().err


def test_eval_stop_comes_after_the_real_evaluation(tmp_path, monkeypatch):
    monkeypatch.setattr(Toy, "eval_sleep_s", 0.2)
    run(tmp_path, "--epochs", "1")
    log = events(tmp_path)
    start = next(e for e in log if e["key"] == "eval_start")
    stop = next(e for e in log if e["key"] == "eval_stop")
    assert stop["time_ms"] - start["time_ms"] >= 200


def test_a_workload_missing_a_rule_key_fails_before_training(tmp_path, monkeypatch):
    monkeypatch.setattr(Toy, "hyperparameter_keys", ("opt_name", "sgd_opt_momentum"))
    with pytest.raises(RuntimeError, match=r"lacks the rule keys \['sgd_opt_momentum'\]"):
        run(tmp_path)
    assert "run_start" not in (tmp_path / driver.LOG).read_text()


@pytest.mark.parametrize(("config", "flags", "saved"), [("mini", [], True), ("closed", [], False),
                                                        ("closed", ["--save-resume"], True),
                                                        ("mini", ["--no-save-resume"], False)])
def test_resume_checkpoints_are_saved_by_default_only_for_open_division(tmp_path, config, flags, saved):
    # Saving model and optimizer after each evaluation counts in the time to train: a closed (timed reference)
    # run saves none unless asked.
    run(tmp_path, "--config", config, "--epochs", "2", *flags)
    assert (tmp_path / "resume").is_dir() == saved


@pytest.mark.parametrize("clip", [None, 0.01])
def test_gradients_reach_the_optimizer_clipped_to_the_workloads_norm(tmp_path, monkeypatch, clip):
    norms = []
    setup = Toy.setup

    def clipped_setup(self, seed):
        setup(self, seed)
        self.grad_clip_norm = clip
        step = self.optimizer.step

        def recording_step(*a, **k):
            norms.append(torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in self.model.parameters()])))
            return step(*a, **k)

        self.optimizer.step = recording_step

    monkeypatch.setattr(Toy, "setup", clipped_setup)
    run(tmp_path, "--epochs", "1")
    assert len(norms) == 8
    if clip is None:
        assert max(norms) > 0.01  # the toy's gradients are larger than the clip below
    else:
        assert max(norms) <= clip * (1 + 1e-5)
