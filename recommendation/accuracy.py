"""AUC from LoadGen's ``mlperf_log_accuracy.json``, as the reference's tools/accuracy-dlrm.py computes it.

Each logged response packs the rows of one (aggregated) sample as float32 pairs ``(prediction, label)``, the
reference's packed format, so the log alone is enough. A sample logged twice (LoadGen pads the last MultiStream
query) counts once. The AUC is scikit-learn's ``roc_auc_score`` over every row of every distinct sample.

    python -m recommendation.accuracy --mlperf-accuracy-file results/.../mlperf_log_accuracy.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

PROG = "python -m recommendation.accuracy"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    from loadgen.cli import ArgumentParser, existing_file

    parser = ArgumentParser(prog=PROG, description=__doc__, add_help=add_help,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mlperf-accuracy-file", required=True, type=existing_file,
                        help="LoadGen's accuracy log (default: required)")
    return parser


def read_pairs(accuracy_log: str | Path) -> tuple[np.ndarray, np.ndarray, int]:
    """(predictions, labels, distinct samples) from the packed float32 pairs of every distinct sample."""
    try:
        entries = json.loads(Path(accuracy_log).read_text())
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError
        raise ValueError(f"{accuracy_log}: not a JSON accuracy log ({exc})") from exc
    if not isinstance(entries, list):
        raise ValueError(f"{accuracy_log}: not a LoadGen accuracy log (a JSON list of responses)")
    by_sample: dict[int, np.ndarray] = {}
    for entry in entries:
        try:
            values = np.frombuffer(bytes.fromhex(entry["data"]), dtype=np.float32)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{accuracy_log}: not a LoadGen accuracy log entry: {str(entry)[:80]}") from exc
        if values.size == 0 or values.size % 2:
            raise ValueError(f"{accuracy_log}: sample {entry['qsl_idx']} has {values.size} floats, "
                             "not (prediction, label) pairs")
        by_sample[entry["qsl_idx"]] = values.reshape(-1, 2)
    if not by_sample:
        raise ValueError(f"{accuracy_log}: no responses (was the run in accuracy mode?)")
    pairs = np.concatenate([by_sample[k] for k in sorted(by_sample)])
    return pairs[:, 0], pairs[:, 1], len(by_sample)


def auc(accuracy_log: str | Path) -> dict[str, float]:
    """{"auc", "accuracy" (share of rounded predictions equal to the label), "rows", "samples"}."""
    from sklearn.metrics import roc_auc_score

    scores, labels, samples = read_pairs(accuracy_log)
    return {"auc": float(roc_auc_score(labels, scores)),
            "accuracy": float(np.mean(np.round(scores) == labels)), "rows": int(len(labels)), "samples": samples}


def main(args) -> int:
    try:
        r = auc(args.mlperf_accuracy_file)
    except (OSError, ValueError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 1
    print(f"AUC={100 * r['auc']:.3f}%, accuracy={100 * r['accuracy']:.3f}%, rows={r['rows']}, "
          f"samples={r['samples']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
