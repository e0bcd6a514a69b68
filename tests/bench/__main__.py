"""``make bench``: every benchmark's figures, measured side by side, each checked against its target.

Figures live in ``tests/bench/<benchmark>_bench.py`` modules as a ``FIGURES`` list of functions
``figure(work_dir, args) -> {name: value}``, each decorated with ``@measures(name=target, ...)`` (targets.py).
Each function runs in a fresh interpreter that prints ``name: value`` and hands its figures back as JSON; the
runner then prints one summary line per figure (``ok``, ``info`` or ``FAIL name: value <op> target``) and exits 1
when any figure missed its target, 2 on bad usage.
"""

from __future__ import annotations

import importlib
import json
import os
import pkgutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from loadgen.cli import EXIT_FAILURE, EXIT_USAGE, ArgumentParser, csv_list, positive

PROG = "bench"


def get_args_parser(add_help: bool = True) -> ArgumentParser:
    parser = ArgumentParser(prog=PROG, description=__doc__, add_help=add_help)
    parser.add_argument("--seconds", type=positive(float), default=15.0,
                        help="length of each timed phase of the ONNX Runtime harness figures (default: 15.0)")
    parser.add_argument("--batch", type=positive(int), default=8, help="Offline batch size (default: 8)")
    parser.add_argument("--threads", type=positive(int), default=os.cpu_count() or 1,
                        help=f"threads for every side of every comparison (default: {os.cpu_count() or 1})")
    parser.add_argument("--only", type=csv_list(str), default=None,
                        help="comma list of figure functions, or of figure names (each runs the function that "
                             "measures it) (default: all)")
    parser.add_argument("--package", default="tests.bench",
                        help="package whose *_bench modules hold the figure functions (default: tests.bench)")
    parser.add_argument("--json", default=None, metavar="FILE",
                        help="also write the figures measured to FILE as a JSON object {name: value}, as each "
                             "figure function's interpreter does for the runner (default: None)")
    return parser


def figure_functions(package: str) -> list[Callable]:
    """Every figure function of ``package``'s ``*_bench`` modules, in module order, then in FIGURES order."""
    pkg = importlib.import_module(package)
    found = []
    for info in sorted(pkgutil.iter_modules(pkg.__path__), key=lambda m: m.name):
        if info.name.endswith("_bench"):
            found.extend(importlib.import_module(f"{package}.{info.name}").FIGURES)
    return found


def select(functions: list[Callable], wanted: list[str] | None) -> list[Callable]:
    """The functions ``--only`` names, by their own name or by a figure they measure; ValueError for the rest."""
    if wanted is None:
        return functions
    by_name = {f.__name__: f for f in functions}
    for f in functions:
        for figure in f.targets:
            by_name.setdefault(figure, f)
    unknown = [w for w in wanted if w not in by_name]
    if unknown:
        raise ValueError(f"unknown figure(s) {', '.join(unknown)} (known: {', '.join(sorted(by_name))})")
    chosen = []
    for w in wanted:
        if by_name[w] not in chosen:
            chosen.append(by_name[w])
    return chosen


def check(function: Callable, values: dict[str, float] | None, status: int) -> tuple[list[str], bool]:
    """Summary lines for one function's figures against its targets, and whether every check passed.

    ``values`` is None when the function produced nothing (it raised, or its interpreter died)."""
    name = function.__name__
    if values is None:
        return [f"FAIL {name}: no figures (exit status {status})"], False
    lines, passed = [], True
    for figure, target in function.targets.items():
        if figure not in values:
            lines.append(f"FAIL {figure}: not returned by {name}")
            passed = False
            continue
        value = values[figure]
        miss = target.miss(value)
        if miss is not None:
            lines.append(f"FAIL {figure}: {miss}")
            passed = False
        elif target.op is None:
            lines.append(f"info {figure}: {value:.4g} ({target})")
        else:
            lines.append(f"ok   {figure}: {value:.4g} {target}")
    for figure in sorted(set(values) - set(function.targets)):
        # An undeclared figure would be quoted without a target, or with one nobody checks.
        lines.append(f"FAIL {figure}: {values[figure]:.4g}, not declared in {name}'s @measures")
        passed = False
    return lines, passed


def measure(function: Callable, args) -> dict[str, float]:
    """Run one figure function in this interpreter, printing ``name: value`` as each function's figures come."""
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        values = {k: float(v) for k, v in function(Path(tmp), args).items()}
    for name, value in values.items():
        print(f"{name}: {value:.4g}", flush=True)
    return values


def in_fresh_interpreter(function: Callable, args) -> tuple[dict[str, float] | None, int]:
    """Run one figure function in a child interpreter; its figures (None if it wrote none) and exit status."""
    with tempfile.TemporaryDirectory(prefix="bench-run-") as tmp:
        out = Path(tmp) / "figures.json"
        status = subprocess.call([sys.executable, "-m", "tests.bench", *_passthrough(args),
                                  "--only", function.__name__, "--json", str(out)])
        if not out.exists():
            return None, status
        return json.loads(out.read_text()), status


def main(args) -> int:
    try:
        functions = figure_functions(args.package)
    except ModuleNotFoundError as exc:
        if exc.name is None or not f"{args.package}.".startswith(f"{exc.name}."):
            raise  # a figure module's own import failed: its traceback says more than one line could
        print(f"{PROG}: error: --package {args.package}: no such package", file=sys.stderr)
        return EXIT_USAGE
    undeclared = [f.__name__ for f in functions if not getattr(f, "targets", None)]
    if undeclared:
        print(f"{PROG}: error: figure function(s) {', '.join(undeclared)} declare no figures; "
              "decorate each with @measures(name=target, ...) from tests.bench.targets", file=sys.stderr)
        return EXIT_FAILURE
    try:
        chosen = select(functions, args.only)
    except ValueError as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE

    if len(chosen) == 1:
        values = measure(chosen[0], args)
        lines, passed = check(chosen[0], values, 0)
        print("\n".join(lines))  # under the runner too: a miss shows as soon as it is measured
        if args.json:
            Path(args.json).write_text(json.dumps(values))
        return 0 if passed else EXIT_FAILURE

    # Each figure function in a fresh interpreter: one function's imports, threads and memory (torch, a ResNet-50)
    # must not slow the next one's measurement. Both sides of each ratio still share one process and one run.
    summary, passed = [], True
    for function in chosen:
        values, status = in_fresh_interpreter(function, args)
        lines, ok = check(function, values, status)
        if ok and status != 0:  # every figure met its target, yet the interpreter failed: say so
            lines, ok = lines + [f"FAIL {function.__name__}: exit status {status}"], False
        summary += lines
        passed &= ok
    failed = sum(line.startswith("FAIL") for line in summary)
    print(f"\nbench summary: {len(summary)} figure(s), {failed} FAIL")
    print("\n".join(summary))
    return 0 if passed else EXIT_FAILURE


def _passthrough(args) -> list[str]:
    return ["--seconds", str(args.seconds), "--batch", str(args.batch), "--threads", str(args.threads),
            "--package", args.package]


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
