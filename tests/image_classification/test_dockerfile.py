"""The Dockerfile: every COPY source exists, the entrypoint is an executable script, and it runs as non-root."""

from __future__ import annotations

import os
from pathlib import Path

from dockerfile_parse import DockerfileParser

REPO = Path(__file__).resolve().parents[2]


def test_dockerfile_is_consistent():
    parser = DockerfileParser(path=str(REPO / "image_classification" / "Dockerfile"))
    instructions = parser.structure
    copies = [i["value"].split()[:-1] for i in instructions if i["instruction"] == "COPY"]
    for sources in copies:
        for source in sources:
            assert (REPO / source).exists(), source
    entry = next(i["value"] for i in instructions if i["instruction"] == "ENTRYPOINT")
    script = REPO / entry.strip('[]"')
    assert script.is_file() and os.access(script, os.X_OK)
    users = [i["value"] for i in instructions if i["instruction"] == "USER"]
    assert users and users[-1].split(":")[0] not in ("0", "root")
    args = {i["value"].split("=")[0]: i["value"].split("=", 1)[1] for i in instructions if i["instruction"] == "ARG"
            and "=" in i["value"]}
    assert args["VARIANT"] == "cpu" and ":" in args["BASE"] and not args["BASE"].endswith(":latest")
