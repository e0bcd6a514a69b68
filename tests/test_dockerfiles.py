"""The images: the suite's base (loadgen/deploy/Dockerfile) and one thin layer per benchmark folder on it.

The base: pinned base image, cpu the default variant, gpu swapping in onnxruntime-gpu, every pip install pinned by
constraints.txt, non-root, MLPERF_LAUNCH=native. Each benchmark's layer: built FROM the base of the same variant,
copying only its own folder, with its run_and_time.sh as the executable entrypoint, pinned like the base where it
installs anything. A new benchmark folder is checked by being there. The recommendation layer adds TorchRec (the
variant's fbgemm build, torchrec --no-deps), as `make setup` does in .venv.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tomllib
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
    users = values(instructions, "USER")
    assert not users or users[-1] == "1000:1000"  # a layer that installs as root ends as the base's user again
    runs = " ".join(values(instructions, "RUN"))
    assert re.findall(r"pip install (?!-c constraints\.txt )", runs) == []  # every install pinned by one file
    text = dockerfile.read_text()
    assert f"-f {bench}/Dockerfile --build-arg VARIANT=gpu -t mlperf-{bench}:gpu ." in text


def pins() -> dict[str, str]:
    """constraints.txt as {normalized name: the line}, comments kept on the line."""
    out = {}
    for line in (REPO / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            out[re.sub(r"[-_.]+", "-", line.split("==")[0]).lower()] = line
    return out


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
def test_recommendation_layer_installs_torchrec(variant, tmp_path):
    """The layer's RUN, run by sh with a pip that only records its arguments: the `sharded` extra's packages with
    the variant's fbgemm build, then torchrec alone with --no-deps, every one pinned in constraints.txt."""
    (run,) = values(structure(REPO / "recommendation" / "Dockerfile"), "RUN")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "pip").write_text('#!/bin/sh\necho "$*" >> "$PIP_LOG"\n')
    (bin_dir / "pip").chmod(0o755)
    log = tmp_path / "pip.log"
    env = {"PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "PIP_LOG": str(log), "VARIANT": variant}
    subprocess.run([shutil.which("sh"), "-c", run], env=env, check=True, timeout=30)
    first, second = (line.split() for line in log.read_text().splitlines())
    assert first[:3] == second[:3] == ["install", "-c", "constraints.txt"]
    assert second[3:] == ["--no-deps", "torchrec"]
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["sharded"]
    fbgemm = {"cpu": "fbgemm-gpu-cpu", "gpu": "fbgemm-gpu"}[variant]
    assert first[3:] == [fbgemm if name == "fbgemm-gpu-cpu" else name for name in extra]
    pinned = pins()
    assert [name for name in first[3:] + ["torchrec"] if name not in pinned] == []
    assert pinned["fbgemm-gpu"].split("#")[1].strip().startswith("image-only")  # kept by `make constraints`


def test_setup_installs_torchrec_without_its_fbgemm_gpu_requirement():
    """make setup: the `sharded` extra (fbgemm-gpu-cpu and torchrec's other dependencies), then torchrec --no-deps."""
    recipe = (REPO / "Makefile").read_text().split("$(STAMP): constraints.txt pyproject.toml", 1)[1].split("\n\n")[0]
    installs = [line.split() for line in recipe.splitlines() if "-m pip install" in line]
    assert len(installs) == 2 and "sharded" in installs[0][-1].strip("'.[]").split(",")
    assert installs[1][-4:] == ["--no-deps", "-c", "constraints.txt", "torchrec"]
    extra = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]["sharded"]
    assert "fbgemm-gpu-cpu" in extra and "fbgemm-gpu" not in extra and "torchrec" not in extra
