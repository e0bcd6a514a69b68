"""AUC from LoadGen's ``mlperf_log_accuracy.json``, as the reference's tools/accuracy-dlrm.py computes it.

Each logged response packs the rows of one (aggregated) sample as float32 pairs ``(prediction, label)``, the
reference's packed format, so the log alone is enough. A sample logged twice (LoadGen pads the last MultiStream
query) counts once (``loadgen.accuracy.read_log``). The AUC is scikit-learn's ``roc_auc_score`` over every row
of every distinct sample.

    python -m recommendation.accuracy --mlperf-accuracy-file results/.../mlperf_log_accuracy.json
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from loadgen.accuracy import Accuracy, Metric, command, in_order, read_log

PROG = "python -m recommendation.accuracy"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    from loadgen.accuracy import get_args_parser as accuracy_parser

    return accuracy_parser(PROG, __doc__, add_help)


def read_pairs(accuracy_log: str | Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(predictions, labels, distinct samples) from the packed float32 pairs of every distinct sample."""
    by_sample = read_log(accuracy_log, np.float32)
    for idx, values in by_sample.items():
        if values.size == 0 or values.size % 2:
            raise ValueError(f"{accuracy_log}: sample {idx} has {values.size} floats, not (prediction, label) pairs")
    pairs = np.concatenate([values.reshape(-1, 2) for _, values in in_order(by_sample)])
    return pairs[:, 0], pairs[:, 1], len(by_sample)


def auc(accuracy_log: str | Path) -> Accuracy:
    """``AUC`` (a fraction) and ``accuracy`` (share of rounded predictions equal to the label), with ``rows`` and
    ``samples`` as details."""
    from sklearn.metrics import roc_auc_score

    scores, labels, samples = read_pairs(accuracy_log)
    return Accuracy((Metric("AUC", float(roc_auc_score(labels, scores)), "fraction"),
                     Metric("accuracy", float(np.mean(np.round(scores) == labels)), "fraction")),
                    {"rows": int(len(labels)), "samples": samples})


def line(result: Accuracy) -> str:
    """The tool's line, also written to accuracy.txt beside a LoadGen accuracy run."""
    return f"{result.text()}, rows={result['rows']}, samples={result['samples']}"


def main(args) -> int:
    return command(PROG, lambda: auc(args.mlperf_accuracy_file), line)


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
