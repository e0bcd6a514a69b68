"""Top-1 from LoadGen's ``mlperf_log_accuracy.json``, as the inference reference's accuracy-imagenet tool does.

Each logged response holds the predicted label (int64) of one sample; a sample logged more than once (LoadGen
pads the last MultiStream query) counts once.

    python -m image_classification.accuracy --mlperf-accuracy-file results/.../mlperf_log_accuracy.json \\
        --imagenet-val-file build/image_classification/mini/val_map.txt
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, add_help=add_help,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlperf-accuracy-file", required=True, help="LoadGen's accuracy log (default: required)")
    parser.add_argument("--imagenet-val-file", required=True, help="val_map.txt with the labels (default: required)")
    parser.add_argument("--dtype", default="int64", choices=["int64", "int32", "float32"],
                        help="element type of a logged response (default: int64)")
    return parser


def read_labels(val_map: str | Path) -> list[int]:
    return [int(line.split()[1]) for line in Path(val_map).read_text().splitlines() if line.strip()]


def top1(accuracy_log: str | Path, labels: Sequence[int], dtype: str = "int64") -> dict[str, float]:
    """{"top1": share correct, "good": n, "total": n} over the distinct samples in the log."""
    entries = json.loads(Path(accuracy_log).read_text())
    predicted: dict[int, int] = {}
    for entry in entries:
        value = np.frombuffer(bytes.fromhex(entry["data"]), dtype=dtype)
        if value.size == 0:
            raise ValueError(f"{accuracy_log}: empty response for sample {entry['qsl_idx']}")
        predicted[entry["qsl_idx"]] = int(value.argmax()) if value.size > 1 else int(value[0])
    good = sum(1 for idx, label in predicted.items() if labels[idx] == label)
    total = len(predicted)
    return {"top1": good / total if total else 0.0, "good": good, "total": total}


def main(args) -> int:
    result = top1(args.mlperf_accuracy_file, read_labels(args.imagenet_val_file), args.dtype)
    print(f"accuracy={100 * result['top1']:.3f}%, good={result['good']}, total={result['total']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
