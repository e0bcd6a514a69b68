"""DLRM training: a one-step smoke test, and the mini recipe to its target with a log the checker accepts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest


@pytest.mark.slow
def test_training_reaches_the_target_and_the_log_passes_the_compliance_checker(tmp_path):
    import subprocess

    from recommendation import train

    out = tmp_path / "train"
    args = train.get_args_parser().parse_args(["--output", str(out), "--quiet", "--processed-dir",
                                               str(tmp_path / "processed")])
    assert train.main(args) == 0
    result = json.loads((out / "train_result.json").read_text())
    assert result["reached_target"] and result["metrics"]["auc"] >= 0.8025
    log = out / "mlperf_train_log.txt"
    for extra in ([], ["--config", "training_3.1.0/closed_dlrm.yaml"]):
        ruleset = "3.1.0" if extra else "2.1.0"
        proc = subprocess.run([sys.executable, "-m", "mlperf_logging.compliance_checker", "--usage", "training",
                               "--ruleset", ruleset, *extra, "--log_output", str(tmp_path / "cc.log"), str(log)],
                              capture_output=True, text=True, cwd=tmp_path)
        assert proc.returncode == 0 and "SUCCESS" in proc.stdout + proc.stderr, proc.stdout + proc.stderr


def test_one_training_step(raw, tmp_path):
    from recommendation import train

    args = train.get_args_parser().parse_args(["--raw-dir", str(raw), "--max-steps", "1", "--output",
                                               str(tmp_path), "--quiet", "--processed-dir", str(tmp_path / "p"),
                                               "--no-mlperf-bin-loader", "--preprocess-workers", "1"])
    assert train.main(args) == 0
    assert json.loads((tmp_path / "train_result.json").read_text())["steps"] == 1
    assert Path(tmp_path / "model.safetensors").is_file()
