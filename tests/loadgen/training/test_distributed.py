"""Data-parallel training under torchrun (loadgen.training.distributed), for every benchmark that trains.

Two CPU processes (gloo) against one process with the same global batch: the same loss and, checked by the
training itself at the end, the same weights on both ranks; a crashed rank ends the job with a non-zero exit
instead of a hang.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def datasets(tmp_path_factory) -> dict[str, list[str]]:
    """Per benchmark: the flags that point its training at a small mini set of its own."""
    from image_classification import mini as ic_mini
    from recommendation import mini as dlrm_mini

    root = tmp_path_factory.mktemp("distributed")
    return {
        "image_classification": ["--data-dir", str(ic_mini.build(root / "ic")), "--batch-size", "16"],
        "recommendation": ["--raw-dir", str(dlrm_mini.build(root / "dlrm", rows_per_day=400)),
                           "--processed-dir", str(root / "dlrm_processed"), "--batch-size", "64",
                           "--test-freq", "3"],
    }


# Per benchmark, how far 2 processes' loss may be from 1 process's. DLRM has no batch statistics, so the two
# differ by float summation order only; ResNet's BatchNorm normalises each process's half batch by its own
# statistics (model_bn_span = the local batch, as in the MLPerf reference), which moves the loss by a few percent.
# That is also why the weights check below, not the loss, is what shows the gradients are averaged.
LOSS_RTOL = {"image_classification": 0.05, "recommendation": 1e-5}
FAULTS = Path(__file__).with_name("distributed_faults.py")


def torchrun(nproc: int, *args: str) -> list[str]:
    return [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}", *args]


def train(cmd: list[str], out: Path) -> dict:
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert proc.stdout.count("RESULT,") == 1, proc.stdout  # rank 0 alone prints it
    return json.loads((out / "train_result.json").read_text())


@pytest.mark.slow
@pytest.mark.parametrize("bench", sorted(LOSS_RTOL))
def test_two_processes_match_one_with_the_same_global_batch(bench, datasets, tmp_path):
    flags = [*datasets[bench], "--max-steps", "6", "--threads", "1", "--quiet"]
    one = train([sys.executable, "-m", f"{bench}.train", *flags, "--output", str(tmp_path / "one")],
                tmp_path / "one")
    two = train(torchrun(2, "-m", f"{bench}.train", *flags, "--output", str(tmp_path / "two")), tmp_path / "two")
    assert (one["world_size"], two["world_size"]) == (1, 2)
    assert two["steps"] == one["steps"] == 6
    assert two["history"]["train loss"] == pytest.approx(one["history"]["train loss"], rel=LOSS_RTOL[bench])
    if bench == "recommendation":
        # Each rank evaluates its shard and rank 0 merges: the same AUC as one process evaluating everything.
        # (ResNet's evaluation uses rank 0's BatchNorm statistics of its half batch, so it differs a little.)
        assert two["metrics"]["auc"] == pytest.approx(one["metrics"]["auc"], rel=1e-5)
    log = (tmp_path / "two" / "mlperf_train_log.txt").read_text()
    batch = flags[flags.index("--batch-size") + 1]
    assert f'"key": "global_batch_size", "value": {batch},' in log
    assert log.count('"key": "run_start"') == 1  # one writer: rank 0


@pytest.mark.parametrize("bench", sorted(LOSS_RTOL))
def test_ranks_that_do_not_average_gradients_are_caught(bench, datasets, tmp_path):
    proc = subprocess.run(torchrun(2, str(FAULTS), "nosync", f"{bench}.train", *datasets[bench], "--max-steps", "2",
                                   "--threads", "1", "--quiet", "--output", str(tmp_path)),
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode != 0
    assert "weights of rank(s) [1] differ from rank 0's" in proc.stderr


@pytest.mark.parametrize("bench", sorted(LOSS_RTOL))
def test_an_uneven_global_batch_is_refused_in_one_line(bench, datasets, tmp_path):
    proc = subprocess.run(torchrun(2, "-m", f"{bench}.train", *datasets[bench], "--batch-size", "15",
                                   "--max-steps", "1", "--output", str(tmp_path)),
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode != 0
    message = (f"python -m {bench}.train: error: the global batch size 15 does not split over 2 processes; "
               "pick a multiple of 2")
    assert proc.stderr.count(message) == 2  # each rank says it once, before any collective could wait


@pytest.mark.parametrize("bench", sorted(LOSS_RTOL))
def test_a_crashed_rank_ends_the_job_with_an_error(bench, datasets, tmp_path):
    start = time.monotonic()
    proc = subprocess.run(torchrun(2, str(FAULTS), "crash", f"{bench}.train",
                                   *datasets[bench], "--max-steps", "50", "--threads", "1", "--quiet",
                                   "--output", str(tmp_path)),
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode != 0
    assert "exitcode  : 3" in proc.stderr  # torchrun's failure report names the dead rank's exit code
    assert time.monotonic() - start < 120  # the surviving rank was stopped, not left waiting in a collective


def test_slurm_script_starts_one_torchrun_per_node(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text("#!/bin/sh\nprintf 'gpu-017\\ngpu-018\\n'\n")
    (bin_dir / "srun").write_text('#!/bin/sh\nprintf "%s\\n" "$@" > "$SRUN_ARGS"\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", SRUN_ARGS=str(tmp_path / "args"),
               SLURM_JOB_NODELIST="gpu-[017-018]", SLURM_JOB_NUM_NODES="2", SLURM_GPUS_ON_NODE="8",
               SLURM_JOB_ID="4242", SLURM_SUBMIT_DIR=str(REPO), PYTHON="python3")
    script = REPO / "loadgen" / "deploy" / "slurm_train.sh"
    proc = subprocess.run([str(script), "recommendation", "--config", "terabyte"],
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    args = (tmp_path / "args").read_text().split()
    assert args == ["--kill-on-bad-exit=1", "python3", "-m", "torch.distributed.run", "--nnodes", "2",
                    "--nproc-per-node", "8", "--rdzv-backend", "c10d", "--rdzv-endpoint", "gpu-017:29500",
                    "--rdzv-id", "4242", "-m", "recommendation.train", "--config", "terabyte"]
