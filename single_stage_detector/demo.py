"""``make demo``'s SSD stage: the benchmark on the embedded mini set, offline, in a few minutes on 2 cores.

1. build the mini set (COCO format: real pixels and object shapes, synthesized layout);
2. train SSD-MobileNet-v1 from scratch (the ``ssd-mobilenet`` config) until its mAP reaches the mini target,
   logging mllog;
3. export the checkpoint to .pt2 and ONNX, each checked against PyTorch on the mini val set;
4. run Offline under LoadGen with onnxruntime, in performance and accuracy modes;
5. print time-to-train, mAP, QPS, latency percentiles, and where every file is.

SSD-MobileNet-v1 rather than SSD-ResNet34: both train on the same driver and data, but SSD-ResNet34 takes about
five times as long a step (27 GFLOPs an image at 300x300 against 2.5) and does not reach a useful mAP from scratch
within a demo's minutes on 2 cores (``python -m single_stage_detector.train --config mini`` trains it).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loadgen.cli import TrainServeDemo, demo_parser
from single_stage_detector import export, mini, train

HERE = Path(__file__).resolve().parent
MODEL = "ssd-mobilenet"
# Expected samples/s for LoadGen, about twice what SSD-MobileNet-v1 at 300x300 on onnxruntime does on 2 cores.
# LoadGen plans the run's work from it: an overestimate only makes a run longer, an underestimate ends it short of
# user.conf's 2 s minimum (INVALID).
OFFLINE_QPS = "200"


DEMO = TrainServeDemo("single_stage_detector", train, ("--config", MODEL), export, f"{MODEL}-onnxruntime",
                      tuple(("Offline", OFFLINE_QPS, accuracy) for accuracy in (False, True)), HERE / "user.conf",
                      "mAP", lambda figures: f"mAP={figures['mAP']:.3f}%")


def get_args_parser(add_help: bool = True) -> argparse.ArgumentParser:
    return demo_parser("python -m single_stage_detector.demo", __doc__, "results/single_stage_detector", add_help)


def main(args) -> int:
    out = Path(args.output)
    return DEMO.run(mini.ensure(), out / "train" / MODEL, out / f"{MODEL}-onnxruntime")


if __name__ == "__main__":
    sys.exit(main(get_args_parser().parse_args()))
