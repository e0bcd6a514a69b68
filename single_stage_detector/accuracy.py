"""COCO mAP from LoadGen's ``mlperf_log_accuracy.json``, as the inference reference's accuracy-coco tool computes it.

Each logged response holds float32 groups of 7 per detection, ``[qsl_idx, ymin, xmin, ymax, xmax, score, label]``
(boxes 0..1; ``label`` the COCO category id, or with ``--use-inv-map`` a contiguous 1..80 label). mAP is COCO's
AP at IoU 0.50:0.95 over the images in the log; the work is the shared ``loadgen.data.coco_accuracy``.

    python -m single_stage_detector.accuracy --mlperf-accuracy-file results/.../mlperf_log_accuracy.json \\
        --coco-dir build/single_stage_detector/mini
"""

from __future__ import annotations

import argparse
import sys

from loadgen.data import coco_accuracy

PROG = "python -m single_stage_detector.accuracy"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    return coco_accuracy.get_args_parser(PROG, __doc__, add_help)


def main(args) -> int:
    return coco_accuracy.main(PROG, args)


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
