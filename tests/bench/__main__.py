"""``make bench``: every benchmark's figures, measured side by side in one run, printed as ``name: value``.

Figures live in ``tests/bench/<benchmark>_bench.py`` modules as a ``FIGURES`` list of functions
``figure(work_dir, args) -> {name: value}``; this runner collects them all.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
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
    wanted = set(args.only.split(",")) if args.only else None
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for figure in figures():
            if wanted and figure.__name__ not in wanted:
                continue
            for name, value in figure(Path(tmp), args).items():
                print(f"{name}: {value:.4g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
