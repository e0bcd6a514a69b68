"""The images: the suite's base (loadgen/deploy/Dockerfile) and one thin layer per benchmark folder on it.

The base: pinned base image, cpu the default variant, gpu swapping in onnxruntime-gpu, every pip install pinned by
constraints.txt, non-root, MLPERF_LAUNCH=native. Each benchmark's layer: built FROM the base of the same variant,
copying only its own folder, with its run_and_time.sh as the executable entrypoint. A new benchmark folder is
checked by being there.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

REPO = Path(__file__).resolve().parents[1]
BASE = REPO / "loadgen" / "deploy" / "Dockerfile"
DOCKERFILES = sorted(REPO.glob("*/Dockerfile"))


def structure(path: Path) -> list[dict]:
    return DockerfileParser(path=str(path)).structure


def values(instructions: list[dict], keyword: str) -> list[str]:
    return [i["value"] for i in instructions if i["instruction"] == keyword]


def build_args(instructions: list[dict]) -> dict[str, str]:
    return {v.split("=")[0]: v.split("=", 1)[1] for v in values(instructions, "ARG") if "=" in v}


def test_every_benchmark_with_scripts_has_a_dockerfile():
    folders = {p.parent for p in REPO.glob("*/run_and_time.sh")}
    assert folders and folders == {p.parent for p in DOCKERFILES}


def test_base_image():
    instructions = structure(BASE)
    copies = [v.split()[:-1] for v in values(instructions, "COPY")]
    for sources in copies:
        for source in sources:
            assert (REPO / source).exists(), source
    assert {s.rstrip("/") for sources in copies for s in sources if s.endswith("/")} == {"loadgen"}
    users = values(instructions, "USER")
    assert users and users[-1].split(":")[0] not in ("0", "root")
    args = build_args(instructions)
    assert args["VARIANT"] == "cpu" and ":" in args["BASE"] and not args["BASE"].endswith(":latest")
    # The variants: gpu swaps in onnxruntime-gpu, pinned in constraints.txt too; both run natively inside.
    runs = " ".join(values(instructions, "RUN"))
    assert '"$VARIANT" = gpu' in runs and "pip install -c constraints.txt onnxruntime-gpu" in runs
    assert any(line.startswith("onnxruntime-gpu==") for line in (REPO / "constraints.txt").read_text().splitlines())
    assert re.findall(r"pip install (?!-c constraints\.txt )", runs) == []  # every install pinned by one file
    assert "MLPERF_LAUNCH=native" in " ".join(values(instructions, "ENV"))
    text = BASE.read_text()
    for variant in ("cpu", "gpu"):  # the documented build commands name the image launch.py builds
        assert f"-f loadgen/deploy/Dockerfile --build-arg VARIANT={variant} -t mlperf-suite:{variant} ." in text


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_benchmark_layer(dockerfile):
    bench = dockerfile.parent.name
    instructions = structure(dockerfile)
    assert values(instructions, "FROM") == ["mlperf-suite:${VARIANT}"] and build_args(instructions)["VARIANT"] == "cpu"
    copies = [v.split() for v in values(instructions, "COPY")]
    assert copies == [["--chown=1000:1000", f"{bench}/", f"/work/{bench}/"]]  # its own folder only
    entry = values(instructions, "ENTRYPOINT")[0]
    script = REPO / entry.strip('[]"')
    assert script == dockerfile.parent / "run_and_time.sh" and os.access(script, os.X_OK)
    assert not values(instructions, "USER")  # the base's non-root user stays
    text = dockerfile.read_text()
    assert f"-f {bench}/Dockerfile --build-arg VARIANT=gpu -t mlperf-{bench}:gpu ." in text
