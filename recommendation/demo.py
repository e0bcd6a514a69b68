"""``make demo``'s DLRM stage: build the SYNTHETIC mini set, train to AUC 0.8025, export, run Offline under LoadGen.

    python -m recommendation.demo
"""

from __future__ import annotations

import argparse
import sys

from loadgen.cli import demo_parser
from recommendation import export, infer, train


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    return demo_parser("python -m recommendation.demo", __doc__, "results/recommendation", add_help)


def main(args) -> int:
    out = args.output
    steps = [
        ("train", lambda: train.main(train.get_args_parser().parse_args(["--quiet", "--output", f"{out}/train"]))),
        ("export", lambda: export.main(export.get_args_parser().parse_args(["--checkpoint", f"{out}/train"]))),
        ("Offline accuracy", lambda: infer.main(infer.get_args_parser().parse_args(
            ["--backend", "onnxruntime", "--scenario", "Offline", "--accuracy", "--samples-to-aggregate-min", "100",
             "--samples-to-aggregate-max", "700", "--model-dir", f"{out}/train/export",
             "--output", f"{out}/dlrm-onnxruntime"]))),
    ]
    for name, step in steps:
        print(f"== recommendation demo: {name}", flush=True)
        status = step()
        if status:
            print(f"recommendation demo: {name} failed (exit {status})", file=sys.stderr)
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
