"""The mllog wrapper writes training logs that mlperf_logging's compliance checker accepts."""

from __future__ import annotations

import subprocess
import sys

import pytest

from loadgen.training.timing import MLLog


def write_resnet_log(path, rank=0):
    """A closed-division ResNet log with every key the 4.0.0 rules require (values from the closed SGD rules)."""
    with MLLog(path, rank=rank, stdout=False) as log:
        log.submission("resnet", "closed", org="mlperf-suite", platform="test-host")
        with log.init():
            log.hyperparameters({"global_batch_size": 256, "opt_name": "sgd", "sgd_opt_base_learning_rate": 0.1,
                                 "sgd_opt_end_learning_rate": 0.0001, "sgd_opt_learning_rate_decay_poly_power": 2,
                                 "sgd_opt_learning_rate_decay_steps": 1000, "sgd_opt_weight_decay": 0.0001,
                                 "sgd_opt_momentum": 0.9, "model_bn_span": 32, "opt_learning_rate_warmup_epochs": 2,
                                 "gradient_accumulation_steps": 1, "train_samples": 1281167,
                                 "eval_samples": 50000, "seed": 1})
        log.start("run_start")
        with log.block(first_epoch_num=0, epoch_count=1), log.epoch(0):
            pass
        log.eval_start(epoch_num=1)
        log.eval_stop(epoch_num=1, accuracy=0.7601)
        log.run_stop(success=True)
    return log


def check(path):
    return subprocess.run([sys.executable, "-m", "mlperf_logging.compliance_checker", "--usage", "training",
                           "--ruleset", "4.0.0", "--log_output", str(path) + ".out", str(path)],
                          capture_output=True, text=True, timeout=120)


def test_compliance_checker_accepts_the_log(tmp_path):
    log = write_resnet_log(tmp_path / "train.log")
    proc = check(tmp_path / "train.log")
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
    assert log.run_seconds is not None and log.run_seconds >= 0


@pytest.mark.parametrize("key", ["submission_org", "init_stop", "cache_clear", "eval_accuracy", "global_batch_size"])
def test_compliance_checker_rejects_a_log_missing_a_key(tmp_path, key):
    write_resnet_log(tmp_path / "train.log")
    lines = (tmp_path / "train.log").read_text().splitlines()
    kept = [line for line in lines if f'"key": "{key}"' not in line]
    assert len(kept) < len(lines)
    (tmp_path / "broken.log").write_text("\n".join(kept) + "\n")
    proc = check(tmp_path / "broken.log")
    assert proc.returncode != 0 and "FAILED" in proc.stdout + proc.stderr


def test_only_rank_zero_writes(tmp_path):
    write_resnet_log(tmp_path / "rank1.log", rank=1)
    assert not (tmp_path / "rank1.log").exists()


def test_each_line_names_the_code_that_logged_it(tmp_path):
    import json
    import os

    write_resnet_log(tmp_path / "train.log")
    metadata = [json.loads(line.split(":::MLLOG ", 1)[1])["metadata"]
                for line in (tmp_path / "train.log").read_text().splitlines()]
    # Through helpers (submission, hyperparameters) and context managers (init, block, epoch) alike, the file
    # is the caller's, as mllog records it when called directly; never the wrapper's own timing.py.
    assert {os.path.basename(m["file"]) for m in metadata} == {"test_timing.py"}
    assert len({m["lineno"] for m in metadata}) >= 6
