"""Write a Backend.AI variant of a benchmark's Dockerfile: the same image, plus the kernel labels the platform reads.

Backend.AI runs each session in a container it starts itself (no Docker-in-Docker, so ``run_and_time.sh`` takes
its native path there). It imports an image as a "kernel" when the image carries ``ai.backend.*`` labels; it
starts its own runner as the entrypoint and runs it under the user's UID (``uid-match``). So the variant:

- inlines the suite's base image (``loadgen/deploy/Dockerfile``, which a benchmark's Dockerfile builds on), so
  the variant is one self-contained Dockerfile;
- keeps every instruction but ``USER`` and ``ENTRYPOINT``, and makes ``/work/results`` and ``/work/build``
  writable by any UID;
- adds the labels: ``kernelspec``, ``envs.corecount``, ``features``, ``base-distro``, ``resource.min.cpu`` and
  ``.mem`` (and ``.cuda.device`` for gpu), ``runtime-type``/``runtime-path`` and ``service-ports``.

    python -m loadgen.deploy.backendai image_classification/Dockerfile --variant gpu -o Dockerfile.backendai
    docker build -f Dockerfile.backendai -t registry.example/mlperf-image_classification:gpu-backendai .

Only the standard library is used.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

from loadgen.cli import ArgumentParser

# Debian and Ubuntu release names in base image tags -> Backend.AI's base-distro spelling (as "ubuntu22.04").
DISTROS = {"bookworm": "debian12", "bullseye": "debian11", "focal": "ubuntu20.04", "jammy": "ubuntu22.04",
           "noble": "ubuntu24.04"}
# Environment variables Backend.AI sets to the session's CPU count, so BLAS and OpenMP use what was allocated.
CORECOUNT_ENVS = "OPENBLAS_NUM_THREADS,OMP_NUM_THREADS,NPROC"
FEATURES = "batch query uid-match user-input"
DROPPED = {"USER", "ENTRYPOINT"}
# The suite's base image, which each benchmark's Dockerfile builds on (FROM mlperf-suite:${VARIANT}).
SUITE_IMAGE = "mlperf-suite"
BASE_DOCKERFILE = Path(__file__).with_name("Dockerfile")


class VariantError(ValueError):
    pass


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m loadgen.deploy.backendai", description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dockerfile", help="a benchmark's Dockerfile (default: none, required)")
    parser.add_argument("--variant", choices=["cpu", "gpu"], default="cpu", help="image variant (default: cpu)")
    parser.add_argument("--min-cpu", type=int, default=2, help="fewest CPU cores a session gets (default: 2)")
    parser.add_argument("--min-mem", default="8g", help="least memory a session gets (default: 8g)")
    parser.add_argument("--base-distro", default=None,
                        help="Backend.AI's name of the base image's distribution, e.g. debian12 (default: read "
                             "from the base image tag)")
    parser.add_argument("--runtime-path", default="/usr/local/bin/python",
                        help="the Python the session runs (default: /usr/local/bin/python, the python images')")
    parser.add_argument("--service-ports", default="",
                        help="service ports, name:protocol:port comma-separated (default: none)")
    parser.add_argument("-o", "--output", default=None, help="file to write (default: standard output)")
    return parser


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, the instruction's full text with its continuation lines) in order; comments kept as ('#', line)."""
    out: list[tuple[str, str]] = []
    pending: list[str] = []
    for line in text.splitlines():
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            out.append(("#", line))
            continue
        pending.append(line)
        if not line.rstrip().endswith("\\"):
            first = pending[0].split(None, 1)[0].upper()
            out.append((first, "\n".join(pending)))
            pending = []
    if pending:
        raise VariantError("the Dockerfile ends inside a continued instruction")
    return out


def flatten(parts: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``parts`` with ``FROM mlperf-suite:...`` replaced by the base image's own instructions."""
    out: list[tuple[str, str]] = []
    for keyword, body in parts:
        if keyword == "FROM" and body.split()[1].startswith(f"{SUITE_IMAGE}:"):
            out += instructions(BASE_DOCKERFILE.read_text())
        else:
            out.append((keyword, body))
    return out


def base_distro(parts: list[tuple[str, str]]) -> str:
    """The distribution named by the base image's tag (the BASE build argument's default, or FROM's image)."""
    text = "\n".join(body for _, body in parts)
    match = re.search(r"^ARG BASE=(\S+)", text, re.M) or re.search(r"^FROM (\S+)", text, re.M)
    image = match.group(1) if match else ""
    for codename, name in DISTROS.items():
        if codename in image:
            return name
    raise VariantError(f"cannot tell the distribution of base image {image!r}; pass --base-distro")


def labels(args, distro: str) -> dict[str, str]:
    out = {
        "ai.backend.kernelspec": "1",
        "ai.backend.envs.corecount": CORECOUNT_ENVS,
        "ai.backend.features": FEATURES,
        "ai.backend.base-distro": distro,
        "ai.backend.resource.min.cpu": str(args.min_cpu),
        "ai.backend.resource.min.mem": args.min_mem,
        "ai.backend.runtime-type": "python",
        "ai.backend.runtime-path": args.runtime_path,
        "ai.backend.service-ports": args.service_ports,
    }
    if args.variant == "gpu":
        out["ai.backend.resource.min.cuda.device"] = "1"
    return out


def variant(text: str, args) -> str:
    parts = flatten(instructions(text))
    distro = args.base_distro or base_distro(parts)
    if not any(k == "FROM" for k, _ in parts):
        raise VariantError("no FROM instruction: not a Dockerfile")
    lines = [f"# Backend.AI {args.variant} variant, written by `python -m loadgen.deploy.backendai`; edit the source "
             "Dockerfile, not this file."]
    for keyword, body in parts:
        if keyword in DROPPED:
            continue
        if keyword == "ARG" and body.startswith("ARG VARIANT="):
            body = f"ARG VARIANT={args.variant}"
        lines.append(body)
    lines.append("# Backend.AI runs the session as the user's UID and starts its own entrypoint.")
    lines.append("RUN mkdir -p /work/results /work/build && chmod 1777 /work/results /work/build")
    entries = [f'{key}="{value}"' for key, value in labels(args, distro).items()]
    lines.append("LABEL " + " \\\n      ".join(entries))
    return "\n".join(lines) + "\n"


def main(args) -> int:
    prog = "python -m loadgen.deploy.backendai"
    try:
        text = Path(args.dockerfile).read_text()
        result = variant(text, args)
    except (OSError, VariantError) as exc:
        print(f"{prog}: error: {args.dockerfile}: {exc}", file=sys.stderr)
        return 1
    if args.output is None:
        sys.stdout.write(result)
        return 0
    out = Path(args.output)
    with tempfile.NamedTemporaryFile("w", dir=out.parent or ".", delete=False, prefix=f".{out.name}.") as f:
        f.write(result)
    os.replace(f.name, out)  # whole or not at all
    print(f"{prog}: wrote {out}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
