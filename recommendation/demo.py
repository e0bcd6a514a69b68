"""``make demo``'s DLRM stage: build the SYNTHETIC mini set, train to AUC 0.8025, export, run Offline under LoadGen.

    python -m recommendation.demo
"""

from __future__ import annotations

import sys

from recommendation import export, infer, train

OUT = "results/recommendation"


def main() -> int:
    steps = [
        ("train", lambda: train.main(train.get_args_parser().parse_args(["--quiet", "--output", f"{OUT}/train"]))),
        ("export", lambda: export.main(export.get_args_parser().parse_args(["--checkpoint", f"{OUT}/train"]))),
        ("Offline accuracy", lambda: infer.main(infer.get_args_parser().parse_args(
            ["--backend", "onnxruntime", "--scenario", "Offline", "--accuracy", "--samples-to-aggregate-min", "100",
             "--samples-to-aggregate-max", "700", "--output", f"{OUT}/dlrm-onnxruntime"]))),
    ]
    for name, step in steps:
        print(f"== recommendation demo: {name}", flush=True)
        status = step()
        if status:
            print(f"recommendation demo: {name} failed (exit {status})", file=sys.stderr)
            return status
    return 0


if __name__ == "__main__":
    sys.exit(main())
