"""``make demo``'s DLRM stage: build the SYNTHETIC mini set, train to AUC 0.8025, export, run Offline under LoadGen.

    python -m recommendation.demo
"""

from __future__ import annotations

import argparse
import sys

from loadgen.cli import demo_command, demo_parser, demo_steps
from recommendation import export, infer, train


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    return demo_parser("python -m recommendation.demo", __doc__, "results/recommendation", add_help)


def main(args) -> int:
    out = args.output
    return demo_steps("recommendation", [
        ("train", demo_command(train, ["--quiet", "--output", f"{out}/train"])),
        ("export", demo_command(export, ["--checkpoint", f"{out}/train"])),
        ("Offline accuracy", demo_command(infer, [
            "--backend", "onnxruntime", "--scenario", "Offline", "--accuracy", "--samples-to-aggregate-min", "100",
            "--samples-to-aggregate-max", "700", "--model-dir", f"{out}/train/export",
            "--output", f"{out}/dlrm-onnxruntime"])),
    ])


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
