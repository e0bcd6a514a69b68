"""RetinaNet's mAP on the MLPerf OpenImages subset from LoadGen's ``mlperf_log_accuracy.json``, as the inference
reference's accuracy-openimages tool computes it.

Each logged response holds float32 groups of 7 per detection, ``[qsl_idx, ymin, xmin, ymax, xmax, score, label]``
(boxes 0..1; ``label`` the subset's category id, or with ``--use-inv-map`` 1..264 mapped to the file's category
ids). The annotation file is ``<openimages-dir>/annotations/openimages-mlperf.json``, or
``$DATASET_ANNOTATIONS_FILE_PATH`` where set (the reference's variable). mAP is COCO's AP at IoU 0.50:0.95 with
pycocotools over the images in the log; the work is the shared ``loadgen.data.coco_accuracy``.

    python -m object_detection.accuracy --mlperf-accuracy-file results/.../mlperf_log_accuracy.json \\
        --openimages-dir build/object_detection/openimages-mini
"""

from __future__ import annotations

import argparse
import os
import sys

from loadgen.data import coco_accuracy
from object_detection.data import openimages

PROG = "python -m object_detection.accuracy"
ANNOTATIONS_VARIABLE = "DATASET_ANNOTATIONS_FILE_PATH"


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    from loadgen.accuracy import get_args_parser as accuracy_parser
    from loadgen.cli import existing_dir

    parser = accuracy_parser(PROG, __doc__, add_help)
    parser.add_argument("--openimages-dir", type=existing_dir, required=True,
                        help=f"subset root holding {openimages.ANNOTATIONS} (default: required)")
    parser.add_argument("--use-inv-map", action="store_true",
                        help="labels in the log are 1..264, mapped to the file's category ids (default: False)")
    parser.add_argument("--output-file", default=None,
                        help="also write the detections as COCO results JSON here (default: None)")
    return parser


def main(args) -> int:
    annotations = os.environ.get(ANNOTATIONS_VARIABLE) or openimages.annotation_file(args.openimages_dir)
    return coco_accuracy.report(PROG, args, annotations)


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
