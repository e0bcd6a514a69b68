"""``make bench``: every benchmark's figures, measured side by side in one run, printed as ``name: value``.

Figures live in ``tests/bench/<benchmark>_bench.py`` modules as a ``FIGURES`` list of functions
``figure(work_dir, args) -> {name: value}``; this runner collects them all.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import subprocess
import sys
import tempfile
from pathlib import Path

import tests.bench


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, add_help=add_help)
    parser.add_argument("--seconds", type=float, default=15.0,
                        help="length of each timed phase of the ResNet-50 harness figure (default: 15.0)")
    parser.add_argument("--batch", type=int, default=8, help="Offline batch size (default: 8)")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1,
                        help=f"threads for every side of every comparison (default: {os.cpu_count()})")
    parser.add_argument("--only", default=None, help="comma list of figure functions to run (default: all)")
    return parser


def figures():
    for info in sorted(pkgutil.iter_modules(tests.bench.__path__), key=lambda m: m.name):
        if info.name.endswith("_bench"):
            yield from importlib.import_module(f"tests.bench.{info.name}").FIGURES


def main(args) -> int:
    names = [f.__name__ for f in figures()]
    wanted = args.only.split(",") if args.only else names
    unknown = sorted(set(wanted) - set(names))
    if unknown:
        print(f"bench: error: unknown figure(s) {', '.join(unknown)} (known: {', '.join(names)})", file=sys.stderr)
        return 2
    if len(wanted) > 1:
        # Each figure in a fresh interpreter: one figure's imports, threads and memory (torch, a ResNet-50) must
        # not slow the next one's measurement. Both sides of each ratio still share one process and one run.
        status = 0
        for name in wanted:
            status |= subprocess.call([sys.executable, "-m", "tests.bench", *_passthrough(args), "--only", name])
        return status
    figure = next(f for f in figures() if f.__name__ == wanted[0])
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name, value in figure(Path(tmp), args).items():
            print(f"{name}: {value:.4g}", flush=True)
    return 0


def _passthrough(args) -> list[str]:
    return ["--seconds", str(args.seconds), "--batch", str(args.batch), "--threads", str(args.threads)]


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
