"""``python -m loadgen.training.package``: training runs -> a results package as mlperf_logging reads it.

    python -m recommendation.train --config mini --runs 5 --output runs/dlrm      # result_0.txt ... result_4.txt
    python -m loadgen.training.package --runs runs/dlrm --org MyOrg --system my-box --output package
    python -m mlperf_logging.package_checker package training 2.1.0              # prints ... SUCCESS !
    python -m mlperf_logging.result_summarizer package training 2.1.0 --csv summary.csv

The layout (mlperf_logging's package checker and result summarizer; the training submission rules)::

    <output>/systems/<system>.json                         33 fields, every value a string
    <output>/results/<system>/<benchmark>/result_<i>.txt   the runs' mllog logs, as many as the rules want
    <output>/benchmarks/<benchmark>/implementations/<suite>/  the code: loadgen/ and the benchmark's folder

The benchmark's name and division come from the logs (``submission_benchmark``, ``submission_division``), the
system description from this machine (processor, memory, storage, OS, GPUs) and a submitter's JSON file for the
rest. The package checker exits 0 whatever it finds, so :func:`check` reads its verdict line instead.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from loadgen.cli import ArgumentParser, die, existing_dir, existing_file
from loadgen.environment import copy_tracked
from loadgen.training.olympic import RUNS, events, olympic, read_run

PROG = "python -m loadgen.training.package"
# The fields mlperf_logging's system description checker requires (rulesets 1.0.0 on).
FIELDS = (
    "submitter", "division", "status", "system_name", "number_of_nodes", "host_processors_per_node",
    "host_processor_model_name", "host_processor_core_count", "host_processor_vcpu_count",
    "host_processor_frequency", "host_processor_caches", "host_processor_interconnect", "host_memory_capacity",
    "host_storage_type", "host_storage_capacity", "host_networking", "host_networking_topology",
    "host_memory_configuration", "accelerators_per_node", "accelerator_model_name", "accelerator_host_interconnect",
    "accelerator_frequency", "accelerator_on-chip_memories", "accelerator_memory_configuration",
    "accelerator_memory_capacity", "accelerator_interconnect", "accelerator_interconnect_topology", "cooling",
    "hw_notes", "framework", "other_software_stack", "operating_system", "sw_notes",
)
# The statuses the checker takes from ruleset 4.0.0 on (earlier ones take any).
STATUSES = ("Available on-premise", "Available cloud", "Research, Development, or Internal (RDI)", "Preview")
# Each benchmark's newest ruleset that knows it (the compliance checker's), for the commands this prints.
RULESETS = {"resnet": "4.0.0", "ssd": "1.0.0", "maskrcnn": "3.1.0", "dlrm": "2.1.0", "gnmt": "0.7.0",
            "transformer": "0.7.0", "retinanet": "5.1.0"}
SUCCESS = "PACKAGE CHECKER FOUND NO ERRORS, SUCCESS"


class PackageError(ValueError):
    """Runs that cannot make a package: names the folder and what is wrong."""


def log_values(log: Path, *keys: str) -> dict[str, Any]:
    """The first value of each of ``keys`` in an mllog log."""
    found: dict[str, Any] = {}
    for event in events(log):
        if event.get("key") in keys and event["key"] not in found:
            found[event["key"]] = event.get("value")
    return found


def collect(folders: Sequence[Path]) -> tuple[str, str, list[Path]]:
    """The runs' logs (``result_*.txt`` of each folder, in order), their benchmark and division."""
    logs = [log for folder in folders for log in sorted(Path(folder).glob("result_*.txt"),
                                                         key=lambda p: (len(p.name), p.name))]
    if not logs:
        raise PackageError(f"no result_*.txt in {', '.join(map(str, folders))} (train.py --runs N writes them)")
    seen = {(v.get("submission_benchmark"), v.get("submission_division"))
            for v in (log_values(log, "submission_benchmark", "submission_division") for log in logs)}
    if len(seen) != 1 or None in next(iter(seen)):
        raise PackageError(f"the logs are of several benchmarks or divisions, or lack them: {sorted(map(str, seen))}")
    benchmark, division = next(iter(seen))
    wanted = RUNS.get(benchmark)
    if wanted is not None and len(logs) != wanted:
        raise PackageError(f"{benchmark} takes exactly {wanted} runs in a package; found {len(logs)}")
    return benchmark, division, logs


def describe(org: str, system_name: str, division: str, overrides: Mapping[str, Any] | None) -> dict[str, str]:
    """The 33 fields, strings all (the checkers join some into text and crash on a number)."""
    from loadgen.submission import system

    found = system.processor() | system.accelerators()
    cores = found["host_processor_core_count"]
    described: dict[str, Any] = {field: "" for field in FIELDS}
    described.update(
        submitter=org, division=division, status="Research, Development, or Internal (RDI)",
        system_name=system_name, number_of_nodes=1, host_processor_vcpu_count=_vcpus(cores),
        host_memory_capacity=system.memory(), host_storage_capacity=system.storage("."),
        operating_system=system.operating_system(), framework=_framework(),
        **{k: v for k, v in found.items() if k in FIELDS})
    described.update(dict(overrides or {}))
    unknown = sorted(set(described) - set(FIELDS) - {"submitter_contact"})
    if unknown:
        raise ValueError(f"fields the training system description does not have: {', '.join(unknown)}")
    return {k: str(v) for k, v in described.items()}


def _vcpus(default: Any) -> int:
    import os

    return os.cpu_count() or int(default)


def _framework() -> str:
    from importlib import metadata

    try:
        return f"PyTorch {metadata.version('torch')}"
    except metadata.PackageNotFoundError:
        return "unknown"


def build(folders: Sequence[Path], output: Path, *, org: str, system_name: str,
          overrides: Mapping[str, Any] | None = None, source_root: Path | None = None) -> dict[str, Any]:
    """Write the package; return its benchmark, division, runs and olympic score."""
    benchmark, division, logs = collect(folders)
    output = Path(output)
    if output.exists():
        raise ValueError(f"{output} exists already: give a new --output or remove it")
    results = output / "results" / system_name / benchmark
    results.mkdir(parents=True)
    for i, log in enumerate(logs):
        shutil.copyfile(log, results / f"result_{i}.txt")
    (output / "systems").mkdir()
    (output / "systems" / f"{system_name}.json").write_text(
        json.dumps(describe(org, system_name, division, overrides), indent=2) + "\n")
    code = output / "benchmarks" / benchmark / "implementations" / "mlperf-suite"
    _copy_code(code, source_root, [Path(f) for f in folders])
    score = olympic([read_run(results / f"result_{i}.txt") for i in range(len(logs))])
    return {"benchmark": benchmark, "division": division, "runs": len(logs), "score_s": score.seconds,
            "how": score.reason, "ruleset": RULESETS.get(benchmark)}


def _copy_code(target: Path, source_root: Path | None, folders: Sequence[Path]) -> None:
    """The suite's tracked files of loadgen/ and of the benchmark folders the runs came from (their
    train_result.json names the command), and a README pointing at the revision."""
    target.mkdir(parents=True)
    revisions, benchmarks = set(), set()
    for folder in folders:
        for result in Path(folder).glob("run_*/train_result.json"):
            env = json.loads(result.read_text()).get("environment") or {}
            revisions.add(env.get("git_revision") or "unknown")
            for word in env.get("command") or []:
                parts = Path(str(word)).parts
                if str(word).endswith("train.py") and len(parts) >= 2:
                    benchmarks.add(parts[-2])
                elif "." in str(word) and not str(word).startswith("-"):
                    benchmarks.add(str(word).split(".")[0])
    copied = 0
    if source_root is not None:
        root = Path(source_root)
        copied = copy_tracked(root, ["loadgen", *sorted(b for b in benchmarks if (root / b / "train.py").is_file())],
                              target)
    (target / "README.md").write_text(
        "# The code behind these results\n\n"
        f"The runs were made with this suite at revision {', '.join(sorted(revisions)) or 'unknown'}; "
        f"{copied} files of it are copied here (loadgen/ and the benchmark's folder). Each run's command is in "
        "its train_result.json.\n")


def check(package: Path, ruleset: str) -> tuple[bool, str]:
    """Run mlperf_logging's package checker; (passed, its last verdict line). It exits 0 either way."""
    log = Path(package).parent / f".{Path(package).name}.package_checker.log"
    log.unlink(missing_ok=True)  # the checker appends to its log
    proc = subprocess.run([sys.executable, "-m", "mlperf_logging.package_checker", str(package), "training",
                           ruleset, "--log_output", str(log)], capture_output=True, text=True)
    lines = [line for line in (proc.stderr + proc.stdout).splitlines() if "PACKAGE CHECKER" in line]
    verdict = lines[-1].strip() if lines else (proc.stderr.strip().splitlines() or ["no verdict"])[-1]
    log.unlink(missing_ok=True)
    return proc.returncode == 0 and any(SUCCESS in line for line in lines), verdict


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__, add_help=add_help,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=existing_dir, action="append", required=True,
                        help="a train.py --runs output folder (its result_*.txt); repeat to gather runs "
                             "(default: required)")
    parser.add_argument("--org", required=True, help="the submitter (default: required)")
    parser.add_argument("--system", required=True, help="the system's name, the results folder (default: required)")
    parser.add_argument("--system-info", type=existing_file, default=None,
                        help="JSON object of system description fields over the detected ones (default: None)")
    parser.add_argument("--source", default=".", help="checkout whose code is copied (default: .)")
    parser.add_argument("--check", action="store_true",
                        help="run mlperf_logging's package checker on the package with the benchmark's ruleset "
                             "(default: False)")
    parser.add_argument("--output", default="package", help="the package folder (default: package)")
    return parser


def main(args: argparse.Namespace) -> int:
    for label, value in (("--org", args.org), ("--system", args.system)):
        if not value or "/" in value or value.startswith("."):
            die(PROG, f"{label} {value!r} cannot be a folder name")
    try:
        overrides = json.loads(Path(args.system_info).read_text()) if args.system_info else None
        if overrides is not None and not isinstance(overrides, dict):
            raise ValueError(f"{args.system_info}: expected a JSON object of system description fields")
        made = build([Path(r) for r in args.runs], Path(args.output), org=args.org, system_name=args.system,
                     overrides=overrides, source_root=Path(args.source))
    except PackageError as exc:
        die(PROG, str(exc), 1)
    except ValueError as exc:
        die(PROG, str(exc))
    score = "none" if made["score_s"] is None else f"{made['score_s']:.1f} s"
    print(f"package of {made['runs']} {made['benchmark']} runs ({made['division']} division) in {args.output}; "
          f"olympic score {score} ({made['how']})")
    if args.check:
        if made["ruleset"] is None:
            die(PROG, f"no ruleset known for {made['benchmark']}", 1)
        passed, verdict = check(Path(args.output), made["ruleset"])
        print(f"package checker, ruleset {made['ruleset']}: {verdict}")
        return 0 if passed else 1
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
