"""Top-1 from LoadGen's ``mlperf_log_accuracy.json``, as the inference reference's accuracy-imagenet tool does.

Each logged response holds the predicted label (int64) of one sample; a sample logged more than once (LoadGen
pads the last MultiStream query) counts once (``loadgen.accuracy.read_log``).

    python -m image_classification.accuracy --mlperf-accuracy-file results/.../mlperf_log_accuracy.json \\
        --imagenet-val-file build/image_classification/mini/val_map.txt
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from loadgen.accuracy import Accuracy, Metric, command, read_log

PROG = "python -m image_classification.accuracy"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    from loadgen.accuracy import get_args_parser as accuracy_parser
    from loadgen.cli import existing_file

    parser = accuracy_parser(PROG, __doc__, add_help)
    parser.add_argument("--imagenet-val-file", required=True, type=existing_file,
                        help="val_map.txt with the labels (default: required)")
    parser.add_argument("--dtype", default="int64", choices=["int64", "int32", "float32"],
                        help="element type of a logged response (default: int64)")
    return parser


def read_labels(val_map: str | Path) -> list[int]:
    """The labels of a val_map.txt in line order; a bad line raises ValueError naming the file and line."""
    from image_classification.data import read_val_map

    entries, problems = read_val_map(val_map)
    if problems:
        raise ValueError("; ".join(problems[:5]) + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""))
    return [label for _, label, _ in entries]


def top1(accuracy_log: str | Path, labels: Sequence[int], dtype: str = "int64") -> Accuracy:
    """Top-1 (a fraction) over the distinct samples in the log, with ``good`` and ``total`` as details."""
    predicted: dict[int, int] = {}
    for idx, value in read_log(accuracy_log, dtype).items():
        if value.size == 0:
            raise ValueError(f"{accuracy_log}: empty response for sample {idx}")
        if not 0 <= idx < len(labels):
            raise ValueError(f"{accuracy_log}: sample {idx} is beyond the {len(labels)} labels of the val_map")
        predicted[idx] = int(value.argmax()) if value.size > 1 else int(value[0])
    good = sum(1 for idx, label in predicted.items() if labels[idx] == label)
    total = len(predicted)
    return Accuracy((Metric("top1", good / total, "fraction"),), {"good": good, "total": total})


def line(result: Accuracy) -> str:
    """The reference tool's line (accuracy-imagenet.py), which the submission checker reads from accuracy.txt."""
    return f"accuracy={100 * result['top1']:.3f}%, good={result['good']}, total={result['total']}"


def main(args) -> int:
    return command(PROG, lambda: top1(args.mlperf_accuracy_file, read_labels(args.imagenet_val_file), args.dtype),
                   line)


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
