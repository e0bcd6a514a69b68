"""Training: a one-step smoke test, and a short real run whose log the compliance checker accepts."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from image_classification import train
from image_classification.train import CONFIGS, lr_at


def run_train(tmp_path, mini_root, *extra):
    args = train.get_args_parser().parse_args(["--data-dir", str(mini_root), "--output", str(tmp_path), "--quiet",
                                               "--batch-size", "16", *extra])
    return train.main(args)


def test_one_training_step(tmp_path, mini_root, capsys):
    assert run_train(tmp_path, mini_root, "--max-steps", "1") == 0
    result = json.loads((tmp_path / "train_result.json").read_text())
    assert result["steps"] == 1
    model, meta = train.load_checkpoint(tmp_path)
    assert meta["model"] == "resnet50" and meta["num_classes"] == 10
    assert (tmp_path / "training_curve.png").read_bytes().startswith(b"\x89PNG")
    assert "RESULT,resnet50,1," in capsys.readouterr().out


def test_short_run_log_passes_the_compliance_checker(tmp_path, mini_root):
    run_train(tmp_path, mini_root, "--max-steps", "3", "--model", "mobilenet")
    log = tmp_path / "mlperf_train_log.txt"
    proc = subprocess.run([sys.executable, "-m", "mlperf_logging.compliance_checker", "--usage", "training",
                           "--ruleset", "4.0.0", "--log_output", str(tmp_path / "cc.log"), str(log)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS" in proc.stdout + proc.stderr
    text = log.read_text()
    assert '"submission_division", "value": "open"' in text.replace('"key": ', "")


def test_schedule_follows_the_closed_rules():
    cfg = CONFIGS["reference"]
    steps = 100
    assert lr_at(0, steps, cfg, cfg.epochs) == pytest.approx(cfg.base_lr / (cfg.warmup_epochs * steps))
    assert lr_at(cfg.warmup_epochs * steps - 1, steps, cfg, cfg.epochs) == pytest.approx(cfg.base_lr)
    assert lr_at(cfg.epochs * steps, steps, cfg, cfg.epochs) == pytest.approx(0.0001)  # end LR of the rules
    assert cfg.target == 0.759 and cfg.label_smoothing == 0.1


@pytest.mark.parametrize("workers", ["0", "1"])
def test_bad_training_image_is_one_line_naming_the_file(mini_copy, tmp_path, capsys, workers):
    victim = sorted((mini_copy / "train").glob("*/*.JPEG"))[0]
    victim.write_bytes(b"")
    args = train.get_args_parser().parse_args(["--data-dir", str(mini_copy), "--output", str(tmp_path), "--quiet",
                                               "--batch-size", "1497", "--max-steps", "1", "--workers", workers])
    assert train.main(args) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(victim) in err[0] and "empty file" in err[0]


@pytest.mark.slow
def test_mini_recipe_trains_to_its_target_and_the_log_passes_the_checker(tmp_path, mini_root, capsys):
    # The whole mini recipe, as make demo runs it: it must stop because top-1 reached the target, not because the
    # epochs ran out, and say so in train_result.json, the RESULT line and a log the checker accepts.
    args = train.get_args_parser().parse_args(["--data-dir", str(mini_root), "--output", str(tmp_path), "--quiet"])
    assert train.main(args) == 0
    result = json.loads((tmp_path / "train_result.json").read_text())
    assert result["metrics"]["top1"] >= CONFIGS["mini"].target
    assert result["reached_target"] and result["epochs"] < CONFIGS["mini"].epochs
    assert capsys.readouterr().out.count("RESULT,resnet50,1,") == 1
    log = tmp_path / "mlperf_train_log.txt"
    assert '"status": "success"' in log.read_text()
    proc = subprocess.run([sys.executable, "-m", "mlperf_logging.compliance_checker", "--usage", "training",
                           "--ruleset", "4.0.0", "--log_output", str(tmp_path / "cc.log"), str(log)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "SUCCESS" in proc.stdout + proc.stderr, proc.stdout + proc.stderr
