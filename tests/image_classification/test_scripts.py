"""run_and_time.sh: the training form prints RESULT; the inference form falls back to a native run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "image_classification" / "run_and_time.sh"


def test_training_form_prints_result(mini_root, tmp_path):
    proc = subprocess.run([str(SCRIPT), "--data-dir", str(mini_root), "--max-steps", "1", "--batch-size", "8",
                           "--output", str(tmp_path), "--quiet"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    result = [line for line in proc.stdout.splitlines() if line.startswith("RESULT,")]
    assert len(result) == 1 and result[0].split(",")[1:3] == ["resnet50", "1"]


def test_inference_without_docker_engine_runs_natively(exported, mini_root, tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake = bin_dir / "docker"
    fake.write_text("#!/bin/sh\necho 'Cannot connect to the Docker daemon' >&2\nexit 1\n")
    fake.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", MODEL_DIR=str(exported["resnet50"]),
               DATA_DIR=str(mini_root), OUTPUT_DIR=str(tmp_path / "out"))
    proc = subprocess.run([str(SCRIPT), "onnxruntime", "resnet50", "cpu", "--scenario", "Offline", "--accuracy",
                           "--count", "16"], capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 0, proc.stderr
    notices = [line for line in proc.stderr.splitlines() if "no Docker engine" in line]
    assert notices == ["run_and_time.sh: no Docker engine reachable, running natively"]
    assert "TestScenario.Offline" in proc.stdout
    assert (tmp_path / "out" / "Offline" / "accuracy" / "results.json").is_file()
