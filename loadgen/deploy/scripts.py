"""The one implementation behind every benchmark folder's shell scripts, which stay in each folder (users call them
there) as one-liners:

    ./download_dataset.sh DATA_DIR [flags]   -> python -m <bench>.data download --data-dir DATA_DIR [flags]
                                                (DATA_DIR may be left out where launch.json sets
                                                "data_dir_optional": the command's default then)
    ./verify_dataset.sh [DATA_DIR]           -> python -m <bench>.data verify --data-dir DATA_DIR (default: mini set)
    ./download_dataset.sh NAME DATA_DIR ...  -> python -m <bench>.data <its download command> --data-dir DATA_DIR ...
    ./verify_dataset.sh NAME DATA_DIR ...    -> python -m <bench>.data <its verify command> --data-dir DATA_DIR ...
                                                (a second dataset of the folder, named in launch.json's "datasets";
                                                a DATA_DIR spelled as such a name is written ./NAME)
    ./run_local.sh backend model ... device [flags]
                                             -> python -m <bench>.infer <the folder's flags for them> [flags]
    ./run_and_time.sh train [flags]          -> python -m <bench>.train [flags], which prints RESULT,...
    ./run_and_time.sh infer [--docker|--native] backend model ... device [flags]
                                             -> Docker when an engine answers, else run_local.sh (launch.py)

``run_and_time.sh`` also takes the two forms users know without a verb: the MLPerf training form (no arguments,
or flags first) and the inference reference's (``./run_and_time.sh tf resnet50 gpu``: a backend first).

What differs between folders is declared in each folder's ``launch.json`` (the data scripts' usage line and other
datasets, the positional form of run_local.sh, its flags, environment variables and default paths), so this module
knows no benchmark. The scripts ``cd`` to the
repository root first, and ``PYTHON`` (default: .venv/bin/python) runs the benchmark. Standard library only: any
``python3`` runs it.

    python3 -m loadgen.deploy.scripts BENCHMARK VERB [args...]
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
VERBS = ("download_dataset", "verify_dataset", "run_local", "run_and_time")


class Usage(Exception):
    """Bad usage of a script: one line, exit status 2."""


def spec(benchmark: str) -> dict:
    """The folder's launch.json."""
    path = REPO / benchmark / "launch.json"
    if not path.is_file():
        raise Usage(f"{benchmark!r} is not a benchmark folder with a launch.json")
    return json.loads(path.read_text())


def python() -> str:
    return os.environ.get("PYTHON") or ".venv/bin/python"


def _exec(argv: list[str]) -> None:
    sys.stdout.flush()
    sys.stderr.flush()
    os.execvp(argv[0], argv)


def dataset(s: dict, args: list[str]) -> tuple[str | None, dict, list[str]]:
    """The dataset a data script's first argument names (launch.json's ``"datasets": {NAME: {"download": command,
    "verify": command, "usage": "NAME DATA_DIR [flags]", "mini": optional default DATA_DIR}}``), its entry and the
    arguments after it; ``(None, {}, args)`` for the folder's main dataset."""
    datasets = s.get("datasets", {})
    if args and args[0] in datasets:
        return args[0], datasets[args[0]], args[1:]
    return None, {}, args


def download_command(benchmark: str, args: list[str]) -> list[str]:
    s = spec(benchmark)
    name, entry, args = dataset(s, args)
    command = [python(), "-m", f"{benchmark}.data", entry.get("download", "download")]
    if (not args or args[0].startswith("-")) and (entry if name else s).get("data_dir_optional"):
        return [*command, *args]  # the download command's own default folder (translation: one per recipe)
    if not args or args[0].startswith("-"):
        others = [d["usage"] for d in s.get("datasets", {}).values()]
        forms = [entry["usage"]] if name else [s["download_usage"], *others]
        raise Usage("usage: " + " | ".join(f"download_dataset.sh {form}" for form in forms))
    return [*command, "--data-dir", args[0], *args[1:]]


def verify_command(benchmark: str, args: list[str]) -> list[str]:
    s = spec(benchmark)
    name, entry, args = dataset(s, args)
    command = entry.get("verify", "verify")
    if args and not args[0].startswith("-"):
        data_dir, args = args[0], args[1:]
    elif (data_dir := entry.get("mini") if name else s["mini"]) is None:
        raise Usage(f"usage: verify_dataset.sh {name} DATA_DIR [flags]   (python -m {benchmark}.data {command} "
                    "--help lists the flags)")
    return [python(), "-m", f"{benchmark}.data", command, "--data-dir", data_dir, *args]


def local_command(benchmark: str, args: list[str]) -> list[str]:
    """``python -m <bench>.infer`` for ``run_local.sh``'s positional form, plus DATA_DIR, MODEL_DIR, OUTPUT_DIR."""
    s = spec(benchmark)
    names = list(s["positional"])
    if len(args) < len(names) or any(a.startswith("-") for a in args[:len(names)]):
        choices = "; ".join(f"{n}: {v}" for n, v in s["positional"].items())
        raise Usage(f"usage: run_local.sh {' '.join(names)} [flags]   ({choices})")
    values = {name: args[i] for i, name in enumerate(names)}
    flags = [f.format(**values) for f in s["infer_flags"]]
    for variable, flag in s["env_flags"].items():
        if os.environ.get(variable):
            flags += [flag, os.environ[variable]]
    output = os.environ.get("OUTPUT_DIR") or s["output"].format(**values)
    return [python(), "-m", f"{benchmark}.infer", *flags, "--output", output, *args[len(names):]]


def run_and_time(benchmark: str, args: list[str]) -> int:
    from loadgen.deploy import launch

    verb, rest = (args[0], args[1:]) if args and args[0] in ("train", "infer") else (None, args)
    if verb is None:  # the forms users know: a backend (or --docker/--native) first is inference
        first = args[0] if args else ""
        verb = "infer" if first in launch.MODES or first in spec(benchmark)["backends"] else "train"
    if verb == "train":
        _exec([python(), "-m", f"{benchmark}.train", *rest])
    return launch.launch(benchmark, rest)


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] not in VERBS:
        print(f"python3 -m loadgen.deploy.scripts: error: usage: BENCHMARK {{{','.join(VERBS)}}} [args...]",
              file=sys.stderr)
        return 2
    benchmark, verb, args = argv[0], argv[1], argv[2:]
    try:
        if verb == "run_and_time":
            return run_and_time(benchmark, args)
        command = {"download_dataset": download_command, "verify_dataset": verify_command,
                   "run_local": local_command}[verb](benchmark, args)
    except Usage as exc:
        print(f"{verb}.sh: error: {exc}", file=sys.stderr)
        return 2
    _exec(command)
    return 0  # not reached: exec replaces this process


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
