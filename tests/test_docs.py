"""Each benchmark README shows how to run it everywhere (Docker, native, several GPUs, several nodes, Slurm), with
commands that name what the code really builds; nvidia-docker appears only as a legacy name."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = sorted(p.parent.name for p in REPO.glob("*/run_and_time.sh"))


@pytest.mark.parametrize("bench", BENCHMARKS)
def test_readme_shows_every_way_to_run(bench):
    text = (REPO / bench / "README.md").read_text()
    for needed in ["docker build -f loadgen/deploy/Dockerfile --build-arg VARIANT=gpu -t mlperf-suite:gpu .",
                   f"docker build -f {bench}/Dockerfile --build-arg VARIANT=gpu -t mlperf-{bench}:gpu .",
                   "--gpus all", f"mlperf-{bench}:gpu", f"{bench}/run_and_time.sh --native",
                   f"torchrun --standalone --nproc-per-node 8 -m {bench}.train",
                   "--rdzv-backend c10d --rdzv-endpoint", f"loadgen/deploy/slurm_train.sh {bench}",
                   "run_and_time.sh: no Docker engine reachable, running natively", "RESULT,"]:
        assert needed in text, needed


def test_nvidia_docker_is_only_the_legacy_name():
    for path in [*REPO.glob("*/README.md"), REPO / "README.md", REPO / "install_cuda_docker.sh"]:
        for paragraph in re.split(r"\n\s*\n", path.read_text()):
            if re.search(r"nvidia-docker(?!2)", paragraph):
                assert "legacy" in paragraph, f"{path}: {paragraph}"
