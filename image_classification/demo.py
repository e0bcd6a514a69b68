"""``make demo``: the whole benchmark on the embedded mini set, offline, in a few minutes on 2 cores.

1. build the mini set (scikit-learn digits in ImageNet format);
2. train ResNet-50 v1.5 at 32x32 until top-1 reaches the mini target, logging mllog;
3. export the checkpoint to .pt2, ONNX, TF SavedModel and TFLite, each checked against PyTorch;
4. run Offline and SingleStream under LoadGen with onnxruntime, in performance and accuracy modes;
5. print time-to-train, QPS, latency percentiles and top-1, and where every file is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from image_classification import export, mini, train
from loadgen.cli import TrainServeDemo, demo_parser

HERE = Path(__file__).resolve().parent
# Expected rates for LoadGen, about twice what ResNet-50 at 32x32 on onnxruntime does on 2 cores (measured:
# 640-1000 samples/s at batch 32, 200-280 single queries/s). LoadGen plans the run's work from them: an
# overestimate only makes a run longer, an underestimate ends it short of user.conf's 2 s minimum (INVALID).
RUNS = (("Offline", "1800", False), ("Offline", "1800", True), ("SingleStream", "500", False),
        ("SingleStream", "500", True))


DEMO = TrainServeDemo("image_classification", train, ("--config", "mini"), export, "resnet50-onnxruntime", RUNS,
                      HERE / "user.conf", "top1", lambda figures: f"top-1 {figures['top1']:.4f}", "top-1")


# --submission: every scenario a "datacenter,edge" system needs, with its compliance tests (resnet: TEST01 and
# TEST04). MultiStream's figure is queries/s (8 samples each), Server's a target that holds the 15 ms bound here.
SUBMISSION_RUNS = (("Offline", "1800"), ("SingleStream", "500"), ("MultiStream", "200"), ("Server", "60"))
SUBMISSION_TESTS = ("TEST01", "TEST04")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    return demo_parser("python -m image_classification.demo", __doc__, "results/image_classification", add_help,
                       submission_runs="all four scenarios, accuracy, TEST01, TEST04")


def main(args) -> int:
    out = Path(args.output)
    if args.submission:
        return DEMO.submission_runs(mini.ensure(), out / "train", out / "submission-runs", SUBMISSION_RUNS,
                                    SUBMISSION_TESTS)
    return DEMO.run(mini.ensure(), out / "train", out / "resnet50-onnxruntime")


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
