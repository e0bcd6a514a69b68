"""The inference form of every ``run_and_time.sh``: in the benchmark's Docker image when an engine answers, else
natively, as its ``run_local.sh`` runs (loadgen.deploy.scripts).

    python3 -m loadgen.deploy.launch BENCHMARK [--docker | --native] backend model [dataset] device [flags...]

In Docker the base image ``mlperf-suite:{cpu,gpu}`` is built from ``loadgen/deploy/Dockerfile`` and the
benchmark's ``mlperf-BENCHMARK:{cpu,gpu}`` on top of it from ``BENCHMARK/Dockerfile`` (the repository root is
the context of both), then run with:

- ``results/`` mounted read-write at /work/results, and the run as the caller's UID:GID, so results are theirs;
- DATA_DIR (default: the benchmark's mini set, if built) read-only at /data, MODEL_DIR (default: the models
  that training exported, if any) read-only at /models, both as the folder's ``launch.json`` names them;
  run_local.sh reads both variables;
- ``--gpus all`` when the device is ``gpu`` (the NVIDIA Container Toolkit; ``install_cuda_docker.sh`` sets it up).

Only the standard library is used, so any ``python3`` runs it: Docker hosts need no virtual environment.
Inside the image MLPERF_LAUNCH=native is set, and the same script runs natively there.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from loadgen.cli import ArgumentParser

REPO = Path(__file__).resolve().parents[2]
DOCKER_INFO_TIMEOUT_S = 10  # a daemon that does not answer in this long is treated as absent


MODES = ("--docker", "--native")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="run_and_time.sh", description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("benchmark", help="benchmark folder, e.g. image_classification (default: none, required)")
    parser.add_argument("args", nargs=argparse.REMAINDER,
                        help="[--docker | --native] backend model [dataset] device [flags]: --docker fails when no "
                             "engine answers, --native never tries one; the rest as run_local.sh takes it "
                             "(default: Docker when an engine answers)")
    return parser


def split_mode(args: list[str]) -> tuple[str | None, list[str]]:
    """A leading --docker or --native, and the arguments for run_local.sh."""
    if args and args[0] in MODES:
        return args[0][2:], args[1:]
    return None, args


def device_of(args: list[str]) -> str:
    """``gpu`` when it is one of the positional arguments (before the first flag), else ``cpu``."""
    positional = []
    for a in args:
        if a.startswith("-"):
            break
        positional.append(a)
    return "gpu" if "gpu" in positional else "cpu"


def docker_answers() -> bool:
    if shutil.which("docker") is None:
        return False
    try:
        return subprocess.run(["docker", "info"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              timeout=DOCKER_INFO_TIMEOUT_S).returncode == 0
    except subprocess.TimeoutExpired:
        return False


def _default_dir(env: str, fallback: Path) -> Path | None:
    value = os.environ.get(env)
    if value:
        return Path(value).resolve()
    return fallback if fallback.is_dir() else None


def docker_commands(benchmark: str, args: list[str]) -> tuple[list[list[str]], list[str]]:
    """The ``docker build`` command lines (the base image, then the benchmark's) and the ``docker run`` one."""
    from loadgen.deploy.scripts import spec

    variant = device_of(args)
    image = f"mlperf-{benchmark}:{variant}"
    builds = [["docker", "build", "-f", dockerfile, "--build-arg", f"VARIANT={variant}", "-t", tag, "."]
              for dockerfile, tag in (("loadgen/deploy/Dockerfile", f"mlperf-suite:{variant}"),
                                      (f"{benchmark}/Dockerfile", image))]
    run = ["docker", "run", "--rm", "-u", f"{os.getuid()}:{os.getgid()}", "-e", "HOME=/tmp",
           "-v", f"{REPO / 'results'}:/work/results"]
    if variant == "gpu":
        run += ["--gpus", "all"]
    paths = spec(benchmark)
    data = _default_dir("DATA_DIR", REPO / paths.get("infer_mini", paths["mini"]))
    models = _default_dir("MODEL_DIR", REPO / paths["models"])
    if data is not None:
        run += ["-v", f"{data}:/data:ro", "-e", "DATA_DIR=/data"]
    if models is not None:
        run += ["-v", f"{models}:/models:ro", "-e", "MODEL_DIR=/models"]
    if os.environ.get("OUTPUT_DIR"):
        run += ["-e", f"OUTPUT_DIR={os.environ['OUTPUT_DIR']}"]
    return builds, run + [image, *args]


def launch(benchmark: str, args: list[str]) -> int:
    """Run ``args`` (``[--docker | --native] backend model ... device [flags]``) in Docker or natively."""
    from loadgen.deploy import scripts

    mode, rest = split_mode(args)
    mode = mode or os.environ.get("MLPERF_LAUNCH")
    if mode != "native":
        if docker_answers():
            builds, run = docker_commands(benchmark, rest)
            (REPO / "results").mkdir(exist_ok=True)  # created by the caller, so owned by the caller
            print(f"run_and_time.sh: running in Docker, image {run[len(run) - len(rest) - 1]}", file=sys.stderr)
            for build in builds:
                # The build's progress goes to stderr, leaving stdout to the benchmark's own lines.
                status = subprocess.run(build, cwd=REPO, stdout=sys.stderr).returncode
                if status:
                    print(f"run_and_time.sh: error: docker build failed (exit {status}): {' '.join(build)}",
                          file=sys.stderr)
                    return status
            os.chdir(REPO)
            os.execvp(run[0], run)
        if mode == "docker":
            print("run_and_time.sh: error: --docker given, but no Docker engine answers `docker info`",
                  file=sys.stderr)
            return 1
        print("run_and_time.sh: no Docker engine reachable, running natively", file=sys.stderr)
    try:
        command = scripts.local_command(benchmark, rest)
    except scripts.Usage as exc:
        print(f"run_and_time.sh: error: {exc}", file=sys.stderr)
        return 2
    os.chdir(REPO)
    sys.stdout.flush()
    os.execvp(command[0], command)
    return 0  # not reached: exec replaces this process


def main(args) -> int:
    if not (REPO / args.benchmark / "launch.json").is_file():
        print(f"run_and_time.sh: error: {args.benchmark!r} is not a benchmark folder with a launch.json",
              file=sys.stderr)
        return 2
    return launch(args.benchmark, args.args)


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
