"""Every benchmark's Dockerfile: COPY sources exist, the entrypoint is an executable script, it runs as non-root,
the base is pinned by tag, and cpu is the default variant. A new benchmark folder is checked by being there."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

REPO = Path(__file__).resolve().parents[1]
DOCKERFILES = sorted(REPO.glob("*/Dockerfile"))


def test_every_benchmark_with_scripts_has_a_dockerfile():
    folders = {p.parent for p in REPO.glob("*/run_and_time.sh")}
    assert folders and folders == {p.parent for p in DOCKERFILES}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_dockerfile_is_consistent(dockerfile):
    instructions = DockerfileParser(path=str(dockerfile)).structure
    copies = [i["value"].split()[:-1] for i in instructions if i["instruction"] == "COPY"]
    for sources in copies:
        for source in sources:
            assert (REPO / source).exists(), source
    copied_dirs = {s.rstrip("/") for sources in copies for s in sources if s.endswith("/")}
    assert copied_dirs == {"loadgen", dockerfile.parent.name}  # only the shared package and its own folder
    entry = next(i["value"] for i in instructions if i["instruction"] == "ENTRYPOINT")
    script = REPO / entry.strip('[]"')
    assert script == dockerfile.parent / "run_and_time.sh" and os.access(script, os.X_OK)
    users = [i["value"] for i in instructions if i["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    args = {i["value"].split("=")[0]: i["value"].split("=", 1)[1] for i in instructions if i["instruction"] == "ARG"
            and "=" in i["value"]}
    assert args["VARIANT"] == "cpu" and ":" in args["BASE"] and not args["BASE"].endswith(":latest")
    # The variants: gpu swaps in onnxruntime-gpu, pinned in constraints.txt too; both run natively inside.
    runs = " ".join(i["value"] for i in instructions if i["instruction"] == "RUN")
    assert '"$VARIANT" = gpu' in runs and "pip install -c constraints.txt onnxruntime-gpu" in runs
    assert any(line.startswith("onnxruntime-gpu==") for line in (REPO / "constraints.txt").read_text().splitlines())
    pip_installs = re.findall(r"pip install (?!-c constraints\.txt )", runs)
    assert pip_installs == []  # every install is pinned by the one constraints file
    env = " ".join(i["value"] for i in instructions if i["instruction"] == "ENV")
    assert "MLPERF_LAUNCH=native" in env
    # The documented build commands name the image loadgen/launch.py builds.
    text = dockerfile.read_text()
    bench = dockerfile.parent.name
    for variant in ("cpu", "gpu"):
        assert f"--build-arg VARIANT={variant} -t mlperf-{bench}:{variant} ." in text
